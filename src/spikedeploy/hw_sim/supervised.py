"""A child process that never outlives its caller: Lava workers and sample shards.

The child (``python -m MODULE JOB_DIR WATCH_FD``) runs in its own session, so
its process group id is its pid and everything it forks can be killed with
it. It inherits the read end of a pipe whose write end only the caller
holds: when the caller ends, however it ends (SIGKILL included), the child
reads EOF and tears its own group down (:func:`spikedeploy.hw_sim.lava_worker.watch_parent`).
Its temporary files go to a scratch folder of its own (multiprocessing's
``pymp-*`` sockets), removed with it. :meth:`SupervisedChild.teardown`
kills the group and unlinks exactly the shared memory its members held.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .process_group import OWNER_FILE, SCRATCH_FILE, teardown_group

SCRATCH_PREFIX = "spikedeploy-tmp-"


class SupervisedChild:
    """``python -m module job_dir`` started in its own session, watched by a pipe."""

    def __init__(self, module: str, job: Path, env: dict | None = None):
        self.job = Path(job)
        (self.job / OWNER_FILE).write_text(str(os.getpid()))
        self.scratch = scratch_dir(self.job)
        self.log = open(self.job / "worker.log", "wb")
        watch_read, self.watch_write = os.pipe()
        child_env = dict(os.environ, TMPDIR=str(self.scratch), **(env or {}))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, str(self.job), str(watch_read)],
                stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, pass_fds=(watch_read,), env=child_env)
        except BaseException:
            os.close(self.watch_write)
            self.log.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        finally:
            os.close(watch_read)
        self._done = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def teardown(self) -> None:
        """Kill the child's group, remove the shared memory its members held, its pipe and
        scratch folder (idempotent)."""
        if self._done:
            return
        self._done = True
        teardown_group(self.proc.pid)          # only this child's processes and shared memory
        if self.proc.poll() is None:
            self.proc.wait()
        os.close(self.watch_write)
        self.log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def log_tail(self) -> str:
        lines = (self.job / "worker.log").read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"


def short_temp_base() -> str:
    """The temporary folder, or /tmp where its path is long: Unix socket paths made under it
    (multiprocessing's listeners, Ray's) must stay under 108 bytes."""
    base = tempfile.gettempdir()
    return base if len(base) <= 40 else "/tmp"


def scratch_dir(job: Path) -> Path:
    """A child's TMPDIR: a short path (multiprocessing puts its listener sockets there),
    owned by this process."""
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=short_temp_base()))
    (scratch / OWNER_FILE).write_text(str(os.getpid()))
    (job / SCRATCH_FILE).write_text(str(scratch))
    return scratch


def remove_stale_folders(prefixes, root: Path | None = None) -> list[Path]:
    """Remove job and scratch folders whose creator is gone (a run SIGKILLed with its whole
    group, before anyone could clean up); returns what was removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    folders = [f for prefix in (*prefixes, SCRATCH_PREFIX) for f in root.glob(prefix + "*")]
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
