"""Lowering a flat NIR graph to a Program: typed ops in execution order.

Both the reference simulator and the Lava compiler consume a Program, so the
two backends start from the same discretised parameters. Each NIR primitive
has one entry in :data:`LOWERINGS`; backends register one runner per op type.

Data layout: every op's output is a flat vector per sample (NIR's C order
over the op's ``shape``, batch excluded; (C, H, W) for 2-D maps). Flatten is
pure bookkeeping. Conv2d, SumPool2d and AvgPool2d become a :class:`ConvOp`
(pooling as a fixed depthwise convolution), Scale a :class:`ScaleOp`,
Threshold a memoryless neuron, Delay a :class:`DelayOp` in whole steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import nir
import numpy as np

from ..errors import SpikedeployError, UnsupportedError
from .graph import FlatGraph, flatten_graph, node_shape
from .load import graph_dt, metadata_value
from .producers import input_shape
from .semantics import NeuronParams, neuron_params


@dataclass
class Op:
    name: str
    shape: tuple                                  # output shape, batch excluded
    inputs: list[str] = field(default_factory=list)
    recurrent: set = field(default_factory=set)   # inputs read from step t-1
    nir_type: str = ""

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class InputOp(Op):
    pass


@dataclass
class OutputOp(Op):
    pass


@dataclass
class ReshapeOp(Op):
    """Flatten: the flat data is unchanged; only the logical shape moves."""


class LinearOp(Op):
    """Marker base of the synaptic (weighted, stateless, linear) ops.

    Every linear op can give its equivalent sparse matrix (out_size, in_size)
    over the flat C-order layout, and its bias as a full (out_size,) vector.
    In Lava each is one synaptic process, which delays its output one step.
    """

    def matrix(self, weight=None):   # pragma: no cover - abstract
        raise NotImplementedError

    def full_bias(self):
        return None

    def apply(self, x: np.ndarray, weight=None) -> np.ndarray:
        """y = M x for a batch x (N, in_size); ``weight`` overrides the op's weights."""
        return np.asarray((self.matrix(weight) @ x.T).T)


@dataclass
class DenseOp(LinearOp):
    """y = W x (+ bias, moved into the consuming neurons by fold_biases)."""
    weight: np.ndarray = None                     # (out_size, in_size) float64
    bias: np.ndarray | None = None
    in_shape: tuple = ()

    def matrix(self, weight=None):
        return self.weight if weight is None else weight

    def full_bias(self):
        return self.bias

    def apply(self, x, weight=None):
        w = self.weight if weight is None else weight
        return x @ w.T


@dataclass
class ScaleOp(LinearOp):
    """NIR Scale: y = s * x elementwise (a diagonal synapse in Lava)."""
    scale: np.ndarray = None                      # (size,) float64

    def matrix(self, weight=None):
        from scipy import sparse
        w = self.scale if weight is None else weight
        w = np.asarray(w)
        return sparse.diags(w.reshape(-1), format="csr", dtype=w.dtype)

    def apply(self, x, weight=None):
        return x * (self.scale if weight is None else weight)


