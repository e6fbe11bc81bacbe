"""Which Lava processes each op becomes: the :data:`BUILDERS` OpTable.

This module imports no Lava: a builder receives Lava's process classes from
the build context (:class:`LavaBuild.lava`, filled in by
:mod:`.lava_compiler` inside the Lava worker), so ``spikedeploy check`` reads
the same table, and each entry's static ``problem`` check, without starting
Lava.

Layout: every port carries a flat vector per sample in NIR's C order, as in
the reference simulator. Only Lava's Conv wants (X, Y, C) = (W, H, C): its
input is connected through the virtual ports ``reshape((C, H, W))`` then
``transpose((2, 1, 0))``, and its output goes back through the inverse
transpose and a flatten, so Flatten costs nothing and every other process
(including our custom neuron) stays layout-agnostic. The kernel is flipped
and transposed to Lava's true-convolution (C_out, kW, kH, C_in) layout.
Convolutions Lava's Conv cannot express (asymmetric padding, e.g. 'same'
with an even kernel) run as a Sparse synapse holding the equivalent matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import UnsupportedError
from ..ir import fixed_point as fxp
from ..ir.op_table import OpTable
from ..ir.ops import (ConvOp, DelayOp, DenseOp, InputOp, NeuronOp, Op, OutputOp, Program,
                      ReshapeOp, ScaleOp, SynapticOp, ThresholdOp)
from ..ir.passes import bias_problem
from ..ir.semantics import require_step_gains
from .timing import Schedule

GRADED_MESSAGE_BITS = 24


@dataclass(frozen=True)
class LavaLowering:
    """How one op type becomes Lava processes.

    ``build(b, op)`` creates the op's process (or None when the op needs
    none) and registers its ports in ``b``; ``problem(program, op)`` says,
    without Lava, why this op cannot be built (None when it can) -- the same
    check ``spikedeploy check`` reports.
    """
    build: Callable[["LavaBuild", Op], object]
    problem: Callable[[Program, Op], UnsupportedError | None] = lambda program, op: None


BUILDERS: OpTable[LavaLowering] = OpTable("Lava lowering", backend="lava")


def lava_problem(program: Program, op: Op) -> UnsupportedError | None:
    """Why the Lava compiler cannot build ``op`` (None if it can): the table, then the entry."""
    why = BUILDERS.problem(op)
    if why is not None:
        return UnsupportedError(op.name, "type", why, backend="lava")
    return BUILDERS[type(op)].problem(program, op)


class LavaBuild:
    """Holds the processes built so far and where each op's output comes out."""

    def __init__(self, lava, program: Program, precision: str, fixed: fxp.FixedProgram | None,
                 data: dict, num_steps: int, sched: Schedule):
        self.lava = lava                          # Lava's process classes (see lava_compiler)
        self.program, self.precision, self.fixed = program, precision, fixed
        self.data, self.num_steps, self.sched = data, num_steps, sched
        self.window = sched.window(num_steps)
        self.lat = sched.latency
        self.out_port: dict[str, object] = {}
        self.in_port: dict[str, object] = {}      # op -> InPort (None: output aliased to its input)
        self.adapt: dict[str, object] = {}        # op -> function(OutPort) -> port to connect
        self.delays_done: set = set()             # edges whose equalising delay a builder gave
        self.processes: list = []
        self.process_of: dict[str, object] = {}   # op -> its process (where it has one)

    @property
    def total_steps(self) -> int:
        n = next(iter(self.data.values())).shape[1]
        return n * self.window

    def binary_source(self, name: str) -> bool:
        op = self.program.ops[name]
        while op.copies_input:
            if len(op.inputs) != 1:
                return False
            op = self.program.ops[op.inputs[0]]
        if isinstance(op, NeuronOp):
            return op.params.spiking and not op.params.graded and not op.params.multi_spike
        if op.name in self.program.inputs:
            scale = self.fixed.scales[op.name] if self.precision == "fixed" else 1.0
            return binary_input(self.data[op.name], scale)
        return False

    def message_bits(self, op) -> int:
        # Several edges into one port are summed by Lava: the sum of spikes is graded.
        binary = len(op.inputs) == 1 and self.binary_source(op.inputs[0])
        return 0 if binary else GRADED_MESSAGE_BITS

    def shift(self, shape, delays, name):
        proc = self.lava.Shift(shape=shape, delays=delays, name=name)
        self.processes.append(proc)
        return proc

    def fixed_weights(self, op) -> fxp.FixedWeights:
        return self.fixed.params[op.name]


def binary_input(x: np.ndarray, scale: float = 1.0) -> bool:
    """Whether inputs (times their fixed-point scale) are 0/1 spikes: 1-bit messages."""
    return bool(scale == 1.0 and np.all((x == 0) | (x == 1)))


def input_stream(x: np.ndarray, window: int, scale: float | None) -> np.ndarray:
    """(T, N, size) inputs -> a source's (size, N * window) stream: each sample at the start
    of its window, zeros after; in fixed point times the input's integer scale."""
    steps, n, size = x.shape
    stream = np.zeros((size, n, window))
    stream[:, :, :steps] = x.transpose(2, 1, 0)
    if scale is not None:
        stream = np.round(stream * scale)
    return stream.reshape(size, n * window)


