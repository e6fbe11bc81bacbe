"""The one discrete-time definition of every supported NIR neuron primitive.

NIR equations are continuous; spikedeploy discretises them with forward Euler
at step ``dt`` (taken from graph metadata or given by the user). Every neuron
primitive is mapped onto one generalised current-based neuron, whose update
at step t (all quantities per neuron, ``a[t]`` the sum of the node's inputs)
is::

    r[t] = v[t-1] > v_th                         # pending reset (only with reset_delay)
    u[t] = (1 - du) * u[t-1] + g * p[t] * (a[t] + c)    # synaptic current
    v[t] = (1 - dv) * v[t-1] + u[t] + b          # membrane voltage
    delayed reset (reset_delay = 1), where r[t]:
        v[t] = v[t] - v_th                       (reset "subtract")
        v[t] = v_reset                           (reset "zero")
    z[t] = v[t] > v_th                           # spiking nodes only (v >= v_th with
                                                 # fire_at_threshold = 1)
    spikes_per_step "multi": z[t] = floor(v[t] / v_th) where it fires, else 0
    reset in the spike's step (reset_in_step = 1), by d[t] = z[t] - r[t] (r = 0 without delay):
        v[t] = v[t] - d[t] * v_th                (reset "subtract")
        v[t] = v_reset where d[t] > 0            (reset "zero", NIR's v_reset)
    output s[t] = z[t] * spike_value             (spike_value 1 unless graded)

Reset "none" never resets. NIR's LIF is reset "zero" in the spike's step
(reset_delay 0, reset_in_step 1, the default). snnTorch computes
``reset = H(mem[t-1] - threshold)`` from the stored membrane every step and
applies it in that step's update; with ``reset_delay=True`` that is all
(reset_delay 1, reset_in_step 0: a spike's reset lands one step late), with
``reset_delay=False`` it adds ``do_reset = spk - reset`` in the spike's step
(both 1). sinabs and Rockpool fire on v >= v_th and emit floor(v / v_th)
spikes per step (an integer payload, as Loihi 2's graded spikes carry); the
two population fields ``fire_at_threshold`` and ``spikes_per_step`` say so
(several spikes per step need the reset in the spike's step, undelayed).
p[t] is the temporal-wise gain of time step t (TSM; 1 unless the
node's metadata ``spikedeploy.tsm_gain`` gives one value per step), c is the
bias of the Affine node(s) feeding the neuron (a bias is an input current:
under CubaLIF it is filtered by the synapse like any input), with u[0] = 0
and v[0] = v_init (0 unless metadata says otherwise). A spiking node
outputs s; a non-spiking node (LI, CubaLI, I) outputs v. The operation
order is snnTorch's, so float64 runs of an exported snnTorch model agree bit
for bit.

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

:class:`NeuronParams` is the one definition of a population's parameters: its
fields say which values are per neuron, how Loihi's fixed point encodes each
(:mod:`spikedeploy.ir.fixed_point`) and how many bits Lava's process gives it,
so broadcasting, flattening, quantising and handing them to the Lava process
all follow from the field list. The fixed-point update is
:func:`spikedeploy.ir.fixed_point.neuron_step_fixed`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Callable

import nir
import numpy as np

from ..errors import UnsupportedError
from ..metadata import (DEFAULT_RESET_MODE, FIRE_AT_THRESHOLD, RESET_DELAY, RESET_IN_STEP,
                        RESET_MODE, RESET_MODES, SPIKE_COUNTS, SPIKE_VALUE, SPIKES_PER_STEP,
                        TSM_GAIN, V_INIT, metadata_value)
from .arrays import all_equal, any_nonzero, assign_where, cast, clone, namespace, reset_where


def _per_neuron(unit: str, bits: int, doc: str, **default):
    """A per-neuron parameter: ``unit`` names its fixed-point encoding (a rule of
    ``fixed_point.FIXED_ENCODINGS``), ``bits`` its width in Lava's fixed-point process."""
    return field(metadata={"per_neuron": True, "unit": unit, "bits": bits, "doc": doc}, **default)


