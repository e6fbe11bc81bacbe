"""Helpers shared by the tests: graph builders, random inputs, backend comparisons.

Imported as ``from helpers import ...`` (pytest puts ``tests/`` on the path,
see pyproject.toml); fixtures live in ``conftest.py``.
"""
from __future__ import annotations

import nir
import numpy as np

from spikedeploy.export import write_nir
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.ir.load import read_nir
from spikedeploy.ir.lowering import lower

DT = 1e-4


# --- NIR nodes and graphs -------------------------------------------------------------

def lif_node(beta, threshold, v_reset=None, v_leak=None, dt=DT):
    """nir.LIF with snnTorch's conventions: tau = dt/(1-beta), r = tau/dt (unit input gain)."""
    beta = np.asarray(beta, np.float64)
    tau = dt / (1 - beta)
    return nir.LIF(tau=tau, r=tau / dt,
                   v_leak=np.zeros_like(beta) if v_leak is None else v_leak,
                   v_threshold=np.asarray(threshold, np.float64),
                   v_reset=np.zeros_like(beta) if v_reset is None else v_reset)


def random_lif(rng, shape, beta=(0.7, 0.95), threshold=(0.8, 1.2), **kw):
    """lif_node with beta and threshold drawn uniformly from the given ranges."""
    return lif_node(rng.uniform(*beta, shape), rng.uniform(*threshold, shape), **kw)


def random_cuba_lif(rng, shape, v_leak=0.0, v_reset=0.0):
    alpha, beta = rng.uniform(0.5, 0.9, shape), rng.uniform(0.7, 0.95, shape)
    ts, tm = DT / (1 - alpha), DT / (1 - beta)
    return nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=tm / DT, v_leak=np.full(shape, v_leak),
                       v_threshold=rng.uniform(0.8, 1.2, shape), v_reset=np.full(shape, v_reset),
                       w_in=ts / DT)


def mlp_graph(rng, sizes=(20, 32, 10), weight_std=0.5, bias_std=0.1, dt=DT):
    """Input -> (Affine -> LIF) x len(sizes)-1 -> Output, random per-neuron params."""
    nodes = {"input": nir.Input(input_type=np.array([sizes[0]]))}
    edges, prev = [], "input"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        nodes[f"fc{i}"] = nir.Affine(weight=rng.normal(0, weight_std, (n_out, n_in)),
                                     bias=rng.normal(0, bias_std, n_out))
        nodes[f"lif{i}"] = lif_node(rng.uniform(0.7, 0.97, n_out), rng.uniform(0.7, 1.3, n_out))
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type=np.array([sizes[-1]]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": dt})


def chain(nodes: dict, extra_edges=()):
    """The nodes in insertion order, each feeding the next (plus ``extra_edges``)."""
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])) + list(extra_edges),
                        metadata={"spikedeploy.dt": DT}, type_check=False)


def through_file(graph: nir.NIRGraph, tmp_path, name="m.nir"):
    """Write, read back and lower: (graph as read, Program)."""
    path = write_nir(graph, tmp_path / name)
    read = read_nir(path)
    return read, lower(read)


# --- inputs ---------------------------------------------------------------------------

def spikes(rng, shape, p=0.3):
    return (rng.random(shape) < p).astype(np.float64)


# --- backend comparisons ----------------------------------------------------------------

def assert_engines_agree(program, x, base, precision="float", fixed=None, **options):
    """The torch engine (and ``options``, e.g. another dtype) against the run ``base``:
    spikes and every fixed-point value identical, float currents and voltages within
    rounding (the engines' BLAS may sum in another order)."""
    other = simulate(program, x, precision, fixed, engine=options.pop("engine", "torch"),
                     **options)
    assert set(other.records) == set(base.records)
    for name, rec in base.records.items():
        op = program.ops[name]
        exact = precision == "fixed" or (hasattr(op, "params") and op.params.spiking)
        if exact:
            assert np.array_equal(rec, other.records[name]), (
                f"{precision} {name}: {int(np.sum(rec != other.records[name]))} values differ")
        else:
            np.testing.assert_allclose(other.records[name], rec, rtol=1e-12, atol=1e-12,
                                       err_msg=name)
    return other