def _build_input(b: LavaBuild, op: InputOp):
    scale = b.fixed.scales[op.name] if b.precision == "fixed" else None
    proc = b.lava.SourceBuffer(data=input_stream(b.data[op.name], b.window, scale))
    b.out_port[op.name] = proc.s_out
    return proc


def _synapse_problem(program: Program, op: Op) -> UnsupportedError | None:
    why = bias_problem(program, op)
    return None if why is None else UnsupportedError(op.name, "bias", why, backend="lava")


def _build_dense(b: LavaBuild, op: DenseOp):
    bits = b.message_bits(op)
    if b.precision == "fixed":
        p = b.fixed_weights(op)
        proc = b.lava.Dense(weights=p.weight.astype(np.int32), weight_exp=p.weight_exp,
                            num_weight_bits=8, num_message_bits=bits, name=op.name)
    else:
        proc = b.lava.Dense(weights=op.weight, num_message_bits=bits, name=op.name)
    b.in_port[op.name] = proc.s_in
    b.out_port[op.name] = proc.a_out
    return proc


def _build_sparse(b: LavaBuild, op: SynapticOp):
    """Any synaptic op as Lava's Sparse synapse holding its equivalent matrix."""
    bits = b.message_bits(op)
    if b.precision == "fixed":
        p = b.fixed_weights(op)
        m = op.matrix(p.weight.astype(np.int64)).astype(np.int32).tocsr()
        proc = b.lava.Sparse(weights=m, weight_exp=p.weight_exp, num_weight_bits=8,
                             num_message_bits=bits, name=op.name)
    else:
        proc = b.lava.Sparse(weights=op.matrix().tocsr(), num_message_bits=bits, name=op.name)
    b.in_port[op.name] = proc.s_in
    b.out_port[op.name] = proc.a_out
    return proc


def lava_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch cross-correlation (Co, Ci, kH, kW) -> Lava convolution (Co, kW, kH, Ci)."""
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def _build_conv(b: LavaBuild, op: ConvOp):
    if not op.lava_native:
        return _build_sparse(b, op)
    cin, h, w = op.in_shape
    if b.precision == "fixed":
        kernel = lava_kernel(b.fixed_weights(op).weight.astype(np.int32))
    else:
        kernel = lava_kernel(op.weight.astype(np.float64))
    (pt, _), (pl, _) = op.padding
    proc = b.lava.Conv(weight=kernel, input_shape=(w, h, cin), padding=(pl, pt),
                       stride=(op.stride[1], op.stride[0]),
                       dilation=(op.dilation[1], op.dilation[0]),
                       groups=op.groups, num_message_bits=b.message_bits(op), name=op.name)
    b.in_port[op.name] = proc.s_in
    b.adapt[op.name] = lambda port: port.reshape((cin, h, w)).transpose((2, 1, 0))
    b.out_port[op.name] = proc.a_out.transpose((2, 1, 0)).reshape((op.size,))
    return proc


def _build_neuron(b: LavaBuild, op: NeuronOp):
    require_step_gains(op.params, b.num_steps, op.name, backend="lava")
    params = b.fixed.params[op.name] if b.precision == "fixed" else op.params.flat()
    proc = b.lava.WindowedNeuron(shape=(op.size,), params=params, window=b.window,
                                 latency=b.lat[op.name], num_steps=b.num_steps, name=op.name)
    b.in_port[op.name] = proc.a_in
    b.out_port[op.name] = proc.s_out
    return proc


def _build_delay(b: LavaBuild, op: DelayOp):
    proc = b.lava.Shift(shape=(op.size,), delays=op.steps, name=op.name)
    b.in_port[op.name] = proc.a_in
    b.out_port[op.name] = proc.s_out
    return proc


def _build_passthrough(b: LavaBuild, op: Op):
    # Flatten / Output: no process when there is one plain input (the layout is flat C order
    # everywhere); several inputs are summed by a Shift with no delay.
    src = op.inputs[0]
    if len(op.inputs) == 1 and not op.recurrent and (src, op.name) not in b.sched.edge_delay:
        b.out_port[op.name] = b.out_port[src]
        b.in_port[op.name] = None
        return None
    return _build_delay(b, DelayOp(op.name, op.shape, steps=np.zeros(op.size, np.int64)))


# Registry: op type -> Lava lowering. One entry per op type (tests/test_architecture.py).
BUILDERS[InputOp] = LavaLowering(_build_input)
BUILDERS[DenseOp] = LavaLowering(_build_dense, _synapse_problem)
BUILDERS[ScaleOp] = LavaLowering(_build_sparse, _synapse_problem)
BUILDERS[ConvOp] = LavaLowering(_build_conv, _synapse_problem)
BUILDERS[NeuronOp] = BUILDERS[ThresholdOp] = LavaLowering(_build_neuron)
BUILDERS[DelayOp] = LavaLowering(_build_delay)
BUILDERS[ReshapeOp] = BUILDERS[OutputOp] = LavaLowering(_build_passthrough)
