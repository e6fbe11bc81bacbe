"""Per-module conversion to NIR: a registry ``module type -> converter``.

A converter takes ``(name, module, in_shape, dt)`` (``in_shape`` excludes
the batch) and returns ``(node, out_shape)``; ``node`` is None for modules
that are the identity at inference (they add no node). Lookup is by exact
type: a subclass may compute something else (snnTorch's DeltaLeaky
subclasses Leaky), so it needs its own entry. Add one with
:func:`register_converter`.

Every parameter is computed in float64 from the module's values, so the
graph, discretised as :mod:`spikedeploy.ir.semantics` defines (forward Euler
at ``dt``), reproduces snnTorch's float64 arithmetic:

* ``snn.Leaky`` (reset "zero", reset_delay=False): mem = beta*mem + I
  -> ``nir.LIF`` with tau = dt/(1-beta), r = tau/dt, v_leak = 0,
  v_reset = 0, v_threshold = threshold, so dv = dt/tau = 1-beta and the
  input gain g = dt*r/tau = 1. All beta = 1 (no leak) -> ``nir.IF`` with
  r = 1/dt.
* ``snn.Synaptic`` (same reset rules): syn = alpha*syn + I;
  mem = beta*mem + syn -> ``nir.CubaLIF`` with tau_syn = dt/(1-alpha),
  tau_mem = dt/(1-beta), r = tau_mem/dt, w_in = tau_syn/dt (gain 1).
* ``nn.Linear`` -> ``nir.Affine`` (``nir.Linear`` without bias);
  ``nn.Flatten`` -> ``nir.Flatten`` (dims shifted: NIR excludes the batch);
  ``nn.Identity`` and ``nn.Dropout`` (identity in evaluation) -> no node.

Rounding: tau, r and w_in are moved by a few ulps where that makes the
consumer's expressions (1 - dt/tau, dt*r/tau, ...) land exactly on beta,
alpha and 1 in float64, so (nearly always) no rounding error separates the
two simulations; where no such neighbour exists the error is 1 ulp.

Anything NIR cannot carry is refused with
:class:`~spikedeploy.errors.UnsupportedError` naming the layer and field:
reset "subtract"/"none", reset_delay=True, graded spikes, inhibition,
state quantisation, learnable values with no NIR field, thresholds <= 0
(snnTorch's reset logic then departs from NIR's), mixed beta = 1.
"""
from __future__ import annotations

from typing import Callable

import nir
import numpy as np
import snntorch as snn
import torch
from torch import nn

from ..errors import UnsupportedError

Converter = Callable[[str, nn.Module, tuple, float], tuple]
CONVERTERS: dict[type, Converter] = {}

# Learnable values a NIR neuron field carries (their trained value is exported).
NEURON_FIELDS_WITH_NIR_HOME = {"beta", "alpha", "threshold"}


def register_converter(*module_types: type):
    """Decorator: use the function to convert modules of exactly these types."""
    def register(fn: Converter) -> Converter:
        for t in module_types:
            CONVERTERS[t] = fn
        return fn
    return register


def convert_layer(name: str, module: nn.Module, in_shape: tuple, dt: float):
    """(NIR node or None, output shape) for one child of the Sequential."""
    converter = CONVERTERS.get(type(module))
    if converter is None:
        known = ", ".join(sorted(t.__name__ for t in CONVERTERS))
        raise UnsupportedError(name, "type", f"{type(module).__module__}.{type(module).__name__} "
                               f"has no NIR conversion (supported: {known})")
    return converter(name, module, tuple(int(s) for s in in_shape), dt)


def _float64(value) -> np.ndarray:
    """A module value as float64 (float32 -> float64 is exact)."""
    if torch.is_tensor(value):
        value = value.detach().cpu().to(torch.float64).numpy()
    return np.array(value, dtype=np.float64)


# --- synapses and shape ops -------------------------------------------------

@register_converter(nn.Linear)
def _linear(name, module: nn.Linear, in_shape, dt):
    if len(in_shape) != 1 or in_shape[0] != module.in_features:
        raise UnsupportedError(name, "in_features", f"expects input of shape ({module.in_features},), "
                               f"gets {in_shape}; add nn.Flatten before it")
    weight = _float64(module.weight)
    if module.bias is None:
        return nir.Linear(weight=weight), (module.out_features,)
    return nir.Affine(weight=weight, bias=_float64(module.bias)), (module.out_features,)


@register_converter(nn.Flatten)
def _flatten(name, module: nn.Flatten, in_shape, dt):
    ndim = len(in_shape) + 1                # torch counts the batch dimension
    start, end = module.start_dim % ndim, module.end_dim % ndim
    if start == 0:
        raise UnsupportedError(name, "start_dim", "flattening the batch dimension has no NIR equivalent")
    start, end = start - 1, end - 1         # NIR dims exclude the batch
    out_shape = in_shape[:start] + (int(np.prod(in_shape[start:end + 1])),) + in_shape[end + 1:]
    node = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end)
    return node, out_shape


@register_converter(nn.Identity, nn.Dropout)
def _identity(name, module, in_shape, dt):
    return None, in_shape


# --- neurons ------------------------------------------------------------------

def _nudge(start: np.ndarray, achieved: Callable[[np.ndarray], np.ndarray], target: np.ndarray,
           max_ulps: int = 64) -> np.ndarray:
    """The float64 closest to ``start`` (within max_ulps) with achieved(x) == target, per element.

    Elements with no such neighbour keep ``start`` (then off by an ulp or two).
    """
    start = np.asarray(start, np.float64)
    best = start.copy()
    found = achieved(start) == target
    up, down = start.copy(), start.copy()
    for _ in range(max_ulps):
        if found.all():
            break
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
        for candidate in (up, down):
            hit = ~found & (achieved(candidate) == target)
            best[hit] = candidate[hit]
            found |= hit
    return best


