"""Command-line conventions every command follows (README: "Command-line conventions")."""
import os
import subprocess
import sys

import nir
import numpy as np

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
