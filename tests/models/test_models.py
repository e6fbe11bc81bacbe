"""Stage 1: data, encoders, the MLP, run_snntorch, training and checkpoints."""
from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import snntorch as snn
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from spikedeploy.errors import SpikedeployError
from spikedeploy.models import (TrainConfig, build_mlp, encode, layer_names, load_checkpoint,
                                load_digits_split, run_snntorch, save_checkpoint, train,
                                training_config)
from spikedeploy.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE

TINY = dict(hidden=32, num_steps=8, epochs=3, train_subset=320, seed=3)


@pytest.fixture(scope="module")
def default_run():
    """The default training (T=25, rate coding), once for the module."""
    return train(TrainConfig())


@pytest.fixture(scope="module")
def tiny_run():
    return train(TrainConfig(**TINY))


@pytest.fixture
def checkpoint_dir(tiny_run, tmp_path):
    return save_checkpoint(tmp_path / "ckpt", tiny_run.model, training_config(tiny_run))


# --- data and encoders ----------------------------------------------------------

def test_digits_split_is_scaled_stratified_and_seeded():
    a, b = load_digits_split(0), load_digits_split(0)
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert a.x_train.dtype == np.float64 and 0.0 <= a.x_train.min() and a.x_train.max() == 1.0
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)
    assert set(np.bincount(a.y_test)) <= {35, 36, 37}          # stratified: ~36 per class
    assert not np.array_equal(load_digits_split(1).y_test, a.y_test)


def test_rate_encoding_is_deterministic_bernoulli():
    x = load_digits_split(0).x_test[:50]
    spikes = encode(x, 200, "rate", seed=7)
    assert spikes.shape == (200, 50, 64) and spikes.dtype == np.float64
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    assert np.array_equal(spikes, encode(x, 200, "rate", seed=7))
    assert not np.array_equal(spikes, encode(x, 200, "rate", seed=8))
    assert np.abs(spikes.mean(axis=0) - x).max() < 0.2           # p = pixel value
    assert not spikes[:, x == 0].any()


def test_direct_encoding_repeats_the_analog_value():
    x = load_digits_split(0).x_test[:5]
    inputs = encode(x, 4, "direct")
    assert inputs.shape == (4, 5, 64) and all(np.array_equal(step, x) for step in inputs)


@pytest.mark.parametrize("args", [(5, "poisson"), (0, "rate")])
def test_encode_rejects_bad_arguments(args):
    with pytest.raises(SpikedeployError):
        encode(np.zeros((2, 64)), *args)


# --- the model and run_snntorch ---------------------------------------------------

def test_mlp_layers_are_per_neuron_zero_reset_leaky():
    model = build_mlp(hidden=16)
    assert layer_names(model) == ["fc1", "lif1", "fc2", "lif2"]
    for lif, size in ((model.lif1, 16), (model.lif2, 10)):
        assert isinstance(lif, snn.Leaky) and lif.reset_mechanism == "zero" and not lif.reset_delay
        assert lif.beta.shape == (size,) and lif.threshold.shape == (size,)
        assert torch.all(lif.beta == torch.tensor(0.9)) and torch.all(lif.threshold == 1.0)


def test_layer_names_for_index_named_sequentials():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), snn.Leaky(0.5, init_hidden=True),
                          nn.Linear(3, 2), snn.Leaky(0.5, init_hidden=True))
    assert layer_names(model) == ["flatten1", "fc1", "lif1", "fc2", "lif2"]
    with pytest.raises(SpikedeployError, match="reserved"):
        layer_names(nn.Sequential(OrderedDict(output=nn.Linear(2, 2))))
    with pytest.raises(SpikedeployError, match="collide"):
        layer_names(nn.Sequential(OrderedDict([("fc1", nn.Linear(2, 2)), ("1", nn.Linear(2, 2))])))


def test_run_snntorch_records_every_spiking_layer():
    torch.manual_seed(0)
    model = build_mlp(hidden=16)
    x = encode(load_digits_split(0).x_test[:20], 6, "rate", seed=0)
    out = run_snntorch(model, x)
    assert set(out) == {"lif1", "lif2", "output"}
    assert out["lif1"].shape == (6, 20, 16) and out["lif2"].shape == (6, 20, 10)
    assert np.array_equal(out["output"], out["lif2"])
    assert next(model.parameters()).dtype == torch.float32          # the caller's model is untouched
    # state is reset per batch: chunked runs equal one run
    chunked = run_snntorch(model, x, batch_size=7)
    assert all(np.array_equal(out[k], chunked[k]) for k in out)
    assert out["lif1"].any()


