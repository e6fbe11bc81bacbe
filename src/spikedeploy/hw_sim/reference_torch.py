"""The torch engine of the reference simulator: the same runners on torch tensors, on the CPU
(float64/float32 and int64, multi-threaded) or on CUDA (``device="cuda"``).

Synapses: Dense ops as one matrix product per chunk (sparse CSR when large), convolutions
as torch's own conv2d kernel unless their equivalent dense matrix is small and not much
more work (then one GEMM beats the convolution's per-call cost). Fixed point multiplies the
integer mantissas in float64, exact while every partial sum is an integer below 2**52
(checked per chunk), and beyond it in int64 on the CPU (rare: huge integer activations).
Imported only when a run asks for this engine.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SpikedeployError
from ..ir import fixed_point as fxp
from ..ir.op_table import OpTable
from ..ir.ops import ConvOp, DenseOp, ScaleOp, SynapticOp
from . import reference_shared
from .reference_numpy import DENSE_MATRIX_LIMIT, needs_wrap, row_bound
from .reference_numpy import SynapseFixed as NumpySynapseFixed
from .reference_shared import EXACT_LIMIT, DepthwiseTaps, is_depthwise, register_shared

FLOAT_RUNNERS: OpTable = OpTable("float reference runner (torch)", backend="reference-float")
FIXED_RUNNERS: OpTable = OpTable("fixed-point reference runner (torch)", backend="reference-fixed")
register_shared(FLOAT_RUNNERS, FIXED_RUNNERS)

CONV_MATRIX_LIMIT = 1 << 20     # a conv's equivalent matrix up to 1M entries may run as a GEMM
DENSE_WORK_RATIO = {np.dtype(np.float64): 8, np.dtype(np.float32): 1}   # measured, see README
# torch's float64 convolution (im2col, no oneDNN) costs 4x more per sample at 256 samples
# than at 4 to 16 (its column buffer leaves the cache): it gets them in slabs of 8
F64_CONV_ROWS = 8


class TorchArrays:
    """The torch engine's tensors, on ``device``; element types given as numpy dtypes."""

    name = "torch"

    def __init__(self, float_dtype: str = "float64", device: str = "cpu"):
        if device.startswith("cuda"):
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            index = int(device.split(":")[1]) if ":" in device else 0
            if index >= count:
                raise SpikedeployError(f"--device {device}: torch finds {count} CUDA device(s) "
                                       f"here (torch {torch.__version__})")
        self.device = torch.device(device)
        self.float = np.dtype(float_dtype)
        self.int = np.dtype(np.int64)

    @staticmethod
    def torch_dtype(dtype):
        return torch.from_numpy(np.zeros(0, dtype)).dtype

    def array(self, x, dtype) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x.to(self.device, self.torch_dtype(dtype))
        # a C-order copy: a cast broadcast view keeps odd strides, which every later op
        # would inherit (and run several times slower on)
        return torch.from_numpy(np.array(x, dtype, order="C")).to(self.device)

    def zeros(self, shape, dtype) -> torch.Tensor:
        return torch.zeros(shape, dtype=self.torch_dtype(dtype), device=self.device)

    def numpy(self, x) -> np.ndarray:
        return x.detach().cpu().numpy()

    def cat(self, parts):
        return torch.cat(parts)

    @contextlib.contextmanager
    def exact_float32(self):
        """float32 products in float32 on CUDA: torch's default lets cuDNN convolutions
        (and may let matmuls) round inputs to TF32's 10-bit mantissa, 1e-3 errors that
        would flip far more spikes than float32's own rounding. Restored afterwards."""
        if self.device.type != "cuda":
            yield
            return
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved

    def rint_int(self, x) -> torch.Tensor:
        return torch.round(x).to(torch.int64)     # half to even, as numpy's rint

    def peak(self, x) -> float:
        return float(x.abs().max()) if x.numel() else 0.0


def _dense_is_faster(op: ConvOp, dtype) -> bool:
    """Whether one GEMM with the conv's equivalent matrix should beat the conv kernel."""
    entries = op.size * op.in_size
    taps = int(np.prod(op.weight.shape[1:]))
    return entries <= CONV_MATRIX_LIMIT and entries <= DENSE_WORK_RATIO[dtype] * op.size * taps


