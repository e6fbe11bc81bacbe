"""Checkpoints: a directory holding ``model.safetensors`` and ``config.json``.

* ``model.safetensors``: the model's full ``state_dict`` (weights, biases
  and every neuron buffer: per-neuron beta and threshold, snnTorch's
  reset-mechanism code and graded-spike factor).
* ``config.json``: what is needed to rebuild the module and use it --
  architecture, sizes, num_steps T, dt, encoding, seed, dataset, readout,
  input_shape, the neuron settings, and the test accuracy.
  ``shared_neuron_params`` (mlp, snn-cnn, snn-rnn; absent means false):
  true when each layer holds one 0-d beta and threshold, not per-neuron tensors.

Architectures (:data:`ARCHITECTURES`, name in config.json -> builder and
the keys it needs besides the common ones): ``mlp`` (the reference MLP),
``sdm-cnn`` (SDM residual IF CNN, optional TSM), ``imp-mlp`` (IMP neurons,
LTS or TET-S readout), ``fastsnn-mlp`` (a ReLU MLP converted to IF neurons),
``ugo`` (a spiking universal group operator), ``sdm-denoiser``.

Loading never executes code: safetensors and JSON only, no pickle. Any
missing, truncated or inconsistent file raises
:class:`~spikedeploy.errors.SpikedeployError` with a one-line message.
Each file is written atomically; a crash between the two files leaves a
pair that ``load_checkpoint`` rejects as inconsistent or one that is
complete.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes
from torch import nn

from ..errors import SpikedeployError, first_line
from ..fileio import write_files
from ..limits import bounded_allocation, describe
from ..metadata import ENCODINGS, READOUTS
from ..settings_files import parse_json, read_settings_text
from .mlp import ARCHITECTURE as MLP, build_mlp

WEIGHTS_FILE = "model.safetensors"
MODEL_BUILD_SLACK = 256 << 20    # bytes a model's build may take beyond its weights
CONFIG_FILE = "config.json"
FORMAT = "spikedeploy.checkpoint"
FORMAT_VERSION = 1
RESET_MECHANISM_CODE = {"subtract": 0, "zero": 1, "none": 2}   # snnTorch's reset_mechanism_val

_NUMBER = (int, float)
# Keys every config.json must hold, with their JSON types.
COMMON_KEYS: dict[str, tuple] = {
    "architecture": (str,), "num_steps": (int,), "dt": _NUMBER, "encoding": (str,), "seed": (int,),
}
MLP_KEYS: dict[str, tuple] = {
    "num_inputs": (int,), "hidden": (int,), "num_outputs": (int,),
    "beta": _NUMBER, "threshold": _NUMBER, "reset_mechanism": (str,),
}


def _build_mlp_from_config(config: dict) -> nn.Sequential:
    if config["reset_mechanism"] != "zero":
        raise SpikedeployError(f"mlp checkpoints use reset_mechanism 'zero', "
                               f"config.json says {config['reset_mechanism']!r}")
    return build_mlp(num_inputs=config["num_inputs"], hidden=config["hidden"],
                     num_outputs=config["num_outputs"], beta=config["beta"],
                     threshold=config["threshold"],
                     learn_beta=bool(config.get("learn_beta", False)),
                     learn_threshold=bool(config.get("learn_threshold", False)),
                     shared_neuron_params=config.get("shared_neuron_params", False))


@dataclass(frozen=True)
class Architecture:
    build: Callable[[dict], nn.Sequential]     # config -> untrained module of the same structure
    keys: dict                                 # required keys besides COMMON_KEYS: JSON types


def _registry() -> dict[str, Architecture]:
    from . import cnn, denoiser, fastsnn, imp, recurrent, sdm, ugo   # none imports this module
    registry = {MLP: Architecture(_build_mlp_from_config, MLP_KEYS)}
    for module in (sdm, imp, fastsnn, ugo, denoiser, cnn, recurrent):
        for name, (build, keys) in module.ARCHITECTURES.items():
            registry[name] = Architecture(build, keys)
    return registry


# Registry: architecture name in config.json -> Architecture.
ARCHITECTURES: dict[str, Architecture] = _registry()


def input_shape_of(config: dict) -> tuple:
    """The model's input shape (batch and time excluded) recorded in a config."""
    if "input_shape" in config:
        return tuple(int(s) for s in config["input_shape"])
    return (int(config["num_inputs"]),)


