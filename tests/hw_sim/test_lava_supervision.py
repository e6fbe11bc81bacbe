"""A Lava run never outlives its caller and never touches another run's resources.

Fault injection, bounded in time: the CLI runs a Lava simulation in a
subprocess (its own session, TMPDIR in the test's folder); once the worker's
Lava processes are up, the CLI is sent SIGTERM, SIGHUP or SIGKILL. Within 5 s
no process of the run, none of the shared-memory segments its processes held
and no job folder may remain. A concurrent run keeps going and finishes with
the right output.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nir
import numpy as np
import pytest

from spikedeploy.hw_sim.lava_runner import JOB_PREFIX, remove_stale_jobs
from spikedeploy.hw_sim.supervised import SCRATCH_PREFIX
from spikedeploy.hw_sim.process_group import OWNER_FILE, group_members, shared_memory_of

from helpers import mlp_graph, processes, stat_fields

pytestmark = pytest.mark.lava


@pytest.fixture
def model(tmp_path, rng):
    path = tmp_path / "m.nir"
    nir.write(path, mlp_graph(rng, sizes=(64, 32, 10)))
    return path


def _cli(model, tmp_path, samples, steps, out):
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "spikedeploy.deploy.cli", "simulate", str(model), "--backend",
         "lava", "--samples", str(samples), "--steps", str(steps), "--save", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _worker_of(pid: int) -> int | None:
    for child, f in processes("cmdline", "stat"):
        if int(stat_fields(f["stat"])[1]) == pid and b"lava_worker" in f["cmdline"]:
            return child
    return None


def _wait_until_running(cli, timeout=90.0):
    """(worker pid, the shared-memory segments the run holds) once Lava's processes are up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker = _worker_of(cli.pid)
        if worker is not None:
            members = group_members(worker)
            shm = shared_memory_of(members)
            if len(members) > 3 and shm:
                return worker, shm
        if cli.poll() is not None:
            raise AssertionError(f"run ended before the fault: {cli.stderr.read().decode()}")
        time.sleep(0.1)
    raise AssertionError("the Lava run did not start")


def _scratch_of(pid: int) -> list[Path]:
    """The worker scratch folders (TMPDIR, multiprocessing's pymp-*) created for CLI ``pid``."""
    found = []
    for folder in Path("/tmp").glob(SCRATCH_PREFIX + "*"):
        try:
            if int((folder / OWNER_FILE).read_text()) == pid:
                found.append(folder)
        except (OSError, ValueError):
            pass
    return found


def _assert_gone(worker, shm, tmp_path, cli_pid, within=5.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        left = group_members(worker)
        segments = {s for s in shm if os.path.exists(f"/dev/shm/{s}")}
        jobs = (list(tmp_path.glob(JOB_PREFIX + "*")) + list(tmp_path.glob(SCRATCH_PREFIX + "*"))
                + list(tmp_path.glob("pymp-*")) + _scratch_of(cli_pid))
        if not left and not segments and not jobs:
            return
        time.sleep(0.1)
    raise AssertionError(f"left behind after {within} s: processes {left}, "
                         f"segments {sorted(segments)}, folders {jobs}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=lambda s: signal.Signals(s).name)
def test_killing_the_cli_ends_the_run_and_removes_what_it_held(model, tmp_path, signum):
    cli = _cli(model, tmp_path, samples=60, steps=100, out=tmp_path / "o.npz")
    try:
        worker, shm = _wait_until_running(cli)
        os.kill(cli.pid, signum)
        cli.wait(timeout=30)
        _assert_gone(worker, shm, tmp_path, cli.pid)
        if signum != signal.SIGKILL:
            err = cli.stderr.read().decode().strip()
            assert cli.returncode == 128 + signum, err
            assert err == f"spikedeploy: terminated by {signal.Signals(signum).name}"
        assert not (tmp_path / "o.npz").exists()
        assert not list(tmp_path.glob(".o.npz*"))
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_interrupting_one_run_leaves_a_concurrent_run_intact(model, tmp_path):
    survivor_out, victim_out = tmp_path / "a.npz", tmp_path / "b.npz"
    survivor = _cli(model, tmp_path, samples=40, steps=60, out=survivor_out)
    victim = _cli(model, tmp_path, samples=60, steps=100, out=victim_out)
    try:
        survivor_worker, survivor_shm = _wait_until_running(survivor)
        worker, shm = _wait_until_running(victim)
        assert not shm & survivor_shm
        os.kill(victim.pid, signal.SIGINT)
        victim.wait(timeout=30)
        _assert_gone(worker, shm, tmp_path / "nothing", victim.pid)   # not the survivor's job
        assert survivor.poll() is None or survivor.returncode == 0
        survivor.wait(timeout=300)
        assert survivor.returncode == 0, survivor.stderr.read().decode()
        with np.load(survivor_out) as f:
            assert f["output"].shape == (60, 40, 10)
        assert not victim_out.exists()
    finally:
        for p in (survivor, victim):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_stale_job_folders_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live = tmp_path / (JOB_PREFIX + "dead"), tmp_path / (JOB_PREFIX + "live")
    for folder, pid in ((stale, dead.pid), (live, os.getpid())):
        folder.mkdir()
        (folder / OWNER_FILE).write_text(str(pid))
        (folder / "inputs.npz").write_bytes(b"x" * 1000)
    assert remove_stale_jobs(tmp_path) == [stale]
    assert not stale.exists() and live.exists()


def test_folders_whose_creator_died_before_owning_them(tmp_path):
    """A folder killed between its creation and its owner file: removed once it is old
    (a creator writes the owner file at once), never while it may still be being made."""
    from spikedeploy.hw_sim.supervised import UNOWNED_STALE_SECONDS
    old, fresh = tmp_path / (JOB_PREFIX + "old"), tmp_path / (JOB_PREFIX + "fresh")
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "inputs.npz").write_bytes(b"x")
    past = time.time() - UNOWNED_STALE_SECONDS - 60
    os.utime(old, (past, past))
    assert remove_stale_jobs(tmp_path) == [old]
    assert fresh.exists()
