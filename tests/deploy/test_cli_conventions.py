"""Command-line conventions every command follows (README: "Command-line conventions")."""
import json
import os
import subprocess
import sys

import nir
import numpy as np
import pytest

from spikedeploy.deploy.cli import main

from helpers import mlp_graph


def _cli(*argv, **kwargs):
    return subprocess.run([sys.executable, "-m", "spikedeploy", *argv], capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_python_dash_m_and_version_name_every_library():
    run = _cli("--version")
    assert run.returncode == 0
    names = [line.split()[0] for line in run.stdout.splitlines()]
    assert names == ["spikedeploy", "torch", "snnTorch", "nir", "numpy", "Lava", "lava-dl"]


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`spikedeploy check --json | head`: the reader is gone before the output is written."""
    path = tmp_path / "g.nir"
    nir.write(path, mlp_graph(np.random.default_rng(0), sizes=(64, 8, 10)))
    proc = subprocess.Popen([sys.executable, "-m", "spikedeploy", "check", str(path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()                       # as `| head` does once it has what it wants
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141      # 128 + SIGPIPE, as a shell pipeline reports
    assert err == "", err


def test_output_files_follow_the_umask(tmp_path, capsys):
    path = tmp_path / "g.nir"
    nir.write(path, mlp_graph(np.random.default_rng(0), sizes=(64, 8, 10)))
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            out = tmp_path / f"o{mask:o}.npz"
            assert main(["simulate", str(path), "--backend", "reference", "--samples", "2",
                         "--save", str(out)]) == 0
        finally:
            os.umask(old)
        assert (out.stat().st_mode & 0o777) == mode, oct(out.stat().st_mode)


@pytest.fixture
def graph(tmp_path):
    path = tmp_path / "g.nir"
    nir.write(path, mlp_graph(np.random.default_rng(0), sizes=(64, 8, 10)))
    return path


JSON_COMMANDS = {
    "check": ["check", "{g}"],
    "simulate": ["simulate", "{g}", "--samples", "3"],
    "energy": ["energy", "{g}", "--samples", "3"],
    "verify": ["verify", "{g}", "--samples", "3", "--precision", "fixed", "--no-lava",
               "--max-disagreement", "1"],
    "sweep": ["sweep", "{g}", "--samples", "3", "--gammas", "0.9,1.0"],
    "resources": ["resources", "{g}"],
}


@pytest.mark.parametrize("name", list(JSON_COMMANDS))
def test_json_dash_puts_only_json_on_stdout(name, graph, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(g=graph) for a in JSON_COMMANDS[name]]
    assert main(argv + ["--json", "-"]) == 0
    out = capsys.readouterr().out
    assert isinstance(json.loads(out), dict), out[:200]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.nir"]     # nothing else written
    written = tmp_path / "out.json"
    assert main(argv + ["--json", str(written)]) == 0
    said = capsys.readouterr()
    assert json.loads(written.read_text()) and "wrote" in said.out + said.err


def test_requests_beyond_the_data_are_clamped_with_a_warning(graph, capsys):
    assert main(["simulate", str(graph), "--samples", "5000"]) == 0
    err = capsys.readouterr().err
    assert "--samples 5000: the digits test split has 360 samples; running all 360" in err


def test_defaults_are_shown_in_help_and_shared(capsys):
    for command in ("simulate", "energy", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: reference)" in text and "(default 100)" in text, command


def _on_a_terminal(argv, columns=100):
    """Run the CLI with stderr on a pseudo-terminal; returns what it drew there."""
    import pty
    import struct
    import termios
    import fcntl
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "spikedeploy", *argv],
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.lava
def test_progress_shows_on_a_terminal_only_and_quiet_hides_it(graph, capsys):
    argv = ["simulate", str(graph), "--backend", "lava", "--samples", "200"]
    drawn = _on_a_terminal(argv)
    assert "Lava:" in drawn and "/200" in drawn and "sample/s" in drawn
    assert "Lava:" not in _on_a_terminal(argv + ["-q"])
    assert main(argv[:4] + ["--samples", "5"]) == 0          # a pipe (pytest's capture):
    assert capsys.readouterr().err == ""                     # no bar at all


def test_every_command_takes_quiet_and_verbose(capsys):
    from spikedeploy.deploy.cli import build_parser
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        options = {o for a in command._actions for o in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= options, name


def test_one_output_flag_with_the_old_names_as_aliases(graph, tmp_path):
    for flag in ("-o", "--out", "--save"):
        out = tmp_path / f"s{flag.strip('-')}.npz"
        assert main(["simulate", str(graph), "--samples", "2", flag, str(out)]) == 0
        assert np.load(out)["output"].shape[1] == 2
    for flag in ("-o", "--out"):
        folder = tmp_path / f"e{flag.strip('-')}"
        assert main(["energy", str(graph), "--samples", "2", flag, str(folder)]) == 0
        assert (folder / "report.json").exists()


def test_exit_codes_by_class_of_outcome(graph, tmp_path, capsys, monkeypatch):
    from spikedeploy.deploy import commands
    assert main(["simulate", str(graph), "--samples", "2"]) == 0               # success
    bad = tmp_path / "bad.nir"
    bad.write_text("not hdf5")
    assert main(["simulate", str(bad)]) == 2                                   # bad input
    with pytest.raises(SystemExit) as usage:
        main(["simulate", str(graph), "--samples", "many"])
    assert usage.value.code == 2                                               # usage
    g = mlp_graph(np.random.default_rng(0), sizes=(64, 8, 10))
    g.nodes["lif1"].tau[0] = -1.0
    refused = tmp_path / "refused.nir"
    nir.write(refused, g)
    assert main(["check", str(refused)]) == 1                                  # check failed
    assert main(["verify", str(graph), "--samples", "2", "--no-lava"]) == 1    # verify failed

    def bug(args):
        raise RuntimeError("a bug")
    monkeypatch.setattr(commands, "cmd_simulate", bug)
    assert main(["simulate", str(graph)]) == 3                                 # internal error
    assert "internal error: RuntimeError: a bug" in capsys.readouterr().err


def test_review_cases_are_handled(graph, tmp_path, capsys):
    assert main(["simulate", str(graph), "-o", "-"]) == 2                       # not a file
    assert main(["simulate", str(graph), "-o", str(tmp_path / "s.txt")]) == 2   # wrong suffix
    assert main(["simulate", str(graph), "-o", str(tmp_path / "nd" / "x.npz")]) == 2
    assert main(["check", str(tmp_path / "missing.nir")]) == 2                  # bad input
    err = capsys.readouterr()
    assert "simulating" not in err.out                     # refused before any work
    assert main(["resources", str(graph), "--csv", "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["totals"]
    said = capsys.readouterr()
    assert said.out.startswith("name,") and "wrote" in said.err      # stdout: the CSV only
    proc = subprocess.Popen([sys.executable, "-m", "spikedeploy", "--version"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    assert proc.stderr.read() == "" and proc.wait(timeout=120) in (0, 141)


def test_long_layer_names_wrap_and_numbers_are_never_cropped(tmp_path, capsys):
    g = mlp_graph(np.random.default_rng(0), sizes=(64, 16, 10))
    names = {k: k + "_" * 14 for k in ("fc1", "lif1", "fc2", "lif2")}
    g.nodes = {names.get(k, k): v for k, v in g.nodes.items()}
    g.edges = [(names.get(a, a), names.get(b, b)) for a, b in g.edges]
    path = tmp_path / "long.nir"
    nir.write(path, g)
    assert main(["energy", str(path), "--samples", "3", "--json", str(tmp_path / "e.json")]) == 0
    table = capsys.readouterr().out
    report = json.loads((tmp_path / "e.json").read_text())
    total = report["totals"]["per_inference"]["energy_pj"]
    assert f"{total:,.1f}" in table and "…" not in table
