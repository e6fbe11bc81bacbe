"""Every NIR primitive on every backend: reference vs Lava, float and fixed point.

Each test builds a small graph with random parameters and checks that Lava's
floating-point run equals the reference simulator spike for spike (graded
readouts to rounding), and that Lava's fixed-point run equals the fixed
reference bit for bit. Several primitives share one graph and several
samples share one Lava run, to keep the Lava start-up cost down.
"""
import nir
import numpy as np
import pytest
import torch

from spikedeploy.errors import SpikedeployError, UnsupportedError
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.ir.lowering import lower
from spikedeploy.ir.ops import ConvOp, DelayOp, ScaleOp, ThresholdOp

from helpers import DT, chain, random_cuba_lif, random_lif, run_both, spikes



# --------------------------------------------------------------------------- reference maths

def test_conv_and_pool_match_torch(rng):
    """The ConvOp matrix is PyTorch's conv2d / avg_pool2d (stride, padding, dilation, groups)."""
    F = torch.nn.functional
    x = rng.normal(size=(3, 4, 9, 8))
    cases = [dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=1, k=(3, 2)),
             dict(stride=1, padding="same", dilation=(2, 1), groups=2, k=(2, 3)),
             dict(stride=(1, 3), padding="valid", dilation=1, groups=4, k=(3, 3))]
    for c in cases:
        w = rng.normal(size=(8, 4 // c["groups"]) + c["k"])
        g = chain({"input": nir.Input(input_type=np.array([4, 9, 8])),
                   "conv": nir.Conv2d(input_shape=None, weight=w, stride=c["stride"],
                                      padding=c["padding"], dilation=c["dilation"],
                                      groups=c["groups"], bias=np.zeros(8)),
                   "output": nir.Output(output_type=None)})
        op = lower(g).ops["conv"]
        want = F.conv2d(torch.tensor(x), torch.tensor(w), stride=c["stride"], padding=c["padding"],
                        dilation=c["dilation"], groups=c["groups"]).numpy()
        assert op.shape == want.shape[1:]
        np.testing.assert_allclose(op.apply(x.reshape(3, -1)), want.reshape(3, -1), atol=1e-12)
    for kind, pool in (("avg", nir.AvgPool2d), ("sum", nir.SumPool2d)):
        g = chain({"input": nir.Input(input_type=np.array([4, 9, 8])),
                   "pool": pool(kernel_size=np.array([2, 3]), stride=np.array([2, 2]),
                                padding=np.array([1, 1])),
                   "output": nir.Output(output_type=None)})
        op = lower(g).ops["pool"]
        want = F.avg_pool2d(torch.tensor(x), (2, 3), stride=2, padding=1).numpy()
        if kind == "sum":
            want = want * 6
        assert isinstance(op, ConvOp) and op.pool == kind and op.shape == want.shape[1:]
        np.testing.assert_allclose(op.apply(x.reshape(3, -1)), want.reshape(3, -1), atol=1e-12)


def test_delay_threshold_scale_reference(rng):
    x = rng.normal(size=(10, 2, 4))
    g = chain({"input": nir.Input(input_type=np.array([4])),
               "scale": nir.Scale(scale=np.array([1.0, -2.0, 0.5, 3.0])),
               "delay": nir.Delay(delay=np.array([0, 1, 3, 2]) * DT),
               "thr": nir.Threshold(threshold=np.array([0.1, -0.2, 0.3, 0.0])),
               "output": nir.Output(output_type=None)})
    p = lower(g)
    assert isinstance(p.ops["scale"], ScaleOp) and isinstance(p.ops["delay"], DelayOp)
    assert isinstance(p.ops["thr"], ThresholdOp)
    r = simulate(p, x)
    scaled = x * np.array([1.0, -2.0, 0.5, 3.0])
    delayed = np.zeros_like(scaled)
    for i, d in enumerate([0, 1, 3, 2]):
        delayed[d:, :, i] = scaled[:10 - d, :, i]
    np.testing.assert_array_equal(r.records["delay"], delayed)
    np.testing.assert_array_equal(r.records["output"], delayed > np.array([0.1, -0.2, 0.3, 0.0]))


def test_delay_not_multiple_of_dt_is_refused():
    g = chain({"input": nir.Input(input_type=np.array([2])),
               "delay": nir.Delay(delay=np.array([1.5, 1.0]) * DT),
               "output": nir.Output(output_type=None)})
    with pytest.raises(UnsupportedError, match="delay"):
        lower(g)


def test_bias_without_neuron_runs_on_reference_only(rng):
    g = chain({"input": nir.Input(input_type=np.array([3])),
               "fc": nir.Affine(weight=rng.normal(size=(2, 3)), bias=np.array([0.5, -1.0])),
               "output": nir.Output(output_type=None)})
    p = lower(g)
    r = simulate(p, np.zeros((2, 1, 3)))
    np.testing.assert_allclose(r.records["output"][:, 0], [[0.5, -1.0]] * 2)


def test_scale_chain_in_fixed_is_refused(rng):
    g = chain({"input": nir.Input(input_type=np.array([3])),
               "scale": nir.Scale(scale=rng.uniform(0.5, 2, 3)),
               "fc": nir.Linear(weight=rng.normal(size=(2, 3))),
               "lif": random_lif(rng, (2,)),
               "output": nir.Output(output_type=None)})
    with pytest.raises(UnsupportedError, match="scale.*weight|integer multiples"):
        fxp.quantise(lower(g))


def test_scalar_neuron_parameters_broadcast(rng):
    nodes = {"input": nir.Input(input_type=np.array([3])),
               "fc": nir.Linear(weight=rng.normal(size=(4, 3))),
               "lif": nir.LIF(tau=np.array(2 * DT), r=np.array(2.0), v_leak=np.array(0.0),
                              v_threshold=np.array(1.0), v_reset=np.array(0.0)),
             "output": nir.Output(output_type=None)}
    names = list(nodes)
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])),
                     metadata={"spikedeploy.dt": DT}, type_check=False)   # NIR rejects scalars
    assert lower(g).ops["lif"].shape == (4,)
    for key in ("tau", "r", "v_leak", "v_threshold", "v_reset"):   # single values of shape (1, 1)
        setattr(nodes["lif"], key, np.asarray(getattr(nodes["lif"], key)).reshape(1, 1))
    program = lower(g)
    assert program.ops["lif"].shape == (4,) and program.ops["lif"].params.v_th.shape == (4,)


