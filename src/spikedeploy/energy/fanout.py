"""Real fan-out of every input element of a synaptic layer.

A synaptic layer is an op that multiplies its input by weights (Dense now;
Conv and Pool later). For each element i of its flat input, the *fan-out* is
the number of synapses that element drives, in two variants:

* ``"nonzero"``: synapses whose weight is non-zero (NeuroBench's
  SynapticOperations skip zero weights);
* ``"all"``: every synapse, zero weights included (sinabs' count; for a
  convolution, only taps that land inside the output map, never padding).

``FANOUT`` maps an op type to a function ``op -> FanOut``; supporting a new
synaptic layer type is one entry there. Everything else in
:mod:`spikedeploy.energy` works from these arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..ir.program import DenseOp, Op

VARIANTS = ("nonzero", "all")
VARIANT_LABELS = {"nonzero": "non-zero weights", "all": "all synapses"}


@dataclass(frozen=True)
class FanOut:
    """Per-input-element fan-out, both variants, int64 arrays of shape (in_size,)."""

    nonzero: np.ndarray
    all: np.ndarray

    def __post_init__(self):
        if self.nonzero.shape != self.all.shape or self.nonzero.ndim != 1:
            raise ValueError("fan-out arrays must be 1-D and of equal length")
        if np.any(self.nonzero > self.all):
            raise ValueError("non-zero fan-out exceeds the total fan-out")

    @property
    def in_size(self) -> int:
        return int(self.all.shape[0])

    def variant(self, name: str) -> np.ndarray:
        if name not in VARIANTS:
            raise ValueError(f"unknown fan-out variant {name!r} ({'|'.join(VARIANTS)})")
        return self.nonzero if name == "nonzero" else self.all

    @property
    def synapses(self) -> int:
        """Number of synapses (connections), zero weights included.

        This is also the number of MACs one dense (ANN) evaluation of the
        layer costs, counting only real connections.
        """
        return int(self.all.sum())

    @property
    def synapses_nonzero(self) -> int:
        return int(self.nonzero.sum())


def _dense_fanout(op: DenseOp) -> FanOut:
    w = np.asarray(op.weight)
    return FanOut(nonzero=np.count_nonzero(w, axis=0).astype(np.int64),
                  all=np.full(w.shape[1], w.shape[0], dtype=np.int64))


# Registry: synaptic op type -> its per-input-element fan-out. One entry per type.
FANOUT: dict[type, Callable[[Op], FanOut]] = {
    DenseOp: _dense_fanout,
}


def is_synaptic(op: Op) -> bool:
    return type(op) in FANOUT


def fanout(op: Op) -> FanOut:
    """The fan-out of ``op``'s input elements (``op`` must be a synaptic op)."""
    try:
        rule = FANOUT[type(op)]
    except KeyError:
        raise TypeError(f"op '{op.name}' ({type(op).__name__}) is not a synaptic layer") from None
    return rule(op)