def _time_constant(decay: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(tau, tau/dt) for a per-step decay factor (beta or alpha).

    tau is built as dt * ratio, so ``dt * r / tau`` is exactly 1 for r = ratio,
    and ratio is tuned so that the consumer's 1 - dt/tau equals ``decay``
    (for about 9 in 10 values; the rest are 1 ulp off).
    """
    ratio = _nudge(1.0 / (1.0 - decay), lambda k: 1.0 - dt / (dt * k), decay)
    return dt * ratio, ratio


def _per_neuron(name, field, value, shape) -> np.ndarray:
    value = _float64(value)
    try:
        return np.broadcast_to(value, shape).copy()
    except ValueError:
        raise UnsupportedError(name, field, f"shape {value.shape} does not fit the layer's shape {shape}")


def _decay(name, field, value, shape) -> np.ndarray:
    """beta/alpha per neuron, clamped to [0, 1] as snnTorch's forward pass does."""
    decay = _per_neuron(name, field, value, shape)
    if not np.all(np.isfinite(decay)):
        raise UnsupportedError(name, field, f"{field} holds NaN or infinite values")
    return np.clip(decay, 0.0, 1.0)


def _threshold(name, module, shape) -> np.ndarray:
    threshold = _per_neuron(name, "threshold", module.threshold, shape)
    if not np.all(np.isfinite(threshold)) or np.any(threshold <= 0):
        # snnTorch derives its "already reset" flag from mem > threshold with
        # mem = 0 after a spike; with threshold <= 0 that flag is set and its
        # update departs from NIR's reset (it doubles or keeps mem).
        raise UnsupportedError(name, "threshold", "thresholds must be finite and > 0; "
                               f"got min {threshold.min():g}")
    return threshold


def _check_spiking_neuron(name, module) -> None:
    """Refuse every snnTorch option whose effect NIR's neuron nodes cannot carry."""
    mechanism = module.reset_mechanism
    if mechanism != "zero" or int(module.reset_mechanism_val) != 1:
        raise UnsupportedError(name, "reset_mechanism",
                               f"reset {mechanism!r} (code {int(module.reset_mechanism_val)}) is not "
                               "representable: NIR neurons reset to v_reset; use reset_mechanism='zero'")
    if getattr(module, "reset_delay", True):
        raise UnsupportedError(name, "reset_delay", "reset_delay=True resets one step late; NIR "
                               "resets in the step of the spike: use reset_delay=False")
    if getattr(module, "inhibition", False):
        raise UnsupportedError(name, "inhibition", "winner-take-all inhibition has no NIR field")
    if getattr(module, "state_quant", False):
        raise UnsupportedError(name, "state_quant", "state quantisation has no NIR field")
    factor = module.graded_spikes_factor
    if isinstance(factor, nn.Parameter):
        raise UnsupportedError(name, "graded_spikes_factor", "a learnable graded-spike factor has "
                               "no NIR field")
    if np.any(_float64(factor) != 1.0):
        raise UnsupportedError(name, "graded_spikes_factor", "graded spikes (factor != 1) have no "
                               "NIR field; NIR spikes are 1")
    for param, _ in module.named_parameters(recurse=False):
        if param not in NEURON_FIELDS_WITH_NIR_HOME:
            raise UnsupportedError(name, param, f"learnable '{param}' has no NIR field")


@register_converter(snn.Leaky)
def _leaky(name, module: snn.Leaky, in_shape, dt):
    _check_spiking_neuron(name, module)
    beta = _decay(name, "beta", module.beta, in_shape)
    threshold = _threshold(name, module, in_shape)
    zeros = np.zeros(in_shape)
    if np.all(beta == 1.0):  # no leak: tau would be infinite, NIR's IF is exact
        r = _nudge(np.full(in_shape, 1.0 / dt), lambda r: dt * r, np.ones(in_shape))
        return nir.IF(r=r, v_threshold=threshold, v_reset=zeros), in_shape
    if np.any(beta == 1.0):
        raise UnsupportedError(name, "beta", "mixes beta = 1 (no leak, NIR IF) with leaky neurons "
                               "(NIR LIF) in one layer")
    tau, r = _time_constant(beta, dt)
    return nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=threshold, v_reset=zeros), in_shape


@register_converter(snn.Synaptic)
def _synaptic(name, module: snn.Synaptic, in_shape, dt):
    _check_spiking_neuron(name, module)
    alpha = _decay(name, "alpha", module.alpha, in_shape)
    beta = _decay(name, "beta", module.beta, in_shape)
    for field, decay in (("alpha", alpha), ("beta", beta)):
        if np.any(decay == 1.0):
            raise UnsupportedError(name, field, f"{field} = 1 (no decay) gives an infinite time "
                                   "constant in NIR's CubaLIF")
    threshold = _threshold(name, module, in_shape)
    tau_syn, w_in = _time_constant(alpha, dt)
    tau_mem, r = _time_constant(beta, dt)
    # the consumer's input gain: (dt/tau_mem) * r * (dt/tau_syn) * w_in, made exactly 1
    w_in = _nudge(w_in, lambda w: (dt / tau_mem) * r * (dt / tau_syn) * w, np.ones(in_shape))
    zeros = np.zeros(in_shape)
    node = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=zeros,
                       v_threshold=threshold, v_reset=zeros, w_in=w_in)
    return node, in_shape