def _population(choices: tuple, doc: str, default):
    """A value shared by the whole population, one of ``choices`` (Lava holds its index)."""
    return field(default=default, metadata={"population": True, "choices": choices, "doc": doc})


@dataclass
class NeuronParams:
    """Parameters of one neuron population, in the op's shape.

    Floating point: float64 values of the equations above. Loihi fixed point
    (``fixed_point.quantise``): int64 values in the integer units of
    :func:`~spikedeploy.ir.fixed_point.neuron_step_fixed`, per field as its
    ``unit`` says.
    """

    du: np.ndarray = _per_neuron("decay_u", 12, "current decay per step (fixed: Loihi's du, "
                                 "applied as du + 1)")
    dv: np.ndarray = _per_neuron("decay_v", 12, "voltage decay per step (fixed: x 4096)")
    gain: np.ndarray = _per_neuron("gain", 24, "input gain g (fixed: 1, folded into the weights)")
    bias: np.ndarray = _per_neuron("bias", 26, "voltage bias b per step (fixed: mantissa << "
                                   "exponent, a 13-bit mantissa, within +-2**25)")
    v_th: np.ndarray | None = _per_neuron("threshold", 17, "threshold; None: non-spiking (fixed: "
                                          "mantissa, compared as v_th << 6)")
    v_reset: np.ndarray = _per_neuron("voltage", 24, "voltage after a spike (reset 'zero')")
    v_init: np.ndarray = _per_neuron("voltage", 24, "voltage at the start of every sample")
    input_bias: np.ndarray | float = _per_neuron("current", 24, "c: bias of the Affine nodes "
                                                 "feeding it", default=0.0)
    spike_value: np.ndarray | float = _per_neuron("spike", 24, "value of an emitted spike (graded "
                                                  "spikes; fixed: integer payload)", default=1.0)
    reset_mode: str = _population(RESET_MODES, "zero, subtract or none", DEFAULT_RESET_MODE)
    reset_delay: int = _population((0, 1), "1: a voltage above threshold at the end of a step "
                                   "is reset in the next step's update", 0)
    reset_in_step: int = _population((0, 1), "1: a spike resets in its own step", 1)
    fire_at_threshold: int = _population((0, 1), "1: fire on v >= v_th, 0: on v > v_th", 0)
    spikes_per_step: str = _population(SPIKE_COUNTS, "one, or multi: floor(v / v_th) spikes",
                                       "one")
    step_gain: np.ndarray | None = None    # p[t] (TSM), one value per time step (fixed: x 4096)

    @property
    def spiking(self) -> bool:
        return self.v_th is not None

    @property
    def shape(self) -> tuple:
        return np.shape(self.dv)

    @property
    def graded(self) -> bool:
        """Whether a spike carries a value other than 1."""
        return self.spiking and bool(np.any(np.asarray(self.spike_value) != 1))

    @property
    def multi_spike(self) -> bool:
        return self.spiking and self.spikes_per_step == "multi"

    @classmethod
    def per_neuron_fields(cls) -> list:
        """The dataclass fields holding one value per neuron, in declaration order."""
        return [f for f in fields(cls) if f.metadata.get("per_neuron")]

    @classmethod
    def population_fields(cls) -> list:
        """The dataclass fields holding one value (of ``choices``) for the population."""
        return [f for f in fields(cls) if f.metadata.get("population")]

    def replace(self, **values) -> "NeuronParams":
        new = copy.copy(self)
        for key, value in values.items():
            setattr(new, key, value)
        return new

    def broadcast(self, shape: tuple, dtype=np.float64) -> "NeuronParams":
        """Every per-neuron value as an array of ``shape`` (single values repeated)."""
        def full(value):
            value = np.asarray(value, dtype)
            return np.broadcast_to(value.reshape(()) if value.size == 1 else value, shape).copy()
        return self.replace(**{f.name: full(getattr(self, f.name))
                               for f in self.per_neuron_fields() if getattr(self, f.name) is not None})

    def flat(self, dtype=np.float64) -> "NeuronParams":
        """Every per-neuron value as a flat (size,) array (C order), as backends store them."""
        size = int(np.prod(self.shape, dtype=np.int64))
        return self.replace(**{f.name: np.broadcast_to(np.asarray(getattr(self, f.name), dtype),
                                                       self.shape).reshape(size)
                               for f in self.per_neuron_fields() if getattr(self, f.name) is not None})


