"""IMP-SNN: learnable initial membrane potential, with LTS or TET-S training.

Architecture ``imp-mlp`` (digits, direct input over T steps)::

    fc1 -> imp1 (IMPLIF: LIF with a learned per-neuron v0, U(0.4, 0.6) at start)
        -> fc2 -> readout (Readout, beta = 0: the logits of each step)

v0 is trained with the network and restored at the start of every sample.
Loss ``lts`` (last time step: cross-entropy at step T-1 only; readout
``last_step``) or ``tet_s`` (mean over steps of the label-smoothed
cross-entropy, smoothing 0.01; readout ``mean``).

Export: v0 is node metadata ``spikedeploy.v_init`` (both simulators honour
it); ``strict_nir=True`` expresses it with NIR primitives alone (a clock
neuron that fires at each sample's first step, see
:func:`spikedeploy.export.to_nir.strict_initial_voltage`).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import SpikedeployError
from .data import NUM_CLASSES, NUM_PIXELS
from .fit import Timer, Trained, accuracy, base_config, digits, fit
from .losses import LOSS_READOUT, lts_loss, tet_s_loss
from .neurons import IMPLIF, Readout

ARCHITECTURE = "imp-mlp"
LOSS_FUNCTIONS = {"lts": lts_loss, "tet_s": tet_s_loss}
READOUT_OF = {"lts": LOSS_READOUT["last_step"], "tet_s": LOSS_READOUT["tet_s"]}


def build_imp_mlp(num_inputs: int = NUM_PIXELS, hidden: int = 128, num_outputs: int = NUM_CLASSES,
                  beta: float = 0.5, threshold: float = 1.0, v0_range=(0.4, 0.6)) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        fc1=nn.Linear(num_inputs, hidden),
        imp1=IMPLIF(hidden, beta=beta, threshold=threshold, v0_range=v0_range),
        fc2=nn.Linear(hidden, num_outputs),
        readout=Readout(num_outputs, beta=0.0),
    ))


def _from_config(config: dict) -> nn.Sequential:
    return build_imp_mlp(config["num_inputs"], config["hidden"], config["num_outputs"],
                         beta=config["beta"], threshold=config["threshold"])


_NUMBER = (int, float)
ARCHITECTURES = {ARCHITECTURE: (_from_config, {
    "num_inputs": (int,), "hidden": (int,), "num_outputs": (int,), "beta": _NUMBER,
    "threshold": _NUMBER, "loss": (str,)})}


def train_imp(loss: str = "lts", hidden: int = 128, num_steps: int = 4, beta: float = 0.5,
              epochs: int = 8, batch_size: int = 64, lr: float = 5e-3, seed: int = 0,
              train_subset: int | None = None) -> Trained:
    if loss not in LOSS_FUNCTIONS:
        raise SpikedeployError(f"unknown IMP loss {loss!r} (lts|tet_s)")
    timer = Timer()
    torch.manual_seed(seed)
    data = digits(seed, train_subset)
    model = build_imp_mlp(hidden=hidden, beta=beta)
    v0_start = model.imp1.v_init.detach().clone()
    losses = fit(model, LOSS_FUNCTIONS[loss], data.x_train, data.y_train, num_steps=num_steps,
                 input_shape=(NUM_PIXELS,), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    readout = READOUT_OF[loss]
    acc = accuracy(model, data.x_test, data.y_test, num_steps, (NUM_PIXELS,), readout)
    moved = float((model.imp1.v_init.detach() - v0_start).abs().mean())
    config = base_config(ARCHITECTURE, num_steps, (NUM_PIXELS,), readout, seed,
                         num_inputs=NUM_PIXELS, hidden=hidden, num_outputs=NUM_CLASSES,
                         beta=float(beta), threshold=1.0, loss=loss, test_accuracy=acc,
                         training={"epochs": epochs, "batch_size": batch_size, "lr": lr,
                                   "train_subset": train_subset, "epoch_losses": losses,
                                   "v0_mean_abs_change": moved, **timer.info()})
    return Trained(model, config)
