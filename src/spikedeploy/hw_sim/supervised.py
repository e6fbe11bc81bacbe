"""A child process that never outlives its caller: Lava workers and sample shards.

The child (``python -m MODULE JOB_DIR WATCH_FD``) runs in its own session, so
its process group id is its pid and everything it forks can be killed with
it. It inherits the read end of a pipe whose write end only the caller
holds: when the caller ends, however it ends (SIGKILL included), the child
reads EOF and tears its own group down (:func:`watch_parent`, which the child
runs in a thread).
Its temporary files go to a scratch folder of its own (multiprocessing's
``pymp-*`` sockets), removed with it. :meth:`SupervisedChild.teardown`
kills the group and unlinks exactly the shared memory its members held.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..fileio import process_alive
from .process_group import OWNER_FILE, SCRATCH_FILE, remove_run_folders, teardown_group

SCRATCH_PREFIX = "spikedeploy-tmp-"


class SupervisedChild:
    """``python -m module job_dir`` started in its own session, watched by a pipe.
    ``scratch``: the child's TMPDIR is a folder of its own, removed with it (for children
    whose libraries leave files there); without it the child's own supervised children
    keep their folders where they can outlive it and be swept (never removed under them)."""

    def __init__(self, module: str, job: Path, env: dict | None = None, scratch: bool = True):
        self.job = Path(job)
        (self.job / OWNER_FILE).write_text(str(os.getpid()))
        self.scratch = scratch_dir(self.job) if scratch else None
        self.log = open(self.job / "worker.log", "wb")
        watch_read, self.watch_write = os.pipe()
        child_env = dict(os.environ, **({"TMPDIR": str(self.scratch)} if scratch else {}),
                         **(env or {}))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, str(self.job), str(watch_read)],
                stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, pass_fds=(watch_read,), env=child_env)
        except BaseException:
            os.close(self.watch_write)
            self.log.close()
            if self.scratch:
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
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def log_tail(self) -> str:
        lines = (self.job / "worker.log").read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"


def short_temp_base() -> str:
    """The temporary folder, or /tmp where its path is long: Unix socket paths made under it
    (multiprocessing's listeners, Ray's) must stay under 108 bytes."""
    base = tempfile.gettempdir()
    return base if len(base) <= 40 else "/tmp"


def watch_parent(fd: int, job_dir: Path) -> None:
    """Block until the parent's end of the pipe closes (the parent ended, however it ended),
    then tear this run down: every process of its group (this one included), then the
    shared memory they held, then the job folder. A forked cleaner in a session of its own
    does it, after the group is gone, so nothing -- this process's main thread included --
    still writes into the folder while it is removed. Normal ends never get here: the
    parent closes the pipe only after the worker has exited."""
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    pgid = os.getpgrp()
    if os.fork() == 0:
        try:
            os.setsid()                 # out of the group it stops and kills
            teardown_group(pgid)
            remove_run_folders(job_dir)
        finally:
            os._exit(0)


def start_watching(watch_fd: str | None, job_dir: Path) -> None:
    """In a supervised child: tear down when the caller ends (:func:`watch_parent`)."""
    if watch_fd is not None:
        threading.Thread(target=watch_parent, args=(int(watch_fd), Path(job_dir)), daemon=True,
                         name="spikedeploy-parent-watch").start()


def exit_code_when_orphaned(code: int, watch_fd: str | None, limit: float = 30.0) -> int:
    """A supervised child's exit: if its caller is already gone, its watcher's cleaner is
    tearing the group down -- wait for it to end this process rather than exit first and
    leave the group's other processes and shared memory to nobody."""
    if watch_fd is not None:
        if select.select([int(watch_fd)], [], [], 0)[0]:     # EOF: the caller has ended
            time.sleep(limit)
    return code


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
            pid = None                    # not ours, or still being created, or its
        if pid is None:                   # creator died in the instant before owning it
            if not _older_than(folder, UNOWNED_STALE_SECONDS):
                continue
        elif process_alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


# An owner file is written right after its folder is made: a folder without one for this
# long lost its creator in between.
UNOWNED_STALE_SECONDS = 600.0


def _older_than(folder: Path, seconds: float) -> bool:
    try:
        return time.time() - folder.stat().st_mtime > seconds
    except OSError:
        return False
