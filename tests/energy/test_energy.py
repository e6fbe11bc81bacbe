"""Energy report: counts against brute force, AC/MAC, recurrence, files, arithmetic."""
import csv
import json
import os
import types

import nir
import numpy as np
import pytest

from helpers import DT, lif_node, mlp_graph
from spikedeploy.energy import (FANOUT, EnergyProfile, FanOut, available_profiles,
                                count_operations, energy_report, load_profile,
                                neurobench_activation_sparsity, neurobench_synops, sinabs_synops,
                                syops_estimate)
from spikedeploy.energy.report import COLUMNS, pair_layers
from spikedeploy.errors import SpikedeployError
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.hw_sim.result import SimResult
from spikedeploy.ir.lowering import lower
from spikedeploy.ir.ops import DenseOp, InputOp, NeuronOp, Op, OutputOp, Program, ReshapeOp
from spikedeploy.ir.semantics import neuron_params

E_AC, E_MAC = 0.9, 4.6


def fabricate(program, rng, T=7, N=3, rate=0.3, graded=()):
    """Random records for every op: spikes 0/1, graded values for names in ``graded``."""
    records = {}
    for name, op in program.ops.items():
        if name in graded:
            x = rng.normal(size=(T, N, op.size))
            x[rng.random(x.shape) < 0.2] = 0.0
        else:
            x = (rng.random((T, N, op.size)) < rate).astype(np.float64)
        records[name] = x
    return SimResult(program, records, backend="test", precision="float")


def mlp_program(rng, sizes=(12, 9, 5), zero_frac=0.3):
    program = lower(mlp_graph(rng, sizes=sizes))
    for op in program.ops.values():
        if isinstance(op, DenseOp):
            op.weight[rng.random(op.weight.shape) < zero_frac] = 0.0
            op.weight[:, 0] = 0.0                  # one input drives nothing
    return program


def brute_force(result, op):
    """Loop over every event and every weight: (events, ops_nonzero, ops_all) per step."""
    T, N = result.num_steps, result.num_samples
    W = op.weight
    events, nz, al = np.zeros(T, int), np.zeros(T, int), np.zeros(T, int)
    for src in op.inputs:
        rec = result.records[src]
        for t in range(T):
            ts = t - 1 if src in op.recurrent else t
            if ts < 0:
                continue
            for n in range(N):
                for i in range(W.shape[1]):
                    if rec[ts, n, i] == 0:
                        continue
                    events[t] += 1
                    for j in range(W.shape[0]):
                        al[t] += 1
                        if W[j, i] != 0:
                            nz[t] += 1
    return events, nz, al


# -- counting -----------------------------------------------------------------

def test_synops_match_brute_force(rng):
    program = mlp_program(rng)
    result = fabricate(program, rng)
    counts = count_operations(result)
    assert set(counts.synaptic) == {"fc1", "fc2"}
    for name in ("fc1", "fc2"):
        c = counts.synaptic[name]
        events, nz, al = brute_force(result, program.ops[name])
        assert c.binary and c.kind == "AC"
        np.testing.assert_array_equal(c.events, events)
        np.testing.assert_array_equal(c.ops["nonzero"], nz)
        np.testing.assert_array_equal(c.ops["all"], al)
        assert nz.sum() < al.sum()                 # the zero weights made a difference
        np.testing.assert_array_equal(c.acs("nonzero"), nz)
        assert not c.macs("nonzero").any()
        assert c.synapses == program.ops[name].weight.size
        assert c.synapses_nonzero == np.count_nonzero(program.ops[name].weight)


def test_zero_weights_nonzero_vs_all():
    W = np.array([[1.0, 0.0, 2.0],
                  [0.0, 0.0, 3.0]])              # fan-out (nonzero): 1, 0, 2; all: 2, 2, 2
    ops = {"x": InputOp("x", (3,)),
           "fc": DenseOp("fc", (2,), inputs=["x"], weight=W, in_shape=(3,), nir_type="Linear")}
    program = Program(ops, ["x"], [], DT, {})
    x = np.array([[[1, 1, 1]], [[0, 1, 0]], [[0, 0, 1]]], dtype=float)  # T=3, N=1
    c = count_operations(SimResult(program, {"x": x}, "test", "float")).synaptic["fc"]
    np.testing.assert_array_equal(c.events, [3, 1, 1])
    np.testing.assert_array_equal(c.ops["nonzero"], [3, 0, 2])
    np.testing.assert_array_equal(c.ops["all"], [6, 2, 2])
    assert (c.synapses, c.synapses_nonzero) == (6, 3)
    e_nz = energy_report(SimResult(program, {"x": x}, "test", "float"), variant="nonzero")
    e_all = energy_report(SimResult(program, {"x": x}, "test", "float"), variant="all")
    assert e_nz.total_energy_pj == pytest.approx(5 * E_AC)
    assert e_all.total_energy_pj == pytest.approx(10 * E_AC)
    # ANN equivalent: every synapse a MAC at every step (x T = 3); no bias here
    assert e_nz.ann_energy_pj == e_all.ann_energy_pj == pytest.approx(6 * 3 * E_MAC)
    assert e_nz.ann_energy_per_pass_pj == pytest.approx(6 * E_MAC)


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
def test_graded_input_makes_a_mac_layer(rng, bad):
    program = mlp_program(rng)
    result = fabricate(program, rng)
    result.records["input"][3, 1, 4] = bad       # one non-binary value anywhere
    counts = count_operations(result)
    fc1, fc2 = counts.synaptic["fc1"], counts.synaptic["fc2"]
    assert fc1.kind == "MAC" and fc2.kind == "AC"
    events, nz, al = brute_force(result, program.ops["fc1"])
    np.testing.assert_array_equal(fc1.macs("nonzero"), nz)
    np.testing.assert_array_equal(fc1.macs("all"), al)
    assert not fc1.acs("nonzero").any()
    T, N = result.num_steps, result.num_samples
    assert fc1.dense_macs().sum() == 12 * 9 * T * N
    assert fc2.dense_macs().sum() == 0
    rep = energy_report(result)
    expected = (nz.sum() * E_MAC + counts.synaptic["fc2"].ops["nonzero"].sum() * E_AC) / N
    assert rep.synaptic_energy_pj == pytest.approx(expected)
    bias = sum(int(c.bias_adds.sum()) for c in counts.neurons.values()) / N
    assert bias == (9 + 5) * T                   # every neuron has a folded Affine bias
    assert rep.total_energy_pj == pytest.approx(expected + bias * E_AC)
    assert rep.rows[0].type == "Affine[MAC] -> LIF"


