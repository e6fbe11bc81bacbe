"""The one discrete-time definition of every supported NIR neuron primitive.

NIR equations are continuous; spikedeploy discretises them with forward Euler
at step ``dt`` (taken from graph metadata or given by the user). Every neuron
primitive is mapped onto one generalised current-based neuron, whose update
at step t (all quantities per neuron, ``a[t]`` the sum of the node's inputs)
is::

    u[t] = (1 - du) * u[t-1] + g * p[t] * (a[t] + c)    # synaptic current
    v[t] = (1 - dv) * v[t-1] + u[t] + b          # membrane voltage
    z[t] = v[t] > v_th                           # spiking nodes only
    v[t] = v_reset where z[t]    (reset "zero", NIR's v_reset)
    v[t] = v[t] - v_th where z[t] (reset "subtract", metadata opt-in)

where p[t] is the temporal-wise gain of time step t (TSM; 1 unless the node's
metadata ``spikedeploy.tsm_gain`` gives one value per step), c is the bias
of the Affine node(s) feeding the neuron (a bias is an
input current: under CubaLIF it is filtered by the synapse like any input),
with u[0] = 0 and v[0] = v_init (0 unless metadata says otherwise). A spiking
node outputs z; a non-spiking node (LI, CubaLI, I) outputs v.

The mapping from NIR fields, per primitive (tau, tau_mem, tau_syn in seconds):

======== ============= ================ ========================== ===================
node     du            dv               g                          b
======== ============= ================ ========================== ===================
LIF, LI  1             dt/tau           dt*r/tau                   dt*v_leak/tau
CubaLIF, dt/tau_syn    dt/tau_mem       (dt/tau_mem)*r             dt*v_leak/tau_mem
CubaLI                                  *(dt/tau_syn)*w_in
IF, I    1             0                dt*r                       0
======== ============= ================ ========================== ===================

``Threshold`` is stateless: z[t] = a[t] > threshold. snnTorch's exporter
writes tau = dt/(1-beta) and r = tau/dt, so g = 1 and 1 - dv = beta: the
update is snnTorch's ``mem = beta*mem + input`` with reset "zero" and no
reset delay.

The fixed-point form (Loihi's arithmetic, as Lava's bit-accurate LIF model
computes it) is defined in :mod:`spikedeploy.ir.fixed_point`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import nir
import numpy as np

from ..errors import UnsupportedError

# Metadata keys spikedeploy reads on neuron nodes (documented in the README).
META_RESET_MODE = "spikedeploy.reset_mode"   # "zero" (default) or "subtract"
META_V_INIT = "spikedeploy.v_init"           # initial membrane voltage per neuron
META_TSM_GAIN = "spikedeploy.tsm_gain"       # per-time-step input gain p[t], shape (T,)

NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I)


@dataclass
class NeuronParams:
    """Discrete-time parameters of one neuron population (float64 arrays)."""

    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    v_th: np.ndarray | None      # None: non-spiking (outputs its voltage)
    v_reset: np.ndarray
    v_init: np.ndarray
    reset_mode: str = "zero"
    input_bias: np.ndarray | float = 0.0   # c: bias of the Affine nodes feeding it
    step_gain: np.ndarray | None = None    # p[t] (TSM), one value per time step

    @property
    def spiking(self) -> bool:
        return self.v_th is not None

    @property
    def shape(self) -> tuple:
        return self.dv.shape


def _arr(x, shape=None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return np.broadcast_to(a, shape).copy() if shape is not None else a


def _meta_str(node, key, default):
    value = (getattr(node, "metadata", None) or {}).get(key, default)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        value = value.item()
        value = value.decode() if isinstance(value, bytes) else value
    return str(value)


def _finish(name, node, shape, du, dv, gain, bias, v_th, v_reset) -> NeuronParams:
    meta = getattr(node, "metadata", None) or {}
    reset_mode = _meta_str(node, META_RESET_MODE, "zero")
    if reset_mode not in ("zero", "subtract"):
        raise UnsupportedError(name, META_RESET_MODE,
                               f"unknown reset mode {reset_mode!r} (zero|subtract)")
    v_init = _arr(meta.get(META_V_INIT, 0.0), shape)
    step_gain = meta.get(META_TSM_GAIN)
    if step_gain is not None:
        step_gain = np.atleast_1d(_arr(step_gain)).reshape(-1)
        if not np.all(np.isfinite(step_gain)):
            raise UnsupportedError(name, META_TSM_GAIN, "per-step gains must be finite")
    return NeuronParams(
        du=_arr(du, shape), dv=_arr(dv, shape), gain=_arr(gain, shape),
        bias=_arr(bias, shape),
        v_th=None if v_th is None else _arr(v_th, shape),
        v_reset=_arr(v_reset, shape), v_init=v_init, reset_mode=reset_mode, step_gain=step_gain)


def _lif(name, n: nir.LIF, dt):
    tau, r = _arr(n.tau), _arr(n.r)
    shape = np.broadcast_shapes(tau.shape, r.shape, np.shape(n.v_threshold))
    return _finish(name, n, shape, 1.0, dt / tau, dt * r / tau,
                   dt * _arr(n.v_leak) / tau, n.v_threshold, n.v_reset)


def _li(name, n: nir.LI, dt):
    tau, r = _arr(n.tau), _arr(n.r)
    shape = np.broadcast_shapes(tau.shape, r.shape, np.shape(n.v_leak))
    return _finish(name, n, shape, 1.0, dt / tau, dt * r / tau,
                   dt * _arr(n.v_leak) / tau, None, 0.0)


def _cuba(name, n, dt, spiking):
    tm, ts = _arr(n.tau_mem), _arr(n.tau_syn)
    shape = np.broadcast_shapes(tm.shape, ts.shape, np.shape(n.r), np.shape(n.w_in))
    gain = (dt / tm) * _arr(n.r) * (dt / ts) * _arr(n.w_in)
    return _finish(name, n, shape, dt / ts, dt / tm, gain, dt * _arr(n.v_leak) / tm,
                   n.v_threshold if spiking else None,
                   n.v_reset if spiking else 0.0)


def _if(name, n: nir.IF, dt):
    shape = np.broadcast_shapes(np.shape(n.r), np.shape(n.v_threshold))
    return _finish(name, n, shape, 1.0, 0.0, dt * _arr(n.r), 0.0,
                   n.v_threshold, n.v_reset)


def _i(name, n: nir.I, dt):
    return _finish(name, n, np.shape(n.r), 1.0, 0.0, dt * _arr(n.r), 0.0, None, 0.0)


# Registry: NIR neuron type -> its discretisation. One entry per primitive.
NEURON_DISCRETISATION: dict[type, Callable[[str, object, float], NeuronParams]] = {
    nir.LIF: _lif,
    nir.LI: _li,
    nir.CubaLIF: lambda name, n, dt: _cuba(name, n, dt, True),
    nir.CubaLI: lambda name, n, dt: _cuba(name, n, dt, False),
    nir.IF: _if,
    nir.I: _i,
}


def neuron_params(name: str, node, dt: float) -> NeuronParams:
    """Discretise a NIR neuron node at step ``dt`` (see the module docstring)."""
    try:
        rule = NEURON_DISCRETISATION[type(node)]
    except KeyError:
        raise UnsupportedError(name, "type", f"{type(node).__name__} is not a neuron")
    return rule(name, node, dt)


def _all_equal(x, value) -> bool:
    return bool(np.all(np.asarray(x) == value))


def _any_nonzero(x) -> bool:
    return bool(np.any(np.asarray(x) != 0))


def step_gain_at(p, t: int, name: str = ""):
    """p[t] of a TSM neuron (None without TSM); steps beyond the gains are an error."""
    if p.step_gain is None:
        return None
    if t >= len(p.step_gain):
        raise UnsupportedError(name or "neuron", META_TSM_GAIN,
                               f"TSM gains are defined for {len(p.step_gain)} time steps, "
                               f"the run needs step {t + 1}")
    return p.step_gain[t]


def neuron_step(u, v, a, p: NeuronParams, t: int = 0):
    """One floating-point step (time step t of the sample), batched on axis 0.

    Returns (u, v, out) where out is the spikes (spiking) or v (non-spiking).
    The operation order is the one Lava's floating-point LIF model uses, so
    results agree bit for bit with the Lava lowering.
    """
    # Terms that are exactly 1 or 0 for every neuron are skipped: x * 1, x + 0
    # and u * 0 + x give x exactly, so results are unchanged (only faster).
    if _any_nonzero(p.input_bias):
        a = a + p.input_bias
    gain = p.gain if p.step_gain is None else p.gain * step_gain_at(p, t)
    if not _all_equal(gain, 1.0):
        a = gain * a
    u = a if _all_equal(p.du, 1.0) else u * (1 - p.du) + a
    v = v * (1 - p.dv) + u
    if _any_nonzero(p.bias):
        v = v + p.bias
    if not p.spiking:
        return u, v, v
    z = v > p.v_th
    if p.reset_mode == "subtract":
        v = np.where(z, v - p.v_th, v)
    else:
        v = np.where(z, p.v_reset, v)
    return u, v, z.astype(np.float64)
