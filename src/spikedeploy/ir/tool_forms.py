"""Writing a graph in the form another tool's NIR importer runs with spikedeploy's spikes.

The inverse of :mod:`spikedeploy.ir.conventions`. Each importer reads NIR's
fields its own way (read from their sources, measured in
``tests/export/test_tool_forms.py``):

============ ================================================================================
tool         what its importer does with a neuron node
============ ================================================================================
snnTorch     ``import_from_nir``: LIF -> Leaky(beta = 1 - 1e-4/tau) (dt hard-coded 1e-4),
             input gain r*1e-4/tau (a layer-uniform gain is moved into the threshold),
             one threshold per layer, v_leak = 0, reset "zero" in the spike's step;
             IF becomes Leaky(beta = 0.9), so an IF is written as a LIF whose beta is 1.
Norse        ``norse.torch.from_nir`` (dt = 1e-3): LIF -> LIFBoxCell(tau_mem_inv = 1/tau):
             v += dt/tau (v_leak - v + x): the input gain is always dt/tau, r must be 1,
             v_reset is not read (0); IF -> IAFCell (v += x); AvgPool2d is not imported
             (SumPool2d is); Affine and Conv2d need a bias; no recurrent graphs.
sinabs       ``sinabs.from_nir``: LIF -> LIFSqueeze(tau in steps, norm_input=False:
             v = exp(-1/tau) v + x), IF -> IAFSqueeze(min_v_mem = -threshold); both with
             sinabs' defaults MultiSpike (floor(v/threshold) spikes, v >= threshold) and
             MembraneSubtract; Linear is not imported (Affine is).
NIR          NIR's own equations: what spikedeploy's metadata adds (reset mode, delays,
             several spikes, v >= threshold) must be absent.
============ ================================================================================

So the forms differ: a graph is written per tool. Input gains the tool cannot
hold are folded into the weights (and bias) of the one weighted node feeding
the neuron; time constants are rewritten for the tool's time step; what the
importer cannot represent is refused with node, field and reason.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nir
import numpy as np

from ..errors import UnsupportedError
from ..metadata import CONVENTION, CONVENTION_REASON, DT, FOR_TOOLS, WRITTEN_FOR
from .conventions import apply_convention
from .graph import flatten_graph
from .load import graph_dt
from .semantics import NeuronParams, neuron_params

TOOLS = FOR_TOOLS
SNNTORCH_DT = 1e-4           # snnTorch's importer and exporter hard-code it
NORSE_DT = 1e-3              # norse.torch.from_nir's default dt
TOOL_DT = {"snntorch": SNNTORCH_DT, "norse": NORSE_DT, "sinabs": 1.0}   # sinabs: tau in steps
NEURONS = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I)
WEIGHTED = (nir.Affine, nir.Linear, nir.Conv2d)
# Measured: snnTorch's import_from_nir turns a LIF <-> Affine pair into a plain subgraph
# whose external input passes through the recurrent weights (no RLeaky); snnTorch's own
# RLeaky export re-imports at 81% spike agreement. Norse's importer has no recurrence.
RECURRENCE_REFUSED = {
    "snntorch": "snnTorch's import_from_nir runs a recurrent layer's input through its "
                "recurrent weights (its own RLeaky export re-imports at 81% spike agreement)",
    "norse": "norse.torch.from_nir imports no recurrent connections",
}
FOREVER = 1e30               # a time constant whose decay rounds to exactly 0 at the tool's dt


@dataclass
class ToolForm:
    """A graph written for ``tool`` and what was changed to get there."""
    graph: nir.NIRGraph
    tool: str
    changes: list = field(default_factory=list)


def _uniform(x) -> bool:
    a = np.asarray(x, np.float64).reshape(-1)
    return a.size == 0 or bool(np.all(a == a[0]))


def _refuse_semantics(name: str, p: NeuronParams, tool: str, allowed: dict) -> None:
    """Refuse what the tool's neuron cannot run: ``allowed`` gives each population field's
    one accepted value."""
    why = {"reset_mode": "reset", "reset_delay": "a reset one step late",
           "reset_in_step": "the reset in the spike's step", "fire_at_threshold":
           "the threshold comparison", "spikes_per_step": "spikes per step"}
    for key, value in allowed.items():
        if getattr(p, key) != value:
            raise UnsupportedError(name, key, f"{tool}'s importer runs {why[key]} = {value!r}, "
                                   f"this neuron has {getattr(p, key)!r}")
    if np.any(np.asarray(p.v_init) != 0):
        raise UnsupportedError(name, "spikedeploy.v_init", f"{tool}'s importer starts every "
                               "neuron at v = 0")
    if p.step_gain is not None:
        raise UnsupportedError(name, "spikedeploy.tsm_gain", f"{tool}'s importer has no "
                               "per-step gains")
    if p.graded:
        raise UnsupportedError(name, "spikedeploy.spike_value", f"{tool}'s importer emits "
                               "spikes of value 1")


class _Writer:
    """Rewrites one (sub)graph's nodes in place; ``edges`` give each neuron's feeders."""

    def __init__(self, graph: nir.NIRGraph, tool: str, dt: float, changes: list, prefix=""):
        self.graph, self.tool, self.dt, self.changes, self.prefix = graph, tool, dt, changes, prefix
        self.nodes = dict(graph.nodes)

    def feeders(self, name: str) -> list[str]:
        return [s for s, d in self.graph.edges if d == name]

    def fold_gain(self, name: str, factor: np.ndarray) -> None:
        """Multiply the inputs of neuron ``name`` by ``factor`` (per neuron) in its weights."""
        factor = np.asarray(factor, np.float64).reshape(-1)
        if np.all(factor == 1.0):
            return
        sources = self.feeders(name)
        for src in sources:
            node = self.nodes.get(src)
            if not isinstance(node, WEIGHTED):
                raise UnsupportedError(self.prefix + name, "r", f"{self.tool}'s importer fixes "
                                       f"this neuron's input gain; it is folded into the weights "
                                       f"of the node feeding it, but '{src}' is "
                                       f"{_kind(node)}, which has none")
            if sum(1 for s, _ in self.graph.edges if s == src) > 1:
                raise UnsupportedError(self.prefix + name, "r", f"the input gain would be folded "
                                       f"into '{src}', which also feeds other nodes")
            self.nodes[src] = _scaled(self.prefix + name, src, node, factor)
        self.changes.append(f"{self.prefix}{name}: input gain x{_describe(factor)} folded into "
                            f"the weights of {', '.join(sources)}")

    def neuron(self, name: str, node):
        p = neuron_params(self.prefix + name, node, self.dt)
        return RULES[self.tool](self, name, node, p.broadcast(p.shape))


def _kind(node) -> str:
    return "a subgraph's port" if node is None else f"a {type(node).__name__}"


def _describe(a: np.ndarray) -> str:
    lo, hi = float(np.min(a)), float(np.max(a))
    return f"{lo:.6g}" if lo == hi else f"{lo:.6g}..{hi:.6g}"


def _scaled(neuron: str, name: str, node, factor: np.ndarray):
    """A weighted node with output row (or channel) k multiplied by factor[k]."""
    new = copy.copy(node)
    w = np.asarray(node.weight, np.float64)
    rows = w.shape[0]
    if factor.size not in (1, rows):
        if factor.size % rows or not all(_uniform(c) for c in factor.reshape(rows, -1)):
            raise UnsupportedError(neuron, "tau", f"the input gains to fold into '{name}' "
                                   "differ between neurons of one output channel (per-neuron "
                                   "time constants or thresholds under a shared kernel; train "
                                   "with --shared-neuron-params)")
        factor = factor.reshape(rows, -1)[:, 0]
    f = np.broadcast_to(factor, (rows,)).reshape((rows,) + (1,) * (w.ndim - 1))
    new.weight = w * f
    if getattr(node, "bias", None) is not None:
        new.bias = np.asarray(node.bias, np.float64) * f.reshape(-1)
    return new


# --- per tool: the neuron node its importer runs as we do ------------------------------------

def _for_nir(w: _Writer, name, node, p: NeuronParams):
    _refuse_semantics(w.prefix + name, p, "a plain NIR reader", dict(
        reset_mode="zero", reset_delay=0, reset_in_step=1, fire_at_threshold=0,
        spikes_per_step="one"))
    return node


def _for_snntorch(w: _Writer, name, node, p: NeuronParams):
    full = w.prefix + name
    _refuse_semantics(full, p, "snnTorch", dict(reset_mode="zero", reset_delay=0,
                                                reset_in_step=1, fire_at_threshold=0,
                                                spikes_per_step="one"))
    if isinstance(node, (nir.LI, nir.CubaLI, nir.I)):
        raise UnsupportedError(full, "type", f"snnTorch's importer has no {type(node).__name__}")
    if np.any(p.bias != 0):
        raise UnsupportedError(full, "v_leak", "snnTorch's importer refuses v_leak != 0")
    if np.any(p.v_reset != 0):
        raise UnsupportedError(full, "v_reset", "snnTorch's importer resets to 0")
    dt = SNNTORCH_DT
    threshold = np.asarray(p.v_th, np.float64)
    gain = p.gain
    if np.any(threshold <= 0):
        raise UnsupportedError(full, "v_threshold", "thresholds must be positive to be "
                               "normalised for snnTorch's importer")
    if not _uniform(threshold):
        # One threshold per layer: v / v_th has threshold 1 and input gain g / v_th (the
        # reset to 0 and the decay are unchanged by the scaling).
        w.fold_gain(name, p.gain / threshold)
        threshold, gain = np.ones_like(threshold), np.ones_like(p.gain)
    elif not _uniform(p.gain):               # the importer moves only a uniform gain
        w.fold_gain(name, p.gain)
        gain = np.ones_like(p.gain)
    if np.all(p.du == 1.0):
        tau = np.where(p.dv > 0, dt / np.where(p.dv > 0, p.dv, 1.0), FOREVER)
        return nir.LIF(tau=tau, r=gain * tau / dt, v_leak=np.zeros_like(tau),
                       v_threshold=threshold, v_reset=np.zeros_like(tau))
    tau_mem = np.where(p.dv > 0, dt / np.where(p.dv > 0, p.dv, 1.0), FOREVER)
    tau_syn = dt / p.du
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt,
                       w_in=gain * tau_syn / dt, v_leak=np.zeros_like(tau_mem),
                       v_threshold=threshold, v_reset=np.zeros_like(tau_mem))


def _for_norse(w: _Writer, name, node, p: NeuronParams):
    full = w.prefix + name
    _refuse_semantics(full, p, "Norse", dict(reset_mode="zero", reset_delay=0, reset_in_step=1,
                                             fire_at_threshold=0, spikes_per_step="one"))
    if np.any(p.v_reset != 0):
        raise UnsupportedError(full, "v_reset", "Norse's importer does not read v_reset (0)")
    if not isinstance(node, (nir.LIF, nir.IF)) or np.any(p.du != 1.0):
        raise UnsupportedError(full, "type", f"--for norse writes LIF and IF neurons; "
                               f"{type(node).__name__} is not supported")
    if np.all(p.dv == 0):                    # IAFCell: v += x
        w.fold_gain(name, p.gain)
        return nir.IF(r=np.ones_like(p.dv), v_threshold=np.asarray(p.v_th, np.float64),
                      v_reset=np.zeros_like(p.dv))
    if np.any(p.dv <= 0):
        raise UnsupportedError(full, "tau", "Norse's LIFBoxCell needs a finite tau per neuron")
    w.fold_gain(name, p.gain / p.dv)         # Norse's input gain is dt/tau = dv
    return nir.LIF(tau=NORSE_DT / p.dv, r=np.ones_like(p.dv), v_leak=p.bias / p.dv,
                   v_threshold=np.asarray(p.v_th, np.float64), v_reset=np.zeros_like(p.dv))


def _for_sinabs(w: _Writer, name, node, p: NeuronParams):
    full = w.prefix + name
    _refuse_semantics(full, p, "sinabs", dict(reset_mode="subtract", reset_delay=0,
                                              reset_in_step=1, fire_at_threshold=1,
                                              spikes_per_step="multi"))
    if not isinstance(node, nir.LIF) or np.any(p.du != 1.0) or np.any(p.dv <= 0) or \
            np.any(p.dv >= 1):
        raise UnsupportedError(full, "type", "--for sinabs writes LIF neurons (sinabs' IAF "
                               "import clamps v at -threshold, which this neuron does not)")
    if np.any(p.bias != 0):
        raise UnsupportedError(full, "v_leak", "sinabs' importer refuses v_leak != 0")
    w.fold_gain(name, p.gain)                # norm_input=False: gain 1
    return nir.LIF(tau=-1.0 / np.log1p(-p.dv), r=np.ones_like(p.dv),
                   v_leak=np.zeros_like(p.dv), v_threshold=np.asarray(p.v_th, np.float64),
                   v_reset=np.zeros_like(p.dv))


RULES = {"nir": _for_nir, "snntorch": _for_snntorch, "norse": _for_norse, "sinabs": _for_sinabs}


# --- other nodes ---------------------------------------------------------------------------

def _with_bias(node):
    if isinstance(node, nir.Linear):
        w = np.asarray(node.weight, np.float64)
        return nir.Affine(weight=w, bias=np.zeros(w.shape[0]))
    if isinstance(node, nir.Conv2d) and node.bias is None:
        new = copy.copy(node)
        new.bias = np.zeros(np.shape(node.weight)[0])
        return new
    return node


def _pool_as_sum(writer: _Writer, name: str, node) -> None:
    """Norse imports SumPool2d, not AvgPool2d: a sum pool with 1/k^2 folded into the weights
    of the node(s) it feeds."""
    k = np.broadcast_to(np.atleast_1d(np.asarray(node.kernel_size, np.int64)), (2,))
    area = float(np.prod(k))
    if node.padding is not None and np.any(np.asarray(node.padding) != 0):
        raise UnsupportedError(writer.prefix + name, "padding", "Norse imports a pool as "
                               "LPPool2d, which has no padding")
    targets = [d for s, d in writer.graph.edges if s == name]
    for dst in targets:
        target = writer.nodes.get(dst)
        if not isinstance(target, WEIGHTED):
            raise UnsupportedError(writer.prefix + name, "type", "Norse's importer has no "
                                   "AvgPool2d; the 1/k^2 of a sum pool goes into the next "
                                   f"weights, but '{dst}' is {_kind(target)}")
        if sum(1 for _, d in writer.graph.edges if d == dst) > 1:
            raise UnsupportedError(writer.prefix + name, "type", f"the 1/k^2 of the sum pool "
                                   f"would go into '{dst}', which has other inputs too")
        target = copy.copy(writer.nodes[dst])
        target.weight = np.asarray(target.weight, np.float64) / area
        writer.nodes[dst] = target
    stride = k if node.stride is None else node.stride
    writer.nodes[name] = nir.SumPool2d(kernel_size=k.copy(), stride=np.broadcast_to(
        np.atleast_1d(np.asarray(stride, np.int64)), (2,)).copy(), padding=np.zeros(2, np.int64))
    writer.changes.append(f"{writer.prefix}{name}: AvgPool2d as SumPool2d, 1/{area:g} folded "
                          f"into {', '.join(targets)}")


def _rewrite(graph: nir.NIRGraph, tool: str, dt: float, changes: list, prefix="") -> nir.NIRGraph:
    writer = _Writer(graph, tool, dt, changes, prefix)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            if tool in ("norse", "snntorch"):
                raise UnsupportedError(prefix + name, "type", f"{tool}'s importer does not "
                                       "import general subgraphs (snnTorch reads every "
                                       "subgraph as a recurrent layer; Norse none)")
            writer.nodes[name] = _rewrite(node, tool, dt, changes, f"{prefix}{name}.")
        elif tool == "norse" and isinstance(node, nir.AvgPool2d):
            _pool_as_sum(writer, name, node)
    for name, node in graph.nodes.items():
        if isinstance(node, NEURONS):
            writer.nodes[name] = writer.neuron(name, node)
    if tool in ("norse", "sinabs", "snntorch"):
        for name, node in list(writer.nodes.items()):
            writer.nodes[name] = _with_bias(node) if tool != "snntorch" or \
                isinstance(node, nir.Conv2d) else node
    out = copy.copy(graph)
    out.nodes = writer.nodes
    return out


def _declare_io_shapes(out: nir.NIRGraph, graph: nir.NIRGraph, changes: list) -> None:
    """Input and Output types as the values they carry: nirtorch's exporters record the
    sample data's batch/time axes too, which NIR's typed reader (and so every importer)
    refuses."""
    from .lowering import lower
    program = lower(graph)
    for name, node in list(out.nodes.items()):
        op = program.ops.get(name)
        if op is None or not isinstance(node, (nir.Input, nir.Output)):
            continue
        shape = np.array(op.shape if isinstance(node, nir.Input) else op.in_shape or op.shape)
        declared = next(iter((node.input_type if isinstance(node, nir.Input)
                              else node.output_type).values()), None)
        if declared is not None and tuple(np.atleast_1d(declared)) == tuple(shape):
            continue
        out.nodes[name] = nir.Input(input_type=shape) if isinstance(node, nir.Input) else \
            nir.Output(output_type=shape)
        changes.append(f"{name}: declared shape {tuple(np.atleast_1d(declared))} -> "
                       f"{tuple(shape)} (the values it carries)")


def write_for(graph: nir.NIRGraph, tool: str, dt: float | None = None) -> ToolForm:
    """``graph`` (read under its convention) in the form ``tool``'s importer runs as we do."""
    if tool not in TOOLS:
        raise UnsupportedError("<request>", "tool", f"unknown tool {tool!r} (one of "
                               f"{', '.join(TOOLS)})")
    graph, _ = apply_convention(graph, "auto", dt)
    dt = graph_dt(graph.metadata or {})
    if tool in RECURRENCE_REFUSED:
        cycles = sorted(flatten_graph(graph).recurrent)
        if cycles:
            src, dst = cycles[0]
            raise UnsupportedError(dst, "recurrent", f"the edge {src} -> {dst} closes a cycle: "
                                   f"{RECURRENCE_REFUSED[tool]}")
    changes: list[str] = []
    out = _rewrite(graph, tool, dt, changes)
    _declare_io_shapes(out, graph, changes)
    # The file's dt is the tool's step, so spikedeploy reads the form back as the tool runs
    # it: snnTorch and Norse forms are NIR's equations at that dt; the sinabs form is read
    # with the 'sinabs-import' convention (exp decays, unit gain).
    out.metadata = dict(graph.metadata or {})
    out.metadata[DT] = TOOL_DT.get(tool, dt)
    out.metadata[WRITTEN_FOR] = tool
    for key in (CONVENTION, CONVENTION_REASON):
        out.metadata.pop(key, None)
    return ToolForm(out, tool, changes)
