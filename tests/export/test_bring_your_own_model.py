"""Users' own snnTorch models, written as users write them, exported through the CLI.

Each model is a Python file in a temporary folder, its weights a
``torch.save(model.state_dict())`` file; ``spikedeploy export --model
FILE.py:NAME --weights ...`` writes the graph; Lava's float spikes equal
snnTorch's own forward (float64) in every neuron layer. And what cannot be
exported is one line naming what and why, exit code 1, no output file.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from spikedeploy.deploy.cli import main
from spikedeploy.hw_sim.compare import compare_records
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir.load import read_nir
from spikedeploy.ir.lowering import lower
from spikedeploy.models.run import run_snntorch
from spikedeploy.models.user_model import load_user_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "snntorch"

# snnTorch tutorial 5's network as the tutorial writes it (also the README's example)
TUTORIAL_5 = (EXAMPLES / "tutorial5_fcn.py").read_text()

TUTORIAL_6_STYLE = '''
import torch
import torch.nn as nn
import snntorch as snn
from snntorch import surrogate

beta = 0.5
spike_grad = surrogate.fast_sigmoid(slope=25)

class CSNN(nn.Module):
    """Tutorial 6's convolutional network, with max pooling of spikes (after the neurons),
    an average pool, learnable betas, a skip connection and a flatten in forward."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5)
        self.lif1 = snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, learn_beta=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.lif2 = snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, learn_beta=True)
        self.pool2 = nn.AvgPool2d(2)
        self.fc = nn.Linear(16 * 2 * 2, 10)
        self.skip = nn.Linear(16 * 2 * 2, 10, bias=False)
        self.lif3 = snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True)

    def forward(self, x):
        s1 = self.pool1(self.lif1(self.conv1(x)))
        s2 = self.pool2(self.lif2(self.conv2(s1)))
        flat = s2.view(s2.size(0), -1)
        spk, mem = self.lif3(self.fc(flat) + self.skip(flat))
        return spk, mem
'''

RECURRENT = '''
import torch
import torch.nn as nn
import snntorch as snn

class RNN(nn.Module):
    """A recurrent network looping over a (T, N, features) sequence itself; layers defined
    in another order than used, one defined and never used."""
    def __init__(self):
        super().__init__()
        self.lif = snn.Leaky(beta=0.9)
        self.readout = snn.Leaky(beta=0.8, reset_mechanism="zero")
        self.unused = nn.Linear(5, 5)
        self.fc_out = nn.Linear(32, 4)
        self.rec = nn.Linear(32, 32, bias=False)
        self.fc_in = nn.Linear(12, 32)

    def forward(self, x):
        mem = self.lif.init_leaky()
        mem_out = self.readout.init_leaky()
        spk = torch.zeros(x.shape[1], 32)
        out = []
        for t in range(x.shape[0]):
            cur = self.fc_in(x[t]) + self.rec(spk)
            spk, mem = self.lif(cur, mem)
            o, mem_out = self.readout(self.fc_out(spk), mem_out)
            out.append(o)
        return torch.stack(out)