# --------------------------------------------------------------------------- Lava

@pytest.mark.lava
def test_spiking_cnn(rng):
    """Conv2d -> LIF -> SumPool2d -> Conv2d -> LIF -> AvgPool2d -> Flatten -> Affine -> LIF."""
    c0, h, w = 2, 8, 8
    g = chain({
        "input": nir.Input(input_type=np.array([c0, h, w])),
        "conv1": nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.8, (4, c0, 3, 3)), stride=1,
                            padding=1, dilation=1, groups=1, bias=rng.normal(0, 0.1, 4)),
        "lif1": random_lif(rng, (4, h, w)),
        "sumpool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                 padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.8, (6, 2, 3, 2)),
                            stride=(1, 2), padding=(1, 0), dilation=1, groups=2,
                            bias=rng.normal(0, 0.1, 6)),
        "lif2": random_lif(rng, (6, 4, 2)),
        "avgpool": nir.AvgPool2d(kernel_size=np.array([2, 1]), stride=np.array([2, 1]),
                                 padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type=None, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 1.0, (5, 24)), bias=rng.normal(0, 0.1, 5)),
        "lif3": random_lif(rng, (5,)),
        "output": nir.Output(output_type=None)})
    runs = run_both(g, spikes(rng, (10, 5, c0, h, w)))
    assert runs["lava"].latency == 5      # conv1, sumpool, conv2, avgpool, fc: one step each


@pytest.mark.lava
def test_conv_same_even_kernel_dilation_cubalif_if(rng):
    """'same' with an even kernel (asymmetric: runs as Sparse), dilation, graded input, CubaLIF, IF."""
    g = chain({
        "input": nir.Input(input_type=np.array([2, 6, 5])),
        "conv1": nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.6, (3, 2, 2, 3)), stride=1,
                            padding="same", dilation=1, groups=1, bias=rng.normal(0, 0.1, 3)),
        "cuba": random_cuba_lif(rng, (3, 6, 5), v_leak=0.05, v_reset=-0.1),
        "conv2": nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.8, (4, 3, 2, 2)), stride=1,
                            padding="valid", dilation=(2, 1), groups=1, bias=np.zeros(4)),
        "if": nir.IF(r=np.repeat(rng.uniform(0.5, 1.5, (4, 1, 1)), 4, 1).repeat(4, 2) / DT, v_threshold=rng.uniform(0.8, 1.2, (4, 4, 4)),
                     v_reset=np.zeros((4, 4, 4))),
        "output": nir.Output(output_type=None)})
    p = lower(g)
    assert not p.ops["conv1"].lava_native and p.ops["conv2"].lava_native
    p_bad = lower(g)
    p_bad.ops["if"].params.gain = p_bad.ops["if"].params.gain * rng.uniform(0.5, 1.5, (4, 4, 4))
    with pytest.raises(UnsupportedError, match="gain per channel"):
        fxp.quantise(p_bad)      # a shared kernel cannot carry a per-position gain
    x = np.round(rng.uniform(0, 1.5, (10, 4, 2, 6, 5)) * 8) / 8     # graded, exact at scale 8
    run_both(g, x, input_scale=8.0)


