"""The reference architecture: an snnTorch MLP 64 -> hidden -> 10.

Each spiking layer is ``snn.Leaky`` with reset to zero and no reset delay,
the one configuration NIR's LIF reproduces exactly (REFERENCE.md section 3).
Per step, per neuron (beta clamped to [0, 1] by snnTorch)::

    mem = beta * mem + (W x + b)
    spk = mem > threshold
    mem = 0 where spk            # in the same step (reset_delay=False)

beta and threshold are stored as per-neuron tensors (one value per neuron)
so that every neuron's parameters travel through the checkpoint and the NIR
file as arrays, and can differ after training with learnable thresholds.
With ``shared_neuron_params=True`` each layer holds one 0-d beta and one 0-d
threshold instead (the exporter broadcasts them, so NIR's arrays hold one
value per layer): Loihi's stock LIF process has one du/dv/threshold per
population.
"""
from __future__ import annotations

from collections import OrderedDict

import snntorch as snn
import torch
from torch import nn

from .data import NUM_CLASSES, NUM_PIXELS

ARCHITECTURE = "mlp"


def leaky_layer(size: int, beta: float = 0.9, threshold: float = 1.0,
                learn_beta: bool = False, learn_threshold: bool = False,
                spike_grad=None, shared_neuron_params: bool = False) -> snn.Leaky:
    """An ``snn.Leaky`` population of ``size`` neurons with per-neuron beta and threshold
    (with ``shared_neuron_params``: one 0-d beta and threshold for the whole population)."""
    values_shape = () if shared_neuron_params else (size,)
    return snn.Leaky(
        beta=torch.full(values_shape, float(beta)),
        threshold=torch.full(values_shape, float(threshold)),
        spike_grad=spike_grad,            # None: snnTorch's default (ATan)
        reset_mechanism="zero",
        reset_delay=False,
        init_hidden=True,                 # state lives in the module: usable in nn.Sequential
        learn_beta=learn_beta,
        learn_threshold=learn_threshold,
    )


def build_mlp(num_inputs: int = NUM_PIXELS, hidden: int = 128, num_outputs: int = NUM_CLASSES,
              beta: float = 0.9, threshold: float = 1.0, learn_beta: bool = False,
              learn_threshold: bool = False, spike_grad=None,
              shared_neuron_params: bool = False) -> nn.Sequential:
    """``nn.Sequential`` with children fc1, lif1, fc2, lif2 (the exporter's node names)."""
    def lif(size):
        return leaky_layer(size, beta, threshold, learn_beta, learn_threshold, spike_grad,
                           shared_neuron_params)

    return nn.Sequential(OrderedDict(
        fc1=nn.Linear(num_inputs, hidden),
        lif1=lif(hidden),
        fc2=nn.Linear(hidden, num_outputs),
        lif2=lif(num_outputs),
    ))
