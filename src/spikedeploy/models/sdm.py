"""Spiking Diffusion Models' building blocks as a digits classifier: residual IF CNN with TSM.

Architecture ``sdm-cnn`` (input 1x8x8, direct input over T steps)::

    conv0 -> bn0                                  O_0 (float)
    block1 .. blockB: O_l = BN(Conv(IF(O_{l-1}))) + O_{l-1}   (pre-spike residual)
    sn_out: IF(O_B) -> pool (AvgPool 2x2) -> flatten -> fc -> readout (per-step logits)

Every IF neuron has threshold 1 and resets to zero (SDM's choice); with
``tsm=True`` each is wrapped in :class:`~spikedeploy.models.neurons.TSM`
(per-layer gain p[t] per step on its input current). Training (the paper's
recipe, shortened): the network with gains frozen at 1, then a short
fine-tune of the gains alone. Loss: cross-entropy of the mean over steps
of the readout's logits; readout ``mean``.

Export: BN folds into conv weights and bias; each residual sum becomes
several NIR edges into the next neuron; TSM gains are node metadata
``spikedeploy.tsm_gain``.
"""
from __future__ import annotations


from torch import nn

from .fit import Timer, Trained, accuracy, base_config, digits, fit
from .losses import mean_loss
from .neurons import Readout, freeze_tsm, tsm_parameters
from .residual import residual_trunk

ARCHITECTURE = "sdm-cnn"
INPUT_SHAPE = (1, 8, 8)
READOUT = "mean"


def build_sdm_cnn(channels: int = 8, blocks: int = 2, num_steps: int = 4, tsm: bool = True,
                  num_classes: int = 10, input_shape=INPUT_SHAPE, threshold: float = 1.0) -> nn.Sequential:
    """The residual IF CNN (see module docstring)."""
    c_in, h, w = input_shape
    if h % 2 or w % 2:
        raise ValueError(f"input height and width must be even, got {input_shape}")
    layers = residual_trunk(c_in, channels, blocks, (h, w), num_steps, tsm, threshold)
    layers["pool"] = nn.AvgPool2d(2)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(channels * (h // 2) * (w // 2), num_classes)
    layers["readout"] = Readout(num_classes, beta=0.0)
    return nn.Sequential(layers)


def _from_config(config: dict) -> nn.Sequential:
    return build_sdm_cnn(channels=config["channels"], blocks=config["blocks"],
                         num_steps=config["num_steps"], tsm=config["tsm"],
                         num_classes=config["num_outputs"], input_shape=tuple(config["input_shape"]))


ARCHITECTURES = {ARCHITECTURE: (_from_config, {"channels": (int,), "blocks": (int,), "tsm": (bool,),
                                               "num_outputs": (int,), "input_shape": (list,)})}


def train_sdm_cnn(channels: int = 8, blocks: int = 2, num_steps: int = 4, tsm: bool = True,
                  epochs: int = 6, tsm_epochs: int = 2, batch_size: int = 64, lr: float = 5e-3,
                  tsm_lr: float = 1e-2, seed: int = 0, train_subset: int | None = None) -> Trained:
    """Train on digits; with TSM, fine-tune the gains afterwards (the rest frozen)."""
    import torch

    timer = Timer()
    torch.manual_seed(seed)
    data = digits(seed, train_subset)
    model = build_sdm_cnn(channels, blocks, num_steps, tsm)
    args = dict(num_steps=num_steps, input_shape=INPUT_SHAPE, batch_size=batch_size, seed=seed)
    freeze_tsm(model, True)
    losses = fit(model, mean_loss, data.x_train, data.y_train, epochs=epochs, lr=lr, **args)
    tsm_losses = []
    if tsm and tsm_epochs > 0:
        freeze_tsm(model, False)
        tsm_losses = fit(model, mean_loss, data.x_train, data.y_train, epochs=tsm_epochs, lr=tsm_lr,
                         parameters=tsm_parameters(model), frozen_batchnorm=True, **args)
    acc = accuracy(model, data.x_test, data.y_test, num_steps, INPUT_SHAPE, READOUT)
    config = base_config(ARCHITECTURE, num_steps, INPUT_SHAPE, READOUT, seed, channels=channels,
                         blocks=blocks, tsm=bool(tsm), num_outputs=10, test_accuracy=acc,
                         training={"epochs": epochs, "tsm_epochs": tsm_epochs if tsm else 0,
                                   "batch_size": batch_size, "lr": lr, "tsm_lr": tsm_lr,
                                   "train_subset": train_subset, "epoch_losses": losses,
                                   "tsm_epoch_losses": tsm_losses, **timer.info()})
    return Trained(model, config)
