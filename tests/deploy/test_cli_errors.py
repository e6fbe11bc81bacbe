"""Bad input: one line on stderr, non-zero exit, no traceback, no partial output file."""
import subprocess
import sys

import h5py
import nir
import numpy as np
import pytest

from spikedeploy.deploy.cli import main

from helpers import mlp_graph


@pytest.fixture
def nir_file(tmp_path, rng):
    path = tmp_path / "model.nir"
    nir.write(path, mlp_graph(rng, sizes=(64, 16, 10)))
    return path


def _fails_cleanly(capsys, argv, expect):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("spikedeploy: error:") and expect in err, err
    assert "Traceback" not in err


def test_missing_file(capsys, tmp_path):
    _fails_cleanly(capsys, ["simulate", str(tmp_path / "nope.nir"), "--backend", "reference"],
                   "no such file")


def test_truncated_nir_file(capsys, tmp_path, nir_file):
    data = nir_file.read_bytes()
    bad = tmp_path / "truncated.nir"
    bad.write_bytes(data[: len(data) // 2])
    _fails_cleanly(capsys, ["simulate", str(bad), "--backend", "reference"], "truncated.nir")


def test_text_file_is_not_nir(capsys, tmp_path):
    bad = tmp_path / "notes.nir"
    bad.write_text("hello")
    _fails_cleanly(capsys, ["energy", str(bad)], "not a NIR file")


def test_hdf5_without_graph_is_not_nir(capsys, tmp_path):
    bad = tmp_path / "other.h5"
    with h5py.File(bad, "w") as f:
        f["x"] = np.arange(3)
    _fails_cleanly(capsys, ["simulate", str(bad)], "not a NIR file")


def test_wrong_input_shape_leaves_no_output(capsys, tmp_path, nir_file):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((5, 2, 10)))
    out = tmp_path / "out.npz"
    _fails_cleanly(capsys, ["simulate", str(nir_file), "--backend", "reference", "--input", str(x),
                            "--save", str(out)], "expected time-major")
    assert not out.exists()


def test_graph_without_dt_asks_for_it(capsys, tmp_path, rng):
    g = mlp_graph(rng, sizes=(64, 8, 10))
    g.metadata = {}
    for name in ("lif1", "lif2"):       # r = tau/dt at no round dt: no producer recognised
        g.nodes[name].r = g.nodes[name].tau / 3.7e-4
    path = tmp_path / "nodt.nir"
    nir.write(path, g)
    _fails_cleanly(capsys, ["simulate", str(path), "--backend", "reference"], "--dt")


def test_simulate_reference_saves_records(capsys, tmp_path, nir_file, rng):
    x = tmp_path / "x.npy"
    np.save(x, (rng.random((6, 3, 64)) < 0.5).astype(np.float32))
    out = tmp_path / "out.npz"
    assert main(["simulate", str(nir_file), "--backend", "reference", "--input", str(x),
                 "--save", str(out)]) == 0
    with np.load(out) as f:
        assert f["output"].shape == (6, 3, 10)
        assert f["layer/lif1"].shape == (6, 3, 16)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_real_process_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    proc = subprocess.run([sys.executable, "-m", "spikedeploy.deploy.cli", "simulate", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_threshold_scale_option_changes_spike_counts(capsys, tmp_path, nir_file, rng):
    x = tmp_path / "x.npy"
    np.save(x, (rng.random((8, 4, 64)) < 0.5).astype(np.float32))
    counts = {}
    for gamma in ("0.5", "1.0"):
        out = tmp_path / f"out{gamma}.npz"
        assert main(["simulate", str(nir_file), "--backend", "reference", "--input", str(x),
                     "--threshold-scale", gamma, "--save", str(out)]) == 0
        with np.load(out) as f:
            counts[gamma] = f["layer/lif1"].sum()
    assert counts["0.5"] > counts["1.0"]
    assert "thresholds x 0.5" in capsys.readouterr().out
    _fails_cleanly(capsys, ["simulate", str(nir_file), "--backend", "reference", "--input", str(x),
                            "--threshold-scale", "-1"], "threshold scale")


def test_fixed_simulate_reports_quantisation_error_per_layer(capsys, tmp_path, nir_file, rng):
    x = tmp_path / "x.npy"
    np.save(x, (rng.random((5, 2, 64)) < 0.5).astype(np.float32))
    assert main(["simulate", str(nir_file), "--backend", "reference", "--precision", "fixed",
                 "--input", str(x)]) == 0
    out = capsys.readouterr().out
    assert "quantisation error per layer" in out
    assert "lif1: weight[fc1]" in out and "lif2: weight[fc2]" in out


def test_a_deeply_nested_checkpoint_config_is_one_line(trained, tmp_path, capsys):
    import shutil
    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained["ckpt"], ckpt)
    (ckpt / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.nir")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"spikedeploy: error: {ckpt / 'config.json'}: not valid JSON (nested too deeply)"
