"""The Loihi 2 target: stock Lava processes and lava-dl netx files against the fixed reference.

Random graphs with one decay per population (what the target accepts) run
three ways on the same integers: the fixed reference simulator, our
lowering to Lava's stock processes (LIFReset, Dense, Conv, DelayDense), and
the netx file spikedeploy writes, loaded by lava-dl's own ``hdf5.Network``.
Every recorded layer must be bit-identical after latency alignment.
"""
import h5py
import nir
import numpy as np
import pytest

from spikedeploy.errors import UnsupportedError
from spikedeploy.hw_sim.loihi2.netx_file import netx_chain, netx_problems, write_netx
from spikedeploy.hw_sim.loihi2.run import reference_loihi2, simulate_loihi2
from spikedeploy.hw_sim.loihi2.target import compile_loihi2, loihi2_problems
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir.lowering import lower

from helpers import DT, lif_node, spikes


def _g(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": DT},
                        type_check=False)


def shared_lif(rng, shape, beta=None):
    """One beta per population, thresholds per neuron (per channel for maps), which the
    target folds into the weights."""
    beta = rng.uniform(0.75, 0.95) if beta is None else beta
    th = rng.uniform(0.6, 1.2, shape[:1])
    return lif_node(np.full(shape, beta), np.broadcast_to(th.reshape((-1,) + (1,) * (len(shape) - 1)),
                                                          shape).copy())


def cnn_graph(rng, c1=4, c2=6):
    """Conv -> LIF -> AvgPool -> Conv -> LIF -> Flatten -> Affine -> LIF (the snn-cnn shape)."""
    nodes = {
        "input": nir.Input(input_type=np.array([1, 8, 8])),
        "conv1": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 1.0, (c1, 1, 3, 3)),
                            stride=1, padding=1, dilation=1, groups=1,
                            bias=rng.normal(0, 0.1, c1)),
        "lif1": shared_lif(rng, (c1, 8, 8)),
        "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(0, 0.8, (c2, c1, 3, 3)),
                            stride=1, padding=1, dilation=1, groups=1,
                            bias=rng.normal(0, 0.1, c2)),
        "lif2": shared_lif(rng, (c2, 4, 4)),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([c2, 4, 4])}),
        "fc": nir.Affine(weight=rng.normal(0, 0.5, (10, c2 * 16)), bias=rng.normal(0, 0.1, 10)),
        "lif3": shared_lif(rng, (10,)),
        "output": nir.Output(output_type=np.array([10])),
    }
    names = list(nodes)
    return _g(nodes, list(zip(names[:-1], names[1:])))


def maxpool_graph(rng):
    """Conv -> LIF -> MaxPool of spikes (SumPool -> Threshold: a netx conv layer with the
    pooling kernel) -> Flatten -> Linear -> LIF."""
    nodes = {
        "input": nir.Input(input_type=np.array([1, 8, 8])),
        "conv1": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 1.0, (3, 1, 3, 3)),
                            stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3)),
        "lif1": shared_lif(rng, (3, 8, 8)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "maxpool": nir.Threshold(threshold=np.full((3, 4, 4), 0.5)),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([3, 4, 4])}),
        "fc": nir.Linear(weight=rng.normal(0, 1, (5, 48))),
        "lif2": shared_lif(rng, (5,)),
        "output": nir.Output(output_type=np.array([5])),
    }
    names = list(nodes)
    return _g(nodes, list(zip(names[:-1], names[1:])))


def rnn_graph(rng, n_in=12, hidden=16, n_out=5):
    """Affine -> RLeaky (recurrent Affine) -> Affine -> LIF (the snn-rnn shape)."""
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc1": nir.Affine(weight=rng.normal(0, 0.8, (hidden, n_in)), bias=rng.normal(0, 0.05, hidden)),
        "lif1": shared_lif(rng, (hidden,)),
        "rec1": nir.Affine(weight=rng.normal(0, 0.4, (hidden, hidden)),
                           bias=rng.normal(0, 0.05, hidden)),
        "fc2": nir.Linear(weight=rng.normal(0, 0.8, (n_out, hidden))),
        "lif2": shared_lif(rng, (n_out,)),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"),
             ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return _g(nodes, edges)


