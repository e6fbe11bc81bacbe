"""Batched reference simulator: the Lava lowering's semantics, vectorised over samples.

Time model: latency-free. At step t every op reads its inputs' outputs of
step t (recurrent inputs: of step t-1). Lava delays each synaptic hop by one
step; the Lava runner aligns its outputs back to the input's steps, so after
alignment both backends emit the same spikes (float) and the same integers
(fixed), step for step. See README "Semantics".

Two engines run the same runners: numpy (:mod:`.reference_numpy`) and torch
(:mod:`.reference_torch`, CPU threads or CUDA). Each op type has one runner per
engine and precision, an entry of the OpTables :func:`engine_tables` returns (README:
"Extending spikedeploy"); ``check`` reads the numpy tables, which cover the same op
types as torch's (tested). Without recurrent edges a chunk of steps runs op by op:
stateless ops (synapses, reshapes) once on the chunk's samples stacked, neurons step
by step, which gives small batches large matrix products and the same results.
"""
from __future__ import annotations

import contextlib
import re
import sys
import tempfile
from dataclasses import dataclass, replace

import numpy as np

from ..errors import SpikedeployError
from ..ir import fixed_point as fxp
from ..ir.op_table import OpTable
from ..ir.ops import ConvOp, InputOp, NeuronOp, OutputOp, Program, ReshapeOp
from ..ir.semantics import require_step_gains
from ..progress import track
from .reference_numpy import DENSE_MATRIX_LIMIT, FIXED_RUNNERS, FLOAT_RUNNERS
from .reference_shared import NumpyArrays, is_depthwise
from .result import SimResult, kept_ops

RUNNERS = {"float": FLOAT_RUNNERS, "fixed": FIXED_RUNNERS}   # the numpy engine's (check reads)
ENGINES = ("auto", "numpy", "torch")
DTYPES = ("float64", "float32")
CHUNK_ROWS = 128           # samples x steps a stateless op gets at once (small batches;
                           # 128 was fastest for the digits MLP and CNN at batch 16)
CHUNK_BYTES = 2 << 20      # ... and at most this much of its widest op's values (L2)
TORCH_WORK = 50_000_000    # auto: values x steps from which torch's 2-4x faster kernels
                           # (float32, large convolutions) repay its import (~1 s, ~240 MB)
TORCH_WORK_DENSE = 1_000_000_000   # ... and its 15-30 % faster ones (float64, dense layers)
RECORD_RAM = 1 << 30       # records above 1 GiB are kept in an unlinked temporary file


@dataclass(frozen=True)
class EngineChoice:
    """How the reference simulator runs: engine (auto|numpy|torch), float dtype and device.
    A command resolves ``auto`` once for its whole batch (:meth:`resolved`), so every shard
    of a sharded run uses the engine the serial run would."""

    engine: str = "auto"
    dtype: str = "float64"
    device: str = "cpu"

    def resolved(self, program: Program, steps: int, samples: int) -> "EngineChoice":
        return replace(self, engine=choose_engine(self.engine, program, steps * samples,
                                                  self.dtype, self.device))


def check_options(precision: str, dtype: str, device: str = "cpu") -> None:
    """A run's precision, float dtype and device, each known and together meaningful (one
    line otherwise; whether the device exists is torch's to say when its engine starts)."""
    if precision not in ("float", "fixed"):
        raise SpikedeployError(f"unknown precision {precision!r} (float|fixed)")
    if dtype not in DTYPES:
        raise SpikedeployError(f"unknown dtype {dtype!r} ({'|'.join(DTYPES)})")
    if dtype != "float64" and precision == "fixed":
        raise SpikedeployError("--dtype float32 applies to float precision (fixed point is "
                               "integer arithmetic, exact either way)")
    check_device(device)


def check_device(device: str) -> None:
    """cpu, cuda or cuda:N (one line otherwise; whether the device exists is torch's to say
    when the torch engine starts)."""
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", device):
        raise SpikedeployError(f"unknown device {device!r} (cpu, cuda or cuda:N)")


def engine_tables(engine: str) -> dict[str, OpTable]:
    """The runner tables of an engine, by precision."""
    if engine == "torch":
        from . import reference_torch as t
        return {"float": t.FLOAT_RUNNERS, "fixed": t.FIXED_RUNNERS}
    return RUNNERS


def make_arrays(engine: str, dtype: str, device: str):
    if engine == "torch":
        from .reference_torch import TorchArrays
        return TorchArrays(dtype, device)
    if device != "cpu":
        raise SpikedeployError(f"--device {device} needs --engine torch (numpy runs on the CPU)")
    return NumpyArrays(dtype)


