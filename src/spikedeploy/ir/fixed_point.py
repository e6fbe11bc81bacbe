"""Loihi fixed-point form of a Program: quantisation and integer arithmetic.

The integer neuron update is the one Lava's bit-accurate LIF model
(``PyLifModelBitAcc``) computes, generalised to per-neuron parameters::

    dec(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)
    u = wrap24(dec(u, du + 1) + ((a + c) << 6))     # note the +1 on du only
    v = clip(dec(v, dv) + u + (b_mant << b_exp), -2**23 + 1, 2**23 - 1)
    z = v > (vth << 6);  v = v_reset where z   (or v -= vth << 6: subtract)

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
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedError
from .program import (ConvOp, DelayOp, DenseOp, InputOp, LinearOp, NeuronOp, OutputOp, Program,
                      ReshapeOp, ScaleOp)
from .semantics import NeuronParams

DECAY_BITS = 12
DECAY_UNITY = 1 << DECAY_BITS
STATE_SHIFT = 6                  # activation and threshold MSB alignment
UV_MAX = 1 << 23                 # u, v are 24-bit
W_MANT_MAX = 254                 # even mantissas survive Lava's 8-bit mixed-sign truncation
VTH_MANT_MAX = (1 << 17) // 8 - 1   # 17-bit threshold, 8x voltage headroom
BIAS_MANT_MAX = 4095             # 13-bit signed bias mantissa
BIAS_EXP_MAX = 7


@dataclass
class FixedNeuron:
    du: np.ndarray          # int, 0..4095 (effective decay du+1)
    dv: np.ndarray          # int, 0..4095
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    vth: np.ndarray | None  # threshold mantissa (compared as vth << 6)
    v_reset: np.ndarray     # in v units
    v_init: np.ndarray      # in v units
    input_bias: np.ndarray  # c, in activation units (before << 6)
    reset_mode: str
    scale: float            # sigma: integer units per float unit (before << 6)
    step_gain: np.ndarray | None = None   # TSM p[t] as mantissas with TSM_BITS fraction bits

    @property
    def spiking(self) -> bool:
        return self.vth is not None


@dataclass
class FixedDense:
    """Integer weights of any linear op (Dense, Scale, Conv), in the op's own weight layout."""
    weight: np.ndarray      # int32 mantissas: (out, in) Dense, (size,) Scale, (Co, Ci/g, kH, kW) Conv
    weight_exp: int
    out_scale: float        # integer units of a per float unit of a
    wrap_bits: int | None = None   # Lava's fixed Conv wraps its output to 24 signed bits