'''


def _user_files(tmp_path, source: str, name: str, scale: dict):
    """The model file and a state_dict of its (scaled, so that it spikes) random weights."""
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent(source))
    torch.manual_seed(0)
    model = load_user_model(f"{path}:{name}")
    with torch.no_grad():
        for param, factor in scale.items():
            model.get_parameter(param).mul_(factor)
    weights = tmp_path / "model.pt"
    torch.save(model.state_dict(), weights)
    return path, weights


def _export(path, name, weights, out, *extra) -> int:
    return main(["export", "--model", f"{path}:{name}", "--weights", str(weights), "-o", str(out),
                 *extra])


CASES = {
    "tutorial5": (TUTORIAL_5, "Net", {"fc1.weight": 6.0, "fc2.weight": 4.0},
                  ["--input-shape", "784"], lambda rng: np.repeat(
                      (rng.random((1, 3, 784)) < 0.3).astype(float), 25, axis=0), 2),
    "tutorial6": (TUTORIAL_6_STYLE, "CSNN", {"conv1.weight": 2.0, "conv2.weight": 3.0,
                                             "fc.weight": 10.0, "skip.weight": 10.0},
                  ["--input-shape", "1,20,20", "--steps", "6"],
                  lambda rng: (rng.random((6, 2, 1, 20, 20)) < 0.4).astype(float), 3),
    "recurrent": (RECURRENT, "RNN", {"fc_in.weight": 3.0, "rec.weight": 2.0, "fc_out.weight": 4.0},
                  ["--input-shape", "12", "--steps", "10"],
                  lambda rng: (rng.random((10, 4, 12)) < 0.5).astype(float), 2),
}


@pytest.mark.lava
@pytest.mark.parametrize("case", list(CASES))
def test_users_models_export_through_the_cli_and_spike_as_snntorch_on_lava(case, tmp_path, capsys):
    from spikedeploy.hw_sim.lava_runner import simulate_lava
    source, name, scale, args, make_input, layers = CASES[case]
    path, weights = _user_files(tmp_path, source, name, scale)
    out = tmp_path / "model.nir"
    assert _export(path, name, weights, out, *args) == 0
    assert "wrote" in capsys.readouterr().out
    graph = read_nir(out)
    program = lower(graph)
    x = make_input(np.random.default_rng(1))
    theirs = run_snntorch(load_user_model(f"{path}:{name}", str(weights)), x)
    recorded = [n for n in theirs if n != "output"]
    assert len(recorded) == layers and "unused" not in program.ops
    ref = simulate(program, x)
    lava = simulate_lava(graph, x, program=program)
    for layer in recorded:
        ours = lava.records[layer]
        assert 0.01 < np.mean(theirs[layer] != 0) < 0.99, (layer, np.mean(theirs[layer]))
        np.testing.assert_array_equal(ours, theirs[layer].reshape(ours.shape), err_msg=layer)
    assert compare_records(ref, lava).agrees
    np.testing.assert_array_equal(lava.output(), theirs["output"].reshape(lava.output().shape))


def test_the_forward_style_is_detected_and_recorded(tmp_path):
    from spikedeploy.models.run import detect_style
    for source, name, shape, style in ((TUTORIAL_5, "Net", (784,), "repeat"),
                                       (TUTORIAL_6_STYLE, "CSNN", (1, 20, 20), "step"),
                                       (RECURRENT, "RNN", (12,), "sequence")):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        model = load_user_model(f"{tmp_path / name}.py:{name}")
        assert detect_style(model, shape) == style, name


def _fails_cleanly(capsys, argv, out, *expect):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("spikedeploy: error:") and len(err.splitlines()) == 1, err
    for text in expect:
        assert text in err, err
    assert not out.exists()


@pytest.mark.parametrize("layers, expect", [
    ("nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), snn.Leaky(beta=0.9, init_hidden=True)",
     ["maxpool2d1", "MaxPool2d of real-valued currents"]),
    ("nn.Flatten(), nn.Linear(16, 4), snn.Leaky(beta=0.9, init_hidden=True, inhibition=True)",
     ["lif1", "inhibition"]),
    ("nn.Flatten(), nn.Linear(16, 4), snn.Leaky(beta=0.9, init_hidden=True, "
     "state_quant=state_quant(num_bits=4))", ["lif1", "state_quant"]),
])
def test_what_has_no_deployable_meaning_is_refused(layers, expect, tmp_path, capsys):
    import warnings
    path = tmp_path / "net.py"
    path.write_text("import torch.nn as nn\nimport snntorch as snn\nfrom snntorch.functional.quant import state_quant\n"
                    f"def net():\n    return nn.Sequential({layers})\n")
    out = tmp_path / "m.nir"
    with warnings.catch_warnings():     # snnTorch warns that inhibition is experimental
        warnings.simplefilter("ignore", UserWarning)
        _fails_cleanly(capsys, ["export", "--model", f"{path}:net", "--input-shape", "1,4,4",
                                "-o", str(out)], out, *expect)


def test_bad_model_files_and_weights_are_one_line_errors(tmp_path, capsys):
    path, weights = _user_files(tmp_path, RECURRENT, "RNN", {})
    out = tmp_path / "m.nir"
    base = ["export", "--input-shape", "12", "-o", str(out)]
    # a pickled object is refused, never unpickled
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")
    _fails_cleanly(capsys, base + ["--model", f"{path}:RNN", "--weights",
                                   str(tmp_path / "pickled.pt")], out, "needs pickle", "never")
    # missing and unexpected keys are named
    state = torch.load(weights, weights_only=True)
    state["extra.weight"] = state.pop("fc_in.weight")
    torch.save(state, tmp_path / "renamed.pt")
    _fails_cleanly(capsys, base + ["--model", f"{path}:RNN", "--weights",
                                   str(tmp_path / "renamed.pt")], out,
                   "missing fc_in.weight", "unexpected extra.weight")
    # a name the file does not define, an error in the file (named with its line)
    _fails_cleanly(capsys, base + ["--model", f"{path}:Nett"], out, "defines no 'Nett'", "RNN")
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\n\nx = undefined_name + 1\n")
    _fails_cleanly(capsys, base + ["--model", f"{broken}:Net"], out, "broken.py:3", "NameError")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    _fails_cleanly(capsys, base + ["--model", f"{path}:RNN", "--weights",
                                   str(tmp_path / "junk.pt")], out, "junk.pt")
    _fails_cleanly(capsys, ["export", "--model", f"{path}:RNN", "-o", str(out)], out,
                   "--input-shape")


def test_safetensors_weights_and_state_dict_under_a_key(tmp_path):
    from safetensors.torch import save_file
    path, weights = _user_files(tmp_path, RECURRENT, "RNN", {"fc_in.weight": 2.0})
    state = torch.load(weights, weights_only=True)
    save_file(state, str(tmp_path / "model.safetensors"))
    torch.save({"epoch": 3, "model_state_dict": state}, tmp_path / "ckpt.pt")
    for file in ("model.safetensors", "ckpt.pt"):
        model = load_user_model(f"{path}:RNN", str(tmp_path / file))
        assert torch.equal(model.fc_in.weight, state["fc_in.weight"])



def test_the_readme_examples_export_and_tutorial_6_as_written_is_refused(tmp_path, capsys):
    out = tmp_path / "t5.nir"
    fcn = f"{EXAMPLES / 'tutorial5_fcn.py'}:Net"
    assert main(["export", "--model", fcn, "--input-shape", "784", "-o", str(out)]) == 0
    assert "no --weights" in capsys.readouterr().err     # the seeded initial weights, said so
    x = np.repeat(np.random.default_rng(0).random((1, 2, 784)), 25, axis=0)
    theirs = run_snntorch(load_user_model(fcn), x)       # the same seeded weights again
    ours = simulate(lower(read_nir(out)), x)
    assert ours.program.meta("spikedeploy.num_steps") == 25
    for layer in ("lif1", "lif2"):
        assert np.mean(theirs[layer]) > 0.005, layer
        np.testing.assert_array_equal(ours.records[layer],
                                      theirs[layer].reshape(ours.records[layer].shape))
    csnn = f"{EXAMPLES / 'tutorial6_csnn.py'}"
    assert main(["export", "--model", f"{csnn}:CSNN", "--input-shape", "1,28,28", "--steps",
                 "25", "-o", str(tmp_path / "csnn.nir")]) == 0
    capsys.readouterr()
    graph = read_nir(tmp_path / "csnn.nir")
    assert {"Conv2d", "SumPool2d", "Threshold", "AvgPool2d"} <= {
        type(n).__name__ for n in graph.nodes.values()}
    out = tmp_path / "refused.nir"
    _fails_cleanly(capsys, ["export", "--model", f"{csnn}:tutorial_net", "--input-shape",
                            "1,28,28", "-o", str(out)], out,
                   "maxpool2d1", "real-valued currents", "after the neuron")