def skip_delay_graph(rng, n=10):
    """A skip connection (paths of 1 and 2 hops into lif3) and a NIR Delay before a Linear:
    the stock lowering equalises with DelayDense, not netx (a chain)."""
    nodes = {
        "input": nir.Input(input_type=np.array([n])),
        "fc1": nir.Linear(weight=rng.normal(0, 1.0, (12, n))),
        "lif1": shared_lif(rng, (12,)),
        "fc2": nir.Linear(weight=rng.normal(0, 1.0, (12, 12))),
        "lif2": shared_lif(rng, (12,)),
        "skip": nir.Linear(weight=rng.normal(0, 1.0, (8, 12))),
        "fc3": nir.Linear(weight=rng.normal(0, 1.0, (8, 12))),
        "lif3": shared_lif(rng, (8,)),
        "delay": nir.Delay(delay=rng.integers(0, 4, 8) * DT),
        "fc4": nir.Linear(weight=rng.normal(0, 1.0, (4, 8))),
        "lif4": shared_lif(rng, (4,)),
        "output": nir.Output(output_type=np.array([4])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "fc3"), ("fc3", "lif3"), ("lif1", "skip"), ("skip", "lif3"),
             ("lif3", "delay"), ("delay", "fc4"), ("fc4", "lif4"), ("lif4", "output")]
    return _g(nodes, edges)


def delay_bias_graph(rng):
    """A biased population keeps spiking after its sample ends; a NIR Delay before the next
    Dense (a DelayDense) must not carry that tail into the next sample."""
    nodes = {
        "input": nir.Input(input_type=np.array([3])),
        "fc1": nir.Affine(weight=rng.normal(0, 1.0, (4, 3)), bias=np.array([0.3, 0.45, 0.2, 0.35])),
        "lif1": lif_node(np.full(4, 0.9), np.ones(4)),
        "delay": nir.Delay(delay=np.array([3, 3, 2, 4]) * DT),
        "fc2": nir.Linear(weight=np.abs(rng.normal(0, 1.0, (2, 4))) + 0.3),
        "lif2": lif_node(np.full(2, 0.5), np.ones(2)),
        "output": nir.Output(output_type=np.array([2])),
    }
    names = list(nodes)
    return _g(nodes, list(zip(names[:-1], names[1:])))


def conv_scale_graph(rng):
    """Conv -> LIF -> Scale over the (C, H, W) map -> LIF: netx's dense layer after a conv
    reads it through a flatten layer."""
    nodes = {"input": nir.Input(input_type=np.array([1, 4, 4])),
             "conv1": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(0.5, 1, (2, 1, 3, 3)),
                                 stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(2)),
             "lif1": shared_lif(rng, (2, 4, 4)),
             "scale": nir.Scale(scale=rng.uniform(0.5, 2.0, (2, 4, 4))),
             "lif2": lif_node(np.full((2, 4, 4), 0.85), np.ones((2, 4, 4))),
             "output": nir.Output(output_type=np.array([2, 4, 4]))}
    names = list(nodes)
    return _g(nodes, list(zip(names[:-1], names[1:])))


def map_input_dense_graph(rng):
    """A (C, H, W) input flattened into a Dense first layer (netx's input is then flat)."""
    nodes = {"input": nir.Input(input_type=np.array([2, 3, 3])),
             "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([2, 3, 3])}),
             "fc1": nir.Linear(weight=rng.normal(0.3, 1, (4, 18))),
             "lif1": shared_lif(rng, (4,)),
             "output": nir.Output(output_type=np.array([4]))}
    names = list(nodes)
    return _g(nodes, list(zip(names[:-1], names[1:])))


def _assert_bit_exact(ref, run, min_spikes=3):
    compared = 0
    for name, rec in run.records.items():
        assert np.array_equal(rec, ref.records[name]), (
            f"{run.backend} {name}: {int(np.sum(rec != ref.records[name]))} values differ")
        compared += 1
    assert compared >= 3
    program = ref.program
    fired = {n: int(ref.records[n].sum()) for n, op in program.ops.items()
             if hasattr(op, "params") and op.params.spiking}
    assert all(v >= min_spikes for v in fired.values()), f"too few spikes to test: {fired}"


