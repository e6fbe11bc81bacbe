"""snnTorch's neurons, every reset they run, every way their parameters are given: exported
graphs spike as snnTorch does (float64), on the reference simulator and on Lava.

Leaky, Synaptic, RLeaky and RSynaptic x reset "subtract" / "zero" / "none" x
reset_delay True / False (RSynaptic: only True runs with init_hidden) x
beta/alpha/threshold as a Python scalar, a 0-d tensor or a per-neuron tensor (the
tensors learnable: learn_beta, learn_alpha, learn_threshold),
plus per-channel parameters on convolutional maps and graded spikes. Each
combination is a branch of one model (input -> Linear -> neuron -> Linear ->
neuron -> Linear, all branches summed into a final neuron), random weights
scaled so that every layer spikes, random spike input.
"""
from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from spikedeploy.export import export_model
from spikedeploy.hw_sim.compare import compare_records
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.models.run import run_snntorch

from helpers import through_file

KINDS = ("leaky", "synaptic", "rleaky", "rsynaptic")
RESETS = [(mode, delay) for mode in ("subtract", "zero", "none") for delay in (True, False)]
PARAMS = ("scalar", "tensor0", "per_neuron")


def _neuron(kind, mode, delay, params, n, g, graded=None):
    def value(lo, hi):
        draw = lo + (hi - lo) * torch.rand(n, generator=g)
        return {"scalar": float(draw[0]), "tensor0": draw[0].clone(), "per_neuron": draw}[params]
    learn = params != "scalar"          # tensors given are learnable parameters too
    kw = dict(beta=value(0.6, 0.95), threshold=value(0.7, 1.3), reset_mechanism=mode,
              reset_delay=delay, init_hidden=True, learn_beta=learn, learn_threshold=learn)
    if kind == "leaky":
        return snn.Leaky(**kw, **({} if graded is None else {"graded_spikes_factor": graded}))
    if kind == "synaptic":
        return snn.Synaptic(alpha=value(0.4, 0.9), learn_alpha=learn, **kw)
    if kind == "rleaky":
        return snn.RLeaky(linear_features=n, **kw)
    return snn.RSynaptic(alpha=value(0.4, 0.9), learn_alpha=learn, linear_features=n, **kw)


class Branch(nn.Module):
    def __init__(self, kind, mode, delay, params, g, layers=2, n_in=12, n=10, graded=None):
        super().__init__()
        self.layers = layers
        self.fc = nn.Linear(n_in, n)
        self.lif = _neuron(kind, mode, delay, params, n, g, graded)
        self.fc2 = nn.Linear(n, n)
        self.lif2 = _neuron(kind, mode, delay, params, n, g, graded)
        self.out = nn.Linear(n, 4)
        with torch.no_grad():
            self.fc.weight.mul_(3)
            self.fc2.weight.mul_(3)
            for neuron in (self.lif, self.lif2):
                if hasattr(neuron, "recurrent"):
                    neuron.recurrent.weight.mul_(1.5)

    def forward(self, x):
        s = self.lif(self.fc(x))
        return self.out(self.lif2(self.fc2(s)) if self.layers == 2 else s)


class Matrix(nn.Module):
    """One branch per combination, all summed into the final neuron."""

    def __init__(self, combos, seed=0, layers=2, graded=None):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.b = nn.ModuleDict({"_".join(map(str, c)): Branch(*c, g, layers=layers, graded=graded)
                                for c in combos})
        self.final = snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="zero",
                               reset_delay=False)

    def forward(self, x):
        total = 0
        for branch in self.b.values():
            total = total + branch(x)
        return self.final(total)


def _combos(kinds, params=PARAMS):
    return [(k, m, d, p) for k in kinds for m, d in RESETS for p in params
            if not (k == "rsynaptic" and not d)]


def _spikes(seed, shape):
    return (np.random.default_rng(seed).random(shape) < 0.5).astype(np.float64)


def assert_every_layer_equal(theirs: dict, result, min_layers: int):
    """Every recorded layer identical; the layers under test (not the final sum) active."""
    layers = [n for n in theirs if n != "output" and n in result.records]
    assert len(layers) >= min_layers
    for name in layers:
        a, b = theirs[name].reshape(result.records[name].shape), result.records[name]
        if name != "final":
            rate = np.mean(a != 0)
            assert 0.01 < rate < 0.99, f"{name}: the test needs activity ({rate:.3f})"
        assert np.array_equal(a, b), f"{name}: {int(np.sum(a != b))} of {a.size} differ"


@pytest.mark.parametrize("kind", KINDS)
def test_every_reset_and_parameter_form_on_the_reference_simulator(kind, tmp_path):
    combos = _combos([kind])
    model = Matrix(combos, seed=KINDS.index(kind))
    read, program = through_file(export_model(model, (12,)), tmp_path)
    x = _spikes(0, (25, 8, 12))
    assert_every_layer_equal(run_snntorch(model, x), simulate(program, x), 2 * len(combos))


