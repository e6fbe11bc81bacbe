"""A recurrent snnTorch SNN on digits (issue #4: a trained recurrent network through our exporter).

Architecture ``snn-rnn`` (input 64 pixels, direct input: the image repeated at every step)::

    fc1 Linear(64, H) -> rlif1 RLeaky(H, all_to_all=True, linear_features=H)
    fc2 Linear(H, 10) -> lif2 Leaky(10)                      spike-count readout

``rlif1`` is ``snn.RLeaky(..., all_to_all=True, reset_mechanism="zero",
reset_delay=False)``: mem = beta*mem + fc1(x) + recurrent(spk of the
previous step), with an ``nn.Linear(H, H)`` (with bias) as the recurrent
connection. Both neuron layers have per-neuron beta (drawn in [0.8, 0.95)
from the seed, fixed) and threshold tensors (learnt from 1.0); with
``shared_neuron_params=True`` one 0-d beta and threshold per layer.

The exporter (:mod:`spikedeploy.export.snntorch_neurons`) writes
``rlif1`` as a ``nir.LIF`` plus ``rlif1_rec`` (``nir.Affine``) with the
edges rlif1 -> rlif1_rec -> rlif1: a cycle whose closing edge reads the
previous step.

There is no RSynaptic recipe: snnTorch 1.0's RSynaptic ignores
``reset_delay=False`` and always resets one step late; users' RSynaptic
layers export with that delayed reset as metadata.
"""
from __future__ import annotations

from collections import OrderedDict

import snntorch as snn
import torch
from torch import nn

from .cnn import random_beta_and_threshold, random_beta_leaky
from .data import NUM_CLASSES, NUM_PIXELS
from .fit import Timer, Trained, base_config, digits, fit_and_score
from .losses import count_loss

ARCHITECTURE = "snn-rnn"
INPUT_SHAPE = (NUM_PIXELS,)
READOUT = "spike_count"


def random_beta_rleaky(size: int, generator: torch.Generator, shared_neuron_params: bool = False,
                       learn_threshold: bool = True) -> snn.RLeaky:
    """``snn.RLeaky`` with an all-to-all recurrent nn.Linear(size, size) and
    :func:`~spikedeploy.models.cnn.random_beta_and_threshold`'s values."""
    beta, threshold = random_beta_and_threshold((size,), generator, shared_neuron_params)
    return snn.RLeaky(beta=beta, threshold=threshold, all_to_all=True, linear_features=size,
                      reset_mechanism="zero", reset_delay=False, init_hidden=True,
                      learn_threshold=learn_threshold)


def build_rnn(hidden: int = 64, num_inputs: int = NUM_PIXELS, num_classes: int = NUM_CLASSES,
              seed: int = 0, shared_neuron_params: bool = False) -> nn.Sequential:
    """The recurrent network of the module docstring (beta drawn from ``seed``)."""
    g = torch.Generator().manual_seed(int(seed))
    return nn.Sequential(OrderedDict(
        fc1=nn.Linear(num_inputs, hidden),
        rlif1=random_beta_rleaky(hidden, g, shared_neuron_params),
        fc2=nn.Linear(hidden, num_classes),
        lif2=random_beta_leaky((num_classes,), g, shared_neuron_params),
    ))


def _from_config(config: dict) -> nn.Sequential:
    return build_rnn(config["hidden"], config["num_inputs"], config["num_outputs"], config["seed"],
                     config.get("shared_neuron_params", False))


ARCHITECTURES = {ARCHITECTURE: (_from_config, {"hidden": (int,), "num_inputs": (int,),
                                               "num_outputs": (int,)})}


def train_rnn(hidden: int = 64, num_steps: int = 10, epochs: int = 10, batch_size: int = 64,
              lr: float = 5e-3, seed: int = 0, train_subset: int | None = None,
              shared_neuron_params: bool = False) -> Trained:
    """Train :func:`build_rnn` on digits (about 5 s of CPU with the defaults)."""
    timer = Timer()
    torch.manual_seed(seed)
    data = digits(seed, train_subset)
    model = build_rnn(hidden, seed=seed, shared_neuron_params=shared_neuron_params)
    losses, acc = fit_and_score(model, count_loss, data, num_steps, INPUT_SHAPE, READOUT,
                                epochs, batch_size, lr, seed)
    config = base_config(ARCHITECTURE, num_steps, INPUT_SHAPE, READOUT, seed, hidden=int(hidden),
                         num_inputs=NUM_PIXELS, num_outputs=NUM_CLASSES,
                         shared_neuron_params=bool(shared_neuron_params), epochs=epochs,
                         epoch_losses=losses, test_accuracy=acc, **timer.info())
    return Trained(model, config)
