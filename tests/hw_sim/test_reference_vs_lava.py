"""Reference simulator vs Lava on the spine's primitives (Affine/Linear -> LIF)."""
import os

import nir
import numpy as np
import pytest

from spikedeploy.hw_sim.compare import compare_records
from spikedeploy.hw_sim.lava_runner import simulate_lava
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.ir.lowering import lower

from helpers import mlp_graph, processes, stat_fields

pytestmark = pytest.mark.lava


@pytest.mark.parametrize("encoding", ["spikes", "graded"])
def test_mlp_float_and_fixed_identical(rng, encoding):
    graph = mlp_graph(rng, sizes=(20, 32, 16, 10))
    program = lower(graph)
    if encoding == "spikes":
        x, scale = (rng.random((12, 6, 20)) < 0.3).astype(float), 1.0
    else:  # integer levels / 16, as direct-encoded digits
        x, scale = rng.integers(0, 17, (12, 6, 20)) / 16.0, 16.0
    ref = simulate(program, x)
    lava = simulate_lava(graph, x, program=program)
    assert lava.latency == 3
    comp = compare_records(ref, lava)
    assert [layer.layer for layer in comp.layers] == ["input", "lif1", "lif2", "lif3", "output"]
    assert comp.agrees, comp.to_dict()
    assert ref.records["lif1"].sum() > 0 and ref.records["output"].sum() > 0

    fixed = fxp.quantise(program, input_scale=scale)
    ref_fx = simulate(program, x, "fixed", fixed)
    lava_fx = simulate_lava(graph, x, "fixed", input_scale=scale, program=program)
    comp_fx = compare_records(ref_fx, lava_fx)
    assert comp_fx.agrees, comp_fx.to_dict()
    # quantisation changes few spikes relative to float
    assert np.mean(ref_fx.records["lif1"] == ref.records["lif1"]) > 0.95


def test_fixed_saturation_and_rounding_bit_exact(rng):
    """Large weights and a bias push v into the 24-bit clip; still bit-exact."""
    graph = mlp_graph(rng, sizes=(30, 12), weight_std=3.0, bias_std=2.0)
    graph.nodes["lif1"].v_threshold[:] = 50.0     # rarely fires: v grows to the clip
    graph.nodes["lif1"].tau[:] = 1e6               # almost no leak (dv rounds to 0)
    program = lower(graph)
    x = (rng.random((40, 4, 30)) < 0.8).astype(float)
    fixed = fxp.quantise(program)
    ref = simulate(program, x, "fixed", fixed)
    lava = simulate_lava(graph, x, "fixed", program=program)
    assert compare_records(ref, lava).agrees


def test_fixed_bias_beyond_lavas_int32_range_stays_bit_exact(rng):
    """A bias whose integer form (mantissa << exponent) exceeds int32: it is clipped where the
    24-bit voltage saturates anyway, so Lava's int32 Vars hold it and results stay exact."""
    tau = np.full(4, 2e-4)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([3])),
        "fc": nir.Linear(weight=np.full((4, 3), 0.002)),
        "li": nir.LI(tau=tau, r=tau / 1e-4, v_leak=np.array([600.0, -600.0, 0.5, 0.0])),
        "output": nir.Output(output_type=np.array([4]))},
        edges=[("input", "fc"), ("fc", "li"), ("li", "output")],
        metadata={"spikedeploy.dt": 1e-4})
    program = lower(graph)
    fixed = fxp.quantise(program)
    v_unit = fixed.scales["li"]                     # a non-spiking neuron outputs v
    mant, exp = fxp.bias_mant_exp(np.round(program.ops["li"].params.bias * v_unit))
    assert (mant << exp)[0] > 2 ** 31                # unclipped, int32 would wrap it
    assert fixed.params["li"].bias.tolist()[:2] == [fxp.BIAS_LIMIT, -fxp.BIAS_LIMIT]
    x = (rng.random((6, 2, 3)) < 0.5).astype(float)
    ref = simulate(program, x, "fixed", fixed)
    assert np.all(ref.records["li"][:, :, 0] == fxp.UV_MAX - 1)     # saturated, as unclipped
    lava = simulate_lava(graph, x, "fixed", program=program, fixed=fixed)
    assert compare_records(ref, lava).agrees


def test_no_lava_processes_or_shared_memory_left(rng, monkeypatch):
    monkeypatch.setenv("SPIKEDEPLOY_TEST_TAG", TAG)
    graph = mlp_graph(rng)
    x = (rng.random((5, 2, 20)) < 0.3).astype(float)
    before = set(os.listdir("/dev/shm"))
    simulate_lava(graph, x)
    assert _lava_worker_processes() == []
    assert set(os.listdir("/dev/shm")) - before == set()


def test_timed_out_run_is_killed_and_cleaned_up(rng, monkeypatch):
    monkeypatch.setenv("SPIKEDEPLOY_TEST_TAG", TAG)
    from spikedeploy.errors import SpikedeployError
    graph = mlp_graph(rng)
    x = (rng.random((2000, 4, 20)) < 0.3).astype(float)
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(SpikedeployError, match="time limit"):
        simulate_lava(graph, x, timeout=3)
    assert _lava_worker_processes() == []
    assert set(os.listdir("/dev/shm")) - before == set()


TAG = f"lava-leak-check-{os.getpid()}"


def _lava_worker_processes():
    """Live processes started by this test's Lava runs (they inherit TAG in their environment)."""
    tag = f"SPIKEDEPLOY_TEST_TAG={TAG}".encode()
    return [pid for pid, f in processes("environ", "stat")
            if tag in f["environ"] and stat_fields(f["stat"])[0] != "Z" and pid != os.getpid()]


def test_reference_records_voltages_on_request(rng):
    graph = mlp_graph(rng, sizes=(20, 12, 5))
    program = lower(graph)
    x = (rng.random((6, 3, 20)) < 0.5).astype(float)
    plain = simulate(program, x)
    with_v = simulate(program, x, record_voltages=True)
    assert plain.voltages == {}
    assert set(with_v.voltages) == {"lif1", "lif2"}
    v = with_v.voltages["lif1"]
    assert v.shape == (6, 3, 12)
    # after a spike the zero reset leaves v at 0; below threshold otherwise
    spikes = with_v.records["lif1"].astype(bool)
    assert np.all(v[spikes] == 0)
    threshold = np.broadcast_to(graph.nodes["lif1"].v_threshold, v.shape)
    assert np.all(v[~spikes] <= threshold[~spikes])


def test_failed_lava_run_leaves_nothing_behind(rng, monkeypatch):
    """An error raised inside the Lava worker: one-line error, no processes, no shm left."""
    from spikedeploy.errors import SpikedeployError
    from spikedeploy.metadata import TSM_GAIN
    monkeypatch.setenv("SPIKEDEPLOY_TEST_TAG", TAG)
    graph = mlp_graph(rng)
    graph.nodes["lif1"].metadata = {TSM_GAIN: np.ones(3)}   # gains for 3 steps, run has 8
    x = (rng.random((8, 2, 20)) < 0.3).astype(float)
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(SpikedeployError, match="tsm_gain") as info:
        simulate_lava(graph, x)
    assert "\n" not in str(info.value)
    assert _lava_worker_processes() == []
    assert set(os.listdir("/dev/shm")) - before == set()
