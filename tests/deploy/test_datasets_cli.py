"""--dataset tonic:...: train -> export -> reference -> Lava on fabricated files, reports,
one-line errors."""
import json

import pytest

from spikedeploy.deploy.cli import DATASETS, main
from spikedeploy.models.event_data import DATASET_CHOICES

from event_files import write_nmnist, write_shd

SHD_FRAMES = ["--time-bins", "10", "--downsample", "4"]


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """Fabricated N-MNIST and SHD splits, an snn-cnn and an mlp trained on them, exported."""
    root = tmp_path_factory.mktemp("events")
    data = root / "data"
    write_nmnist(data, samples_per_class=2, train=True)
    write_nmnist(data, seed=1)
    write_shd(data, n=20, train=True)
    write_shd(data, n=6, seed=1)
    out = {"data": str(data)}
    for name, argv in (("nmnist", ["--dataset", "tonic:NMNIST", "--time-bins", "8",
                                   "--model", "snn-cnn", "--epochs", "2",
                                   "--shared-neuron-params"]),
                       ("shd", ["--dataset", "tonic:SHD", *SHD_FRAMES, "--model", "mlp",
                                "--hidden", "24", "--epochs", "3"])):
        ckpt, graph = root / f"{name}_ckpt", root / f"{name}.nir"
        assert main(["train", "-q", "-o", str(ckpt), "--data-dir", str(data), *argv]) == 0
        assert main(["export", str(ckpt), "-o", str(graph)]) == 0
        out[name], out[f"{name}_ckpt"] = str(graph), str(ckpt)
    return out


def test_cli_lists_the_datasets_the_loader_knows():
    assert tuple(DATASETS) == DATASET_CHOICES


@pytest.mark.lava
def test_verify_shd_end_to_end(events, tmp_path, capsys):
    """The graph's own frame options (time bins, downsample) apply when not given."""
    report = tmp_path / "verify.json"
    code = main(["verify", events["shd"], "--dataset", "tonic:SHD", "--data-dir",
                 events["data"], "--checkpoint", events["shd_ckpt"], "--json", str(report)])
    assert code == 0, capsys.readouterr()
    result = json.loads(report.read_text())
    assert result["passed"] and set(result["accuracy"]) == {"reference", "lava", "snntorch"}
    assert result["samples"] == 6 and result["steps"] == 10
    assert result["inputs"]["dataset"] == "tonic:SHD"
    assert result["inputs"]["frames"] == {"time_bins": 10, "time_window": None,
                                          "downsample": 4, "denoise": None, "binarise": False}
    assert all(c["agrees"] for c in result["comparisons"].values())


@pytest.mark.lava
def test_nmnist_cnn_two_samples_agree_across_backends(events, tmp_path, capsys):
    report = tmp_path / "verify.json"
    code = main(["verify", events["nmnist"], "--dataset", "tonic:NMNIST", "--data-dir",
                 events["data"], "--time-bins", "8", "--samples", "2", "--checkpoint",
                 events["nmnist_ckpt"], "--json", str(report)])
    assert code == 0, capsys.readouterr()
    result = json.loads(report.read_text())
    assert result["passed"] and result["samples"] == 2
    assert {"reference vs lava", "reference vs snntorch"} <= set(result["comparisons"])


