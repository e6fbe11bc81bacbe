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
import os
import pickle
import shutil
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
from ..progress import bar
from .process_group import OWNER_FILE, PROGRESS_ENV, SCRATCH_FILE, teardown_group
from .reference import as_input_dict
from .result import SimResult

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
    """Run the worker in its own session and tear its whole group down afterwards.

    The worker inherits the read end of a pipe whose write end only this
    process holds: when this process ends, however it ends (SIGKILL included),
    the worker reads EOF and tears its own group down (see lava_worker). Its
    temporary files (multiprocessing's ``pymp-*`` folders) go into a scratch
    folder of its own, removed with the job folder.
    """
    (job / OWNER_FILE).write_text(str(os.getpid()))
    scratch = _scratch_dir(job)
    log = open(job / "worker.log", "wb")
    watch_read, watch_write = os.pipe()
    env = dict(os.environ, TMPDIR=str(scratch), **{PROGRESS_ENV: str(job / PROGRESS_FILE)})
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spikedeploy.hw_sim.lava_worker", str(job), str(watch_read)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, pass_fds=(watch_read,), env=env)
    finally:
        os.close(watch_read)
    timed_out = False
    try:
        _wait_showing_progress(proc, timeout, job / PROGRESS_FILE, windows)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        teardown_group(proc.pid)          # only this run's processes and shared memory
        if proc.poll() is None:
            proc.wait()
        os.close(watch_write)
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if timed_out:
        raise SpikedeployError(f"Lava run exceeded its {timeout:.0f} s time limit and was killed")
    if (job / "error.txt").exists():
        text = (job / "error.txt").read_text().strip()
        if "ModuleNotFoundError" in text or "ImportError" in text:   # a broken Lava install
            from .lava_install import INSTALL_HINT
            text += f" (Lava is installed but cannot be imported: {INSTALL_HINT})"
        raise SpikedeployError(text)
    if proc.returncode != 0 or not (job / "result.npz").exists():
        tail = (job / "worker.log").read_text(errors="replace").strip().splitlines()[-1:]
        raise SpikedeployError(f"Lava worker exited with code {proc.returncode}: "
                               f"{tail[0] if tail else 'no output'}")


SCRATCH_PREFIX = "spikedeploy-tmp-"


def _scratch_dir(job: Path) -> Path:
    """The worker's TMPDIR: a short path (multiprocessing puts its listener sockets there,
    and a Unix socket path must stay under 108 bytes), owned by this process."""
    base = tempfile.gettempdir()
    if len(base) > 40:
        base = "/tmp"
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=base))
    (scratch / OWNER_FILE).write_text(str(os.getpid()))
    (job / SCRATCH_FILE).write_text(str(scratch))
    return scratch


def remove_stale_jobs(root: Path | None = None) -> list[Path]:
    """Remove job and scratch folders whose creator is gone (a run SIGKILLed with its whole
    group, before anyone could clean up); returns what was removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    folders = list(root.glob(JOB_PREFIX + "*")) + list(root.glob(SCRATCH_PREFIX + "*"))
    if root != Path("/tmp"):
        folders += list(Path("/tmp").glob(SCRATCH_PREFIX + "*"))
    for folder in folders:
        try:
            pid = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue                      # not ours, or still being created
        if _alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
