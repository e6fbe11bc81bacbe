"""Loihi fixed-point form of a Program: integer arithmetic and quantisation.

The integer neuron update is the one Lava's bit-accurate LIF model
(``PyLifModelBitAcc``) computes, generalised to per-neuron parameters::

    dec(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)
    u = wrap24(dec(u, du + 1) + ((a + c) << 6))     # note the +1 on du only
    v = clip(dec(v, dv) + u + b, -2**23 + 1, 2**23 - 1)     # b = bias_mant << bias_exp
    z = v > (vth << 6);  v = v_reset where z   (or v -= vth << 6: subtract)

with the delayed reset, reset "none" and graded spikes of
:mod:`spikedeploy.ir.semantics` in the same integer units (a graded spike
is an integer payload z * P, P = round(spike_value * S) for the
population's spike scale S).

Synapses (Lava's bit-accurate Dense): ``a = (W_mant @ x) << w_exp`` with
8-bit weight mantissas; with mixed signs Lava drops the lowest bit, so
mantissas are quantised to even numbers in [-256, 254] and Lava's
truncation leaves them unchanged.

Scales: each neuron population has a scale sigma (integer units of u and v,
before the << 6, per float unit). Its incoming weights are quantised as
``W_mant = round(sigma * g * W / s_in)`` where s_in is the integer scale of
the synapse's input (1 for spikes) and g the neuron's input gain; sigma is
the largest value that keeps every mantissa within 8 bits and the threshold
mantissa within ``VTH_MANT_MAX`` (headroom under the 24-bit voltage).

How each op type is quantised is one entry of :data:`QUANTISERS`; how each
neuron parameter is encoded is its field's ``unit`` in
:class:`~spikedeploy.ir.semantics.NeuronParams`, looked up in
:data:`FIXED_ENCODINGS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import UnsupportedError
from .op_table import OpTable
from .ops import (ConvOp, DelayOp, DenseOp, InputOp, NeuronOp, Op, OutputOp, Program, ReshapeOp,
                  ScaleOp, ThresholdOp)
from .arrays import any_nonzero, cast, namespace
from .semantics import NeuronParams, NeuronPlan, neuron_plan

DECAY_BITS = 12
DECAY_UNITY = 1 << DECAY_BITS
STATE_SHIFT = 6                  # activation and threshold MSB alignment
UV_MAX = 1 << 23                 # u, v are 24-bit
W_MANT_MAX = 254                 # even mantissas survive Lava's 8-bit mixed-sign truncation
VTH_MANT_MAX = (1 << 17) // 8 - 1   # 17-bit threshold, 8x voltage headroom
BIAS_MANT_MAX = 4095             # 13-bit signed bias mantissa
TSM_BITS = 12                    # fraction bits of a TSM gain mantissa: p[t] = P[t] / 4096
CONV_WRAP_BITS = 24              # Lava's fixed Conv wraps its output to 24 signed bits


# --- integer arithmetic -------------------------------------------------------------

def decay_by(x, keep):
    """Loihi's decay dec(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12) on int64 (numpy or
    torch, :mod:`.arrays`), given keep = 4096 - d (computed once per population)."""
    prod = x * keep
    return namespace(prod).sign(prod) * (abs(prod) >> DECAY_BITS)


def wrap24(x):
    xp = namespace(x)
    w = xp.where(x > UV_MAX, x - 2 * UV_MAX, x)
    return xp.where(w <= -UV_MAX, x + 2 * UV_MAX, w)


def wrap_signed(x: np.ndarray, bits: int) -> np.ndarray:
    """Lava's ``signed_clamp``: two's-complement wrap to ``bits`` bits."""
    base = 1 << bits
    return (x + base // 2) % base - base // 2


@dataclass(frozen=True)
class FixedNeuronPlan:
    """The integer update's per-population constants, computed once (as
    :class:`~.semantics.NeuronPlan` is for the float update): the same values the update
    would compute each step."""

    plan: NeuronPlan         # which terms are exactly 0 (an input bias, a bias)
    keep_u: object           # 4096 - (du + 1); all 0: u keeps nothing (dec(u) = 0)
    keep_v: object           # 4096 - dv
    vth: object              # v_th << 6 (None: non-spiking)
    vth_div: object          # max(v_th << 6, 1): the divisor of several spikes per step
    u_memory: bool = True    # some keep_u != 0


def fixed_neuron_plan(p: NeuronParams) -> FixedNeuronPlan:
    vth = None if p.v_th is None else p.v_th << STATE_SHIFT
    keep_u = DECAY_UNITY - (p.du + 1)
    return FixedNeuronPlan(neuron_plan(p), keep_u, DECAY_UNITY - p.dv, vth,
                           None if vth is None else namespace(vth).clip(vth, 1, None),
                           any_nonzero(keep_u))


def neuron_step_fixed(u, v, a, p: NeuronParams, t: int = 0,
                      plan: FixedNeuronPlan | None = None):
    """One integer step (time step t of the sample); u, v, a int64 arrays (numpy or torch)
    batched on axis 0.

    ``p`` holds integer parameters (:func:`quantise`), of the arrays' kind. A TSM gain
    scales the aligned activation: ((a + c) << 6) * P[t] >> 12 (floor), which is the
    identity for P[t] = 4096. ``plan``: :func:`fixed_neuron_plan` of ``p``.
    """
    fixed = plan or fixed_neuron_plan(p)
    xp = namespace(v)
    vth, pending, graded = fixed.vth, fixed.plan.pending, fixed.plan.graded
    r = v > vth if pending else None             # from the voltage the last step left
    act = ((a + p.input_bias) if fixed.plan.input_bias else a) << STATE_SHIFT
    if p.step_gain is not None:
        act = (act * int(p.step_gain[t])) >> TSM_BITS
    u = wrap24(decay_by(u, fixed.keep_u) + act if fixed.u_memory else act)   # dec(u, 4096) = 0
    v = decay_by(v, fixed.keep_v) + u
    v = xp.clip(v + p.bias if fixed.plan.bias else v, -UV_MAX + 1, UV_MAX - 1)
    if not p.spiking:
        return u, v, v
    if pending:
        v = xp.where(r, v - vth, v) if p.reset_mode == "subtract" else xp.where(r, p.v_reset, v)
    z = v >= vth if p.fire_at_threshold else v > vth
    if p.multi_spike:            # floor(v / v_th) spikes, an integer payload
        n = xp.where(z, v // fixed.vth_div, 0)
        if p.reset_mode == "subtract":
            v = v - n * vth
        elif p.reset_mode == "zero":
            v = xp.where(z, p.v_reset, v)
        return u, v, (n * p.spike_value if graded else n)
    if p.reset_in_step and p.reset_mode != "none":
        fire = z & ~r if pending else z
        if p.reset_mode == "zero":
            v = xp.where(fire, p.v_reset, v)
        else:            # subtract: the spike's own reset, less a pending one that did not fire
            v = xp.where(fire, v - vth, xp.where(~z & r, v + vth, v) if pending else v)
    out = cast(z, v)
    return u, v, (out * p.spike_value if graded else out)


def dense_fixed(weight: np.ndarray, weight_exp: int, x: np.ndarray) -> np.ndarray:
    """Lava's bit-accurate Dense for a batch x of shape (N, in)."""
    a = x.astype(np.int64) @ weight.T.astype(np.int64)
    return a << weight_exp if weight_exp > 0 else a >> -weight_exp


