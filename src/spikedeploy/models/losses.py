"""Training losses over time-major outputs (T, N, classes), and the matching readouts.

* :func:`count_loss` -- cross-entropy of the output summed over T (spike
  counts as logits): the reference MLP's loss; readout ``spike_count``.
* :func:`lts_loss` -- last time step (IMP-SNN's LTS): cross-entropy of the
  output at step T-1 only; readout ``last_step``.
* :func:`tet_s_loss` -- TET with label smoothing (IMP-SNN's TET-S): the mean
  over t of the label-smoothed (0.01) cross-entropy of each step's output,
  no MSE regulariser; readout ``mean`` (mean over steps).
* :func:`mean_loss` -- cross-entropy of the mean over steps; readout ``mean``.

The readout a model was trained for is written into its checkpoint and the
exported graph (metadata ``spikedeploy.readout``) and used by
``simulate``/``verify``; every stage applies it with :mod:`spikedeploy.readout`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import SpikedeployError

TET_S_SMOOTHING = 0.01


def _check(outputs: torch.Tensor) -> torch.Tensor:
    if outputs.ndim < 3:
        raise SpikedeployError(f"expected time-major outputs (T, N, classes), got {tuple(outputs.shape)}")
    return outputs.reshape(outputs.shape[0], outputs.shape[1], -1)


def count_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(_check(outputs).sum(0), labels)


def mean_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(_check(outputs).mean(0), labels)


def lts_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the last time step only (LTS)."""
    return F.cross_entropy(_check(outputs)[-1], labels)


def tet_s_loss(outputs: torch.Tensor, labels: torch.Tensor,
               smoothing: float = TET_S_SMOOTHING) -> torch.Tensor:
    """TET-S: mean over t of the label-smoothed cross-entropy of step t's output."""
    out = _check(outputs)
    steps = out.shape[0]
    flat = out.reshape(steps * out.shape[1], -1)
    return F.cross_entropy(flat, labels.repeat(steps), label_smoothing=smoothing)


# the readout that matches each loss
LOSS_READOUT = {"spike_count": "spike_count", "mean": "mean", "last_step": "last_step",
                "tet_s": "mean"}