def choose_engine(engine: str, program: Program, sample_steps: int, dtype: str = "float64",
                  device: str = "cpu") -> str:
    """``auto``: torch on a GPU; on the CPU torch once the run is large enough to repay
    torch's import: :data:`TORCH_WORK` values x steps where torch's kernels are 2-4x
    faster (float32, convolutions too large for one dense matrix, which numpy runs as
    im2col), :data:`TORCH_WORK_DENSE` elsewhere (dense layers and small maps in float64,
    where numpy is as fast up to batch 256: benchmarks/bench_peers.py); numpy otherwise.
    Decided from the program and run size alone, never from the process's state, so the
    same command always picks the same engine."""
    if engine not in ENGINES:
        raise SpikedeployError(f"unknown engine {engine!r} ({'|'.join(ENGINES)})")
    check_device(device)
    if engine != "auto":
        return engine
    if device != "cpu":
        return "torch"
    work = sample_steps * sum(op.size for op in program.ops.values())
    torch_kernels = dtype != "float64" or any(
        isinstance(op, ConvOp) and not is_depthwise(op)
        and op.size * op.in_size > DENSE_MATRIX_LIMIT for op in program.ops.values())
    return "torch" if work >= (TORCH_WORK if torch_kernels else TORCH_WORK_DENSE) else "numpy"


def as_input_dict(program: Program, inputs) -> dict[str, np.ndarray]:
    if not isinstance(inputs, dict):
        if len(program.inputs) != 1:
            raise SpikedeployError(f"graph has {len(program.inputs)} inputs: pass a dict by name")
        inputs = {program.inputs[0]: inputs}
    out = {}
    for name in program.inputs:
        if name not in inputs:
            raise SpikedeployError(f"no data for input node '{name}'")
        x = np.asarray(inputs[name], dtype=np.float64)
        op = program.ops[name]
        if x.ndim < 2 or int(np.prod(x.shape[2:])) != op.size:
            raise SpikedeployError(
                f"input '{name}' must be time-major (T, N, *{op.shape}), got shape {x.shape}")
        out[name] = x.reshape(x.shape[0], x.shape[1], op.size)
    steps = {x.shape[:2] for x in out.values()}
    if len(steps) != 1:
        raise SpikedeployError(f"inputs disagree on (T, N): {sorted(steps)}")
    return out


def binary_ops(program: Program) -> set[str]:
    """Ops whose every output is 0 or 1 (plain spikes, passed on unchanged): recorded as int8."""
    binary: set[str] = set()
    for name, op in program.ops.items():
        if isinstance(op, NeuronOp):
            p = op.params
            if p.spiking and not p.multi_spike and not p.graded:
                binary.add(name)
        elif isinstance(op, (OutputOp, ReshapeOp)) and op.inputs and not op.recurrent \
                and all(s in binary for s in op.inputs) and len(op.inputs) == 1:
            binary.add(name)
    return binary


def record_array(shape, dtype, total_bytes: int) -> np.ndarray:
    """Zeros of ``shape``: in memory, or (past :data:`RECORD_RAM` for the whole run) mapped
    from an already unlinked temporary file, so the kernel pages records out instead of the
    run holding them all; the file disappears with its last reference, even on a crash."""
    if total_bytes <= RECORD_RAM:
        return np.zeros(shape, dtype)
    return np.memmap(tempfile.TemporaryFile(prefix="spikedeploy-records-"), dtype=dtype,
                     mode="w+", shape=shape)


