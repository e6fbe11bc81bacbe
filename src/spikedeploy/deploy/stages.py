"""The deploy layer's calls into the model stage: training to a checkpoint and snnTorch runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SpikedeployError
from ..fileio import write_atomically
from ..models import load_checkpoint, run_snntorch, save_checkpoint

# train sub-parser attribute -> recipe keyword (spikedeploy.models.recipes.train_recipe)
TRAIN_OPTIONS = {"hidden": "hidden", "steps": "num_steps", "encoding": "encoding",
                 "epochs": "epochs", "seed": "seed", "bits": "bits", "onnx": "onnx_path",
                 "channels": "channels", "blocks": "blocks", "tsm": "tsm",
                 "tsm_epochs": "tsm_epochs", "qat_epochs": "qat_epochs",
                 "train_subset": "train_subset", "fit_steps": "fit_steps",
                 "shared_neuron_params": "shared_neuron_params", "batch_size": "batch_size"}


def train_options(args) -> dict:
    """``train_and_save`` keywords from the ``train`` sub-command's parsed arguments."""
    options = {"model": getattr(args, "model", None) or "mlp"}
    for attr, key in TRAIN_OPTIONS.items():
        value = getattr(args, attr, None)
        if value is not None:
            options[key] = value
    from .inputs import dataset_request
    request = dataset_request(args)
    if request is not None:          # the recipe reads it batch by batch
        options["dataset"] = (request.name, request.data_dir, request.frames)
    return options


def train_and_save(out, hidden: int | None = None, num_steps: int | None = None,
                   encoding: str | None = None, epochs: int | None = None, seed: int = 0,
                   progress=print, model: str = "mlp", **options) -> dict:
    """Train model ``model`` (a recipe of :mod:`spikedeploy.models.recipes`) and write its
    checkpoint; returns the checkpoint's config. Options left None take the recipe's
    defaults; an option the recipe does not take is an error. Arrays a recipe adds
    (e.g. a UGO's ``inputs``) are written beside it as ``<name>.npy``."""
    from ..models.recipes import RECIPES, train_recipe
    if model not in RECIPES:
        raise SpikedeployError(f"unknown model {model!r} (known: {', '.join(RECIPES)})")
    given = dict(hidden=hidden, num_steps=num_steps, encoding=encoding, epochs=epochs, seed=seed,
                 **options)
    shown = ", ".join(f"{k}={v}" for k, v in given.items() if v is not None and k != "dataset")
    if given.get("dataset") is not None:
        name, data_dir, frames = given["dataset"]
        shown += f"; {name} from {data_dir} ({frames.describe()})"
    progress(f"model {model}: {RECIPES[model].summary}" + (f" ({shown})" if shown else ""))
    trained = train_recipe(model, **given)
    cfg = trained.config
    directory = Path(out)
    save_checkpoint(directory, trained.model, cfg)
    for name, array in trained.arrays.items():
        def write(tmp, array=array):
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(array))
        write_atomically(directory / f"{name}.npy", write)
    _report(cfg, progress)
    return cfg


def _report(cfg: dict, progress) -> None:
    training = cfg.get("training", {})
    seconds = training.get("seconds")
    losses = training.get("epoch_losses") or training.get("ann_epoch_losses") or []
    if seconds is not None:
        progress(f"trained in {seconds:.1f} s" + ("; losses per epoch " + ", ".join(
            f"{loss:.3f}" for loss in losses) if losses else ""))
    for key, label in (("tsm_epoch_losses", "TSM fine-tune losses"),
                       ("qat_epoch_losses", "quantisation-aware fine-tune losses")):
        if training.get(key):
            progress(f"{label}: " + ", ".join(f"{loss:.3f}" for loss in training[key]))
    if "ann_test_accuracy" in cfg:
        progress(f"ANN accuracy {cfg['ann_test_accuracy']:.4f}, quantised ({cfg['bits']} bits) "
                 f"{cfg['quantized_test_accuracy']:.4f}, converted SNN (T={cfg['num_steps']}) "
                 f"{cfg['test_accuracy']:.4f}")
        for row in cfg.get("count_check", []):
            c = row["vs_ann"]
            progress(f"  {row['layer']}: spike counts = quantised activations for {c['equal']} of "
                     f"{row['pairs']} (sample, neuron) pairs; {c['ties']} exact ties excluded, "
                     f"{c['unequal']} differ")
    if "error_vs_steps" in cfg:
        progress(f"UGO {cfg['function']} on {cfg['domain']}: approximation error vs T")
        for row in cfg["error_vs_steps"]:
            progress(f"  T={row['steps']:>4}: max |SNN - f| {row['max_abs_error']:.4f}, mean "
                     f"{row['mean_abs_error']:.4f}, max |SNN - ANN| {row['max_abs_error_vs_ann']:.4f}"
                     f" (ANN max |ANN - f| {row['ann_max_abs_error']:.4f})")
    if "test_metrics" in cfg:
        m = cfg["test_metrics"]
        progress(f"denoiser (alpha_bar {cfg['alpha_bar']}): eps MSE {m['eps_mse']:.4f}; denoised "
                 f"image MSE {m['x0_mse']:.4f} (noisy image {m['noisy_x0_mse']:.4f})")
    if cfg.get("test_accuracy") is None and cfg.get("dataset", "").startswith("tonic:"):
        progress(f"no test split of {cfg['dataset']}: no test accuracy")
    elif "test_accuracy" in cfg:
        progress(f"snnTorch test accuracy {cfg['test_accuracy']:.4f} (readout "
                 f"{cfg.get('readout', 'spike_count')})")


def checkpoint_records(checkpoint, x: np.ndarray, threshold_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Spikes of every layer of the checkpoint's snnTorch model (float64), flat per sample."""
    return snntorch_records(load_checkpoint(checkpoint).model, x, threshold_scale)


def load_model(spec: str, weights: str | None):
    """A user's model from ``path.py:NAME`` and an optional state_dict file."""
    from ..models.user_model import load_user_model
    return load_user_model(spec, weights)


def snntorch_records(model, x: np.ndarray, threshold_scale: float = 1.0,
                     forward: str | None = None) -> dict[str, np.ndarray]:
    """Spikes of every layer of an snnTorch model (float64), flat per sample.

    ``threshold_scale``: threshold guidance, applied to the snnTorch model as
    ``--threshold-scale`` applies it to the graph. ``forward``: "step" or
    "sequence" as for export (None: detected)."""
    if threshold_scale != 1.0:
        from ..models.neurons import scale_thresholds
        model = scale_thresholds(model, threshold_scale)
    style = "step" if forward == "step" else None   # "sequence" or "repeat": the run tells
    spikes = run_snntorch(model, x, style=style)
    return {name: s.reshape(s.shape[0], s.shape[1], -1) for name, s in spikes.items()}