@pytest.mark.lava
@pytest.mark.parametrize("make, x_shape, backends", [
    (cnn_graph, (8, 3, 1, 8, 8), ("loihi2", "netx")),
    (rnn_graph, (10, 3, 12), ("loihi2", "netx")),
    (maxpool_graph, (8, 3, 1, 8, 8), ("loihi2", "netx")),
    (skip_delay_graph, (12, 3, 10), ("loihi2",)),
    (delay_bias_graph, (6, 3, 3), ("loihi2", "netx")),
    (conv_scale_graph, (6, 2, 1, 4, 4), ("loihi2", "netx")),
    (map_input_dense_graph, (6, 2, 2, 3, 3), ("loihi2", "netx")),
])
def test_stock_and_netx_bit_exact_with_fixed_reference(rng, make, x_shape, backends):
    program = lower(make(rng))
    compiled = compile_loihi2(program)
    x = spikes(rng, x_shape, p=0.4)
    ref = reference_loihi2(program, x, compiled=compiled)
    for backend in backends:
        _assert_bit_exact(ref, simulate_loihi2(program, x, backend=backend, compiled=compiled))


def test_cnn_pooling_fuses_into_the_next_convolution_exactly(rng):
    """conv2(avgpool(x)) == one convolution (kernel 6x6, stride 2): same float spikes."""
    program = lower(cnn_graph(rng))
    compiled = compile_loihi2(program)
    assert "pool" not in compiled.program.ops
    conv2 = compiled.program.ops["conv2"]
    assert conv2.weight.shape[2:] == (6, 6) and tuple(conv2.stride) == (2, 2)
    x = spikes(rng, (8, 4, 1, 8, 8), p=0.4)
    before, after = simulate(program, x), simulate(compiled.program, x)
    for name in ("lif1", "lif2", "lif3"):
        assert np.array_equal(before.records[name], after.records[name]), name


def test_netx_file_layout(rng, tmp_path):
    compiled = compile_loihi2(lower(cnn_graph(rng)))
    path = write_netx(compiled, tmp_path / "m.net")
    with h5py.File(path) as f:
        kinds = [f[f"layer/{i}/type"][()].decode() for i in range(len(f["layer"]))]
        assert kinds == ["input", "conv", "conv", "flatten", "dense"]
        assert list(f["layer/0/shape"][()]) == [1, 8, 8]
        assert f["layer/1/weight"].shape == (4, 1, 3, 3)
        assert f["layer/2/weight"].shape == (6, 4, 6, 6)
        assert list(f["layer/2/stride"][()]) == [2, 2]
        p = compiled.fixed.params["lif3"]
        assert f["layer/4/neuron/vThMant"][()] == p.v_th[0]
        assert f["layer/4/neuron/iDecay"][()] == p.du[0] + 1
        assert np.array_equal(f["layer/4/bias"][()], p.bias >> 6)


def _problem_fields(program):
    _, found = loihi2_problems(program)
    return {(p.node, p.field) for p in found}


def test_refusals_name_node_and_field(rng):
    g = rnn_graph(rng)
    g.nodes["lif2"] = lif_node(rng.uniform(0.7, 0.9, 5), np.ones(5))       # per-neuron decay
    g.nodes["lif2"].metadata = {"spikedeploy.tsm_gain": [1.0] * 10,
                                "spikedeploy.v_init": 0.3,
                                "spikedeploy.reset_mode": "subtract",
                                "spikedeploy.reset_delay": 1}
    fields = _problem_fields(lower(g))
    assert {("lif2", "tau"), ("lif2", "spikedeploy.tsm_gain"), ("lif2", "spikedeploy.v_init"),
            ("lif2", "spikedeploy.reset_mode"), ("lif2", "spikedeploy.reset_delay")} <= fields
    with pytest.raises(UnsupportedError, match="and 4 more"):
        compile_loihi2(lower(g))


def test_thresholds_differing_within_a_channel_refused(rng):
    g = cnn_graph(rng)
    g.nodes["lif1"] = lif_node(np.full((4, 8, 8), 0.9), rng.uniform(0.6, 1.2, (4, 8, 8)))
    assert ("lif1", "v_threshold") in _problem_fields(lower(g))


