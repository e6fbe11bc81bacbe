"""`pip install` of the package alone (no Makefile) gives a working reference path, and the
Lava commands say what to run instead of failing inside Lava."""
import shutil
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from helpers import mlp_graph

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_pip_install_alone_runs_the_reference_and_names_the_lava_installer(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "spikedeploy_out", "__pycache__", "*.egg-info", "build", ".pytest_cache"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)],
                         capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-3000:]
    cli = str(venv / "bin" / "spikedeploy")
    graph = tmp_path / "g.nir"
    nir.write(graph, mlp_graph(np.random.default_rng(0), sizes=(64, 16, 10)))

    run = subprocess.run([cli, "simulate", str(graph), "--backend", "reference",
                          "--samples", "5"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "accuracy:" in run.stdout

    check = subprocess.run([cli, "check", str(graph)], capture_output=True, text=True,
                           timeout=600)
    assert check.returncode == 1, check.stdout
    assert "spikedeploy install-lava" in " ".join(check.stdout.split()), check.stdout
    lava = subprocess.run([cli, "simulate", str(graph), "--backend", "lava", "--samples", "5"],
                          capture_output=True, text=True, timeout=600)
    assert lava.returncode == 2 and lava.stderr.count("\n") == 1
    assert "not installed: run `spikedeploy install-lava`" in lava.stderr
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=300)
    assert "Lava not installed" in version.stdout and "torch 2." in version.stdout
