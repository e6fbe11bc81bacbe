"""What a simulation returns, whichever backend ran it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SpikedeployError
from ..ir.fixed_point import FixedProgram
from ..ir.ops import InputOp, NeuronOp, OutputOp, Program

RECORDS = ("all", "layers", "outputs")


@dataclass
class SimResult:
    """Per-op outputs of one run over a batch, aligned to the input's steps.

    ``records[name]`` has shape (T, N, op.size): what op ``name`` emitted at
    each input time step (spikes as 0/1 -- int8 from the reference simulator --, or a
    graded value) for each sample.
    In fixed precision graded values are in the op's integer units, and
    ``fixed`` is the quantisation the run used (its scales convert them back;
    the energy report and the quantisation-error table read it from here).
    """

    program: Program
    records: dict[str, np.ndarray]
    backend: str                      # "reference" | "lava" | "snntorch"
    precision: str                    # "float" | "fixed"
    latency: int = 0                  # steps Lava's pipeline added (aligned away)
    fixed: FixedProgram | None = None   # the quantisation of a fixed-point run
    info: dict = field(default_factory=dict)   # e.g. Lava's wall-clock "seconds"
    voltages: dict[str, np.ndarray] = field(default_factory=dict)   # neuron -> (T, N, size) v

    def output(self, name: str | None = None) -> np.ndarray:
        """Output node's record reshaped to (T, N, *shape)."""
        name = name or self.program.outputs[0]
        rec = self.records[name]
        return rec.reshape(rec.shape[:2] + tuple(self.program.ops[name].shape))

    @property
    def num_steps(self) -> int:
        return next(iter(self.records.values())).shape[0]

    @property
    def num_samples(self) -> int:
        return next(iter(self.records.values())).shape[1]


def kept_ops(program: Program, record: str) -> list[str]:
    """The ops a run records: every op ("all"), the inputs, neuron layers and outputs
    ("layers", what spike counts, accuracy and comparisons read), or the outputs."""
    if record not in RECORDS:
        raise SpikedeployError(f"unknown record mode {record!r} ({'|'.join(RECORDS)})")
    if record == "outputs":
        return list(program.outputs)
    return [name for name, op in program.ops.items()
            if record == "all" or isinstance(op, (InputOp, NeuronOp, OutputOp))]