def test_voltage_readout_and_neuron_without_synapse_refused(rng):
    nodes = {"input": nir.Input(input_type=np.array([4])),
             "lif0": shared_lif(rng, (4,)),
             "fc": nir.Linear(weight=rng.normal(0, 1, (3, 4))),
             "li": nir.LI(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3)),
             "output": nir.Output(output_type=np.array([3]))}
    names = list(nodes)
    fields = _problem_fields(lower(_g(nodes, list(zip(names[:-1], names[1:])))))
    assert ("lif0", "inputs") in fields
    assert ("li", "v_threshold") in fields and ("output", "inputs") in fields


def test_netx_refuses_what_its_loader_cannot_build(rng):
    compiled = compile_loihi2(lower(skip_delay_graph(rng)))
    chain, found = netx_chain(compiled.program)
    assert chain is None
    assert found[0].node == "lif1" and "chain" in found[0].reason


def grouped_mlp(rng, betas=(0.8, 0.9, 0.95)):
    """A hidden layer whose neurons take one of a few betas (per-neuron decays), and one
    decay in the output layer."""
    nodes = {
        "input": nir.Input(input_type=np.array([10])),
        "fc1": nir.Affine(weight=rng.normal(0, 1.0, (15, 10)), bias=rng.normal(0, 0.05, 15)),
        "lif1": lif_node(rng.choice(betas, 15), rng.uniform(0.6, 1.2, 15)),
        "fc2": nir.Linear(weight=rng.normal(0, 1.0, (5, 15))),
        "lif2": shared_lif(rng, (5,)),
        "output": nir.Output(output_type=np.array([5])),
    }
    names = list(nodes)
    return _g(nodes, list(zip(names[:-1], names[1:])))


@pytest.mark.lava
def test_per_neuron_decays_grouped_into_stock_populations(rng):
    program = lower(grouped_mlp(rng))
    compiled = compile_loihi2(program)
    assert [len(ix) for _, ix in compiled.groups["lif1"]] and len(compiled.groups["lif1"]) == 3
    x = spikes(rng, (12, 3, 10), p=0.4)
    ref = reference_loihi2(program, x, compiled=compiled)
    assert ref.records["lif1"].shape == (12, 3, 15) and "lif1_decay0" not in ref.records
    float_run = simulate(program, x)
    agree = np.mean(float_run.records["lif1"] == ref.records["lif1"])
    assert agree > 0.9, agree              # the merged record is lif1's, neuron for neuron
    _assert_bit_exact(ref, simulate_loihi2(program, x, compiled=compiled))
    assert any(p.field == "tau" for p in netx_problems(compiled))


def test_decays_that_cannot_be_grouped_are_refused_with_the_reason(rng):
    g = grouped_mlp(rng)
    g.nodes["lif2"] = lif_node(np.array([0.8, 0.9, 0.8, 0.9, 0.95]), np.ones(5))
    _, found = loihi2_problems(lower(g))
    (problem,) = [p for p in found if p.node == "lif2"]
    assert problem.field == "tau" and "feeds 'output'" in problem.reason


def test_threshold_mantissa_zero_refused(rng):
    nodes = {"input": nir.Input(input_type=np.array([4])),
             "fc": nir.Linear(weight=rng.normal(0, 1e4, (3, 4))),
             "lif": lif_node(np.full(3, 0.9), np.full(3, 1e-3)),
             "output": nir.Output(output_type=np.array([3]))}
    names = list(nodes)
    assert ("lif", "weight") in _problem_fields(lower(_g(nodes, list(zip(names[:-1], names[1:])))))


