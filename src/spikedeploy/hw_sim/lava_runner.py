"""Run a NIR graph on Lava's CPU simulator in a child process, safely.

Lava runs each process model as an OS process with shared-memory channels,
and an exception inside a model can hang ``run()``/``stop()`` forever. So the
run happens in a child process in its own session, under a wall-clock
timeout; whatever happens, the whole process group is killed afterwards and,
after a failure, the shared-memory segments it created are removed.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nir
import numpy as np

from ..errors import SpikedeployError
from ..ir import fixed_point as fxp
from ..ir.lowering import lower
from ..ir.ops import Program
from .reference import as_input_dict
from .result import SimResult

SHM_DIR = Path("/dev/shm")


def _default_timeout(num_ops: int, total_steps: int) -> float:
    # ~0.15 ms per process model per step measured here; generous margin.
    return 60.0 + total_steps * num_ops * 2e-3


def simulate_lava(graph: nir.NIRGraph | None, inputs, precision: str = "float",
                  dt: float | None = None, input_scale: float = 1.0, record: str = "all",
                  timeout: float | None = None, program: Program | None = None,
                  fixed: fxp.FixedProgram | None = None) -> SimResult:
    """Run ``inputs`` (T, N, *shape) through ``graph`` (or its lowered ``program``) on Lava;
    records aligned to input steps. In fixed point the run uses ``fixed`` (quantised here
    with ``input_scale`` if not given) and returns it with the result."""
    if precision not in ("float", "fixed"):
        raise SpikedeployError(f"unknown precision {precision!r} (float|fixed)")
    program = program or lower(graph, dt=dt)
    data = as_input_dict(program, inputs)
    fixed = fxp.for_run(program, precision, fixed, input_scale)
    names = [name for name, op in program.ops.items() if not op.synaptic]
    wanted = names if record == "all" else list(program.outputs)
    records, latency, elapsed = run_lava_job("lava", program, fixed, data, precision, wanted,
                                             timeout)
    return SimResult(program, records, backend="lava", precision=precision, latency=latency,
                     fixed=fixed, info={"seconds": elapsed})


def run_lava_job(kind: str, program: Program, fixed, data: dict, precision: str,
                 record: list[str], timeout: float | None = None,
                 files: dict[str, bytes] | None = None, options: dict | None = None):
    """Run one job in the Lava worker: ``kind`` 'lava' (our processes), 'loihi2' (stock
    processes) or 'netx' (a netx file, given in ``files``). Returns (records, latency,
    seconds)."""
    num_steps, n = next(iter(data.values())).shape[:2]
    with tempfile.TemporaryDirectory(prefix="spikedeploy-lava-") as tmp:
        job = Path(tmp)
        # The lowered Program and its quantisation travel to the worker (pickled): the
        # worker runs exactly what the parent lowered and quantised, and graphs nir.write
        # cannot store (None fields) work too.
        with open(job / "program.pkl", "wb") as f:
            pickle.dump((program, fixed), f, protocol=pickle.HIGHEST_PROTOCOL)
        np.savez(job / "inputs.npz", **data)
        for name, content in (files or {}).items():
            (job / name).write_bytes(content)
        (job / "job.json").write_text(json.dumps({"kind": kind, "precision": precision,
                                                  "record": record, **(options or {})}))
        if timeout is None:
            timeout = _default_timeout(len(program.ops), n * (num_steps + 16))
        started = time.perf_counter()
        _run_worker(job, timeout)
        elapsed = time.perf_counter() - started
        with np.load(job / "result.npz") as f:
            records = {name: f[name] for name in f.files if name != "__latency__"}
            latency = int(f["__latency__"])
    return records, latency, elapsed


def _run_worker(job: Path, timeout: float) -> None:
    shm_before = _shm_entries()
    log = open(job / "worker.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikedeploy.hw_sim.lava_worker", str(job)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    failed, timed_out = True, False
    try:
        proc.wait(timeout=timeout)
        failed = proc.returncode != 0
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(proc.pid)
        if proc.poll() is None:
            proc.wait()
        log.close()
        if failed:
            _remove_new_shm(shm_before)
    if timed_out:
        raise SpikedeployError(f"Lava run exceeded its {timeout:.0f} s time limit and was killed")
    if (job / "error.txt").exists():
        raise SpikedeployError((job / "error.txt").read_text().strip())
    if proc.returncode != 0 or not (job / "result.npz").exists():
        tail = (job / "worker.log").read_text(errors="replace").strip().splitlines()[-1:]
        raise SpikedeployError(f"Lava worker exited with code {proc.returncode}: "
                               f"{tail[0] if tail else 'no output'}")


def _kill_group(pid: int, grace: float = 10.0) -> None:
    """SIGKILL the worker's process group until none of its members is left.

    The signal is repeated: a process forked while the first one was being
    delivered can escape it.
    """
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if not _group_members(pid) or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":   # fields: state, ppid, pgrp
            members.append(int(entry))
    return members


def _shm_entries() -> set[str]:
    try:
        return set(os.listdir(SHM_DIR))
    except OSError:
        return set()


def _remove_new_shm(before: set[str]) -> None:
    for name in _shm_entries() - before:
        try:
            (SHM_DIR / name).unlink()
        except OSError:
            pass
