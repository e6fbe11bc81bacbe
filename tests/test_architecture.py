"""The extension points stay in step and the stages stay one-way.

* Registry coverage: every op type a NIR lowering can produce has a float and
  a fixed reference runner, a Lava lowering (or a reasoned refusal), a
  fixed-point quantisation rule, a Loihi 2 target rule and stock-process
  lowering and, when synaptic, an energy fan-out rule;
  ``spikedeploy check`` derives its verdicts from those same tables.
* Import rules (read with ``ast``, function-level imports included): no
  module imports a later stage or ``deploy``, and there are no import cycles.
"""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import nir
import numpy as np
import pytest

from spikedeploy.energy.fanout import FANOUT
from spikedeploy.hw_sim.check import check_graph
from spikedeploy.hw_sim.lava_builders import BUILDERS
from spikedeploy.hw_sim.loihi2.stock_builders import STOCK_BUILDERS
from spikedeploy.hw_sim.loihi2.target import LOIHI2_RULES
from spikedeploy.hw_sim import reference_torch
from spikedeploy.hw_sim.reference import FIXED_RUNNERS, FLOAT_RUNNERS, simulate
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.ir import ops as ops_module
from spikedeploy.ir.lowering import LOWERINGS, Lowering, lower
from spikedeploy.ir.op_table import OpTable, Refusal
from spikedeploy.ir.ops import OP_TYPES, DenseOp, Op, ScaleOp, SynapticOp
from spikedeploy.ir.semantics import NeuronParams

from helpers import chain, mlp_graph, random_lif

TABLES: dict[str, OpTable] = {
    "float reference runner": FLOAT_RUNNERS,
    "fixed reference runner": FIXED_RUNNERS,
    "float reference runner (torch)": reference_torch.FLOAT_RUNNERS,
    "fixed reference runner (torch)": reference_torch.FIXED_RUNNERS,
    "Lava lowering": BUILDERS,
    "quantisation rule": fxp.QUANTISERS,
    "Loihi 2 target rule": LOIHI2_RULES,
    "Loihi 2 stock-process lowering": STOCK_BUILDERS,
}
PRODUCED = sorted({entry.produces for entry in LOWERINGS.values()}, key=lambda t: t.__name__)


# --- registry coverage ---------------------------------------------------------------

def test_op_types_lists_every_op_class_the_lowerings_produce():
    assert set(PRODUCED) == set(OP_TYPES)
    concrete = {cls for cls in vars(ops_module).values()
                if isinstance(cls, type) and issubclass(cls, Op) and dataclasses.is_dataclass(cls)
                and cls not in (Op, SynapticOp) and cls.__module__ == ops_module.__name__}
    assert concrete == set(OP_TYPES), "an op class no lowering produces, or one OP_TYPES misses"


@pytest.mark.parametrize("op_type", PRODUCED, ids=lambda t: t.__name__)
@pytest.mark.parametrize("table", list(TABLES), ids=list(TABLES))
def test_every_produced_op_type_has_an_entry_or_a_reasoned_refusal(op_type, table):
    entry = TABLES[table].get(op_type)
    assert entry is not None, f"{op_type.__name__} has no {table}"
    if isinstance(entry, Refusal):
        assert len(entry.reason) > 20, f"{table} refuses {op_type.__name__} without a reason"
    else:
        assert callable(entry) or callable(getattr(entry, "build", None))


@pytest.mark.parametrize("op_type", [t for t in PRODUCED if t.synaptic], ids=lambda t: t.__name__)
def test_every_synaptic_op_type_has_a_fan_out_rule(op_type):
    assert callable(FANOUT.get(op_type))


def test_lookup_is_by_exact_class_so_a_subclass_inherits_nothing():
    class TwiceScale(ScaleOp):
        """A new primitive that happens to subclass Scale but computes something else."""
    op = TwiceScale("twice", (3,), scale=np.ones(3))
    for name, table in TABLES.items():
        assert table.problem(op) is not None, name


def _graph_with(rng):
    return chain({"input": nir.Input(input_type=np.array([3])),
                  "fc": nir.Affine(weight=rng.normal(size=(4, 3)), bias=rng.normal(size=4)),
                  "lif": random_lif(rng, (4,)),
                  "out": nir.Output(output_type=None)})


@pytest.mark.parametrize("table,backend", [
    (FLOAT_RUNNERS, "reference-float"), (FIXED_RUNNERS, "reference-fixed"),
    (fxp.QUANTISERS, "reference-fixed"), (BUILDERS, "lava-float")])
def test_check_derives_its_verdict_from_the_tables(monkeypatch, rng, table, backend):
    graph = _graph_with(rng)
    precision = "fixed" if backend.endswith("fixed") else "float"
    assert check_graph(graph, precision=precision).ok
    monkeypatch.delitem(table, DenseOp)
    report = check_graph(graph, precision=precision)
    assert not report.ok
    problem = next(p for p in report.problems if p.node == "fc")
    assert problem.backend == backend and problem.field == "type"
    fc = next(n for n in report.nodes if n.name == "fc")
    assert fc.backends[backend] is False
    monkeypatch.setitem(table, DenseOp, Refusal("refused here for a reason the user can read"))
    report = check_graph(graph, precision=precision)
    assert any(p.reason == "refused here for a reason the user can read" and p.backend == backend
               for p in report.problems)


