"""A tiny spiking denoiser in the style of Spiking Diffusion Models: epsilon prediction on digits.

One diffusion step at a fixed noise level: the input is a noisy digit
x_t = sqrt(a) x_0 + sqrt(1 - a) eps (a = ``alpha_bar``, eps ~ N(0, 1), 1x8x8),
the network predicts eps. Architecture ``sdm-denoiser`` (direct input over
T steps)::

    conv0 -> bn0 -> block1 .. blockB (pre-spike residual, IF, TSM)
          -> sn_out (IF) -> conv_out (C -> 1, 3x3) -> readout (per-step values, beta = 0)

Loss: mean squared error between the readout's mean over steps (readout
``mean``) and eps. The denoised image is
x0_hat = (x_t - sqrt(1 - a) eps_hat) / sqrt(a). Threshold guidance (SDM)
scales every threshold by gamma at inference;
:func:`spikedeploy.deploy.sweep.threshold_sweep` with ``targets`` = eps
reports the prediction error and the energy for each gamma.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .data import load_digits_split
from .fit import Timer, Trained, adam_epochs, base_config, run_steps
from .neurons import Readout, freeze_tsm, tsm_parameters
from .residual import residual_trunk
from .run import run_snntorch

ARCHITECTURE = "sdm-denoiser"
INPUT_SHAPE = (1, 8, 8)
READOUT = "mean"


def build_denoiser(channels: int = 8, blocks: int = 2, num_steps: int = 4, tsm: bool = True,
                   input_shape=INPUT_SHAPE) -> nn.Sequential:
    c_in, h, w = input_shape
    layers = residual_trunk(c_in, channels, blocks, (h, w), num_steps, tsm)
    layers["conv_out"] = nn.Conv2d(channels, c_in, 3, padding=1)
    layers["readout"] = Readout(tuple(input_shape), beta=0.0)
    return nn.Sequential(layers)


def noisy_digits(x0: np.ndarray, alpha_bar: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x_t, eps), both (N, 1, 8, 8) float64, from clean digits (N, 64) in [0, 1]."""
    eps = np.random.default_rng(seed).standard_normal(x0.shape)
    xt = math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * eps
    return xt.reshape((-1,) + INPUT_SHAPE), eps.reshape((-1,) + INPUT_SHAPE)


def denoise_metrics(eps_hat: np.ndarray, xt: np.ndarray, eps: np.ndarray, x0: np.ndarray,
                    alpha_bar: float) -> dict:
    """eps MSE, and MSE of the denoised image vs the noisy one (both against the clean digit)."""
    x0 = x0.reshape(xt.shape)
    x0_hat = (xt - math.sqrt(1 - alpha_bar) * eps_hat) / math.sqrt(alpha_bar)
    return {"eps_mse": float(np.mean((eps_hat - eps) ** 2)),
            "x0_mse": float(np.mean((np.clip(x0_hat, 0, 1) - x0) ** 2)),
            "noisy_x0_mse": float(np.mean((np.clip(xt / math.sqrt(alpha_bar), 0, 1) - x0) ** 2))}


def _from_config(config: dict) -> nn.Sequential:
    return build_denoiser(config["channels"], config["blocks"], config["num_steps"], config["tsm"])


ARCHITECTURES = {ARCHITECTURE: (_from_config, {"channels": (int,), "blocks": (int,), "tsm": (bool,),
                                               "alpha_bar": (int, float)})}


def _fit(model, x, eps, num_steps, epochs, lr, batch_size, seed, parameters=None, frozen_bn=False):
    """Epsilon prediction: MSE between the mean readout over steps and the noise."""
    def batch_loss(idx):
        inputs = torch.from_numpy(np.broadcast_to(x[idx], (num_steps,) + x[idx].shape)
                                  .astype(np.float32))
        out = run_steps(model, inputs).mean(0)
        return torch.mean((out - torch.from_numpy(eps[idx].astype(np.float32))) ** 2)

    return adam_epochs(model, len(x), batch_loss, epochs, batch_size, lr, seed, parameters,
                       frozen_bn)


def train_denoiser(channels: int = 8, blocks: int = 2, num_steps: int = 4, tsm: bool = True,
                   alpha_bar: float = 0.5, epochs: int = 8, tsm_epochs: int = 2, lr: float = 5e-3,
                   batch_size: int = 64, seed: int = 0, train_subset: int | None = None,
                   samples: int = 24) -> Trained:
    """Train the denoiser; ``arrays`` hold test ``inputs`` (T, samples, 1, 8, 8) and ``targets``."""
    timer = Timer()
    torch.manual_seed(seed)
    split = load_digits_split(seed)
    x0 = split.x_train if train_subset is None else split.x_train[:train_subset]
    xt, eps = noisy_digits(x0, alpha_bar, seed)
    model = build_denoiser(channels, blocks, num_steps, tsm)
    freeze_tsm(model, True)
    losses = _fit(model, xt, eps, num_steps, epochs, lr, batch_size, seed)
    tsm_losses = []
    if tsm and tsm_epochs > 0:
        freeze_tsm(model, False)
        tsm_losses = _fit(model, xt, eps, num_steps, tsm_epochs, 1e-2, batch_size, seed,
                          tsm_parameters(model), frozen_bn=True)
    test_xt, test_eps = noisy_digits(split.x_test, alpha_bar, seed + 1)
    inputs = np.broadcast_to(test_xt, (num_steps,) + test_xt.shape).copy()
    eps_hat = run_snntorch(model, inputs)["output"].mean(0)
    metrics = denoise_metrics(eps_hat, test_xt, test_eps, split.x_test, alpha_bar)
    config = base_config(ARCHITECTURE, num_steps, INPUT_SHAPE, READOUT, seed,
                         dataset="digits-noisy", channels=channels, blocks=blocks, tsm=bool(tsm),
                         alpha_bar=float(alpha_bar), test_metrics=metrics,
                         training={"epochs": epochs, "tsm_epochs": tsm_epochs if tsm else 0,
                                   "lr": lr, "batch_size": batch_size, "train_subset": train_subset,
                                   "epoch_losses": losses, "tsm_epoch_losses": tsm_losses,
                                   **timer.info()})
    n = min(samples, len(test_xt))
    return Trained(model, config, {"inputs": inputs[:, :n], "targets": test_eps[:n]})
