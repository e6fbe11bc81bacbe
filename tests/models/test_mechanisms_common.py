"""The checks every mechanism (issue #7) shares: module-level semantics of the neuron
modules, the readouts, checkpoints of every architecture."""
from __future__ import annotations

from collections import OrderedDict

import nir
import numpy as np
import pytest
import torch
from torch import nn

from spikedeploy.errors import SpikedeployError
from spikedeploy.export import export_model
from spikedeploy.metadata import READOUTS
from spikedeploy.models import load_checkpoint, run_snntorch, save_checkpoint
from spikedeploy.models.losses import lts_loss, tet_s_loss
from spikedeploy.models.neurons import IF, IMPLIF, LIF, TSM, Readout
from spikedeploy.readout import accuracy, predictions, readout_values

from helpers import DT, assert_metadata_round_trip, through_file


# --- neuron modules: the documented update, checked by hand -----------------------------

def hand_neuron(current, beta, threshold, v0, reset, gains=None):
    """mem = beta*mem + p[t]*I; spk = mem > th; zero / subtract reset; mem starts at v0."""
    mem = np.broadcast_to(v0, current.shape[1:]).astype(np.float64)
    spikes = np.zeros_like(current)
    for t in range(current.shape[0]):
        mem = beta * mem + (1.0 if gains is None else gains[t]) * current[t]
        spikes[t] = mem > threshold
        mem = np.where(spikes[t] > 0, 0.0 if reset == "zero" else mem - threshold, mem)
    return spikes


@pytest.mark.parametrize("make, beta, reset", [
    (lambda: LIF(6, beta=torch.linspace(0.3, 0.9, 6), threshold=0.8, v_init=0.3), None, "zero"),
    (lambda: IF(6, threshold=0.7), 1.0, "zero"),
    (lambda: IF(6, threshold=0.9, reset_mechanism="subtract", v_init=0.45), 1.0, "subtract"),
])
def test_neuron_modules_follow_the_documented_update(make, beta, reset):
    neuron = make()
    current = np.random.default_rng(0).normal(0.3, 0.6, (12, 5, 6))
    model = nn.Sequential(OrderedDict(n=neuron))
    got = run_snntorch(model, current)["n"]
    b = neuron.beta.double().numpy() if beta is None else beta
    want = hand_neuron(current, b, neuron.threshold.double().numpy(),
                       neuron.v_init.double().numpy(), reset)
    assert 0.05 < got.mean() < 0.95
    np.testing.assert_array_equal(got, want)


def test_imp_initial_voltage_is_learned_and_restored_per_sample():
    torch.manual_seed(0)
    neuron = IMPLIF(50, beta=0.5)
    assert isinstance(neuron.v_init, nn.Parameter)
    v0 = neuron.v_init.detach()
    assert 0.4 <= float(v0.min()) and float(v0.max()) <= 0.6
    x = torch.zeros(3, 50)
    neuron.reset_mem()
    neuron(x)
    np.testing.assert_array_equal(neuron.mem[0].detach().numpy(), (0.5 * neuron.v_init).detach().numpy())
    neuron(x)
    neuron.reset_mem()      # a new sample starts from v0 again
    neuron(x)
    np.testing.assert_array_equal(neuron.mem[0].detach().numpy(), (0.5 * neuron.v_init).detach().numpy())
    neuron.mem.sum().backward()
    assert neuron.v_init.grad is not None and float(neuron.v_init.grad.abs().sum()) > 0


def test_tsm_scales_the_current_per_step_and_refuses_longer_runs():
    inner = IF(4, threshold=1.0)
    tsm = TSM(inner, 5)
    with torch.no_grad():
        tsm.gain.copy_(torch.tensor([0.5, 1.5, 1.0, 2.0, 0.25]))
    current = np.random.default_rng(1).uniform(0, 0.9, (5, 3, 4))
    got = run_snntorch(nn.Sequential(OrderedDict(tsm1=tsm)), current)["tsm1"]
    np.testing.assert_array_equal(got, hand_neuron(current, 1.0, 1.0, 0.0, "zero",
                                                   tsm.gain.detach().double().numpy()))
    with pytest.raises(SpikedeployError, match="5 time steps"):
        run_snntorch(nn.Sequential(tsm), np.zeros((6, 1, 4)))


def test_readout_outputs_its_voltage():
    current = np.random.default_rng(2).normal(size=(4, 2, 3))
    per_step = run_snntorch(nn.Sequential(OrderedDict(r=Readout(3, beta=0.0))), current)
    summed = run_snntorch(nn.Sequential(OrderedDict(r=Readout(3, beta=1.0))), current)
    np.testing.assert_array_equal(per_step["r"], current)
    np.testing.assert_allclose(summed["output"][-1], current.sum(0), rtol=1e-15)


