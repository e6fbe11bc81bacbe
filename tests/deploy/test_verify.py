"""``spikedeploy verify``: full agreement on the trained model, and a located divergence."""
import json

import nir
import numpy as np
import pytest

from spikedeploy.deploy.cli import main


@pytest.mark.lava
def test_verify_trained_model_agrees_across_backends(trained, capsys, tmp_path):
    out = tmp_path / "verify.json"
    code = main(["verify", str(trained["nir"]), "--checkpoint", str(trained["ckpt"]),
                 "--samples", "20", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    report = json.loads(out.read_text())
    assert report["passed"]
    assert set(report["comparisons"]) == {"reference vs lava", "reference vs snntorch"}
    for comp in report["comparisons"].values():
        assert comp["agrees"] and comp["disagreement"] == 0
        assert [layer["layer"] for layer in comp["layers"]] == ["lif1", "lif2", "output"]
    assert len(set(report["accuracy"].values())) == 1
    assert "PASSED" in text


@pytest.mark.lava
def test_verify_fixed_bit_exact_and_bounded_quantisation(trained, capsys):
    code = main(["verify", str(trained["nir"]), "--samples", "20", "--precision", "fixed",
                 "--max-disagreement", "0.05", "--json", "-"])
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert code == 0
    assert report["comparisons"]["reference vs lava"]["agrees"]
    quant = report["comparisons"]["float reference vs fixed reference"]
    assert 0 <= quant["disagreement"] <= 0.05
    # the same run with a zero tolerance fails: quantisation does change some spikes
    assert quant["disagreement"] > 0
    assert main(["verify", str(trained["nir"]), "--samples", "20", "--precision", "fixed",
                 "--no-lava"]) == 1


def test_verify_locates_a_perturbed_weight(trained, tmp_path, capsys):
    graph = nir.read(trained["nir"])
    w = graph.nodes["fc2"].weight
    j = int(np.argmax(np.abs(w).sum(axis=0)))   # a busy input column
    w[:, j] += 2.0
    bad = tmp_path / "perturbed.nir"
    nir.write(bad, graph)
    code = main(["verify", str(bad), "--checkpoint", str(trained["ckpt"]), "--samples", "20",
                 "--no-lava", "--json", "-"])
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    report = json.loads(out)                 # --json -: stdout carries only the JSON ...
    assert code == 1 and not report["passed"]
    layers = {l["layer"]: l for l in report["comparisons"]["reference vs snntorch"]["layers"]}
    assert layers["lif1"]["identical"] == layers["lif1"]["total"]      # upstream untouched
    assert layers["lif2"]["first_divergence"] is not None                # diverges at fc2's neuron
    assert "first divergence" in err and "FAILED" in err          # ... the text goes to stderr


def test_verify_with_nothing_to_compare_does_not_pass(trained, capsys):
    assert main(["verify", str(trained["nir"]), "--samples", "4", "--no-lava"]) == 1
    assert "FAILED: nothing was compared" in capsys.readouterr().out
