"""The typed ops of a lowered Program: what each primitive *is*, backend-free.

An op class is spikedeploy's one extension point per primitive. It carries
the op's fields and its intrinsic maths (shape, linear map, whether it is a
synaptic hop); every backend keeps what it *does* with an op in an
:class:`~spikedeploy.ir.op_table.OpTable` keyed by the exact op class
(reference runners, Lava builders, quantisation rules, energy fan-out), and
``spikedeploy check`` derives its verdicts from those same tables.

Data layout: every op's output is a flat vector per sample (NIR's C order
over the op's ``shape``, batch excluded; (C, H, W) for 2-D maps). Flatten is
pure bookkeeping (:class:`ReshapeOp`). Conv2d, Conv1d, SumPool2d and
AvgPool2d become a :class:`ConvOp` (pooling as a fixed depthwise
convolution), Scale a :class:`ScaleOp`, Affine/Linear a :class:`DenseOp`,
every neuron primitive a :class:`NeuronOp` (Threshold a memoryless
:class:`ThresholdOp`), Delay a :class:`DelayOp` in whole steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import UnsupportedError
from ..metadata import DEFAULT_READOUT, READOUT, THRESHOLD_SCALE, metadata_value
from .conv_geometry import ConvGeometry
from .semantics import NeuronParams


@dataclass
class Op:
    name: str
    shape: tuple                                  # output shape, batch excluded
    inputs: list[str] = field(default_factory=list)
    recurrent: set = field(default_factory=set)   # inputs read from step t-1
    nir_type: str = ""
    in_shape: tuple = ()                          # shape of the (summed) input; () for inputs

    # A synaptic op multiplies its input by weights; in Lava it is one synaptic
    # process, which delays its output by one step (see hw_sim.timing).
    synaptic: ClassVar[bool] = False
    # The op's output is its (summed) input's values, unchanged (maybe later: Delay),
    # so they keep their fixed-point scale and stay spikes if they were.
    copies_input: ClassVar[bool] = False

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def in_size(self) -> int:
        """Values the op reads per sample (its inputs' summed vector)."""
        return int(np.prod(self.in_shape, dtype=np.int64)) if self.in_shape else self.size

    @property
    def max_delay(self) -> int:
        """The most steps by which the op's output lags its input (NIR Delay)."""
        return 0

    def full_bias(self) -> np.ndarray | None:
        """The constant the op adds to its output, as a (size,) vector (None: none)."""
        return None


@dataclass
class InputOp(Op):
    pass


@dataclass
class OutputOp(Op):
    copies_input: ClassVar[bool] = True


@dataclass
class ReshapeOp(Op):
    """Flatten: the flat data is unchanged; only the logical shape moves."""
    copies_input: ClassVar[bool] = True


class SynapticOp(Op):
    """Base of the synaptic ops: weighted, stateless, linear maps y = M x (+ bias).

    Each gives its equivalent sparse or dense matrix (out_size, in_size) over
    the flat C-order layout, its weights in its own layout, and its bias as a
    full (out_size,) vector (None when it has none). A bias lives in a field
    named ``bias``: ``passes.fold_biases`` sets it to None once neurons carry it.
    """

    synaptic: ClassVar[bool] = True

    @property
    def weights(self) -> np.ndarray:   # pragma: no cover - abstract
        raise NotImplementedError

    def matrix(self, weight=None):   # pragma: no cover - abstract
        """M (out_size, in_size); ``weight`` (in the op's own layout) overrides its weights."""
        raise NotImplementedError

    def scaled_weights(self, gain: np.ndarray) -> np.ndarray:   # pragma: no cover - abstract
        """The weights of the op whose outputs are multiplied by ``gain`` (out_size,), in the
        op's own layout (raises UnsupportedError where the layout cannot hold it)."""
        raise NotImplementedError

    def apply(self, x: np.ndarray, weight=None) -> np.ndarray:
        """y = M x for a batch x (N, in_size); ``weight`` overrides the op's weights."""
        return np.asarray((self.matrix(weight) @ x.T).T)


@dataclass
class DenseOp(SynapticOp):
    """NIR Affine / Linear: y = W x (+ bias, moved into the consuming neurons by fold_biases)."""
    weight: np.ndarray = None                     # (out_size, in_size) float64
    bias: np.ndarray | None = None

    @property
    def weights(self):
        return self.weight

    def matrix(self, weight=None):
        return self.weight if weight is None else weight

    def scaled_weights(self, gain):
        return gain[:, None] * self.weight

    def full_bias(self):
        return self.bias

    def apply(self, x, weight=None):
        w = self.weight if weight is None else weight
        return x @ w.T


@dataclass
class ScaleOp(SynapticOp):
    """NIR Scale: y = s * x elementwise (a diagonal synapse in Lava)."""
    scale: np.ndarray = None                      # (size,) float64

    @property
    def weights(self):
        return self.scale

    def matrix(self, weight=None):
        from scipy import sparse
        w = np.asarray(self.scale if weight is None else weight)
        return sparse.diags(w.reshape(-1), format="csr", dtype=w.dtype)

    def scaled_weights(self, gain):
        return gain * self.scale

    def apply(self, x, weight=None):
        return x * (self.scale if weight is None else weight)


@dataclass
class ConvOp(SynapticOp):
    """2-D convolution (NIR Conv2d/Conv1d, or SumPool2d/AvgPool2d as a fixed depthwise one).

    Layout: input (C_in, H, W) and output (C_out, H_out, W_out), flat C order
    per sample, as NIR and PyTorch. ``weight`` is PyTorch's cross-correlation
    kernel (C_out, C_in/groups, kH, kW); padding is ((top, bottom), (left, right)).
    Where each tap reads is :class:`~spikedeploy.ir.conv_geometry.ConvGeometry`.
    """
    weight: np.ndarray = None
    bias: np.ndarray | None = None                # (C_out,)
    stride: tuple = (1, 1)
    padding: tuple = ((0, 0), (0, 0))
    dilation: tuple = (1, 1)
    groups: int = 1
    pool: str = ""                                # "sum" | "avg" for pooling nodes
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self):
        # the cached matrix is derived data, often larger than the op: not pickled (shards)
        return {**self.__dict__, "_cache": {}}

    @property
    def geometry(self) -> ConvGeometry:
        return ConvGeometry(tuple(self.in_shape), int(self.weight.shape[0]),
                            tuple(self.weight.shape[2:]), tuple(self.stride),
                            tuple(self.padding), tuple(self.dilation), int(self.groups))

    @property
    def weights(self):
        return self.weight

    @property
    def lava_native(self) -> bool:
        """Whether Lava's Conv process can run it (symmetric padding, int8 parameters);
        otherwise Lava runs the equivalent sparse matrix."""
        (pt, pb), (pl, pr) = self.padding
        values = list(self.weight.shape[2:]) + list(self.stride) + [pt, pl] + \
            list(self.dilation) + [self.groups]
        return pt == pb and pl == pr and max(values) <= 127

    def full_bias(self):
        if self.bias is None:
            return None
        c, h, w = self.shape
        return np.repeat(np.asarray(self.bias, np.float64), h * w)

    def scaled_weights(self, gain):
        per_channel = gain.reshape(self.shape[0], -1)
        if not np.allclose(per_channel, per_channel[:, :1], rtol=1e-12, atol=0):
            raise UnsupportedError(self.name, "gain", "the neurons a convolution feeds must share "
                                   "one input gain per channel (the kernel is shared across "
                                   "positions)")
        return per_channel[:, 0][:, None, None, None] * self.weight

    def matrix(self, weight=None):
        from scipy import sparse
        if "taps" not in self._cache:
            self._cache["taps"] = self.geometry.taps()
        rows, cols, kidx = self._cache["taps"]
        w = self.weight if weight is None else np.asarray(weight)
        if weight is None and "matrix" in self._cache:
            return self._cache["matrix"]
        m = sparse.csr_matrix((w.reshape(-1)[kidx], (rows, cols)), shape=(self.size, self.in_size))
        if weight is None:
            self._cache["matrix"] = m
        return m


