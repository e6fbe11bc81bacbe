"""--workers N and --executor ray give the serial run's reports; a killed shard is retried
once, then one line, and leaves nothing behind."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from spikedeploy.deploy.cli import main
from spikedeploy.deploy.provenance import comparable
from spikedeploy.deploy.shard_local import JOB_PREFIX
from spikedeploy.deploy.shards import ScaleOut, plan_shards
from spikedeploy.errors import SpikedeployError

from helpers import lava_workers, processes, stat_fields


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray on this machine's two cores, as the issue prescribes; our runs reuse it."""
    import shutil
    ray = pytest.importorskip("ray")
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(context.address_info["session_dir"], ignore_errors=True)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    from spikedeploy.deploy.stages import train_and_save
    from spikedeploy.export import export_checkpoint, write_nir
    out = tmp_path_factory.mktemp("cnn")
    train_and_save(out / "ckpt", model="snn-cnn", epochs=1, train_subset=200,
                   shared_neuron_params=True, progress=lambda m: None)
    write_nir(export_checkpoint(out / "ckpt"), out / "cnn.nir")
    return out / "cnn.nir"


def _report(tmp_path, argv, mode):
    out = tmp_path / f"{mode}.json"
    extra = {"serial": [], "workers": ["--workers", "2"],
             "ray": ["--executor", "ray", "--workers", "2"]}[mode]
    command = argv[0]
    if command == "energy":
        code = main([*argv, "-q", "-o", str(tmp_path / mode), *extra])
        text = (tmp_path / mode / "report.json").read_text()
    else:
        code = main([*argv, "-q", "--json", str(out), *extra])
        text = out.read_text()
    assert code == 0
    return comparable(json.loads(text))


def _same_reports(tmp_path, argv, modes=("serial", "workers", "ray")):
    reports = {mode: _report(tmp_path, argv, mode) for mode in modes}
    for mode in modes[1:]:
        assert reports[mode] == reports["serial"], mode
    return reports["serial"]


