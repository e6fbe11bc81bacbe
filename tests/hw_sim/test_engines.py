"""The reference simulator's engines (numpy, torch), chunked and step-by-step runs, record
modes and float32: the same spikes, and the same integers in fixed point, on random graphs
that hold every op type and neuron variant (Lava's side: tests marked lava, via run_both)."""
import nir
import numpy as np
import pytest

from spikedeploy.deploy.cli import main
from spikedeploy.errors import SpikedeployError
from spikedeploy.hw_sim import reference
from spikedeploy.hw_sim.reference import EngineChoice, binary_ops, choose_engine, simulate
from spikedeploy.hw_sim.reference_numpy import FIXED_RUNNERS, FLOAT_RUNNERS
from spikedeploy.hw_sim.result import kept_ops
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.ir.lowering import lower
from spikedeploy.metadata import (FIRE_AT_THRESHOLD, RESET_DELAY, RESET_IN_STEP, RESET_MODE,
                                  SPIKE_VALUE, SPIKES_PER_STEP, TSM_GAIN, V_INIT)

from helpers import DT, assert_engines_agree, chain, random_cuba_lif, random_lif, spikes


def _g(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": DT},
                        type_check=False)


def recurrent_graph(rng, n=6):
    """Two inputs summed, RLeaky and RSynaptic cycles, a skip path, a Delay, a self-loop."""
    nodes = {
        "in_a": nir.Input(input_type=np.array([n])), "in_b": nir.Input(input_type=np.array([3])),
        "fc1": nir.Affine(weight=rng.normal(0, 1.0, (8, n)), bias=rng.normal(0, 0.1, 8)),
        "fc_b": nir.Linear(weight=rng.normal(0, 1.0, (8, 3))), "lif1": random_lif(rng, (8,)),
        "fc2": nir.Linear(weight=rng.normal(0, 1.0, (8, 8))),
        "rec2": nir.Affine(weight=rng.normal(0, 0.5, (8, 8)), bias=rng.normal(0, 0.1, 8)),
        "lif2": random_lif(rng, (8,)), "skip": nir.Linear(weight=rng.normal(0, 1.0, (8, 8))),
        "lif3": random_cuba_lif(rng, (8,)), "rec3": nir.Linear(weight=rng.normal(0, 0.5, (8, 8))),
        "delay": nir.Delay(delay=rng.integers(0, 4, 8) * DT),
        "fc4": nir.Linear(weight=rng.normal(0, 1.0, (4, 8))), "lif4": random_lif(rng, (4,)),
        "out_main": nir.Output(output_type=None), "out_l1": nir.Output(output_type=None)}
    edges = [("in_a", "fc1"), ("fc1", "lif1"), ("in_b", "fc_b"), ("fc_b", "lif1"),
             ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "rec2"), ("rec2", "lif2"),
             ("lif2", "skip"), ("skip", "lif3"), ("lif3", "rec3"), ("rec3", "lif3"),
             ("lif3", "delay"), ("delay", "fc4"), ("fc4", "lif4"), ("lif4", "lif4"),
             ("lif4", "out_main"), ("lif1", "out_l1")]
    return _g(nodes, edges), {"in_a": spikes(rng, (12, 5, n)), "in_b": spikes(rng, (12, 5, 3))}


def conv_graph(rng):
    """Every convolution path: asymmetric 'same' padding, stride, dilation, groups, sum and
    average pooling (depthwise taps), a conv large enough for torch's kernel, IF, CubaLIF,
    a flatten and an LI readout."""
    def lif_like(shape):
        return random_lif(rng, shape, threshold=(0.4, 0.8))
    g = chain({
        "input": nir.Input(input_type=np.array([2, 12, 12])),
        "conv1": nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.8, (4, 2, 2, 3)), stride=1,
                            padding="same", dilation=1, groups=1, bias=rng.normal(0, 0.1, 4)),
        "cuba": random_cuba_lif(rng, (4, 12, 12), v_leak=0.05, v_reset=-0.1),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                             padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.8, (6, 2, 3, 3)), stride=1,
                            padding=1, dilation=(2, 1), groups=2, bias=np.zeros(6)),
        "lif2": lif_like((6, 4, 6)),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 2]),
                             padding=np.array([0, 0])),
        "conv3": nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.8, (40, 6, 3, 3)), stride=2,
                            padding=1, dilation=1, groups=1, bias=rng.normal(0, 0.1, 40)),
        "if": nir.IF(r=np.ones((40, 2, 2)) / DT, v_threshold=rng.uniform(0.8, 1.2, (40, 2, 2)),
                     v_reset=np.zeros((40, 2, 2))),
        "flat": nir.Flatten(input_type={"input": np.array([40, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.5, (5, 160)), bias=rng.normal(0, 0.1, 5)),
        "li": nir.LI(tau=np.full(5, 5 * DT), r=np.ones(5), v_leak=np.zeros(5)),
        "output": nir.Output(output_type=None)})
    return g, spikes(rng, (10, 7, 2, 12, 12))


