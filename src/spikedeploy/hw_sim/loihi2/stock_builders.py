"""Which of Lava's stock processes each op of a Loihi 2 Program becomes: :data:`STOCK_BUILDERS`.

Lava-free, like :mod:`..lava_builders` (the process classes arrive through
the build context), and fixed point only: the entries read the
:data:`~spikedeploy.ir.fixed_point.LOIHI2_FIXED` quantisation.

- Input: a RingBuffer source, as our own lowering; Flatten and Output: no
  process (ports carry flat C-order vectors).
- Dense, Scale, Conv: stock Dense, Sparse, Conv (as :mod:`..lava_builders`);
  where the schedule needs latency equalisation on the edge into the neuron,
  or a NIR Delay feeds the synapse, a DelayDense holding the op's matrix
  with per-synapse delays (the edge's delay per row, the Delay's per column)
  instead of our Shift process.
- Neurons: ``LIFReset`` with the population's one du, dv and vth, per-neuron
  bias mantissas at exponent 6, and a state reset every window at the step
  the sample's first input reaches it (``reset_offset``: Lava counts time
  steps from 1), so samples run back to back.
- Delay: no process; the synapse it feeds delays.
"""
from __future__ import annotations

import numpy as np

from ...ir import fixed_point as fxp
from ...ir.op_table import OpTable
from ...ir.ops import (ConvOp, DelayOp, DenseOp, InputOp, NeuronOp, Op, OutputOp, ReshapeOp,
                       ScaleOp, ThresholdOp)
from ..lava_builders import BUILDERS, LavaBuild, LavaLowering

STOCK_BUILDERS: OpTable[LavaLowering] = OpTable("Loihi 2 stock-process lowering", backend="loihi2")


def synapse_delays(b: LavaBuild, op: Op) -> np.ndarray | None:
    """Per-synapse delays (out, in) the op needs, or None when it needs none."""
    rows = np.zeros(op.size, np.int64)
    for cons in b.program.consumers(op.name):
        d = b.sched.edge_delay.get((op.name, cons.name), 0)
        if d:
            rows[:] = d
            b.delays_done.add((op.name, cons.name))
    cols = np.zeros(op.in_size, np.int64)
    src = b.program.ops[op.inputs[0]]
    if isinstance(src, DelayOp):
        cols = np.asarray(src.steps, np.int64).reshape(-1)
    if not rows.any() and not cols.any():
        return None
    return rows[:, None] + cols[None, :]


def _build_synapse(b: LavaBuild, op: Op):
    delays = synapse_delays(b, op)
    if delays is None:                 # the stock synapse our own lowering uses too
        return BUILDERS[type(op)].build(b, op)
    weights = np.asarray(op.matrix(b.fixed_weights(op).weight.astype(np.int64)).toarray()
                         if isinstance(op, (ScaleOp, ConvOp))
                         else b.fixed_weights(op).weight, np.int32)
    proc = b.lava.DelayDense(weights=weights, delays=delays.astype(int),   # Lava wants int
                             max_delay=int(delays.max()), weight_exp=0, num_weight_bits=8,
                             num_message_bits=b.message_bits(op), name=op.name)
    b.in_port[op.name] = proc.s_in
    b.out_port[op.name] = proc.a_out
    return proc


def lif_arguments(p, window: int, latency: int) -> dict:
    """LIFReset's arguments for an integer population ``p`` (one du, dv, vth)."""
    exp = fxp.LOIHI2_FIXED.bias_exp
    bias_mant = np.asarray(p.bias, np.int64) >> exp
    return dict(du=int(np.ravel(p.du)[0]), dv=int(np.ravel(p.dv)[0]),
                vth=int(np.ravel(p.v_th)[0]), bias_mant=bias_mant.astype(np.int32),
                bias_exp=exp, reset_interval=window,
                reset_offset=(latency + 1) % window)


def _build_lif(b: LavaBuild, op: NeuronOp):
    args = lif_arguments(b.fixed.params[op.name], b.window, b.lat[op.name])
    proc = b.lava.LIFReset(shape=(op.size,), name=op.name, **args)
    b.in_port[op.name] = proc.a_in
    b.out_port[op.name] = proc.s_out
    return proc


def _build_delay(b: LavaBuild, op: DelayOp):
    b.out_port[op.name] = b.out_port[op.inputs[0]]
    b.in_port[op.name] = None
    return None


STOCK_BUILDERS[InputOp] = BUILDERS[InputOp]              # a RingBuffer source
STOCK_BUILDERS[DenseOp] = STOCK_BUILDERS[ScaleOp] = STOCK_BUILDERS[ConvOp] = \
    LavaLowering(_build_synapse)
STOCK_BUILDERS[NeuronOp] = STOCK_BUILDERS[ThresholdOp] = LavaLowering(_build_lif)
STOCK_BUILDERS[DelayOp] = LavaLowering(_build_delay)
STOCK_BUILDERS[ReshapeOp] = BUILDERS[ReshapeOp]          # no process
STOCK_BUILDERS[OutputOp] = BUILDERS[OutputOp]