@dataclass
class ConvOp(LinearOp):
    """2-D convolution (NIR Conv2d, or SumPool2d/AvgPool2d as a fixed depthwise one).

    Layout: input (C_in, H, W) and output (C_out, H_out, W_out), flat C order
    per sample, as NIR and PyTorch. ``weight`` is PyTorch's cross-correlation
    kernel (C_out, C_in/groups, kH, kW); padding is ((top, bottom), (left, right)).
    """
    weight: np.ndarray = None
    bias: np.ndarray | None = None                # (C_out,)
    in_shape: tuple = ()
    stride: tuple = (1, 1)
    padding: tuple = ((0, 0), (0, 0))
    dilation: tuple = (1, 1)
    groups: int = 1
    pool: str = ""                                # "sum" | "avg" for pooling nodes
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

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

    def _indices(self):
        """(rows, cols, kernel flat index) of every in-bounds tap."""
        if "idx" in self._cache:
            return self._cache["idx"]
        cout, cin_g, kh, kw = self.weight.shape
        cin, h, w = self.in_shape
        _, ho, wo = self.shape
        g_out = cout // self.groups
        co, ci, ky, kx, oy, ox = np.meshgrid(np.arange(cout), np.arange(cin_g), np.arange(kh),
                                             np.arange(kw), np.arange(ho), np.arange(wo),
                                             indexing="ij")
        iy = oy * self.stride[0] - self.padding[0][0] + ky * self.dilation[0]
        ix = ox * self.stride[1] - self.padding[1][0] + kx * self.dilation[1]
        ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        cin_abs = (co // g_out) * cin_g + ci
        rows = ((co * ho + oy) * wo + ox)[ok]
        cols = ((cin_abs * h + iy) * w + ix)[ok]
        kidx = (((co * cin_g + ci) * kh + ky) * kw + kx)[ok]
        self._cache["idx"] = (rows, cols, kidx)
        return self._cache["idx"]

    def matrix(self, weight=None):
        from scipy import sparse
        w = self.weight if weight is None else np.asarray(weight)
        key = ("m", id(weight))
        if key not in self._cache or weight is not None:
            rows, cols, kidx = self._indices()
            m = sparse.csr_matrix((w.reshape(-1)[kidx], (rows, cols)),
                                  shape=(self.size, int(np.prod(self.in_shape))))
            if weight is not None:
                return m
            self._cache[key] = m
        return self._cache[key]


@dataclass
class NeuronOp(Op):
    params: NeuronParams = None


@dataclass
class ThresholdOp(NeuronOp):
    """NIR Threshold, z = a > threshold: a stateless neuron (du = dv = 1, gain 1)."""
    threshold: np.ndarray = None


@dataclass
class DelayOp(Op):
    """NIR Delay: y[t] = x[t - d] per element, d in whole steps (0 before)."""
    steps: np.ndarray = None                      # (size,) int64


@dataclass
class Program:
    ops: dict[str, Op]                            # in execution order
    inputs: list[str]
    outputs: list[str]
    dt: float
    metadata: dict

    def consumers(self, name: str) -> list[Op]:
        return [op for op in self.ops.values() if name in op.inputs]

    def meta(self, key, default=None):
        return metadata_value(self.metadata, key, default)


def _in_shape(name, shapes, preds) -> tuple:
    if not preds:
        raise SpikedeployError(f"node '{name}' has no input edge")
    found = {shapes[p] for p in preds if p in shapes}
    if len(found) > 1:
        raise SpikedeployError(
            f"node '{name}': incoming edges disagree on shape: {sorted(found)}")
    return found.pop()


def _lower_input(name, node, in_shape, dt):
    shape = node_shape(node) or tuple(np.atleast_1d(node.input_type["input"]))
    return InputOp(name, tuple(int(s) for s in shape))


def _lower_output(name, node, in_shape, dt):
    return OutputOp(name, in_shape)


def _lower_affine(name, node, in_shape, dt):
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2:
        raise UnsupportedError(name, "weight", f"expected a 2-D matrix, got shape {w.shape}")
    if w.shape[1] != int(np.prod(in_shape)):
        raise SpikedeployError(
            f"node '{name}': weight expects {w.shape[1]} inputs, its input has shape {in_shape}")
    bias = getattr(node, "bias", None)
    bias = None if bias is None else np.broadcast_to(np.asarray(bias, np.float64), (w.shape[0],)).copy()
    return DenseOp(name, (w.shape[0],), weight=w, bias=bias, in_shape=in_shape)


def _pair(value, name, field_name) -> tuple:
    a = np.atleast_1d(np.asarray(value)).astype(np.int64).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2:
        raise UnsupportedError(name, field_name, f"expected an int or a pair, got {value!r}")
    return int(a[0]), int(a[1])


def _spatial_in_shape(name, node, in_shape, channels) -> tuple:
    """(C, H, W) of a 2-D op's input; a flat input takes its H, W from the node."""
    if len(in_shape) == 3:
        return tuple(int(s) for s in in_shape)
    spatial = getattr(node, "input_shape", None)
    if spatial is not None and channels is not None:
        c_h_w = (int(channels),) + tuple(int(s) for s in np.atleast_1d(spatial))
        if len(c_h_w) == 3 and int(np.prod(c_h_w)) == int(np.prod(in_shape)):
            return c_h_w
    raise SpikedeployError(
        f"node '{name}': {type(node).__name__} needs a (C, H, W) input, its input has shape "
        f"{tuple(in_shape)}")


def _conv_out(size, k, stride, pad, dil, name):
    out = (size + pad[0] + pad[1] - dil * (k - 1) - 1) // stride + 1
    if out < 1:
        raise SpikedeployError(f"node '{name}': kernel larger than its padded input")
    return int(out)


def _resolve_padding(name, padding, k, dil, stride):
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO":
        padding = padding.item()
        padding = padding.decode() if isinstance(padding, bytes) else padding
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise SpikedeployError(f"node '{name}': padding must be 'same', 'valid' or ints")
        if stride != (1, 1):
            raise UnsupportedError(name, "padding", "'same' padding with stride > 1 is undefined")
        pads = []
        for kk, dd in zip(k, dil):     # PyTorch's convention: the extra pixel goes after
            total = dd * (kk - 1)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    ph, pw = _pair(padding, name, "padding")
    return ((ph, ph), (pw, pw))


def _lower_conv2d(name, node, in_shape, dt):
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 4:
        raise UnsupportedError(name, "weight", f"expected (C_out, C_in/groups, kH, kW), got {w.shape}")
    groups = int(np.asarray(node.groups).item()) if node.groups is not None else 1
    cin, h, wd = _spatial_in_shape(name, node, in_shape, w.shape[1] * groups)
    if cin != w.shape[1] * groups or w.shape[0] % groups:
        raise SpikedeployError(
            f"node '{name}': weight {w.shape} with groups={groups} does not fit {cin} input channels")
    stride = _pair(node.stride, name, "stride")
    dil = _pair(node.dilation, name, "dilation")
    pad = _resolve_padding(name, node.padding, w.shape[2:], dil, stride)
    ho = _conv_out(h, w.shape[2], stride[0], pad[0], dil[0], name)
    wo = _conv_out(wd, w.shape[3], stride[1], pad[1], dil[1], name)
    bias = getattr(node, "bias", None)
    bias = None if bias is None else np.broadcast_to(np.asarray(bias, np.float64), (w.shape[0],)).copy()
    return ConvOp(name, (w.shape[0], ho, wo), weight=w, bias=bias, in_shape=(cin, h, wd),
                  stride=stride, padding=pad, dilation=dil, groups=groups)


def _lower_conv1d(name, node, in_shape, dt):
    """Conv1d as a Conv2d of height 1: input (C, L) -> (C, 1, L), kernel (.., k) -> (.., 1, k)."""
    from types import SimpleNamespace
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 3:
        raise UnsupportedError(name, "weight", f"expected (C_out, C_in/groups, k), got {w.shape}")
    groups = int(np.asarray(node.groups).item()) if node.groups is not None else 1
    cin = w.shape[1] * groups
    size = int(np.prod(in_shape))
    if len(in_shape) == 3 and in_shape[1] == 1:        # already (C, 1, L)
        in_shape = (in_shape[0], in_shape[2])
    if len(in_shape) != 2:
        if size % cin:
            raise SpikedeployError(f"node '{name}': Conv1d with {cin} input channels cannot read "
                                   f"an input of shape {tuple(in_shape)}")
        in_shape = (cin, size // cin)

    def one(value, field_name):
        a = np.atleast_1d(np.asarray(value)).astype(np.int64).reshape(-1)
        if a.size != 1:
            raise UnsupportedError(name, field_name, f"expected one int, got {value!r}")
        return int(a[0])

    padding = node.padding
    if not isinstance(padding, (str, bytes)) and not (
            isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO"):
        padding = (0, one(padding, "padding"))
    as_2d = SimpleNamespace(weight=w[:, :, None, :], groups=groups, padding=padding,
                            stride=(1, one(node.stride, "stride")),
                            dilation=(1, one(node.dilation, "dilation")),
                            bias=getattr(node, "bias", None), input_shape=None)
    return _lower_conv2d(name, as_2d, (in_shape[0], 1, in_shape[1]), dt)


def _lower_pool(kind):
    def rule(name, node, in_shape, dt):
        k = _pair(node.kernel_size, name, "kernel_size")
        stride = _pair(k if node.stride is None else node.stride, name, "stride")
        pad = _pair(0 if node.padding is None else node.padding, name, "padding")
        if len(in_shape) != 3:
            raise SpikedeployError(
                f"node '{name}': {type(node).__name__} needs a (C, H, W) input, got {tuple(in_shape)}")
        c, h, wd = in_shape
        value = 1.0 if kind == "sum" else 1.0 / (k[0] * k[1])
        w = np.full((c, 1) + k, value)
        padding = ((pad[0], pad[0]), (pad[1], pad[1]))
        ho = _conv_out(h, k[0], stride[0], padding[0], 1, name)
        wo = _conv_out(wd, k[1], stride[1], padding[1], 1, name)
        return ConvOp(name, (c, ho, wo), weight=w, in_shape=tuple(in_shape), stride=stride,
                      padding=padding, dilation=(1, 1), groups=c, pool=kind)
    return rule


def _lower_scale(name, node, in_shape, dt):
    s = np.asarray(node.scale, np.float64)
    try:
        s = np.broadcast_to(s.reshape(s.shape if s.size > 1 else ()), in_shape).reshape(-1).copy()
    except ValueError:
        if s.size != int(np.prod(in_shape)):
            raise SpikedeployError(f"node '{name}': scale of shape {s.shape} does not fit "
                                   f"its input of shape {tuple(in_shape)}")
        s = s.reshape(-1).copy()
    return ScaleOp(name, tuple(in_shape), scale=s)


def _lower_delay(name, node, in_shape, dt):
    d = np.asarray(node.delay, np.float64)
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise SpikedeployError(f"node '{name}': delay must be finite and non-negative")
    steps = d / dt
    rounded = np.round(steps)
    if np.any(np.abs(steps - rounded) > 1e-6 * np.maximum(1, rounded)):
        raise UnsupportedError(name, "delay", f"delays {d.reshape(-1)[:4]}... are not whole "
                               f"multiples of dt={dt}")
    try:
        rounded = np.broadcast_to(rounded.reshape(rounded.shape if rounded.size > 1 else ()),
                                  in_shape).reshape(-1)
    except ValueError:
        if rounded.size != int(np.prod(in_shape)):
            raise SpikedeployError(f"node '{name}': delay of shape {d.shape} does not fit "
                                   f"its input of shape {tuple(in_shape)}")
    return DelayOp(name, tuple(in_shape), steps=rounded.reshape(-1).astype(np.int64))


def _lower_flatten(name, node, in_shape, dt):
    nd = len(in_shape)
    start = node.start_dim % nd if nd else 0
    end = node.end_dim % nd if nd else 0
    # Flatten never moves data in the flat C-order layout: only the logical shape
    # changes. (NIR 0.x files counted the batch in start_dim; what follows a
    # Flatten is an Affine/Linear, which needs only the element count.)
    out = in_shape[:start] + (int(np.prod(in_shape[start:end + 1])),) + in_shape[end + 1:]
    return ReshapeOp(name, tuple(out))


def _lower_neuron(name, node, in_shape, dt):
    params = neuron_params(name, node, dt)
    size = int(np.prod(in_shape))
    if int(np.prod(params.shape)) == 1 and size != 1:   # scalar parameters: one per input
        params = _broadcast_params(params, tuple(in_shape))
    if int(np.prod(params.shape)) != size:
        raise SpikedeployError(
            f"node '{name}': {type(node).__name__} has shape {params.shape}, "
            f"its input has shape {in_shape}")
    return NeuronOp(name, tuple(params.shape), params=params)


def _broadcast_params(p: NeuronParams, shape) -> NeuronParams:
    import copy
    p = copy.copy(p)
    for key in ("du", "dv", "gain", "bias", "v_th", "v_reset", "v_init"):
        value = getattr(p, key)
        if value is not None:
            setattr(p, key, np.broadcast_to(np.asarray(value).reshape(()), shape).copy())
    return p


def _lower_threshold(name, node, in_shape, dt):
    th = np.asarray(node.threshold, np.float64)
    if th.size == 1:
        th = np.broadcast_to(th.reshape(()), in_shape)
    if th.size != int(np.prod(in_shape)):
        raise SpikedeployError(f"node '{name}': threshold of shape {th.shape} does not fit "
                               f"its input of shape {tuple(in_shape)}")
    shape = tuple(th.shape)
    one = np.ones(shape)
    # z = a > th is the generalised neuron with no memory: u = a, v = u, reset irrelevant.
    params = NeuronParams(du=one, dv=one.copy(), gain=one.copy(), bias=np.zeros(shape),
                          v_th=th.astype(np.float64).copy(), v_reset=np.zeros(shape),
                          v_init=np.zeros(shape))
    return ThresholdOp(name, shape, params=params, threshold=th.copy())


# Registry: NIR node type -> lowering to an Op. One entry per primitive.
LOWERINGS: dict[type, Callable] = {
    nir.Input: _lower_input,
    nir.Output: _lower_output,
    nir.Affine: _lower_affine,
    nir.Linear: _lower_affine,
    nir.Flatten: _lower_flatten,
    nir.LIF: _lower_neuron,
    nir.CubaLIF: _lower_neuron,
    nir.IF: _lower_neuron,
    nir.LI: _lower_neuron,
    nir.CubaLI: _lower_neuron,
    nir.I: _lower_neuron,
    nir.Threshold: _lower_threshold,
    nir.Conv2d: _lower_conv2d,
    nir.Conv1d: _lower_conv1d,
    nir.SumPool2d: _lower_pool("sum"),
    nir.AvgPool2d: _lower_pool("avg"),
    nir.Scale: _lower_scale,
    nir.Delay: _lower_delay,
}


def lower(graph: nir.NIRGraph | FlatGraph, dt: float | None = None) -> Program:
    """NIR graph -> Program (flatten, order, shape-check, discretise, fold biases)."""
    flat = graph if isinstance(graph, FlatGraph) else flatten_graph(graph)
    dt = graph_dt(flat.metadata, dt)
    ops: dict[str, Op] = {}
    shapes: dict[str, tuple] = {}
    for name in flat.order:
        node = flat.nodes[name]
        rule = LOWERINGS.get(type(node))
        if rule is None:
            raise UnsupportedError(name, "type", f"NIR {type(node).__name__} is not supported yet")
        preds = flat.predecessors(name)
        forward = [p for p in preds if (p, name) not in flat.recurrent]
        in_shape = None if isinstance(node, nir.Input) else _in_shape(name, shapes, forward)
        op = rule(name, node, in_shape, dt)
        if isinstance(op, InputOp):   # nirtorch's exporters keep a batch/time axis in front
            op.shape, _ = input_shape(name, op.shape, [flat.nodes[s] for s in flat.successors(name)])
        op.inputs = preds
        op.recurrent = {p for p in preds if (p, name) in flat.recurrent}
        op.nir_type = type(node).__name__
        shapes[name] = op.shape
        ops[name] = op
    for op in ops.values():  # recurrent sources must match in size too
        for src in op.recurrent:
            if ops[src].size != _expected_size(op):
                raise SpikedeployError(
                    f"node '{op.name}': recurrent input '{src}' has shape "
                    f"{ops[src].shape}, expected {op.shape}")
    program = Program(ops, list(flat.inputs), list(flat.outputs), dt, flat.metadata)
    fold_biases(program)
    return program


def _expected_size(op: Op) -> int:
    if isinstance(op, (DenseOp, ConvOp)):
        return int(np.prod(op.in_shape)) if isinstance(op, ConvOp) else op.weight.shape[1]
    return op.size


def fold_biases(program: Program) -> None:
    """Move each Affine/Conv bias into the input bias of the neurons it reaches.

    A bias is a constant input current; neurons receive it before the
    synaptic filter (see semantics). Lava's synapses have no bias, so it is
    carried by the neurons: through Flatten unchanged and through further
    linear ops (pooling, Scale, Linear) as M @ bias, which is exact because
    those ops are linear. Through a recurrent edge too: an op's value before
    step 0 is its response to the zero initial state, i.e. its bias (as in
    snnTorch's RLeaky). A bias that reaches an Output, a Delay or a
    Threshold-free sum with no neuron in between stays on its op: the
    reference simulator adds it, Lava refuses it (``bias_problem``).
    """
    for op in program.ops.values():
        if not isinstance(op, LinearOp):
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
    bias = op.full_bias() if isinstance(op, LinearOp) else None
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
        elif isinstance(consumer, LinearOp):
            why = _push_bias(program, consumer, np.asarray(consumer.matrix() @ bias).reshape(-1), plan)
        else:
            why = (f"it reaches '{consumer.name}' ({consumer.nir_type}) before any neuron; "
                   "Lava's synapses have no bias: use a node without bias or add a neuron")
        if why:
            return why
    return None
