"""A plain snnTorch convolutional SNN on digits (issue #4: a trained CNN through our exporter).

Architecture ``snn-cnn`` (input 1x8x8, direct input: the image repeated at every step)::

    conv1 Conv2d(1, C1, 3, padding=1) -> lif1 Leaky (C1, 8, 8)
    pool1 AvgPool2d(2)                                      -> (C1, 4, 4)
    conv2 Conv2d(C1, C2, 3, padding=1) -> lif2 Leaky (C2, 4, 4)
    flatten -> fc Linear(C2*16, 10) -> lif3 Leaky (10)      spike-count readout

Every ``snn.Leaky`` is the configuration NIR reproduces exactly:
``reset_mechanism="zero", reset_delay=False``, with per-neuron ``beta`` and
``threshold`` tensors of the layer's output shape (beta drawn per neuron in
[0.8, 0.95) from the seed and kept fixed, thresholds learnt from 1.0), so
every neuron's own parameters travel through the NIR file. With
``shared_neuron_params=True`` each layer has one 0-d beta (drawn the same
way) and one learnt 0-d threshold instead, as Loihi's stock LIF process
needs (one du/dv/threshold per population).

Loss: cross-entropy of the output spike counts over T (readout
``spike_count``), Adam, float32; the test accuracy is measured in float64
with :func:`~spikedeploy.models.run.run_snntorch`. The exporter maps
Conv2d -> ``nir.Conv2d`` (with ``input_shape``), AvgPool2d ->
``nir.AvgPool2d``, Flatten -> ``nir.Flatten``, Linear -> ``nir.Affine``,
Leaky -> ``nir.LIF``.
"""
from __future__ import annotations

from collections import OrderedDict

import snntorch as snn
import torch
from torch import nn

from .fit import Timer, Trained, base_config, digits, fit_and_score
from .losses import count_loss

ARCHITECTURE = "snn-cnn"
INPUT_SHAPE = (1, 8, 8)
READOUT = "spike_count"
BETA_RANGE = (0.8, 0.95)


def random_beta_and_threshold(shape, generator: torch.Generator, shared_neuron_params: bool = False,
                              beta_range=BETA_RANGE, threshold: float = 1.0):
    """(beta uniform in ``beta_range``, threshold) tensors of ``shape``, one value per neuron;
    with ``shared_neuron_params`` one 0-d value each for the whole layer."""
    values_shape = () if shared_neuron_params else tuple(shape)
    low, high = beta_range
    beta = low + (high - low) * torch.rand(values_shape, generator=generator)
    return beta, torch.full(values_shape, float(threshold))


def random_beta_leaky(shape, generator: torch.Generator, shared_neuron_params: bool = False,
                      learn_threshold: bool = True) -> snn.Leaky:
    """``snn.Leaky`` (zero reset, no delay) with :func:`random_beta_and_threshold`'s values."""
    beta, threshold = random_beta_and_threshold(shape, generator, shared_neuron_params)
    return snn.Leaky(beta=beta, threshold=threshold, reset_mechanism="zero", reset_delay=False,
                     init_hidden=True, learn_threshold=learn_threshold)


def build_cnn(channels=(8, 16), num_classes: int = 10, input_shape=INPUT_SHAPE,
              seed: int = 0, shared_neuron_params: bool = False) -> nn.Sequential:
    """The CNN of the module docstring (beta drawn from ``seed``)."""
    c1, c2 = (int(c) for c in channels)
    c_in, h, w = (int(s) for s in input_shape)
    if h % 2 or w % 2:
        raise ValueError(f"input height and width must be even, got {input_shape}")
    g = torch.Generator().manual_seed(int(seed))

    def lif(shape):
        return random_beta_leaky(shape, g, shared_neuron_params)

    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(c_in, c1, 3, padding=1),
        lif1=lif((c1, h, w)),
        pool1=nn.AvgPool2d(2),
        conv2=nn.Conv2d(c1, c2, 3, padding=1),
        lif2=lif((c2, h // 2, w // 2)),
        flatten=nn.Flatten(),
        fc=nn.Linear(c2 * (h // 2) * (w // 2), num_classes),
        lif3=lif((num_classes,)),
    ))


def _from_config(config: dict) -> nn.Sequential:
    return build_cnn(tuple(config["channels"]), config["num_outputs"],
                     tuple(config["input_shape"]), config["seed"],
                     config.get("shared_neuron_params", False))


ARCHITECTURES = {ARCHITECTURE: (_from_config, {"channels": (list,), "num_outputs": (int,),
                                               "input_shape": (list,)})}


def train_cnn(channels=(8, 16), num_steps: int = 8, epochs: int = 10, batch_size: int = 64,
              lr: float = 5e-3, seed: int = 0, train_subset: int | None = None,
              shared_neuron_params: bool = False) -> Trained:
    """Train :func:`build_cnn` on digits (about 5 s of CPU with the defaults)."""
    timer = Timer()
    torch.manual_seed(seed)
    data = digits(seed, train_subset)
    model = build_cnn(channels, seed=seed, shared_neuron_params=shared_neuron_params)
    losses, acc = fit_and_score(model, count_loss, data, num_steps, INPUT_SHAPE, READOUT,
                                epochs, batch_size, lr, seed)
    config = base_config(ARCHITECTURE, num_steps, INPUT_SHAPE, READOUT, seed,
                         channels=[int(c) for c in channels], num_outputs=10,
                         shared_neuron_params=bool(shared_neuron_params),
                         epochs=epochs, epoch_losses=losses, test_accuracy=acc, **timer.info())
    return Trained(model, config)
