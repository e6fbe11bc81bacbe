"""Lowering a NIR graph to a Program: one rule per NIR primitive, one loop.

:data:`LOWERINGS` maps a NIR node type to a :class:`Lowering`: the function
that turns the node into a typed op (:mod:`.ops`), the op class it produces
(so the registry-coverage test knows every op type a graph can contain), and
optionally the input the node takes when it says so itself (used to drop the
batch/time axes nirtorch's exporters leave on Input nodes). :func:`lower`
flattens, orders, lowers node by node with :func:`lower_ops` and folds
biases; ``spikedeploy check`` calls :func:`lower_ops` in its collecting mode,
so both walk the graph with the same code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import nir
import numpy as np

from ..errors import SpikedeployError, UnsupportedError, first_line
from .conv_geometry import ConvGeometry
from .graph import FlatGraph, flatten_graph, node_shape
from .load import graph_dt
from .ops import (ConvOp, DelayOp, DenseOp, InputOp, NeuronOp, Op, OutputOp, Program, ReshapeOp,
                  ScaleOp, ThresholdOp)
from .passes import fold_biases
from .producers import Note, input_shape
from .semantics import neuron_params, threshold_params


@dataclass(frozen=True)
class Lowering:
    """How one NIR primitive becomes an op.

    ``rule(name, node, in_shape, dt) -> op``; ``produces``: the op class it
    returns; ``takes(node)``: the input shape the node states itself (a flat
    size as a 1-tuple, or (C, None, None) when only channels are known), None
    if it states none.
    """
    rule: Callable[[str, object, tuple, float], Op]
    produces: type
    takes: Callable[[object], tuple | None] = lambda node: None


def _ints(value, name, field_name, count: int) -> tuple:
    """``count`` ints from an int or a sequence (an int is repeated)."""
    a = np.atleast_1d(np.asarray(value)).astype(np.int64).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, count)
    if a.size != count:
        wanted = "one int" if count == 1 else "an int or a pair"
        raise UnsupportedError(name, field_name, f"expected {wanted}, got {value!r}")
    return tuple(int(v) for v in a)


def _groups(node) -> int:
    return int(np.asarray(node.groups).item()) if node.groups is not None else 1


def _bias(name, node, size: int) -> np.ndarray | None:
    bias = getattr(node, "bias", None)
    if bias is None:
        return None
    bias = np.asarray(bias, np.float64)
    if bias.size not in (1, size):
        raise UnsupportedError(name, "bias", f"has {bias.size} values, expected one per "
                               f"output ({size}) or a single value")
    return np.broadcast_to(bias.reshape(-1) if bias.size == size else bias.reshape(()),
                           (size,)).copy()


# --- per-primitive rules --------------------------------------------------------------

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
    return DenseOp(name, (w.shape[0],), weight=w, bias=_bias(name, node, w.shape[0]))


def _affine_takes(node):
    w = np.asarray(node.weight)
    return (int(w.shape[1]),) if w.ndim == 2 else None


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


def _padding(name, padding, kernel, dilation, stride) -> tuple:
    """((top, bottom), (left, right)) from NIR's int, pair, 'same' or 'valid'."""
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO":
        padding = padding.item()
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise SpikedeployError(f"node '{name}': padding must be 'same', 'valid' or ints")
        if stride != (1, 1):
            raise UnsupportedError(name, "padding", "'same' padding with stride > 1 is undefined")
        pads = []
        for k, d in zip(kernel, dilation):     # PyTorch's convention: the extra pixel goes after
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    ph, pw = _ints(padding, name, "padding", 2)
    return ((ph, ph), (pw, pw))


def _conv_op(name, geometry: ConvGeometry, weight, bias, pool="") -> ConvOp:
    try:
        out_shape = geometry.out_shape
    except SpikedeployError as exc:
        raise SpikedeployError(f"node '{name}': {exc}")
    return ConvOp(name, out_shape, weight=weight, bias=bias, in_shape=geometry.in_shape,
                  stride=geometry.stride, padding=geometry.padding, dilation=geometry.dilation,
                  groups=geometry.groups, pool=pool)


