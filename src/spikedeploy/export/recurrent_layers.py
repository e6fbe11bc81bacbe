"""snnTorch's recurrent neurons -> NIR: a neuron node plus a recurrent synapse closing a cycle.

snnTorch 1.0's ``snn.RLeaky`` (``rleaky.py``) computes, per step::

    mem = beta.clamp(0, 1) * mem + input + recurrent(spk)     # spk: the previous step's spikes
    spk = mem > threshold
    mem = 0 where spk            (reset_mechanism="zero", reset_delay=False)

where ``recurrent`` is an ``nn.Linear(n, n)`` (``all_to_all=True`` with
``linear_features``), an ``nn.Conv2d(c, c, k, padding=k // 2)``
(``all_to_all=True`` with ``conv2d_channels`` and ``kernel_size``) or the
element-wise ``x * V`` (``all_to_all=False``). At t = 0 the previous spikes
are zero, so the Linear/Conv bias already acts at the first step.

Exported as a :class:`~spikedeploy.export.layers.Block`::

    <input> -> NAME (nir.LIF, or nir.IF if every beta is 1) -> next layer
               NAME -> NAME_rec -> NAME        (recurrent edge: closes a cycle)

with ``NAME_rec`` a ``nir.Affine`` (``nir.Linear`` without bias), a
``nir.Conv2d`` or a ``nir.Scale`` (V broadcast per neuron). spikedeploy's
graph ordering makes the edge that closes the cycle (``NAME_rec -> NAME``)
read the previous step's value, and pushes the recurrent bias into the
neuron's constant input current (acting from step 0, as in snnTorch). The
neuron's parameters are those of ``snn.Leaky`` (see :mod:`.layers`), so the
graph reproduces the float64 snnTorch run exactly.

``snn.RSynaptic`` is refused, with the reason: snnTorch 1.0's RSynaptic
does not implement ``reset_delay=False`` (its forward computes the
immediate reset from the ``spk``/``mem`` *arguments*: called with the
input alone it raises ``TypeError``; called with explicit state it updates
a local copy that is discarded), so every RSynaptic resets one step late
(the voltage is zeroed at the step after the spike, that step's input
lost), which no NIR neuron expresses (NIR resets in the spike's step).
"""
from __future__ import annotations

import nir
import numpy as np
import snntorch as snn
from torch import nn

from ..errors import UnsupportedError
from .layers import (INPUT, NEURON_FIELDS_WITH_NIR_HOME, Block, _check_spiking_neuron, _decay,
                     _float64, _nudge, _threshold, _time_constant, conv_node, register_converter)

RECURRENT_SUFFIX = "_rec"


def _check_recurrent_neuron(name: str, module) -> None:
    """The checks of ``snn.Leaky`` (reset, delay, graded spikes...); a learnable V is allowed."""
    try:
        _check_spiking_neuron(name, module)
    except UnsupportedError as exc:
        if exc.field != "V" or module.all_to_all:
            raise
        for param, _ in module.named_parameters(recurse=False):   # V is exported as Scale
            if param not in NEURON_FIELDS_WITH_NIR_HOME | {"V"}:
                raise UnsupportedError(name, param, f"learnable '{param}' has no NIR field")


def _leaky_node(name: str, module, shape: tuple, dt: float):
    beta = _decay(name, "beta", module.beta, shape)
    threshold = _threshold(name, module, shape)
    zeros = np.zeros(shape)
    if np.all(beta == 1.0):
        r = _nudge(np.full(shape, 1.0 / dt), lambda r: dt * r, np.ones(shape))
        return nir.IF(r=r, v_threshold=threshold, v_reset=zeros)
    if np.any(beta == 1.0):
        raise UnsupportedError(name, "beta", "mixes beta = 1 (no leak, NIR IF) with leaky neurons "
                               "(NIR LIF) in one layer")
    tau, r = _time_constant(beta, dt)
    return nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=threshold, v_reset=zeros)


def recurrent_synapse(name: str, module, shape: tuple):
    """The NIR node of ``module.recurrent`` (output shape must equal the layer's ``shape``)."""
    rec = module.recurrent
    if isinstance(rec, nn.Linear):
        if len(shape) != 1 or rec.in_features != shape[0] or rec.out_features != shape[0]:
            raise UnsupportedError(name, "linear_features", f"the recurrent Linear is "
                                   f"{rec.in_features} -> {rec.out_features}, the layer has shape {shape}")
        weight = _float64(rec.weight)
        if rec.bias is None:
            return nir.Linear(weight=weight)
        return nir.Affine(weight=weight, bias=_float64(rec.bias))
    if isinstance(rec, nn.Conv2d):
        node, out_shape = conv_node(name, rec, shape)
        if tuple(out_shape) != tuple(shape):
            raise UnsupportedError(name, "kernel_size", f"the recurrent Conv2d maps {shape} to "
                                   f"{tuple(out_shape)}; it must keep the layer's shape (odd kernel)")
        return node
    if not module.all_to_all:     # snnTorch's RecurrentOneToOne: x * V
        v = _float64(module.V)
        try:
            scale = np.broadcast_to(v, shape).copy()
        except ValueError:
            raise UnsupportedError(name, "V", f"V of shape {v.shape} does not fit the layer's shape {shape}")
        return nir.Scale(scale=scale)
    raise UnsupportedError(name, "recurrent", f"recurrent layer {type(rec).__name__} has no NIR "
                           "conversion (nn.Linear, nn.Conv2d or one-to-one V)")


@register_converter(snn.RLeaky)
def _rleaky(name, module: snn.RLeaky, in_shape, dt):
    _check_recurrent_neuron(name, module)
    shape = tuple(in_shape)
    neuron = _leaky_node(name, module, shape, dt)
    rec_name = name + RECURRENT_SUFFIX
    synapse = recurrent_synapse(rec_name, module, shape)
    return Block({name: neuron, rec_name: synapse},
                 [(INPUT, name), (name, rec_name), (rec_name, name)], [name], shape)


RSYNAPTIC_REASON = (
    "snnTorch 1.0's RSynaptic cannot be reproduced by NIR: it ignores reset_delay=False (its "
    "forward applies the immediate reset to the spk/mem arguments -- a TypeError when called "
    "with the input alone, a discarded local copy when called with explicit state), so it always "
    "resets one step late: the voltage stays above threshold in the spike's step and is zeroed at "
    "the next step, whose input is lost. NIR neurons reset in the spike's step. Use snn.RLeaky "
    "(reset_mechanism='zero', reset_delay=False)")


@register_converter(snn.RSynaptic)
def _rsynaptic(name, module, in_shape, dt):
    raise UnsupportedError(name, "reset_delay", RSYNAPTIC_REASON)
