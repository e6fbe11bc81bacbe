"""Fan-outs and counts of Conv2d / pooling / Scale layers: against brute force and torch."""
import nir
import numpy as np
import pytest

from helpers import DT, lif_node
from spikedeploy.energy import count_operations, energy_report, fanout
from spikedeploy.energy.fanout import FANOUT, connectivity
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir.lowering import lower
from spikedeploy.ir.ops import ConvOp, DenseOp, ScaleOp


def conv_graph(rng, cin=2, cout=4, hw=(7, 6), k=(3, 3), stride=1, padding=1, dilation=1,
               groups=1, zero_frac=0.3, pool=None):
    """Input -> Conv2d -> LIF [-> pool -> LIF] -> Output, random weights with zeros."""
    w = rng.normal(0, 0.8, (cout, cin // groups) + tuple(k))
    w[rng.random(w.shape) < zero_frac] = 0.0
    nodes = {"input": nir.Input(input_type=np.array((cin,) + tuple(hw))),
             "conv": nir.Conv2d(input_shape=np.array(hw), weight=w, stride=stride,
                                padding=padding, dilation=dilation, groups=groups,
                                bias=rng.normal(0, 0.1, cout))}
    program = lower(nir.NIRGraph(nodes={**nodes, "output": nir.Output(
        output_type=np.array([1]))}, edges=[("input", "conv"), ("conv", "output")],
        metadata={"spikedeploy.dt": DT}, type_check=False))
    shape = program.ops["conv"].shape
    nodes["lif"] = lif_node(rng.uniform(0.7, 0.95, shape), rng.uniform(0.5, 1.0, shape))
    edges = [("input", "conv"), ("conv", "lif")]
    last = "lif"
    if pool is not None:
        nodes["pool"] = pool
        p_prog = lower(nir.NIRGraph(nodes={**nodes, "output": nir.Output(
            output_type=np.array([1]))}, edges=edges + [("lif", "pool"), ("pool", "output")],
            metadata={"spikedeploy.dt": DT}, type_check=False))
        pshape = p_prog.ops["pool"].shape
        nodes["lif_p"] = lif_node(np.full(pshape, 0.9), np.full(pshape, 0.5))
        edges += [("lif", "pool"), ("pool", "lif_p")]
        last = "lif_p"
    nodes["output"] = nir.Output(output_type=np.array([1]))
    edges.append((last, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": DT},
                        type_check=False)


def brute_force_fanout(op):
    """Loop over every output position and kernel tap of the op's own definition."""
    w = np.asarray(op.weight)
    cout, cin_g, kh, kw = w.shape
    cin, h, wd = op.in_shape
    _, ho, wo = op.shape
    nz = np.zeros((cin, h, wd), int)
    al = np.zeros((cin, h, wd), int)
    g_out = cout // op.groups
    for co in range(cout):
        for ci in range(cin_g):
            c = (co // g_out) * cin_g + ci
            for ky in range(kh):
                for kx in range(kw):
                    for oy in range(ho):
                        for ox in range(wo):
                            iy = oy * op.stride[0] - op.padding[0][0] + ky * op.dilation[0]
                            ix = ox * op.stride[1] - op.padding[1][0] + kx * op.dilation[1]
                            if 0 <= iy < h and 0 <= ix < wd:
                                al[c, iy, ix] += 1
                                nz[c, iy, ix] += w[co, ci, ky, kx] != 0
    return nz.reshape(-1), al.reshape(-1)


CONV_CASES = [
    dict(),                                              # 3x3, padding 1
    dict(stride=2, padding=0, hw=(7, 8)),
    dict(stride=(2, 1), padding=(1, 2), k=(3, 2)),
    dict(dilation=2, padding=2, hw=(8, 8)),
    dict(groups=2, cin=4, cout=6),
    dict(groups=4, cin=4, cout=4, k=(2, 2), padding=0),  # depthwise
    dict(padding="same", k=(4, 3)),                      # asymmetric 'same' padding
    dict(k=(1, 1), padding=0),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_fanout_equals_brute_force_and_the_ops_matrix(rng, case):
    program = lower(conv_graph(rng, **case))
    op = program.ops["conv"]
    assert isinstance(op, ConvOp)
    fan = fanout(op)
    nz, al = brute_force_fanout(op)
    np.testing.assert_array_equal(fan.nonzero, nz)
    np.testing.assert_array_equal(fan.all, al)
    # the same from the matrix the simulators run: column sums of its structure
    m = connectivity(op)
    np.testing.assert_array_equal(np.asarray(m.sum(axis=0)).reshape(-1), fan.nonzero)
    rows, cols, _ = op.geometry.taps()
    np.testing.assert_array_equal(np.bincount(cols, minlength=op.in_shape[0] * op.in_shape[1]
                                              * op.in_shape[2]), fan.all)
    # literature FLOPs count padded taps: >= synapses, equal without padding
    cout, cin_g, kh, kw = op.weight.shape
    assert fan.dense_flops == cout * op.shape[1] * op.shape[2] * cin_g * kh * kw
    assert fan.dense_flops >= fan.synapses


@pytest.mark.parametrize("case", CONV_CASES[:6])
def test_conv_fanout_equals_a_transposed_convolution_of_ones(rng, case):
    """sinabs' method: ConvTranspose2d of an all-ones output with all-ones weights."""
    import torch
    program = lower(conv_graph(rng, **case))
    op = program.ops["conv"]
    cout, cin_g, kh, kw = op.weight.shape
    (pt, pb), (pl, pr) = op.padding
    assert pt == pb and pl == pr
    deconv = torch.nn.ConvTranspose2d(cout, op.in_shape[0], (kh, kw), stride=op.stride,
                                      padding=(pt, pl), dilation=op.dilation, groups=op.groups,
                                      bias=False).double()
    torch.nn.init.ones_(deconv.weight)
    with torch.no_grad():
        cmap = deconv(torch.ones((1,) + tuple(op.shape), dtype=torch.float64),
                      output_size=(1,) + tuple(op.in_shape))
    np.testing.assert_array_equal(cmap.numpy().reshape(-1).astype(int), fanout(op).all)


def test_pooling_and_scale_fanouts(rng):
    for node, expect_k in ((nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                          padding=np.array([0, 0])), 1),
                           (nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([1, 1]),
                                          padding=np.array([1, 1])), None)):
        program = lower(conv_graph(rng, hw=(6, 6), pool=node))
        op = program.ops["pool"]
        assert isinstance(op, ConvOp) and op.pool
        fan = fanout(op)
        nz, al = brute_force_fanout(op)
        np.testing.assert_array_equal(fan.all, al)
        np.testing.assert_array_equal(fan.nonzero, nz)
        if expect_k:                       # non-overlapping 2x2: every pixel drives one output
            assert set(fan.all.tolist()) == {1}
        else:                              # 3x3 stride 1 padding 1: corners drive 4, edges 6
            per_map = fan.all.reshape(op.in_shape)[0]
            assert per_map[0, 0] == 4 and per_map[0, 2] == 6 and per_map[2, 2] == 9
    s = ScaleOp("s", (4,), inputs=["x"], scale=np.array([1.0, 0.0, -2.0, 3.0]))
    fan = fanout(s)
    np.testing.assert_array_equal(fan.nonzero, [1, 0, 1, 1])
    np.testing.assert_array_equal(fan.all, [1, 1, 1, 1])
    assert set(FANOUT) >= {DenseOp, ConvOp, ScaleOp}


def brute_force_counts(result, op):
    """Per step: events and the sum of brute-force fan-outs over them."""
    nz, al = brute_force_fanout(op) if isinstance(op, ConvOp) else (None, None)
    x = result.records[op.inputs[0]]
    mask = x != 0
    return mask.sum(axis=(1, 2)), (mask * nz).sum(axis=(1, 2)), (mask * al).sum(axis=(1, 2))


@pytest.mark.parametrize("case", [dict(), dict(stride=2, padding=1, groups=2, cin=2, cout=4)])
def test_cnn_counts_through_the_reference_simulator(rng, case):
    graph = conv_graph(rng, hw=(8, 8), pool=nir.SumPool2d(kernel_size=np.array([2, 2]),
                                                           stride=np.array([2, 2]),
                                                           padding=np.array([0, 0])), **case)
    program = lower(graph)
    T, N = 9, 3
    x = (rng.random((T, N) + program.ops["input"].shape) < 0.4).astype(float)
    result = simulate(program, x)
    counts = count_operations(result)
    assert set(counts.synaptic) == {"conv", "pool"}
    assert counts.neurons["lif"].spikes.sum() > 0
    for name in ("conv", "pool"):
        c = counts.synaptic[name]
        events, nz, al = brute_force_counts(result, program.ops[name])
        assert c.kind == "AC"
        np.testing.assert_array_equal(c.events, events)
        np.testing.assert_array_equal(c.ops["nonzero"], nz)
        np.testing.assert_array_equal(c.ops["all"], al)
    # the conv bias is folded into lif: every conv neuron adds it every step
    lif = counts.neurons["lif"]
    assert lif.biased_neurons == lif.neurons
    np.testing.assert_array_equal(lif.bias_adds, np.full(T, lif.neurons * N))
    rep = energy_report(result)
    assert [r.label for r in rep.rows] == ["conv -> lif", "pool -> lif_p"]
    # pooling is not a connection layer for NeuroBench / sinabs
    assert set(rep.conventions["neurobench"]["per_layer"]) == {"conv"}


def test_scale_delay_and_threshold_layers_count_through_the_reference(rng):
    """Input -> Delay -> Affine -> LIF -> Scale -> Threshold: Delay is no synapse (a record
    in time), Scale is a diagonal synapse, Threshold a memoryless spiking population."""
    nodes = {"input": nir.Input(input_type=np.array([6])),
             "delay": nir.Delay(delay=np.full(6, 2 * DT)),
             "fc": nir.Affine(weight=rng.normal(0, 1.0, (5, 6)), bias=np.zeros(5)),
             "lif": lif_node(np.full(5, 0.9), np.full(5, 0.5)),
             "scale": nir.Scale(scale=np.array([1.0, 0.0, 2.0, -1.0, 0.5])),
             "thr": nir.Threshold(threshold=np.full(5, 0.4)),
             "output": nir.Output(output_type=np.array([5]))}
    names = list(nodes)
    program = lower(nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])),
                                 metadata={"spikedeploy.dt": DT}, type_check=False))
    x = (rng.random((10, 3, 6)) < 0.5).astype(float)
    result = simulate(program, x)
    counts = count_operations(result)
    assert set(counts.synaptic) == {"fc", "scale"} and set(counts.neurons) == {"lif", "thr"}
    fc, sc = counts.synaptic["fc"], counts.synaptic["scale"]
    # the Dense layer sees the input two steps late
    np.testing.assert_array_equal(fc.events[2:], x[:-2].reshape(8, -1).sum(axis=1))
    assert fc.events[:2].sum() == 0
    spikes = result.records["lif"]
    np.testing.assert_array_equal(sc.ops["all"], spikes.sum(axis=(1, 2)))
    np.testing.assert_array_equal(sc.ops["nonzero"], np.delete(spikes, 1, axis=2).sum(axis=(1, 2)))
    thr = counts.neurons["thr"]
    assert thr.spiking and thr.spikes.sum() == result.records["thr"].sum()
    # a threshold neuron is active where the scaled spike reaches it through a non-zero factor
    reach = (spikes != 0) & (np.array([1, 0, 1, 1, 1]) != 0)
    np.testing.assert_array_equal(thr.active, reach.sum(axis=(1, 2)))
    assert [r.label for r in energy_report(result).rows] == ["fc -> lif", "scale -> thr"]