@pytest.mark.lava
def test_readouts_threshold_scale_multiple_outputs(rng):
    """LI, CubaLI, I readouts (send v), Threshold, Scale, a graded LI -> Affine -> LIF path."""
    n_in = 6
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc1": nir.Affine(weight=rng.normal(0, 1.0, (5, n_in)), bias=rng.normal(0, 0.1, 5)),
        "li": nir.LI(tau=DT / (1 - rng.uniform(0.6, 0.9, 5)), r=rng.uniform(0.5, 2, 5),
                     v_leak=rng.normal(0, 0.1, 5)),
        "fc2": nir.Linear(weight=rng.normal(0, 1.0, (4, 5))),
        "lif": random_lif(rng, (4,), v_reset=rng.uniform(-0.2, 0.2, 4)),
        "fc3": nir.Linear(weight=rng.normal(0, 1.0, (3, 4))),
        "cubali": nir.CubaLI(tau_syn=DT / (1 - rng.uniform(0.5, 0.8, 3)),
                             tau_mem=DT / (1 - rng.uniform(0.7, 0.9, 3)), r=rng.uniform(0.5, 2, 3),
                             v_leak=np.zeros(3), w_in=rng.uniform(0.5, 2, 3)),
        "fc4": nir.Linear(weight=rng.normal(0, 1.0, (2, 4))),
        "integ": nir.I(r=rng.uniform(0.5, 2, 2) / DT),
        "scale": nir.Scale(scale=rng.uniform(0.5, 3, 4)),
        "thr": nir.Threshold(threshold=rng.uniform(0.5, 1.5, 4)),
        "fc5": nir.Linear(weight=rng.normal(0, 1.0, (4, 4))),
        "thr2": nir.Threshold(threshold=rng.uniform(0.1, 0.5, 4)),
        "out_li": nir.Output(output_type=None), "out_cubali": nir.Output(output_type=None),
        "out_i": nir.Output(output_type=None), "out_thr": nir.Output(output_type=None),
        "out_thr2": nir.Output(output_type=None),
    }
    edges = [("input", "fc1"), ("fc1", "li"), ("li", "fc2"), ("fc2", "lif"), ("lif", "fc3"),
             ("fc3", "cubali"), ("lif", "fc4"), ("fc4", "integ"), ("lif", "scale"),
             ("scale", "thr"), ("lif", "fc5"), ("fc5", "thr2"), ("li", "out_li"),
             ("cubali", "out_cubali"), ("integ", "out_i"), ("thr", "out_thr"),
             ("thr2", "out_thr2")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": DT})
    runs = run_both(g, spikes(rng, (12, 5, n_in), 0.4), min_spikes=3)
    assert runs["lava"].records["out_li"].std() > 0


def test_multiple_inputs_need_dict(rng):
    g = nir.NIRGraph(nodes={"a": nir.Input(input_type=np.array([2])),
                            "b": nir.Input(input_type=np.array([2])),
                            "o": nir.Output(output_type=None)},
                     edges=[("a", "o"), ("b", "o")], metadata={"spikedeploy.dt": DT})
    p = lower(g)
    with pytest.raises(SpikedeployError, match="dict"):
        simulate(p, np.zeros((2, 1, 2)))
    r = simulate(p, {"a": np.ones((2, 1, 2)), "b": np.ones((2, 1, 2))})
    assert np.all(r.records["o"] == 2)


def test_conv1d_matches_torch_and_runs_on_lava(rng):
    """Conv1d lowers as a height-1 Conv2d: torch's conv1d numbers, Lava float and fixed equal."""
    import torch
    cin, cout, length = 2, 4, 12
    w = rng.normal(0, 0.8, (cout, cin, 3))
    b = rng.normal(0, 0.1, cout)
    conv = nir.Conv1d(input_shape=length, weight=w, stride=1, padding=1, dilation=2, groups=1,
                      bias=b)
    out_len = length + 2 - 2 * 2
    nodes = {"input": nir.Input(input_type=np.array([cin, length])), "conv": conv,
             "lif": random_lif(rng, (cout, out_len)),
             "output": nir.Output(output_type=np.array([cout, out_len]))}
    graph = chain(nodes)
    program = lower(graph)
    assert isinstance(program.ops["conv"], ConvOp) and program.ops["conv"].size == cout * out_len
    x = spikes(rng, (10, 5, cin, length), p=0.5)
    expected = torch.nn.functional.conv1d(torch.from_numpy(x[0]), torch.from_numpy(w),
                                          torch.from_numpy(b), padding=1, dilation=2)
    got = program.ops["conv"].apply(x[0].reshape(5, -1)) + program.ops["lif"].params.input_bias.reshape(-1)
    np.testing.assert_allclose(got, expected.reshape(5, -1).numpy(), rtol=1e-12, atol=1e-12)
    run_both(graph, x)