def run_both(graph, x, fixed=True, input_scale=1.0, min_spikes=5):
    """Reference vs Lava in float (identical spikes) and fixed (bit-exact), and the numpy vs
    the torch engine of the reference; returns the runs."""
    from spikedeploy.hw_sim.lava_runner import simulate_lava
    program = lower(graph)
    ref = simulate(program, x, engine="numpy")
    assert_engines_agree(program, x, ref)
    lava = simulate_lava(graph, x, program=program)
    assert set(lava.records) <= set(ref.records)
    for name, rec in lava.records.items():
        op = program.ops[name]
        graded = not (hasattr(op, "params") and op.params.spiking) and name not in program.inputs
        if graded:
            np.testing.assert_allclose(rec, ref.records[name], rtol=1e-9, atol=1e-9, err_msg=name)
        else:
            assert np.array_equal(rec, ref.records[name]), (
                f"{name}: {int(np.sum(rec != ref.records[name]))} spikes differ")
    fired = {n: ref.records[n].sum() for n, op in program.ops.items()
             if hasattr(op, "params") and op.params.spiking}
    assert all(v >= min_spikes for v in fired.values()), f"too few spikes to test: {fired}"
    runs = {"ref": ref, "lava": lava}
    if fixed:
        fx = fxp.quantise(program, input_scale=input_scale)
        ref_fx = simulate(program, x, "fixed", fx, engine="numpy")
        assert_engines_agree(program, x, ref_fx, "fixed", fx)
        lava_fx = simulate_lava(graph, x, "fixed", input_scale=input_scale, program=program)
        for name, rec in lava_fx.records.items():
            assert np.array_equal(rec, ref_fx.records[name]), (
                f"fixed {name}: {int(np.sum(rec != ref_fx.records[name]))} values differ")
        runs.update(ref_fx=ref_fx, lava_fx=lava_fx)
    return runs


def _value(v):
    v = v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v
    return v.decode() if isinstance(v, bytes) else v


def assert_metadata_round_trip(written: nir.NIRGraph, read: nir.NIRGraph) -> None:
    """Every node's and the graph's metadata came back from the file unchanged."""
    pairs = [(written.metadata, read.metadata)] + \
        [(node.metadata, read.nodes[name].metadata) for name, node in written.nodes.items()]
    for a, b in pairs:
        assert set(a) == set(b)
        for key, value in a.items():
            got = _value(b[key])
            if isinstance(value, np.ndarray):
                assert np.asarray(got).dtype == np.float64 or value.dtype != np.float64, key
                np.testing.assert_array_equal(np.asarray(got), value, err_msg=key)
            else:
                assert got == value, key


def assert_spikes_equal(snn: dict, result, layers=None, min_rate: float = 0.0) -> list[str]:
    """Every layer both recorded is identical (after flattening per sample); returns them."""
    names = [n for n in result.program.ops if n in snn and n in result.records]
    if layers is not None:
        assert set(layers) <= set(names), (layers, names)
    assert names
    for name in names:
        a = snn[name].reshape(result.records[name].shape)
        b = result.records[name]
        assert np.array_equal(a, b), f"layer {name}: {np.count_nonzero(a != b)} differ"
    for name in layers or []:
        assert np.mean(snn[name] != 0) > min_rate, f"{name} is nearly silent: the test needs activity"
    return names


def sim_and_snn(model, graph, x, tmp_path):
    """(graph as read back, Program, reference run, snnTorch run) of one model and input."""
    from spikedeploy.models import run_snntorch
    read, program = through_file(graph, tmp_path)
    return read, program, simulate(program, x), run_snntorch(model, x)


# --- processes ---------------------------------------------------------------------------

def processes(*files: str):
    """(pid, {file: bytes}) for every live process whose /proc/<pid>/<file>s could be read."""
    import os
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            contents = {}
            for name in files:
                with open(f"/proc/{entry}/{name}", "rb") as f:
                    contents[name] = f.read()
        except OSError:
            continue
        yield int(entry), contents


def stat_fields(stat: bytes) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, ..."""
    return stat.decode().rsplit(")", 1)[1].split()


def lava_workers() -> set:
    """Pids of every live Lava worker process (ours have this module in their command line)."""
    return {pid for pid, f in processes("cmdline")
            if b"spikedeploy.hw_sim.lava_worker" in f["cmdline"]}
