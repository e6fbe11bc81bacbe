"""The numpy engine of the reference simulator: synapses as BLAS products.

Each synaptic op becomes one product ``x -> W x`` over a chunk of samples (rows of x):
a dense matrix where it is small enough (BLAS beats sparse and im2col there, zeros
included), a sparse CSR matrix for large Dense ops, and im2col over the real taps for
large convolutions. Fixed point multiplies the integer mantissas the same way in float64,
which is exact while every partial sum is an integer below 2**52 (checked per chunk), and
falls back to int64 arithmetic beyond it.
"""
from __future__ import annotations

import numpy as np

from ..ir import fixed_point as fxp
from ..ir.op_table import OpTable
from ..ir.ops import ConvOp, DenseOp, ScaleOp, SynapticOp
from . import reference_shared
from .reference_shared import EXACT_LIMIT, DepthwiseTaps, NumpyArrays, is_depthwise, register_shared

FLOAT_RUNNERS: OpTable = OpTable("float reference runner", backend="reference-float")
FIXED_RUNNERS: OpTable = OpTable("fixed-point reference runner", backend="reference-fixed")
register_shared(FLOAT_RUNNERS, FIXED_RUNNERS)

DENSE_MATRIX_LIMIT = 1 << 22   # an equivalent matrix up to 4M entries runs as dense BLAS


def transposed_matrix(matrix, dtype):
    """M^T for ``x @ M^T``: dense when small (BLAS beats sparse there), else sparse CSR."""
    if hasattr(matrix, "toarray") and np.prod(matrix.shape) <= DENSE_MATRIX_LIMIT:
        matrix = matrix.toarray()
    if isinstance(matrix, np.ndarray):
        return np.ascontiguousarray(matrix.T, dtype)
    return matrix.T.tocsr().astype(dtype)


class _Im2col:
    """A large convolution as im2col + one batched GEMM per group over the real taps only."""

    def __init__(self, op: ConvOp, weight: np.ndarray, dtype):
        cout, cin_g, kh, kw = weight.shape
        g = op.groups
        self.kernel = np.ascontiguousarray(      # (g, K, Cout/g)
            weight.reshape(g, cout // g, cin_g * kh * kw).transpose(0, 2, 1), dtype)
        self.gather = op.geometry.gather_index().transpose(0, 2, 1).copy()  # (g, P, K)

    def __call__(self, x):
        n = x.shape[0]
        g, positions, taps = self.gather.shape
        padded = np.concatenate([x, np.zeros((n, 1), x.dtype)], axis=1)
        patches = padded.T[self.gather]                          # (g, P, K, N)
        patches = patches.transpose(0, 3, 1, 2).reshape(g, n * positions, taps)
        y = np.matmul(patches, self.kernel)                      # (g, N*P, Cout/g)
        return y.reshape(g, n, positions, -1).transpose(1, 0, 3, 2).reshape(n, -1)


def product(op: SynapticOp, weight, arrays, dtype):
    """``x -> W x`` for a chunk x of shape (rows, in_size); ``weight`` in the op's layout
    (None: the op's float weights); numpy arrays whatever ``arrays`` says."""
    if isinstance(op, ScaleOp):
        scale = np.asarray(op.scale if weight is None else weight, dtype)
        return lambda x: x * scale
    if is_depthwise(op):
        return DepthwiseTaps(op, np.asarray(op.weight if weight is None else weight),
                             NumpyArrays(), dtype)
    matrix = op.matrix() if weight is None else op.matrix(weight)
    if isinstance(op, ConvOp) and np.prod(matrix.shape) > DENSE_MATRIX_LIMIT:
        return _Im2col(op, np.asarray(op.weight if weight is None else weight), dtype)
    mt = transposed_matrix(matrix, dtype)
    return lambda x: np.asarray(x @ mt)


@FLOAT_RUNNERS.register(DenseOp, ScaleOp, ConvOp)
class SynapseFloat(reference_shared.SynapseFloat):
    product = staticmethod(product)


def row_bound(op: SynapticOp, weight: np.ndarray) -> float:
    """The largest sum of |integer weights| into one output (bounds every partial sum)."""
    if isinstance(op, ScaleOp):
        return float(np.abs(weight).max(initial=0))
    return float(abs(op.matrix(weight)).sum(axis=1).max()) if op.size else 0.0


@FIXED_RUNNERS.register(DenseOp, ScaleOp, ConvOp)
class SynapseFixed:
    """Lava's bit-accurate synapses: integer mantissas, exponent shift, Conv's 24-bit wrap."""
    stateless = True

    def __init__(self, op: SynapticOp, n, fixed: fxp.FixedProgram, arrays):
        p: fxp.FixedWeights = fixed.params[op.name]
        self.op, self.weight = op, p.weight.astype(np.int64)
        self.exp, self.wrap = p.weight_exp, p.wrap_bits
        self.apply = product(op, self.weight.astype(np.float64), None, np.float64)
        self.bound = row_bound(op, self.weight)

    def exact_product(self, x):
        """W x in int64, beyond float64's exact range (rare: huge integer activations)."""
        if isinstance(self.op, ScaleOp):
            return x.astype(np.int64) * self.weight
        return np.asarray((self.op.matrix(self.weight) @ x.astype(np.int64).T).T, np.int64)

    def step(self, x):
        largest = float(np.abs(x).max(initial=0)) * self.bound    # bounds every |W x|
        if largest < EXACT_LIMIT:       # float64 sums of integers: exact, so no rounding
            a = self.apply(x.astype(np.float64)).astype(np.int64)
        else:
            a = self.exact_product(x)
        a = a << self.exp if self.exp > 0 else a >> -self.exp
        return fxp.wrap_signed(a, self.wrap) if needs_wrap(largest, self.exp, self.wrap) else a


def needs_wrap(largest: float, exp: int, bits: int | None) -> bool:
    """False where the wrap to ``bits`` signed bits cannot change a value (every |W x| << exp
    below 2**(bits-1)), which skips its modulo."""
    return bits is not None and largest * 2.0 ** max(exp, 0) >= 2.0 ** (bits - 1)
