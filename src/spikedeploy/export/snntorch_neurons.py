"""snnTorch's neurons -> NIR: Leaky, Synaptic, RLeaky and RSynaptic, every reset they run.

snnTorch 1.0 computes, per step (``_neurons/leaky.py`` and siblings)::

    reset = H(mem[t-1] - threshold)                      # from the stored membrane
    Leaky:     mem = beta * mem + input - reset * threshold          ("subtract")
               mem = beta * ((1 - reset) * mem) + input              ("zero")
    Synaptic:  syn = alpha * syn + input;  mem = beta * mem + syn (- reset * threshold)
               or mem = (beta * mem + syn) - reset * (beta * mem + syn)  ("zero")
    RLeaky, RSynaptic: as Leaky/Synaptic with input + recurrent(spk[t-1]), and their
               "zero" like Synaptic's (the whole update is zeroed)
    spk = H(mem - threshold) * graded_spikes_factor
    reset_delay=False adds:  do_reset = spk / factor - reset;  mem -= do_reset * threshold
               ("subtract") or  mem -= do_reset * mem  ("zero")

"none" never resets. In :mod:`spikedeploy.ir.semantics` terms that is the
pending reset ``spikedeploy.reset_delay = 1`` plus, without snnTorch's
delay, the in-step reset ``spikedeploy.reset_in_step = 1``. Two shortcuts
give plain NIR nodes: Leaky's delayed "zero" is NIR's LIF reset exactly (it
zeroes the stored membrane before the next update, so the next step sees
beta * 0 + input, as after an immediate reset; only the stored voltage of
the spike's own step differs), and every "zero" with reset_delay=False
never has a pending reset (the immediate zero leaves mem = 0 <= threshold).
snnTorch 1.0's RSynaptic ignores reset_delay=False (its forward applies the
immediate reset to its spk/mem *arguments*, a local copy it discards; called
with the input alone it raises), so it always runs the delayed reset, and is
exported so.

``graded_spikes_factor`` becomes ``spikedeploy.spike_value``: the value
snnTorch really emits, ``H * factor`` in the dtype its spike function
returns (float32, so a 0-d factor of 0.7 emits 0.699999988...). The
recurrent layer of RLeaky/RSynaptic (``nn.Linear``, ``nn.Conv2d`` or the
one-to-one ``V``) becomes an Affine/Linear, Conv2d or Scale node closing a
cycle through the neuron (the edge closing a cycle reads the previous step;
its bias acts from step 0, as ``recurrent(zeros)`` does in snnTorch).
Refused, naming the field: ``inhibition``, ``state_quant``, learnable
values with no NIR home, thresholds <= 0 (snnTorch's reset flag then fires
on a reset membrane), a factor of 0, and the other snnTorch neurons
(Alpha, Lapicque, SLSTM, SConv2dLSTM, ...).
"""
from __future__ import annotations

import nir
import numpy as np
import snntorch as snn
import torch
from torch import nn

from ..errors import UnsupportedError
from ..metadata import RESET_DELAY, RESET_IN_STEP, RESET_MODE, SPIKE_VALUE
from .layers import INPUT, REFUSED, Block, conv_node, register_converter
from .neuron_nodes import decay, float64, leaky_node, per_neuron, synaptic_node

RECURRENT_SUFFIX = "_rec"
# learnable values a NIR neuron node or our metadata carries (their trained values are exported)
EXPORTED_PARAMETERS = ("beta", "alpha", "threshold", "graded_spikes_factor", "V")
_STATE_FUNCTION_MODE = {"_base_sub": "subtract", "_base_zero": "zero", "_base_int": "none"}
_MECHANISM_NAMES = ("subtract", "zero", "none")       # snnTorch's reset_mechanism_val codes

for _cls, _why in (
        (snn.Alpha, "snnTorch's Alpha neuron runs two synaptic currents (excitatory and "
                    "inhibitory) whose difference drives the membrane; NIR's neurons have one"),
        (snn.Lapicque, "Lapicque's RC neuron (its own R, C and time step) has not been mapped to "
                       "NIR yet; use snn.Leaky with beta = exp(-dt/RC)"),
        (snn.SLSTM, "a spiking LSTM multiplies gates with each other; NIR edges only add "
                    "weighted inputs"),
        (snn.SConv2dLSTM, "a spiking convolutional LSTM multiplies gates with each other; NIR "
                          "edges only add weighted inputs")):
    REFUSED[_cls] = _why


