"""The command line reads a foreign file under its producer's convention, says so on stderr
(one warning per assumption), and records the convention in every report."""
import json

import numpy as np
import pytest
import torch
from torch import nn

import sinabs
import sinabs.layers as sl

from spikedeploy.deploy.cli import main


@pytest.fixture
def sinabs_file(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 12), sl.IAF(spike_threshold=torch.tensor(1.0)),
                          nn.Linear(12, 3), sl.IAF(spike_threshold=torch.tensor(1.0)))
    with torch.no_grad():
        for i in (0, 2):
            model[i].weight.mul_(4)
    x = (np.random.default_rng(0).random((4, 30, 10)) < 0.4).astype(np.float32)   # (N, T, F)
    import nir
    nir.write(tmp_path / "sinabs.nir", sinabs.to_nir(model, torch.from_numpy(x[:1])))
    for layer in model:
        if hasattr(layer, "reset_states"):
            layer.reset_states()
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy().transpose(1, 0, 2)       # (T, N, 3)
    np.save(tmp_path / "x.npy", x.transpose(1, 0, 2))
    return tmp_path / "sinabs.nir", out


def test_simulate_runs_a_sinabs_file_as_sinabs_does_with_warnings(sinabs_file, tmp_path, capsys):
    path, theirs = sinabs_file
    assert theirs.max() >= 2
    assert main(["simulate", str(path), "--backend", "reference", "--input",
                 str(tmp_path / "x.npy"), "--save", str(tmp_path / "o.npz")]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line]
    assert warnings and all(w.startswith("spikedeploy: warning: ") for w in warnings)
    assert any("MultiSpike" in w for w in warnings)
    assert "convention sinabs (auto: looks written by sinabs" in captured.out
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["output"], theirs)


def test_reports_record_the_convention(sinabs_file, tmp_path, capsys):
    path, _ = sinabs_file
    x = str(tmp_path / "x.npy")
    assert main(["verify", str(path), "--input", x, "--json", str(tmp_path / "v.json")]) == 0
    assert json.loads((tmp_path / "v.json").read_text())["convention"]["name"] == "sinabs"
    assert main(["energy", str(path), "--input", x, "--out", str(tmp_path / "e")]) == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["convention"]["name"] == "sinabs"
    capsys.readouterr()
    assert main(["check", str(path), "--json", "--convention", "nir", "--dt", "1"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["convention"] == {"name": "nir", "reason": "given with --convention",
                                     "assumes": ""}


def test_an_unknown_convention_is_a_usage_error(sinabs_file, capsys):
    path, _ = sinabs_file
    with pytest.raises(SystemExit) as stop:
        main(["simulate", str(path), "--convention", "brian2"])
    assert stop.value.code == 2


def test_save_writes_nir_data_that_travels_with_the_graph(sinabs_file, tmp_path):
    import h5py
    import nir
    path, theirs = sinabs_file
    out = tmp_path / "spikes.nir"
    assert main(["simulate", str(path), "--backend", "reference", "--input",
                 str(tmp_path / "x.npy"), "--save", str(out)]) == 0
    data = nir.read_data(out)                     # NIR's own reader
    graph = nir.read(path, type_check=False)        # sinabs' Input keeps its time axis
    layer = data.nodes["3"].observables["spikes"]  # a multi-spike layer keeps its counts
    assert layer.data.shape == (4, 30, 3) and layer.dt == 1.0
    np.testing.assert_array_equal(layer.data.transpose(1, 0, 2), theirs)
    assert set(data.nodes) <= set(graph.nodes)
    with h5py.File(out) as f:
        assert f.attrs["spikedeploy.convention"] == "sinabs"


def test_a_dt_that_contradicts_the_producer_is_warned(sinabs_file, tmp_path, capsys):
    """The NIR paper's sinabs file run at snnTorch's dt: it runs, but not silently."""
    path, _ = sinabs_file
    assert main(["simulate", str(path), "--backend", "reference", "--input",
                 str(tmp_path / "x.npy"), "--dt", "1e-4"]) == 0
    err = capsys.readouterr().err
    assert "--dt 0.0001 replaces the sinabs convention's step 1" in err
