"""NIR neuron nodes from per-step decays and thresholds, exact in float64.

snnTorch's update ``mem = beta * mem + input`` is NIR's LIF at step dt with
tau = dt/(1-beta), r = tau/dt (forward Euler: dv = dt/tau = 1 - beta, input
gain dt*r/tau = 1); beta = 1 is NIR's IF with r = 1/dt. tau, r and w_in are
moved by a few ulps where that makes the consumer's expressions
(1 - dt/tau, dt*r/tau, ...) land exactly on beta, alpha and 1 in float64,
so (nearly always) no rounding error separates the two simulations; where no
such neighbour exists the error is 1 ulp.
"""
from __future__ import annotations

from typing import Callable

import nir
import numpy as np
import torch

from ..errors import UnsupportedError


def float64(value) -> np.ndarray:
    """A module value as float64 (float32 -> float64 is exact)."""
    if torch.is_tensor(value):
        value = value.detach().cpu().to(torch.float64).numpy()
    return np.array(value, dtype=np.float64)


def nudge(start: np.ndarray, achieved: Callable[[np.ndarray], np.ndarray], target: np.ndarray,
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


def time_constant(decay: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(tau, tau/dt) for a per-step decay factor (beta or alpha).

    tau is built as dt * ratio, so ``dt * r / tau`` is exactly 1 for r = ratio,
    and ratio is tuned so that the consumer's 1 - dt/tau equals ``decay``
    (for about 9 in 10 values; the rest are 1 ulp off).
    """
    ratio = nudge(1.0 / (1.0 - decay), lambda k: 1.0 - dt / (dt * k), decay)
    return dt * ratio, ratio


def unit_gain_r(shape, dt, gain=1.0) -> np.ndarray:
    """r with dt * r == gain exactly (IF and I nodes: g = dt * r)."""
    target = np.full(shape, float(gain))
    return nudge(target / dt, lambda r: dt * r, target)


def step_decay(node, dt: float) -> np.ndarray:
    """The per-step voltage decay (snnTorch's beta) of an IF/LIF/LI node this exporter wrote:
    1 - dt/tau, which :func:`time_constant` makes equal to beta; 1 for IF."""
    if isinstance(node, nir.IF):
        return np.ones(np.shape(node.v_threshold))
    return 1.0 - dt / np.asarray(node.tau, np.float64)


def per_neuron(name, field, value, shape) -> np.ndarray:
    """A scalar, per-channel or per-neuron value broadcast to the layer's shape (torch rules)."""
    value = float64(value)
    try:
        return np.broadcast_to(value, shape).copy()
    except ValueError:
        raise UnsupportedError(name, field, f"shape {value.shape} does not fit the layer's shape "
                               f"{tuple(shape)}")


def decay(name, field, value, shape) -> np.ndarray:
    """beta/alpha per neuron, clamped to [0, 1] as snnTorch's forward pass does."""
    values = per_neuron(name, field, value, shape)
    if not np.all(np.isfinite(values)):
        raise UnsupportedError(name, field, f"{field} holds NaN or infinite values")
    return np.clip(values, 0.0, 1.0)


def leaky_node(name: str, beta: np.ndarray, threshold: np.ndarray | None, dt: float,
               metadata: dict | None = None):
    """IF (beta = 1 everywhere), LIF (beta < 1), or, with ``threshold`` None, I / LI: the
    neuron ``v = beta * v + input`` with unit input gain."""
    shape = np.shape(beta)
    zeros = np.zeros(shape)
    metadata = dict(metadata or {})
    if np.all(beta == 1.0):  # no leak: tau would be infinite, NIR's IF is exact
        r = unit_gain_r(shape, dt)
        if threshold is None:
            return nir.I(r=r, metadata=metadata)
        return nir.IF(r=r, v_threshold=threshold, v_reset=zeros, metadata=metadata)
    if np.any(beta == 1.0):
        raise UnsupportedError(name, "beta", "mixes beta = 1 (no leak, NIR IF) with leaky neurons "
                               "(NIR LIF) in one layer")
    tau, r = time_constant(beta, dt)
    if threshold is None:
        return nir.LI(tau=tau, r=r, v_leak=zeros, metadata=metadata)
    return nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=threshold, v_reset=zeros,
                   metadata=metadata)


def synaptic_node(name: str, alpha: np.ndarray, beta: np.ndarray, threshold: np.ndarray, dt: float,
                  metadata: dict | None = None) -> nir.CubaLIF:
    """CubaLIF for ``syn = alpha * syn + input; mem = beta * mem + syn`` (unit gains)."""
    for field_name, values in (("alpha", alpha), ("beta", beta)):
        if np.any(values == 1.0):
            raise UnsupportedError(name, field_name, f"{field_name} = 1 (no decay) gives an "
                                   "infinite time constant in NIR's CubaLIF")
    tau_syn, w_in = time_constant(alpha, dt)
    tau_mem, r = time_constant(beta, dt)
    # the consumer's input gain: (dt/tau_mem) * r * (dt/tau_syn) * w_in, made exactly 1
    w_in = nudge(w_in, lambda w: (dt / tau_mem) * r * (dt / tau_syn) * w, np.ones(np.shape(beta)))
    zeros = np.zeros(np.shape(beta))
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=zeros,
                       v_threshold=threshold, v_reset=zeros, w_in=w_in, metadata=dict(metadata or {}))