def test_reports_record_the_frames(events, tmp_path):
    out = tmp_path / "sim.json"
    assert main(["simulate", events["shd"], "--dataset", "tonic:SHD", "--data-dir",
                 events["data"], *SHD_FRAMES, "--binarise", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["inputs"]["frames"]["binarise"] is True
    assert main(["energy", events["nmnist"], "--dataset", "tonic:NMNIST", "--data-dir",
                 events["data"], "--denoise", "5000", "-o", str(tmp_path / "energy")]) == 0
    provenance = json.loads((tmp_path / "energy" / "report.json").read_text())["provenance"]
    assert "tonic:NMNIST test split, 8 time bins, denoise 5000 us, event counts" \
        in provenance["inputs"]


def test_denoise_on_channels_is_refused(events, capsys):
    _fails(capsys, ["simulate", events["shd"], "--dataset", "tonic:SHD", "--data-dir",
                    events["data"], "--denoise", "100"], "channels only")


def _fails(capsys, argv, expect):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and expect in err and "Traceback" not in err, err
    return err


def test_missing_dataset_is_one_line(events, tmp_path, capsys):
    err = _fails(capsys, ["simulate", events["nmnist"], "--dataset", "tonic:NMNIST",
                          "--data-dir", str(tmp_path)], "never downloads")
    assert str(tmp_path / "NMNIST" / "Test") in err


def test_graph_of_another_dataset(events, capsys):
    _fails(capsys, ["simulate", events["shd"], "--dataset", "tonic:NMNIST", "--data-dir",
                    events["data"], "--time-bins", "4"],
           "this graph was trained on tonic:SHD, not tonic:NMNIST")


def test_dataset_runs_are_bounded_in_memory(events, capsys):
    _fails(capsys, ["simulate", events["shd"], "--dataset", "tonic:SHD", "--data-dir",
                    events["data"], "--max-memory", "100K"], "a run of 6 samples x 10 steps")


def test_time_windows_default_to_the_graphs_steps(events, tmp_path):
    out = tmp_path / "sim.json"
    assert main(["simulate", events["shd"], "--dataset", "tonic:SHD", "--data-dir",
                 events["data"], "--time-window", "50000", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["steps"] == 10 and result["inputs"]["frames"]["time_window"] == 50000
    assert result["inputs"]["frames"]["downsample"] == 4        # the graph's, not given


def test_options_override_what_the_graph_was_trained_with():
    """--no-binarise, --denoise 0 and --downsample 1 undo a graph's recorded frame options;
    --downsample 0 is refused, not read as 'none'."""
    import argparse

    from spikedeploy.deploy.inputs import dataset_request
    from spikedeploy.errors import SpikedeployError
    meta = {"spikedeploy.dataset": "tonic:NMNIST",
            "spikedeploy.frames": json.dumps({"time_bins": 8, "time_window": None,
                                              "downsample": 2, "denoise": 100.0,
                                              "binarise": True})}

    def request(**given):
        args = dict(dataset="tonic:NMNIST", data_dir="d", time_bins=None, time_window=None,
                    downsample=None, denoise=None, binarise=None, input=None, labels=None)
        return dataset_request(argparse.Namespace(**{**args, **given}), meta)
    assert request().frames.to_dict() == json.loads(meta["spikedeploy.frames"])
    undone = request(binarise=False, denoise=0.0, downsample=1).frames
    assert (undone.binarise, undone.denoise, undone.downsample) == (False, None, 1)
    with pytest.raises(SpikedeployError, match="--downsample must be a positive integer"):
        request(downsample=0)


def test_training_without_a_test_split(tmp_path, capsys):
    write_shd(tmp_path / "data", n=8, train=True)
    assert main(["train", "--dataset", "tonic:SHD", "--data-dir", str(tmp_path / "data"),
                 "--time-bins", "5", "--downsample", "7", "--epochs", "1", "-o",
                 str(tmp_path / "ck")]) == 0
    assert "no test split of tonic:SHD" in capsys.readouterr().out
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["test_accuracy"] is None and config["train_samples"] == 8


def test_frame_options_need_a_dataset(events, capsys):
    _fails(capsys, ["simulate", events["shd"], "--time-bins", "4"], "go with --dataset")


def test_graph_trained_on_events_asks_for_its_dataset(events, capsys):
    _fails(capsys, ["simulate", events["shd"]], "--dataset tonic:SHD --data-dir DIR")


def test_frames_that_do_not_fit_the_graph(events, capsys):
    _fails(capsys, ["simulate", events["shd"], "--dataset", "tonic:SHD", "--data-dir",
                    events["data"], "--downsample", "2"], "frames are (350,)")


def test_steps_contradicting_time_bins(events, capsys):
    _fails(capsys, ["simulate", events["shd"], "--dataset", "tonic:SHD", "--data-dir",
                    events["data"], "--steps", "12"], "contradicts --time-bins 10")


@pytest.mark.parametrize("argv,expect", [
    (["--model", "sdm-cnn", "--time-bins", "4"], "does not take option(s) dataset"),
    (["--model", "mlp", "--time-window", "1000"], "needs --steps"),
    (["--model", "snn-cnn", "--time-bins", "4", "--downsample", "4"], "even height"),
])
def test_train_refusals(events, tmp_path, capsys, argv, expect):
    _fails(capsys, ["train", "-o", str(tmp_path / "ck"), "--dataset", "tonic:NMNIST",
                    "--data-dir", events["data"], *argv], expect)
    assert not (tmp_path / "ck").exists()
