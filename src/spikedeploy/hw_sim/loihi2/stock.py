"""Run a Loihi 2 Program on Lava's stock processes (``fixed_pt``). Imported in the Lava worker.

The network is built by :data:`.stock_builders.STOCK_BUILDERS` through the
same compiler loop as our own processes (:func:`..lava_compiler.run_program`),
so sources, sinks, windows and alignment are shared; only the processes
differ. Populations with a recurrent synapse are checked to be silent in the
step before each sample (:func:`..lava_compiler.check_quiet`).
"""
from __future__ import annotations

from ...compat import lava_py311  # noqa: F401  (must precede any Lava import)
from lava.proc.dense.process import DelayDense
from lava.proc.lif.process import LIFReset

from ...ir.ops import DelayOp
from ..lava_compiler import LavaProcesses, run_program
from .stock_builders import STOCK_BUILDERS


class StockProcesses(LavaProcesses):
    """Lava's stock process classes the stock builders instantiate."""

    LIFReset = LIFReset
    DelayDense = DelayDense


def recurrent_populations(program) -> list[str]:
    return [name for name, op in program.ops.items() if op.recurrent]


def run_stock(program, data, fixed, record) -> tuple[dict, int]:
    """(records aligned to input steps, latency) of the stock-process network."""
    record = [name for name in record if not isinstance(program.ops[name], DelayOp)]
    return run_program(program, data, "fixed", fixed, record, STOCK_BUILDERS, StockProcesses(),
                       quiet=tuple(recurrent_populations(program)))
