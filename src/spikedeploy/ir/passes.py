"""Program-to-Program passes: bias folding (part of lowering), threshold guidance, and the
passes that fit a Program to processes with one threshold per population and synapses that
feed neurons only (threshold folding, synapse-chain fusion)."""
from __future__ import annotations

import copy

import numpy as np

from ..errors import SpikedeployError
from ..metadata import THRESHOLD_SCALE
from .ops import ConvOp, DenseOp, NeuronOp, Op, Program, ReshapeOp


def fold_biases(program: Program) -> None:
    """Move each Affine/Conv bias into the input bias of the neurons it reaches.

    A bias is a constant input current; neurons receive it before the
    synaptic filter (see semantics). Lava's synapses have no bias, so it is
    carried by the neurons: through Flatten unchanged and through further
    synaptic ops (pooling, Scale, Linear) as M @ bias, which is exact because
    those ops are linear. Through a recurrent edge too: an op's value before
    step 0 is its response to the zero initial state, i.e. its bias (as in
    snnTorch's RLeaky). A bias that reaches an Output, a Delay or a
    Threshold-free sum with no neuron in between stays on its op: the
    reference simulator adds it, Lava refuses it (``bias_problem``).
    """
    for op in program.ops.values():
        if not op.synaptic:
            continue
        bias = op.full_bias()
        if bias is None:
            continue
        if not np.any(bias):
            op.bias = None
            continue
        plan: list = []
        if _push_bias(program, op, np.asarray(bias, np.float64), plan) is None:
            for neuron, contribution in plan:
                neuron.params.input_bias = (np.asarray(neuron.params.input_bias, np.float64)
                                            + contribution.reshape(neuron.params.shape))
            op.bias = None


def bias_problem(program: Program, op: Op) -> str | None:
    """Why ``op``'s bias could not be folded into neurons (None if it has none left)."""
    bias = op.full_bias()
    if bias is None:
        return None
    return _push_bias(program, op, np.asarray(bias, np.float64), [])


def _push_bias(program: Program, op: Op, bias: np.ndarray, plan: list) -> str | None:
    for consumer in program.consumers(op.name):
        if isinstance(consumer, NeuronOp):
            plan.append((consumer, bias))
            continue
        if isinstance(consumer, ReshapeOp):
            why = _push_bias(program, consumer, bias, plan)
        elif consumer.synaptic:
            why = _push_bias(program, consumer, np.asarray(consumer.matrix() @ bias).reshape(-1), plan)
        else:
            why = (f"it reaches '{consumer.name}' ({consumer.nir_type}) before any neuron; "
                   "Lava's synapses have no bias: use a node without bias or add a neuron")
        if why:
            return why
    return None


def scale_thresholds(program: Program, gamma: float) -> Program:
    """Threshold guidance (SDM): every spiking neuron's threshold times ``gamma``.

    Returns a new Program; the original is untouched. A subtractive reset
    subtracts the scaled threshold, as the scaled neuron would. The graph's
    ``spikedeploy.threshold_scale`` becomes the total scale: a gamma applied
    at export times this one.
    """
    gamma = float(gamma)
    if not np.isfinite(gamma) or gamma <= 0:
        raise SpikedeployError(f"threshold scale must be a positive number, got {gamma}")
    if gamma == 1.0:
        return program
    scaled = copy.deepcopy(program)
    for op in scaled.ops.values():
        if isinstance(op, NeuronOp) and op.params.spiking:
            op.params.v_th = op.params.v_th * gamma
    total = program.threshold_scale * gamma
    scaled.metadata = dict(scaled.metadata, **{THRESHOLD_SCALE: total})
    return scaled


def fold_thresholds(program: Program) -> Program:
    """Every spiking population's thresholds folded into its input gain and bias (threshold 1).

    v > th is v / th > 1: dividing the neuron's input gain g (which multiplies
    every incoming edge and the Affine bias), its bias, v_reset and v_init by
    th gives a population with one threshold whose spikes are the same (in
    floating point, up to the rounding of that one division). The quantiser
    then folds g into the rows of the incoming weights. Populations with a
    threshold <= 0 are left as they are (the targets refuse them). Returns a
    new Program.
    """
    folded = copy.deepcopy(program)
    for op in folded.ops.values():
        if not (isinstance(op, NeuronOp) and op.params.spiking):
            continue
        p = op.params.broadcast(op.params.shape)
        th = p.v_th
        if np.any(th <= 0) or np.all(th == 1):
            continue            # a non-positive threshold is refused where it matters
        op.params = p.replace(v_th=np.ones_like(th), gain=p.gain / th, bias=p.bias / th,
                              v_reset=p.v_reset / th, v_init=p.v_init / th)
        if hasattr(op, "threshold"):
            op.threshold = np.ones_like(th)
    return folded


