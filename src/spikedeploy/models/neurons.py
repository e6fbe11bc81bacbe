"""Neuron modules of the seed papers' mechanisms, usable beside snnTorch layers.

Every module here keeps its state inside the module (snnTorch's
``init_hidden=True`` style), so it drops into an ``nn.Sequential`` next to
``snn.Leaky``; :func:`reset_state` (or the
module's own ``reset_mem()``) starts a new sample. Spikes use snnTorch's
surrogate gradients (ATan by default, as in the Spiking Diffusion Models
paper). Per-neuron values (beta, threshold, v_init) are tensors of the
layer's shape (batch excluded), so they export as per-neuron NIR arrays.

One update per step, per neuron -- exactly the discrete-time neuron of
:mod:`spikedeploy.ir.semantics` with du = 1 (no synaptic state), g = 1::

    mem[-1] = v_init                      (0 unless set; restored by reset_mem)
    mem = beta * mem + I[t]               (IF: beta = 1)
    spk = mem > threshold                 (strict, as snnTorch, NIR and Lava)
    mem = mem * (1 - spk)                 reset "zero"     (to 0, same step)
    mem = mem - spk * threshold           reset "subtract" (Fast-SNN, STA)

Classes:

* :class:`LIF` -- leaky neuron with optional learnable per-neuron initial
  voltage (IMP-SNN, :class:`IMPLIF` initialises it U(0.4, 0.6)).
* :class:`IF` -- integrate-and-fire (beta = 1): SDM's neuron with reset
  "zero", threshold 1; with reset "subtract" and v_init = threshold/2 the
  neuron of Fast-SNN / STA conversion.
* :class:`Readout` -- non-spiking leaky integrator that outputs its
  voltage: beta = 0 gives the per-step logits (LTS / TET readouts),
  beta = 1 a pure integrator (conversion readouts).
* :class:`TSM` -- wraps a neuron and multiplies its input current at time
  step t by a learnable gain p[t] (SDM's temporal-wise spiking mechanism).

Exported by :mod:`spikedeploy.export.layers` (metadata keys there).
"""
from __future__ import annotations

import snntorch as snn
import torch
from snntorch import surrogate
from torch import nn

from ..errors import SpikedeployError

RESET_MECHANISMS = ("zero", "subtract")


def _shape(shape) -> tuple:
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise SpikedeployError(f"neuron layer shape must be positive sizes, got {shape}")
    return shape


def _per_neuron(value, shape) -> torch.Tensor:
    value = torch.as_tensor(value, dtype=torch.get_default_dtype())
    return torch.broadcast_to(value, shape).clone()


class Neuron(nn.Module):
    """Base of the stateful neuron modules: state ``mem`` lives in the module.

    ``spiking`` tells whether the module outputs spikes (else its voltage);
    ``shape`` is the layer's shape without the batch.
    """

    spiking = True

    def __init__(self, shape):
        super().__init__()
        self.shape = _shape(shape)
        self.mem: torch.Tensor | None = None

    def reset_mem(self) -> None:
        """Start a new sample: the next step begins from the initial voltage."""
        self.mem = None

    def initial_mem(self, current: torch.Tensor) -> torch.Tensor:
        if tuple(current.shape[1:]) != self.shape:
            raise SpikedeployError(f"{type(self).__name__}: input of shape {tuple(current.shape[1:])} "
                                   f"(batch excluded), the layer has shape {self.shape}")
        return torch.zeros_like(current)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class LIF(Neuron):
    """Leaky integrate-and-fire layer (per-neuron beta, threshold, initial voltage).

    ``v_init``: initial membrane voltage per neuron (a number or a tensor of
    ``shape``); ``learn_v_init=True`` makes it a trained parameter (IMP).
    """

    def __init__(self, shape, beta=0.9, threshold=1.0, reset_mechanism: str = "zero",
                 v_init=0.0, learn_beta: bool = False, learn_threshold: bool = False,
                 learn_v_init: bool = False, spike_grad=None):
        super().__init__(shape)
        if reset_mechanism not in RESET_MECHANISMS:
            raise SpikedeployError(f"reset_mechanism must be one of {RESET_MECHANISMS}, "
                                   f"got {reset_mechanism!r}")
        self.reset_mechanism = reset_mechanism
        self.spike_grad = spike_grad or surrogate.atan()
        for name, value, learn in (("beta", beta, learn_beta),
                                   ("threshold", threshold, learn_threshold),
                                   ("v_init", v_init, learn_v_init)):
            tensor = _per_neuron(value, self.shape)
            if learn:
                setattr(self, name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)

    def initial_mem(self, current):
        zeros = super().initial_mem(current)
        return zeros + self.v_init          # broadcast over the batch; gradient reaches v_init

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        mem = self.initial_mem(current) if self.mem is None else self.mem
        return self._fire(self.beta.clamp(0, 1) * mem + current)

    def _fire(self, mem: torch.Tensor) -> torch.Tensor:
        """Spike where mem > threshold, reset (zero or subtract) in the same step."""
        spk = self.spike_grad(mem - self.threshold).to(mem.dtype)
        reset = spk.detach()
        if self.reset_mechanism == "zero":
            mem = mem * (1 - reset)
        else:
            mem = mem - reset * self.threshold
        self.mem = mem
        return spk

    def extra_repr(self) -> str:
        return f"shape={self.shape}, reset={self.reset_mechanism!r}"


