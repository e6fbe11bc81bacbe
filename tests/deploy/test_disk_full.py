"""Every writer under a file-size limit (a full disk, as the process sees it): one line,
exit 1, and nothing left behind -- no output, no temporary file, no half of a set.

Each command runs in a subprocess with ``RLIMIT_FSIZE`` set small and SIGXFSZ
ignored, so a write past the limit fails with EFBIG, as ENOSPC would on a
full file system.
"""
import os
import resource
import signal
import subprocess
import sys

import nir
import numpy as np
import pytest

from helpers import mlp_graph

LIMIT = 512      # bytes: every output below is larger


def _limited():
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.nir"
    rng = np.random.default_rng(0)
    graph = mlp_graph(rng, sizes=(64, 48, 10))
    graph.nodes["lif1"] = nir.LIF(tau=np.full(48, 1e-3), r=np.full(48, 10.0),
                                  v_leak=np.zeros(48), v_threshold=np.ones(48),
                                  v_reset=np.zeros(48))                 # one decay: netx takes it
    graph.nodes["lif2"] = nir.LIF(tau=np.full(10, 1e-3), r=np.full(10, 10.0),
                                  v_leak=np.zeros(10), v_threshold=np.ones(10),
                                  v_reset=np.zeros(10))
    nir.write(path, graph)
    return path


WRITERS = {
    "export (NIR)": ["export", "--model", "{net}", "--input-shape", "4", "-o", "{out}/e.nir"],
    "export --to netx": ["export", "{m}", "--to", "netx", "-o", "{out}/m.net"],
    "simulate --save": ["simulate", "{m}", "--backend", "reference", "--samples", "20",
                        "--save", "{out}/s.npz"],
    "energy --out": ["energy", "{m}", "--samples", "5", "--out", "{out}/report"],
    "verify --json": ["verify", "{m}", "--samples", "5", "--precision", "fixed", "--no-lava",
                      "--max-disagreement", "1", "--json", "{out}/v.json"],
    "resources -o": ["resources", "{m}", "--json", "-o", "{out}/r.json"],
    "train": ["train", "--model", "mlp", "--epochs", "1", "--train-subset", "64", "-o",
              "{out}/ckpt"],
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_writer_on_a_full_disk_fails_in_one_line_and_leaves_nothing(name, model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    net = tmp_path / "net.py"
    net.write_text("import torch.nn as nn, snntorch as snn\n"
                   "def Net():\n    return nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.9, "
                   "init_hidden=True, output=True))\n")
    argv = [a.format(m=model, out=out, net=f"{net}:Net") for a in WRITERS[name]]
    proc = subprocess.run([sys.executable, "-m", "spikedeploy.deploy.cli"] + argv,
                          capture_output=True, text=True, timeout=300, preexec_fn=_limited,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    assert len(err.splitlines()) == 1 and err.startswith("spikedeploy: error:"), err[-2000:]
    assert "cannot write" in err and "File too large" in err, err
    left = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert left == [], left