def wrap_signed(x: np.ndarray, bits: int) -> np.ndarray:
    """Lava's ``signed_clamp``: two's-complement wrap to ``bits`` bits."""
    base = 1 << bits
    return (x + base // 2) % base - base // 2


@dataclass
class FixedProgram:
    program: Program
    params: dict[str, object]                  # op name -> FixedDense / FixedNeuron
    scales: dict[str, float]                   # op name -> integer units per float unit of its output
    errors: dict[str, dict] = field(default_factory=dict)  # per-layer quantisation error


def decay(x: np.ndarray, d) -> np.ndarray:
    prod = x.astype(np.int64) * (DECAY_UNITY - np.asarray(d, np.int64))
    return np.sign(prod) * (np.abs(prod) >> DECAY_BITS)


def wrap24(x: np.ndarray) -> np.ndarray:
    w = np.where(x > UV_MAX, x - 2 * UV_MAX, x)
    return np.where(w <= -UV_MAX, x + 2 * UV_MAX, w)


TSM_BITS = 12    # fraction bits of a TSM gain mantissa: p[t] = P[t] / 4096


def neuron_step_fixed(u, v, a, p: FixedNeuron, t: int = 0):
    """One integer step (time step t of the sample); u, v, a int64 arrays batched on axis 0.

    A TSM gain scales the aligned activation: ((a + c) << 6) * P[t] >> 12
    (floor), which is the identity for P[t] = 4096.
    """
    act = (a + p.input_bias) << STATE_SHIFT
    if p.step_gain is not None:
        act = (act * int(p.step_gain[t])) >> TSM_BITS
    u = wrap24(decay(u, p.du + 1) + act)
    bias = np.where(p.bias_exp >= 0, p.bias_mant << np.maximum(p.bias_exp, 0),
                    p.bias_mant >> np.maximum(-p.bias_exp, 0))
    v = np.clip(decay(v, p.dv) + u + bias, -UV_MAX + 1, UV_MAX - 1)
    if not p.spiking:
        return u, v, v
    vth = p.vth.astype(np.int64) << STATE_SHIFT
    z = v > vth
    v = np.where(z, v - vth, v) if p.reset_mode == "subtract" else np.where(z, p.v_reset, v)
    return u, v, z.astype(np.int64)


def dense_fixed(weight: np.ndarray, weight_exp: int, x: np.ndarray) -> np.ndarray:
    """Lava's bit-accurate Dense for a batch x of shape (N, in)."""
    a = x.astype(np.int64) @ weight.T.astype(np.int64)
    return a << weight_exp if weight_exp > 0 else a >> -weight_exp


def _even_round(x: np.ndarray) -> np.ndarray:
    return (2 * np.round(x / 2)).astype(np.int64)


def _bias_mant_exp(value_int: np.ndarray):
    mag = np.abs(value_int).astype(np.float64)
    exp = np.ceil(np.log2(np.maximum(mag, 1) / BIAS_MANT_MAX)).clip(0, None).astype(np.int64)
    mant = np.round(value_int / (1 << exp)).astype(np.int64)
    return mant, exp


def _rel_err(exact, approx) -> float:
    exact = np.asarray(exact, np.float64)
    denom = np.sqrt(np.mean(exact ** 2)) or 1.0
    return float(np.sqrt(np.mean((exact - approx) ** 2)) / denom)


TRANSPARENT = (ReshapeOp, DelayOp)   # ops that pass values on unchanged (maybe later)


def quantising_targets(program: Program) -> dict[str, str]:
    """Linear op -> the one neuron population whose scale its weights carry.

    A linear op reaching exactly one neuron (through Flatten/Delay only) is
    quantised with that neuron: its mantissas absorb the neuron's gain and
    scale. Any other linear op (e.g. a pooling layer feeding a convolution)
    must have exactly representable weights (see :func:`_exact_linear`).
    """
    targets = {}
    for op in program.ops.values():
        if not isinstance(op, LinearOp):
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
            if not isinstance(nxt, TRANSPARENT) or len(nxt.inputs) != 1:
                break
            cur = nxt
    return targets


def quantise(program: Program, input_scale: float = 1.0,
             collect: list | None = None) -> FixedProgram:
    """Choose per-population scales and integer parameters for every op.

    ``collect``: if a list, every op's UnsupportedError is appended to it and
    quantisation goes on (the failed op gets scale 1), so that ``check`` can
    report all problems; otherwise the first one is raised.
    """
    params: dict[str, object] = {}
    scales: dict[str, float] = {}
    errors: dict[str, dict] = {}
    targets = quantising_targets(program)
    pending: dict[str, str] = {}         # op -> neuron whose sigma gives its scale

    def scale_of(name):
        if name in scales:
            return scales[name]
        src = program.ops[name]
        if isinstance(src, NeuronOp) and src.params.spiking:
            return 1.0
        raise UnsupportedError(name, "scale", "in fixed precision a graded value cannot be read "
                               "before its scale is defined (a loop without spiking neurons)",
                               backend="fixed")

    def agree(op, names):
        vals = {scale_of(n) for n in names}
        if len(vals) > 1:
            raise UnsupportedError(op.name, "inputs", f"inputs summed here have different fixed-point "
                                   f"scales {sorted(vals)}; sum them through a weighted node",
                                   backend="fixed")
        return vals.pop()

    for op in program.ops.values():
        if collect is None:
            _quantise_op(program, op, input_scale, params, scales, errors, targets, pending,
                         scale_of, agree)
            continue
        try:
            _quantise_op(program, op, input_scale, params, scales, errors, targets, pending,
                         scale_of, agree)
        except UnsupportedError as exc:
            collect.append(exc)
            scales.setdefault(op.name, 1.0)
            pending.pop(op.name, None)
    return FixedProgram(program, params, scales, errors)


def _quantise_op(program, op, input_scale, params, scales, errors, targets, pending, scale_of,
                 agree):
    if isinstance(op, InputOp):
        scales[op.name] = float(input_scale)
    elif isinstance(op, (ReshapeOp, OutputOp, DelayOp)):
        waiting = [pending[s] for s in op.inputs if s in pending]
        done = [targets[s] for s in op.inputs if s in targets and targets[s] in params]
        if waiting or done:
            if len(waiting) + len(done) != len(op.inputs):
                raise UnsupportedError(op.name, "inputs", "sums a weighted and an unweighted "
                                       "input before the neuron", backend="fixed")
            if waiting:
                pending[op.name] = waiting[0]
            else:
                scales[op.name] = params[done[0]].scale
        else:
            scales[op.name] = agree(op, op.inputs)
    elif isinstance(op, LinearOp):
        if op.name in targets:
            if targets[op.name] in params:      # a recurrent edge into a neuron already done
                scales[op.name] = params[targets[op.name]].scale
            else:
                pending[op.name] = targets[op.name]
        else:
            params[op.name], scales[op.name], errors[op.name] = _exact_linear(
                op, agree(op, op.inputs))
    elif isinstance(op, NeuronOp):
        params[op.name], errors[op.name] = _quantise_neuron(
            program, op, targets, pending, params, scale_of, agree)
        sigma = params[op.name].scale
        for name, neuron in list(pending.items()):
            if neuron == op.name:
                scales[name] = sigma
                del pending[name]
        scales[op.name] = 1.0 if op.params.spiking else sigma * (1 << STATE_SHIFT)
    else:
        raise UnsupportedError(op.name, "type", f"{op.nir_type} has no fixed-point lowering yet",
                               backend="fixed")


def _exact_linear(op, in_scale):
    """Integer weights for a linear op that feeds no single neuron: w = c * mantissa exactly."""
    w = np.asarray(op.scale if isinstance(op, ScaleOp) else op.weight, np.float64)
    nz = np.abs(w[w != 0])
    c = float(nz.min()) if nz.size else 1.0
    mant = w / c
    if not np.allclose(mant, np.round(mant), rtol=0, atol=1e-9):
        raise UnsupportedError(op.name, "weight", "in fixed precision a weighted node that does not "
                               "feed exactly one neuron population must have weights that are integer "
                               "multiples of one value (e.g. pooling)", backend="fixed")
    mant = np.round(mant).astype(np.int64)
    if not (isinstance(op, ConvOp) and op.lava_native) and mant.min() < 0 < mant.max():
        mant, c = mant * 2, c / 2     # Lava drops the lowest bit of mixed-sign 8-bit weights
    if np.abs(mant).max(initial=0) > W_MANT_MAX:
        raise UnsupportedError(op.name, "weight", f"weights need {int(np.abs(mant).max())} "
                               f"levels, more than 8 bits", backend="fixed")
    out_scale = in_scale / c
    fixed = FixedDense(mant.astype(np.int32), 0, out_scale,
                       wrap_bits=24 if isinstance(op, ConvOp) and op.lava_native else None)
    return fixed, out_scale, {"weight": 0.0}


def _weighted_chain(program, name, targets, neuron) -> bool:
    """Whether input ``name`` is a linear op quantised for ``neuron`` (maybe via Flatten/Delay)."""
    op = program.ops[name]
    while isinstance(op, TRANSPARENT) and len(op.inputs) == 1:
        op = program.ops[op.inputs[0]]
    return targets.get(op.name) == neuron


def _effective_weight(op, gain: np.ndarray) -> np.ndarray:
    """The op's weights with the consuming neurons' gain folded in, in the op's layout."""
    if isinstance(op, DenseOp):
        return gain[:, None] * op.weight
    if isinstance(op, ScaleOp):
        return gain * op.scale
    if isinstance(op, ConvOp):
        per_channel = gain.reshape(op.shape[0], -1)
        if not np.allclose(per_channel, per_channel[:, :1], rtol=1e-12, atol=0):
            raise UnsupportedError(op.name, "gain", "the neurons a convolution feeds must share "
                                   "one input gain per channel in fixed precision (the kernel is "
                                   "shared across positions)", backend="fixed")
        return per_channel[:, 0][:, None, None, None] * op.weight
    raise UnsupportedError(op.name, "type", f"{op.nir_type} has no fixed-point weights", backend="fixed")


def _quantise_neuron(program, op: NeuronOp, targets, pending, params, scale_of, agree):
    p: NeuronParams = op.params
    gain = np.broadcast_to(np.asarray(p.gain, np.float64), p.shape).reshape(-1)
    weighted = [program.ops[name] for name, n in targets.items() if n == op.name]
    in_scale = {d.name: agree(d, d.inputs) for d in weighted}
    direct_in = [s for s in op.inputs if not _weighted_chain(program, s, targets, op.name)]
    w_eff = {d.name: _effective_weight(d, gain) for d in weighted}
    # sigma: largest scale keeping weights within 8 bits and the threshold in range
    sigma = np.inf
    for d in weighted:
        peak = np.abs(w_eff[d.name]).max(initial=0)
        if peak > 0:
            sigma = min(sigma, W_MANT_MAX * in_scale[d.name] / peak)
    if p.spiking and np.abs(p.v_th).max() > 0:
        sigma = min(sigma, VTH_MANT_MAX / np.abs(p.v_th).max())
    if direct_in:  # no weights to carry a scale: the input's scale is the neuron's
        if not np.allclose(gain, 1.0, rtol=1e-9):
            raise UnsupportedError(op.name, "gain", "input gain != 1 on an edge without weights "
                                   "cannot be represented in fixed precision", backend="fixed")
        sigma = agree(op, direct_in)
    if not np.isfinite(sigma):
        sigma = 1.0
    err = {}
    for d in weighted:
        mant = np.clip(_even_round(sigma * w_eff[d.name] / in_scale[d.name]), -256, W_MANT_MAX)
        params[d.name] = FixedDense(mant.astype(np.int32), 0, sigma,
                                    wrap_bits=24 if isinstance(d, ConvOp) and d.lava_native else None)
        err[f"weight[{d.name}]"] = _rel_err(w_eff[d.name], mant * in_scale[d.name] / sigma)
    shape = (op.size,)
    flat = lambda x: np.broadcast_to(np.asarray(x, np.float64), p.shape).reshape(shape)
    # dv = 4096 (v forgets fully: Threshold, or tau = dt) is exact; Loihi's 12 bits stop at 4095.
    dv = np.clip(np.round(flat(p.dv) * DECAY_UNITY), 0, DECAY_UNITY).astype(np.int64)
    du = np.clip(np.round(flat(p.du) * DECAY_UNITY) - 1, 0, DECAY_UNITY - 1).astype(np.int64)
    err["dv"] = float(np.abs(dv / DECAY_UNITY - flat(p.dv)).max())
    err["du"] = float(np.abs((du + 1) / DECAY_UNITY - flat(p.du)).max())
    v_unit = sigma * (1 << STATE_SHIFT)
    bias_mant, bias_exp = _bias_mant_exp(np.round(flat(p.bias) * v_unit))
    input_bias = np.round(flat(p.input_bias) * gain * sigma).astype(np.int64)
    vth = None
    if p.spiking:
        vth = np.round(flat(p.v_th) * sigma).astype(np.int64)
        err["v_threshold"] = _rel_err(flat(p.v_th), vth / sigma)
    fixed = FixedNeuron(du=du, dv=dv, bias_mant=bias_mant, bias_exp=bias_exp, vth=vth,
                        v_reset=np.round(flat(p.v_reset) * v_unit).astype(np.int64),
                        v_init=np.round(flat(p.v_init) * v_unit).astype(np.int64),
                        input_bias=input_bias, reset_mode=p.reset_mode, scale=float(sigma))
    if p.step_gain is not None:
        fixed.step_gain = np.round(p.step_gain * (1 << TSM_BITS)).astype(np.int64)
        err["tsm_gain"] = _rel_err(p.step_gain, fixed.step_gain / (1 << TSM_BITS))
    return fixed, err