def test_pooling_before_a_dense_layer_fuses_into_it(rng):
    """AvgPool -> Flatten -> Affine becomes one Dense of the matrix product: same float spikes."""
    g = cnn_graph(rng)
    nodes = {k: v for k, v in g.nodes.items() if k not in ("conv2", "lif2")}
    nodes["flat"] = nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([4, 4, 4])})
    nodes["fc"] = nir.Affine(weight=rng.normal(0, 0.5, (10, 64)), bias=rng.normal(0, 0.1, 10))
    names = list(nodes)
    program = lower(_g(nodes, list(zip(names[:-1], names[1:]))))
    compiled = compile_loihi2(program)
    assert "pool" not in compiled.program.ops and "flat" not in compiled.program.ops
    assert compiled.program.ops["fc"].weight.shape == (10, 256)
    x = spikes(rng, (8, 4, 1, 8, 8), p=0.4)
    before, after = simulate(program, x), simulate(compiled.program, x)
    for name in ("lif1", "lif3"):
        assert np.array_equal(before.records[name], after.records[name]), name
    assert before.records["lif3"].sum() > 0


@pytest.mark.lava
def test_integer_scaled_binary_inputs_are_sent_as_graded_values(rng):
    """Inputs of 0/1 at an integer scale of 16 are 0/16 payloads, not 1-bit spikes."""
    program = lower(map_input_dense_graph(rng))
    compiled = compile_loihi2(program, 16.0)
    x = spikes(rng, (6, 2, 2, 3, 3), p=0.5)
    ref = reference_loihi2(program, x, 16.0, compiled=compiled)
    for backend in ("loihi2", "netx"):
        _assert_bit_exact(ref, simulate_loihi2(program, x, 16.0, backend, compiled=compiled),
                          min_spikes=1)


def test_netx_refuses_a_layer_whose_weights_quantise_to_zero(rng):
    g = map_input_dense_graph(rng)
    g.nodes["fc1"] = nir.Affine(weight=np.zeros((4, 18)), bias=np.full(4, 0.3))
    compiled = compile_loihi2(lower(g))
    (problem,) = netx_problems(compiled)
    assert (problem.node, problem.field) == ("fc1", "weight")


def test_refusals_of_a_grouped_population_name_the_population(rng):
    g = grouped_mlp(rng)
    g.nodes["lif1"].metadata = {"spikedeploy.v_init": 0.2}
    found = loihi2_problems(lower(g))[1]
    assert {p.node for p in found} == {"lif1"}
    assert [p.field for p in found] == ["spikedeploy.v_init"]


def per_channel_cnn(rng):
    """The CNN with decays per channel (two or three values): channel groups under the
    convolutions, read by the next convolution and, through the Flatten, by the Dense."""
    g = cnn_graph(rng)
    betas = {"lif1": [0.8, 0.9, 0.8, 0.95], "lif2": [0.9, 0.8, 0.8, 0.95, 0.9, 0.8]}
    for name, shape in (("lif1", (4, 8, 8)), ("lif2", (6, 4, 4))):
        beta = np.array(betas[name])[:, None, None]
        th = rng.uniform(0.6, 1.2, shape[0])[:, None, None]
        g.nodes[name] = lif_node(np.broadcast_to(beta, shape).copy(),
                                 np.broadcast_to(th, shape).copy())
    return g


@pytest.mark.lava
def test_per_channel_decays_under_convolutions_grouped(rng):
    program = lower(per_channel_cnn(rng))
    compiled = compile_loihi2(program)
    assert {"lif1", "lif2"} <= set(compiled.groups)
    for name, parts in compiled.groups.items():
        per_channel = int(np.prod(program.ops[name].shape[1:]))
        assert all(len(ix) % per_channel == 0 for _, ix in parts)       # whole channels
    x = spikes(rng, (8, 3, 1, 8, 8), p=0.4)
    ref = reference_loihi2(program, x, compiled=compiled)
    assert ref.records["lif1"].shape == (8, 3, 256)
    float_run = simulate(program, x)
    assert np.mean(float_run.records["lif2"] == ref.records["lif2"]) > 0.9
    _assert_bit_exact(ref, simulate_loihi2(program, x, compiled=compiled))


def test_decays_differing_within_a_channel_refused_with_the_reason(rng):
    g = cnn_graph(rng)
    beta = rng.choice([0.8, 0.9], (4, 8, 8))
    g.nodes["lif1"] = lif_node(beta, np.broadcast_to(rng.uniform(0.6, 1.2, 4)[:, None, None],
                                                     (4, 8, 8)).copy())
    found = [p for p in loihi2_problems(lower(g))[1] if p.node == "lif1" and p.field == "tau"]
    assert found and "differ within a channel" in found[0].reason
