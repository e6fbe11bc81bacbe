"""Run a Loihi 2 Program on Lava's stock processes (``fixed_pt``). Imported in the Lava worker.

The network is built by :data:`.stock_builders.STOCK_BUILDERS` through the
same compiler loop as our own processes (:func:`..lava_compiler.run_program`),
so sources, sinks, windows and alignment are shared; only the processes
differ. Recurrent synapses get their buffer cleared from the host when their
population restarts for a sample (:func:`recurrent_synapses`).
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


def recurrent_synapses(program: Program) -> dict[str, int]:
    """Recurrent synaptic op -> the window position at which its population restarts (its
    latency): the step before which the host clears the synapse's buffer
    (see :func:`..lava_compiler.run_windows`)."""
    lat = schedule(program).latency
    clear = {}
    for name, op in program.ops.items():
        for src in op.recurrent:
            syn = program.ops[src]
            while not syn.synaptic and len(syn.inputs) == 1:
                syn = program.ops[syn.inputs[0]]
            clear[syn.name] = lat[name]
    return clear


def run_stock(program, data, fixed, record) -> tuple[dict, int]:
    """(records aligned to input steps, latency) of the stock-process network."""
    record = [name for name in record if not isinstance(program.ops[name], DelayOp)]
    return run_program(program, data, "fixed", fixed, record, STOCK_BUILDERS, StockProcesses(),
                       clear=recurrent_synapses(program))
