"""IMP-SNN: learnable initial membrane potential with LTS / TET-S, as node metadata and as the
strict pure-NIR construction, on the reference simulator and Lava."""
from __future__ import annotations

from collections import OrderedDict

import nir
import numpy as np
import pytest
import torch
from torch import nn

from spikedeploy.errors import UnsupportedError
from spikedeploy.export import export_model
from spikedeploy.readout import accuracy, predictions
from spikedeploy.hw_sim.lava_runner import simulate_lava
from spikedeploy.metadata import V_INIT
from spikedeploy.models import run_snntorch
from spikedeploy.models.imp import build_imp_mlp, train_imp
from spikedeploy.models.neurons import IF, IMPLIF, TSM, LIF

from helpers import assert_metadata_round_trip, assert_spikes_equal, sim_and_snn, through_file

T = 6


def random_imp(seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    model = build_imp_mlp(num_inputs=20, hidden=24, num_outputs=5, beta=0.6)
    with torch.no_grad():
        model.fc1.weight.normal_(0, 0.5)
        model.imp1.v_init.uniform_(-0.5, 1.4)     # trained v0 may leave [0.4, 0.6], even pass 1
    return model


def inputs(n=16, seed=0):
    img = np.random.default_rng(seed).random((n, 20))
    return np.broadcast_to(img, (T,) + img.shape).copy()


@pytest.mark.parametrize("strict", [False, True])
def test_reference_reproduces_snntorch_with_metadata_or_strict_nir(strict, tmp_path):
    model = random_imp(1)
    graph = export_model(model, (20,), readout="last_step", strict_nir=strict)
    x = inputs(seed=1)
    read, program, ref, snn = sim_and_snn(model, graph, x, tmp_path)
    assert_metadata_round_trip(graph, read)
    assert_spikes_equal(snn, ref, ["imp1", "readout", "output"], min_rate=0.05)
    imp = graph.nodes["imp1"]
    if strict:
        assert V_INIT not in imp.metadata and graph.metadata["spikedeploy.strict_nir"] == 1
        assert ref.records["strict_clock"][:, :, 0].tolist() == [[1] * 16] + [[0] * 16] * (T - 1)
        assert all(isinstance(n, (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.IF, nir.LIF,
                                  nir.LI, nir.I)) and not n.metadata for n in read.nodes.values())
    else:
        np.testing.assert_array_equal(imp.metadata[V_INIT],
                                      model.imp1.v_init.double().detach().numpy())
        np.testing.assert_array_equal(program.ops["imp1"].params.v_init,
                                      model.imp1.v_init.double().detach().numpy())


def test_initial_voltage_changes_the_spikes():
    """The v0 metadata is not decorative: zeroing it changes the first steps' spikes."""
    model = random_imp(2)
    x = inputs(seed=2)
    with_v0 = run_snntorch(model, x)["imp1"]
    with torch.no_grad():
        model.imp1.v_init.zero_()
    assert not np.array_equal(with_v0, run_snntorch(model, x)["imp1"])


@pytest.mark.lava
@pytest.mark.parametrize("strict", [False, True])
def test_lava_float_gives_the_snntorch_spikes(strict, tmp_path):
    model = random_imp(3)
    x = inputs(n=6, seed=3)
    read, program = through_file(export_model(model, (20,), readout="last_step", strict_nir=strict),
                                 tmp_path)
    lava = simulate_lava(read, x, program=program)
    assert_spikes_equal(run_snntorch(model, x), lava, ["imp1", "readout"], min_rate=0.05)


@pytest.mark.parametrize("loss, readout", [("lts", "last_step"), ("tet_s", "mean")])
def test_training_loss_falls_v0_learns_and_readout_is_recorded(loss, readout, tmp_path):
    trained = train_imp(loss=loss, hidden=32, num_steps=4, epochs=4, train_subset=600)
    losses = trained.config["training"]["epoch_losses"]
    assert losses[-1] < losses[0]
    assert trained.config["training"]["v0_mean_abs_change"] > 1e-3
    assert trained.config["readout"] == readout and trained.config["test_accuracy"] > 0.3
    graph = export_model(trained.model, (64,), readout=readout)
    assert graph.metadata["spikedeploy.readout"] == readout
    from spikedeploy.models.data import load_digits_split
    from spikedeploy.models.fit import image_inputs
    split = load_digits_split(0)
    x = image_inputs(split.x_test[:50], 4, (64,))
    read, program, ref, snn = sim_and_snn(trained.model, graph, x, tmp_path)
    out = ref.output()
    assert accuracy(out, split.y_test[:50], program.meta("spikedeploy.readout")) == \
        np.mean(predictions(snn["output"], readout) == split.y_test[:50])


def test_strict_nir_refuses_what_has_no_pure_nir_form():
    tsm = nn.Sequential(OrderedDict(fc=nn.Linear(3, 4), tsm1=TSM(IF(4), 4)))
    with pytest.raises(UnsupportedError, match="'tsm1'.*tsm_gain"):
        export_model(tsm, (3,), strict_nir=True)
    sub = nn.Sequential(OrderedDict(fc=nn.Linear(3, 4), if1=IF(4, reset_mechanism="subtract")))
    with pytest.raises(UnsupportedError, match="'if1'.*reset_mode"):
        export_model(sub, (3,), strict_nir=True)
    conv = nn.Sequential(OrderedDict(c=nn.Conv2d(1, 2, 3, padding=1), imp=IMPLIF((2, 4, 4))))
    with pytest.raises(UnsupportedError, match="'imp'.*1-D"):
        export_model(conv, (1, 4, 4), strict_nir=True)
    export_model(conv, (1, 4, 4))                          # fine as metadata
    export_model(nn.Sequential(nn.Linear(3, 4), LIF(4, v_init=0.0)), (3,), strict_nir=True)
