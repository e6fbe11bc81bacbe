"""``spikedeploy check``: what a NIR graph is, and everything that stops it compiling.

:func:`check_graph` never stops at the first problem and never raises for a
bad graph: it reads the file, validates the semantics of every node (NaN or
non-positive time constants, shape mismatches, dangling edges, cycles with
no input), lowers node by node with the lowering's own loop
(:func:`~spikedeploy.ir.lowering.lower_ops`, collecting), then asks each
backend what it cannot represent -- from the same OpTables the backends run
with: the reference runners per precision, the fixed-point quantisation
rules, and the Lava builders (each with its static check) plus the Lava-free
scheduler. So ``check`` says OK exactly when the run will work. The report
lists every node (type, shapes, which backends can run it) and every
problem (node, field, reason, backend). Lava is not imported.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nir
import numpy as np

from ..errors import SpikedeployError, UnsupportedError
from ..ir import fixed_point as fxp
from ..ir.graph import FlatGraph, inline_graph, order_graph
from ..ir.load import graph_dt, read_nir
from ..ir.lowering import lower_ops
from ..ir.ops import Program
from ..ir.passes import fold_biases
from ..ir.conventions import Choice, apply_convention, convention_notes
from ..ir.producers import Note
from ..tables import fit_lines, terminal_table
from ..metadata import (DEFAULT_DT, DT, NUM_STEPS, TSM_GAIN, metadata_value,
                        run_metadata_problems)
from .lava_builders import lava_problem as lava_op_problem
from .lava_install import lava_problem
from .loihi2.netx_file import netx_chain, netx_problems
from .loihi2.target import BACKENDS as LOIHI2_TARGETS   # always fixed point
from .loihi2.target import loihi2_problems, prepare
from .reference import RUNNERS
from .timing import schedule

BACKENDS = ("reference-float", "reference-fixed", "lava-float", "lava-fixed", "loihi2", "netx")

TIME_CONSTANTS = ("tau", "tau_mem", "tau_syn")


@dataclass
class Problem:
    node: str
    field: str
    reason: str
    backend: str = ""          # "" = the graph itself is invalid; else the backend refusing it

    def __str__(self):
        where = f" [{self.backend}]" if self.backend else ""
        return f"{self.node}: {self.field}: {self.reason}{where}"


@dataclass
class NodeInfo:
    name: str
    type: str
    input_shape: list | None = None
    output_shape: list | None = None
    backends: dict = field(default_factory=dict)   # backend -> bool


@dataclass
class CheckReport:
    source: str
    backend: str
    precision: str
    dt: float | None = None
    dt_source: str = ""              # "metadata" | "argument" | ""
    nodes: list[NodeInfo] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lava_latency: int | None = None  # total steps Lava's pipeline adds (aligned away)
    producer: str = ""               # likely tool that wrote the graph ("" if unknown)
    convention: Choice | None = None   # how the file's unsaid semantics were filled in
    notes: list[Note] = field(default_factory=list)   # what the producer meant that NIR does not say
    target_notes: list[str] = field(default_factory=list)   # what the Loihi 2 passes changed
    target_latency: int | None = None   # steps the Loihi 2 target's pipeline adds

    @property
    def target(self) -> str:
        return self.backend if self.backend in LOIHI2_TARGETS else f"{self.backend}-{self.precision}"

    def blocking(self) -> list[Problem]:
        """Problems that stop the chosen backend and precision."""
        relevant = {"", "reference-float", self.target}
        if self.target == "netx":
            relevant.add("loihi2")                     # a netx file holds what the target runs
        if self.precision == "fixed" and self.target not in LOIHI2_TARGETS:
            relevant.add("reference-fixed")            # Lava fixed uses the same quantiser
        if self.target == "lava-fixed":
            relevant.add("lava-float")                 # and the same timing and op types
        return [p for p in self.problems if p.backend in relevant]

    @property
    def ok(self) -> bool:
        return not self.blocking()

    def to_dict(self) -> dict:
        return {"source": self.source, "backend": self.backend, "precision": self.precision,
                "dt": self.dt, "dt_source": self.dt_source, "ok": self.ok,
                "lava_latency": self.lava_latency, "loihi2_latency": self.target_latency,
                "producer": self.producer,
                "convention": self.convention.to_dict() if self.convention else None,
                "nodes": [asdict(n) for n in self.nodes],
                "problems": [asdict(p) for p in self.problems],
                "notes": [asdict(n) for n in self.notes], "target_notes": self.target_notes}

    def to_json(self, path=None, indent: int = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def to_text(self) -> str:
        lines = [f"{self.source}: {'OK' if self.ok else 'FAILS'} for {self.target}"
                 + (f" (dt = {self.dt:g} s from {self.dt_source})" if self.dt else " (no dt)")]
        if self.convention is not None:
            lines.append(f"convention: {self.convention.name} ({self.convention.reason})")
        if self.target in LOIHI2_TARGETS:
            if self.target_latency is not None:
                lines.append(f"Loihi 2 pipeline latency L: {self.target_latency} steps (samples "
                             "run in windows of T + L steps; aligned away)")
        elif self.lava_latency is not None:
            lines.append(f"Lava pipeline latency: {self.lava_latency} steps (aligned away)")
        if self.nodes:
            lines.append(terminal_table(
                ["name", "type", "input shape", "output shape", "backends"],
                [[n.name, n.type, _shape(n.input_shape), _shape(n.output_shape),
                  ", ".join(b for b in BACKENDS if n.backends.get(b)) or "-"]
                 for n in self.nodes], text_cols=5, whole_cols=4))
        if self.target in LOIHI2_TARGETS and self.target_notes:
            lines += [f"loihi2 pass: {note}" for note in self.target_notes]
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        if self.notes:
            who = f" (looks written by {self.producer})" if self.producer else ""
            lines.append(f"{len(self.notes)} note(s){who}: what the file does not say, "
                         "and what was assumed:")
            lines += [f"  {n}" for n in self.notes]
        return fit_lines("\n".join(lines))


def _shape(s) -> str:
    return "?" if s is None else "(" + ",".join(str(v) for v in s) + ")"


def check_graph(path_or_graph, dt: float | None = None, backend: str = "lava",
                precision: str = "float", input_scale: float = 1.0,
                source: str | None = None, convention: str = "auto") -> CheckReport:
    """Check a NIR file or graph for ``backend`` ('lava'|'reference', or the Loihi 2 target
    'loihi2'|'netx', always fixed point) and precision, read under ``convention``
    (:mod:`spikedeploy.ir.conventions`)."""
    if source is None:         # a graph already read may name its file
        source = str(path_or_graph) if not isinstance(path_or_graph, nir.NIRGraph) else "<graph>"
    if backend in LOIHI2_TARGETS:
        precision = "fixed"
    report = CheckReport(source, backend, precision)
    if backend not in ("lava", "reference") + LOIHI2_TARGETS or precision not in ("float", "fixed"):
        report.problems.append(Problem("<request>", "backend", f"unknown backend/precision "
                                       f"{backend}/{precision} (lava|reference|loihi2|netx, "
                                       "float|fixed)"))
        return report
    graph = path_or_graph
    if not isinstance(graph, nir.NIRGraph):
        try:
            graph = read_nir(path_or_graph)
        except SpikedeployError as exc:
            report.problems.append(Problem("<file>", "file", str(exc)))
            return report
    original = graph
    try:
        graph, report.convention = apply_convention(graph, convention, dt)
    except SpikedeployError as exc:
        report.problems.append(Problem("<request>", "convention", str(exc)))
        return report
    # dt
    try:
        report.dt = graph_dt(graph.metadata or {})
        said = metadata_value(original.metadata or {}, DT) is not None
        report.dt_source = ("argument (overrides metadata)" if dt is not None and said else
                            "argument" if dt is not None else "metadata" if said else
                            f"convention {report.convention.name}")
    except SpikedeployError as exc:
        report.problems.append(Problem("<graph>", "dt", str(exc)))
    for key, reason in run_metadata_problems(graph.metadata):
        report.problems.append(Problem("<graph>", key, reason))
    flat = _flatten(graph, report)
    if flat is None:
        return report
    if not _validate_nodes(flat, report):
        return report                 # fields that are not numbers: nothing can be lowered
    if len(flat.inputs) > 1:
        report.problems.append(Problem("<graph>", "inputs", f"{len(flat.inputs)} Input nodes "
                                       f"({', '.join(flat.inputs)}): the command line feeds one "
                                       "input array; run it from Python with a dict by input name"))
    report.producer, report.notes = convention_notes(original, report.convention, dt)
    if report.target != "reference-float" and not report.target.startswith("reference"):
        missing = lava_problem(netx=report.target == "netx")
        if missing:
            report.problems.append(Problem("<request>", "lava", missing, report.target))
    # an invalid parameter (NaN, zero tau) is reported as a problem; numpy's warnings about
    # computing with it would only repeat that, so they are silenced here
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        program = _lower_each(flat, report)
        if program is None:
            return report
        _check_backends(program, report, input_scale)
    return report


def _flatten(graph, report) -> FlatGraph | None:
    try:
        flat = inline_graph(graph)
    except SpikedeployError as exc:
        report.problems.append(Problem("<graph>", "edges", str(exc)))
        return None
    nodes, outputs = flat.nodes, flat.outputs
    for name, node in nodes.items():
        report.nodes.append(NodeInfo(name, type(node).__name__))
    if not outputs:
        report.problems.append(Problem("<graph>", "outputs", "graph has no Output node"))
    for name in nodes:
        if not isinstance(nodes[name], nir.Input) and not flat.predecessors(name):
            report.problems.append(Problem(name, "inputs", "node has no incoming edge (dangling)"))
        if not isinstance(nodes[name], nir.Output) and not flat.successors(name):
            report.problems.append(Problem(name, "outputs", "node's output goes nowhere (dangling)"))
    try:
        order_graph(flat)
    except SpikedeployError as exc:
        report.problems.append(Problem("<graph>", "edges", str(exc)))
        return None
    return flat


def _validate_nodes(flat: FlatGraph, report) -> bool:
    """Field-level semantic checks NIR's reader does not make; False when a field that must
    hold numbers does not (the graph cannot even be lowered)."""
    numeric = True
    steps = metadata_value(flat.metadata, NUM_STEPS)
    for name, node in flat.nodes.items():
        gains = metadata_value(getattr(node, "metadata", None) or {}, TSM_GAIN)
        if gains is not None and isinstance(steps, int) and np.size(gains) < steps:
            report.problems.append(Problem(name, TSM_GAIN, f"TSM gains are defined for "
                                           f"{np.size(gains)} time steps, the graph runs {steps}"))
        for key, value in vars(node).items():
            if key in ("metadata", "input_type", "output_type") or value is None:
                continue
            if isinstance(value, (str, bytes)):
                report.problems.append(Problem(name, key, f"must be numbers, got the text "
                                               f"{value!r}"))
                numeric = False
                continue
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            if arr.size and not np.all(np.isfinite(arr)):
                report.problems.append(Problem(name, key, "contains NaN or infinite values"))
            finite = arr[np.isfinite(arr)] if arr.size else arr
            if key in TIME_CONSTANTS and finite.size and np.any(finite <= 0):
                report.problems.append(Problem(name, key, f"time constants must be positive "
                                               f"(min {finite.min():g})"))
            elif key == "delay" and arr.size and np.any(arr < 0):
                report.problems.append(Problem(name, key, "delays must be non-negative"))
    return numeric


def _lower_each(flat: FlatGraph, report) -> Program | None:
    """Lower node by node (the lowering's own loop), recording every failure."""
    info = {n.name: n for n in report.nodes}
    dt = report.dt or DEFAULT_DT   # dt problems are already reported; shapes do not depend on it
    found: list[UnsupportedError] = []
    lowered = lower_ops(flat, dt, problems=found)
    report.notes += lowered.notes
    for exc in found:
        report.problems.append(Problem(exc.node, exc.field, exc.reason))
    for name, (in_shape, shape) in lowered.shapes.items():
        info[name].input_shape = None if in_shape is None else [int(s) for s in in_shape]
        info[name].output_shape = [int(s) for s in shape]
        info[name].backends["reference-float"] = True    # lowered; the tables may say otherwise
        declared = getattr(flat.nodes[name], "output_type", None)
        if isinstance(flat.nodes[name], nir.Output) and in_shape is not None:
            _check_declared_output(name, declared, in_shape, report)
    if any(exc.field == "recurrent" for exc in found):
        return None
    program = Program(lowered.ops, [n for n in flat.inputs if n in lowered.ops],
                      [n for n in flat.outputs if n in lowered.ops], report.dt or dt, flat.metadata)
    fold_biases(program)
    return program


def _check_declared_output(name: str, declared, in_shape, report) -> None:
    """An Output that declares its size must receive that many values."""
    if isinstance(declared, dict):
        declared = next(iter(declared.values()), None)
    if declared is None:
        return
    try:
        dims = tuple(int(d) for d in np.atleast_1d(np.asarray(declared, dtype=np.int64)))
    except (TypeError, ValueError):
        return
    size, received = int(np.prod(dims)), int(np.prod(in_shape))
    for k in range(1, len(dims)):      # nirtorch keeps the sample data's batch/time axes
        if size != received and int(np.prod(dims[k:])) == received:
            report.notes.append(Note(name, "output_type", f"declares shape {dims} and receives "
                                     f"{tuple(dims[k:])}: the leading dimension(s) {dims[:k]} are "
                                     "the batch/time axes nirtorch's exporter recorded; dropped"))
            return
    if size != received:
        report.problems.append(Problem(name, "output_type", f"declares {size} values but "
                                       f"receives {received}"))


def _check_backends(program: Program, report, input_scale) -> None:
    info = {n.name: n for n in report.nodes}
    bad: dict[str, set] = {b: set() for b in BACKENDS}

    def add(exc: UnsupportedError, backend):
        report.problems.append(Problem(exc.node, exc.field, exc.reason, backend))
        bad[backend].add(exc.node)

    # The reference simulator: one runner per op type and precision.
    for precision, table in RUNNERS.items():
        for op in program.ops.values():
            why = table.problem(op)
            if why:
                add(UnsupportedError(op.name, "type", why), f"reference-{precision}")
    # Fixed point: the quantiser both the reference and Lava run.
    found: list = []
    fxp.quantise(program, input_scale=input_scale, collect=found)
    for exc in found:
        add(exc, "reference-fixed")
    # Lava: the builders' table and static checks, then the timing.
    for op in program.ops.values():
        exc = lava_op_problem(program, op)
        if exc is not None:
            add(exc, "lava-float")
    found = []
    sched = schedule(program, collect=found)
    for exc in found:
        add(exc, "lava-float")
    report.lava_latency = sched.total_latency
    # The Loihi 2 target: its passes, rules and quantisation; netx: the chain its loader builds.
    compiled, found = loihi2_problems(program, input_scale)
    for exc in found:
        add(exc, "loihi2")
    if compiled is not None:
        for exc in netx_problems(compiled):
            add(exc, "netx")
        report.target_notes = list(compiled.notes)
        report.target_latency = schedule(compiled.program).total_latency
    else:                       # what netx could not hold either, on the graph after the passes
        for exc in netx_chain(prepare(program)[0])[1]:
            add(exc, "netx")
    graph_wide_netx = any(n not in program.ops for n in bad["netx"])
    for name, node in info.items():
        if name not in program.ops:
            continue
        for backend in BACKENDS[:3] + ("loihi2",):
            node.backends[backend] = name not in bad[backend]
        node.backends["lava-fixed"] = node.backends["lava-float"] and node.backends["reference-fixed"]
        # a netx file holds the whole graph or nothing: a graph-level refusal counts for all
        node.backends["netx"] = (node.backends["loihi2"] and compiled is not None
                                 and name not in bad["netx"] and not graph_wide_netx)