def _lower_conv2d(name, node, in_shape, dt):
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 4:
        raise UnsupportedError(name, "weight", f"expected (C_out, C_in/groups, kH, kW), got {w.shape}")
    groups = _groups(node)
    cin, h, wd = _spatial_in_shape(name, node, in_shape, w.shape[1] * groups)
    if cin != w.shape[1] * groups or w.shape[0] % groups:
        raise SpikedeployError(
            f"node '{name}': weight {w.shape} with groups={groups} does not fit {cin} input channels")
    stride = _ints(node.stride, name, "stride", 2)
    dilation = _ints(node.dilation, name, "dilation", 2)
    padding = _padding(name, node.padding, w.shape[2:], dilation, stride)
    geometry = ConvGeometry((cin, h, wd), w.shape[0], tuple(w.shape[2:]), stride, padding,
                            dilation, groups)
    return _conv_op(name, geometry, w, _bias(name, node, w.shape[0]))


def _conv2d_takes(node):
    w = np.asarray(node.weight)
    if w.ndim != 4:
        return None
    channels = int(w.shape[1]) * _groups(node)
    spatial = getattr(node, "input_shape", None)
    if spatial is not None and np.size(spatial) == 2:
        return (channels,) + tuple(int(s) for s in np.atleast_1d(spatial))
    return (channels, None, None)    # sinabs/Norse write input_shape=None


