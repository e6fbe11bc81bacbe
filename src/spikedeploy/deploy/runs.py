"""Running one graph on a chosen backend, and saving what came out."""
from __future__ import annotations

import numpy as np
import nir

from ..errors import SpikedeployError
from ..fileio import write_atomically
from ..hw_sim.lava_runner import simulate_lava
from ..hw_sim.reference import simulate
from ..hw_sim.result import SimResult
from ..ir import fixed_point as fxp
from ..ir.program import NeuronOp, Program
from .inputs import InputBatch


def run_backend(graph: nir.NIRGraph, program: Program, batch: InputBatch, backend: str,
                precision: str, record: str = "all") -> SimResult:
    if backend == "reference":
        fixed = fxp.quantise(program, batch.input_scale) if precision == "fixed" else None
        return simulate(program, batch.x, precision, fixed, record=record)
    if backend == "lava":
        return simulate_lava(graph, batch.x, precision, input_scale=batch.input_scale,
                             record=record, program=program)
    raise SpikedeployError(f"unknown backend {backend!r} (lava|reference)")


def layer_names(program: Program) -> list[str]:
    """Neuron layers in execution order (what per-layer tables list)."""
    return [name for name, op in program.ops.items() if isinstance(op, NeuronOp)]


def spike_counts(result: SimResult) -> dict[str, int]:
    return {name: int(np.count_nonzero(result.records[name]))
            for name in layer_names(result.program) if name in result.records}


def save_records(path, result: SimResult) -> None:
    """``output``: (T, N, *output_shape); ``layer/<name>``: every recorded layer's (T, N, *shape)."""
    arrays = {"output": result.output()}
    for name, rec in result.records.items():
        op = result.program.ops[name]
        arrays[f"layer/{name}"] = rec.reshape(rec.shape[:2] + tuple(op.shape))
    def write(tmp):
        with open(tmp, "wb") as f:   # a file object: numpy would append .npz to a path
            np.savez_compressed(f, **arrays)
    write_atomically(path, write)