def variants_graph(rng, steps=10):
    """Neuron variants held in metadata: subtract and delayed resets, several spikes per step,
    fire at threshold, graded spikes, TSM gains, initial voltages; Scale, Threshold, I."""
    def lif(meta):
        node = random_lif(rng, (6,), threshold=(0.3, 0.6))
        node.metadata = meta
        return node
    nodes = {
        "input": nir.Input(input_type=np.array([5])),
        "fc": nir.Affine(weight=rng.normal(0, 1.0, (6, 5)), bias=rng.normal(0, 0.1, 6)),
        "sub": lif({RESET_MODE: "subtract", RESET_DELAY: 1, RESET_IN_STEP: 1,
                    V_INIT: rng.uniform(0, 0.3, 6), TSM_GAIN: rng.uniform(0.5, 1.5, steps)}),
        "fc_m": nir.Linear(weight=rng.normal(0, 1.5, (6, 6))),
        "multi": lif({SPIKES_PER_STEP: "multi", FIRE_AT_THRESHOLD: 1, RESET_MODE: "subtract"}),
        "fc_g": nir.Linear(weight=rng.normal(0, 1.0, (6, 6))),
        "graded": lif({SPIKE_VALUE: rng.uniform(0.5, 2.0, 6), RESET_DELAY: 1,
                       RESET_IN_STEP: 0}),
        "scale": nir.Scale(scale=rng.uniform(-2, 2, 6)),
        "thr": nir.Threshold(threshold=rng.uniform(-0.2, 0.5, 6)),
        "fc_i": nir.Linear(weight=rng.normal(0, 1.0, (3, 6))),
        "i": nir.I(r=np.ones(3) / DT),
        "out": nir.Output(output_type=None), "out_i": nir.Output(output_type=None)}
    edges = [("input", "fc"), ("fc", "sub"), ("sub", "fc_m"), ("fc_m", "multi"),
             ("multi", "fc_g"), ("fc_g", "graded"), ("graded", "scale"), ("scale", "thr"),
             ("thr", "out"), ("graded", "fc_i"), ("fc_i", "i"), ("i", "out_i")]
    return _g(nodes, edges), rng.uniform(0, 1.5, (steps, 6, 5))


GRAPHS = {"recurrent": recurrent_graph, "conv": conv_graph, "variants": variants_graph}


@pytest.mark.parametrize("name", GRAPHS)
def test_torch_engine_equals_numpy_float_and_fixed(rng, name):
    graph, x = GRAPHS[name](rng)
    program = lower(graph)
    base = simulate(program, x, engine="numpy")
    fired = {n: int(np.count_nonzero(base.records[n])) for n in binary_ops(program)}
    assert min(fired.values()) > 0, f"too few spikes to compare: {fired}"
    assert base.info["engine"] == "numpy"
    other = assert_engines_agree(program, x, base)
    assert other.info == {"engine": "torch", "device": "cpu", "dtype": "float64"}
    scale = 8.0 if name == "variants" else 1.0          # graded inputs, exact at scale 8
    x_fixed = np.round(x * scale) / scale if name == "variants" else x
    fixed = fxp.quantise(program, input_scale=scale)
    base_fx = simulate(program, x_fixed, "fixed", fixed, engine="numpy")
    assert_engines_agree(program, x_fixed, base_fx, "fixed", fixed)


@pytest.mark.parametrize("name", GRAPHS)
def test_chunks_of_steps_equal_step_by_step(rng, name, monkeypatch):
    """Small batches run several steps per synaptic product (none with recurrent edges)."""
    graph, x = GRAPHS[name](rng)
    program = lower(graph)
    chunked = simulate(program, x, engine="numpy")
    monkeypatch.setattr(reference, "CHUNK_ROWS", 1)
    for engine in ("numpy", "torch"):
        assert_engines_agree(program, x, chunked, engine=engine)
    assert reference.chunk_steps(program, 5, 12) == 1
    monkeypatch.setattr(reference, "CHUNK_ROWS", 256)
    assert reference.chunk_steps(program, 5, 12) == (1 if name == "recurrent" else 12)
    assert reference.chunk_steps(program, 100, 12) == (1 if name == "recurrent" else 2)


