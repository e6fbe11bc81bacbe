"""What both reference engines share: the array interface each implements, and the runners
written once against it (neurons, delays, pass-throughs, the input quantiser).

A runner is built once per op and run (``step``) once per time step (stateful runners) or
once per chunk of steps with the chunk's samples stacked on axis 0 (``stateless`` runners:
synapses, reshapes, inputs). The neuron updates themselves are the one definition in
:mod:`spikedeploy.ir.semantics` and :mod:`spikedeploy.ir.fixed_point`.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..ir import fixed_point as fxp
from ..ir.arrays import clone
from ..ir.ops import ConvOp, DelayOp, InputOp, NeuronOp, Op, OutputOp, ReshapeOp, ThresholdOp
from ..ir.semantics import NeuronParams, neuron_plan, neuron_step

EXACT_LIMIT = float(2 ** 52)   # float64 sums of integers below this are exact


class NumpyArrays:
    """The numpy engine's arrays: float64 (or float32) and int64 numpy arrays. Element types
    are numpy dtypes in both engines (the torch engine maps them to its own)."""

    name = "numpy"
    device = "cpu"

    def __init__(self, float_dtype: str = "float64"):
        self.float = np.dtype(float_dtype)
        self.int = np.dtype(np.int64)

    def array(self, x, dtype) -> np.ndarray:
        return np.array(x, dtype, order="C")     # a writable copy (state starts from it)

    def zeros(self, shape, dtype) -> np.ndarray:
        return np.zeros(shape, dtype)

    def numpy(self, x) -> np.ndarray:
        return x

    def cat(self, parts):
        return np.concatenate(parts)

    def rint_int(self, x) -> np.ndarray:
        return np.rint(x).astype(np.int64)

    def exact_float32(self):
        return contextlib.nullcontext()


def is_depthwise(op) -> bool:
    """A convolution with one kernel per channel (pooling, depthwise convs)."""
    c_in = op.in_shape[0]
    return isinstance(op, ConvOp) and op.groups == c_in == op.shape[0]


class DepthwiseTaps:
    """A depthwise convolution (pooling) as one strided slice per tap, multiplied and added:
    work in proportion to the real taps, for either engine's arrays."""

    def __init__(self, op: ConvOp, weight: np.ndarray, arrays, dtype):
        c, _, kh, kw = weight.shape
        self.arrays, self.dtype = arrays, dtype
        self.in_shape, self.out_shape = tuple(op.in_shape), tuple(op.shape)
        self.padding, self.stride, self.dilation = op.padding, op.stride, op.dilation
        w = np.asarray(weight, dtype).reshape(c, kh, kw)
        self.taps = [(a, b, None if np.all(w[:, a, b] == 1) else
                      arrays.array(w[:, a, b].reshape(1, c, 1, 1), dtype))
                     for a in range(kh) for b in range(kw)]

    def __call__(self, x):
        n = x.shape[0]
        c, h, w = self.in_shape
        (pt, pb), (pl, pr) = self.padding
        x = x.reshape(n, c, h, w)
        if pt or pb or pl or pr:
            padded = self.arrays.zeros((n, c, h + pt + pb, w + pl + pr), self.dtype)
            padded[:, :, pt:pt + h, pl:pl + w] = x
            x = padded
        _, oh, ow = self.out_shape
        (sh, sw), (dh, dw) = self.stride, self.dilation
        y = None
        for a, b, weight in self.taps:
            rows = slice(a * dh, a * dh + sh * (oh - 1) + 1, sh)
            part = x[:, :, rows, b * dw:b * dw + sw * (ow - 1) + 1:sw]
            part = part if weight is None else part * weight
            y = clone(part) if y is None else y.__iadd__(part)
        return y.reshape(n, -1)


def params_as(p: NeuronParams, arrays, dtype) -> NeuronParams:
    """``p``'s per-neuron values as the engine's arrays of ``dtype`` (TSM gains stay numpy:
    one scalar per step)."""
    values = {f.name: arrays.array(np.asarray(getattr(p, f.name)), dtype)
              for f in NeuronParams.per_neuron_fields() if getattr(p, f.name) is not None}
    gains = None if p.step_gain is None else np.asarray(p.step_gain).astype(dtype)
    return p.replace(step_gain=gains, **values)


