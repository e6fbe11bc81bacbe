"""One validation gate: ``check`` and the commands that run a graph agree on bad graphs.

Every command that runs a graph (simulate, energy, verify, sweep, resources)
loads it through ``check``'s validation for the backend and precision it
runs: a graph ``check`` refuses is refused with the same node, field and
reason, one line, exit 1, before anything runs or is written.
"""
import json

import nir
import numpy as np
import pytest

from spikedeploy.deploy.cli import main

from helpers import mlp_graph


def _set(node, field, index, value):
    getattr(node, field)[index] = value


BAD_GRAPHS = {
    "NaN tau": (lambda g: _set(g.nodes["lif1"], "tau", 0, np.nan), ("lif1", "tau")),
    "infinite tau": (lambda g: _set(g.nodes["lif1"], "tau", 0, np.inf), ("lif1", "tau")),
    "zero tau": (lambda g: _set(g.nodes["lif1"], "tau", 0, 0.0), ("lif1", "tau")),
    "negative tau": (lambda g: _set(g.nodes["lif1"], "tau", 1, -1e-3), ("lif1", "tau")),
    "NaN r": (lambda g: _set(g.nodes["lif2"], "r", 0, np.nan), ("lif2", "r")),
    "NaN weight": (lambda g: _set(g.nodes["fc1"], "weight", (0, 0), np.nan), ("fc1", "weight")),
    "NaN bias": (lambda g: _set(g.nodes["fc2"], "bias", 0, np.nan), ("fc2", "bias")),
    "NaN threshold": (lambda g: _set(g.nodes["lif2"], "v_threshold", 0, np.nan),
                      ("lif2", "v_threshold")),
    "Output of 7 receiving 10": (
        lambda g: g.nodes.__setitem__("output", nir.Output(output_type=np.array([7]))),
        ("output", "output_type")),
}

COMMANDS = {
    "simulate": ["simulate", "{g}", "--backend", "reference", "--samples", "3"],
    "simulate fixed": ["simulate", "{g}", "--backend", "reference", "--precision", "fixed",
                       "--samples", "3"],
    "energy": ["energy", "{g}", "--samples", "3", "--out", "{out}"],
    "verify": ["verify", "{g}", "--samples", "3", "--no-lava", "--json", "{out}/v.json"],
    "sweep": ["sweep", "{g}", "--samples", "3", "--gammas", "1.0"],
    "resources": ["resources", "{g}", "-o", "{out}/r.txt"],
}