def test_float32_measures_against_float64(rng):
    graph, x = conv_graph(rng)
    program = lower(graph)
    exact = simulate(program, x, engine="numpy")
    for engine in ("numpy", "torch"):
        run = simulate(program, x, engine=engine, dtype="float32")
        assert run.info["dtype"] == "float32"
        assert run.records["li"].dtype == np.float32
        for name in binary_ops(program):     # random inputs: no voltage within f32 rounding
            assert np.array_equal(run.records[name], exact.records[name]), name
        np.testing.assert_allclose(run.records["li"], exact.records["li"], rtol=1e-4, atol=1e-4)
    with pytest.raises(SpikedeployError, match="float precision"):
        simulate(program, x, "fixed", dtype="float32")


def test_float32_can_split_a_threshold_tie():
    """v is above the threshold in float64 but rounds onto it in float32: the one kind of
    disagreement float32 allows (verify measures it)."""
    g = chain({"input": nir.Input(input_type=np.array([1])),
               "fc": nir.Linear(weight=np.array([[1.0]])),
               "lif": nir.LIF(tau=np.array([DT]), r=np.array([1.0]), v_leak=np.zeros(1),
                              v_threshold=np.array([0.1]), v_reset=np.zeros(1)),
               "output": nir.Output(output_type=None)})
    x = np.array([0.1 + 1e-12]).reshape(1, 1, 1)       # v = a: no memory (tau = dt)
    p = lower(g)
    f64 = simulate(p, x).output()
    assert f64.dtype == np.int8 and f64.sum() == 1
    for engine in ("numpy", "torch"):
        assert simulate(p, x, dtype="float32", engine=engine).output().sum() == 0


def test_verify_reports_float32_against_float64(trained, tmp_path):
    import json
    out = tmp_path / "v.json"
    code = main(["verify", str(trained["nir"]), "--samples", "20", "--no-lava", "--dtype", "float32",
                 "--engine", "torch", "--json", str(out), "-q"])
    report = json.loads(out.read_text())
    comparison = report["comparisons"]["reference vs reference float32 (spikes)"]
    assert code == 0 and report["passed"] and comparison["disagreement"] == 0.0
    assert report["engine"] == {"engine": "torch", "device": "cpu", "dtype": "float64"}


def test_verify_float32_counts_spikes_not_voltages(rng, tmp_path):
    """A voltage readout (LI) differs in float32 everywhere; only spikes are measured."""
    import json

    from spikedeploy.export import write_nir
    graph = chain({"input": nir.Input(input_type=np.array([12])),
                   "fc1": nir.Affine(weight=rng.normal(0, 1.0, (16, 12)), bias=np.zeros(16)),
                   "lif": random_lif(rng, (16,), threshold=(0.4, 0.8)),
                   "fc2": nir.Affine(weight=rng.normal(0, 1.0, (4, 16)), bias=np.zeros(4)),
                   "li": nir.LI(tau=np.full(4, 5 * DT), r=np.ones(4), v_leak=np.zeros(4)),
                   "output": nir.Output(output_type=np.array([4]))})
    x = spikes(rng, (20, 8, 12))
    write_nir(graph, tmp_path / "g.nir")
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "v.json"
    code = main(["verify", str(tmp_path / "g.nir"), "--input", str(tmp_path / "x.npy"),
                 "--no-lava", "--dtype", "float32", "--json", str(out), "-q"])
    report = json.loads(out.read_text())
    comparison = report["comparisons"]["reference vs reference float32 (spikes)"]
    assert code == 0, report["failures"]
    assert [layer["layer"] for layer in comparison["layers"]] == ["lif"]
    program = lower(graph)
    voltages = simulate(program, x, dtype="float32").records["li"]
    assert not np.array_equal(voltages, simulate(program, x).records["li"])


