"""STA's universal group operators: ReLU MLPs fitted to GELU, exp, 1/x and 1/sqrt(x), converted
to IF neurons over T steps, usable as layers, exported to NIR and run on Lava."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from spikedeploy.export import export_model
from spikedeploy.hw_sim.lava_runner import simulate_lava
from spikedeploy.models import run_snntorch
from spikedeploy.models.neurons import IF
from spikedeploy.models.ugo import (FUNCTIONS, SpikingUGO, error_vs_steps, fit_ugo, grid_inputs,
                                    hidden_thresholds)

from helpers import assert_metadata_round_trip, assert_spikes_equal, sim_and_snn, through_file


@pytest.fixture(scope="module")
def fitted():
    return {name: fit_ugo(name, hidden=24, steps=500, seed=1) for name in FUNCTIONS}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_fitting_loss_falls_and_the_ann_approximates(fitted, name):
    ugo, losses = fitted[name]
    assert losses[-1] < 0.05 * losses[0]
    lo, hi = FUNCTIONS[name].domain
    x = torch.linspace(lo, hi, 200)
    with torch.no_grad():
        y = FUNCTIONS[name].fn(x)
        err = (ugo(x) - y).abs().max()
    assert err < 0.2 * (y.max() - y.min())


@pytest.mark.parametrize("name", ["gelu", "rsqrt"])
def test_spike_counts_are_the_quantised_hidden_activations(fitted, name):
    ugo, _ = fitted[name]
    steps = 16
    domain = FUNCTIONS[name].domain
    x = grid_inputs(name, 100, steps)
    layer = SpikingUGO.from_ugo(ugo, domain, 1, steps)
    rec = run_snntorch(nn.Sequential(OrderedDict(ugo=layer)), x)
    counts = rec["ugo_sn"].sum(0)
    with torch.no_grad():
        pre = ugo.fc1(torch.from_numpy(x[0]).float()).double().numpy()
    theta = hidden_thresholds(ugo, domain).double().numpy()
    # k_j = round(T h_j / theta_j) clipped to [0, T]; exact ties (x.5) round down and are skipped
    k = steps * pre / theta
    want = np.clip(np.round(k), 0, steps)
    exact = np.abs(k - np.floor(k) - 0.5) > 1e-9
    assert exact.mean() > 0.99 and 0.05 < counts.mean() / steps < 0.95
    np.testing.assert_array_equal(counts[exact], want[exact])


def test_error_falls_with_more_steps(fitted):
    rows = error_vs_steps(fitted["gelu"][0], "gelu", steps=(4, 16, 64), n=200)
    errors = [r["max_abs_error_vs_ann"] for r in rows]
    assert errors[0] > errors[1] > errors[2]
    assert all(r["mean_abs_error"] <= r["max_abs_error"] for r in rows)


def ugo_network(fitted, steps=12):
    """A UGO used as a layer: Linear -> SpikingUGO(exp) -> Linear -> IF, direct input."""
    torch.manual_seed(0)
    ugo = SpikingUGO.from_ugo(fitted["exp"][0], FUNCTIONS["exp"].domain, features=3, num_steps=steps)
    pre = nn.Linear(5, 3)
    post = nn.Linear(3, 4)
    with torch.no_grad():
        pre.weight.uniform_(-1.0, 0.0)
        post.weight.normal_(0.0, 2.0)
    return nn.Sequential(OrderedDict(fc_in=pre, ugo=ugo, fc_out=post, if1=IF(4, threshold=0.3)))


def test_ugo_as_a_layer_exports_and_matches_exactly(fitted, tmp_path):
    model = ugo_network(fitted)
    graph = export_model(model, (5,), readout="spike_count")
    assert {"ugo_fc_in", "ugo_sn", "ugo_fc_out", "ugo_acc"} <= set(graph.nodes)
    assert graph.nodes["ugo_sn"].metadata["spikedeploy.reset_mode"] == "subtract"
    x = np.broadcast_to(np.random.default_rng(0).uniform(0, 2, (20, 5)), (12, 20, 5)).copy()
    read, _, ref, snn = sim_and_snn(model, graph, x, tmp_path)
    assert_metadata_round_trip(graph, read)
    assert_spikes_equal(snn, ref, ["ugo_sn", "ugo_acc", "if1"], min_rate=0.05)


@pytest.mark.lava
def test_lava_float_gives_the_snntorch_values(fitted, tmp_path):
    model = nn.Sequential(OrderedDict(
        ugo=SpikingUGO.from_ugo(fitted["recip"][0], FUNCTIONS["recip"].domain, 2, 16)))
    x = grid_inputs("recip", 6, 16, features=2)
    read, program = through_file(export_model(model, (2,), readout="last_step"), tmp_path)
    lava = simulate_lava(read, x, program=program)
    assert_spikes_equal(run_snntorch(model, x), lava, ["ugo_sn", "ugo_acc", "output"], min_rate=0.05)
