"""The Ray executor: shards as Ray tasks, on a cluster or a local Ray.

Each task runs its shard in the local executor's supervised child on its
node (:func:`~.shard_local.run_in_child`), never in the Ray worker itself:
Ray kills a cancelled task's worker and its direct children with SIGKILL,
and only a process that watches its caller's pipe can then tear a Lava run
down. Tasks are cancelled with ``force=True`` on a failure, a time-out or
Ctrl-C.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import SpikedeployError, first_line
from ..hw_sim.result import SimResult
from ..hw_sim.supervised import remove_stale_folders, short_temp_base
from ..progress import bar
from .shard_local import JOB_PREFIX, run_in_child

log = logging.getLogger(__name__)


def require_ray():
    try:
        import ray
    except ImportError:
        raise SpikedeployError("--executor ray needs Ray: pip install 'spikedeploy[ray]'") \
            from None
    return ray


def run_ray(shards: list, task, x: np.ndarray, kwargs: dict, address: str | None,
            timeout: float | None, attempts: int) -> list[SimResult]:
    """The shards (:class:`~.shards.Shard`) as Ray tasks on the cluster at ``address`` (or a
    local Ray started here and shut down after); each retried until ``attempts`` failures."""
    ray = require_ray()
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
        if len(reasons[shard.index]) >= attempts:
            raise shard.failure(reasons[shard.index])
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
