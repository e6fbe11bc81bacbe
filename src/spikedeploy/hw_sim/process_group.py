"""Tear down one Lava run's process group and exactly the shared memory it holds.

A Lava run lives in its own session (its worker is a session leader, so the
process group id is the worker's pid); Lava's runtime forks one OS process
per process model and connects them with POSIX shared memory
(``/dev/shm/psm_*``). Whoever tears a run down -- the parent after a failure
or interrupt, or the worker itself when its parent has died -- first
stops the group (SIGSTOP, so nobody makes a new segment meanwhile), reads
which ``/dev/shm`` segments its members have mapped or open (that is what
belongs to this run, whatever else is in ``/dev/shm``: concurrent runs keep
theirs), then SIGKILLs the group until nobody is left, then unlinks those
segments. Linux ``/proc`` only; no Lava import.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

SHM_DIR = Path("/dev/shm")
OWNER_FILE = "owner.pid"         # in a run's folders: the pid of the process that made them
SCRATCH_FILE = "scratch"         # in the job folder: the path of the worker's scratch folder
PROGRESS_ENV = "SPIKEDEPLOY_PROGRESS_FILE"   # where a worker reports the sample windows it ran


def member_states(pgid: int) -> dict[int, str]:
    """pid -> state letter of the live (non-zombie) processes of process group ``pgid``."""
    members = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":   # fields: state, ppid, pgrp
            members[int(entry)] = fields[0]
    return members


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    return list(member_states(pgid))


def _signal_group_until(pgid: int, signum: int, done, grace: float) -> None:
    """Send ``signum`` to the group again and again until ``done(member states)`` holds, the
    group is gone, or ``grace`` seconds pass (a process forked while a signal was delivered
    can escape it)."""
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            return
        if done(member_states(pgid)) or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def freeze_group(pgid: int, grace: float = 2.0) -> None:
    """SIGSTOP the group until every member has stopped, so that none creates shared memory
    or forks while what it holds is read (a run still starting up does both)."""
    _signal_group_until(pgid, signal.SIGSTOP,
                        lambda states: all(s in "Tt" for s in states.values()), grace)


def shared_memory_of(pids) -> set[str]:
    """Names of the /dev/shm segments these processes have mapped or open."""
    names: set[str] = set()
    prefix = str(SHM_DIR) + "/"
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    parts = line.rstrip("\n").split(maxsplit=5)   # addr perms off dev inode path
                    path = parts[5] if len(parts) == 6 else ""
                    if path.startswith(prefix):
                        names.add(path[len(prefix):].removesuffix(" (deleted)"))
        except OSError:
            pass
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith(prefix):
                    names.add(target[len(prefix):].removesuffix(" (deleted)"))
        except OSError:
            pass
    return {n for n in names if n and "/" not in n}


def kill_group(pgid: int, grace: float = 10.0) -> None:
    """SIGKILL the group until none of its members is left."""
    _signal_group_until(pgid, signal.SIGKILL, lambda states: not states, grace)


def unlink_shared_memory(names) -> None:
    for name in names:
        try:
            (SHM_DIR / name).unlink()
        except OSError:
            pass


def teardown_group(pgid: int) -> None:
    """Kill the run's group and remove the shared memory its members held: frozen first,
    so what they hold is read after the last segment was made."""
    freeze_group(pgid)
    names = shared_memory_of(group_members(pgid))
    kill_group(pgid)
    unlink_shared_memory(names)


def remove_run_folders(job_dir: Path) -> None:
    """A run's job folder and the worker scratch folder it names."""
    try:
        shutil.rmtree((Path(job_dir) / SCRATCH_FILE).read_text(), ignore_errors=True)
    except OSError:
        pass
    shutil.rmtree(job_dir, ignore_errors=True)