def test_graded_spikes_and_per_channel_parameters_on_convolutional_maps(tmp_path):
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(3)
    beta = 0.6 + 0.3 * torch.rand((4, 1, 1), generator=g)             # per channel
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        snn.Leaky(beta=beta, threshold=0.8 + 0.4 * torch.rand((4, 1, 1), generator=g),
                  init_hidden=True),                                       # subtract, delayed
        nn.Conv2d(4, 4, 3, padding=1),
        snn.Synaptic(alpha=0.7, beta=beta, init_hidden=True, reset_mechanism="zero"),
        nn.Flatten(),
        nn.Linear(64, 6),
        snn.Leaky(beta=0.85, init_hidden=True, graded_spikes_factor=0.7),
        nn.Linear(6, 3),
        snn.Leaky(beta=0.85, init_hidden=True, graded_spikes_factor=torch.tensor([0.5, 2.0, 1.5]),
                  reset_delay=False))
    with torch.no_grad():
        model[0].weight.mul_(2.5)
        model[2].weight.mul_(2.5)
        model[5].weight.mul_(3)
        model[7].weight.mul_(3)
        model[7].bias.fill_(0.4)
    graph, program = through_file(export_model(model, (2, 4, 4)), tmp_path)
    assert "spikedeploy.spike_value" in graph.nodes["lif2"].metadata
    x = _spikes(1, (20, 6, 2, 4, 4))
    theirs = run_snntorch(model, x)
    assert np.isin(theirs["lif2"], [0.0, np.float32(0.7)]).all()     # snnTorch emits float32
    assert_every_layer_equal(theirs, simulate(program, x), 4)


@pytest.mark.lava
@pytest.mark.parametrize("kind", KINDS)
def test_every_reset_on_lava_float_and_bit_exact_fixed(kind, tmp_path):
    from spikedeploy.hw_sim.lava_runner import simulate_lava
    combos = _combos([kind], params=("per_neuron",))
    graded = 0.5 if kind == "leaky" else None
    model = Matrix(combos, seed=10 + KINDS.index(kind), layers=1, graded=graded)
    read, program = through_file(export_model(model, (12,)), tmp_path)
    x = _spikes(2, (20, 4, 12))
    ref = simulate(program, x)
    assert_every_layer_equal(run_snntorch(model, x), ref, len(combos))
    lava = simulate_lava(read, x, program=program)
    assert compare_records(ref, lava).agrees
    fixed = fxp.quantise(program)
    ref_fx = simulate(program, x, "fixed", fixed)
    lava_fx = simulate_lava(read, x, "fixed", program=program, fixed=fixed)
    assert compare_records(ref_fx, lava_fx).agrees
    neurons = [n for n in program.ops if n.endswith("_lif") or n == "final"]
    quantised = compare_records(ref, ref_fx, layers=neurons)       # in float units
    assert quantised.disagreement < 0.05, quantised.to_dict()


class SequenceNet(nn.Module):
    """Custom forward over (T, N, ...) passing every state explicitly: Synaptic's (syn, mem),
    RLeaky's (spk, mem), a one-to-one RSynaptic's (spk, syn, mem)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.syn1 = snn.Synaptic(alpha=0.8, beta=0.9, learn_threshold=True)
        self.fc2 = nn.Linear(16, 16)
        self.rlif2 = snn.RLeaky(beta=0.9, linear_features=16)
        self.fc3 = nn.Linear(16, 5)
        self.rsyn3 = snn.RSynaptic(alpha=0.6, beta=0.9, all_to_all=False, V=0.5)
        with torch.no_grad():
            for fc in (self.fc1, self.fc2, self.fc3):
                fc.weight.mul_(4)

    def forward(self, x):
        syn1, mem1 = self.syn1.init_synaptic()
        spk2, mem2 = self.rlif2.init_rleaky()
        spk3, syn3, mem3 = self.rsyn3.init_rsynaptic()
        out = []
        for t in range(x.shape[0]):
            spk1, syn1, mem1 = self.syn1(self.fc1(x[t]), syn1, mem1)
            spk2, mem2 = self.rlif2(self.fc2(spk1), spk2, mem2)
            spk3, syn3, mem3 = self.rsyn3(self.fc3(spk2), spk3, syn3, mem3)
            out.append(spk3)
        return torch.stack(out)


def test_states_passed_explicitly_in_a_custom_forward(tmp_path):
    torch.manual_seed(4)
    model = SequenceNet()
    read, program = through_file(export_model(model, (12,), num_steps=15), tmp_path)
    x = _spikes(4, (15, 6, 12))
    assert_every_layer_equal(run_snntorch(model, x), simulate(program, x), 3)


def test_conv1d_with_batchnorm1d_folded(tmp_path):
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4),
                          snn.Leaky(beta=0.8, init_hidden=True), nn.Flatten(),
                          nn.Linear(64, 5), snn.Leaky(beta=0.8, init_hidden=True))
    with torch.no_grad():
        model[0].weight.mul_(4)
        model[4].weight.mul_(4)
        model[1].running_mean.uniform_(-0.2, 0.2)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
    graph, program = through_file(export_model(model, (2, 16)), tmp_path)
    assert "bn1" not in graph.nodes                     # folded into the convolution
    x = _spikes(5, (15, 6, 2, 16))
    assert_every_layer_equal(run_snntorch(model, x), simulate(program, x), 2)