class PassThrough:
    stateless = True

    def __init__(self, op: Op, n: int, fixed, arrays):
        pass

    def step(self, x):
        return x


class InputFixed:
    """Float inputs in the graph input's integer units."""
    stateless = True

    def __init__(self, op, n, fixed: fxp.FixedProgram, arrays):
        self.scale, self.arrays = fixed.scales[op.name], arrays

    def step(self, x):
        return self.arrays.rint_int(x * self.scale)


class Delay:
    """y[t] = x[t - d] per element (zero before), as a ring buffer."""
    stateless = False

    def __init__(self, op: DelayOp, n, fixed, arrays):
        self.arrays = arrays
        self.d = op.steps.astype(np.int64)
        self.depth = int(self.d.max(initial=0)) + 1
        self.buf = None
        self.t = 0
        self.cols = np.arange(op.size)

    def step(self, x):
        if self.buf is None:
            self.buf = np.zeros((self.depth,) + tuple(x.shape), self.arrays.numpy(x).dtype)
        self.buf[self.t % self.depth] = self.arrays.numpy(x)
        y = self.buf[(self.t - self.d) % self.depth, :, self.cols].T
        y = np.where(self.t >= self.d, y, 0).astype(self.buf.dtype)
        self.t += 1
        return self.arrays.array(y, y.dtype)


class NeuronFloat:
    """A population's float update (:func:`~spikedeploy.ir.semantics.neuron_step`): its
    parameters and state as the engine's arrays, its plan made once."""
    stateless = False
    update = staticmethod(neuron_step)
    make_plan = staticmethod(neuron_plan)

    def __init__(self, op: NeuronOp, n, fixed, arrays):
        self.start(op.params.flat(), (n, op.size), arrays, arrays.float)

    def start(self, p: NeuronParams, shape: tuple, arrays, dtype) -> None:
        self.p = params_as(p, arrays, dtype)
        self.plan = self.make_plan(self.p)
        self.u = arrays.zeros(shape, dtype)
        self.v = arrays.array(np.broadcast_to(p.v_init, shape), dtype)
        self.t = 0   # time step within the sample (TSM gains are per step)

    def step(self, a):
        self.u, self.v, out = self.update(self.u, self.v, a, self.p, self.t, self.plan)
        self.t += 1
        return out


class NeuronFixed(NeuronFloat):
    """A population's integer update (:func:`~spikedeploy.ir.fixed_point.neuron_step_fixed`)."""
    update = staticmethod(fxp.neuron_step_fixed)
    make_plan = staticmethod(fxp.fixed_neuron_plan)

    def __init__(self, op: NeuronOp, n, fixed: fxp.FixedProgram, arrays):
        self.start(fixed.params[op.name], (n, op.size), arrays, arrays.int)


class SynapseFloat:
    """y = W x (+ a bias no neuron could carry); ``product(op, weight, arrays, dtype)`` is the
    engine's way to compute ``x -> W x`` (a subclass per engine sets it)."""
    stateless = True
    product = None

    def __init__(self, op, n, fixed, arrays):
        bias = op.full_bias()
        self.bias = None if bias is None else arrays.array(bias, arrays.float)
        self.apply = self.product(op, None, arrays, arrays.float)

    def step(self, x):
        y = self.apply(x)
        return y if self.bias is None else y + self.bias


def register_shared(float_table, fixed_table) -> None:
    """Enter the shared runners into an engine's two tables."""
    float_table.register(InputOp, OutputOp, ReshapeOp)(PassThrough)
    fixed_table.register(OutputOp, ReshapeOp)(PassThrough)
    fixed_table.register(InputOp)(InputFixed)
    for table in (float_table, fixed_table):
        table.register(DelayOp)(Delay)
    float_table.register(NeuronOp, ThresholdOp)(NeuronFloat)
    fixed_table.register(NeuronOp, ThresholdOp)(NeuronFixed)
