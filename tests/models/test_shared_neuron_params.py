"""shared_neuron_params: one beta and one threshold per layer (Loihi's stock LIF process),
through train_and_save's checkpoint and export_checkpoint's NIR graph."""
from __future__ import annotations

import json

import nir
import numpy as np
import pytest
from safetensors.torch import load_file

from spikedeploy.deploy.stages import train_and_save
from spikedeploy.errors import SpikedeployError
from spikedeploy.export import export_checkpoint
from spikedeploy.models import load_checkpoint
from spikedeploy.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from spikedeploy.models.recipes import train_recipe

TINY = dict(epochs=1, train_subset=64, num_steps=4)
SIZES = {"mlp": dict(hidden=16), "snn-cnn": {}, "snn-rnn": dict(hidden=16)}
LIF_LAYERS = {"mlp": ["lif1", "lif2"], "snn-cnn": ["lif1", "lif2", "lif3"],
              "snn-rnn": ["rlif1", "lif2"]}


def _train_tiny(tmp_path, model: str, **options):
    checkpoint = tmp_path / "ckpt"
    config = train_and_save(checkpoint, model=model, progress=lambda msg: None,
                            **TINY, **SIZES[model], **options)
    return config, checkpoint


def _neuron_value_shapes(checkpoint) -> dict:
    """Shapes of every beta and threshold tensor in the checkpoint's weights."""
    return {key: tuple(tensor.shape) for key, tensor in load_file(checkpoint / WEIGHTS_FILE).items()
            if key.endswith((".beta", ".threshold"))}


@pytest.mark.parametrize("model", ["mlp", "snn-cnn", "snn-rnn"])
def test_shared_neuron_params_give_one_tau_and_threshold_per_nir_layer(model, tmp_path):
    config, checkpoint = _train_tiny(tmp_path, model, shared_neuron_params=True)
    assert config["shared_neuron_params"] is True
    shapes = _neuron_value_shapes(checkpoint)
    assert len(shapes) == 2 * len(LIF_LAYERS[model]) and set(shapes.values()) == {()}

    graph = export_checkpoint(checkpoint)   # rebuilds the 0-d modules and loads the weights
    lifs = {name: node for name, node in graph.nodes.items() if isinstance(node, nir.LIF)}
    assert sorted(lifs) == sorted(LIF_LAYERS[model])
    for name, node in lifs.items():
        assert node.tau.size > 1, name                              # NIR: arrays per neuron ...
        assert np.unique(node.tau).size == 1, name                  # ... of one value per layer
        assert np.unique(node.v_threshold).size == 1, name


@pytest.mark.parametrize("model", ["mlp", "snn-cnn", "snn-rnn"])
def test_without_the_option_neuron_values_stay_per_neuron(model, tmp_path):
    config, checkpoint = _train_tiny(tmp_path, model)
    assert config["shared_neuron_params"] is False
    shapes = _neuron_value_shapes(checkpoint)
    assert len(shapes) == 2 * len(LIF_LAYERS[model])
    assert all(len(shape) >= 1 and np.prod(shape) > 1 for shape in shapes.values()), shapes


def test_config_decides_the_rebuilt_neuron_shapes(tmp_path):
    _, checkpoint = _train_tiny(tmp_path, "mlp", shared_neuron_params=True)
    config_path = checkpoint / CONFIG_FILE
    config = json.loads(config_path.read_text())
    assert load_checkpoint(checkpoint).model.lif1.beta.shape == ()
    for value, message in ((False, "shape"), ("yes", "shared_neuron_params")):
        config_path.write_text(json.dumps({**config, "shared_neuron_params": value}))
        with pytest.raises(SpikedeployError, match=message):
            load_checkpoint(checkpoint)


@pytest.mark.parametrize("model", ["fastsnn", "sdm-cnn", "imp-lts"])
def test_other_recipes_refuse_shared_neuron_params(model):
    with pytest.raises(SpikedeployError, match="shared-neuron-params"):
        train_recipe(model, shared_neuron_params=True, epochs=1, train_subset=8)
