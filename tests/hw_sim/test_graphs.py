"""Graph structure and timing on Lava: residual/skip paths, several inputs and
outputs, summed fan-in, recurrent cycles, Delay nodes, nested subgraphs.

The reference simulator is latency-free; Lava's per-hop latency is equalised
by Shift processes and aligned away, so both must agree step for step.
"""
import nir
import numpy as np
import pytest

from spikedeploy.errors import UnsupportedError
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.hw_sim.timing import schedule
from spikedeploy.ir.lowering import lower

from helpers import DT, random_cuba_lif, random_lif, run_both, spikes


def _g(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": DT}, type_check=False)


def residual_graph(rng, n=6):
    """Two inputs; a residual block (paths of 1 and 3 hops into lif3); RLeaky and
    RSynaptic-style recurrent cycles; a NIR Delay; a self-connected neuron; two outputs."""
    nodes = {
        "in_a": nir.Input(input_type=np.array([n])),
        "in_b": nir.Input(input_type=np.array([3])),
        "fc1": nir.Affine(weight=rng.normal(0, 1.0, (8, n)), bias=rng.normal(0, 0.1, 8)),
        "fc_b": nir.Linear(weight=rng.normal(0, 1.0, (8, 3))),          # second input, summed
        "lif1": random_lif(rng, (8,)),
        "fc2": nir.Linear(weight=rng.normal(0, 1.0, (8, 8))),
        "rec2": nir.Affine(weight=rng.normal(0, 0.5, (8, 8)), bias=rng.normal(0, 0.1, 8)),
        "lif2": random_lif(rng, (8,)),                                          # RLeaky: lif2 <-> rec2
        "fc3": nir.Linear(weight=rng.normal(0, 1.0, (8, 8))),
        "skip": nir.Linear(weight=rng.normal(0, 1.0, (8, 8))),           # residual: lif1 -> lif3
        "lif3": random_cuba_lif(rng, (8,)),
        "rec3": nir.Linear(weight=rng.normal(0, 0.5, (8, 8))),           # RSynaptic: lif3 <-> rec3
        "delay": nir.Delay(delay=rng.integers(0, 4, 8) * DT),
        "fc4": nir.Linear(weight=rng.normal(0, 1.0, (4, 8))),
        "lif4": random_lif(rng, (4,)),
        "out_main": nir.Output(output_type=None),
        "out_l1": nir.Output(output_type=None),
    }
    edges = [("in_a", "fc1"), ("fc1", "lif1"), ("in_b", "fc_b"), ("fc_b", "lif1"),
             ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "rec2"), ("rec2", "lif2"),
             ("lif2", "fc3"), ("fc3", "lif3"), ("lif1", "skip"), ("skip", "lif3"),
             ("lif3", "rec3"), ("rec3", "lif3"), ("lif3", "delay"), ("delay", "fc4"),
             ("fc4", "lif4"), ("lif4", "lif4"),                          # self-loop, no weights
             ("lif4", "out_main"), ("lif1", "out_l1")]
    return _g(nodes, edges)


def test_schedule_equalises_paths_and_cycles(rng):
    p = lower(residual_graph(rng))
    s = schedule(p)
    assert s.latency["lif1"] == 1 and s.latency["lif2"] == 2 and s.latency["lif3"] == 3
    assert s.edge_delay[("skip", "lif3")] == 1       # the short path waits one step
    assert ("rec2", "lif2") not in s.edge_delay      # one hop: exactly the previous step
    assert s.edge_delay[("lif4", "lif4")] == 1       # no hop: a Shift of one step
    assert s.total_latency == 4


def test_recurrent_reads_previous_step(rng):
    """Reference: a recurrent edge delivers the source's previous-step output."""
    g = _g({"input": nir.Input(input_type=np.array([1])),
            "thr": nir.Threshold(threshold=np.array([0.5])),
            "out": nir.Output(output_type=None)},
           [("input", "thr"), ("thr", "thr"), ("thr", "out")])
    x = np.zeros((5, 1, 1))
    x[0] = 1.0
    r = simulate(lower(g), x)
    # t0: 1 > .5 fires; t1: 0 + 1 (own previous spike) fires; ... a self-sustaining loop
    assert r.records["out"][:, 0, 0].tolist() == [1, 1, 1, 1, 1]


@pytest.mark.lava
def test_residual_recurrent_delay_multi_io(rng):
    g = residual_graph(rng)
    x = {"in_a": spikes(rng, (14, 5, 6), 0.35), "in_b": spikes(rng, (14, 5, 3), 0.35)}
    runs = run_both(g, x, min_spikes=3)
    assert runs["lava"].latency == 4
    assert runs["ref"].records["lif4"].sum() > 0


@pytest.mark.lava
def test_nested_subgraph(rng):
    inner = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([5])),
                                "fc": nir.Affine(weight=rng.normal(0, 1.0, (5, 5)),
                                                 bias=rng.normal(0, 0.1, 5)),
                                "lif": random_lif(rng, (5,)),
                                "output": nir.Output(output_type=np.array([5]))},
                         edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                         type_check=False)
    g = _g({"input": nir.Input(input_type=np.array([4])),
            "fc0": nir.Linear(weight=rng.normal(0, 1.0, (5, 4))),
            "lif0": random_lif(rng, (5,)),
            "block": inner,
            "fc_out": nir.Linear(weight=rng.normal(0, 1.0, (3, 5))),
            "lif_out": random_lif(rng, (3,)),
            "output": nir.Output(output_type=None)},
           [("input", "fc0"), ("fc0", "lif0"), ("lif0", "block"), ("block", "fc_out"),
            ("lif0", "fc_out"), ("fc_out", "lif_out"), ("lif_out", "output")])
    p = lower(g)
    assert "block.lif" in p.ops and "block.input" not in p.ops
    run_both(g, spikes(rng, (12, 4, 4), 0.4), min_spikes=3)


def test_cycle_too_long_for_lava_is_refused(rng):
    """A recurrent edge through two synapses cannot deliver the previous step in Lava."""
    g = _g({"input": nir.Input(input_type=np.array([3])),
            "fc": nir.Linear(weight=rng.normal(size=(3, 3))),
            "lif": random_lif(rng, (3,)),
            "r1": nir.Linear(weight=rng.normal(size=(3, 3))),
            "r2": nir.Linear(weight=rng.normal(size=(3, 3))),
            "out": nir.Output(output_type=None)},
           [("input", "fc"), ("fc", "lif"), ("lif", "r1"), ("r1", "r2"), ("r2", "lif"),
            ("lif", "out")])
    p = lower(g)
    simulate(p, np.zeros((3, 1, 3)))           # the reference runs it
    with pytest.raises(UnsupportedError, match="recurrent"):
        schedule(p)