def test_a_new_primitive_with_no_backend_entries_is_refused_by_check_and_the_runs(monkeypatch, rng):
    """A lowering producing a new op class: check and every backend refuse it, naming it."""
    class HalfOp(Op):
        pass
    monkeypatch.setitem(LOWERINGS, nir.Scale, Lowering(
        lambda name, node, in_shape, dt: HalfOp(name, tuple(in_shape)), HalfOp))
    graph = chain({"input": nir.Input(input_type=np.array([3])),
                   "half": nir.Scale(scale=np.full(3, 0.5)),
                   "lif": random_lif(rng, (3,)), "out": nir.Output(output_type=None)})
    report = check_graph(graph)
    assert {p.backend for p in report.problems if p.node == "half"} >= {
        "reference-float", "reference-fixed", "lava-float"}
    with pytest.raises(Exception, match="half"):
        simulate(lower(graph), np.zeros((2, 1, 3)))


@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_check_ok_exactly_when_the_reference_run_works(rng, precision):
    """check's verdict for the reference backend agrees with what simulate does."""
    scale_chain = chain({"input": nir.Input(input_type=np.array([3])),
                         "scale": nir.Scale(scale=rng.uniform(0.5, 2, 3)),
                         "fc": nir.Linear(weight=rng.normal(size=(2, 3))),
                         "lif": random_lif(rng, (2,)), "output": nir.Output(output_type=None)})
    verdicts = []
    for graph in (mlp_graph(rng), _graph_with(rng), scale_chain):
        ok = check_graph(graph, backend="reference", precision=precision).ok
        size = int(np.prod(graph.nodes["input"].input_type["input"]))
        try:
            simulate(lower(graph), (rng.random((3, 2, size)) < 0.5).astype(float), precision)
            ran = True
        except Exception:   # noqa: BLE001 - any refusal counts as "does not run"
            ran = False
        assert ok == ran, (precision, list(graph.nodes))
        verdicts.append(ok)
    assert verdicts == [True, True, precision == "float"]   # the Scale chain has no fixed form


def test_every_neuron_parameter_is_flattened_and_quantised_from_its_field():
    """Every per-neuron field of NeuronParams has a fixed-point encoding and a Lava width, and
    flattening and quantisation produce it (the Lava process builds its Vars from the same
    fields, tests/hw_sim runs it)."""
    fields = NeuronParams.per_neuron_fields()
    assert {"du", "dv", "v_th", "v_init"} <= {f.name for f in fields}
    program = lower(mlp_graph(np.random.default_rng(0), sizes=(4, 3)))
    params = program.ops["lif1"].params
    fixed = fxp.quantise(program).params["lif1"]
    flat = params.flat()
    for f in fields:
        assert f.metadata["unit"] in fxp.FIXED_ENCODINGS, f.name
        assert isinstance(f.metadata["bits"], int) and f.metadata["bits"] > 0, f.name
        assert np.asarray(getattr(fixed, f.name)).dtype == np.int64, f.name
        assert np.shape(getattr(flat, f.name)) == (3,), f.name
    single = NeuronParams(**{f.name: np.full((1, 1), 0.5) for f in fields})
    assert all(np.shape(getattr(single.broadcast((4,)), f.name)) == (4,) for f in fields)


# --- import rules ---------------------------------------------------------------------

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "spikedeploy"
# Stages in pipeline order, and the earlier stages each may import besides its own and the
# base modules (errors, fileio, metadata, readout, compat). Data flows models -> export ->
# (a NIR file) -> ir -> hw_sim -> energy: ir, hw_sim and energy never need the torch side.
STAGES = ["models", "export", "ir", "hw_sim", "energy", "deploy"]
MAY_IMPORT = {"models": set(), "export": {"models"}, "ir": set(), "hw_sim": {"ir"},
              "energy": {"ir", "hw_sim"}, "deploy": set(STAGES)}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(target: str) -> str:
    """The module a dotted name lives in (a name inside a module resolves to the module)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target


def _imports(name: str, path: Path) -> set[str]:
    """The spikedeploy modules ``name`` imports, anywhere in the file."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {_resolve(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule; ``from mod import x`` the module
            out |= {_resolve(f"{base}.{alias.name}") for alias in node.names}
    # Importing a module of another package first runs that package's __init__.
    own = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for target in list(out):
        package = target.rpartition(".")[0]
        while package.startswith(PACKAGE + ".") and not own.startswith(package):
            out.add(package)
            package = package.rpartition(".")[0]
    return {t for t in out if t.startswith(PACKAGE) and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _stage(module: str) -> str | None:
    if module == "spikedeploy.__main__":       # `python -m spikedeploy`: the CLI's entry point
        return "deploy"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_the_import_graph_was_read():
    assert "spikedeploy.ir.lowering" in GRAPH["spikedeploy.hw_sim.check"]
    assert "spikedeploy.models.neurons" in GRAPH["spikedeploy.models.naming"]
    assert len(MODULES) > 50


def test_no_module_imports_a_later_stage_or_deploy():
    bad = []
    for module, imported in GRAPH.items():
        mine = _stage(module)
        for target in imported:
            theirs = _stage(target)
            if theirs is None or theirs == mine:
                continue
            if mine is None:
                bad.append(f"{module} (a base module) imports stage {target}")
            elif STAGES.index(theirs) > STAGES.index(mine):
                bad.append(f"{module} imports later stage {target}")
            elif theirs not in MAY_IMPORT[mine]:
                bad.append(f"{module} imports {target}: {mine} does not consume {theirs}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):      # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not cycles, cycles
