"""Running one graph on a chosen backend, and saving what came out."""
from __future__ import annotations

import nir
import numpy as np

from ..errors import SpikedeployError
from ..fileio import in_memory, write_bytes
from ..hw_sim.lava_runner import simulate_lava
from ..hw_sim.loihi2.run import BACKENDS as LOIHI2_BACKENDS
from ..hw_sim.loihi2.run import reference_loihi2, simulate_loihi2
from ..hw_sim.reference import EngineChoice, simulate
from ..hw_sim.result import SimResult
from ..ir import fixed_point as fxp
from ..ir.ops import NeuronOp, Program
from .inputs import InputBatch
from .shards import ScaleOut, run_sharded


def run_backend(graph: nir.NIRGraph | None, program: Program, batch: InputBatch, backend: str,
                precision: str, record: str = "all",
                fixed: fxp.FixedProgram | None = None, scale: ScaleOut | None = None,
                engine: EngineChoice | None = None) -> SimResult:
    """Run ``batch`` on ``backend``. In fixed point the run uses ``fixed`` (quantised here,
    once, with the batch's input scale when not given); the result carries it. 'loihi2'
    (Lava's stock processes) and 'netx' (the netx file) compile the program for the
    Loihi 2 target and always run fixed point; their result carries the target's program.
    ``scale``: the samples sharded over workers (:mod:`.shards`), each shard with this
    quantisation (and this Loihi 2 compilation), so the result equals the serial one."""
    if backend in LOIHI2_BACKENDS:
        from ..hw_sim.loihi2.target import compile_loihi2
        compiled = compile_loihi2(program, batch.input_scale)
        return run_sharded(scale, loihi2_task, batch.x, compiled=compiled, backend=backend,
                           record=record)
    if backend not in ("reference", "lava"):
        raise SpikedeployError(f"unknown backend {backend!r} (lava|reference|loihi2|netx)")
    fixed = fxp.for_run(program, precision, fixed, batch.input_scale)
    engine = (engine or EngineChoice()).resolved(program, *batch.x.shape[:2])
    return run_sharded(scale, backend_task, batch.x, program=program, backend=backend,
                       precision=precision, fixed=fixed, record=record, engine=engine)


def backend_task(x, program: Program, backend: str, precision: str, fixed, record: str,
                 engine: EngineChoice | None = None):
    """One shard (or a whole serial run) on the reference simulator or our Lava processes."""
    if backend == "reference":
        engine = engine or EngineChoice()
        return simulate(program, x, precision, fixed, record=record, engine=engine.engine,
                        dtype=engine.dtype, device=engine.device)
    return simulate_lava(None, x, precision, record=record, program=program, fixed=fixed)


def loihi2_task(x, compiled, backend: str, record: str):
    """One shard on the Loihi 2 target: its fixed reference, stock processes or netx file."""
    if backend == "reference":
        return reference_loihi2(None, x, record=record, compiled=compiled)
    return simulate_loihi2(None, x, backend=backend, record=record,
                           compiled=compiled)


def layer_names(program: Program) -> list[str]:
    """Neuron layers in execution order (what per-layer tables list)."""
    return [name for name, op in program.ops.items() if isinstance(op, NeuronOp)]


def spike_counts(result: SimResult) -> dict[str, int]:
    return {name: int(np.count_nonzero(result.records[name]))
            for name in layer_names(result.program) if name in result.records}


def quantisation_lines(fixed: fxp.FixedProgram) -> list[str]:
    """The fixed-point error of every quantised layer, as the run's quantisation measured it."""
    return [f"  {layer:>16}: " + ", ".join(f"{field} {value:.2e}" for field, value in fields.items())
            for layer, fields in fixed.errors.items()]


RECORD_SUFFIXES = (".npz", ".nir")


def check_records_path(path) -> str:
    """The suffix of a file for recorded spikes, refused in one line unless .npz or .nir."""
    from pathlib import Path
    suffix = Path(path).suffix.lower()
    if suffix not in RECORD_SUFFIXES:
        raise SpikedeployError(f"{path}: recorded spikes are written as .npz, or .nir for NIR's "
                               "data format")
    return suffix


def save_records(path, result: SimResult) -> None:
    """``.nir``: NIR's own data format (NIRGraphData, see :func:`nir_graph_data`); else an
    ``.npz`` with ``output``: (T, N, *output_shape) and ``layer/<name>``: every recorded
    layer's (T, N, *shape)."""
    if check_records_path(path) == ".nir":
        write_bytes(path, nir_data_bytes(result))
        return
    arrays = {"output": result.output()}
    for name, rec in result.records.items():
        op = result.program.ops[name]
        arrays[f"layer/{name}"] = rec.reshape(rec.shape[:2] + tuple(op.shape))

    write_bytes(path, in_memory(lambda buf: np.savez_compressed(buf, **arrays)))


def nir_graph_data(result: SimResult) -> nir.NIRGraphData:
    """The run's records as NIR's data format: per graph node (subgraph members nested under
    their subgraph), a TimeGriddedData of shape (samples, steps, values) at the graph's dt:
    ``spikes`` (bool, or counts where a step can hold several) for spiking populations,
    ``values`` for everything else (inputs, voltages of LI/CubaLI, synaptic outputs)."""
    program, dt = result.program, result.program.dt
    root: dict = {}
    for name, rec in result.records.items():
        op = program.ops[name]
        data = rec.reshape(rec.shape[0], rec.shape[1], -1).transpose(1, 0, 2)
        spiking = isinstance(op, NeuronOp) and op.params.spiking
        if spiking and not op.params.multi_spike and not op.params.graded:
            data = data.astype(bool)
        level = root
        *parents, leaf = name.split(".")
        for part in parents:
            level = level.setdefault(part, {})
        level[leaf] = nir.NIRNodeData(observables={
            "spikes" if spiking else "values": nir.TimeGriddedData(np.ascontiguousarray(data), dt)})

    def build(level: dict) -> nir.NIRGraphData:
        return nir.NIRGraphData(nodes={k: build(v) if isinstance(v, dict) else v
                                       for k, v in level.items()})
    return build(root)


def nir_data_bytes(result: SimResult) -> bytes:
    """:func:`nir_graph_data` written by NIR's writer, with the run's provenance as root
    attributes (dt, convention, backend, precision, output node)."""
    import io

    import h5py
    from ..ir.conventions import recorded_convention
    buf = io.BytesIO()
    nir.write_data(buf, nir_graph_data(result))
    convention = recorded_convention(result.program.metadata)
    with h5py.File(buf, "r+") as f:
        f.attrs["spikedeploy.dt"] = result.program.dt
        f.attrs["spikedeploy.convention"] = convention["name"]
        f.attrs["spikedeploy.convention_reason"] = convention["reason"]
        f.attrs["spikedeploy.backend"] = result.backend
        f.attrs["spikedeploy.precision"] = result.precision
        f.attrs["spikedeploy.output"] = result.program.outputs[0]
    return buf.getvalue()