class IMPLIF(LIF):
    """IMP-SNN's neuron: a LIF whose per-neuron initial voltage v0 is learned.

    v0 starts uniform in ``v0_range`` (the paper: U(0.4, 0.6)) and is
    restored at the start of every sample (``reset_mem``).
    """

    def __init__(self, shape, beta=0.9, threshold=1.0, v0_range=(0.4, 0.6),
                 learn_beta: bool = False, learn_threshold: bool = False, spike_grad=None):
        shape = _shape(shape)
        low, high = v0_range
        v0 = torch.empty(shape).uniform_(float(low), float(high))
        super().__init__(shape, beta=beta, threshold=threshold, reset_mechanism="zero",
                         v_init=v0, learn_beta=learn_beta, learn_threshold=learn_threshold,
                         learn_v_init=True, spike_grad=spike_grad)


class IF(LIF):
    """Integrate-and-fire (no leak, beta = 1).

    SDM: ``IF(shape)`` -- threshold 1, reset to zero. Conversion (Fast-SNN,
    STA): ``IF(shape, threshold=s, reset_mechanism="subtract", v_init=s/2)``.
    """

    def __init__(self, shape, threshold=1.0, reset_mechanism: str = "zero", v_init=0.0,
                 learn_threshold: bool = False, learn_v_init: bool = False, spike_grad=None):
        super().__init__(shape, beta=1.0, threshold=threshold, reset_mechanism=reset_mechanism,
                         v_init=v_init, learn_threshold=learn_threshold,
                         learn_v_init=learn_v_init, spike_grad=spike_grad)

    def forward(self, current):
        mem = self.initial_mem(current) if self.mem is None else self.mem
        return self._fire(mem + current)         # beta = 1: no multiplication


class Readout(Neuron):
    """Non-spiking leaky integrator: ``mem = beta * mem + I``; outputs ``mem``.

    beta = 0: the output at step t is the layer's input current (per-step
    logits, for last-step or mean readouts); beta = 1: a pure integrator (the
    output at the last step is the sum over the run).
    """

    spiking = False

    def __init__(self, shape, beta: float = 0.0):
        super().__init__(shape)
        beta = float(beta)
        if not 0.0 <= beta <= 1.0:
            raise SpikedeployError(f"Readout beta must be in [0, 1], got {beta}")
        self.register_buffer("beta", _per_neuron(beta, self.shape))

    def forward(self, current):
        mem = self.initial_mem(current) if self.mem is None else self.mem
        self.mem = self.beta * mem + current
        return self.mem


class TSM(nn.Module):
    """Temporal-wise spiking mechanism (SDM): input current x p[t] at time step t.

    ``gain`` holds one learnable value per time step (initialised to 1);
    the paper trains the network first, then fine-tunes the gains briefly
    (:func:`freeze_tsm` / :func:`tsm_parameters`). A run longer than
    ``num_steps`` is an error: the gains are defined for T steps only.
    """

    def __init__(self, neuron: nn.Module, num_steps: int):
        super().__init__()
        if int(num_steps) < 1:
            raise SpikedeployError(f"TSM needs num_steps >= 1, got {num_steps}")
        self.neuron = neuron
        self.gain = nn.Parameter(torch.ones(int(num_steps)))
        self.t = 0

    @property
    def spiking(self) -> bool:
        return bool(getattr(self.neuron, "spiking", True))

    @property
    def shape(self):
        return getattr(self.neuron, "shape", None)

    def reset_mem(self) -> None:
        self.t = 0
        if hasattr(self.neuron, "reset_mem"):
            self.neuron.reset_mem()

    def forward(self, current):
        if self.t >= self.gain.shape[0]:
            raise SpikedeployError(f"TSM gains are defined for {self.gain.shape[0]} time steps; "
                                   f"step {self.t + 1} was requested (reset the state per sample)")
        out = self.neuron(current * self.gain[self.t])
        self.t += 1
        return out


def tsm_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The TSM gains of every TSM wrapper in ``model``."""
    return [m.gain for m in model.modules() if isinstance(m, TSM)]


def freeze_tsm(model: nn.Module, frozen: bool = True) -> None:
    """Freeze (train the network) or unfreeze (fine-tune) every TSM gain."""
    for gain in tsm_parameters(model):
        gain.requires_grad_(not frozen)


@torch.no_grad()
def scale_thresholds(model: nn.Module, gamma: float) -> nn.Module:
    """Threshold guidance (SDM) on the torch side: a copy with every threshold x gamma.

    Covers this module's neurons and snnTorch neurons (``threshold``
    attribute). A subtractive reset then subtracts the scaled threshold, as
    the exported graph with ``threshold_scale`` and the simulators'
    ``--threshold-scale`` do.
    """
    import copy
    import math

    gamma = float(gamma)
    if not (gamma > 0 and math.isfinite(gamma)):
        raise SpikedeployError(f"threshold scale must be a positive number, got {gamma}")
    reset_state(model)          # hidden state left from a run is not a graph leaf: deepcopy refuses it
    scaled = copy.deepcopy(model)
    for module in scaled.modules():
        if isinstance(module, (LIF, snn.SpikingNeuron)):
            module.threshold.mul_(gamma)
    return scaled


def is_neuron(module: nn.Module) -> bool:
    """A stateful neuron layer (spiking or not): snnTorch's, or one of models.neurons."""
    return isinstance(module, (snn.SpikingNeuron, Neuron, TSM))


def reset_state(model: nn.Module) -> None:
    """Reset every neuron's hidden state (membrane, synaptic current, TSM step).

    Does what ``snntorch.utils.reset`` does, per module: that function resets
    snnTorch's class-level registry of instances, which misses deep copies
    (``copy.deepcopy`` does not run ``__init__``, so copies are unregistered)
    and touches every other network in the process. spikedeploy's own neurons
    restart from their initial voltage (IMP) and TSM from step 0; any other
    module with ``stateful = True`` and a ``reset_mem()`` (e.g. TCSA) is reset too.
    """
    for module in model.modules():
        if (is_neuron(module) or getattr(module, "stateful", False)) and hasattr(module, "reset_mem"):
            module.reset_mem()
