"""Spiking Diffusion Models' mechanisms: IF neurons, pre-spike residual blocks with BatchNorm,
TSM gains and threshold guidance -- trained, exported and run on the reference and Lava."""
from __future__ import annotations

from collections import OrderedDict

import nir
import numpy as np
import pytest
import torch
from torch import nn

from spikedeploy.errors import SpikedeployError, UnsupportedError
from spikedeploy.export import export_model
from spikedeploy.export.layers import fold_batchnorm
from spikedeploy.hw_sim.compare import compare_records
from spikedeploy.hw_sim.lava_runner import simulate_lava
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir.passes import scale_thresholds as scale_program
from spikedeploy.ir.ops import ConvOp
from spikedeploy.models import run_snntorch
from spikedeploy.models.neurons import IF, TSM, scale_thresholds, tsm_parameters
from spikedeploy.models.residual import PreSpikeResidual
from spikedeploy.models.sdm import build_sdm_cnn, train_sdm_cnn

from helpers import assert_metadata_round_trip, assert_spikes_equal, sim_and_snn, through_file

T = 4
NEURONS = ["block1_sn", "block2_sn", "sn_out"]


def random_sdm(seed=0, tsm=True) -> nn.Sequential:
    """The SDM CNN with random BN statistics, TSM gains != 1 and weights that make it spike."""
    torch.manual_seed(seed)
    model = build_sdm_cnn(channels=4, blocks=2, num_steps=T, tsm=tsm)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.3, 2.0)
                m.weight.uniform_(0.6, 1.6)
                m.bias.uniform_(-0.1, 0.4)
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.0, 0.5)
        for gain in tsm_parameters(model):
            gain.uniform_(0.6, 1.6)
    return model.eval()


def image_batch(n=12, seed=0):
    img = np.random.default_rng(seed).random((n, 1, 8, 8)) * 1.5
    return np.broadcast_to(img, (T,) + img.shape).copy()


def test_export_folds_batchnorm_and_writes_the_residual_as_edges():
    model = random_sdm()
    graph = export_model(model, (1, 8, 8), readout="mean")
    names = set(graph.nodes)
    assert not any("bn" in n for n in names)          # folded, no node of its own
    assert {"conv0", "block1_sn", "block1_conv", "block2_sn", "block2_conv", "sn_out"} <= names
    into = lambda node: sorted(a for a, b in graph.edges if b == node)
    assert into("block1_sn") == ["conv0"]
    assert into("block2_sn") == ["block1_conv", "conv0"]                 # O_1 = conv1' + O_0
    assert into("sn_out") == ["block1_conv", "block2_conv", "conv0"]    # O_2 = conv2' + O_1
    conv, bn = model.block1.conv, model.block1.bn
    w, b = fold_batchnorm("x", conv.weight.double().detach().numpy(), None, bn)
    np.testing.assert_array_equal(graph.nodes["block1_conv"].weight, w)
    np.testing.assert_array_equal(graph.nodes["block1_conv"].bias, b)
    k = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).double().detach().numpy()
    np.testing.assert_allclose(w, conv.weight.double().detach().numpy() * k[:, None, None, None])
    gains = graph.nodes["block1_sn"].metadata["spikedeploy.tsm_gain"]
    assert gains.dtype == np.float64 and gains.shape == (T,)
    np.testing.assert_array_equal(gains, model.block1.sn.gain.double().detach().numpy())
    assert isinstance(graph.nodes["sn_out"], nir.IF)


@pytest.mark.parametrize("tsm", [True, False])
def test_reference_reproduces_snntorch_exactly_through_the_file(tsm, tmp_path):
    model = random_sdm(seed=1, tsm=tsm)
    graph = export_model(model, (1, 8, 8), readout="mean")
    x = image_batch(seed=1)
    read, program, ref, snn = sim_and_snn(model, graph, x, tmp_path)
    assert_metadata_round_trip(graph, read)
    assert isinstance(program.ops["block1_conv"], ConvOp)
    assert_spikes_equal(snn, ref, NEURONS + ["readout", "output"], min_rate=0.02)
    assert program.meta("spikedeploy.readout") == "mean"


@pytest.mark.lava
def test_lava_float_gives_the_snntorch_spikes(tmp_path):
    model = random_sdm(seed=2)
    x = image_batch(n=4, seed=2)
    read, program = through_file(export_model(model, (1, 8, 8), readout="mean"), tmp_path)
    lava = simulate_lava(read, x, program=program)
    assert lava.latency > 0                                   # residual paths equalised
    assert_spikes_equal(run_snntorch(model, x), lava, NEURONS + ["readout"], min_rate=0.02)
    guided = simulate_lava(read, x, program=scale_program(program, 0.8))   # threshold guidance
    assert_spikes_equal(run_snntorch(scale_thresholds(model, 0.8), x), guided, NEURONS, min_rate=0.02)


def test_training_loss_falls_and_tsm_fine_tunes_only_the_gains():
    trained = train_sdm_cnn(channels=4, blocks=1, epochs=3, tsm_epochs=1, train_subset=256)
    losses = trained.config["training"]["epoch_losses"]
    assert losses[-1] < losses[0]
    gains = tsm_parameters(trained.model)
    assert gains and any(not torch.equal(g, torch.ones_like(g)) for g in gains)
    assert trained.config["test_accuracy"] > 0.3
    assert trained.config["readout"] == "mean" and trained.config["tsm"] is True