# --- training ------------------------------------------------------------------

def test_training_loss_falls(tiny_run):
    losses = tiny_run.epoch_losses
    assert len(losses) == TINY["epochs"] and losses[-1] < 0.8 * losses[0]


def test_training_is_deterministic(tiny_run):
    again = train(TrainConfig(**{**TINY, "epochs": 1}))
    once_more = train(TrainConfig(**{**TINY, "epochs": 1}))
    for a, b in zip(again.model.state_dict().values(), once_more.model.state_dict().values()):
        assert torch.equal(a, b)


def test_default_training_reaches_90_percent(default_run):
    # Training time is measured (config, demo output), never asserted: speed lives in benchmarks/.
    assert default_run.config.num_steps == 25 and default_run.config.encoding == "rate"
    assert default_run.test_accuracy >= 0.90


# --- checkpoints ---------------------------------------------------------------

def test_checkpoint_round_trip_gives_identical_outputs(tiny_run, checkpoint_dir):
    loaded = load_checkpoint(checkpoint_dir)
    config = json.loads((checkpoint_dir / CONFIG_FILE).read_text())
    assert config["architecture"] == "mlp" and config["num_steps"] == TINY["num_steps"]
    assert config["hidden"] == TINY["hidden"] and config["encoding"] == "rate"
    assert config["dt"] == 1e-4 and config["seed"] == TINY["seed"]
    assert config["test_accuracy"] == tiny_run.test_accuracy
    for key, value in tiny_run.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    x = encode(load_digits_split(TINY["seed"]).x_test[:40], TINY["num_steps"], "rate", 0)
    a, b = run_snntorch(tiny_run.model, x), run_snntorch(loaded.model, x)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert load_checkpoint(checkpoint_dir / WEIGHTS_FILE).config == loaded.config


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path):
    path.write_bytes(b"\x00\xff not a safetensors file")


def _pickle_instead(path):
    torch.save({"fc1.weight": torch.zeros(2)}, path)


def _wrong_shapes(path):
    state = load_file(str(path))
    state["fc1.weight"] = torch.zeros(3, 64)
    save_file(state, str(path))


def _subtract_reset_code(path):
    state = load_file(str(path))
    state["lif1.reset_mechanism_val"] = torch.tensor(0)
    save_file(state, str(path))


def _nan_weights(path):
    state = load_file(str(path))
    state["fc2.bias"] = state["fc2.bias"] * float("nan")
    save_file(state, str(path))


def _missing_key(path):
    state = load_file(str(path))
    del state["fc2.weight"]
    save_file(state, str(path))


@pytest.mark.parametrize("damage", [_truncate, _garbage, _pickle_instead, _wrong_shapes,
                                    _subtract_reset_code, _nan_weights, _missing_key,
                                    lambda p: p.unlink()])
def test_damaged_weights_raise_spikedeploy_error(checkpoint_dir, damage):
    damage(checkpoint_dir / WEIGHTS_FILE)
    with pytest.raises(SpikedeployError) as info:
        load_checkpoint(checkpoint_dir)
    assert "\n" not in str(info.value) and WEIGHTS_FILE in str(info.value)


def _edit_config(**changes):
    def edit(path):
        config = json.loads(path.read_text())
        config.update(changes)
        path.write_text(json.dumps(config))
    return edit


@pytest.mark.parametrize("damage", [
    lambda p: p.unlink(), _truncate, lambda p: p.write_text("[1, 2]"),
    lambda p: p.write_bytes(b"\xff\xfe\x00"),
    _edit_config(architecture="resnet"), _edit_config(hidden=33), _edit_config(hidden="32"),
    _edit_config(encoding="poisson"), _edit_config(dt=-1.0), _edit_config(reset_mechanism="subtract"),
    lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items()
                                       if k != "num_steps"})),
])
def test_damaged_config_raises_spikedeploy_error(checkpoint_dir, damage):
    damage(checkpoint_dir / CONFIG_FILE)
    with pytest.raises(SpikedeployError) as info:
        load_checkpoint(checkpoint_dir)
    assert "\n" not in str(info.value)


def test_missing_checkpoint_directory(tmp_path):
    with pytest.raises(SpikedeployError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