@dataclass
class Checkpoint:
    model: nn.Sequential
    config: dict


def training_config(result) -> dict:
    """The config.json contents for a :class:`~spikedeploy.models.mlp_training.TrainResult`."""
    c = result.config
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "architecture": MLP, "dataset": "digits",
        "num_inputs": int(result.model.fc1.in_features), "hidden": int(c.hidden),
        "num_outputs": int(result.model.fc2.out_features),
        "num_steps": int(c.num_steps), "dt": float(c.dt), "encoding": c.encoding, "seed": int(c.seed),
        "beta": float(c.beta), "threshold": float(c.threshold),
        "learn_beta": bool(c.learn_beta), "learn_threshold": bool(c.learn_threshold),
        "shared_neuron_params": bool(c.shared_neuron_params),
        "reset_mechanism": "zero", "reset_delay": False,
        "test_accuracy": float(result.test_accuracy),
        "training": {"epochs": c.epochs, "batch_size": c.batch_size, "lr": c.lr,
                     "train_subset": c.train_subset, "seconds": round(result.seconds, 3),
                     "cpu_seconds": round(result.cpu_seconds, 3),
                     "epoch_losses": [float(x) for x in result.epoch_losses]},
    }


def save_checkpoint(path, model: nn.Sequential, config: dict) -> Path:
    """Write ``model`` and ``config`` into directory ``path`` (created if needed)."""
    _validate_config(config, "config")
    directory = Path(path)
    # safetensors needs contiguous tensors that share no storage
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, **config}
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpikedeployError(f"{directory}: cannot write checkpoint: {exc.strerror or exc}")
    # weights and config appear together or not at all
    write_files({directory / WEIGHTS_FILE: save_bytes(state), directory / CONFIG_FILE: text})
    return directory


def load_checkpoint(path) -> Checkpoint:
    """Rebuild the model saved in directory ``path`` (or one of its two files)."""
    directory = Path(path)
    if directory.is_file() and directory.name in (WEIGHTS_FILE, CONFIG_FILE):
        directory = directory.parent
    if not directory.is_dir():
        raise SpikedeployError(f"{directory}: no such checkpoint directory")
    config = read_config(directory)
    build = ARCHITECTURES[config["architecture"]].build
    try:
        # The parameters the config declares are what the weights file holds:
        # a model much bigger than that cannot be this checkpoint's.
        weights = directory / WEIGHTS_FILE
        held = weights.stat().st_size if weights.is_file() else 0
        with bounded_allocation(f"the model it declares (its weights file holds only "
                                f"{describe(held)})", 2 * held + MODEL_BUILD_SLACK):
            model = build(config)
    except (KeyError, TypeError, ValueError, SpikedeployError) as exc:
        raise SpikedeployError(f"{directory / CONFIG_FILE}: cannot rebuild the "
                               f"{config['architecture']!r} model: {exc}")
    state = _read_weights(directory / WEIGHTS_FILE)
    _load_state(model, state, directory / WEIGHTS_FILE, config)
    model.eval()
    return Checkpoint(model, config)


def read_config(directory) -> dict:
    """Parse and validate ``config.json`` of a checkpoint directory."""
    config_path = Path(directory) / CONFIG_FILE
    if not config_path.exists():
        raise SpikedeployError(f"{config_path}: missing checkpoint config")
    config = parse_json(read_settings_text(config_path, "checkpoint config"), str(config_path))
    _validate_config(config, str(config_path))
    return config