def _arr(x, shape=None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return np.broadcast_to(a, shape).copy() if shape is not None else a


def _shape_of(name, node, *field_names) -> tuple:
    """The neuron shape the node's fields broadcast to; a field that does not
    fit the others is named."""
    shape, seen = (), []
    for f in field_names:
        s = np.shape(getattr(node, f))
        try:
            shape = np.broadcast_shapes(shape, s)
        except ValueError:
            raise UnsupportedError(name, f, f"has shape {s}, which does not fit shape {shape} "
                                   f"of {', '.join(seen)}: give one value or one per neuron")
        seen.append(f)
    return shape


def _per_neuron_meta(name, meta, key, default, shape) -> np.ndarray:
    value = _arr(meta.get(key, default))
    try:
        return np.broadcast_to(value, shape).copy()
    except ValueError:
        raise UnsupportedError(name, key, f"has shape {value.shape}, which does not fit the "
                               f"layer's shape {tuple(shape)}: give one value or one per neuron")


def _choice(name, meta, key, choices, default, convert=str):
    value = metadata_value(meta, key, default)
    try:
        value = convert(value)
    except (TypeError, ValueError):
        value = None
    if value not in choices:
        raise UnsupportedError(name, key, f"unknown value {metadata_value(meta, key)!r} "
                               f"(one of {', '.join(map(str, choices))})")
    return value


def _finish(name, node, shape, du, dv, gain, bias, v_th, v_reset) -> NeuronParams:
    meta = getattr(node, "metadata", None) or {}
    reset_mode = _choice(name, meta, RESET_MODE, RESET_MODES, DEFAULT_RESET_MODE)
    reset_delay = _choice(name, meta, RESET_DELAY, (0, 1), 0, int)
    reset_in_step = _choice(name, meta, RESET_IN_STEP, (0, 1), 1, int)
    fire_at_threshold = _choice(name, meta, FIRE_AT_THRESHOLD, (0, 1), 0, int)
    spikes_per_step = _choice(name, meta, SPIKES_PER_STEP, SPIKE_COUNTS, "one")
    if spikes_per_step == "multi" and (reset_delay or not reset_in_step):
        raise UnsupportedError(name, SPIKES_PER_STEP, "several spikes per step need the reset in "
                               "the spike's own step (reset_delay 0, reset_in_step 1)")
    spike_value = _per_neuron_meta(name, meta, SPIKE_VALUE, 1.0, shape)
    if not np.all(np.isfinite(spike_value)):
        raise UnsupportedError(name, SPIKE_VALUE, "spike values must be finite")
    v_init = _per_neuron_meta(name, meta, V_INIT, 0.0, shape)
    step_gain = meta.get(TSM_GAIN)
    if step_gain is not None:
        step_gain = np.atleast_1d(_arr(step_gain)).reshape(-1)
        if not np.all(np.isfinite(step_gain)):
            raise UnsupportedError(name, TSM_GAIN, "per-step gains must be finite")
    return NeuronParams(
        du=_arr(du, shape), dv=_arr(dv, shape), gain=_arr(gain, shape),
        bias=_arr(bias, shape),
        v_th=None if v_th is None else _arr(v_th, shape),
        v_reset=_arr(v_reset, shape), v_init=v_init, spike_value=spike_value,
        reset_mode=reset_mode, reset_delay=reset_delay, reset_in_step=reset_in_step,
        fire_at_threshold=fire_at_threshold, spikes_per_step=spikes_per_step,
        step_gain=step_gain)


def _lif(name, n: nir.LIF, dt):
    tau, r = _arr(n.tau), _arr(n.r)
    shape = _shape_of(name, n, "tau", "r", "v_leak", "v_threshold", "v_reset")
    return _finish(name, n, shape, 1.0, dt / tau, dt * r / tau,
                   dt * _arr(n.v_leak) / tau, n.v_threshold, n.v_reset)


def _li(name, n: nir.LI, dt):
    tau, r = _arr(n.tau), _arr(n.r)
    shape = _shape_of(name, n, "tau", "r", "v_leak")
    return _finish(name, n, shape, 1.0, dt / tau, dt * r / tau,
                   dt * _arr(n.v_leak) / tau, None, 0.0)


def _cuba(name, n, dt, spiking):
    tm, ts = _arr(n.tau_mem), _arr(n.tau_syn)
    shape = _shape_of(name, n, "tau_mem", "tau_syn", "r", "w_in", "v_leak",
                      *(("v_threshold", "v_reset") if spiking else ()))
    gain = (dt / tm) * _arr(n.r) * (dt / ts) * _arr(n.w_in)
    return _finish(name, n, shape, dt / ts, dt / tm, gain, dt * _arr(n.v_leak) / tm,
                   n.v_threshold if spiking else None,
                   n.v_reset if spiking else 0.0)


def _if(name, n: nir.IF, dt):
    shape = _shape_of(name, n, "r", "v_threshold", "v_reset")
    return _finish(name, n, shape, 1.0, 0.0, dt * _arr(n.r), 0.0,
                   n.v_threshold, n.v_reset)


def _i(name, n: nir.I, dt):
    return _finish(name, n, _shape_of(name, n, "r"), 1.0, 0.0, dt * _arr(n.r), 0.0, None, 0.0)


def threshold_params(threshold: np.ndarray) -> NeuronParams:
    """NIR Threshold, z = a > threshold: the generalised neuron with no memory
    (du = dv = 1, gain 1: u = a, v = u; the reset never matters)."""
    shape = np.shape(threshold)
    one = np.ones(shape)
    return NeuronParams(du=one, dv=one.copy(), gain=one.copy(), bias=np.zeros(shape),
                        v_th=np.asarray(threshold, np.float64).copy(), v_reset=np.zeros(shape),
                        v_init=np.zeros(shape))


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


def require_step_gains(p: NeuronParams, num_steps: int, name: str, backend: str = "") -> None:
    """A TSM population must have a gain for each of the run's steps (refused before it
    runs, naming the node)."""
    if p.step_gain is not None and len(p.step_gain) < num_steps:
        raise UnsupportedError(name, TSM_GAIN, f"TSM gains are defined for {len(p.step_gain)} "
                               f"time steps, the run has {num_steps}", backend=backend)


def step_gain_at(p: NeuronParams, t: int, name: str = ""):
    """p[t] of a TSM neuron (None without TSM); steps beyond the gains are an error."""
    if p.step_gain is None:
        return None
    if t >= len(p.step_gain):
        raise UnsupportedError(name or "neuron", TSM_GAIN,
                               f"TSM gains are defined for {len(p.step_gain)} time steps, "
                               f"the run needs step {t + 1}")
    return p.step_gain[t]


@dataclass(frozen=True)
class NeuronPlan:
    """What the update of a population needs, decided once from its parameters (the
    update itself is :func:`neuron_step`). A term that is exactly 1 or 0 for every
    neuron is skipped: x * 1, x + 0 and u * 0 + x give x exactly, so skipping changes no
    result, only the time. Values shared by every neuron are held as one number (the
    same value, multiplied or compared without broadcasting an array); ``keep_u`` and
    ``keep_v`` are 1 - du and 1 - dv, as the update would compute them each step."""

    pending: bool          # a delayed reset is carried into the next step
    input_bias: bool       # c != 0 somewhere
    gain: bool             # g != 1 somewhere, or TSM gains
    decay_u: bool          # du != 1 somewhere (u has memory)
    bias: bool             # b != 0 somewhere
    graded: bool           # spikes carry values other than 1
    spiking: bool = True
    multi: bool = False    # several spikes per step
    reset: str = "zero"    # the reset applied in the spike's own step: zero|subtract|none
    keep_u: object = None
    keep_v: object = None
    v_th: object = None
    v_reset: object = None


def _one_value(x):
    """A float when every element of array ``x`` is the same, else ``x``."""
    if x is None or not hasattr(x, "reshape") or x.reshape(-1).shape[0] == 0:
        return x
    first = x.reshape(-1)[0]
    return float(first) if all_equal(x, first) else x


def neuron_plan(p: NeuronParams) -> NeuronPlan:
    """The plan of ``p`` (numpy arrays or torch tensors of either precision)."""
    return NeuronPlan(
        pending=bool(p.spiking and p.reset_delay and p.reset_mode != "none"),
        input_bias=any_nonzero(p.input_bias),
        gain=p.step_gain is not None or not all_equal(p.gain, 1),
        decay_u=not all_equal(p.du, 1),
        bias=any_nonzero(p.bias),
        graded=p.spiking and any_nonzero(p.spike_value - 1),
        spiking=p.spiking, multi=p.multi_spike,
        reset=p.reset_mode if p.reset_in_step else "none",
        keep_u=_one_value(1 - p.du), keep_v=_one_value(1 - p.dv),
        v_th=_one_value(p.v_th), v_reset=_one_value(p.v_reset))


def neuron_step(u, v, a, p: NeuronParams, t: int = 0, plan: NeuronPlan | None = None):
    """One floating-point step (time step t of the sample), batched on axis 0.

    Returns (u, v, out) where out is the spikes (spiking) or v (non-spiking).
    The operation order is the one Lava's floating-point LIF model uses, so
    results agree bit for bit with the Lava lowering. ``u`` and ``v`` are updated in
    place (pass arrays the caller owns; ``a`` is only read); they and ``p``'s values are
    numpy arrays or torch tensors (:mod:`.arrays`). ``plan``: :func:`neuron_plan` of
    ``p``, computed once by callers that step many times.
    """
    if plan is None:
        plan = neuron_plan(p)
    v_th = plan.v_th
    r = v > v_th if plan.pending else None      # from the voltage the last step left
    if plan.input_bias:
        a = a + p.input_bias
    if plan.gain:
        a = (p.gain if p.step_gain is None else p.gain * step_gain_at(p, t)) * a
    if plan.decay_u:
        u *= plan.keep_u
        u += a
    else:
        u = a
    v *= plan.keep_v
    v += u
    if plan.bias:
        v += p.bias
    if not plan.spiking:
        return u, v, clone(v)
    if plan.pending:  # snnTorch: mem - reset * threshold, or mem - reset * mem (= 0)
        if p.reset_mode == "subtract":
            v -= cast(r, v) * v_th
        else:
            assign_where(v, r, plan.v_reset)
    z = v >= v_th if p.fire_at_threshold else v > v_th
    if plan.multi:               # sinabs' MultiSpike, Rockpool: floor(v / v_th) spikes
        xp = namespace(v)
        n = xp.where(z, xp.floor(v / v_th), 0.0)
        if p.reset_mode == "subtract":
            v -= n * v_th
        elif p.reset_mode == "zero":
            assign_where(v, z, plan.v_reset)
        return u, v, (n * p.spike_value if plan.graded else n)
    out = cast(z, v)
    if plan.reset == "zero":
        if plan.pending:  # snnTorch's do_reset = spk - reset: no second reset of the same excess
            assign_where(v, z & ~r, plan.v_reset)
        else:
            reset_where(v, z, out, plan.v_reset)
    elif plan.reset == "subtract":
        v -= (out - cast(r, v) if plan.pending else out) * v_th
    return u, v, (out * p.spike_value if plan.graded else out)