def test_fixed_scale_is_divided_out_before_the_binary_test(rng):
    program = mlp_program(rng)
    result = fabricate(program, rng)
    result.records["input"] = result.records["input"] * 4.0
    assert count_operations(result).synaptic["fc1"].kind == "MAC"
    result.fixed = types.SimpleNamespace(scales={"input": 4.0})
    c = count_operations(result).synaptic["fc1"]
    assert c.kind == "AC"
    np.testing.assert_array_equal(c.ops["all"], brute_force(result, program.ops["fc1"])[2])


def _recurrent_program():
    """x -> fc -> lif, and lif -> rec -> lif where rec reads lif at t-1."""
    rng = np.random.default_rng(7)
    w_in = rng.normal(size=(4, 3))
    w_rec = rng.normal(size=(4, 4))
    w_rec[:, 2] = 0.0
    params = neuron_params("lif", lif_node(np.full(4, 0.9), np.ones(4)), DT)
    ops = {
        "x": InputOp("x", (3,)),
        "fc": DenseOp("fc", (4,), inputs=["x"], weight=w_in, in_shape=(3,), nir_type="Linear"),
        "rec": DenseOp("rec", (4,), inputs=["lif"], recurrent={"lif"}, weight=w_rec,
                       in_shape=(4,), nir_type="Linear"),
        "lif": NeuronOp("lif", (4,), inputs=["fc", "rec"], params=params, nir_type="LIF"),
        "out": OutputOp("out", (4,), inputs=["lif"]),
    }
    return Program(ops, ["x"], ["out"], DT, {})


def test_recurrent_input_reads_the_previous_step():
    program = _recurrent_program()
    T, N = 4, 2
    lif = np.zeros((T, N, 4))
    lif[0, 0, [0, 2]] = 1                        # seen by rec at t=1
    lif[2, 1, 1] = 1                             # seen at t=3
    lif[T - 1, :, :] = 1                         # last step: never seen
    records = {"x": np.zeros((T, N, 3)), "lif": lif}
    counts = count_operations(SimResult(program, records, "test", "float"))
    rec = counts.synaptic["rec"]
    np.testing.assert_array_equal(rec.events, [0, 2, 0, 1])
    np.testing.assert_array_equal(rec.ops["all"], [0, 8, 0, 4])
    np.testing.assert_array_equal(rec.ops["nonzero"], [0, 4, 0, 4])  # column 2 is all zero
    np.testing.assert_array_equal(counts.neurons["lif"].spikes, [2, 0, 1, 8])
    e, nz, al = brute_force(SimResult(program, records, "test", "float"), program.ops["rec"])
    np.testing.assert_array_equal(rec.ops["nonzero"], nz)
    # rows: the forward Dense pairs with lif; the recurrent one stands alone
    assert pair_layers(program) == [("fc", "lif"), ("rec", None)]