def chunk_steps(program: Program, n: int, num_steps: int) -> int:
    """Steps run per chunk: as many as keep a chunk within :data:`CHUNK_ROWS` rows and its
    widest op's values within :data:`CHUNK_BYTES` (a chunk past the cache runs slower than
    step by step); 1 with recurrent edges (each step needs the last one's outputs)."""
    if any(op.recurrent for op in program.ops.values()):
        return 1
    widest = max(op.size for op in program.ops.values())
    rows = min(CHUNK_ROWS, CHUNK_BYTES // (8 * max(widest, 1)))
    return max(1, min(num_steps, rows // max(n, 1)))


def simulate(program: Program, inputs, precision: str = "float",
             fixed: fxp.FixedProgram | None = None, record: str = "all",
             record_voltages: bool = False, engine: str = "auto", dtype: str = "float64",
             device: str = "cpu") -> SimResult:
    """Run a batch: ``inputs`` is (T, N, *input_shape) or a dict of them by input name.

    ``record``: "all" keeps every op's output per step (for energy and
    verification); "layers" the inputs, neuron layers and outputs; "outputs" only the
    Output nodes. Plain spikes are recorded as int8. With
    ``record_voltages`` every neuron's membrane voltage after its update
    (after reset; integer units in fixed precision) goes to ``voltages``.
    ``engine``: numpy, torch or auto (:func:`choose_engine`); ``device``: cpu or cuda
    (torch); ``dtype``: float64 (exact against snnTorch float64), or float32 (faster;
    spikes may differ where a voltage lands within float32 rounding of its threshold).
    """
    check_options(precision, dtype, device)
    data = as_input_dict(program, inputs)
    num_steps, n = next(iter(data.values())).shape[:2]
    for op in program.ops.values():
        if isinstance(op, NeuronOp):
            require_step_gains(op.params, num_steps, op.name)
    fixed = fxp.for_run(program, precision, fixed)
    engine = choose_engine(engine, program, num_steps * n, dtype, device)
    arrays = make_arrays(engine, dtype, device)
    table = engine_tables(engine)[precision]
    runners = {op.name: table.lookup(op)(op, n, fixed, arrays) for op in program.ops.values()}
    value = np.dtype(dtype) if precision == "float" else np.dtype(np.int64)
    keep = kept_ops(program, record)
    binary = binary_ops(program)
    dtypes = {name: np.dtype(np.int8) if name in binary else value for name in keep}
    total = sum(num_steps * n * program.ops[k].size * dtypes[k].itemsize for k in keep)
    records = {name: record_array((num_steps, n, program.ops[name].size), dtypes[name], total)
               for name in keep}
    neurons = [name for name, op in program.ops.items() if isinstance(op, NeuronOp)]
    voltages = ({name: np.zeros((num_steps, n, program.ops[name].size), value) for name in neurons}
                if record_voltages else {})
    k = chunk_steps(program, n, num_steps)
    prev = {src: arrays.zeros((n, program.ops[src].size), value)     # what step 0 reads back
            for op in program.ops.values() for src in op.recurrent}
    with _blas_threads(engine), arrays.exact_float32():
        _run_chunks(program, data, runners, arrays, records, voltages, prev, k, precision)
    return SimResult(program, records, backend="reference", precision=precision, fixed=fixed,
                     voltages=voltages,
                     info={"engine": engine, "device": str(arrays.device), "dtype": str(value)})


def _blas_threads(engine: str):
    """One BLAS thread for the numpy engine in a process that has run torch: torch's idle
    OpenMP threads and OpenBLAS's compete for the cores, which made numpy runs up to 5x
    slower after a torch run on 2 cores (benchmarks/bench_peers.py)."""
    global _THREADPOOLS
    if engine != "numpy" or "torch" not in sys.modules:
        return contextlib.nullcontext()
    if _THREADPOOLS is None:        # finding the libraries takes ~1 ms: once per process
        from threadpoolctl import ThreadpoolController
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1)     # BLAS and OpenMP alike


_THREADPOOLS = None


def _run_chunks(program, data, runners, arrays, records, voltages, prev, k, precision):
    """Every chunk of k steps, op by op; records filled in place."""
    num_steps, n = next(iter(data.values())).shape[:2]
    for t0 in track(range(0, num_steps, k), f"reference {precision}", unit="chunk"):
        steps = min(k, num_steps - t0)
        cur: dict = {}
        for name, op in program.ops.items():
            if isinstance(op, InputOp):
                x = arrays.array(data[name][t0:t0 + steps].reshape(steps * n, op.size),
                                 arrays.float)      # float64 in fixed point (quantised next)
            else:
                srcs = [prev[s] if s in op.recurrent else cur[s] for s in op.inputs]
                x = srcs[0]
                for s in srcs[1:]:
                    x = x + s
            runner = runners[name]
            if runner.stateless:
                cur[name] = runner.step(x)
            else:
                cur[name] = _step_by_step(runner, x, steps, n, arrays,
                                          voltages.get(name), t0)
        for name, record in records.items():
            record[t0:t0 + steps] = arrays.numpy(cur[name]).reshape(steps, n, -1)
        prev = cur


def _step_by_step(runner, x, steps: int, n: int, arrays, voltages, t0: int):
    """A stateful runner over a chunk's steps (rows step-major), its outputs stacked alike."""
    outs = []
    for i in range(steps):
        outs.append(runner.step(x[i * n:(i + 1) * n]))
        if voltages is not None:
            voltages[t0 + i] = arrays.numpy(runner.v)
    return outs[0] if steps == 1 else arrays.cat(outs)
