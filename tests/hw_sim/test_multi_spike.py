"""Several spikes per step (floor(v / v_th)) and firing on v >= v_th, as sinabs and Rockpool
run: the reference and Lava agree in float (identical) and fixed point (bit-exact); the Loihi 2
target refuses both by node and field."""
import numpy as np
import pytest

from spikedeploy.hw_sim.check import check_graph
from spikedeploy.ir.lowering import lower
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.metadata import FIRE_AT_THRESHOLD, RESET_MODE, SPIKES_PER_STEP

from helpers import mlp_graph, run_both, spikes


def _multi(rng, reset="subtract", scale=4.0):
    graph = mlp_graph(rng, sizes=(12, 10, 5))
    for name in ("fc1", "fc2"):
        graph.nodes[name].weight = graph.nodes[name].weight * scale
    for name in ("lif1", "lif2"):
        graph.nodes[name].metadata = {SPIKES_PER_STEP: "multi", FIRE_AT_THRESHOLD: 1,
                                      RESET_MODE: reset}
    return graph


def test_multi_spike_counts_floor_v_over_threshold_and_subtracts_them(rng):
    graph = _multi(rng)
    program = lower(graph)
    x = spikes(rng, (20, 4, 12), 0.5)
    out = simulate(program, x, record_voltages=True)
    counts = out.records["lif1"]
    assert counts.max() >= 2 and np.all(counts == np.floor(counts))
    # every count leaves 0 <= v < v_th behind (subtractive reset of count x threshold)
    v = out.voltages["lif1"]
    th = program.ops["lif1"].params.v_th
    fired = counts > 0
    assert np.all(v[fired] < np.broadcast_to(th, v.shape)[fired] + 1e-12)


def test_fire_at_threshold_fires_on_equality():
    import nir
    one = np.ones(1)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1])),
        "if": nir.IF(r=one, v_threshold=one, v_reset=0 * one, metadata={FIRE_AT_THRESHOLD: 1}),
        "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "if"), ("if", "output")], metadata={"spikedeploy.dt": 1.0})
    x = np.full((6, 1, 1), 0.5)
    ge = simulate(lower(graph), x).records["if"].reshape(-1)
    graph.nodes["if"].metadata = {}
    gt = simulate(lower(graph), x).records["if"].reshape(-1)
    np.testing.assert_array_equal(ge, [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(gt, [0, 0, 1, 0, 0, 1])


@pytest.mark.lava
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_multi_spike_runs_identically_on_lava_float_and_bit_exact_in_fixed(rng, reset):
    graph = _multi(rng, reset)
    x = spikes(rng, (15, 3, 12), 0.5)
    runs = run_both(graph, x, fixed=True)
    assert runs["ref"].records["lif1"].max() >= 2
    assert runs["ref_fx"].records["lif1"].max() >= 2


def test_loihi2_refuses_multi_spikes_and_fire_at_threshold_by_field(rng):
    report = check_graph(_multi(rng), backend="loihi2")
    fields = {(p.node, p.field) for p in report.blocking()}
    assert ("lif1", SPIKES_PER_STEP) in fields and ("lif1", FIRE_AT_THRESHOLD) in fields


def test_multi_spike_needs_the_undelayed_in_step_reset(rng):
    graph = _multi(rng)
    graph.nodes["lif1"].metadata["spikedeploy.reset_delay"] = 1
    report = check_graph(graph, backend="reference")
    assert any(p.node == "lif1" and p.field == SPIKES_PER_STEP for p in report.problems)