def test_lowered_recurrent_graph_counts_and_rows(rng):
    nodes = {"input": nir.Input(input_type=np.array([3])),
             "fc": nir.Linear(weight=rng.normal(size=(4, 3))),
             "lif": lif_node(np.full(4, 0.9), np.full(4, 0.5)),
             "rec": nir.Linear(weight=rng.normal(size=(4, 4))),
             "output": nir.Output(output_type=np.array([4]))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    program = lower(nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": DT}))
    result = simulate(program, (rng.random((12, 5, 3)) < 0.5).astype(float))
    counts = count_operations(result)
    for name in ("fc", "rec"):
        e, nz, al = brute_force(result, program.ops[name])
        np.testing.assert_array_equal(counts.synaptic[name].ops["nonzero"], nz)
        np.testing.assert_array_equal(counts.synaptic[name].events, e)
    labels = [r.label for r in energy_report(result).rows]
    assert labels == ["fc -> lif", "rec"]


def test_counts_agree_with_the_reference_simulator(rng):
    program = lower(mlp_graph(rng, sizes=(16, 24, 6)))
    x = (rng.random((20, 8, 16)) < 0.4).astype(float)
    result = simulate(program, x)
    counts = count_operations(result)
    lif1 = counts.neurons["lif1"]
    assert lif1.spikes.sum() > 0
    # every lif1 spike is one fc2 input event, at the same step
    np.testing.assert_array_equal(counts.synaptic["fc2"].events, lif1.spikes)
    np.testing.assert_array_equal(counts.synaptic["fc1"].events,
                                  x.reshape(20, -1).sum(axis=1))
    assert lif1.firing_rate == pytest.approx(result.records["lif1"].mean())
    # direct (graded) encoding turns the first layer into a MAC layer only
    graded = simulate(program, rng.random((20, 8, 16)))
    kinds = {n: c.kind for n, c in count_operations(graded).synaptic.items()}
    assert kinds == {"fc1": "MAC", "fc2": "AC"}


def test_non_spiking_output_feeds_a_mac_layer_and_has_no_rate(rng):
    graph = mlp_graph(rng, sizes=(6, 5, 4))
    graph.nodes["lif2"] = nir.LI(tau=np.full(4, 1e-3), r=np.ones(4), v_leak=np.zeros(4))
    graph.nodes["fc3"] = nir.Linear(weight=rng.normal(size=(3, 4)))
    graph.nodes["output"] = nir.Output(output_type=np.array([3]))
    graph.edges = [e for e in graph.edges if e != ("lif2", "output")] + [
        ("lif2", "fc3"), ("fc3", "output")]
    program = lower(graph)
    result = simulate(program, (rng.random((9, 2, 6)) < 0.5).astype(float))
    rep = energy_report(result)
    li = rep.counts.neurons["lif2"]
    assert not li.spiking and li.firing_rate is None
    assert rep.counts.synaptic["fc3"].kind == "MAC"
    row = next(r for r in rep.per_inference_rows() if r["layer"] == "fc2 -> lif2")
    assert row["output_spikes"] is None and row["firing_rate"] is None
    assert [r.label for r in rep.rows] == ["fc1 -> lif1", "fc2 -> lif2", "fc3"]
    table_line = next(l for l in rep.to_table().splitlines() if l.startswith("fc2 -> lif2"))
    assert table_line.split()[-7:-5] == ["-", "-"]   # output spikes, firing rate


def test_flatten_without_a_record_reads_through_and_missing_records_fail(rng):
    W = rng.normal(size=(2, 6))
    ops = {"x": InputOp("x", (2, 3)),
           "flat": ReshapeOp("flat", (6,), inputs=["x"]),
           "fc": DenseOp("fc", (2,), inputs=["flat"], weight=W, in_shape=(6,))}
    program = Program(ops, ["x"], [], DT, {})
    x = (rng.random((5, 2, 6)) < 0.5).astype(float)
    c = count_operations(SimResult(program, {"x": x}, "test", "float")).synaptic["fc"]
    assert c.events.sum() == x.sum()
    with pytest.raises(SpikedeployError, match="no record for op 'x'"):
        count_operations(SimResult(program, {"fc": np.zeros((5, 2, 2))}, "test", "float"))
    with pytest.raises(SpikedeployError, match="shape"):
        count_operations(SimResult(program, {"x": x[:, :, :4]}, "test", "float"))


def test_fanout_registry_extends_to_new_op_types(monkeypatch, rng):
    class Pool2(Op):
        """Toy synaptic op: input i drives output i // 2 only."""
        synaptic = True

    monkeypatch.setitem(FANOUT, Pool2, lambda op: FanOut(np.ones(4, np.int64),
                                                         np.ones(4, np.int64)))
    ops = {"x": InputOp("x", (4,)), "pool": Pool2("pool", (2,), inputs=["x"], nir_type="Pool")}
    x = (rng.random((3, 2, 4)) < 0.5).astype(float)
    rep = energy_report(SimResult(Program(ops, ["x"], [], DT, {}), {"x": x}, "test", "float"))
    c = rep.counts.synaptic["pool"]
    assert c.ops["nonzero"].sum() == x.sum() and c.synapses == 4
    assert rep.rows[0].label == "pool"
    assert rep.total_energy_pj == pytest.approx(x.sum() * E_AC / 2)


# -- energy arithmetic, profiles -------------------------------------------------

def test_energy_arithmetic_per_inference_and_ann(rng):
    program = mlp_program(rng, sizes=(12, 9, 5))
    result = fabricate(program, rng, T=6, N=4)
    counts = count_operations(result)
    rep = energy_report(result)
    N = 4
    T = 6
    acs = sum(int(c.ops["nonzero"].sum()) for c in counts.synaptic.values())
    bias_adds = (9 + 5) * T                          # folded Affine biases, every step
    assert rep.synaptic_energy_pj == pytest.approx(acs * E_AC / N)
    assert rep.total_energy_pj == pytest.approx(acs * E_AC / N + bias_adds * E_AC)
    assert rep.energy_breakdown_pj["neuron"] == 0 == rep.energy_breakdown_pj["memory"]
    assert rep.ann_macs == 12 * 9 + 9 * 5            # one pass
    # ANN equivalent: every synapse a MAC at every step, plus the same bias additions
    assert rep.ann_energy_pj == pytest.approx((12 * 9 + 9 * 5) * T * E_MAC + bias_adds * E_AC)
    assert rep.ann_energy_per_pass_pj == pytest.approx((12 * 9 + 9 * 5) * E_MAC + 14 * E_AC)
    assert rep.ratio == pytest.approx(rep.total_energy_pj / rep.ann_energy_pj)
    np.testing.assert_allclose(rep.energy_per_step_pj.sum(), rep.total_energy_pj)
    rep_all = energy_report(result, variant="all")
    acs_all = sum(int(c.ops["all"].sum()) for c in counts.synaptic.values())
    assert rep_all.synaptic_energy_pj == pytest.approx(acs_all * E_AC / N)
    assert rep_all.total_energy_pj > rep.total_energy_pj
    with pytest.raises(SpikedeployError, match="variant"):
        energy_report(result, variant="dense")


def test_profiles_by_name_path_and_object(rng, tmp_path):
    p = load_profile("45nm")
    assert (p.e_ac_pj, p.e_mac_pj) == (0.9, 4.6) and "Horowitz" in p.sources["mac"]
    assert load_profile("45nm-fp16").e_mac_pj == pytest.approx(1.5)
    custom = tmp_path / "chip.toml"
    custom.write_text('name = "chip"\n[energy_pj]\nac = 2.0\nmac = 10.0\n[sources]\nac = "x"\n')
    program = mlp_program(rng)
    result = fabricate(program, rng)
    base = energy_report(result)
    for prof in (str(custom), EnergyProfile("chip", 2.0, 10.0)):
        rep = energy_report(result, profile=prof)
        assert rep.profile.name == "chip"
        assert rep.total_energy_pj == pytest.approx(base.total_energy_pj * 2.0 / 0.9)
        # no bias_add in the file: a bias addition costs E_AC
        assert rep.profile.bias_pj == 2.0
        assert rep.ann_energy_pj == pytest.approx(
            base.ann_energy_breakdown_pj["synaptic"] * 10.0 / 4.6
            + base.ann_energy_breakdown_pj["bias"] * 2.0 / 0.9)
    with pytest.raises(SpikedeployError, match="unknown energy profile"):
        load_profile("7nm")
    bad = tmp_path / "bad.toml"
    bad.write_text('[energy_pj]\nac = -1\nmac = 1\n')
    with pytest.raises(SpikedeployError, match="non-negative"):
        load_profile(bad)
    bad.write_text('[energy_pj]\nac = 1\n')
    with pytest.raises(SpikedeployError, match="'mac'"):
        load_profile(bad)


# -- report output -----------------------------------------------------------------

def test_table_json_csv(rng, tmp_path):
    program = mlp_program(rng)
    result = fabricate(program, rng, T=5, N=4)
    rep = energy_report(result)
    table = rep.to_table()
    assert max(len(line) for line in table.splitlines()) <= 100       # fits a terminal
    head = table.splitlines()[table.splitlines().index(next(
        l for l in table.splitlines() if l.startswith("layer"))) - 1:][:2]
    words = " ".join(head).split()
    for key, heading in COLUMNS:             # every column under its one name (two lines)
        assert all(w in words for w in heading.split()), heading
    assert "fc1 -> lif1" in table and "ANN" in table and "total" in table

    rep.to_json(tmp_path / "out" / "report.json")
    rep.to_csv(tmp_path / "out" / "report.csv")
    assert sorted(os.listdir(tmp_path / "out")) == ["report.csv", "report.json"]  # no temp files
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["num_samples"] == 4 and data["num_steps"] == 5
    assert data["snn_energy_pj"] == pytest.approx(rep.total_energy_pj)
    assert data["ann_equivalent"]["macs"] == rep.ann_macs * 5
    assert data["ann_equivalent"]["macs_per_pass"] == rep.ann_macs
    assert data["ratio_snn_to_ann"] == pytest.approx(rep.ratio)
    tot = data["totals"]
    assert tot["over_all_samples"]["energy_pj"] == pytest.approx(4 * tot["per_inference"]["energy_pj"])
    assert tot["over_all_samples"]["output_spikes"] == sum(
        result.records[n].sum() for n in ("lif1", "lif2"))
    fc1 = data["layers"][0]
    assert fc1["layer"] == "fc1 -> lif1"
    per_step = fc1["synaptic"]["per_step_per_inference"]["ops_nonzero_weights"]
    assert len(per_step) == 5
    assert sum(per_step) == pytest.approx(fc1["per_inference"]["synops_ac"])
    assert fc1["neuron"]["over_all_samples"]["spikes"] == result.records["lif1"].sum()

    with open(tmp_path / "out" / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["layer"] for r in rows] == ["fc1 -> lif1", "fc2 -> lif2", "total", "ANN equivalent",
                                          "ANN equivalent, one pass"]
    assert float(rows[2]["energy_pj"]) == pytest.approx(rep.total_energy_pj)
    assert float(rows[3]["energy_pj"]) == pytest.approx(rep.ann_energy_pj)
    assert float(rows[0]["input_spikes"]) == pytest.approx(result.records["input"].sum() / 4)


def test_writes_are_atomic(rng, tmp_path, monkeypatch):
    rep = energy_report(fabricate(mlp_program(rng), rng))
    path = tmp_path / "report.json"
    path.write_text("old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(SpikedeployError, match="disk full"):
        rep.to_json(path)
    with pytest.raises(SpikedeployError, match="disk full"):
        rep.to_csv(tmp_path / "report.csv")
    with pytest.raises(SpikedeployError, match="disk full"):
        rep.write(tmp_path)                      # the set: none of the files appears
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["report.json"]


def test_empty_run_is_refused(rng):
    program = mlp_program(rng)
    result = fabricate(program, rng, T=0)
    with pytest.raises(SpikedeployError, match="no time steps"):
        energy_report(result)


# -- bias additions, neuron updates, firing rates per step -----------------------------

def brute_force_active(result, program, name):
    """Active updates per step by loops: some input event reaches the neuron through a
    non-zero weight, or the neuron has a non-zero bias."""
    op = program.ops[name]
    T, N = result.num_steps, result.num_samples
    bias = np.broadcast_to(np.asarray(op.params.input_bias, float), (op.size,))
    active = np.zeros(T, int)
    for t in range(T):
        for n in range(N):
            for j in range(op.size):
                hit = bias[j] != 0
                for src in op.inputs:
                    W = program.ops[src].weight
                    x = result.records[program.ops[src].inputs[0]][t, n]
                    hit = hit or any(x[i] != 0 and W[j, i] != 0 for i in range(W.shape[1]))
                active[t] += hit
    return active


def test_bias_additions_and_active_neuron_updates(rng):
    program = mlp_program(rng, sizes=(10, 8, 4))
    lif1 = program.ops["lif1"]
    lif1.params.input_bias = np.where(np.arange(8) < 3, 0.0, 0.2)   # 5 of 8 neurons biased
    program.ops["lif2"].params.input_bias = 0.0                     # none
    result = fabricate(program, rng, T=6, N=3, rate=0.15)
    counts = count_operations(result)
    c1, c2 = counts.neurons["lif1"], counts.neurons["lif2"]
    assert (c1.biased_neurons, c2.biased_neurons) == (5, 0)
    np.testing.assert_array_equal(c1.bias_adds, np.full(6, 5 * 3))
    np.testing.assert_array_equal(c2.bias_adds, np.zeros(6))
    for name in ("lif1", "lif2"):
        c = counts.neurons[name]
        np.testing.assert_array_equal(c.active, brute_force_active(result, program, name))
        np.testing.assert_array_equal(c.active + c.inactive, np.full(6, c.neurons * 3))
    assert 0 < c2.inactive.sum() and c2.active.sum() > 0
    # per-step firing rates and activation sparsity
    np.testing.assert_allclose(c1.firing_rate_per_step,
                               result.records["lif1"].mean(axis=(1, 2)))
    assert c1.activation_sparsity == pytest.approx(1 - result.records["lif1"].mean())
    assert c1.raster.shape == (6, 8) and c1.raster.dtype == bool
    np.testing.assert_array_equal(c1.raster, result.records["lif1"][:, 0, :] != 0)


def test_a_bias_left_on_a_synaptic_op_is_counted_there():
    W = np.array([[1.0, 0.0], [0.5, 2.0], [0.0, 0.0]])
    ops = {"x": InputOp("x", (2,)),
           "fc": DenseOp("fc", (3,), inputs=["x"], weight=W, bias=np.array([0.1, 0.0, 0.3]),
                         in_shape=(2,), nir_type="Affine"),
           "out": OutputOp("out", (3,), inputs=["fc"])}
    program = Program(ops, ["x"], ["out"], DT, {})
    x = np.zeros((4, 2, 2))
    rep = energy_report(SimResult(program, {"x": x, "fc": np.zeros((4, 2, 3))}, "test", "float"))
    c = rep.counts.synaptic["fc"]
    np.testing.assert_array_equal(c.bias_adds, np.full(4, 2 * 2))   # 2 non-zero biases x N=2
    assert rep.energy_breakdown_pj["bias"] == pytest.approx(4 * 2 * E_AC)
    assert rep.ann_energy_breakdown_pj["bias"] == pytest.approx(4 * 2 * E_AC)


def test_large_layers_raster_shows_a_bounded_evenly_spaced_subset(rng):
    from spikedeploy.energy.counts import RASTER_MAX_NEURONS
    program = lower(mlp_graph(rng, sizes=(4, 700, 3)))
    result = fabricate(program, rng, T=3, N=2)
    c = count_operations(result).neurons["lif1"]
    assert c.raster.shape == (3, len(c.raster_index)) and len(c.raster_index) <= RASTER_MAX_NEURONS
    assert c.raster_index[0] == 0 and c.raster_index[-1] == 699
    np.testing.assert_array_equal(c.raster, result.records["lif1"][:, 0, c.raster_index] != 0)


# -- profiles -----------------------------------------------------------------------------

def test_packaged_profiles_cite_a_source_for_every_number():
    assert {"45nm", "45nm-fp16", "45nm-int8", "loihi"} <= set(available_profiles())
    for name in available_profiles():
        p = load_profile(name)
        prices = p.prices(memory=p.has_memory)
        for key in prices:              # given numbers cite a source; absent ones say so
            assert p.source(key) != "no source given", (name, key)
            assert len(p.source(key)) > 20, (name, key)
        for key in p.sources:
            assert key in prices, (name, key)
    fp32, int8, loihi = load_profile("45nm"), load_profile("45nm-int8"), load_profile("loihi")
    assert (fp32.e_ac_pj, fp32.e_mac_pj) == (0.9, 4.6)
    assert (int8.e_ac_pj, int8.e_mac_pj) == (0.03, pytest.approx(0.23))
    assert (loihi.e_ac_pj, loihi.e_neuron_active_pj, loihi.e_neuron_inactive_pj,
            loihi.e_spike_pj) == (23.6, 81.0, 52.0, 1.7)
    assert "Davies" in loihi.sources["neuron_update_active"]


@pytest.mark.parametrize("text, message", [
    ('[energy_pj]\nac = 0.9\n', "missing field 'mac' in [energy_pj]"),
    ('[energy_pj]\nmac = 4.6\n', "missing field 'ac' in [energy_pj]"),
    ('[energy_pj]\nac = "0.9"\nmac = 4.6\n', "field 'ac' in [energy_pj] must be a number"),
    ('[energy_pj]\nac = 0.9\nmac = true\n', "field 'mac' in [energy_pj] must be a number"),
    ('[energy_pj]\nac = 0.9\nmac = [4.6]\n', "field 'mac' in [energy_pj] must be a number"),
    ('[energy_pj]\nac = 0.9\nmac = nan\n', "finite non-negative"),
    ('[energy_pj]\nac = -0.9\nmac = 4.6\n', "finite non-negative"),
    ('[energy_pj]\nac = 0.9\nmac = 4.6\nspike = "cheap"\n', "field 'spike' in [energy_pj]"),
    ('[energy_pj]\nac = 0.9\nmak = 4.6\n', "unknown field 'mak' in [energy_pj]"),
    ('[energy]\nac = 0.9\nmac = 4.6\n', "unknown field 'energy'"),
    ('name = "x"\n', "needs an [energy_pj] table"),
    ('[energy_pj]\nac = 1\nmac = 2\n[memory_pj]\nweight_read = 1\n', "missing field 'neuron_state'"),
    ('[energy_pj]\nac = 1\nmac = 2\n[memory_pj]\nweight_read = "x"\nneuron_state = 1\n',
     "field 'weight_read' in [memory_pj] must be a number"),
    ('[energy_pj]\nac = 1\nmac = 2\n[sources]\nac = 3\n', "[sources] must map"),
    ('[energy_pj\nac = 1\n', "not valid TOML"),
])
def test_a_bad_user_profile_is_rejected_with_a_clear_message(tmp_path, text, message):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(SpikedeployError) as err:
        load_profile(path)
    assert message in str(err.value)
    assert "mine" in str(err.value)            # names the profile / file


def test_user_profiles_toml_and_json(tmp_path, rng):
    toml = tmp_path / "chip.toml"
    toml.write_text('name = "chip"\n[energy_pj]\nac = 2\nmac = 10\nneuron_update_active = 5\n'
                    'neuron_update_inactive = 1\nspike = 0.5\nbias_add = 0\n'
                    '[sources]\nac = "datasheet"\n')
    js = tmp_path / "chip2.json"
    js.write_text(json.dumps({"energy_pj": {"ac": 2, "mac": 10}}))
    p = load_profile(toml)
    assert (p.e_ac_pj, p.e_neuron_active_pj, p.bias_pj, p.has_memory) == (2.0, 5.0, 0.0, False)
    assert p.source("ac") == "datasheet" and "no source" in p.source("mac")
    q = load_profile(js)
    assert q.name == "chip2" and q.bias_pj == 2.0 and "E_AC" in q.source("bias_add")
    js.write_text("{not json")
    with pytest.raises(SpikedeployError, match="not valid JSON"):
        load_profile(js)
    with pytest.raises(SpikedeployError, match="absent.toml: no such file"):
        load_profile(tmp_path / "absent.toml")


def test_loihi_prices_neuron_updates_and_spikes(rng):
    program = mlp_program(rng)
    result = fabricate(program, rng, T=5, N=2)
    rep = energy_report(result, profile="loihi")
    counts = rep.counts
    N = 2
    act = sum(int(c.active.sum()) for c in counts.neurons.values())
    inact = sum(int(c.inactive.sum()) for c in counts.neurons.values())
    spikes = sum(int(c.spikes.sum()) for c in counts.neurons.values())
    acs = sum(int(c.ops["nonzero"].sum()) for c in counts.synaptic.values())
    br = rep.energy_breakdown_pj
    assert br["synaptic"] == pytest.approx(acs * 23.6 / N)
    assert br["neuron"] == pytest.approx((act * 81 + inact * 52) / N)
    assert br["spike"] == pytest.approx(spikes * 1.7 / N)
    assert br["bias"] == 0 and br["memory"] == 0
    assert rep.total_energy_pj == pytest.approx(sum(br.values()))
    row = rep.per_inference_rows()[0]
    assert row["energy_pj"] == pytest.approx(sum(row[f"energy_{k}_pj"] for k in
                                                 ("synaptic", "bias", "neuron", "spike", "memory")))


def test_memory_term_is_off_by_default_and_labelled_when_on(rng, tmp_path):
    program = mlp_program(rng)
    result = fabricate(program, rng, T=5, N=2)
    off = energy_report(result)
    on = energy_report(result, memory=True)
    assert off.energy_breakdown_pj["memory"] == 0 and not off.to_dict()["memory_term"]
    counts = on.counts
    ops = sum(int(c.ops["nonzero"].sum()) for c in counts.synaptic.values())
    updates = sum(int(c.updates.sum()) for c in counts.neurons.values())
    assert on.energy_breakdown_pj["memory"] == pytest.approx((ops * 10 + updates * 20) / 2)
    assert on.total_energy_pj == pytest.approx(off.total_energy_pj
                                               + on.energy_breakdown_pj["memory"])
    assert on.ann_energy_breakdown_pj["memory"] == pytest.approx(on.ann_macs * 5 * 10)
    assert "memory term off" in " ".join(off.to_table().split()) and "memory" in on.to_table()
    assert on.to_dict()["memory_term"] and "weight_read" in on.to_dict()["profile"]["sources"]
    nomem = tmp_path / "nomem.toml"
    nomem.write_text("[energy_pj]\nac = 1\nmac = 2\n")
    with pytest.raises(SpikedeployError, match="no \\[memory_pj\\] table"):
        energy_report(result, profile=nomem, memory=True)


# -- other tools' definitions on Dense networks ---------------------------------------------

def test_neurobench_judges_ac_or_mac_per_step_and_counts_dense(rng):
    program = mlp_program(rng, sizes=(12, 9, 5))
    T, N = 6, 4
    result = fabricate(program, rng, T=T, N=N)
    x = result.records["input"]
    x[2] = np.where(x[2] != 0, -1.0, 0.0)        # step 2: {-1, 0}: AC for NeuroBench
    x[4, 1, 3] = 0.5                             # step 4: graded: MAC
    counts = count_operations(result)
    fc1 = counts.synaptic["fc1"]
    assert fc1.kind == "MAC"                     # ours: the whole layer (non-binary values)
    np.testing.assert_array_equal(fc1.step_binary, [True, True, True, True, False, True])
    nb = neurobench_synops(counts)
    eff1 = fc1.ops["nonzero"]
    eff2 = counts.synaptic["fc2"].ops["nonzero"].sum()
    assert nb["Effective_MACs"] == eff1[4] / N
    assert nb["Effective_ACs"] == (eff1.sum() - eff1[4] + eff2) / N
    assert nb["Dense"] == (12 * 9 + 9 * 5) * T
    assert nb["per_layer"]["fc2"]["Effective_MACs"] == 0
    spikes = result.records["lif1"].sum() + result.records["lif2"].sum()
    assert neurobench_activation_sparsity(counts) == pytest.approx(1 - spikes / ((9 + 5) * T * N))
    # sinabs: value-weighted over all synapses (the -1 inputs subtract)
    sb = sinabs_synops(counts)
    W1 = program.ops["fc1"].weight
    assert sb["per_layer"]["fc1"] == pytest.approx((x * W1.shape[0]).sum() / N)
    assert sb["per_layer"]["fc2"] == pytest.approx(result.records["lif1"].sum() * 5 / N)


def test_syops_estimate_on_a_dense_network(rng):
    program = mlp_program(rng, sizes=(12, 9, 5))
    T, N = 6, 4
    result = fabricate(program, rng, T=T, N=N, graded=("input",))
    est = syops_estimate(count_operations(result), load_profile("45nm"))
    fr2 = result.records["lif1"].mean()
    assert est["per_layer"]["fc1"]["kind"] == "MAC" and est["per_layer"]["fc1"]["sop"] is None
    assert est["per_layer"]["fc2"]["sop"] == pytest.approx(fr2 * T * 9 * 5)
    assert est["energy_pj"] == pytest.approx(4.6 * 12 * 9 + 0.9 * fr2 * T * 9 * 5)


# -- report: table, JSON, CSV, HTML, CLI -----------------------------------------------------

def test_report_json_has_per_step_energy_and_other_tools(rng, tmp_path):
    program = mlp_program(rng)
    result = fabricate(program, rng, T=5, N=4)
    rep = energy_report(result, variant="all")
    data = rep.to_dict()
    assert data["schema"].startswith("spikedeploy.energy/")
    per_step = np.array(data["snn_energy_per_step_pj"])
    assert per_step.shape == (5,) and per_step.sum() == pytest.approx(rep.total_energy_pj)
    layer = data["layers"][0]
    assert len(layer["energy_per_step_per_inference_pj"]["synaptic"]) == 5
    assert layer["neuron"]["firing_rate_per_step"] == pytest.approx(
        list(result.records["lif1"].mean(axis=(1, 2))))
    assert set(data["other_tools"]) == {"neurobench", "sinabs", "syops"}
    assert data["other_tools"]["neurobench"]["label"].startswith("NeuroBench")
    for key in ("snn_energy", "ann_energy", "ann_energy_per_pass", "memory",
                "tool_neurobench", "tool_sinabs", "tool_syops", "neuron_updates", "bias_adds"):
        assert data["definitions"][key]
    json.dumps(data)                              # plain JSON types only


def test_html_report_is_self_contained_and_has_the_plots(rng, tmp_path):
    import xml.etree.ElementTree as ET
    from html.parser import HTMLParser

    program = mlp_program(rng, sizes=(12, 9, 5))
    result = fabricate(program, rng, T=6, N=3, graded=("input",))
    rep = energy_report(result, profile="loihi", memory=True)
    paths = rep.write(tmp_path / "out")
    assert sorted(p.name for p in paths) == ["report.csv", "report.html", "report.json"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    # nothing fetched: no scripts, stylesheets, images, fonts or URLs other than the SVG namespace
    lowered = html.lower()
    for bad in ("<script", "<link", "<img", "<iframe", "@import", "url(http", "url(//"):
        assert bad not in lowered, bad
    import re
    assert re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"', "", lowered).count("http") == 0
    svgs = [m for m in html.split("<svg")[1:]]
    assert len(svgs) >= 6                         # ops, energy, firing rate, raster, per step, SNN/ANN
    for s in svgs:
        ET.fromstring("<svg" + s.split("</svg>")[0] + "</svg>")   # each plot is valid XML
    for title in ("Operations per layer", "Energy per layer", "Firing rate per layer over time",
                  "Spike raster of sample 0", "SNN vs ANN energy", "Energy per time step"):
        assert title in html, title
    for text in ("fc1 -&gt; lif1", "Davies", "NeuroBench", "sinabs", "fr x T x FLOPs",
                 "memory-access term on"):
        assert text in html, text

    class Checker(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            if tag not in ("meta", "br", "rect", "circle", "line", "polyline"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if tag in ("rect", "circle", "line", "polyline"):
                return
            assert self.stack and self.stack.pop() == tag, tag

    checker = Checker()
    checker.feed(html)
    assert checker.stack == []                    # tags balanced


def test_cli_energy_writes_all_reports_with_options(rng, tmp_path, capsys):
    from spikedeploy.deploy.cli import main
    graph_path = tmp_path / "model.nir"
    nir.write(graph_path, mlp_graph(rng, sizes=(8, 6, 3)))
    x = tmp_path / "x.npy"
    np.save(x, (rng.random((7, 4, 8)) < 0.4).astype(float))
    out = tmp_path / "out"
    code = main(["energy", str(graph_path), "--input", str(x), "--out", str(out),
                 "--profile", "loihi", "--variant", "all", "--memory"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "profile loihi" in printed and "all synapses" in printed and "NeuroBench" in printed
    assert sorted(os.listdir(out)) == ["report.csv", "report.html", "report.json",
                                       "resources.csv", "resources.html"]
    data = json.loads((out / "report.json").read_text())
    assert data["variant"] == "all" and data["memory_term"] and data["profile"]["name"] == "loihi"
    # a bad profile fails before anything runs or is written
    bad = tmp_path / "bad.toml"
    bad.write_text("[energy_pj]\nac = 1\n")
    out2 = tmp_path / "out2"
    code = main(["energy", str(graph_path), "--input", str(x), "--out", str(out2),
                 "--profile", str(bad)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("spikedeploy: error:") and "'mac'" in err
    assert len(err.splitlines()) == 1 and not out2.exists()


def test_fixed_counts_use_the_quantisation_the_run_carries(rng):
    """The FixedProgram a fixed-point run used travels in its result (SimResult.fixed); the
    counts of another run carrying it (as a Lava run does) equal the reference's, and a
    fixed-point result without one is refused instead of being re-quantised."""
    from spikedeploy.ir import fixed_point as fxp
    program = lower(mlp_graph(rng, sizes=(10, 8, 4)))
    x = np.round(rng.uniform(0, 1.5, (6, 3, 10)) * 8) / 8          # graded, exact at scale 8
    fixed = fxp.quantise(program, input_scale=8.0)
    full = simulate(program, x, "fixed", fixed=fixed)
    assert full.fixed is fixed
    carried = SimResult(program, dict(full.records), "lava", "fixed", fixed=fixed)
    a, b = count_operations(full), count_operations(carried)
    for name, c in a.synaptic.items():
        assert c.kind == b.synaptic[name].kind
        np.testing.assert_array_equal(c.value_ops, b.synaptic[name].value_ops)
    # value-weighted ops in float units: input value x fan-out (8 outputs)
    np.testing.assert_allclose(a.synaptic["fc1"].value_ops.sum(), x.sum() * 8)
    with pytest.raises(SpikedeployError, match="carries no quantisation"):
        count_operations(SimResult(program, dict(full.records), "lava", "fixed"))


def test_report_records_dt_and_threshold_scale():
    import nir as _nir
    from spikedeploy.hw_sim.reference import simulate as _simulate
    from spikedeploy.ir.passes import scale_thresholds
    from spikedeploy.ir.lowering import lower as _lower
    from spikedeploy.energy import energy_report as _energy_report
    rng = np.random.default_rng(3)
    tau = np.full(4, 1e-3)
    graph = _nir.NIRGraph(nodes={
        "input": _nir.Input(input_type=np.array([3])),
        "fc": _nir.Linear(weight=rng.normal(0, 1, (4, 3))),
        "lif": _nir.LIF(tau=tau, r=tau / 2e-4, v_leak=np.zeros(4), v_threshold=np.ones(4),
                        v_reset=np.zeros(4)),
        "output": _nir.Output(output_type=np.array([4]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata={})
    program = scale_thresholds(_lower(graph, dt=2e-4), 0.9)
    report = _energy_report(_simulate(program, (rng.random((5, 2, 3)) < 0.5).astype(float)))
    d = report.to_dict()
    assert d["dt"] == 2e-4 and d["threshold_scale"] == 0.9
    assert "dt=0.0002 s" in report.to_table() and "thresholds x 0.9" in report.to_table()
