"""Issue #6 acceptance: the cross-check CNN of REFERENCE.md section 5 against NeuroBench and sinabs.

Conv2d(1,4,3,p=1) -> Leaky(0.9) -> Conv2d(4,4,3,p=1) -> Leaky -> Flatten ->
Linear(144,5) -> Leaky on 1x6x6 input, T=4. The snnTorch model runs under
NeuroBench's Benchmark (SynapticOperations, ActivationSparsity) and with
sinabs' synops hooks; the same weights as a NIR graph run on spikedeploy's
reference simulator; spikedeploy's labelled figures must equal theirs exactly.
neurobench and sinabs are test dependencies (see the Makefile).
"""
import nir
import numpy as np
import pytest
import torch
from torch import nn

import snntorch as snn
from helpers import lif_node
from spikedeploy.energy import count_operations, energy_report
from spikedeploy.energy.conventions import (neurobench_activation_sparsity, neurobench_synops,
                                            sinabs_synops, syops_estimate)
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir.lowering import lower

import neurobench.metrics.workload as nb_workload          # noqa: E402  (test dependency)
from neurobench.benchmarks import Benchmark                 # noqa: E402
from neurobench.models import SNNTorchModel                 # noqa: E402
import sinabs.hooks                                         # noqa: E402  (test dependency)

DT = 1e-4
BETA = 0.9
# snnTorch keeps beta as given: a float64 tensor, so the membrane matches float64 NIR exactly
BETA_T = torch.tensor(BETA, dtype=torch.float64)
T, N = 4, 8          # N a power of two: per-sample means are exact in floating point


class CrossCNN(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.lif1 = snn.Leaky(beta=BETA_T, init_hidden=True, reset_mechanism="zero",
                              reset_delay=False)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.lif2 = snn.Leaky(beta=BETA_T, init_hidden=True, reset_mechanism="zero",
                              reset_delay=False)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(144, 5)
        self.lif3 = snn.Leaky(beta=BETA_T, init_hidden=True, reset_mechanism="zero",
                              reset_delay=False, output=True)
        with torch.no_grad():
            for layer, std in ((self.conv1, 1.2), (self.conv2, 0.7), (self.fc, 0.5)):
                w = torch.randn(layer.weight.shape, generator=g) * std
                w[torch.rand(w.shape, generator=g) < 0.25] = 0.0      # zero weights
                layer.weight.copy_(w)
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=g) * 0.1)
        self.double()

    def forward(self, x):
        # snnTorch emits float32 spikes whatever the membrane's dtype: keep the net float64
        s1 = self.lif1(self.conv1(x)).to(x.dtype)
        s2 = self.lif2(self.conv2(s1)).to(x.dtype)
        return self.lif3(self.fc(self.flat(s2)))


def nir_graph(net: CrossCNN) -> nir.NIRGraph:
    """The same network as NIR, built from the module's weights (dt = 1e-4)."""
    def w(t):
        return t.detach().numpy().astype(np.float64)

    def lif(shape):
        return lif_node(np.full(shape, BETA), np.ones(shape), dt=DT)

    def conv(layer):
        return nir.Conv2d(input_shape=np.array([6, 6]), weight=w(layer.weight), stride=1,
                          padding=1, dilation=1, groups=1, bias=w(layer.bias))

    nodes = {"input": nir.Input(input_type=np.array([1, 6, 6])),
             "conv1": conv(net.conv1), "lif1": lif((4, 6, 6)),
             "conv2": conv(net.conv2), "lif2": lif((4, 6, 6)),
             "flat": nir.Flatten(input_type={"input": np.array([4, 6, 6])}, start_dim=0,
                                 end_dim=-1),
             "fc": nir.Affine(weight=w(net.fc.weight), bias=w(net.fc.bias)), "lif3": lif((5,)),
             "output": nir.Output(output_type=np.array([5]))}
    order = ["input", "conv1", "lif1", "conv2", "lif2", "flat", "fc", "lif3", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])),
                        metadata={"spikedeploy.dt": DT}, type_check=False)


def inputs(kind: str, seed=1) -> np.ndarray:
    """(T, N, 1, 6, 6): direct (graded, multiples of 1/4, with zeros) or rate-coded spikes."""
    rng = np.random.default_rng(seed)
    if kind == "direct":
        img = rng.integers(0, 9, size=(N, 1, 6, 6)) / 4.0
        img[rng.random(img.shape) < 0.3] = 0.0
        return np.broadcast_to(img, (T,) + img.shape).copy()
    return (rng.random((T, N, 1, 6, 6)) < 0.35).astype(np.float64)


