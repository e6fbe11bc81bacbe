"""Tiny inputs that declare huge work are refused before anything that big is allocated.

Each case runs the CLI in a subprocess under ``RLIMIT_AS`` (so a regression
fails with a MemoryError or a kill instead of taking the machine down) and
must end in one line, exit 1, within seconds.
"""
import resource
import subprocess
import sys

import h5py
import nir
import numpy as np
import pytest

from helpers import mlp_graph

ADDRESS_SPACE = 3 << 30        # bytes: far below what any refused case would allocate


def _limited():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _run(argv, timeout=60):
    return subprocess.run([sys.executable, "-m", "spikedeploy.deploy.cli"] + argv,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_limited)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    one = np.array([1.0])
    huge = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([10 ** 9])),
               "lif": nir.LIF(tau=one * 1e-3, r=one * 10, v_leak=one * 0, v_threshold=one,
                              v_reset=one * 0),
               "output": nir.Output(output_type=np.array([10 ** 9]))},
        edges=[("input", "lif"), ("lif", "output")], type_check=False)
    nir.write(root / "huge_input.nir", huge)                     # ~30 KB on disk
    small = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])),
                                "fc": nir.Linear(weight=np.ones((3, 4))),
                                "output": nir.Output(output_type=np.array([3]))},
                         edges=[("input", "fc"), ("fc", "output")])
    nir.write(root / "declared.nir", small)
    with h5py.File(root / "declared.nir", "a") as f:             # declared, never written
        del f["node/nodes/fc/weight"]
        f.create_dataset("node/nodes/fc/weight", shape=(16384, 16384), dtype="f8",
                         chunks=(64, 64))
    nir.write(root / "good.nir", mlp_graph(np.random.default_rng(0), sizes=(4, 8, 3)))
    np.save(root / "x.npy", np.zeros((5, 2, 4)))
    return root


CASES = {
    "Input of 10^9 values": (["simulate", "{r}/huge_input.nir", "--backend", "reference",
                              "--input", "{r}/x.npy"], "node 'input'"),
    "check of the same": (["check", "{r}/huge_input.nir"], None),
    "declared 16384x16384 weight under --max-memory": (
        ["check", "{r}/declared.nir", "--max-memory", "512M"], None),
    "10^7 steps": (["simulate", "{r}/good.nir", "--backend", "reference", "--samples", "10",
                    "--steps", "10000000"], "10 samples x 10000000 steps"),
    "a run over --max-memory": (["simulate", "{r}/good.nir", "--backend", "reference",
                                 "--input", "{r}/x.npy", "--max-memory", "1K"],
                                "more than the memory limit of 1.0 KiB"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_declared_sizes_beyond_the_limit_are_refused_first(case, files):
    argv, expect = CASES[case]
    proc = _run([a.format(r=files) for a in argv])
    out, err = proc.stdout, proc.stderr.strip()
    assert proc.returncode == (1 if argv[0] == "check" else 2), (proc.returncode, err[-1500:],
                                                                   out[-1500:])
    if argv[0] == "check":
        assert "more than the memory limit" in out, out
    else:
        assert len(err.splitlines()) == 1 and err.startswith("spikedeploy: error:"), err
        assert "more than the memory limit" in err and expect in err, err


def test_bad_max_memory_is_one_line(files, capsys):
    from spikedeploy.deploy.cli import main
    assert main(["check", str(files / "good.nir"), "--max-memory", "lots"]) == 2
    assert "memory size 'lots'" in capsys.readouterr().err


def _edit_config(ckpt, **changes):
    import json
    config = json.loads((ckpt / "config.json").read_text())
    config.update(changes)
    (ckpt / "config.json").write_text(json.dumps(config))


def test_a_checkpoint_config_declaring_a_huge_model_is_refused_in_bounded_memory(trained,
                                                                                 tmp_path):
    import shutil
    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained["ckpt"], ckpt)
    _edit_config(ckpt, hidden=2 * 10 ** 7)               # ~5 GB of float32 weights
    proc = _run(["export", str(ckpt), "-o", str(tmp_path / "m.nir")])
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err[-1500:]
    assert "config.json: cannot rebuild the 'mlp' model: the model it declares" in err, err
    assert not (tmp_path / "m.nir").exists()


@pytest.mark.parametrize("option, value, expect", [
    ("--hidden", "20000000", "training mlp with these sizes needs about"),
    ("--steps", "100000000", "training mlp with these sizes needs about"),
])
def test_training_sizes_beyond_the_limit_are_refused_before_training(option, value, expect,
                                                                    tmp_path):
    proc = _run(["train", option, value, "-o", str(tmp_path / "ckpt")])
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and err[-1].startswith("spikedeploy: error:"), err
    assert expect in err[-1] and "more than the memory limit" in err[-1], err
    assert not (tmp_path / "ckpt").exists()
