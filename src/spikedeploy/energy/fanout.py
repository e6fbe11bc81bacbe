"""Real fan-out of every input element of a synaptic layer, computed from its weights.

A synaptic layer is an op that multiplies its input by weights: Dense
(NIR Affine/Linear), Conv (NIR Conv2d, with padding, stride, dilation and
groups), pooling (NIR SumPool2d/AvgPool2d, a fixed depthwise convolution)
and Scale (a diagonal synapse). For each element i of its flat input, the
*fan-out* is the number of synapses that element drives, in two variants:

* ``"nonzero"``: synapses whose weight is non-zero (NeuroBench's
  SynapticOperations skip zero weights);
* ``"all"``: every synapse, zero weights included (sinabs' count). For a
  convolution only taps that land inside the output map count: an input
  pixel near the border drives fewer outputs, and padding is never a synapse.

Besides the fan-outs, each layer has ``flops``: the multiply-accumulates of
one dense evaluation *as the FLOP counters of the literature count them*
(syops, Spikformer, the Spiking Diffusion Models paper): for a convolution
C_out x H_out x W_out x C_in/groups x kH x kW, padded taps included, so it
exceeds the number of synapses on small maps; for Dense in x out.

``FANOUT`` is an OpTable: synaptic op class -> function ``op -> FanOut``;
supporting a new synaptic op type is one entry there (the energy tests check
every entry against a brute-force loop over the op's own matrix, and the
registry-coverage test that every synaptic op type has one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.op_table import OpTable
from ..ir.ops import ConvOp, DenseOp, Op, ScaleOp

VARIANTS = ("nonzero", "all")
VARIANT_LABELS = {"nonzero": "non-zero weights", "all": "all synapses"}


@dataclass(frozen=True)
class FanOut:
    """Per-input-element fan-out, both variants, int64 arrays of shape (in_size,).

    ``flops``: MACs of one dense evaluation, padded taps included (None: the
    number of synapses, which is exact for layers without padding).
    """

    nonzero: np.ndarray
    all: np.ndarray
    flops: int | None = None

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

    @property
    def dense_flops(self) -> int:
        """MACs of one dense evaluation, literature convention (padded taps included)."""
        return self.synapses if self.flops is None else int(self.flops)


def _dense_fanout(op: DenseOp) -> FanOut:
    w = np.asarray(op.weight)
    return FanOut(nonzero=np.count_nonzero(w, axis=0).astype(np.int64),
                  all=np.full(w.shape[1], w.shape[0], dtype=np.int64),
                  flops=int(w.size))


def _scale_fanout(op: ScaleOp) -> FanOut:
    s = np.asarray(op.scale).reshape(-1)
    return FanOut(nonzero=(s != 0).astype(np.int64), all=np.ones(s.size, np.int64),
                  flops=int(s.size))


def _conv_fanout(op: ConvOp) -> FanOut:
    """Exact per-pixel fan-out of a 2-D convolution (borders, stride, dilation, groups).

    fanout[c, y, x] = sum over the output channels co of c's group and the taps
    (ky, kx) of [tap used] x A_y[ky, y] x A_x[kx, x]; A_* say whether that tap
    of some in-bounds output position lands on (y, x). Separable, so no
    (C_out x taps x H x W) intermediate is built.
    """
    w = np.asarray(op.weight)
    cout, cin_g, kh, kw = w.shape
    cin = int(op.in_shape[0])
    _, ho, wo = (int(s) for s in op.shape)
    groups = int(op.groups)
    g_out = cout // groups
    geometry = op.geometry
    ay, ax = geometry.tap_hits(0), geometry.tap_hits(1)

    def per_channel(kernel_used: np.ndarray) -> np.ndarray:
        # (cout, cin_g, kh, kw) -> per input channel: sum over the group's outputs
        k = kernel_used.reshape(groups, g_out, cin_g, kh, kw).sum(axis=1)
        k = k.reshape(cin, kh, kw)                      # input channel = g * cin_g + ci
        return np.einsum("cyx,yi,xj->cij", k, ay, ax).reshape(-1).astype(np.int64)

    flops = cout * ho * wo * cin_g * kh * kw
    return FanOut(nonzero=per_channel((w != 0).astype(np.int64)),
                  all=per_channel(np.ones(w.shape, np.int64)), flops=int(flops))


# Registry: synaptic op type -> its per-input-element fan-out. One entry per type.
FANOUT: OpTable = OpTable("energy fan-out rule", entries={
    DenseOp: _dense_fanout,
    ConvOp: _conv_fanout,     # Conv2d, and SumPool2d/AvgPool2d (ConvOp.pool = "sum"|"avg")
    ScaleOp: _scale_fanout,
})


def is_synaptic(op: Op) -> bool:
    return op.synaptic


def fanout(op: Op) -> FanOut:
    """The fan-out of ``op``'s input elements (``op`` must be a synaptic op)."""
    if not op.synaptic:
        raise TypeError(f"op '{op.name}' ({type(op).__name__}) is not a synaptic layer")
    return FANOUT.lookup(op)(op)


def connectivity(op: Op):
    """Sparse (out_size, in_size) matrix with 1 where a non-zero weight connects in -> out.

    None for a synaptic op type without a matrix form.
    """
    try:
        weights = getattr(op, "weights", None)
    except NotImplementedError:
        weights = None
    if weights is None or not hasattr(op, "matrix"):
        return None
    from scipy import sparse
    m = op.matrix((np.asarray(weights) != 0).astype(np.float64))
    return sparse.csr_matrix(m)


def tool_layer(op: Op) -> bool:
    """Whether NeuroBench and sinabs count the layer: torch Linear and Conv only
    (pooling and Scale are not connection layers for them)."""
    return type(op) is DenseOp or (type(op) is ConvOp and not op.pool)