def snntorch_spikes(net, x):
    """Per-layer spikes of the snnTorch model, (T, N, size), recorded by forward hooks."""
    rec = {name: [] for name in ("lif1", "lif2", "lif3")}
    hooks = [getattr(net, name).register_forward_hook(
        lambda m, i, o, name=name: rec[name].append((o[0] if isinstance(o, tuple) else o)
                                                    .detach().reshape(N, -1).double().numpy()))
        for name in rec]
    snn.utils.reset(net)
    with torch.no_grad():
        for t in range(T):
            net(torch.from_numpy(x[t]))
    for h in hooks:
        h.remove()
    return {k: np.stack(v) for k, v in rec.items()}


def run_neurobench(net, x):
    data = torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2, 3, 4)))  # (N, T, ...)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, torch.zeros(N, dtype=torch.long)), batch_size=N)
    bench = Benchmark(SNNTorchModel(net), loader, [], [],
                      [[], [nb_workload.SynapticOperations, nb_workload.ActivationSparsity]])
    return bench.run(quiet=True)


def run_sinabs(net, x):
    """sinabs' per-layer synops hooks, one forward call per time step, summed over steps."""
    layers = {"conv1": net.conv1, "conv2": net.conv2, "fc": net.fc}
    total = dict.fromkeys(layers, 0.0)
    handles = [layers["conv1"].register_forward_hook(sinabs.hooks.conv_layer_synops_hook),
               layers["conv2"].register_forward_hook(sinabs.hooks.conv_layer_synops_hook),
               layers["fc"].register_forward_hook(sinabs.hooks.linear_layer_synops_hook)]
    snn.utils.reset(net)
    with torch.no_grad():
        for t in range(T):
            net(torch.from_numpy(x[t]))
            for name, layer in layers.items():
                total[name] += float(layer.hook_data["layer_synops_per_timestep"])
    for h in handles:
        h.remove()
    return total


@pytest.fixture(scope="module")
def net():
    return CrossCNN()


@pytest.mark.parametrize("kind", ["direct", "rate"])
def test_counts_equal_neurobench_and_sinabs_exactly(net, kind):
    x = inputs(kind)
    program = lower(nir_graph(net))
    result = simulate(program, x)
    # the two simulations spike identically, so the tools see the same activity
    theirs = snntorch_spikes(net, x)
    for name in ("lif1", "lif2", "lif3"):
        np.testing.assert_array_equal(result.records[name], theirs[name], err_msg=name)
        assert 0 < theirs[name].mean() < 1, name            # neither silent nor saturated
    counts = count_operations(result)

    nb = run_neurobench(net, x)
    ours = neurobench_synops(counts)
    assert nb["SynapticOperations"] == {"Effective_MACs": ours["Effective_MACs"],
                                        "Effective_ACs": ours["Effective_ACs"],
                                        "Dense": ours["Dense"]}
    if kind == "direct":
        assert ours["Effective_MACs"] > 0 and counts.synaptic["conv1"].kind == "MAC"
    else:
        assert ours["Effective_MACs"] == 0
    assert ours["Effective_ACs"] < ours["Dense"]
    assert nb["ActivationSparsity"] == neurobench_activation_sparsity(counts)

    sb = run_sinabs(net, x)
    assert sb == sinabs_synops(counts)["per_layer"]
    # the same figures in the report, labelled
    rep = energy_report(result)
    tools = rep.to_dict()["other_tools"]
    assert tools["neurobench"]["Effective_ACs"] == pytest.approx(ours["Effective_ACs"], rel=1e-12)
    assert tools["sinabs"]["per_layer"]["conv2"] == pytest.approx(sb["conv2"], rel=1e-12)
    for layer in ("conv2", "fc"):           # spike-input layers: sinabs = ops over all synapses
        assert sb[layer] * N == counts.synaptic[layer].ops["all"].sum()


def test_fr_x_T_x_flops_equals_the_hand_formula(net):
    x = inputs("direct")
    result = simulate(lower(nir_graph(net)), x)
    counts = count_operations(result)
    spikes = snntorch_spikes(net, x)
    # by hand: FLOPs with padded taps, firing rate of each layer's input
    flops = {"conv1": 4 * 6 * 6 * 1 * 3 * 3, "conv2": 4 * 6 * 6 * 4 * 3 * 3, "fc": 144 * 5}
    fr = {"conv2": spikes["lif1"].mean(), "fc": spikes["lif2"].mean()}
    sop = {k: fr[k] * T * flops[k] for k in fr}
    energy = 4.6 * flops["conv1"] + 0.9 * (sop["conv2"] + sop["fc"])
    est = syops_estimate(counts, energy_report(result).profile)
    assert est["per_layer"]["conv1"]["kind"] == "MAC"
    assert est["per_layer"]["conv1"]["flops"] == flops["conv1"]
    for k in sop:
        assert est["per_layer"][k]["flops"] == flops[k]
        assert est["per_layer"][k]["sop"] == pytest.approx(sop[k], rel=1e-12)
    assert est["energy_pj"] == pytest.approx(energy, rel=1e-12)
    # padded taps: the estimate's FLOPs exceed the real synapses on a 6x6 map
    assert counts.synaptic["conv2"].synapses < flops["conv2"]
