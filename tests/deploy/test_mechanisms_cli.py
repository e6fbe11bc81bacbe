"""The mechanisms through the command line: train (stages / ``train --model``), export, verify
(snnTorch vs reference vs Lava) and energy, for every demo model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikedeploy.deploy.cli import TRAIN_MODELS, build_parser, main
from spikedeploy.deploy.stages import checkpoint_records, train_and_save, train_options
from spikedeploy.errors import SpikedeployError
from spikedeploy.models.recipes import RECIPES


def test_cli_model_list_matches_the_recipes():
    assert list(TRAIN_MODELS) == list(RECIPES)


def test_train_options_map_to_the_recipe_keywords():
    args = build_parser().parse_args(["train", "--model", "fastsnn", "--bits", "4", "--onnx", "m.onnx",
                                      "--hidden", "32", "--train-subset", "100"])
    assert train_options(args) == {"model": "fastsnn", "seed": 0, "bits": 4, "onnx_path": "m.onnx",
                                   "hidden": 32, "train_subset": 100}
    args = build_parser().parse_args(["train", "--model", "sdm-cnn", "--no-tsm", "--steps", "6"])
    assert train_options(args) == {"model": "sdm-cnn", "seed": 0, "tsm": False, "num_steps": 6}
    assert train_options(build_parser().parse_args(["train"])) == {"model": "mlp", "seed": 0}


def test_options_a_model_does_not_take_are_refused(tmp_path):
    with pytest.raises(SpikedeployError, match="'sdm-cnn' does not take option.*bits"):
        train_and_save(tmp_path / "c", model="sdm-cnn", bits=3, progress=lambda m: None)
    with pytest.raises(SpikedeployError, match="unknown model"):
        train_and_save(tmp_path / "c", model="resnet", progress=lambda m: None)


def _tiny_onnx(path):
    from spikedeploy.models.fastsnn import build_relu_mlp
    from spikedeploy.models.relu_onnx import write_relu_onnx
    torch.manual_seed(0)
    return write_relu_onnx(build_relu_mlp([64, 16, 10]), path, 64)


DEMOS = {
    "sdm-cnn": dict(channels=4, blocks=1, epochs=1, tsm_epochs=1, train_subset=200),
    "imp-lts": dict(hidden=32, epochs=2, train_subset=300),
    "fastsnn": dict(qat_epochs=1, train_subset=300),      # the ReLU network comes from ONNX
    "ugo-gelu": dict(hidden=16, fit_steps=300, num_steps=16),
    "sdm-denoiser": dict(channels=4, blocks=1, epochs=1, tsm_epochs=1, train_subset=200),
}


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = {}
    for model, options in DEMOS.items():
        root = tmp_path_factory.mktemp(model)
        if model == "fastsnn":
            options = dict(options, onnx_path=str(_tiny_onnx(root / "relu.onnx")))
        config = train_and_save(root / "ckpt", model=model, progress=lambda m: None, **options)
        out[model] = (root, config)
    return out


def _data_args(model, root):
    if model.startswith("ugo") or model == "sdm-denoiser":   # synthetic / noisy inputs beside it
        return ["--input", str(root / "ckpt" / "inputs.npy")]
    return ["--samples", "6"]


@pytest.mark.lava
@pytest.mark.parametrize("model", list(DEMOS))
def test_export_verify_and_energy_commands(model, demos, capsys):
    root, config = demos[model]
    nir_path, report = root / "model.nir", root / "verify.json"
    assert main(["export", str(root / "ckpt"), "-o", str(nir_path)]) == 0
    code = main(["verify", str(nir_path), "--checkpoint", str(root / "ckpt"), "--json", str(report)]
                + _data_args(model, root))
    assert code == 0, capsys.readouterr().out
    result = json.loads(report.read_text())
    assert result["passed"] and set(result["comparisons"]) == {"reference vs lava", "reference vs snntorch"}
    for comparison in result["comparisons"].values():
        assert comparison["agrees"] and comparison["layers"]
    assert main(["energy", str(nir_path), "--out", str(root / "energy")] + _data_args(model, root)) == 0
    energy = json.loads((root / "energy" / "report.json").read_text())
    assert energy
    if "test_accuracy" in config:
        assert set(result["accuracy"]) == {"reference", "lava", "snntorch"}
        assert len(set(result["accuracy"].values())) == 1


def test_threshold_guidance_verifies_against_a_scaled_snntorch_model(demos):
    from spikedeploy.deploy.inputs import resolve_inputs
    from spikedeploy.hw_sim.reference import simulate
    from spikedeploy.ir.passes import scale_thresholds
    from spikedeploy.ir.lowering import lower
    from spikedeploy.export import export_checkpoint
    root, _ = demos["sdm-cnn"]
    program = scale_thresholds(lower(export_checkpoint(root / "ckpt")), 0.85)
    batch = resolve_inputs(program, 6, None, None, None, None, 6)
    ref = simulate(program, batch.x)
    snn = checkpoint_records(root / "ckpt", batch.x, threshold_scale=0.85)
    for name in ("block1_sn", "sn_out", "readout"):
        assert np.array_equal(ref.records[name], snn[name]), name


def test_verify_command_with_threshold_scale_and_checkpoint(demos, tmp_path):
    root, _ = demos["imp-lts"]
    nir_path = tmp_path / "m.nir"
    assert main(["export", str(root / "ckpt"), "-o", str(nir_path)]) == 0
    assert main(["verify", str(nir_path), "--checkpoint", str(root / "ckpt"), "--samples", "6",
                 "--no-lava", "--threshold-scale", "0.8"]) == 0


def test_train_command_trains_the_chosen_model(tmp_path):
    ckpt = tmp_path / "ckpt"
    assert main(["train", "--model", "imp-lts", "--epochs", "1", "--train-subset", "64",
                 "--hidden", "8", "-o", str(ckpt)]) == 0
    assert json.loads((ckpt / "config.json").read_text())["architecture"] == "imp-mlp"


def test_export_threshold_scale_then_sweep_reports_each_gamma(demos, tmp_path, capsys):
    root, _ = demos["imp-lts"]
    scaled = tmp_path / "scaled.nir"
    assert main(["export", str(root / "ckpt"), "-o", str(scaled), "--threshold-scale", "0.9"]) == 0
    from spikedeploy.ir.load import read_nir
    from spikedeploy.metadata import metadata_value
    assert metadata_value(read_nir(scaled).metadata, "spikedeploy.threshold_scale") == 0.9
    out_json = tmp_path / "sweep.json"
    assert main(["sweep", str(scaled), "--samples", "12", "--gammas", "0.8,1.0,1.25",
                 "--json", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())["rows"]
    assert [r["threshold_scale"] for r in rows] == [0.8, 1.0, 1.25]
    assert rows[0]["spikes"] > rows[1]["spikes"] > rows[2]["spikes"]   # lower thresholds, more spikes
    assert all(0 <= r["accuracy"] <= 1 for r in rows)
    assert "threshold guidance sweep" in capsys.readouterr().out
    assert main(["sweep", str(scaled), "--samples", "4", "--gammas", "a,b"]) == 2


@pytest.mark.lava
@pytest.mark.parametrize("model", ["snn-cnn", "snn-rnn"])
def test_train_export_verify_cnn_and_rnn_from_the_command_line(model, tmp_path, capsys):
    ckpt, graph = tmp_path / "ckpt", tmp_path / "model.nir"
    assert main(["train", "--model", model, "--epochs", "1", "--train-subset", "200",
                 "-o", str(ckpt)]) == 0
    assert main(["export", str(ckpt), "-o", str(graph)]) == 0
    out = tmp_path / "verify.json"
    assert main(["verify", str(graph), "--checkpoint", str(ckpt), "--samples", "8",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["passed"] and set(report["comparisons"]) == {"reference vs lava",
                                                               "reference vs snntorch"}


# What each seed-paper mechanism uses that Lava's stock processes cannot hold (loihi2 target).
LOIHI2_BLOCKERS = {"sdm-cnn": "spikedeploy.tsm_gain", "imp-lts": "spikedeploy.v_init",
                   "fastsnn": "spikedeploy.reset_mode", "ugo-gelu": "spikedeploy.v_init",
                   "sdm-denoiser": "spikedeploy.tsm_gain"}


@pytest.mark.parametrize("model", list(DEMOS))
def test_check_target_loihi2_names_every_blocking_node(model, demos, capsys, tmp_path):
    root, _ = demos[model]
    nir_path = tmp_path / "model.nir"
    assert main(["export", str(root / "ckpt"), "-o", str(nir_path)]) == 0
    capsys.readouterr()
    assert main(["check", str(nir_path), "--target", "loihi2", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    blocking = [p for p in report["problems"] if p["backend"] == "loihi2"]
    assert blocking and all(p["node"] and p["field"] and p["reason"] for p in blocking)
    fields = {p["field"] for p in blocking}
    assert LOIHI2_BLOCKERS[model] in fields, fields
    neurons_hit = {p["node"] for p in blocking if p["field"] == LOIHI2_BLOCKERS[model]}
    graph_neurons = {n["name"] for n in report["nodes"] if n["type"] in ("LIF", "IF", "CubaLIF")}
    assert neurons_hit and neurons_hit <= graph_neurons
    out = tmp_path / "model.net"
    assert main(["export", str(nir_path), "--to", "netx", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "(loihi2)" in err and not out.exists()