def test_record_modes_and_compact_spikes(rng, monkeypatch):
    graph, x = conv_graph(rng)
    program = lower(graph)
    full = simulate(program, x, record="all")
    layers = simulate(program, x, record="layers")
    assert set(layers.records) == set(kept_ops(program, "layers"))
    assert "conv1" in full.records and "conv1" not in layers.records
    assert {"input", "cuba", "lif2", "if", "li", "output"} <= set(layers.records)
    for name in ("cuba", "lif2", "if"):
        assert layers.records[name].dtype == np.int8
        assert np.array_equal(layers.records[name], full.records[name])
    assert layers.records["li"].dtype == np.float64          # voltages stay float
    assert list(simulate(program, x, record="outputs").records) == ["output"]
    monkeypatch.setattr(reference, "RECORD_RAM", 1000)       # spill to an unlinked file
    spilled = simulate(program, x, record="all")
    assert isinstance(spilled.records["conv1"], np.memmap)
    for name, rec in full.records.items():
        assert np.array_equal(np.asarray(spilled.records[name]), rec), name
    with pytest.raises(SpikedeployError, match="record mode"):
        simulate(program, x, record="some")


def test_engine_choice(rng):
    """auto: torch where its kernels win and the run repays its import, numpy otherwise."""
    dense = lower(recurrent_graph(rng)[0])
    big_conv = lower(chain({"input": nir.Input(input_type=np.array([2, 34, 34])),
                            "conv": nir.Conv2d(input_shape=None, weight=np.ones((8, 2, 3, 3)),
                                               stride=1, padding=1, dilation=1, groups=1,
                                               bias=np.zeros(8)),
                            "output": nir.Output(output_type=None)}))
    huge = reference.TORCH_WORK           # sample-steps: far past the threshold for any net
    assert choose_engine("auto", dense, huge // 1000) == "numpy"      # dense float64
    assert choose_engine("auto", dense, huge) == "torch"              # ... until very large
    assert choose_engine("auto", dense, huge, "float32") == "torch"
    assert choose_engine("auto", dense, 10, "float32") == "numpy"     # too small to repay
    assert choose_engine("auto", dense, huge // 10, "float32") == "torch"
    assert choose_engine("auto", big_conv, huge) == "torch"
    assert choose_engine("auto", big_conv, 1) == "numpy"
    assert choose_engine("auto", dense, 1, device="cuda") == "torch"
    assert choose_engine("numpy", big_conv, huge) == "numpy"
    with pytest.raises(SpikedeployError, match="unknown engine"):
        choose_engine("jax", dense, 1)


def test_torch_tables_cover_the_numpy_tables():
    from spikedeploy.hw_sim import reference_torch
    assert set(reference_torch.FLOAT_RUNNERS) == set(FLOAT_RUNNERS)
    assert set(reference_torch.FIXED_RUNNERS) == set(FIXED_RUNNERS)


def test_devices_the_machine_lacks_are_one_line(trained, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal cannot happen")
    code = main(["simulate", str(trained["nir"]), "--samples", "3", "--device", "cuda", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "CUDA" in err[0]
    code = main(["simulate", str(trained["nir"]), "--samples", "3", "--engine", "numpy",
                 "--device", "cuda", "-q"])
    assert code == 2 and "needs --engine torch" in capsys.readouterr().err
    code = main(["verify", str(trained["nir"]), "--samples", "3", "--precision", "fixed",
                 "--dtype", "float32", "--no-lava", "-q"])
    assert code == 2 and "float precision" in capsys.readouterr().err
    for device in ("gpu", "CUDA", "cuda:x", ""):
        code = main(["simulate", str(trained["nir"]), "--samples", "3", "--device", device, "-q"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "unknown device" in err[0], (device, err)
    code = main(["simulate", str(trained["nir"]), "--samples", "3", "--device", "cuda:7",
                 "--engine", "torch", "-q"])
    assert code == 2 and "CUDA device(s)" in capsys.readouterr().err
    code = main(["simulate", str(trained["nir"]), "--samples", "3", "--backend", "lava",
                 "--dtype", "float32", "-q"])       # refused before Lava starts
    assert code == 2 and "--backend lava does not use it" in capsys.readouterr().err


def test_engine_choice_resolves_once_for_the_whole_batch():
    rng = np.random.default_rng(0)
    graph, _ = conv_graph(rng)
    program = lower(graph)
    small = EngineChoice(dtype="float32").resolved(program, 10, 2)
    large = EngineChoice(dtype="float32").resolved(program, 100, 100_000)
    assert small.engine == "numpy" and large.engine == "torch"
    assert EngineChoice("numpy", "float32").resolved(program, 100, 100_000).engine == "numpy"
