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
from .program import DenseOp, InputOp, NeuronOp, OutputOp, Program, ReshapeOp
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

    @property
    def spiking(self) -> bool:
        return self.vth is not None


@dataclass
class FixedDense:
    weight: np.ndarray      # int32 mantissas (out, in)
    weight_exp: int
    out_scale: float        # integer units of a per float unit of a


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


def neuron_step_fixed(u, v, a, p: FixedNeuron):
    """One integer step; u, v, a int64 arrays batched on axis 0."""
    u = wrap24(decay(u, p.du + 1) + ((a + p.input_bias) << STATE_SHIFT))
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


def quantise(program: Program, input_scale: float = 1.0) -> FixedProgram:
    """Choose per-population scales and integer parameters for every op."""
    params: dict[str, object] = {}
    scales: dict[str, float] = {}
    errors: dict[str, dict] = {}
    for op in program.ops.values():
        if isinstance(op, InputOp):
            scales[op.name] = float(input_scale)
        elif isinstance(op, (ReshapeOp, OutputOp)):
            scales[op.name] = scales[op.inputs[0]]
        elif isinstance(op, DenseOp):
            continue  # quantised with the neuron it feeds
        elif isinstance(op, NeuronOp):
            params[op.name], errors[op.name] = _quantise_neuron(program, op, scales, params)
            scales[op.name] = 1.0 if op.params.spiking else params[op.name].scale * (1 << STATE_SHIFT)
        else:
            raise UnsupportedError(op.name, "type", f"{op.nir_type} has no fixed-point lowering yet",
                                   backend="fixed")
    for op in program.ops.values():  # Dense ops feeding no neuron
        if isinstance(op, DenseOp) and op.name not in params:
            raise UnsupportedError(op.name, "output", "in fixed precision a Dense must feed a neuron",
                                   backend="fixed")
    return FixedProgram(program, params, scales, errors)


def _quantise_neuron(program, op: NeuronOp, scales, params):
    p: NeuronParams = op.params
    gain = p.gain.reshape(-1)
    dense_in = [program.ops[s] for s in op.inputs if isinstance(program.ops[s], DenseOp)]
    direct_in = [s for s in op.inputs if not isinstance(program.ops[s], DenseOp)]
    in_scale = {d.name: scales[d.inputs[0]] for d in dense_in}
    for d in dense_in:
        if len(program.consumers(d.name)) != 1:
            raise UnsupportedError(d.name, "output", "in fixed precision a Dense must feed one neuron "
                                   "population (its weights carry that neuron's scale)", backend="fixed")
    # sigma: largest scale keeping weights within 8 bits and the threshold in range
    sigma = np.inf
    for d in dense_in:
        w_eff = gain[:, None] * d.weight
        peak = np.abs(w_eff).max()
        if peak > 0:
            sigma = min(sigma, W_MANT_MAX * in_scale[d.name] / peak)
    if p.spiking and np.abs(p.v_th).max() > 0:
        sigma = min(sigma, VTH_MANT_MAX / np.abs(p.v_th).max())
    for s in direct_in:  # no weights to carry a scale: the input's scale is the neuron's
        if not np.allclose(gain, 1.0, rtol=1e-9):
            raise UnsupportedError(op.name, "gain", "input gain != 1 on an edge without weights "
                                   "cannot be represented in fixed precision", backend="fixed")
        sigma = min(sigma, scales[s]) if np.isfinite(sigma) else scales[s]
    if not np.isfinite(sigma):
        sigma = 1.0
    err = {}
    for d in dense_in:
        w_eff = gain[:, None] * d.weight
        mant = np.clip(_even_round(sigma * w_eff / in_scale[d.name]), -256, W_MANT_MAX)
        params[d.name] = FixedDense(mant.astype(np.int32), 0, sigma)
        err[f"weight[{d.name}]"] = _rel_err(w_eff, mant * in_scale[d.name] / sigma)
    shape = (op.size,)
    flat = lambda x: np.broadcast_to(np.asarray(x, np.float64), p.shape).reshape(shape)
    dv = np.clip(np.round(flat(p.dv) * DECAY_UNITY), 0, DECAY_UNITY - 1).astype(np.int64)
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
    return fixed, err
