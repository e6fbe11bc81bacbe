"""The Ray a command starts: one per command, local unless named, gone afterwards; a bad
address is one line, quickly; signals during a Ray run end it as they end any run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from spikedeploy.deploy.cli import main

from helpers import lava_workers

ray = pytest.importorskip("ray")


@pytest.fixture
def no_ray():
    assert not ray.is_initialized()
    yield
    assert not ray.is_initialized()         # the command shut down what it started


def test_one_local_ray_per_command_and_nothing_left(trained, tmp_path, monkeypatch, no_ray):
    """A sweep runs a sharded simulation per point on one Ray; a Ray named only by the
    environment (RAY_ADDRESS) is not joined; the local Ray's session folder goes with it."""
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")       # nothing listens there
    starts = []
    real_init = ray.init

    def counting_init(*args, **kwargs):
        starts.append(kwargs.get("address"))
        context = real_init(*args, **kwargs)
        starts.append(context.address_info["session_dir"])
        return context
    monkeypatch.setattr(ray, "init", counting_init)
    out = tmp_path / "sweep.json"
    assert main(["sweep", str(trained["nir"]), "--samples", "6", "--gammas", "0.8,1.0,1.2",
                 "--executor", "ray", "--workers", "2", "-q", "--json", str(out)]) == 0
    assert len(json.loads(out.read_text())["rows"]) == 3
    assert len(starts) == 2 and starts[0] == "local"
    assert not os.path.exists(starts[1])


@pytest.mark.parametrize("address,expect", [
    ("127.0.0.1:1", "no Ray cluster answers there"),
    ("not-an-address", "expected HOST:PORT")])
def test_bad_ray_address_is_one_line_quickly(trained, capsys, address, expect, no_ray):
    started = time.monotonic()
    code = main(["simulate", str(trained["nir"]), "--samples", "4", "--executor", "ray",
                 "--ray-address", address])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expect in err, err
    assert time.monotonic() - started < 30


def test_shard_timeout_needs_shards(trained, capsys):
    assert main(["simulate", str(trained["nir"]), "--shard-timeout", "5"]) == 2
    assert "--shard-timeout goes with --workers" in capsys.readouterr().err


@pytest.mark.lava
def test_sigterm_during_a_ray_run(trained, tmp_path):
    """Ray installs its own SIGTERM handler; ours is put back, so SIGTERM ends the run as
    it ends any: one line, 128 + 15, nothing of the run left."""
    before, shm = lava_workers(), set(os.listdir("/dev/shm"))
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    cli = subprocess.Popen(
        [sys.executable, "-m", "spikedeploy.deploy.cli", "simulate", str(trained["nir"]),
         "--backend", "lava", "--samples", "40", "--steps", "150", "--executor", "ray",
         "--workers", "2", "--json", str(tmp_path / "out.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(lava_workers() - before) < 2:
            assert time.monotonic() < deadline and cli.poll() is None, cli.stderr.read()
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(cli.pid, signal.SIGTERM)
        cli.wait(timeout=60)
        err = cli.stderr.read().decode().strip()
        assert cli.returncode == 128 + signal.SIGTERM, err
        assert err == "spikedeploy: terminated by SIGTERM"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (lava_workers() - before
                                               or set(os.listdir("/dev/shm")) - shm):
            time.sleep(0.1)
        assert not lava_workers() - before and not set(os.listdir("/dev/shm")) - shm
        assert not (tmp_path / "out.json").exists()
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()