def _lower_conv1d(name, node, in_shape, dt):
    """Conv1d as a Conv2d of height 1: input (C, L) -> (C, 1, L), kernel (.., k) -> (.., 1, k)."""
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 3:
        raise UnsupportedError(name, "weight", f"expected (C_out, C_in/groups, k), got {w.shape}")
    cin = w.shape[1] * _groups(node)
    size = int(np.prod(in_shape))
    if len(in_shape) == 3 and in_shape[1] == 1:        # already (C, 1, L)
        in_shape = (in_shape[0], in_shape[2])
    if len(in_shape) != 2:
        if size % cin:
            raise SpikedeployError(f"node '{name}': Conv1d with {cin} input channels cannot read "
                                   f"an input of shape {tuple(in_shape)}")
        in_shape = (cin, size // cin)
    padding = node.padding
    if not isinstance(padding, (str, bytes)) and not (
            isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO"):
        padding = (0, _ints(padding, name, "padding", 1)[0])
    as_2d = SimpleNamespace(weight=w[:, :, None, :], groups=node.groups, padding=padding,
                            stride=(1, _ints(node.stride, name, "stride", 1)[0]),
                            dilation=(1, _ints(node.dilation, name, "dilation", 1)[0]),
                            bias=getattr(node, "bias", None), input_shape=None)
    return _lower_conv2d(name, as_2d, (in_shape[0], 1, in_shape[1]), dt)


def _lower_pool(kind):
    def rule(name, node, in_shape, dt):
        k = _ints(node.kernel_size, name, "kernel_size", 2)
        stride = _ints(k if node.stride is None else node.stride, name, "stride", 2)
        pad = _ints(0 if node.padding is None else node.padding, name, "padding", 2)
        if len(in_shape) != 3:
            raise SpikedeployError(
                f"node '{name}': {type(node).__name__} needs a (C, H, W) input, got {tuple(in_shape)}")
        c = int(in_shape[0])
        value = 1.0 if kind == "sum" else 1.0 / (k[0] * k[1])
        geometry = ConvGeometry(tuple(int(s) for s in in_shape), c, k, stride,
                                ((pad[0], pad[0]), (pad[1], pad[1])), (1, 1), c)
        return _conv_op(name, geometry, np.full((c, 1) + k, value), None, pool=kind)
    return rule


def _per_element(name, field_name, value, in_shape) -> np.ndarray:
    """A scalar or per-element field as a flat array over the input's elements."""
    a = np.asarray(value)
    try:
        return np.broadcast_to(a.reshape(a.shape if a.size > 1 else ()), in_shape).reshape(-1).copy()
    except ValueError:
        if a.size != int(np.prod(in_shape)):
            raise SpikedeployError(f"node '{name}': {field_name} of shape {a.shape} does not fit "
                                   f"its input of shape {tuple(in_shape)}")
        return a.reshape(-1).copy()


def _lower_scale(name, node, in_shape, dt):
    s = _per_element(name, "scale", np.asarray(node.scale, np.float64), in_shape)
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
    steps = _per_element(name, "delay", rounded, in_shape)
    return DelayOp(name, tuple(in_shape), steps=steps.astype(np.int64))


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
        params = params.broadcast(tuple(in_shape))
    if int(np.prod(params.shape)) != size:
        raise SpikedeployError(
            f"node '{name}': {type(node).__name__} has shape {params.shape}, "
            f"its input has shape {in_shape}")
    return NeuronOp(name, tuple(params.shape), params=params)


def _lower_threshold(name, node, in_shape, dt):
    th = np.asarray(node.threshold, np.float64)
    if th.size == 1:
        th = np.broadcast_to(th.reshape(()), in_shape)
    if th.size != int(np.prod(in_shape)):
        raise SpikedeployError(f"node '{name}': threshold of shape {th.shape} does not fit "
                               f"its input of shape {tuple(in_shape)}")
    return ThresholdOp(name, tuple(th.shape), params=threshold_params(th), threshold=th.copy())


_NEURON = Lowering(_lower_neuron, NeuronOp)

# Registry: NIR node type -> its lowering. One entry per primitive.
LOWERINGS: dict[type, Lowering] = {
    nir.Input: Lowering(_lower_input, InputOp),
    nir.Output: Lowering(_lower_output, OutputOp),
    nir.Affine: Lowering(_lower_affine, DenseOp, _affine_takes),
    nir.Linear: Lowering(_lower_affine, DenseOp, _affine_takes),
    nir.Flatten: Lowering(_lower_flatten, ReshapeOp),
    nir.LIF: _NEURON,
    nir.CubaLIF: _NEURON,
    nir.IF: _NEURON,
    nir.LI: _NEURON,
    nir.CubaLI: _NEURON,
    nir.I: _NEURON,
    nir.Threshold: Lowering(_lower_threshold, ThresholdOp),
    nir.Conv2d: Lowering(_lower_conv2d, ConvOp, _conv2d_takes),
    nir.Conv1d: Lowering(_lower_conv1d, ConvOp),
    nir.SumPool2d: Lowering(_lower_pool("sum"), ConvOp),
    nir.AvgPool2d: Lowering(_lower_pool("avg"), ConvOp),
    nir.Scale: Lowering(_lower_scale, ScaleOp),
    nir.Delay: Lowering(_lower_delay, DelayOp),
}


# --- the loop ---------------------------------------------------------------------------

@dataclass
class Lowered:
    """What :func:`lower_ops` produced: the ops whose every input lowered (execution
    order), the incoming and outgoing shape of every node that lowered, the names
    that did not, and notes (things a foreign producer meant, not errors)."""
    ops: dict[str, Op] = field(default_factory=dict)
    shapes: dict[str, tuple] = field(default_factory=dict)   # name -> (in_shape | None, shape)
    failed: set = field(default_factory=set)
    notes: list[Note] = field(default_factory=list)


def _in_shape(name, shapes, preds) -> tuple:
    if not preds:
        raise SpikedeployError(f"node '{name}' has no input edge")
    found = {shapes[p] for p in preds if p in shapes}
    if len(found) > 1:
        raise SpikedeployError(
            f"node '{name}': incoming edges disagree on shape: {sorted(found)}")
    return found.pop()


def _as_problem(name: str, exc: Exception) -> UnsupportedError:
    if isinstance(exc, UnsupportedError):
        return exc
    text = first_line(exc, type(exc).__name__)
    return UnsupportedError(name, "shape" if "shape" in text else "value", text)


def _cycle(flat: FlatGraph, start: str, end: str) -> list[str]:
    """The nodes on a forward path start -> ... -> end (a cycle closed by end -> start)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier and end not in paths:
        node = frontier.pop(0)
        for succ in flat.successors(node):
            if succ not in paths and (node, succ) not in flat.recurrent:
                paths[succ] = paths[node] + [succ]
                frontier.append(succ)
    return paths.get(end, [end])


def lower_ops(flat: FlatGraph, dt: float, problems: list | None = None) -> Lowered:
    """Lower an ordered flat graph node by node.

    ``problems``: None raises the first failure; a list collects every
    failure as an :class:`UnsupportedError` (node, field, reason), skips the
    nodes downstream of a failed one (their input shape is unknown) and
    returns the part that lowered (``spikedeploy check``).
    """
    out = Lowered()
    shapes: dict[str, tuple] = {}
    for name in flat.order:
        node = flat.nodes[name]
        preds = flat.predecessors(name)
        forward = [p for p in preds if (p, name) not in flat.recurrent]
        try:
            entry = LOWERINGS.get(type(node))
            if entry is None:
                raise UnsupportedError(name, "type", f"NIR {type(node).__name__} has no lowering "
                                       "(not supported by any backend)")
            if any(p in out.failed for p in forward):
                out.failed.add(name)      # its input shape is unknown; the cause is upstream
                continue
            in_shape = None if isinstance(node, nir.Input) else _in_shape(name, shapes, forward)
            op = entry.rule(name, node, in_shape, dt)
            if type(op) is not entry.produces:    # the coverage test trusts `produces`
                raise RuntimeError(f"the lowering of {type(node).__name__} returned a "
                                   f"{type(op).__name__}, not the {entry.produces.__name__} it declares")
            if isinstance(op, InputOp):   # nirtorch's exporters keep a batch/time axis in front
                wanted = [LOWERINGS[type(c)].takes(c) for c in
                          (flat.nodes[s] for s in flat.successors(name)) if type(c) in LOWERINGS]
                op.shape, note = input_shape(name, op.shape, wanted)
                if note:
                    out.notes.append(note)
        except (SpikedeployError, ValueError, TypeError, IndexError) as exc:
            if problems is None:
                if isinstance(exc, SpikedeployError):
                    raise
                raise _as_problem(name, exc) from None
            problems.append(_as_problem(name, exc))
            out.failed.add(name)
            continue
        op.inputs = preds
        op.recurrent = {p for p in preds if (p, name) in flat.recurrent}
        op.nir_type = type(node).__name__
        if not op.in_shape and in_shape is not None:
            op.in_shape = tuple(in_shape)
        shapes[name] = op.shape
        out.shapes[name] = (in_shape, op.shape)
        out.ops[name] = op
    for op in out.ops.values():      # recurrent sources must match in size too
        for src in op.recurrent:
            if src in out.ops and out.ops[src].size != op.in_size:
                cycle = " -> ".join(_cycle(flat, op.name, src) + [op.name])
                exc = UnsupportedError(op.name, "recurrent", f"the cycle {cycle} feeds "
                                       f"{out.ops[src].size} values back from '{src}' into "
                                       f"'{op.name}', which takes {op.in_size}")
                if problems is None:
                    raise exc
                problems.append(exc)
                out.failed.add(op.name)
    if out.failed:   # keep the part whose every input lowered
        ops = {n: op for n, op in out.ops.items() if n not in out.failed}
        keep: dict[str, Op] = {}
        for name, op in ops.items():
            if all(s in keep for s in op.inputs if s not in op.recurrent) and \
                    all(s in ops for s in op.recurrent):
                keep[name] = op
        out.ops = {n: op for n, op in keep.items() if all(s in keep for s in op.inputs)}
    return out


def lower(graph: nir.NIRGraph | FlatGraph, dt: float | None = None) -> Program:
    """NIR graph -> Program (flatten, order, shape-check, discretise, fold biases)."""
    flat = graph if isinstance(graph, FlatGraph) else flatten_graph(graph)
    dt = graph_dt(flat.metadata, dt)
    lowered = lower_ops(flat, dt)
    program = Program(lowered.ops, list(flat.inputs), list(flat.outputs), dt, flat.metadata)
    fold_biases(program)
    return program
