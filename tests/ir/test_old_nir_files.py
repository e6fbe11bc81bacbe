"""Files written by NIR 0.x: no Flatten input type, no v_reset, batch-counting dims."""
import h5py
import numpy as np

from spikedeploy.deploy.cli import main
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir.load import read_nir
from spikedeploy.ir.lowering import lower


def write_nir_0x(path, rng):
    """A graph laid out as NIR 0.2 wrote it (hand-written with h5py)."""
    with h5py.File(path, "w") as f:
        f["version"] = "0.2.0"
        node = f.create_group("node")
        node["type"] = "NIRGraph"
        nodes = node.create_group("nodes")

        def add(name, kind, **fields):
            g = nodes.create_group(name)
            g["type"] = kind
            for key, value in fields.items():
                g[key] = value

        tau = np.full(4, 1e-3)
        add("input", "Input", shape=np.array([2, 3, 3]))
        add("flat", "Flatten", start_dim=1, end_dim=-1)          # no input_type in 0.x
        add("fc", "Affine", weight=rng.normal(0, 1, (4, 18)), bias=rng.normal(0, 0.1, 4))
        add("lif", "LIF", tau=tau, r=tau / 1e-4, v_leak=np.zeros(4), v_threshold=np.ones(4))
        add("output", "Output", shape=np.array([4]))
        node["edges"] = np.array([[b"input", b"flat"], [b"flat", b"fc"], [b"fc", b"lif"],
                                  [b"lif", b"output"]])


def test_nir_0x_file_reads_lowers_and_runs(tmp_path, rng):
    path = tmp_path / "old.nir"
    write_nir_0x(path, rng)
    graph = read_nir(path)
    program = lower(graph, dt=1e-4)
    assert program.ops["lif"].params.v_reset.tolist() == [0, 0, 0, 0]   # missing v_reset: 0
    x = (rng.random((6, 3, 2, 3, 3)) < 0.5).astype(float)
    rec = simulate(program, x).records["lif"]
    # same maths by hand: v = 0.9 v + W x + b, spike on v > 1, reset to 0
    w, b = graph.nodes["fc"].weight, graph.nodes["fc"].bias
    v = np.zeros((3, 4))
    for t in range(6):
        v = 0.9 * v + x[t].reshape(3, 18) @ w.T + b
        z = v > 1.0
        v[z] = 0.0
        np.testing.assert_array_equal(rec[t], z)


def test_check_accepts_nir_0x_file_with_dt(tmp_path, rng, capsys):
    path = tmp_path / "old.nir"
    write_nir_0x(path, rng)
    assert main(["check", str(path), "--dt", "1e-4"]) == 0
    assert main(["check", str(path), "--convention", "nir"]) == 1   # no dt: asks for --dt
    assert "dt" in capsys.readouterr().out