# --- readouts and losses ------------------------------------------------------------------

def test_readouts_reduce_over_time_as_documented():
    out = np.random.default_rng(3).normal(size=(5, 7, 10))
    assert set(READOUTS) == {"spike_count", "mean", "last_step"}
    want = {"spike_count": out.sum(axis=0), "mean": out.mean(axis=0), "last_step": out[-1]}
    for readout in READOUTS:
        np.testing.assert_array_equal(readout_values(out, readout), want[readout])
        np.testing.assert_array_equal(predictions(out, readout), want[readout].argmax(axis=1))
    ties = np.zeros((3, 2, 4))
    ties[:, :, 1] = ties[:, :, 3] = 1.0         # equal counts: the lowest index wins
    assert predictions(ties, "spike_count").tolist() == [1, 1]
    assert accuracy(ties, np.array([1, 3])) == 0.5
    with pytest.raises(SpikedeployError, match="readout"):
        predictions(out, "max")


def test_lts_and_tet_s_losses():
    torch.manual_seed(0)
    out = torch.randn(4, 6, 10)
    y = torch.randint(0, 10, (6,))
    ce = nn.functional.cross_entropy
    assert torch.allclose(lts_loss(out, y), ce(out[-1], y))
    want = torch.stack([ce(out[t], y, label_smoothing=0.01) for t in range(4)]).mean()
    assert torch.allclose(tet_s_loss(out, y), want)
    assert not torch.allclose(tet_s_loss(out, y), torch.stack([ce(out[t], y) for t in range(4)]).mean())


# --- exported neuron parameters -------------------------------------------------------------

def test_neuron_export_parameters_and_metadata(tmp_path):
    model = nn.Sequential(OrderedDict(
        fc1=nn.Linear(3, 4), if1=IF(4, threshold=0.6, reset_mechanism="subtract", v_init=0.3),
        fc2=nn.Linear(4, 4), lif1=LIF(4, beta=0.75, threshold=1.2),
        fc3=nn.Linear(4, 2), readout=Readout(2, beta=0.0), acc=Readout(2, beta=1.0)))
    graph = export_model(model, (3,), readout="last_step")
    n = graph.nodes
    assert isinstance(n["if1"], nir.IF) and np.all(DT * n["if1"].r == 1.0)
    assert n["if1"].metadata["spikedeploy.reset_mode"] == "subtract"
    np.testing.assert_array_equal(n["if1"].metadata["spikedeploy.v_init"], np.full(4, 0.3, np.float32))
    assert isinstance(n["lif1"], nir.LIF) and n["lif1"].metadata == {}      # nothing NIR lacks
    assert isinstance(n["readout"], nir.LI) and np.all(1 - DT / n["readout"].tau == 0.0)
    assert isinstance(n["acc"], nir.I) and np.all(DT * n["acc"].r == 1.0)
    assert graph.metadata["spikedeploy.readout"] == "last_step"
    read, program = through_file(graph, tmp_path)
    assert_metadata_round_trip(graph, read)
    assert program.ops["if1"].params.reset_mode == "subtract"
    with pytest.raises(SpikedeployError, match="readout"):
        export_model(model, (3,), readout="max")


# --- checkpoints of every architecture -----------------------------------------------------

@pytest.mark.parametrize("recipe, kwargs, shape", [
    ("sdm-cnn", dict(epochs=1, tsm_epochs=1, train_subset=64, channels=4, blocks=1), (1, 8, 8)),
    ("imp-lts", dict(epochs=1, train_subset=64, hidden=16), (64,)),
    ("fastsnn", dict(epochs=1, qat_epochs=1, train_subset=64, hidden=16), (64,)),
    ("ugo-exp", dict(fit_steps=50, hidden=8, num_steps=8), (1,)),
    ("sdm-denoiser", dict(epochs=1, tsm_epochs=1, train_subset=64, channels=4, blocks=1), (1, 8, 8)),
])
def test_every_architecture_checkpoint_round_trips(recipe, kwargs, shape, tmp_path):
    from spikedeploy.models.recipes import train_recipe
    trained = train_recipe(recipe, **kwargs)
    path = save_checkpoint(tmp_path / "ckpt", trained.model, trained.config)
    loaded = load_checkpoint(path)
    for key, value in trained.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    x = np.random.default_rng(0).uniform(0, 1, (trained.config["num_steps"], 5) + shape)
    a, b = run_snntorch(trained.model, x), run_snntorch(loaded.model, x)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert loaded.config["readout"] in READOUTS