def threshold(name, module, shape) -> np.ndarray:
    values = per_neuron(name, "threshold", module.threshold, shape)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        # snnTorch derives its reset flag from mem > threshold: with threshold <= 0 the
        # flag is set after every reset and its update departs from the exported one
        raise UnsupportedError(name, "threshold", "thresholds must be finite and > 0; "
                               f"got min {values.min():g}")
    return values


def _check_options(name, module) -> None:
    """Refuse every snnTorch option whose effect no node or metadata can carry."""
    if getattr(module, "inhibition", False):
        raise UnsupportedError(name, "inhibition", "winner-take-all inhibition (only the neuron "
                               "with the largest membrane of each sample may fire) couples "
                               "neurons at run time; no NIR node or Loihi process does that")
    if getattr(module, "state_quant", False):
        raise UnsupportedError(name, "state_quant", "snnTorch's state quantisation rounds the "
                               "membrane to its own levels every step; no NIR field carries it "
                               "(export without state_quant: Loihi's fixed point is spikedeploy's "
                               "own quantisation)")
    for param, _ in module.named_parameters(recurse=False):
        if param not in EXPORTED_PARAMETERS:
            raise UnsupportedError(name, param, f"learnable '{param}' has no NIR field")


def reset_metadata(name, module, kind: str) -> dict:
    """``spikedeploy.reset_*`` metadata reproducing snnTorch's reset (module docstring)."""
    mode = _STATE_FUNCTION_MODE.get(getattr(module.state_function, "__name__", ""))
    code = int(module.reset_mechanism_val)
    delayed = bool(getattr(module, "reset_delay", True)) or kind == "rsynaptic"
    if mode is None:
        raise UnsupportedError(name, "reset_mechanism", "unrecognised snnTorch update function "
                               f"{module.state_function!r}")
    if not delayed and _MECHANISM_NAMES[code] != mode:
        raise UnsupportedError(name, "reset_mechanism", f"the neuron was built with reset "
                               f"{mode!r} but its reset_mechanism_val buffer says "
                               f"{_MECHANISM_NAMES[code]!r} (a state_dict from another model?): "
                               "snnTorch would run a mix of both")
    if mode == "none":
        return {RESET_MODE: "none"}
    if mode == "zero":
        if kind == "leaky" or not delayed:
            return {}                                # NIR's LIF reset, exactly (docstring)
        return {RESET_MODE: "zero", RESET_DELAY: 1, RESET_IN_STEP: 0}
    return {RESET_MODE: "subtract", RESET_DELAY: 1, RESET_IN_STEP: 0 if delayed else 1}


def spike_metadata(name, module, threshold_values: np.ndarray) -> dict:
    """``spikedeploy.spike_value`` when the layer emits graded spikes (what ``fire`` returns)."""
    factor = float64(module.graded_spikes_factor)
    if np.all(factor == 1.0):
        return {}
    if np.any(factor == 0):
        raise UnsupportedError(name, "graded_spikes_factor", "a factor of 0 silences the layer "
                               "(and snnTorch divides by it to reset)")
    with torch.no_grad():
        dtype = module.threshold.dtype if module.threshold.is_floating_point() else torch.float32
        above = torch.as_tensor(threshold_values + 1.0, dtype=torch.float64).to(dtype)
        value = module.fire(above.unsqueeze(0))[0]
    return {SPIKE_VALUE: float64(value).reshape(threshold_values.shape)}


def _metadata(name, module, kind, th) -> dict:
    _check_options(name, module)
    return reset_metadata(name, module, kind) | spike_metadata(name, module, th)