COMMANDS = {
    "simulate": ["simulate", "{graph}", "--samples", "37"],
    "energy": ["energy", "{graph}", "--samples", "37"],
    "sweep": ["sweep", "{graph}", "--samples", "37", "--gammas", "0.9,1.1"],
    "verify": ["verify", "{graph}", "--samples", "37", "--no-lava", "--precision", "fixed",
               "--max-disagreement", "1"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_reference_reports_equal_serial(trained, cnn, ray_local, tmp_path, command, network):
    graph = str(trained["nir"] if network == "mlp" else cnn)
    argv = [a.format(graph=graph) for a in COMMANDS[command]]
    report = _same_reports(tmp_path, argv)
    assert report                               # something was compared


LAVA_COMMANDS = {
    "simulate": ["simulate", "{graph}", "--samples", "9", "--backend", "lava"],
    "energy": ["energy", "{graph}", "--samples", "9", "--backend", "lava"],
    "sweep": ["sweep", "{graph}", "--samples", "9", "--gammas", "1.1", "--backend", "lava"],
    "verify": ["verify", "{graph}", "--samples", "9", "--precision", "fixed",
               "--max-disagreement", "1"],
}


@pytest.mark.lava
@pytest.mark.parametrize("command", list(LAVA_COMMANDS))
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_lava_reports_equal_serial(trained, cnn, ray_local, tmp_path, command, network):
    graph = str(trained["nir"] if network == "mlp" else cnn)
    argv = [a.format(graph=graph) for a in LAVA_COMMANDS[command]]
    report = _same_reports(tmp_path, argv)
    if command == "verify":            # first divergences and all: the same report
        assert report["comparisons"]["reference vs lava"]["agrees"]


@pytest.mark.lava
def test_verify_target_loihi2_sharded(trained, tmp_path):
    from spikedeploy.deploy.stages import train_and_save
    from spikedeploy.export import export_checkpoint, write_nir
    train_and_save(tmp_path / "ck", epochs=1, train_subset=100, shared_neuron_params=True,
                   progress=lambda m: None)
    write_nir(export_checkpoint(tmp_path / "ck"), tmp_path / "m.nir")
    argv = ["verify", str(tmp_path / "m.nir"), "--samples", "7", "--target", "loihi2",
            "--max-disagreement", "1"]
    report = _same_reports(tmp_path, argv, modes=("serial", "workers"))
    assert {"reference vs loihi2", "reference vs netx"} <= set(report["comparisons"])


def test_shards_are_contiguous_and_deterministic():
    shards = plan_shards(37, 4)
    assert [(s.start, s.stop) for s in shards] == [(0, 9), (9, 18), (18, 28), (28, 37)]
    assert plan_shards(37, 4) == shards
    assert [(s.start, s.stop) for s in plan_shards(2, 5)] == [(0, 1), (1, 2)]
    assert shards[2].describe() == "shard 3/4 (samples 18..27)"


@pytest.mark.parametrize("scale,expect", [
    (ScaleOut(workers=0), "--workers"), (ScaleOut(executor="dask"), "unknown executor"),
    (ScaleOut(workers=2, timeout=0), "--shard-timeout"),
    (ScaleOut(ray_address="10.0.0.1:6379"), "--ray-address goes with --executor ray")])
def test_bad_scale_options(scale, expect):
    with pytest.raises(SpikedeployError, match=expect):
        scale.validate()


def test_bad_workers_fail_before_any_run(trained, capsys):
    assert main(["simulate", str(trained["nir"]), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "spikedeploy: error: --workers must be positive, got 0"


# ---------------------------------------------------------------- faults
# Each fault test runs the CLI in its own session with TMPDIR in the test's folder and
# checks, within 10 s of its end, that no Lava worker, /dev/shm segment or job folder
# of the run is left.

def _lava_workers_under(pid: int) -> list[int]:
    return [child for child, f in processes("cmdline", "stat")
            if int(stat_fields(f["stat"])[1]) == pid and b"lava_worker" in f["cmdline"]]


def _shard_workers(tag: str) -> list[int]:
    """Shard worker processes whose job folder name holds ``tag``."""
    return [pid for pid, f in processes("cmdline")
            if b"spikedeploy.deploy.shard_worker" in f["cmdline"] and tag.encode() in f["cmdline"]]


class _Run:
    """``spikedeploy simulate --backend lava`` on 40 samples in a subprocess, and what was
    there before it (Lava workers, shared memory) to compare with after it."""

    def __init__(self, graph, tmp_path, *options, steps=120):
        self.tmp, self.out = tmp_path, tmp_path / "out.json"
        self.shm, self.workers = set(os.listdir("/dev/shm")), lava_workers()
        env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
        self.cli = subprocess.Popen(
            [sys.executable, "-m", "spikedeploy.deploy.cli", "simulate", str(graph),
             "--backend", "lava", "--samples", "40", "--steps", str(steps), *options,
             "--json", str(self.out)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.deadline = time.monotonic() + 120

    def running(self) -> None:
        assert time.monotonic() < self.deadline, "the run's Lava shards did not start"
        assert self.cli.poll() is None, self.cli.stderr.read().decode()

    def kill_shard(self, tag: str, spare=()) -> int:
        """SIGKILL a shard worker named ``tag`` (not in ``spare``) once its Lava run is up."""
        while True:
            self.running()
            for pid in _shard_workers(tag):
                if pid not in spare and _lava_workers_under(pid):
                    time.sleep(0.5)
                    os.kill(pid, signal.SIGKILL)
                    return pid
            time.sleep(0.05)

    def finish(self, timeout=300) -> tuple[int, str]:
        self.cli.wait(timeout=timeout)
        return self.cli.returncode, self.cli.stderr.read().decode().strip()

    def assert_nothing_left(self, within=10.0) -> None:
        deadline = time.monotonic() + within

        def left():
            return (lava_workers() - self.workers, set(os.listdir("/dev/shm")) - self.shm,
                    list(self.tmp.glob(JOB_PREFIX + "*")) + list(self.tmp.glob("spikedeploy-*")),
                    list(self.tmp.glob(".out.json*")))
        while any(left()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(left()), left()

    def close(self) -> None:
        if self.cli.poll() is None:
            os.killpg(self.cli.pid, signal.SIGKILL)
            self.cli.wait()


@pytest.fixture
def lava_run(trained, tmp_path):
    runs = []

    def start(*options, **kw):
        runs.append(_Run(trained["nir"], tmp_path, *options, **kw))
        return runs[-1]
    yield start
    for run in runs:
        run.close()


@pytest.mark.lava
@pytest.mark.parametrize("options,tag,shard", [
    (("--workers", "2"), "2of2", "shard 2/2 (samples 20..39)"),
    # under Ray the shard's process is a supervised child of the Ray task
    (("--executor", "ray"), "ray", "shard 1/1 (samples 0..39)")], ids=["local", "ray"])
def test_killed_shard_twice_is_one_line_and_leaves_nothing(lava_run, options, tag, shard):
    run = lava_run(*options)
    first = run.kill_shard(f"{JOB_PREFIX}{tag}-")
    run.kill_shard(f"{JOB_PREFIX}{tag}-", spare={first})        # its retry
    code, err = run.finish(timeout=60)
    assert code == 2, err
    assert err == (f"spikedeploy: error: {shard} failed 2 times: its process was killed by "
                   "signal 9")
    assert not run.out.exists()
    run.assert_nothing_left()


@pytest.mark.lava
def test_killed_shard_once_is_retried_and_the_run_is_whole(lava_run, trained, tmp_path):
    run = lava_run("--workers", "2")
    run.kill_shard(f"{JOB_PREFIX}1of2-")
    code, err = run.finish()
    assert code == 0, err
    serial = tmp_path / "serial.json"
    assert main(["simulate", str(trained["nir"]), "--samples", "40", "--steps", "120",
                 "--json", str(serial), "-q"]) == 0      # the reference: Lava's equal
    sharded = json.loads(run.out.read_text())
    assert sharded["samples"] == 40
    assert sharded["spikes"] == json.loads(serial.read_text())["spikes"]
    run.assert_nothing_left()


@pytest.mark.lava
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_shard_over_its_time_limit_is_retried_then_one_line(lava_run, executor):
    run = lava_run("--workers", "2", "--executor", executor, "--shard-timeout", "1.5")
    code, err = run.finish(timeout=120)
    assert code == 2, err
    assert err.startswith("spikedeploy: error: shard ") and err.endswith(
        "failed 2 times: exceeded its 1.5 s time limit"), err
    assert len(err.splitlines()) == 1 and not run.out.exists()
    run.assert_nothing_left()


@pytest.mark.lava
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_ctrl_c_stops_every_shard(lava_run, executor):
    """SIGINT once both shards' Lava runs are up: exit 130, no output, nothing left."""
    run = lava_run("--workers", "2", "--executor", executor, steps=150)
    while len(lava_workers() - run.workers) < 2:
        run.running()
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(run.cli.pid, signal.SIGINT)
    code, err = run.finish(timeout=60)
    assert code == 130, err
    assert not run.out.exists()
    run.assert_nothing_left()


def test_results_merge_in_sample_order(trained):
    """Shards concatenate back in order: a run sharded 3 ways equals the serial records."""
    from spikedeploy.deploy.inputs import resolve_inputs
    from spikedeploy.deploy.runs import run_backend
    program = trained["program"]
    batch = resolve_inputs(program, 11, None, None, None, None, 100)
    serial = run_backend(None, program, batch, "reference", "float")
    sharded = run_backend(None, program, batch, "reference", "float",
                          scale=ScaleOut(workers=3))
    assert sharded.info["shards"] == 3
    for name, rec in serial.records.items():
        assert np.array_equal(rec, sharded.records[name]), name