class _Conv2d:
    """x -> conv2d(x) with the op's geometry (asymmetric padding padded explicitly)."""

    def __init__(self, op: ConvOp, weight, arrays):
        self.weight = arrays.array(weight, weight.dtype)
        (pt, pb), (pl, pr) = op.padding
        self.pad = (pt, pl) if (pt, pl) == (pb, pr) else (0, 0)
        self.explicit_pad = None if (pt, pl) == (pb, pr) else (pl, pr, pt, pb)
        self.in_shape = tuple(op.in_shape)
        self.stride, self.dilation, self.groups = tuple(op.stride), tuple(op.dilation), op.groups

    def __call__(self, x):
        x = x.reshape((x.shape[0],) + self.in_shape)
        if self.explicit_pad:
            x = F.pad(x, self.explicit_pad)
        rows = F64_CONV_ROWS if x.dtype == torch.float64 else x.shape[0]
        parts = [F.conv2d(x[i:i + rows], self.weight, padding=self.pad, stride=self.stride,
                          dilation=self.dilation, groups=self.groups)
                 for i in range(0, x.shape[0], rows)]
        y = parts[0] if len(parts) == 1 else torch.cat(parts)
        # oneDNN may hand back another memory layout; later ops want rows of C-order values
        return y.contiguous().reshape(y.shape[0], -1)


def _matrix_product(matrix, arrays, dtype):
    if hasattr(matrix, "toarray") and np.prod(matrix.shape) > DENSE_MATRIX_LIMIT:
        csr = matrix.tocsr().astype(dtype)
        m = torch.sparse_csr_tensor(torch.from_numpy(csr.indptr.astype(np.int64)),
                                    torch.from_numpy(csr.indices.astype(np.int64)),
                                    torch.from_numpy(csr.data), size=csr.shape).to(arrays.device)
        return lambda x: torch.sparse.mm(m, x.T).T
    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    mt = arrays.array(dense.T, dtype)
    return lambda x: x @ mt


def product(op: SynapticOp, weight, arrays, dtype):
    """``x -> W x`` for a chunk x of shape (rows, in_size), in ``dtype``; ``weight`` in the
    op's layout (None: the op's float weights)."""
    if isinstance(op, ScaleOp):
        scale = arrays.array(np.asarray(op.scale if weight is None else weight), dtype)
        return lambda x: x * scale
    if is_depthwise(op):
        return DepthwiseTaps(op, np.asarray(op.weight if weight is None else weight), arrays, dtype)
    if isinstance(op, ConvOp) and not _dense_is_faster(op, np.dtype(dtype)):
        return _Conv2d(op, np.asarray(op.weight if weight is None else weight, dtype), arrays)
    return _matrix_product(op.matrix() if weight is None else op.matrix(weight), arrays, dtype)


@FLOAT_RUNNERS.register(DenseOp, ScaleOp, ConvOp)
class SynapseFloat(reference_shared.SynapseFloat):
    product = staticmethod(product)


@FIXED_RUNNERS.register(DenseOp, ScaleOp, ConvOp)
class SynapseFixed:
    """Lava's bit-accurate synapses (as the numpy engine's), products on torch."""
    stateless = True

    def __init__(self, op: SynapticOp, n, fixed: fxp.FixedProgram, arrays: TorchArrays):
        p: fxp.FixedWeights = fixed.params[op.name]
        self.arrays, self.exp, self.wrap = arrays, p.weight_exp, p.wrap_bits
        weight = p.weight.astype(np.int64)
        self.apply = product(op, weight.astype(np.float64), arrays, np.float64)
        self.bound = row_bound(op, weight)
        self.op, self.n, self.fixed = op, n, fixed
        self.int64 = None        # the numpy runner, built if a chunk ever leaves the exact range

    def step(self, x):
        largest = self.arrays.peak(x) * self.bound     # bounds every |W x|
        if largest >= EXACT_LIMIT:
            if self.int64 is None:
                self.int64 = NumpySynapseFixed(self.op, self.n, self.fixed, None)
            return self.arrays.array(self.int64.step(self.arrays.numpy(x)), np.int64)
        a = self.apply(x.to(torch.float64)).to(torch.int64)   # exact integer sums
        a = a << self.exp if self.exp > 0 else a >> -self.exp
        return fxp.wrap_signed(a, self.wrap) if needs_wrap(largest, self.exp, self.wrap) else a