def _neuron(name, module, shape: tuple, dt, kind: str):
    """The LIF (leaky kinds) or CubaLIF (synaptic kinds) node of an snnTorch neuron."""
    th = threshold(name, module, shape)
    beta = decay(name, "beta", module.beta, shape)
    node_meta = _metadata(name, module, kind, th)
    if kind in ("leaky", "rleaky"):
        return leaky_node(name, beta, th, dt, node_meta)
    alpha = decay(name, "alpha", module.alpha, shape)
    return synaptic_node(name, alpha, beta, th, dt, node_meta)


@register_converter(snn.Leaky)
def _leaky(name, module: snn.Leaky, in_shape, dt):
    return _neuron(name, module, tuple(in_shape), dt, "leaky"), tuple(in_shape)


@register_converter(snn.Synaptic)
def _synaptic(name, module: snn.Synaptic, in_shape, dt):
    return _neuron(name, module, tuple(in_shape), dt, "synaptic"), tuple(in_shape)


def recurrent_synapse(name: str, module, shape: tuple):
    """The NIR node of ``module.recurrent`` (output shape must equal the layer's ``shape``)."""
    rec = module.recurrent
    if isinstance(rec, nn.Linear):
        if len(shape) != 1 or rec.in_features != shape[0] or rec.out_features != shape[0]:
            raise UnsupportedError(name, "linear_features", f"the recurrent Linear is "
                                   f"{rec.in_features} -> {rec.out_features}, the layer has "
                                   f"shape {shape}")
        weight = float64(rec.weight)
        if rec.bias is None:
            return nir.Linear(weight=weight)
        return nir.Affine(weight=weight, bias=float64(rec.bias))
    if isinstance(rec, nn.Conv2d):
        node, out_shape = conv_node(name, rec, shape)
        if tuple(out_shape) != tuple(shape):
            raise UnsupportedError(name, "kernel_size", f"the recurrent Conv2d maps {shape} to "
                                   f"{tuple(out_shape)}; it must keep the layer's shape (odd kernel)")
        return node
    if not module.all_to_all:     # snnTorch's RecurrentOneToOne: x * V
        return nir.Scale(scale=per_neuron(name, "V", module.V, shape))
    raise UnsupportedError(name, "recurrent", f"recurrent layer {type(rec).__name__} has no NIR "
                           "conversion (nn.Linear, nn.Conv2d or one-to-one V)")


def _recurrent_block(name, neuron, module, shape) -> Block:
    rec_name = name + RECURRENT_SUFFIX
    synapse = recurrent_synapse(rec_name, module, shape)
    return Block({name: neuron, rec_name: synapse},
                 [(INPUT, name), (name, rec_name), (rec_name, name)], [name], shape)


@register_converter(snn.RLeaky)
def _rleaky(name, module: snn.RLeaky, in_shape, dt):
    shape = tuple(in_shape)
    return _recurrent_block(name, _neuron(name, module, shape, dt, "rleaky"), module, shape)


@register_converter(snn.RSynaptic)
def _rsynaptic(name, module: snn.RSynaptic, in_shape, dt):
    shape = tuple(in_shape)
    return _recurrent_block(name, _neuron(name, module, shape, dt, "rsynaptic"), module, shape)


def explain_failure(name, module, in_shape: tuple, exc: Exception):
    """Why an snnTorch neuron failed while the model ran (None: not known here)."""
    if not isinstance(module, snn.SpikingNeuron):
        return None
    if isinstance(module, snn.RSynaptic) and not module.reset_delay and module.init_hidden:
        return UnsupportedError(name, "reset_delay", "snnTorch 1.0's RSynaptic cannot run with "
                                "reset_delay=False and init_hidden=True (its forward divides its "
                                "spk argument, None, by the graded spike factor); with explicit "
                                "state it ignores the flag and resets one step late: use "
                                "reset_delay=True, which is what it computes")
    for field_name in EXPORTED_PARAMETERS:
        value = getattr(module, field_name, None)
        if value is None or not hasattr(value, "shape"):
            continue
        try:
            np.broadcast_shapes(tuple(value.shape), tuple(in_shape))
        except ValueError:
            return UnsupportedError(name, field_name, f"shape {tuple(value.shape)} does not fit the "
                                    f"layer's shape {tuple(in_shape)} (snnTorch fails on it too)")
    return None
