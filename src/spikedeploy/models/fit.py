"""Shared pieces of the mechanism recipes: digits batches, a training loop, evaluation.

Every recipe trains in float32 on the digits split of its seed with direct
(analog) input -- the image repeated at every step -- and measures the test
accuracy in float64 with :func:`~spikedeploy.models.run.run_snntorch`
and the readout it was trained for (the same quantity ``spikedeploy
verify`` measures on the exported graph).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import SpikedeployError
from ..metadata import DEFAULT_DT
from ..progress import track
from ..readout import predictions
from .data import DigitsSplit, direct_encode, load_digits_split
from .neurons import reset_state
from .run import run_snntorch


@dataclass
class Trained:
    """A trained model, its complete config.json, and files to write beside the checkpoint."""

    model: nn.Sequential
    config: dict
    arrays: dict = field(default_factory=dict)   # name -> array, saved as <name>.npy


def digits(seed: int, train_subset: int | None = None) -> DigitsSplit:
    data = load_digits_split(seed)
    if train_subset is not None:
        data = DigitsSplit(data.x_train[:train_subset], data.y_train[:train_subset],
                           data.x_test, data.y_test)
    return data


def image_inputs(x: np.ndarray, num_steps: int, input_shape) -> np.ndarray:
    """Direct input (T, N, *input_shape) float64 from images (N, 64)."""
    inputs = direct_encode(x, num_steps)
    return inputs.reshape((num_steps, x.shape[0]) + tuple(input_shape))


def run_steps(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Outputs (T, N, ...) of ``model`` stepped over ``inputs`` (T, N, ...), state reset first."""
    reset_state(model)
    return torch.stack([model(inputs[t]) for t in range(inputs.shape[0])])


def adam_epochs(model: nn.Module, num_samples: int, batch_loss, epochs: int, batch_size: int,
                lr: float, seed: int, parameters=None, frozen_batchnorm: bool = False) -> list[float]:
    """The minibatch loop every recipe shares: Adam on ``batch_loss(indices) -> loss``.

    Each epoch visits the samples in a fresh permutation drawn from ``seed``;
    returns the mean loss of each epoch. ``parameters``: train only these
    (default: all that require gradients); ``frozen_batchnorm``: BatchNorm
    layers use (and keep) their running statistics, as at inference -- for
    fine-tuning a trained network. The model is left in eval mode.
    """
    if epochs < 1 or batch_size < 1:
        raise SpikedeployError("epochs and batch size must be positive")
    rng = np.random.default_rng(seed)
    params = [p for p in (parameters if parameters is not None else model.parameters())
              if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=lr)
    losses = []
    model.train()
    if frozen_batchnorm:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    for _ in track(range(epochs), "training", unit="epoch"):
        order = rng.permutation(num_samples)
        batch_losses = []
        for first in range(0, num_samples, batch_size):
            loss = batch_loss(order[first:first + batch_size])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            batch_losses.append(loss.item())
        losses.append(float(np.mean(batch_losses)))
    model.eval()
    return losses


def fit(model: nn.Module, loss_fn, x: np.ndarray, y: np.ndarray, num_steps: int, input_shape,
        epochs: int, batch_size: int = 64, lr: float = 5e-3, seed: int = 0,
        parameters=None, frozen_batchnorm: bool = False) -> list[float]:
    """Adam on ``loss_fn(outputs (T, N, ...), labels)``; returns the mean loss of each epoch."""
    labels = torch.from_numpy(np.asarray(y, np.int64))

    def batch_loss(idx):
        inputs = torch.from_numpy(image_inputs(x[idx], num_steps, input_shape).astype(np.float32))
        return loss_fn(run_steps(model, inputs), labels[idx])

    losses = adam_epochs(model, len(x), batch_loss, epochs, batch_size, lr, seed, parameters,
                         frozen_batchnorm)
    reset_state(model)
    return losses


@contextmanager
def single_thread():
    """Run torch on one thread, restoring the caller's setting afterwards.

    These models are tiny: one thread is faster, and with two threads on a
    busy 2-core machine torch's thread pool spins (measured: the recurrent
    recipe took 80 s with 2 threads under load, 4.5 s with 1; same result).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_and_score(model: nn.Module, loss_fn, data: DigitsSplit, num_steps: int, input_shape,
                  readout: str, epochs: int, batch_size: int, lr: float, seed: int):
    """Train on the split's training set, then score its test set, on one torch thread.

    Returns (mean loss per epoch, test accuracy).
    """
    with single_thread():
        losses = fit(model, loss_fn, data.x_train, data.y_train, num_steps, input_shape, epochs,
                     batch_size=batch_size, lr=lr, seed=seed)
        acc = accuracy(model, data.x_test, data.y_test, num_steps, input_shape, readout)
    return losses, acc


def accuracy(model: nn.Sequential, x: np.ndarray, y: np.ndarray, num_steps: int, input_shape,
             readout: str) -> float:
    """float64 snnTorch accuracy with the given readout."""
    output = run_snntorch(model, image_inputs(x, num_steps, input_shape))["output"]
    return float(np.mean(predictions(output, readout) == np.asarray(y)))


def base_config(architecture: str, num_steps: int, input_shape, readout: str, seed: int,
                encoding: str = "direct", dataset: str = "digits", dt: float = DEFAULT_DT,
                **extra) -> dict:
    return {"architecture": architecture, "num_steps": int(num_steps), "dt": float(dt),
            "encoding": encoding, "seed": int(seed), "dataset": dataset,
            "input_shape": [int(s) for s in input_shape], "readout": readout, **extra}


class Timer:
    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def info(self) -> dict:
        return {"seconds": round(time.perf_counter() - self.wall, 3),
                "cpu_seconds": round(time.process_time() - self.cpu, 3)}