def fuse_synapse_chains(program: Program) -> Program:
    """Two synaptic ops in a row (no neuron between) merged into one, where exact.

    A Loihi synapse feeds dendrites, never another synapse, and a pooling
    layer between a neuron and a convolution is such a chain. Two cases are
    fused: a non-overlapping pooling (kernel = stride, no padding, a map
    that the kernel divides) followed by a convolution without dilation is
    one convolution with the kernel spread over the pooling windows
    (W'[o, c, k*a + p, k*b + q] = W[o, c, a, b] * w_pool[c, p, q], stride and
    padding times k); anything followed by, or following, a Dense is the
    Dense of the matrix product. Returns a new Program; chains it cannot
    fuse stay (and are refused by the targets that need fusion).
    """
    fused = copy.deepcopy(program)
    changed = True
    while changed:
        changed = False
        for op in list(fused.ops.values()):
            pair = _chain_before(fused, op)
            if pair is None:
                continue
            first, between = pair
            merged = _fuse(first, op)
            if merged is None:
                continue
            merged.inputs, merged.recurrent = list(first.inputs), set(first.recurrent)
            merged.in_shape = first.in_shape
            for name in [first.name] + between:
                del fused.ops[name]
            fused.ops[op.name] = merged
            fused.ops = _reordered(fused, op.name, first)
            changed = True
            break
    return fused


def _chain_before(program: Program, op: Op):
    """(synaptic op, reshapes between) feeding synaptic ``op`` alone, or None."""
    if not op.synaptic or len(op.inputs) != 1 or op.recurrent:
        return None
    between = []
    src = program.ops[op.inputs[0]]
    while isinstance(src, ReshapeOp) and len(src.inputs) == 1 and not src.recurrent:
        if len(program.consumers(src.name)) != 1:
            return None
        between.append(src.name)
        src = program.ops[src.inputs[0]]
    if (not src.synaptic or len(program.consumers(src.name)) != 1 or src.recurrent
            or src.full_bias() is not None):
        return None
    return src, between


def _fuse(first: Op, second: Op) -> Op | None:
    if isinstance(first, DenseOp) or isinstance(second, DenseOp):
        from scipy import sparse          # sparse product: no dense copy of a conv's matrix
        product = sparse.csr_matrix(second.matrix()) @ sparse.csr_matrix(first.matrix())
        return DenseOp(second.name, second.shape, nir_type=second.nir_type,
                       weight=np.asarray(product.toarray(), np.float64))
    if isinstance(first, ConvOp) and isinstance(second, ConvOp):
        return _pool_into_conv(first, second)
    return None


def _pool_into_conv(pool: ConvOp, conv: ConvOp) -> ConvOp | None:
    c, h, w = pool.in_shape
    kh, kw = pool.weight.shape[2:]
    taps = pool.weight[:, 0]
    if (pool.groups != c or pool.weight.shape[0] != c or tuple(pool.stride) != (kh, kw)
            or any(pool.padding[0]) or any(pool.padding[1]) or tuple(pool.dilation) != (1, 1)
            or h % kh or w % kw or tuple(conv.dilation) != (1, 1)):
        return None
    co, cig, a, b = conv.weight.shape
    groups = conv.groups
    per_out = np.repeat(np.arange(groups), co // groups) * cig    # first input channel per output
    spread = np.zeros((co, cig, a * kh, b * kw))
    for o in range(co):
        for i in range(cig):
            spread[o, i] = np.kron(conv.weight[o, i], taps[per_out[o] + i])
    (pt, pb), (pl, pr) = conv.padding
    return ConvOp(conv.name, conv.shape, nir_type=conv.nir_type, weight=spread,
                  stride=(conv.stride[0] * kh, conv.stride[1] * kw),
                  padding=((pt * kh, pb * kh), (pl * kw, pr * kw)), groups=groups)


def _reordered(program: Program, name: str, first: Op) -> dict:
    """Ops in execution order with the fused op where its first part was (its inputs are
    ready there, and nothing between read the first part)."""
    ops = {}
    for key, op in program.ops.items():
        if key == name:
            continue
        ops[key] = op
    order = list(ops)
    # place right after the last of its inputs
    pos = max((order.index(s) for s in first.inputs if s in ops), default=-1) + 1
    order.insert(pos, name)
    return {key: program.ops[key] for key in order}
