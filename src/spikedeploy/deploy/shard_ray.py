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
import shutil
import signal
import socket
import tempfile
import time
from contextlib import contextmanager
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


# A command's Ray: started at its first sharded run and shut down when the command ends
# (ray_session), not once per backend run (a sweep or verify runs several).
_session = {"active": False, "ray": None}


@contextmanager
def ray_session():
    """Keep a Ray that a run starts until the block ends (a command's whole work)."""
    _session["active"] = True
    try:
        yield
    finally:
        _session["active"] = False
        if _session["ray"] is not None:
            _stop(*_session["ray"])
            _session["ray"] = None


def _start(ray, address: str | None, cpus: int) -> tuple:
    """Connect to ``address`` or start a local Ray (never one found in the environment:
    RAY_ADDRESS or a cluster started on this machine are joined only when named).
    Returns (ray, its session folder when started here, else None)."""
    if address not in (None, "auto", "local"):
        _check_reachable(address)
    options = {"address": "local", "num_cpus": cpus,
               "_temp_dir": os.path.join(short_temp_base(), "ray")} if address is None \
        else {"address": address}
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM,
                                                        signal.SIGHUP)}
    try:   # Ray's own notices (e.g. its auth token) only with -v: the run reports itself
        context = ray.init(include_dashboard=False, log_to_driver=False,
                           logging_level=logging.ERROR if log.getEffectiveLevel() > logging.INFO
                           else logging.INFO, **options)
    except Exception as exc:  # noqa: BLE001 - no cluster at the address, bad address
        raise SpikedeployError(f"Ray could not start or connect"
                               f"{f' to {address}' if address else ''}: "
                               f"{first_line(exc)}") from None
    finally:    # Ray installs its own SIGTERM handler: ours tears the shards down first
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)
    session = (getattr(context, "address_info", None) or {}).get("session_dir")
    return ray, (session if address is None else None)


def _check_reachable(address: str, seconds: float = 5.0) -> None:
    """A cluster address answers within seconds, or one line (Ray itself retries for
    minutes, deaf to Ctrl-C, on an address where nothing listens)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SpikedeployError(f"--ray-address {address}: expected HOST:PORT, ray://HOST:PORT, "
                               "auto or local")
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as exc:
        raise SpikedeployError(f"--ray-address {address}: no Ray cluster answers there "
                               f"({first_line(exc)})") from None


def _stop(ray, session_dir: str | None) -> None:
    ray.shutdown()
    _sweep_local_ray_jobs()
    if session_dir:                 # a local Ray's logs and sockets: ours, gone with it
        shutil.rmtree(session_dir, ignore_errors=True)


def run_ray(shards: list, task, x: np.ndarray, kwargs: dict, address: str | None,
            timeout: float | None, attempts: int) -> list[SimResult]:
    """The shards (:class:`~.shards.Shard`) as Ray tasks on the cluster at ``address`` (or a
    local Ray); each retried until ``attempts`` failures. A Ray started here lives until the
    enclosing :func:`ray_session` ends, or this run when there is none."""
    ray = require_ray()
    # failures are reported here, in one line: not as Ray's tracebacks of unread results
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    started = None
    if not ray.is_initialized():
        started = _start(ray, address, max(len(shards), os.cpu_count() or 1))
        if _session["active"]:
            _session["ray"], started = started, None
    remote = ray.remote(max_retries=0)(run_in_child)
    task_ref, kwargs_ref = ray.put(task), ray.put(kwargs)
    pending, submitted, reasons, results = {}, {}, {s.index: [] for s in shards}, {}

    def submit(shard):
        ref = remote.remote(task_ref, x[:, shard.start:shard.stop], kwargs_ref)
        pending[ref] = shard
        submitted[ref] = time.monotonic()

    def failed(shard, reason):
        reasons[shard.index].append(reason)
        log.info("%s failed: %s", shard.describe(), reason)
        if len(reasons[shard.index]) >= attempts:
            raise shard.failure(reasons[shard.index])
        log.info("%s: retrying", shard.describe())
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
        if started is not None:
            _stop(*started)
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
