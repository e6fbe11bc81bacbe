"""Dataset-scale runs: the samples split into shards, run in parallel, merged back.

A run over N samples is cut into ``workers`` contiguous shards (sizes differ
by at most one; shard k always holds the same samples for the same N and
workers). Every shard runs the same task -- a backend on its samples, with
the quantisation the parent computed once for the whole batch -- and the
records are concatenated along the sample axis, so spikes, accuracies,
energy counts and first divergences equal the serial run's: samples never
interact in a batched simulation.

Executors:

* ``local``: each shard is a supervised child process
  (``python -m spikedeploy.deploy.shard_worker``, its own session; a Lava
  shard starts its own Lava worker under it, as a serial run does). A
  shard that fails (or takes longer than ``timeout``) is retried once; a
  second failure stops the other shards and is one line naming the shard
  and its samples. Ctrl-C, a
  signal or any error tears every shard's process group and shared memory
  down; a shard whose caller dies tears itself down.
* ``ray``: the shards are Ray tasks (``ray.init(address)``: a cluster, or a
  local Ray started for the run and shut down after it), with the same
  retry. Each task runs its shard in the same supervised child on its node
  (:func:`run_in_child`), never in the Ray worker itself: Ray kills a
  cancelled task's worker and its direct children with SIGKILL, and only a
  process that watches its caller's pipe can then tear a Lava run down.
  Tasks are cancelled with ``force=True`` on a failure or Ctrl-C.
"""
from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpikedeployError, first_line
from ..hw_sim.process_group import OWNER_FILE
from ..hw_sim.result import SimResult
from ..hw_sim.supervised import SupervisedChild, remove_stale_folders, short_temp_base
from ..progress import bar

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
JOB_PREFIX = "spikedeploy-shard-"
ATTEMPTS = 2                       # a shard is retried once
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ScaleOut:
    """How a command spreads its samples: ``workers`` shards on an executor."""

    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    timeout: float | None = None      # seconds one attempt of a shard may take

    def validate(self) -> None:
        if self.workers < 1:
            raise SpikedeployError(f"--workers must be positive, got {self.workers}")
        if self.timeout is not None and not (self.timeout > 0 and self.timeout < float("inf")):
            raise SpikedeployError(f"--shard-timeout must be a positive number of seconds, "
                                   f"got {self.timeout}")
        if self.executor not in EXECUTORS:
            raise SpikedeployError(f"unknown executor {self.executor!r} ({'|'.join(EXECUTORS)})")
        if self.ray_address is not None and self.executor != "ray":
            raise SpikedeployError("--ray-address goes with --executor ray")

    @property
    def serial(self) -> bool:
        return self.workers == 1 and self.executor == "local"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int
    start: int
    stop: int

    def describe(self) -> str:
        return f"shard {self.index + 1}/{self.count} (samples {self.start}..{self.stop - 1})"


def plan_shards(num_samples: int, workers: int) -> list[Shard]:
    """Contiguous shards, as even as possible, never empty (fewer than ``workers`` when
    there are fewer samples)."""
    count = max(1, min(workers, num_samples))
    bounds = np.linspace(0, num_samples, count + 1).round().astype(int)
    return [Shard(k, count, int(bounds[k]), int(bounds[k + 1])) for k in range(count)]


def run_sharded(scale: ScaleOut | None, task, x: np.ndarray, **kwargs) -> SimResult:
    """``task(x, **kwargs) -> SimResult`` over the samples (axis 1 of ``x``), sharded as
    ``scale`` says (in this process when serial). ``task`` must be a module-level function
    (it travels by name)."""
    if scale is None or scale.serial:
        return task(x, **kwargs)
    shards = plan_shards(x.shape[1], scale.workers)
    log.info("%d samples in %d shards (%s executor)", x.shape[1], len(shards), scale.executor)
    started = time.perf_counter()
    if scale.executor == "ray":
        parts = _run_ray(shards, task, x, kwargs, scale.ray_address, scale.timeout)
    else:
        parts = _run_local(shards, task, x, kwargs, scale.timeout)
    merged = merge_results(parts)
    merged.info["seconds"] = time.perf_counter() - started
    merged.info["shards"] = len(shards)
    return merged


