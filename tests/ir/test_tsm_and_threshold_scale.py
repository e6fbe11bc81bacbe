"""TSM per-step gains and threshold guidance, on the reference simulator and on Lava."""
import copy

import numpy as np
import pytest

from spikedeploy.errors import SpikedeployError, UnsupportedError
from spikedeploy.hw_sim.compare import compare_records
from spikedeploy.hw_sim.lava_runner import simulate_lava
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.ir.passes import scale_thresholds
from spikedeploy.ir.lowering import lower
from spikedeploy.metadata import TSM_GAIN

from helpers import mlp_graph

T = 10


def tsm_graph(rng, gains=None):
    graph = mlp_graph(rng, sizes=(16, 24, 8))
    for name in ("lif1", "lif2"):
        g = rng.uniform(0.6, 1.6, T) if gains is None else gains
        graph.nodes[name].metadata = {TSM_GAIN: np.asarray(g, np.float64)}
    return graph


def test_tsm_gain_scales_the_input_current_per_step(rng):
    graph = tsm_graph(rng)
    x = (rng.random((T, 5, 16)) < 0.4).astype(float)
    rec = simulate(lower(graph), x).records
    # hand loop of the documented update for lif1: u = p[t] * (W x + b), v = (1-dv) v + u
    node, fc = graph.nodes["lif1"], graph.nodes["fc1"]
    dv = 1e-4 / node.tau
    v = np.zeros((5, 24))
    for t in range(T):
        v = v * (1 - dv) + (node.metadata[TSM_GAIN][t]) * (x[t] @ fc.weight.T + fc.bias)
        z = v > node.v_threshold
        v = np.where(z, 0.0, v)
        np.testing.assert_array_equal(rec["lif1"][t], z)


def test_unit_tsm_gains_change_nothing_float_and_fixed(rng):
    plain = mlp_graph(np.random.default_rng(5), sizes=(16, 24, 8))
    unit = mlp_graph(np.random.default_rng(5), sizes=(16, 24, 8))
    for name in ("lif1", "lif2"):
        unit.nodes[name].metadata = {TSM_GAIN: np.ones(T)}
    x = (rng.random((T, 6, 16)) < 0.4).astype(float)
    a, b = lower(plain), lower(unit)
    assert compare_records(simulate(a, x), simulate(b, x)).agrees
    assert compare_records(simulate(a, x, "fixed"), simulate(b, x, "fixed")).agrees


def test_tsm_shorter_than_the_run_is_refused(rng):
    graph = tsm_graph(rng)
    x = np.zeros((T + 1, 1, 16))
    with pytest.raises(UnsupportedError, match="tsm_gain"):
        simulate(lower(graph), x)


@pytest.mark.lava
def test_tsm_on_lava_float_identical_fixed_bit_exact(rng):
    graph = tsm_graph(rng)
    program = lower(graph)
    x = (rng.random((T, 6, 16)) < 0.4).astype(float)
    ref = simulate(program, x)
    assert ref.records["lif1"].sum() > 0
    assert compare_records(ref, simulate_lava(graph, x, program=program)).agrees
    fixed = fxp.quantise(program)
    assert fixed.errors["lif1"]["tsm_gain"] < 1e-3
    ref_fx = simulate(program, x, "fixed", fixed)
    assert compare_records(ref_fx, simulate_lava(graph, x, "fixed", program=program)).agrees


def test_threshold_scale_changes_only_thresholds(rng):
    program = lower(mlp_graph(rng, sizes=(16, 24, 8)))
    x = (rng.random((T, 8, 16)) < 0.4).astype(float)
    before = copy.deepcopy(program.ops["lif1"].params.v_th)
    lower_th = scale_thresholds(program, 0.8)
    higher_th = scale_thresholds(program, 1.25)
    np.testing.assert_array_equal(program.ops["lif1"].params.v_th, before)   # original untouched
    np.testing.assert_allclose(lower_th.ops["lif1"].params.v_th, before * 0.8)
    n0 = simulate(program, x).records["lif1"].sum()
    assert simulate(lower_th, x).records["lif1"].sum() > n0 > simulate(higher_th, x).records["lif1"].sum()
    assert lower_th.meta("spikedeploy.threshold_scale") == 0.8
    with pytest.raises(SpikedeployError):
        scale_thresholds(program, 0.0)


@pytest.mark.lava
def test_threshold_scale_reaches_lava(rng):
    graph = mlp_graph(rng, sizes=(16, 24, 8))
    program = scale_thresholds(lower(graph), 0.7)
    x = (rng.random((T, 4, 16)) < 0.4).astype(float)
    assert compare_records(simulate(program, x), simulate_lava(graph, x, program=program)).agrees
