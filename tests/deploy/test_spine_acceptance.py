"""Issue #3 acceptance: the trained digits MLP through NIR onto Lava, and its energy report."""
import json
import subprocess
import sys

import numpy as np
import pytest

from spikedeploy.deploy.cli import main
from spikedeploy.deploy.inputs import resolve_inputs
from spikedeploy.deploy.runs import run_backend
from spikedeploy.deploy.stages import checkpoint_records
from spikedeploy.energy import energy_report
from spikedeploy.readout import accuracy


@pytest.mark.lava
def test_lava_float_spikes_identical_to_snntorch(trained):
    program = trained["program"]
    batch = resolve_inputs(program, 24, None, None, None, None, 24)
    snn = checkpoint_records(trained["ckpt"], batch.x)
    lava = run_backend(trained["graph"], program, batch, "lava", "float")
    assert lava.latency == 2
    for layer in ("lif1", "lif2"):
        assert lava.records[layer].shape == snn[layer].shape
        np.testing.assert_array_equal(lava.records[layer], snn[layer], err_msg=layer)
    assert snn["lif1"].sum() > 1000    # the comparison is not between silent networks


@pytest.mark.lava
def test_lava_fixed_accuracy_within_two_points_of_snntorch(trained):
    program = trained["program"]
    n = 360   # the whole digits test split
    batch = resolve_inputs(program, n, None, None, None, None, n)
    assert batch.x.shape[1] == 360
    snn = checkpoint_records(trained["ckpt"], batch.x)
    lava_fixed = run_backend(trained["graph"], program, batch, "lava", "fixed")
    acc_snn = accuracy(snn["output"], batch.labels)
    acc_fixed = accuracy(lava_fixed.output(), batch.labels)
    assert acc_snn > 0.9
    assert abs(acc_fixed - acc_snn) <= 0.02, (acc_snn, acc_fixed)


def test_energy_synops_equal_independent_count_from_snntorch(trained):
    program = trained["program"]
    batch = resolve_inputs(program, 50, None, None, None, None, 50)
    report = energy_report(run_backend(trained["graph"], program, batch, "reference", "float"))
    snn = checkpoint_records(trained["ckpt"], batch.x)
    # independent count: every input spike times the non-zero weights in its column
    w1 = trained["graph"].nodes["fc1"].weight
    w2 = trained["graph"].nodes["fc2"].weight
    fan1 = np.count_nonzero(w1, axis=0)
    fan2 = np.count_nonzero(w2, axis=0)
    expected = {"fc1": float((batch.x.reshape(25, 50, 64) * fan1).sum()) / 50,
                "fc2": float((snn["lif1"] * fan2).sum()) / 50}
    got = {row["layer"].split(" ")[0]: row["ops_nonzero_weights"] for row in report.per_inference_rows()}
    for layer, value in expected.items():
        assert got[layer] == pytest.approx(value, rel=1e-12), layer


def test_corrupt_checkpoint_one_line_error_and_no_output(trained, tmp_path, capsys):
    import shutil
    bad = tmp_path / "ckpt"
    shutil.copytree(trained["ckpt"], bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    out = tmp_path / "model.nir"
    assert main(["export", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "spikedeploy: error:" in err
    assert not out.exists() and list(tmp_path.glob(".model.nir*")) == []


@pytest.mark.lava
def test_demo_command_writes_every_artifact(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "spikedeploy.deploy.cli", "demo", "--out", str(out),
                           "--samples", "30"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("checkpoint/model.safetensors", "checkpoint/config.json", "model.nir",
                 "rasters_lava_float.npz", "rasters_lava_fixed.npz", "report.json", "report.csv",
                 "report.html", "summary.json", "model.net", "resources.html", "resources.csv"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lava_float_identical_to_reference"] and summary["lava_fixed_bit_exact_with_reference"]
    assert summary["lava_float_accuracy"] == summary["snntorch_accuracy"]
    assert summary["netx_bit_exact_with_target_reference"] and summary["loihi2_cores"] >= 2
    assert "snnTorch accuracy" in proc.stdout and "energy per inference" in proc.stdout
    # the report: provenance, accuracy per backend, float and fixed point side by side
    report = json.loads((out / "report.json").read_text())
    assert report["provenance"]["input SHA-256"] and "demo" in report["provenance"]["command"]
    assert set(report["accuracy"]) == {"snnTorch", "float", "fixed", "Loihi 2 netx"}
    assert set(report["comparison"]) == {"float", "fixed"}
    assert report["comparison"]["fixed"]["accuracy"] == summary["lava_fixed_accuracy"]
    html = (out / "report.html").read_text()
    for text in ("Provenance", "input SHA-256", "accuracy, fixed", "accuracy, snnTorch",
                 "Float and fixed point side by side", "dead", "label"):
        assert text in html, text