def merge_results(parts: list[SimResult]) -> SimResult:
    """The shards' results as one run: records (and voltages) concatenated over samples."""
    first = parts[0]
    latencies = {p.latency for p in parts}
    if len(latencies) != 1:
        raise SpikedeployError(f"shards ran with different pipeline latencies {sorted(latencies)}")

    def concat(field):
        return {name: np.concatenate([getattr(p, field)[name] for p in parts], axis=1)
                for name in getattr(first, field)}

    return SimResult(first.program, concat("records"), first.backend, first.precision,
                     first.latency, first.fixed, dict(first.info), concat("voltages"))


def _failure(shard: Shard, reasons: list[str]) -> SpikedeployError:
    return SpikedeployError(f"{shard.describe()} failed {len(reasons)} times: {reasons[-1]}")


# ---------------------------------------------------------------- local processes

def run_task(task, x: np.ndarray, kwargs: dict) -> SimResult:
    """One shard, in the shard worker process."""
    from ..progress import set_quiet
    set_quiet(True)                # one progress display: the caller's
    return task(x, **kwargs)


class _ChildJob:
    """One shard's job folder and its supervised child process, restartable."""

    def __init__(self, tag: str, task, x: np.ndarray, kwargs: dict, shard: Shard | None = None):
        self.shard, self.reasons, self.child = shard, [], None
        self.job = Path(tempfile.mkdtemp(prefix=f"{JOB_PREFIX}{tag}-"))
        (self.job / OWNER_FILE).write_text(str(os.getpid()))   # swept if we are killed
        # our own objects to our own child, in a folder only we write (mode 0700): the
        # same inter-process transport as multiprocessing; no user file is unpickled
        with open(self.job / "task.pkl", "wb") as f:
            pickle.dump((task, kwargs), f, protocol=pickle.HIGHEST_PROTOCOL)
        np.save(self.job / "inputs.npy", np.ascontiguousarray(x))

    def start(self) -> None:
        for name in ("result.pkl", "error.txt"):
            (self.job / name).unlink(missing_ok=True)
        self.child = SupervisedChild("spikedeploy.deploy.shard_worker", self.job)
        self.started = time.monotonic()
        log.info("%s: started pid %d", self.job.name, self.child.pid)

    def poll(self, timeout: float | None = None):
        """None while running; else the result, or a failure reason (str). Past ``timeout``
        seconds the child is torn down and that is the reason."""
        code = self.child.proc.poll()
        if code is None:
            if timeout is None or time.monotonic() - self.started < timeout:
                return None
            self.child.teardown()
            return f"exceeded its {timeout:g} s time limit"
        self.child.teardown()
        if code == 0 and (self.job / "result.pkl").exists():
            with open(self.job / "result.pkl", "rb") as f:
                return pickle.load(f)
        if (self.job / "error.txt").exists():
            return (self.job / "error.txt").read_text().strip()
        if code < 0:
            return f"its process was killed by signal {-code}"
        return f"its process exited with code {code}: {self.child.log_tail()}"

    def close(self) -> None:
        if self.child is not None:
            self.child.teardown()
        shutil.rmtree(self.job, ignore_errors=True)


def run_in_child(task, x: np.ndarray, kwargs: dict) -> SimResult:
    """One shard in a supervised child of this process (what a Ray task runs): whoever kills
    this process -- Ray cancelling the task, or shutting down -- the child and any Lava run
    under it see their caller's pipe close and tear themselves down."""
    remove_stale_folders((JOB_PREFIX,))      # of tasks killed before they could clean up
    job = _ChildJob("ray", task, x, kwargs)
    try:
        job.start()
        outcome = job.poll()
        while outcome is None:
            time.sleep(POLL_SECONDS)
            outcome = job.poll()
    finally:
        job.close()
    if isinstance(outcome, SimResult):
        return outcome
    raise SpikedeployError(outcome)


