"""Program-to-Program transformations applied at simulate time."""
from __future__ import annotations

import copy

import numpy as np

from ..errors import SpikedeployError
from .program import NeuronOp, Program


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
    total = float(program.meta("spikedeploy.threshold_scale", 1.0)) * gamma
    scaled.metadata = dict(scaled.metadata, **{"spikedeploy.threshold_scale": total})
    return scaled
