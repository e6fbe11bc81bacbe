"""Lowering a flat NIR graph to a Program: typed ops in execution order.

Both the reference simulator and the Lava compiler consume a Program, so the
two backends start from the same discretised parameters. Each NIR primitive
has one entry in :data:`LOWERINGS`; backends register one runner per op type.

Data layout: every op's output is a flat vector per sample (NIR's C order
over the op's ``shape``, batch excluded). Flatten is pure bookkeeping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import nir
import numpy as np

from ..errors import SpikedeployError, UnsupportedError
from .graph import FlatGraph, flatten_graph, node_shape
from .load import graph_dt, metadata_value
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


@dataclass
class DenseOp(Op):
    """y = W x (+ bias, moved into the consuming neurons by fold_biases)."""
    weight: np.ndarray = None                     # (out_size, in_size) float64
    bias: np.ndarray | None = None
    in_shape: tuple = ()


@dataclass
class NeuronOp(Op):
    params: NeuronParams = None


@dataclass
class ThresholdOp(Op):
    threshold: np.ndarray = None


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


def _lower_flatten(name, node, in_shape, dt):
    nd = len(in_shape)
    start = node.start_dim % nd if nd else 0
    end = node.end_dim % nd if nd else 0
    # NIR's Flatten dims exclude the batch; NIR 0.x producers counted it.
    out = in_shape[:start] + (int(np.prod(in_shape[start:end + 1])),) + in_shape[end + 1:]
    return ReshapeOp(name, tuple(out))


def _lower_neuron(name, node, in_shape, dt):
    params = neuron_params(name, node, dt)
    if int(np.prod(params.shape)) != int(np.prod(in_shape)):
        raise SpikedeployError(
            f"node '{name}': {type(node).__name__} has shape {params.shape}, "
            f"its input has shape {in_shape}")
    return NeuronOp(name, tuple(params.shape), params=params)


def _lower_threshold(name, node, in_shape, dt):
    th = np.broadcast_to(np.asarray(node.threshold, np.float64), in_shape).copy()
    return ThresholdOp(name, in_shape, threshold=th)


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
    return op.weight.shape[1] if isinstance(op, DenseOp) else op.size


def fold_biases(program: Program) -> None:
    """Move each Affine bias into the input bias of the neurons it feeds.

    A bias is an input current; neurons receive it before the synaptic filter
    (see semantics). Lava's Dense has no bias, so a bias that does not feed a
    neuron has nowhere to go.
    """
    for op in program.ops.values():
        if not isinstance(op, DenseOp) or op.bias is None:
            continue
        if not np.any(op.bias):
            op.bias = None
            continue
        for consumer in program.consumers(op.name):
            if not isinstance(consumer, NeuronOp):
                raise UnsupportedError(
                    op.name, "bias",
                    f"an Affine bias is carried by the neuron it feeds, but this node "
                    f"feeds '{consumer.name}' ({consumer.nir_type}); use Linear or add a neuron")
            consumer.params.input_bias = consumer.params.input_bias + op.bias
        op.bias = None