def _run_local(shards: list[Shard], task, x: np.ndarray, kwargs: dict,
               timeout: float | None = None) -> list[SimResult]:
    remove_stale_folders((JOB_PREFIX,))
    jobs: list[_ChildJob] = []
    results: dict[int, SimResult] = {}
    try:
        for shard in shards:
            jobs.append(_ChildJob(f"{shard.index + 1}of{shard.count}", task,
                                  x[:, shard.start:shard.stop], kwargs, shard))
            jobs[-1].start()
        with bar(len(shards), "shards", unit="shard") as shown:
            while len(results) < len(shards):
                for job in jobs:
                    if job.shard.index in results:
                        continue
                    outcome = job.poll(timeout)
                    if outcome is None:
                        continue
                    if isinstance(outcome, SimResult):
                        results[job.shard.index] = outcome
                        shown.update(1)
                        continue
                    job.reasons.append(outcome)
                    log.info("%s failed, retrying: %s", job.shard.describe(), outcome)
                    if len(job.reasons) >= ATTEMPTS:
                        raise _failure(job.shard, job.reasons)
                    job.start()                    # retried once
                time.sleep(POLL_SECONDS)
    finally:                                       # success, failure, Ctrl-C, signals
        for job in jobs:
            job.close()
    return [results[s.index] for s in shards]


# ---------------------------------------------------------------- Ray tasks

def _ray():
    try:
        import ray
    except ImportError:
        raise SpikedeployError("--executor ray needs Ray: pip install 'spikedeploy[ray]'") \
            from None
    return ray


def _run_ray(shards: list[Shard], task, x: np.ndarray, kwargs: dict,
             address: str | None, timeout: float | None = None) -> list[SimResult]:
    ray = _ray()
    # failures are reported here, in one line: not as Ray's tracebacks of unread results
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    started_here = not ray.is_initialized()
    if started_here:
        local = {} if address else {"num_cpus": max(len(shards), os.cpu_count() or 1),
                                    "_temp_dir": os.path.join(short_temp_base(), "ray")}
        try:   # Ray's own notices (e.g. its auth token) only with -v: the run reports itself
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR if log.getEffectiveLevel() > logging.INFO
                     else logging.INFO, **local)
        except Exception as exc:  # noqa: BLE001 - no cluster at the address, bad address
            raise SpikedeployError(f"Ray could not start or connect"
                                   f"{f' to {address}' if address else ''}: "
                                   f"{first_line(exc)}") from None
    remote = ray.remote(max_retries=0)(run_in_child)
    task_ref, kwargs_ref = ray.put(task), ray.put(kwargs)
    pending, submitted, reasons, results = {}, {}, {s.index: [] for s in shards}, {}

    def submit(shard):
        ref = remote.remote(task_ref, x[:, shard.start:shard.stop], kwargs_ref)
        pending[ref] = shard
        submitted[ref] = time.monotonic()

    def failed(shard, reason):
        reasons[shard.index].append(reason)
        log.info("%s failed, retrying: %s", shard.describe(), reason)
        if len(reasons[shard.index]) >= ATTEMPTS:
            raise _failure(shard, reasons[shard.index])
        submit(shard)

    try:
        for shard in shards:
            submit(shard)
        with bar(len(shards), "shards", unit="shard") as shown:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                if not done:
                    late = [r for r in pending if timeout is not None
                            and time.monotonic() - submitted[r] > timeout]
                    for ref in late:         # Ray kills the task's worker; its child follows
                        ray.cancel(ref, force=True)
                        failed(pending.pop(ref), f"exceeded its {timeout:g} s time limit")
                    continue
                shard = pending.pop(done[0])
                try:
                    results[shard.index] = ray.get(done[0])
                    shown.update(1)
                except Exception as exc:  # noqa: BLE001 - the task's error, or a lost worker
                    failed(shard, first_line(getattr(exc, "cause", None) or exc))
    finally:
        for ref in pending:           # a failure or Ctrl-C: stop what still runs
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
        if started_here:
            ray.shutdown()
            _sweep_local_ray_jobs()
    return [results[s.index] for s in shards]


def _sweep_local_ray_jobs(wait: float = 3.0) -> None:
    """Job folders of a local Ray's killed tasks, once their workers are gone (bounded)."""
    deadline = time.monotonic() + wait
    root = Path(tempfile.gettempdir())
    while True:
        remove_stale_folders((JOB_PREFIX,))
        if not list(root.glob(f"{JOB_PREFIX}ray-*")) or time.monotonic() > deadline:
            return
        time.sleep(0.1)