@pytest.mark.parametrize("case", list(BAD_GRAPHS))
def test_check_and_every_command_refuse_a_bad_graph_alike(case, tmp_path, capsys):
    mutate, (node, field) = BAD_GRAPHS[case]
    graph = mlp_graph(np.random.default_rng(0), sizes=(64, 16, 10))
    mutate(graph)
    path = tmp_path / "bad.nir"
    nir.write(path, graph)
    assert main(["check", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (node, field) in {(p["node"], p["field"]) for p in report["problems"]
                             if p["backend"] == ""}
    out = tmp_path / "out"
    out.mkdir()
    for name, argv in COMMANDS.items():
        code = main([a.format(g=path, out=out) for a in argv])
        err = capsys.readouterr().err.strip()
        assert code == 2, (name, err)
        assert len(err.splitlines()) == 1, (name, err)
        assert err.startswith(f"spikedeploy: error: {path}: node '{node}', field '{field}'"), \
            (name, err)
    assert list(out.iterdir()) == []


def test_a_good_graph_passes_the_gate(tmp_path, capsys):
    path = tmp_path / "good.nir"
    nir.write(path, mlp_graph(np.random.default_rng(0), sizes=(64, 16, 10)))
    assert main(["check", str(path), "--precision", "fixed"]) == 0
    assert main(["simulate", str(path), "--backend", "reference", "--samples", "3"]) == 0


BAD_METADATA = {
    "dt 'abc'": ("spikedeploy.dt", "abc", "dt"),
    "dt array": ("spikedeploy.dt", np.array([1e-4, 2e-4]), "dt"),
    "dt True": ("spikedeploy.dt", True, "dt"),
    "num_steps 'abc'": ("spikedeploy.num_steps", "abc", "spikedeploy.num_steps"),
    "num_steps NaN": ("spikedeploy.num_steps", float("nan"), "spikedeploy.num_steps"),
    "num_steps 2.5": ("spikedeploy.num_steps", 2.5, "spikedeploy.num_steps"),
    "seed 'abc'": ("spikedeploy.seed", "abc", "spikedeploy.seed"),
    "seed -3": ("spikedeploy.seed", -3, "spikedeploy.seed"),
    "readout 'bogus'": ("spikedeploy.readout", "bogus", "spikedeploy.readout"),
    "encoding 'bogus'": ("spikedeploy.encoding", "bogus", "spikedeploy.encoding"),
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_run_metadata_is_validated_by_check_and_every_command(case, tmp_path, capsys):
    key, value, field = BAD_METADATA[case]
    graph = mlp_graph(np.random.default_rng(0), sizes=(64, 16, 10))
    graph.metadata[key] = value
    path = tmp_path / "bad.nir"
    nir.write(path, graph)
    assert main(["check", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert ("<graph>", field) in {(p["node"], p["field"]) for p in report["problems"]}
    code = main(["simulate", str(path), "--backend", "reference", "--samples", "3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"spikedeploy: error: {path}: node '<graph>', field '{field}'"), err


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.nir"
    nir.write(path, mlp_graph(np.random.default_rng(0), sizes=(4, 8, 3)))
    np.save(tmp_path / "x.npy", np.zeros((5, 2, 4)))
    for name, labels in {"strings": np.array(["a", "b"]), "nan": np.array([0.0, np.nan]),
                         "half": np.array([0.5, 1.0]), "range": np.array([0, 3])}.items():
        np.save(tmp_path / f"y_{name}.npy", labels)
    np.save(tmp_path / "x_empty.npy", np.zeros((0, 2, 4)))
    np.savez(tmp_path / "x.npz", x=np.zeros((5, 2, 4)))
    np.save(tmp_path / "x_complex.npy", np.zeros((5, 2, 4), complex))
    (tmp_path / "binary.toml").write_bytes(bytes(range(256)))
    (tmp_path / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "afile").write_text("a file, not a folder")
    return path


BAD_OPTIONS = {
    "--steps 0": (["simulate", "{g}", "--backend", "reference", "--samples", "2", "--steps", "0"],
                  "--steps must be positive"),
    "--seed -1": (["simulate", "{g}", "--backend", "reference", "--input", "{d}/x.npy",
                   "--seed", "-1"], "--seed must be >= 0"),
    "--labels without --input": (["simulate", "{g}", "--backend", "reference", "--samples", "2",
                                  "--labels", "{d}/y_range.npy"], "--labels goes with --input"),
    "string labels": (["simulate", "{g}", "--backend", "reference", "--input", "{d}/x.npy",
                       "--labels", "{d}/y_strings.npy"], "labels must be class numbers"),
    "NaN labels": (["simulate", "{g}", "--backend", "reference", "--input", "{d}/x.npy",
                    "--labels", "{d}/y_nan.npy"], "whole class numbers"),
    "labels 0.5": (["simulate", "{g}", "--backend", "reference", "--input", "{d}/x.npy",
                    "--labels", "{d}/y_half.npy"], "whole class numbers"),
    "labels out of range": (["simulate", "{g}", "--backend", "reference", "--input",
                             "{d}/x.npy", "--labels", "{d}/y_range.npy"], "must be in 0..2"),
    "T = 0 inputs": (["simulate", "{g}", "--backend", "reference", "--input",
                      "{d}/x_empty.npy"], "no time steps"),
    "complex inputs": (["simulate", "{g}", "--backend", "reference", "--input",
                        "{d}/x_complex.npy"], "finite real numbers"),
    "--max-disagreement nan": (["verify", "{g}", "--input", "{d}/x.npy", "--no-lava",
                                "--max-disagreement", "nan"], "--max-disagreement must be"),
    ".npz as --input": (["simulate", "{g}", "--backend", "reference", "--input", "{d}/x.npz"],
                        "an .npz archive"),
    "demo --samples 0": (["demo", "--samples", "0", "--out", "{d}/demo"],
                         "--samples must be positive"),
    "train --train-subset 0": (["train", "--train-subset", "0", "-o", "{d}/ckpt"],
                               "--train-subset must be positive"),
    "train --train-subset -5": (["train", "--train-subset", "-5", "-o", "{d}/ckpt"],
                                "--train-subset must be positive"),
    "binary --profile": (["energy", "{g}", "--samples", "2", "--profile", "{d}/binary.toml",
                          "--out", "{d}/e"], "binary.toml: not a text file"),
    "deeply nested TOML --profile": (["energy", "{g}", "--samples", "2", "--profile",
                                      "{d}/deep.toml", "--out", "{d}/e"], "nested too deeply"),
    "deeply nested JSON --profile": (["energy", "{g}", "--samples", "2", "--profile",
                                      "{d}/deep.json", "--out", "{d}/e"], "nested too deeply"),
    "deeply nested --chip": (["resources", "{g}", "--chip", "{d}/deep.toml"],
                             "chip profile {d}/deep.toml: not valid TOML (nested too deeply)"),
    "--save at a folder": (["simulate", "{g}", "--backend", "reference", "--samples", "2",
                            "--save", "{d}"], "{d}: is a folder; give a file name"),
    "--save under a file": (["simulate", "{g}", "--backend", "reference", "--samples", "2",
                             "--save", "{d}/afile/o.npz"], "{d}/afile: is a file, not a folder"),
    "energy --out at a file": (["energy", "{g}", "--samples", "2", "--out", "{d}/afile"],
                               "{d}/afile: is a file, not a folder"),
    "verify --json at a folder": (["verify", "{g}", "--samples", "2", "--no-lava", "--json",
                                   "{d}"], "{d}: is a folder; give a file name"),
    "export -o under a file": (["export", "{g}", "--to", "netx", "-o", "{d}/afile/m.net"],
                               "{d}/afile: is a file, not a folder"),
    "resources -o at a folder": (["resources", "{g}", "-o", "{d}"], "is a folder"),
    "sweep --json under a file": (["sweep", "{g}", "--samples", "2", "--json",
                                   "{d}/afile/s.json"], "is a file, not a folder"),
    "train -o at a file": (["train", "-o", "{d}/afile"], "{d}/afile: is a file, not a folder"),
    "demo --out at a file": (["demo", "--out", "{d}/afile"], "is a file, not a folder"),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_options_and_side_files_are_one_line(case, good, capsys):
    argv, expect = BAD_OPTIONS[case]
    before = sorted(p.name for p in good.parent.iterdir())
    assert main([a.format(g=good, d=good.parent) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("spikedeploy: error:"), err
    assert expect.format(d=good.parent) in err, err
    assert sorted(p.name for p in good.parent.iterdir()) == before     # nothing written


def _h5_edit(path, edit):
    import h5py
    with h5py.File(path, "a") as f:
        edit(f)


def _replace(f, key, value):
    del f[key]
    f[key] = value


BAD_FILES = {
    "two Input nodes": (
        lambda g: (g.nodes.__setitem__("input2", nir.Input(input_type=np.array([64]))),
                   g.edges.append(("input2", "fc1"))), None, "2 Input nodes"),
    "TSM gains shorter than the graph's T": (
        lambda g: (g.metadata.__setitem__("spikedeploy.num_steps", 25),
                   setattr(g.nodes["lif1"], "metadata", {"spikedeploy.tsm_gain": [1.0] * 5})),
        None, "TSM gains are defined for 5 time steps"),
    "text where numbers belong": (
        None, lambda f: _replace(f, "node/nodes/lif1/tau", np.bytes_("fast")),
        "node 'lif1', field 'tau': must be numbers"),
    "unknown node type": (
        None, lambda f: _replace(f, "node/nodes/lif1/type", np.bytes_("Quantum")),
        "node 'lif1' has the unknown NIR type 'Quantum'"),
    "node stored as a dataset": (
        None, lambda f: (f.__delitem__("node/nodes/lif2"),
                         f.__setitem__("node/nodes/lif2", np.zeros(3))),
        "node 'lif2' is stored as a dataset"),
    "Affine bias of the wrong length": (
        lambda g: setattr(g.nodes["fc2"], "bias", np.zeros(7)), None,
        ("fc2", "bias", "has 7 values, expected one per output (10)")),
    "v_init of the wrong length": (
        lambda g: setattr(g.nodes["lif1"], "metadata", {"spikedeploy.v_init": np.full(5, 0.1)}),
        None, ("lif1", "spikedeploy.v_init", "has shape (5,), which does not fit")),
    "LIF fields of different lengths": (
        lambda g: setattr(g.nodes["lif1"], "v_threshold", np.ones(5)), None,
        "node 'lif1' (LIF; fields r (16,), tau (16,), v_leak (16,), v_reset (16,), "
        "v_threshold (5,))"),
    "a cycle feeding back the wrong size": (
        lambda g: g.edges.append(("lif2", "fc2")), None,
        ("fc2", "recurrent", "the cycle fc2 -> lif2 -> fc2 feeds 10 values back")),
    "an edge to a node that does not exist": (
        lambda g: g.edges.append(("lif2", "sub.ghost")), None,
        ("<graph>", "edges", "edge names unknown node 'sub.ghost'")),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_malformed_files_are_refused_alike_by_check_and_simulate(case, tmp_path, capsys):
    mutate, edit, expect = BAD_FILES[case]
    graph = mlp_graph(np.random.default_rng(0), sizes=(64, 16, 10))
    if mutate:
        mutate(graph)
    path = tmp_path / "bad.nir"
    nir.write(path, graph)
    if edit:
        _h5_edit(path, edit)
    assert main(["check", str(path), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    if isinstance(expect, tuple):            # check and simulate name the same node and field
        node, field, reason = expect
        assert any((p["node"], p["field"]) == (node, field) and reason in p["reason"]
                   for p in problems), problems
        expect = f"node '{node}', field '{field}': {reason}"
    else:
        assert any(expect in p["reason"] for p in problems), problems
    assert main(["simulate", str(path), "--backend", "reference", "--samples", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err, err
