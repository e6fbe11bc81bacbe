"""Run a NIR graph on Lava's CPU simulator in a child process, safely.

Lava runs each process model as an OS process with shared-memory channels,
and an exception inside a model can hang ``run()``/``stop()`` forever. So the
run happens in a child process in its own session, under a wall-clock
timeout; whatever happens, the whole process group is killed afterwards and,
after a failure, the shared-memory segments it created are removed.
"""
from __future__ import annotations

import json
import logging
import pickle
import subprocess
import tempfile
import time
from pathlib import Path

import nir
import numpy as np

from ..errors import SpikedeployError
from ..ir import fixed_point as fxp
from ..ir.lowering import lower
from ..ir.ops import Program
from ..progress import bar
from .process_group import PROGRESS_ENV
from .reference import as_input_dict
from .result import SimResult, kept_ops
from .supervised import SupervisedChild, remove_stale_folders

log = logging.getLogger(__name__)

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
    wanted = [name for name in kept_ops(program, record) if not program.ops[name].synaptic]
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
    remove_stale_jobs()
    with tempfile.TemporaryDirectory(prefix=JOB_PREFIX) as tmp:
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
        log.info("Lava %s job: %d samples x %d steps, %d ops, time limit %.0f s", kind, n,
                 num_steps, len(program.ops), timeout)
        _run_worker(job, timeout, n)
        elapsed = time.perf_counter() - started
        log.info("Lava %s job finished in %.1f s", kind, elapsed)
        with np.load(job / "result.npz") as f:
            records = {name: f[name] for name in f.files if name != "__latency__"}
            latency = int(f["__latency__"])
    return records, latency, elapsed


JOB_PREFIX = "spikedeploy-lava-"


PROGRESS_FILE = "progress"


def _wait_showing_progress(proc, timeout: float, progress: Path, windows: int) -> None:
    """Wait for the worker, showing the sample windows it reports (TimeoutExpired past
    ``timeout``)."""
    deadline = time.monotonic() + timeout
    with bar(windows, "Lava", unit="sample") as shown:
        while True:
            try:
                proc.wait(timeout=min(0.25, max(0.0, deadline - time.monotonic())))
                return
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
            try:
                done = int(progress.read_text() or 0)
            except (OSError, ValueError):
                continue
            if done > shown.n:
                shown.update(done - shown.n)


def _run_worker(job: Path, timeout: float, windows: int = 0) -> None:
    """Run the worker as a supervised child (its own session, torn down with its whole group
    afterwards, and by itself if this process dies: see :mod:`.supervised`)."""
    child = SupervisedChild("spikedeploy.hw_sim.lava_worker", job,
                            {PROGRESS_ENV: str(job / PROGRESS_FILE)})
    proc = child.proc
    timed_out = False
    try:
        _wait_showing_progress(proc, timeout, job / PROGRESS_FILE, windows)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        child.teardown()
    if timed_out:
        raise SpikedeployError(f"Lava run exceeded its {timeout:.0f} s time limit and was killed")
    if (job / "error.txt").exists():
        text = (job / "error.txt").read_text().strip()
        if "ModuleNotFoundError" in text or "ImportError" in text:   # a broken Lava install
            from .lava_install import INSTALL_HINT
            text += f" (Lava is installed but cannot be imported: {INSTALL_HINT})"
        raise SpikedeployError(text)
    if proc.returncode != 0 or not (job / "result.npz").exists():
        raise SpikedeployError(f"Lava worker exited with code {proc.returncode}: "
                               f"{child.log_tail()}")


def remove_stale_jobs(root: Path | None = None) -> list[Path]:
    """Remove Lava job and scratch folders whose creator is gone (a run SIGKILLed with its
    whole group, before anyone could clean up); returns what was removed."""
    return remove_stale_folders((JOB_PREFIX,), root)
