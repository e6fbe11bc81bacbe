"""The local executor: each shard a supervised child process of this one.

``python -m spikedeploy.deploy.shard_worker JOB_DIR`` runs in its own session
(:class:`~spikedeploy.hw_sim.supervised.SupervisedChild`); a Lava shard starts
its own Lava worker under it, as a serial run does. Whoever ends this
process, the child sees its pipe close and tears its group down; this
process tears every child down on success, failure, Ctrl-C and signals. A
Ray task runs its shard the same way (:func:`run_in_child`).
"""
from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import SpikedeployError
from ..hw_sim.process_group import OWNER_FILE
from ..hw_sim.result import SimResult
from ..hw_sim.supervised import SupervisedChild, remove_stale_folders
from ..progress import bar

log = logging.getLogger(__name__)

JOB_PREFIX = "spikedeploy-shard-"
POLL_SECONDS = 0.05


def run_task(task, x: np.ndarray, kwargs: dict) -> SimResult:
    """One shard, in the shard worker process."""
    from ..progress import set_quiet
    set_quiet(True)                # one progress display: the caller's
    return task(x, **kwargs)


class ChildJob:
    """One shard's job folder and its supervised child process, restartable."""

    def __init__(self, tag: str, task, x: np.ndarray, kwargs: dict, shard=None):
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
        # no scratch TMPDIR: the shard's Lava worker keeps its folders in the usual temporary
        # folder, where they are never removed under it when the shard is torn down
        self.child = SupervisedChild("spikedeploy.deploy.shard_worker", self.job, scratch=False)
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
    job = ChildJob("ray", task, x, kwargs)
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


def run_local(shards: list, task, x: np.ndarray, kwargs: dict, timeout: float | None,
              attempts: int) -> list[SimResult]:
    """The shards (:class:`~.shards.Shard`) as supervised children of this process, all at
    once; each retried until ``attempts`` failures, then the run ends in one line."""
    remove_stale_folders((JOB_PREFIX,))
    jobs: list[ChildJob] = []
    results: dict[int, SimResult] = {}
    try:
        for shard in shards:
            jobs.append(ChildJob(f"{shard.index + 1}of{shard.count}", task,
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
                    log.info("%s failed: %s", job.shard.describe(), outcome)
                    if len(job.reasons) >= attempts:
                        raise job.shard.failure(job.reasons)
                    log.info("%s: retrying", job.shard.describe())
                    job.start()
                time.sleep(POLL_SECONDS)
    finally:                                       # success, failure, Ctrl-C, signals
        for job in jobs:
            job.close()
    return [results[s.index] for s in shards]