def _validate_config(config, where: str) -> None:
    if not isinstance(config, dict):
        raise SpikedeployError(f"{where}: expected a JSON object, got {type(config).__name__}")
    _check_keys(config, COMMON_KEYS, where)
    if config["architecture"] not in ARCHITECTURES:
        raise SpikedeployError(f"{where}: unknown architecture {config['architecture']!r} "
                               f"(known: {', '.join(ARCHITECTURES)})")
    _check_keys(config, ARCHITECTURES[config["architecture"]].keys, where)
    if config["encoding"] not in ENCODINGS:
        raise SpikedeployError(f"{where}: unknown encoding {config['encoding']!r}")
    if "reset_mechanism" in config and config["reset_mechanism"] not in RESET_MECHANISM_CODE:
        raise SpikedeployError(f"{where}: unknown reset_mechanism {config['reset_mechanism']!r}")
    for key in ("num_inputs", "hidden", "num_outputs", "num_steps"):
        if key in config and (not isinstance(config[key], int) or config[key] < 1):
            raise SpikedeployError(f"{where}: '{key}' must be positive, got {config[key]}")
    if "input_shape" in config:
        shape = config["input_shape"]
        if not (isinstance(shape, list) and shape and
                all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise SpikedeployError(f"{where}: 'input_shape' must be a list of positive ints, got {shape!r}")
    if not isinstance(config.get("shared_neuron_params", False), bool):
        raise SpikedeployError(f"{where}: 'shared_neuron_params' must be true or false, "
                               f"got {config['shared_neuron_params']!r}")
    if "readout" in config:
        if config["readout"] not in READOUTS:
            raise SpikedeployError(f"{where}: unknown readout {config['readout']!r}")
    if not (math.isfinite(config["dt"]) and config["dt"] > 0):
        raise SpikedeployError(f"{where}: 'dt' must be a positive number, got {config['dt']}")


def _check_keys(config: dict, keys: dict, where: str) -> None:
    for key, types in keys.items():
        if key not in config:
            raise SpikedeployError(f"{where}: missing key '{key}'")
        value = config[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise SpikedeployError(f"{where}: key '{key}' has invalid value {value!r}")


def _read_weights(weights_path: Path) -> dict[str, torch.Tensor]:
    if not weights_path.is_file():
        raise SpikedeployError(f"{weights_path}: missing checkpoint weights")
    try:
        return load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = first_line(exc, type(exc).__name__)
        raise SpikedeployError(f"{weights_path}: corrupt or truncated safetensors file ({reason})")


def check_state(expected: dict, state: dict, path, source: str) -> None:
    """One-line errors for a state_dict that does not fit ``expected`` (the model's own,
    built from ``source``): missing or unexpected keys, wrong shapes, NaN/inf values."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        raise SpikedeployError(f"{path}: does not match {source} ({'; '.join(parts)})")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise SpikedeployError(f"{path}: tensor '{key}' has shape {tuple(tensor.shape)}, "
                                   f"{source} gives {tuple(expected[key].shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise SpikedeployError(f"{path}: tensor '{key}' holds NaN or infinite values")


def _load_state(model: nn.Module, state: dict, weights_path: Path, config: dict) -> None:
    expected = model.state_dict()
    check_state(expected, state, weights_path, "config.json")
    for key, tensor in state.items():
        if key.endswith("reset_mechanism_val") and "reset_mechanism" in config:
            # snnTorch picks its update function from the constructor argument,
            # not from this buffer: a disagreement would give a hybrid neuron.
            if int(tensor) != RESET_MECHANISM_CODE[config["reset_mechanism"]]:
                raise SpikedeployError(f"{weights_path}: '{key}' = {int(tensor)} disagrees with "
                                       f"reset_mechanism {config['reset_mechanism']!r} in config.json")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