@dataclass
class NeuronOp(Op):
    """A population of the generalised neuron of :mod:`spikedeploy.ir.semantics`."""
    params: NeuronParams = None


@dataclass
class ThresholdOp(NeuronOp):
    """NIR Threshold, z = a > threshold: a stateless neuron (du = dv = 1, gain 1)."""
    threshold: np.ndarray = None


@dataclass
class DelayOp(Op):
    """NIR Delay: y[t] = x[t - d] per element, d in whole steps (0 before)."""
    steps: np.ndarray = None                      # (size,) int64
    copies_input: ClassVar[bool] = True

    @property
    def max_delay(self) -> int:
        return int(self.steps.max(initial=0))


# Every op type a lowering can produce (the registry-coverage test walks these).
OP_TYPES: tuple[type, ...] = (InputOp, OutputOp, ReshapeOp, DenseOp, ScaleOp, ConvOp, NeuronOp,
                              ThresholdOp, DelayOp)


@dataclass
class Program:
    ops: dict[str, Op]                            # in execution order
    inputs: list[str]
    outputs: list[str]
    dt: float
    metadata: dict

    def consumers(self, name: str) -> list[Op]:
        return [op for op in self.ops.values() if name in op.inputs]

    def through_copies(self, name: str) -> Op:
        """The op whose values reach ``name`` through single-input copies (Flatten, Delay,
        Output): ``name``'s own op when it computes something."""
        op = self.ops[name]
        while op.copies_input and len(op.inputs) == 1:
            op = self.ops[op.inputs[0]]
        return op

    def meta(self, key, default=None):
        return metadata_value(self.metadata, key, default)

    @property
    def readout(self) -> str:
        """How the output is read (``spikedeploy.readout``; see :mod:`spikedeploy.readout`)."""
        return str(self.meta(READOUT, DEFAULT_READOUT))

    @property
    def threshold_scale(self) -> float:
        """Threshold guidance applied so far (export x run time)."""
        return float(self.meta(THRESHOLD_SCALE, 1.0))
