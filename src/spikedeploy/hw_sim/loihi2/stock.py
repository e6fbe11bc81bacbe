"""Run a Loihi 2 Program on Lava's stock processes (``fixed_pt``). Imported in the Lava worker.

The network is built by :data:`.stock_builders.STOCK_BUILDERS` through the
same compiler loop as our own processes (:func:`..lava_compiler.run_program`),
so sources, sinks, windows and alignment are shared; only the processes
differ. Recurrent synapses and synapses behind a NIR Delay get their buffer
cleared from the host when a sample starts (:func:`synapses_to_clear`).
"""
from __future__ import annotations

from ...compat import lava_py311  # noqa: F401  (must precede any Lava import)
from lava.proc.dense.process import DelayDense
from lava.proc.lif.process import LIFReset

from ...ir.ops import DelayOp, Program
from ..lava_compiler import LavaProcesses, run_program
from ..timing import schedule
from .stock_builders import STOCK_BUILDERS


class StockProcesses(LavaProcesses):
    """Lava's stock process classes the stock builders instantiate."""

    LIFReset = LIFReset
    DelayDense = DelayDense


def synapses_to_clear(program: Program) -> dict[str, int]:
    """Synapses whose buffer can still hold the previous sample's spikes when a sample
    starts -> the window position before which the host zeroes it (the latency of the op it
    reads, whose real output starts there; see :func:`..lava_compiler.run_windows`):

    - a recurrent synapse: in its population's first step it would deliver what the
      population sent one step earlier, while the previous sample drained;
    - a synapse behind a NIR Delay (a DelayDense): it holds up to d steps of its source's
      spikes, the previous sample's tail included.
    Latency-equalising delays need nothing: what they hold arrives before the consumer
    restarts.
    """
    lat = schedule(program).latency
    recurrent = {program.through_copies(src).name
                 for op in program.ops.values() for src in op.recurrent}
    clear = {}
    for name, op in program.ops.items():
        if op.synaptic and (name in recurrent or isinstance(program.ops[op.inputs[0]], DelayOp)):
            clear[name] = lat[op.inputs[0]]
    return clear


def run_stock(program, data, fixed, record) -> tuple[dict, int]:
    """(records aligned to input steps, latency) of the stock-process network."""
    record = [name for name in record if not isinstance(program.ops[name], DelayOp)]
    return run_program(program, data, "fixed", fixed, record, STOCK_BUILDERS, StockProcesses(),
                       clear=synapses_to_clear(program))