# --- neuron parameter encodings (NeuronParams field unit -> integer encoding) -----------

@dataclass(frozen=True)
class NeuronScale:
    """What a population's integer parameters are scaled by."""
    sigma: float               # integer units of u (before << 6) per float unit
    gain: np.ndarray           # the float input gain per neuron (folded into weights)
    spike_scale: float = 1.0   # integer units per float unit of an output spike

    @property
    def v_unit(self) -> float:
        """Integer units of v per float unit."""
        return self.sigma * (1 << STATE_SHIFT)


def bias_mant_exp(value_int: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loihi's bias encoding: a 13-bit signed mantissa and a non-negative exponent."""
    mag = np.abs(value_int).astype(np.float64)
    exp = np.ceil(np.log2(np.maximum(mag, 1) / BIAS_MANT_MAX)).clip(0, None).astype(np.int64)
    mant = np.round(value_int / (1 << exp)).astype(np.int64)
    return mant, exp


BIAS_LIMIT = 1 << 25    # |dec(v) + u| <= 2**24, so any larger bias saturates v just the same


def _encode_bias(x, s: NeuronScale):
    """The integer bias Loihi adds, mant << exp; clipped to +-2**25, which changes no
    result (v is clipped to 24 bits after adding it) and fits Lava's int32 Vars."""
    mant, exp = bias_mant_exp(np.round(x * s.v_unit))
    return np.clip(mant << exp, -BIAS_LIMIT, BIAS_LIMIT)


def spike_scale(p: NeuronParams) -> float:
    """Integer units per float unit of a population's output spikes (S, payload P = round(S *
    spike_value)): 1 for plain spikes; 1/g when every spike carries the same value g (exact);
    else 128 / max|g| (7-bit payloads)."""
    if not p.graded:
        return 1.0
    g = np.abs(np.asarray(p.spike_value, np.float64)).reshape(-1)
    peak = float(g.max())
    return 1.0 / peak if np.all(g == peak) else 128.0 / peak


# unit -> (float values, scale) -> int64 values. dv = 4096 (v forgets fully: Threshold,
# or tau = dt) is exact; Loihi's 12 bits stop at 4095 for du, which is applied as du + 1.
FIXED_ENCODINGS: dict[str, Callable[[np.ndarray, NeuronScale], np.ndarray]] = {
    "decay_u": lambda x, s: np.clip(np.round(x * DECAY_UNITY) - 1, 0, DECAY_UNITY - 1),
    "decay_v": lambda x, s: np.clip(np.round(x * DECAY_UNITY), 0, DECAY_UNITY),
    "gain": lambda x, s: np.ones_like(x),
    "bias": _encode_bias,
    "threshold": lambda x, s: np.round(x * s.sigma),
    "voltage": lambda x, s: np.round(x * s.v_unit),
    "current": lambda x, s: np.round(x * s.gain * s.sigma),
    "spike": lambda x, s: np.round(x * s.spike_scale),
}


def encode_neuron(p: NeuronParams, scale: NeuronScale) -> NeuronParams:
    """Integer parameters of a population: every per-neuron field by its unit's encoding."""
    flat = p.flat()
    values = {f.name: FIXED_ENCODINGS[f.metadata["unit"]](getattr(flat, f.name), scale)
              .astype(np.int64) for f in p.per_neuron_fields() if getattr(flat, f.name) is not None}
    step_gain = None if p.step_gain is None else np.round(p.step_gain * (1 << TSM_BITS)).astype(np.int64)
    return flat.replace(step_gain=step_gain, **values)


# --- targets -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FixedTarget:
    """What the processes a fixed-point run lands on can hold, beyond Loihi's arithmetic.

    ``lava``: spikedeploy's own Lava processes (per-neuron everything, a free
    bias exponent, the Affine bias added to u). ``loihi2``: Lava's stock LIF
    and lava-dl netx: 12-bit decay registers (dv <= 4095), the bias as a
    13-bit mantissa at netx's fixed exponent 6 (``bias = mant << 6``), the
    Affine bias folded into that bias (exact only when u has no memory; the
    target's rules refuse it otherwise) and an integer sigma, so that a
    population whose thresholds were folded into its weights (threshold 1)
    gets the threshold mantissa sigma exactly.
    """
    name: str
    dv_max: int = DECAY_UNITY
    bias_exp: int | None = None
    fold_input_bias: bool = False
    integer_sigma: bool = False


LAVA_FIXED = FixedTarget("lava")
LOIHI2_FIXED = FixedTarget("loihi2", dv_max=DECAY_UNITY - 1, bias_exp=STATE_SHIFT,
                           fold_input_bias=True, integer_sigma=True)


def _voltage_bias(p: NeuronParams, gain: np.ndarray, target: FixedTarget) -> np.ndarray:
    """The float bias the target's bias register holds: per step of v, with the Affine bias
    folded in where the target folds it (exact when u has no memory)."""
    flat = p.flat()
    return flat.bias + gain * flat.input_bias if target.fold_input_bias else flat.bias


# --- quantisation ------------------------------------------------------------------------

@dataclass
class FixedWeights:
    """Integer weights of a synaptic op (Dense, Scale, Conv), in the op's own weight layout."""
    weight: np.ndarray      # int32 mantissas: (out, in) Dense, (size,) Scale, (Co, Ci/g, kH, kW) Conv
    weight_exp: int
    out_scale: float        # integer units of a per float unit of a
    wrap_bits: int | None = None   # Lava's fixed Conv wraps its output to 24 signed bits


@dataclass
class FixedProgram:
    program: Program
    params: dict[str, object]                  # op name -> FixedWeights / integer NeuronParams
    scales: dict[str, float]                   # op name -> integer units per float unit of its output
    errors: dict[str, dict] = field(default_factory=dict)  # per-layer quantisation error
    input_scale: float = 1.0


def _even_round(x: np.ndarray) -> np.ndarray:
    return (2 * np.round(x / 2)).astype(np.int64)


def _rel_err(exact, approx) -> float:
    exact = np.asarray(exact, np.float64)
    denom = np.sqrt(np.mean(exact ** 2)) or 1.0
    return float(np.sqrt(np.mean((exact - approx) ** 2)) / denom)


def quantising_targets(program: Program) -> dict[str, str]:
    """Synaptic op -> the one neuron population whose scale its weights carry.

    A synaptic op reaching exactly one neuron (through Flatten/Delay only) is
    quantised with that neuron: its mantissas absorb the neuron's gain and
    scale. Any other synaptic op (e.g. a pooling layer feeding a convolution)
    must have exactly representable weights (see :func:`_exact_weights`).
    """
    targets = {}
    for op in program.ops.values():
        if not op.synaptic:
            continue
        cur = op
        while True:
            cons = program.consumers(cur.name)
            if len(cons) != 1:
                break
            nxt = cons[0]
            if isinstance(nxt, NeuronOp):
                targets[op.name] = nxt.name
                break
            if not nxt.copies_input or len(nxt.inputs) != 1:
                break
            cur = nxt
    return targets


class _Quantiser:
    """The state of one quantisation pass in execution order."""

    def __init__(self, program: Program, input_scale: float, target: FixedTarget = LAVA_FIXED):
        self.program, self.input_scale, self.target = program, float(input_scale), target
        self.params: dict[str, object] = {}
        self.scales: dict[str, float] = {}
        self.errors: dict[str, dict] = {}
        self.sigmas: dict[str, float] = {}
        self.targets = quantising_targets(program)
        self.pending: dict[str, str] = {}    # op -> neuron whose sigma gives its scale

    def scale_of(self, name: str) -> float:
        if name in self.scales:
            return self.scales[name]
        src = self.program.ops[name]
        if isinstance(src, NeuronOp) and src.params.spiking:
            return spike_scale(src.params)
        raise UnsupportedError(name, "scale", "in fixed precision a graded value cannot be read "
                               "before its scale is defined (a loop without spiking neurons)",
                               backend="fixed")

    def agree(self, op: Op, names) -> float:
        vals = {self.scale_of(n) for n in names}
        if len(vals) > 1:
            raise UnsupportedError(op.name, "inputs", f"inputs summed here have different "
                                   f"fixed-point scales {sorted(vals)}; sum them through a "
                                   "weighted node", backend="fixed")
        return vals.pop()


QUANTISERS: OpTable[Callable[[_Quantiser, Op], None]] = OpTable(
    "fixed-point quantisation rule", backend="fixed")


@QUANTISERS.register(InputOp)
def _quantise_input(q: _Quantiser, op: Op) -> None:
    q.scales[op.name] = q.input_scale


@QUANTISERS.register(ReshapeOp, OutputOp, DelayOp)
def _quantise_pass_through(q: _Quantiser, op: Op) -> None:
    """Values pass unchanged: the op's scale is its inputs' (or, for the output of a
    synaptic op whose neuron comes later, that neuron's)."""
    waiting = [q.pending[s] for s in op.inputs if s in q.pending]
    done = [q.targets[s] for s in op.inputs if s in q.targets and q.targets[s] in q.params]
    if waiting or done:
        if len(waiting) + len(done) != len(op.inputs):
            raise UnsupportedError(op.name, "inputs", "sums a weighted and an unweighted "
                                   "input before the neuron", backend="fixed")
        if waiting:
            q.pending[op.name] = waiting[0]
        else:
            q.scales[op.name] = q.sigmas[done[0]]
    else:
        q.scales[op.name] = q.agree(op, op.inputs)


@dataclass(frozen=True)
class SynapseRule:
    """The quantisation rule of a synaptic op type.

    A synaptic op feeding one neuron population is quantised with it (in
    :func:`_quantise_neuron`); any other must have exactly representable
    weights. ``wrap_bits``: the output wrap of its Lava process;
    ``halves_mixed_signs``: whether that process drops the lowest bit of
    mixed-sign 8-bit weights (Lava's Dense and Sparse do, its Conv does not).
    """
    wrap_bits: Callable[[Op], int | None] = lambda op: None
    halves_mixed_signs: Callable[[Op], bool] = lambda op: True

    def __call__(self, q: _Quantiser, op: Op) -> None:
        target = q.targets.get(op.name)
        if target is not None:       # quantised with its neuron (when that neuron comes)
            if target in q.params:   # a recurrent edge into a neuron already done
                q.scales[op.name] = q.sigmas[target]
            else:
                q.pending[op.name] = target
            return
        q.params[op.name], q.scales[op.name], q.errors[op.name] = _exact_weights(
            op, q.agree(op, op.inputs), self.wrap_bits(op), self.halves_mixed_signs(op))


QUANTISERS.register(DenseOp, ScaleOp)(SynapseRule())
# Lava's native Conv wraps its output to 24 bits and keeps odd weights; its Sparse fallback
# (asymmetric padding) behaves like Dense.
QUANTISERS[ConvOp] = SynapseRule(
    wrap_bits=lambda op: CONV_WRAP_BITS if op.lava_native else None,
    halves_mixed_signs=lambda op: not op.lava_native)


def _exact_weights(op: Op, in_scale: float, wrap_bits, halves_mixed_signs: bool):
    """Integer weights for a synaptic op that feeds no single neuron: w = c * mantissa exactly."""
    w = np.asarray(op.weights, np.float64)
    nz = np.abs(w[w != 0])
    c = float(nz.min()) if nz.size else 1.0
    mant = w / c
    if not np.allclose(mant, np.round(mant), rtol=0, atol=1e-9):
        raise UnsupportedError(op.name, "weight", "in fixed precision a weighted node that does not "
                               "feed exactly one neuron population must have weights that are integer "
                               "multiples of one value (e.g. pooling)", backend="fixed")
    mant = np.round(mant).astype(np.int64)
    if halves_mixed_signs and mant.min() < 0 < mant.max():
        mant, c = mant * 2, c / 2     # Lava drops the lowest bit of mixed-sign 8-bit weights
    if np.abs(mant).max(initial=0) > W_MANT_MAX:
        raise UnsupportedError(op.name, "weight", f"weights need {int(np.abs(mant).max())} "
                               f"levels, more than 8 bits", backend="fixed")
    out_scale = in_scale / c
    return FixedWeights(mant.astype(np.int32), 0, out_scale, wrap_bits), out_scale, {"weight": 0.0}


def _weighted_chain(program: Program, name: str, targets: dict, neuron: str) -> bool:
    """Whether input ``name`` is a synaptic op quantised for ``neuron`` (maybe via Flatten/Delay)."""
    op = program.ops[name]
    while op.copies_input and len(op.inputs) == 1:
        op = program.ops[op.inputs[0]]
    return targets.get(op.name) == neuron


@QUANTISERS.register(NeuronOp, ThresholdOp)
def _quantise_neuron(q: _Quantiser, op: Op) -> None:
    p: NeuronParams = op.params
    gain = np.broadcast_to(np.asarray(p.gain, np.float64), p.shape).reshape(-1)
    weighted = [q.program.ops[name] for name, n in q.targets.items() if n == op.name]
    in_scale = {d.name: q.agree(d, d.inputs) for d in weighted}
    direct_in = [s for s in op.inputs if not _weighted_chain(q.program, s, q.targets, op.name)]
    w_eff = {}
    for d in weighted:
        try:
            w_eff[d.name] = d.scaled_weights(gain)
        except UnsupportedError as exc:
            raise UnsupportedError(exc.node, exc.field, f"{exc.reason} in fixed precision",
                                   backend="fixed") from None
    # sigma: largest scale keeping weights within 8 bits and the threshold in range
    sigma = np.inf
    for d in weighted:
        peak = np.abs(w_eff[d.name]).max(initial=0)
        if peak > 0:
            sigma = min(sigma, W_MANT_MAX * in_scale[d.name] / peak)
    if p.spiking and np.abs(p.v_th).max() > 0:
        sigma = min(sigma, VTH_MANT_MAX / np.abs(p.v_th).max())
    target = q.target
    if target.bias_exp is not None:
        peak_bias = np.abs(_voltage_bias(p, gain, target)).max(initial=0)
        if peak_bias > 0:     # the mantissa round(bias * sigma) must fit 13 signed bits
            sigma = min(sigma, BIAS_MANT_MAX / peak_bias)
    if target.integer_sigma and np.isfinite(sigma) and sigma >= 1:
        sigma = float(np.floor(sigma))
    if direct_in:  # no weights to carry a scale: the input's scale is the neuron's
        if not np.allclose(gain, 1.0, rtol=1e-9):
            raise UnsupportedError(op.name, "gain", "input gain != 1 on an edge without weights "
                                   "cannot be represented in fixed precision", backend="fixed")
        sigma = q.agree(op, direct_in)
    if not np.isfinite(sigma):
        sigma = 1.0
    err = {}
    for d in weighted:
        mant = np.clip(_even_round(sigma * w_eff[d.name] / in_scale[d.name]), -256, W_MANT_MAX)
        rule = QUANTISERS.get(type(d))      # a missing rule is reported at the op itself
        wrap = rule.wrap_bits(d) if isinstance(rule, SynapseRule) else None
        q.params[d.name] = FixedWeights(mant.astype(np.int32), 0, sigma, wrap)
        err[f"weight[{d.name}]"] = _rel_err(w_eff[d.name], mant * in_scale[d.name] / sigma)
    s_out = spike_scale(p)
    fixed = encode_neuron(p, NeuronScale(float(sigma), gain, s_out))
    flat = p.flat()
    fixed.dv = np.minimum(fixed.dv, target.dv_max)
    if target.bias_exp is not None:
        exact = _voltage_bias(p, gain, target) * sigma
        mant = np.clip(np.round(exact), -BIAS_MANT_MAX - 1, BIAS_MANT_MAX).astype(np.int64)
        fixed.bias = mant << target.bias_exp
        if target.fold_input_bias:
            fixed.input_bias = np.zeros_like(mant)
        if np.any(exact):
            err["bias"] = _rel_err(exact, mant)
    err["dv"] = float(np.abs(fixed.dv / DECAY_UNITY - flat.dv).max())
    err["du"] = float(np.abs((fixed.du + 1) / DECAY_UNITY - flat.du).max())
    if p.spiking:
        err["v_threshold"] = _rel_err(flat.v_th, fixed.v_th / sigma)
    if p.step_gain is not None:
        err["tsm_gain"] = _rel_err(p.step_gain, fixed.step_gain / (1 << TSM_BITS))
    if p.graded:
        err["spike_value"] = _rel_err(flat.spike_value, fixed.spike_value / s_out)
    q.params[op.name], q.errors[op.name], q.sigmas[op.name] = fixed, err, float(sigma)
    for name, neuron in list(q.pending.items()):
        if neuron == op.name:
            q.scales[name] = sigma
            del q.pending[name]
    q.scales[op.name] = s_out if p.spiking else sigma * (1 << STATE_SHIFT)


def quantise(program: Program, input_scale: float = 1.0,
             collect: list | None = None, target: FixedTarget = LAVA_FIXED) -> FixedProgram:
    """Choose per-population scales and integer parameters for every op.

    ``collect``: if a list, every op's UnsupportedError is appended to it and
    quantisation goes on (the failed op gets scale 1), so that ``check`` can
    report all problems; otherwise the first one is raised.
    """
    q = _Quantiser(program, input_scale, target)
    for op in program.ops.values():
        try:
            QUANTISERS.lookup(op)(q, op)
        except UnsupportedError as exc:
            if collect is None:
                raise
            collect.append(exc)
            q.scales.setdefault(op.name, 1.0)
            q.pending.pop(op.name, None)
    return FixedProgram(program, q.params, q.scales, q.errors, float(input_scale))


def for_run(program: Program, precision: str, fixed: FixedProgram | None = None,
            input_scale: float = 1.0) -> FixedProgram | None:
    """The FixedProgram a run of ``precision`` uses: the caller's, else quantised here once
    (None in floating point). Every simulator enters quantisation through this."""
    if precision != "fixed":
        return None
    return fixed if fixed is not None else quantise(program, input_scale)
