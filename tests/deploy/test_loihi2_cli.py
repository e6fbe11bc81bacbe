"""The Loihi 2 target from the command line, on the recipes trained with shared neuron
parameters: check --target loihi2, export --to netx, simulate and verify on the stock
processes and on the netx file loaded by lava-dl."""
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikedeploy.deploy.cli import main
from spikedeploy.deploy.inputs import resolve_inputs
from spikedeploy.deploy.stages import train_and_save
from spikedeploy.export import export_checkpoint, write_nir
from spikedeploy.hw_sim.loihi2.run import reference_loihi2, simulate_loihi2
from spikedeploy.hw_sim.loihi2.target import compile_loihi2
from spikedeploy.ir.load import read_nir
from spikedeploy.ir.lowering import lower

RECIPES = {"mlp": dict(epochs=1, train_subset=256, num_steps=12),
           "snn-cnn": dict(epochs=4, train_subset=1200, num_steps=6),
           "snn-rnn": dict(epochs=1, train_subset=128, num_steps=8)}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Each recipe trained briefly with --shared-neuron-params, exported to NIR."""
    out = tmp_path_factory.mktemp("shared")
    files = {}
    for model, options in RECIPES.items():
        ckpt = out / model
        train_and_save(ckpt, model=model, shared_neuron_params=True, progress=lambda m: None,
                       **options)
        files[model] = write_nir(export_checkpoint(ckpt), out / f"{model}.nir")
    return files


@pytest.fixture(scope="module")
def per_neuron(tmp_path_factory):
    """The default CNN recipe (per-neuron decays, as trained today)."""
    out = tmp_path_factory.mktemp("per_neuron")
    train_and_save(out / "cnn", model="snn-cnn", progress=lambda m: None, **RECIPES["snn-cnn"])
    return write_nir(export_checkpoint(out / "cnn"), out / "cnn.nir")


@pytest.mark.lava
@pytest.mark.parametrize("model", list(RECIPES))
def test_recipes_run_bit_exact_on_stock_processes_and_netx(shared, model):
    program = lower(read_nir(shared[model]))
    batch = resolve_inputs(program, 4, None, None, None, None, 4)     # digits test samples
    x, scale = batch.x, batch.input_scale
    compiled = compile_loihi2(program, scale)
    ref = reference_loihi2(program, x, scale, compiled=compiled)
    for backend in ("loihi2", "netx"):
        run = simulate_loihi2(program, x, scale, backend, compiled=compiled)
        for name, rec in run.records.items():
            assert np.array_equal(rec, ref.records[name]), f"{model} {backend} {name}"
        assert sum(1 for n, op in program.ops.items() if n in run.records and hasattr(op, "params")) >= 2
    neurons = [n for n, op in compiled.program.ops.items() if hasattr(op, "params")]
    assert all(ref.records[n].sum() > 0 for n in neurons), "a silent layer tests nothing"


def test_check_target_loihi2_ok_on_shared_recipes(shared, capsys):
    for model, path in shared.items():
        assert main(["check", str(path), "--target", "loihi2"]) == 0, model
        out = capsys.readouterr().out
        assert "OK for loihi2" in out


def test_check_and_export_refuse_per_neuron_decays(per_neuron, tmp_path, capsys):
    assert main(["check", str(per_neuron), "--target", "loihi2", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    blocking = {(p["node"], p["field"]) for p in report["problems"] if p["backend"] == "loihi2"}
    assert {("lif1", "tau"), ("lif2", "tau"), ("lif3", "tau")} <= blocking
    out = tmp_path / "cnn.net"
    assert main(["export", str(per_neuron), "--to", "netx", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikedeploy: error: node 'lif1', field ") and "6 more" in err
    assert len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_netx_writes_netx_layout(shared, tmp_path, capsys):
    out = tmp_path / "rnn.net"
    assert main(["export", str(shared["snn-rnn"]), "--to", "netx", "-o", str(out)]) == 0
    with h5py.File(out) as f:
        kinds = [f[f"layer/{i}/type"][()].decode() for i in range(len(f["layer"]))]
        assert kinds == ["input", "dense_rec", "dense"]
        assert f["layer/1/weight_rec"].shape == (f["layer/1/weight"].shape[0],) * 2
        assert f.attrs["spikedeploy.input_scale"] == 16.0


@pytest.mark.lava
def test_verify_target_loihi2_passes_and_simulate_netx(shared, capsys, tmp_path):
    path = str(shared["snn-cnn"])
    ckpt = str(shared["snn-cnn"].with_suffix(""))
    assert main(["verify", path, "--target", "loihi2", "--samples", "4", "--checkpoint", ckpt,
                 "--max-disagreement", "0.2", "--json", str(tmp_path / "v.json")]) == 0
    report = json.loads((tmp_path / "v.json").read_text())
    comps = report["comparisons"]
    assert comps["reference vs loihi2"]["agrees"] and comps["reference vs netx"]["agrees"]
    assert comps["float reference vs snntorch"]["agrees"]       # snnTorch is a float run
    assert "float reference vs fixed reference" in comps and report["failures"] == []
    # with no tolerance the quantisation's spike changes fail, and the reason is printed
    capsys.readouterr()
    if comps["float reference vs fixed reference"]["disagreement"] > 0:
        assert main(["verify", path, "--target", "loihi2", "--samples", "4"]) == 1
        assert "FAILED: quantisation changes" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["simulate", path, "--backend", "netx", "--samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "simulating on netx (fixed" in out and "accuracy:" in out


@pytest.mark.parametrize("argv, expect", [
    (["resources", "{nir}", "-o", "{tmp}"], "is a folder; give a file name"),
    (["resources", "{nir}", "-o", "{tmp}/no/such/r.txt"], "no such directory"),
    (["resources", "{nir}", "--chip", "{tmp}/bad.toml"], "[limits] must be a table"),
    (["export", "{nir}", "--to", "netx", "-o", "{tmp}/m.net", "--input-scale", "nan"],
     "--input-scale must be a positive number"),
    (["export", "{tmp}/missing.nir", "--to", "netx", "-o", "{tmp}/m.net"],
     "no such NIR file or checkpoint directory"),
    (["export", "{nir}", "--to", "netx", "-o", "{tmp}/m.net", "--weights", "w.pt"],
     "not used with a NIR file"),
    (["verify", "{nir}", "--target", "loihi2", "--precision", "float"],
     "runs Loihi fixed point only"),
    (["verify", "{nir}", "--target", "loihi2", "--no-lava"], "drop --no-lava"),
    (["simulate", "{nir}", "--backend", "netx", "--precision", "float"],
     "runs Loihi fixed point only"),
    (["export", "{nir}", "--to", "netx", "-o", "{tmp}/m.nir"], "name it .net"),
])
def test_loihi2_commands_refuse_bad_input_in_one_line(shared, tmp_path, capsys, argv, expect):
    (tmp_path / "bad.toml").write_text("limits = 5\n")
    argv = [a.format(nir=shared["mlp"], tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("spikedeploy: error:"), err
    assert expect in err, err
    assert not (tmp_path / "m.net").exists() and not (tmp_path / "no").exists()
    assert not (tmp_path / "m.nir").exists()


def test_resources_writes_json_csv_html(shared, tmp_path, capsys):
    for fmt, check in (("--json", lambda t: json.loads(t)["totals"]["cores"] == 2),
                       ("--csv", lambda t: t.splitlines()[0].startswith("name,")),
                       ("--html", lambda t: "<table>" in t and "estimate" in t.lower())):
        out = tmp_path / f"r{fmt}"
        assert main(["resources", str(shared["mlp"]), fmt, "-o", str(out)]) == 0
        assert check(out.read_text()), fmt


def test_resources_exit_1_when_the_network_does_not_fit(shared, tmp_path, capsys):
    chip = (Path(__file__).parents[2] / "src/spikedeploy/hw_sim/loihi2/chips/loihi1.toml")
    tiny = tmp_path / "tiny.toml"
    tiny.write_text(chip.read_text().replace("compartments = 1024", "compartments = 4")
                    .replace("input_axons = 4096", "input_axons = 8"))
    assert main(["resources", str(shared["mlp"]), "--chip", str(tiny)]) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out