def test_residual_block_needs_matching_shapes_and_one_neuron():
    block = PreSpikeResidual(3, IF((3, 8, 8)))
    model = nn.Sequential(OrderedDict(conv0=nn.Conv2d(1, 3, 3, padding=1), b=block))
    export_model(model, (1, 8, 8))
    with pytest.raises(UnsupportedError, match="b_sn"):
        export_model(model, (1, 6, 6))
    with pytest.raises(SpikedeployError):
        PreSpikeResidual(3, kernel_size=2, spatial=(8, 8))


def test_threshold_guidance_at_export_equals_simulate_time_and_snntorch(tmp_path):
    model = random_sdm(seed=3)
    x = image_batch(seed=3)
    gamma = 0.8
    at_export = export_model(model, (1, 8, 8), threshold_scale=gamma)
    assert at_export.metadata["spikedeploy.threshold_scale"] == gamma
    _, exported = through_file(at_export, tmp_path, "scaled.nir")
    _, plain = through_file(export_model(model, (1, 8, 8)), tmp_path, "plain.nir")
    at_simulate = scale_program(plain, gamma)
    a, b = simulate(exported, x), simulate(at_simulate, x)
    assert compare_records(a, b).agrees
    assert_spikes_equal(run_snntorch(scale_thresholds(model, gamma), x), a, NEURONS, min_rate=0.02)
    base = simulate(plain, x)
    assert sum(a.records[n].sum() for n in NEURONS) > sum(base.records[n].sum() for n in NEURONS)
    with pytest.raises(SpikedeployError):
        export_model(model, (1, 8, 8), threshold_scale=0.0)


def test_threshold_sweep_reports_accuracy_spikes_and_energy(tmp_path):
    from spikedeploy.deploy.inputs import InputBatch
    from spikedeploy.deploy.sweep import threshold_sweep
    model = random_sdm(seed=4)
    graph = export_model(model, (1, 8, 8), readout="mean")
    read, program = through_file(graph, tmp_path)
    x = image_batch(n=10, seed=4)
    labels = np.arange(10) % 10
    rows = threshold_sweep(read, program, InputBatch(x, labels, 16.0, "test"), [0.8, 1.0, 1.25])
    assert [r["threshold_scale"] for r in rows] == [0.8, 1.0, 1.25]
    spikes = [r["spikes"] for r in rows]
    energy = [r["energy_per_inference_pJ"] for r in rows]
    assert spikes[0] > spikes[1] > spikes[2] and energy[0] > energy[2]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)


def test_batchnorm_after_linear_folds_and_standalone_batchnorm_is_refused(tmp_path):
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(5)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 5), bn1=bn, if1=IF(5, threshold=0.5))).eval()
    x = np.random.default_rng(0).uniform(0, 2, (6, 8, 4))
    graph = export_model(model, (4,))
    assert "bn1" not in graph.nodes
    _, _, ref, snn = sim_and_snn(model, graph, x, tmp_path)
    assert_spikes_equal(snn, ref, ["if1"], min_rate=0.05)
    alone = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 5), if0=IF(5), bn1=nn.BatchNorm1d(5)))
    with pytest.raises(UnsupportedError, match="'bn1'.*folded"):
        export_model(alone, (4,))
    no_stats = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False))
    with pytest.raises(UnsupportedError, match="running statistics"):
        export_model(no_stats, (1, 5, 5))


def test_tsm_gains_shorter_than_the_run_are_refused_by_the_simulator(tmp_path):
    model = nn.Sequential(OrderedDict(fc=nn.Linear(3, 3), tsm1=TSM(IF(3), 2)))
    _, program = through_file(export_model(model, (3,)), tmp_path)
    with pytest.raises(UnsupportedError, match="tsm_gain"):
        simulate(program, np.zeros((3, 1, 3)))


def test_denoiser_trains_exports_exactly_and_sweeps_threshold_guidance(tmp_path):
    from spikedeploy.deploy.inputs import InputBatch
    from spikedeploy.deploy.sweep import threshold_sweep
    from spikedeploy.models.denoiser import train_denoiser
    trained = train_denoiser(channels=4, blocks=1, epochs=3, tsm_epochs=1, train_subset=300,
                             samples=12)
    cfg = trained.config
    losses = cfg["training"]["epoch_losses"]
    assert losses[-1] < losses[0]
    assert cfg["test_metrics"]["x0_mse"] < cfg["test_metrics"]["noisy_x0_mse"]   # it denoises
    graph = export_model(trained.model, (1, 8, 8), readout="mean")
    x, eps = trained.arrays["inputs"], trained.arrays["targets"]
    read, program, ref, snn = sim_and_snn(trained.model, graph, x, tmp_path)
    assert_spikes_equal(snn, ref, ["block1_sn", "sn_out", "readout"], min_rate=0.02)
    rows = threshold_sweep(read, program, InputBatch(x, None, 1.0, "noisy digits"),
                           [0.9, 1.0, 1.1], targets=eps)
    assert all(r["accuracy"] is None and r["mse"] > 0 for r in rows)
    assert rows[0]["spikes"] > rows[1]["spikes"] > rows[2]["spikes"]
    plain = rows[1]["mse"]
    np.testing.assert_allclose(plain, np.mean((snn["output"].mean(0) - eps) ** 2), rtol=1e-12)
