"""check_graph: every node and every problem, never a traceback."""
import json

import nir
import numpy as np
import pytest

from spikedeploy.hw_sim.check import check_graph

from helpers import DT, mlp_graph, random_lif


def _g(nodes, edges, dt=DT):
    meta = {"spikedeploy.dt": dt} if dt else {}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


def test_valid_graph_lists_every_node(rng, tmp_path):
    path = tmp_path / "mlp.nir"
    nir.write(path, mlp_graph(rng))
    report = check_graph(path, precision="fixed")
    assert report.ok and report.dt == DT and report.dt_source == "metadata"
    assert [n.name for n in report.nodes] == ["input", "fc1", "lif1", "fc2", "lif2", "output"] or \
        {n.name for n in report.nodes} == {"input", "fc1", "lif1", "fc2", "lif2", "output"}
    lif1 = next(n for n in report.nodes if n.name == "lif1")
    assert lif1.type == "LIF" and lif1.input_shape == [32] and lif1.output_shape == [32]
    assert all(lif1.backends[b] for b in ("reference-float", "reference-fixed", "lava-float",
                                          "lava-fixed"))
    assert report.lava_latency == 2
    data = json.loads(report.to_json())
    assert data["ok"] is True and data["dt"] == DT and len(data["nodes"]) == 6
    assert "OK for lava-fixed" in report.to_text()


def test_dt_from_argument_and_missing(rng):
    g = mlp_graph(rng)
    g.metadata = {}
    missing = check_graph(g, convention="nir")       # NIR's equations need the file's dt
    assert not missing.ok and any(p.field == "dt" for p in missing.problems)
    given = check_graph(g, dt=1e-3, convention="nir")
    assert given.ok and given.dt == 1e-3 and given.dt_source == "argument"
    auto = check_graph(g)       # r = tau/1e-4: snnTorch's exporter, whose dt fills the gap
    assert auto.ok and auto.dt == 1e-4 and auto.dt_source == "convention snntorch"


def test_all_semantic_problems_reported_at_once(rng):
    g = _g({"input": nir.Input(input_type=np.array([3])),
            "fc": nir.Affine(weight=np.ones((2, 4)), bias=np.zeros(2)),        # shape mismatch
            "lif": nir.LIF(tau=np.array([np.nan, 1e-3]), r=np.ones(2), v_leak=np.zeros(2),
                           v_threshold=np.ones(2), v_reset=np.zeros(2)),
            "fc2": nir.Linear(weight=np.ones((2, 3))),
            "lif2": nir.LIF(tau=np.array([-1e-3, 1e-3]), r=np.ones(2), v_leak=np.zeros(2),
                            v_threshold=np.ones(2), v_reset=np.zeros(2)),
            "out": nir.Output(output_type=None)},
           [("input", "fc"), ("fc", "lif"), ("lif", "out"), ("input", "fc2"), ("fc2", "lif2"),
            ("lif2", "out")])
    report = check_graph(g)
    found = {(p.node, p.field) for p in report.problems}
    assert {("lif", "tau"), ("lif2", "tau"), ("fc", "shape")} <= found
    assert not report.ok
    assert "positive" in str(next(p for p in report.problems if p.node == "lif2"))


def test_dangling_edges_and_cycle_without_input():
    g = _g({"input": nir.Input(input_type=np.array([2])),
            "thr": nir.Threshold(threshold=np.zeros(2)),
            "a": nir.Threshold(threshold=np.zeros(2)),
            "b": nir.Threshold(threshold=np.zeros(2)),
            "out": nir.Output(output_type=None)},
           [("input", "thr"), ("thr", "out"), ("a", "b"), ("b", "a")])
    report = check_graph(g)
    assert not report.ok
    assert any("cycle with no input" in p.reason for p in report.problems)
    g2 = _g({"input": nir.Input(input_type=np.array([2])), "out": nir.Output(output_type=None)},
            [("input", "out"), ("input", "nowhere")])
    report2 = check_graph(g2)
    assert not report2.ok and any("unknown node" in p.reason for p in report2.problems)


@pytest.mark.parametrize("content", [b"not a nir file", b"\x89HDF\r\n\x1a\n" + b"\0" * 20])
def test_bad_files_give_one_line_problems(tmp_path, content):
    path = tmp_path / "bad.nir"
    path.write_bytes(content)
    report = check_graph(path)
    assert not report.ok and report.problems[0].node == "<file>"
    assert "\n" not in report.problems[0].reason
    assert check_graph(tmp_path / "missing.nir").problems[0].reason.endswith("no such file")


def test_backend_specific_problems(rng):
    # A recurrent cycle through two synapses: fine on the reference, impossible on Lava.
    g = _g({"input": nir.Input(input_type=np.array([3])),
            "fc": nir.Linear(weight=rng.normal(size=(3, 3))), "lif": random_lif(rng, (3,)),
            "r1": nir.Linear(weight=rng.normal(size=(3, 3))),
            "r2": nir.Linear(weight=rng.normal(size=(3, 3))),
            "out": nir.Output(output_type=None)},
           [("input", "fc"), ("fc", "lif"), ("lif", "r1"), ("r1", "r2"), ("r2", "lif"),
            ("lif", "out")])
    assert check_graph(g, backend="reference").ok
    lava = check_graph(g, backend="lava")
    assert not lava.ok
    assert [(p.node, p.field) for p in lava.problems if p.backend == "lava-float"] == \
        [("lif", "recurrent")]
    # A bias that reaches an Output with no neuron: reference only.
    g2 = _g({"input": nir.Input(input_type=np.array([3])),
             "fc": nir.Affine(weight=np.ones((2, 3)), bias=np.ones(2)),
             "out": nir.Output(output_type=None)}, [("input", "fc"), ("fc", "out")])
    assert check_graph(g2, backend="reference").ok
    r = check_graph(g2)
    assert not r.ok and r.problems[0].field == "bias"
    # A per-neuron Scale before a Linear: float fine, fixed point cannot share one scale.
    g3 = _g({"input": nir.Input(input_type=np.array([3])),
             "scale": nir.Scale(scale=np.array([1.0, 1.7, 0.3])),
             "fc": nir.Linear(weight=rng.normal(size=(2, 3))), "lif": random_lif(rng, (2,)),
             "out": nir.Output(output_type=None)},
            [("input", "scale"), ("scale", "fc"), ("fc", "lif"), ("lif", "out")])
    assert check_graph(g3).ok
    fixed = check_graph(g3, precision="fixed")
    assert not fixed.ok and fixed.problems[0].node == "scale"
    scale = next(n for n in fixed.nodes if n.name == "scale")
    assert scale.backends["lava-float"] and not scale.backends["lava-fixed"]
