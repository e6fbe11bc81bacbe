"""Program-to-Program passes: bias folding (part of lowering) and threshold guidance."""
from __future__ import annotations

import copy

import numpy as np

from ..errors import SpikedeployError
from ..metadata import THRESHOLD_SCALE
from .ops import NeuronOp, Op, Program, ReshapeOp


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
