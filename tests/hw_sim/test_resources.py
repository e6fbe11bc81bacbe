"""Per-core resource map (hw_sim.loihi2.resources): core counts against hand computations.

Every expected value is computed here from the published formulas, written out
in this file (nengo-loihi 1.1.0, nengo_loihi/block.py and
builder/split_blocks.py), never with the module's own helpers:

* per core (Loihi 1): 1024 compartments, 4096 input axons, 4096 output axons,
  16384 * 64 synapse bits; 128 cores per chip;
* ``SynapseConfig.bits_per_axon(n)``: the axon's n weights in blocks of 64
  (n_synapses = 63, plus one), each block 8 bits per weight plus 4 + 6 header
  bits, rounded up to whole 64-bit words;
* ``split_block``: n_split = max(ceil(usage / limit)) over the four ceilings,
  chunks of ceil(neurons / n_split) neurons.
"""
import json
import math
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest

from spikedeploy.errors import SpikedeployError
from spikedeploy.hw_sim.loihi2.resource_formats import format_table, to_csv
from spikedeploy.hw_sim.loihi2.resources import load_chip, resource_map
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir.lowering import lower

from helpers import DT, lif_node

COMPARTMENTS, IN_AXONS, OUT_AXONS, SYNAPSE_BITS = 1024, 4096, 4096, 16384 * 64
CORES_PER_CHIP = 128


def hand_bits_per_axon(n, weight_bits=8, delay_bits=0):
    """nengo_loihi/block.py SynapseConfig.bits_per_axon, compression 3, n_synapses 63."""
    bits = 0
    for i in range(0, n, 64):
        k = min(n - i, 64)
        bits += 64 * math.ceil((k * (weight_bits + delay_bits) + 4 + 6) / 64)
    return bits


def hand_split(neurons, in_axons, out_axons, synapse_bits):
    """split_block: (cores, neurons per core)."""
    n_split = max(math.ceil(neurons / COMPARTMENTS), math.ceil(in_axons / IN_AXONS),
                  math.ceil(out_axons / OUT_AXONS), math.ceil(synapse_bits / SYNAPSE_BITS))
    chunk = math.ceil(neurons / n_split)
    return math.ceil(neurons / chunk), chunk


def lif(shape):
    return lif_node(np.full(shape, 0.9), np.full(shape, 1.0))


def graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": DT},
                        type_check=False)


def one_layer(weight, name="lif"):
    """input -> Linear(weight) -> LIF -> output."""
    n_out, n_in = weight.shape
    return lower(graph({"input": nir.Input(input_type=np.array([n_in])),
                        "fc": nir.Linear(weight=weight), name: lif(n_out),
                        "out": nir.Output(output_type=np.array([n_out]))},
                       [("input", "fc"), ("fc", name), (name, "out")]), dt=DT)


def sparse_fan_in(n_in, n_out):
    """Each input feeds exactly one neuron (input i -> neuron i % n_out)."""
    w = np.zeros((n_out, n_in))
    w[np.arange(n_in) % n_out, np.arange(n_in)] = 1.0
    return w


# --- chip profiles --------------------------------------------------------------------------

def test_profiles_carry_every_number_with_a_source():
    l1, l2 = load_chip("loihi1"), load_chip("Loihi-2")
    assert (l1.compartments, l1.input_axons, l1.output_axons, l1.synapse_memory_bits,
            l1.cores_per_chip, l1.compartment_profiles) == (1024, 4096, 4096, 16384 * 64, 128, 32)
    assert (l2.compartments, l2.synapse_memory_bits, l2.cores_per_chip) == (8192, 1048576, 128)
    assert not l1.estimate and l2.estimate and "not public" in l2.note
    for chip in (l1, l2):
        assert set(chip.sources) == {"compartments", "input_axons", "output_axons",
                                     "synapse_memory_bits", "cores_per_chip",
                                     "compartment_profiles", "weight_bits", "tag_bits",
                                     "synapses_per_block", "block_header_bits",
                                     "memory_word_bits"}
        assert all(isinstance(s, str) and s for s in chip.sources.values())
    assert "nengo_loihi/block.py" in l1.sources["synapse_memory_bits"]


def test_unknown_chip_and_bad_profile_are_one_line_errors(tmp_path):
    with pytest.raises(SpikedeployError) as exc:
        load_chip("loihi3")
    assert "loihi3" in str(exc.value) and "\n" not in str(exc.value)
    bad = tmp_path / "bad.toml"
    text = Path(load_chip("loihi1").path).read_text()
    bad.write_text(text.replace('compartments = "nengo', 'nothing = "nengo'))
    with pytest.raises(SpikedeployError, match="no source for compartments"):
        load_chip(bad)
    with pytest.raises(SpikedeployError, match="not found"):
        load_chip(tmp_path / "missing.toml")


# --- each ceiling binding in turn --------------------------------------------------------------

def test_compartments_bind(rng):
    """2500 neurons fed by 10 inputs: 3 cores of 834 neurons."""
    rmap = resource_map(one_layer(rng.normal(size=(2500, 10))), "loihi1")
    layer = rmap.layer("lif")
    bits = 10 * hand_bits_per_axon(2500)                 # 10 axons, 2500 weights each
    assert bits == 10 * (39 * 576 + 64) == 225280
    cores, chunk = hand_split(2500, 10, 0, bits)
    assert (cores, chunk) == (3, 834)
    assert (layer.cores, layer.neurons_per_core, layer.limiting) == (cores, chunk, "compartments")
    assert (layer.input_axons, layer.output_axons, layer.synapse_bits) == (10, 0, bits)
    assert layer.synapses_nonzero == layer.synapses_total == 25000 and layer.weight_bits == 8
    assert layer.max_core == {"compartments": 834, "input_axons": 10, "output_axons": 0,
                              "synapse_memory": 10 * hand_bits_per_axon(834)}
    assert rmap.totals["cores"] == 3 and rmap.totals["chips"] == 1 and rmap.totals["fits"]


def test_input_axons_bind():
    """100 neurons fed by 10000 inputs, one synapse each: 3 cores of 34 (3400 axons each)."""
    rmap = resource_map(one_layer(sparse_fan_in(10000, 100)), "loihi1")
    layer = rmap.layer("lif")
    bits = 10000 * hand_bits_per_axon(1)                 # 64 bits per axon
    assert bits == 640000 < SYNAPSE_BITS
    cores, chunk = hand_split(100, 10000, 0, bits)
    assert (cores, chunk) == (3, 34)
    assert (layer.cores, layer.limiting, layer.fits) == (cores, "input_axons", True)
    assert layer.max_core["input_axons"] == 34 * 100     # inputs j with j % 100 in the chunk
    assert (layer.synapses_nonzero, layer.synapses_total) == (10000, 1000000)
    assert rmap.totals["cores"] == 3


def test_output_axons_bind(rng):
    """1000 neurons feeding 5 layers: 5000 output axons, 2 cores; each target 1 core."""
    nodes = {"input": nir.Input(input_type=np.array([10])),
             "fc0": nir.Linear(weight=rng.normal(size=(1000, 10))), "src": lif(1000)}
    edges = [("input", "fc0"), ("fc0", "src")]
    for k in range(5):
        nodes.update({f"fc{k + 1}": nir.Linear(weight=rng.normal(size=(10, 1000))),
                      f"t{k}": lif(10), f"out{k}": nir.Output(output_type=np.array([10]))})
        edges += [("src", f"fc{k + 1}"), (f"fc{k + 1}", f"t{k}"), (f"t{k}", f"out{k}")]
    rmap = resource_map(lower(graph(nodes, edges), dt=DT), "loihi1")
    src = rmap.layer("src")
    src_bits = 10 * hand_bits_per_axon(1000)
    cores, chunk = hand_split(1000, 10, 1000 * 5, src_bits)
    assert (cores, chunk) == (2, 500)
    assert (src.cores, src.limiting, src.output_axons) == (cores, "output_axons", 5000)
    assert src.max_core["output_axons"] == 500 * 5       # 5 targets of one core each
    target_bits = 1000 * hand_bits_per_axon(10)          # 128 bits per axon
    for k in range(5):
        t = rmap.layer(f"t{k}")
        assert hand_split(10, 1000, 0, target_bits)[0] == t.cores == 1
        assert t.synapse_bits == target_bits and t.input_axons == 1000
    assert rmap.totals["cores"] == 2 + 5 and rmap.totals["chips"] == 1


def test_synapse_memory_binds(rng):
    """Dense 1000 x 1000: 9,024,000 bits -> 9 cores of 112 neurons (1,024,000 bits each)."""
    rmap = resource_map(one_layer(rng.normal(size=(1000, 1000))), "loihi1")
    layer = rmap.layer("lif")
    bits = 1000 * hand_bits_per_axon(1000)
    assert hand_bits_per_axon(1000) == 15 * 576 + 384 == 9024
    cores, chunk = hand_split(1000, 1000, 0, bits)
    assert (cores, chunk) == (9, 112)
    assert (layer.cores, layer.limiting, layer.synapse_bits) == (9, "synapse_memory", bits)
    assert layer.max_core["synapse_memory"] == 1000 * hand_bits_per_axon(112) == 1024000
    assert rmap.totals["cores"] == 9


def test_split_target_multiplies_the_source_output_axons(rng):
    """lif0 (1000) -> dense -> lif1 (1000, 9 cores): each lif0 neuron needs an axon per lif1
    core, 9000 > 4096, so lif0 takes the fewest equal chunks with chunk x 9 <= 4096: 3 of 334
    (split_block's own formula says 1 core, which nengo-loihi's validate_block rejects)."""
    nodes = {"input": nir.Input(input_type=np.array([10])),
             "fc0": nir.Linear(weight=rng.normal(size=(1000, 10))), "lif0": lif(1000),
             "fc1": nir.Linear(weight=rng.normal(size=(1000, 1000))), "lif1": lif(1000),
             "out": nir.Output(output_type=np.array([1000]))}
    edges = [("input", "fc0"), ("fc0", "lif0"), ("lif0", "fc1"), ("fc1", "lif1"),
             ("lif1", "out")]
    rmap = resource_map(lower(graph(nodes, edges), dt=DT), "loihi1")
    lif0, lif1 = rmap.layer("lif0"), rmap.layer("lif1")
    assert lif1.cores == 9
    assert hand_split(1000, 10, 1000, 10 * hand_bits_per_axon(1000))[0] == lif0.formula_cores == 1
    chunks = next(c for c in range(1, 1001) if math.ceil(1000 / c) * 9 <= OUT_AXONS)
    assert chunks == 3
    assert (lif0.cores, lif0.limiting, lif0.max_core["output_axons"]) == (3, "output_axons",
                                                                           334 * 9)
    assert rmap.totals["cores"] == 12


def test_infeasible_layer_is_reported(rng):
    """Dense 10000 -> 100: every neuron needs 10000 input axons > 4096 on any split."""
    rmap = resource_map(one_layer(rng.normal(size=(100, 10000))), "loihi1")
    layer = rmap.layer("lif")
    bits = 10000 * hand_bits_per_axon(100)
    assert hand_split(100, 10000, 0, bits)[0] == layer.formula_cores == 9
    assert not layer.fits and layer.limiting == "input_axons" and "input_axons" in layer.problem
    assert not rmap.totals["fits"] and "DOES NOT FIT" in format_table(rmap)


def test_totals_and_chips():
    """129 * 1024 neurons: 129 cores = 2 Loihi 1 chips; 17 cores (8192 each) on Loihi 2."""
    n = 129 * COMPARTMENTS
    program = one_layer(np.ones((n, 1)))
    r1, r2 = resource_map(program, "loihi1"), resource_map(program, "loihi2")
    assert r1.totals["cores"] == 129 and r1.totals["chips"] == math.ceil(129 / CORES_PER_CHIP) == 2
    assert r2.totals["cores"] == math.ceil(n / 8192) == 17 and r2.totals["chips"] == 1
    assert r2.totals["estimate"] and r1.layer("lif").limiting == "compartments"


def test_conv_layer():
    """Conv2d 2 -> 16 channels, 3x3, padding 1, 32x32: 16384 neurons, 16 cores of one channel."""
    w = np.ones((16, 2, 3, 3))
    program = lower(graph({"input": nir.Input(input_type=np.array([2, 32, 32])),
                           "conv": nir.Conv2d(input_shape=np.array([32, 32]), weight=w,
                                              stride=1, padding=1, dilation=1, groups=1,
                                              bias=np.zeros(16)),
                           "lif": lif((16, 32, 32)),
                           "out": nir.Output(output_type=np.array([16, 32, 32]))},
                          [("input", "conv"), ("conv", "lif"), ("lif", "out")]), dt=DT)
    layer = resource_map(program, "loihi1").layer("lif")
    # input pixel (y, x) reaches the outputs within one row/column: 2 at a border, else 3
    reach = [2] + [3] * 30 + [2]
    per_pixel = [ry * rx for ry in reach for rx in reach]
    bits = 2 * sum(hand_bits_per_axon(16 * r) for r in per_pixel)       # all 16 channels
    chunk_bits = 2 * sum(hand_bits_per_axon(r) for r in per_pixel)      # one output channel
    assert (bits, chunk_bits) == (2638848, 246272)
    cores, chunk = hand_split(16384, 2048, 0, bits)
    assert (cores, chunk) == (16, 1024)
    assert (layer.cores, layer.limiting, layer.input_axons) == (16, "compartments", 2048)
    assert layer.synapse_bits == bits and layer.max_core["synapse_memory"] == chunk_bits
    assert layer.synapses_nonzero == 16 * 2 * sum(reach) ** 2 == 282752


# --- measured activity ---------------------------------------------------------------------------

TINY_CHIP = """
name = "tiny"
description = "3 compartments per core"
[limits]
compartments = 3
input_axons = 100
output_axons = 100
synapse_memory_bits = 100000
cores_per_chip = 4
compartment_profiles = 32
[synapse_format]
weight_bits = 8
tag_bits = 0
synapses_per_block = 64
block_header_bits = 10
memory_word_bits = 64
[sources]
compartments = "test"
input_axons = "test"
output_axons = "test"
synapse_memory_bits = "test"
cores_per_chip = "test"
compartment_profiles = "test"
weight_bits = "test"
tag_bits = "test"
synapses_per_block = "test"
block_header_bits = "test"
memory_word_bits = "test"
"""


def tiny_program():
    """input (4) -> W1 (6x4, input 3 only into neurons 3-5) -> lif1 (6) -> W2 (6x6) -> lif2."""
    w1 = np.ones((6, 4))
    w1[0:3, 3] = 0.0
    return lower(graph({"input": nir.Input(input_type=np.array([4])),
                        "fc1": nir.Linear(weight=w1), "lif1": lif(6),
                        "fc2": nir.Linear(weight=np.ones((6, 6))), "lif2": lif(6),
                        "out": nir.Output(output_type=np.array([6]))},
                       [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
                        ("lif2", "out")]), dt=DT)


def test_activity_on_a_hand_made_example(tmp_path):
    chip = tmp_path / "tiny.toml"
    chip.write_text(TINY_CHIP)
    records = {   # (T=2, N=1, size)
        "input": np.array([[[1, 0, 1, 1]], [[1, 1, 0, 0]]], float),
        "lif1": np.array([[[1, 0, 0, 1, 1, 0]], [[0, 0, 0, 1, 0, 0]]], float),
        "lif2": np.array([[[1, 0, 0, 0, 0, 0]], [[0, 1, 0, 0, 0, 1]]], float)}
    rmap = resource_map(tiny_program(), chip, records=records)
    l1, l2 = rmap.layer("lif1"), rmap.layer("lif2")
    assert (l1.cores, l2.cores) == (2, 2) and rmap.totals["chips"] == 1
    assert l1.max_core["input_axons"] == 4                  # core B reads inputs 0-3, core A 0-2
    # lif1 events per step: neurons [0.5, 0, 0, 1, 0.5, 0]: core A 0.5, core B 1.5
    assert l1.spikes_per_step == 2.0
    assert l1.spikes_per_core_per_step == 1.0 and l1.busiest_core_spikes_per_step == 1.5
    # each lif1 event goes to both lif2 cores (dense): 2.0 x 2
    assert l1.traffic_per_step == 4.0
    # input events per step [1, .5, .5, .5]; core A: 3 each from inputs 0-2 -> 6.0,
    # core B: 3 each from inputs 0-3 -> 7.5
    assert l1.busiest_core_synops_per_step == 7.5
    # lif2: cores [1.0, 0.5] events per step; each core 3 synapses per lif1 event: 2.0 x 3
    assert (l2.spikes_per_step, l2.spikes_per_core_per_step) == (1.5, 0.75)
    assert l2.busiest_core_spikes_per_step == 1.0 and l2.traffic_per_step == 0.0
    assert l2.busiest_core_synops_per_step == 6.0
    assert rmap.totals["spikes_per_step"] == 3.5 and rmap.totals["traffic_per_step"] == 4.0
    assert rmap.totals["busiest_core_synops_per_step"] == 7.5
    with pytest.raises(SpikedeployError, match="no record of 'lif2'"):
        resource_map(tiny_program(), chip, records={k: records[k] for k in ("input", "lif1")})


def test_activity_from_the_reference_simulator(rng):
    program = tiny_program()
    result = simulate(program, (rng.random((20, 3, 4)) < 0.5).astype(float))
    rmap = resource_map(program, "loihi1", records=result.records)
    for name in ("lif1", "lif2"):
        expected = (result.records[name] != 0).sum() / (20 * 3)
        assert rmap.layer(name).spikes_per_step == pytest.approx(expected)
    assert rmap.layer("lif1").traffic_per_step == pytest.approx(
        rmap.layer("lif1").spikes_per_step)                 # lif2 is one core on Loihi 1


def test_table_csv_and_json(rng, tmp_path):
    chip = tmp_path / "tiny.toml"
    chip.write_text(TINY_CHIP)
    records = {"input": np.ones((2, 1, 4)), "lif1": np.ones((2, 1, 6)),
               "lif2": np.zeros((2, 1, 6))}
    for rmap in (resource_map(tiny_program(), "loihi2"),
                 resource_map(tiny_program(), chip, records=records)):
        table = format_table(rmap)
        assert max(len(line) for line in table.splitlines()) <= 100
        assert "lif1" in table and "total:" in table
        rows = to_csv(rmap).strip().splitlines()
        assert len(rows) == 1 + len(rmap.layers) and rows[0].startswith("name,op_type")
        assert json.loads(json.dumps(rmap.to_dict()))["totals"]["cores"] == rmap.totals["cores"]
    assert "ESTIMATE" in format_table(resource_map(tiny_program(), "loihi2"))


# --- against nengo-loihi's own split_blocks ------------------------------------------------------

def _nengo_blocks(weight, sparse_transform=False, validate=False):
    """nengo-loihi's split of ``pre.neurons -> post.neurons`` with ``weight`` (post, pre):
    the post ensemble's block sizes (pre is an on-chip ensemble standing in for our input)."""
    nengo = pytest.importorskip("nengo")
    pytest.importorskip("nengo_loihi")
    from nengo_loihi.builder import Model
    from nengo_loihi.builder.builder import ValidationLevel
    from scipy import sparse

    n_post, n_pre = weight.shape
    transform = (nengo.transforms.Sparse(weight.shape, init=sparse.csr_matrix(weight))
                 if sparse_transform else weight)
    with nengo.Network(seed=0) as net:
        pre, post = nengo.Ensemble(n_pre, 1), nengo.Ensemble(n_post, 1)
        nengo.Connection(pre.neurons, post.neurons, transform=transform)
    model = Model(dt=0.001)
    if not validate:
        model.validation_level = ValidationLevel.NONE
    model.build(net, discretize=False)
    blocks = model.objs[post]["out"]
    blocks = blocks if isinstance(blocks, list) else [blocks]
    return [b.compartment.n_compartments for b in blocks]


@pytest.mark.parametrize("case", ["compartments", "synapse_memory", "input_axons"])
def test_split_matches_nengo_loihi(case):
    rng = np.random.default_rng(7)
    weight = {"compartments": lambda: rng.normal(size=(2500, 10)),
              "synapse_memory": lambda: rng.normal(size=(1000, 1000)),
              "input_axons": lambda: sparse_fan_in(10000, 100)}[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sizes = _nengo_blocks(weight, sparse_transform=case == "input_axons")
    layer = resource_map(one_layer(weight), "loihi1").layer("lif")
    assert layer.cores == len(sizes) and layer.limiting == case
    chunk = layer.neurons_per_core
    assert sizes == [min(chunk, layer.neurons - i) for i in range(0, layer.neurons, chunk)]


def test_nengo_loihi_rejects_what_the_chunk_check_splits(rng):
    """nengo-loihi keeps a 1000-neuron pre block on one core although its post was split into
    9 (9000 output axons) and fails validation; the resource map gives that layer 3 cores."""
    pytest.importorskip("nengo_loihi")
    from nengo.exceptions import BuildError
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(BuildError, match=r"Output axons \(9000\)"):
            _nengo_blocks(rng.normal(size=(1000, 1000)), validate=True)


def test_recurrent_spikes_to_the_own_core_are_not_traffic():
    """A 4-neuron population with an all-to-all recurrent Linear on one core: its spikes
    reach no other core, so there is no inter-core traffic."""
    program = lower(graph({"input": nir.Input(input_type=np.array([2])),
                           "fc": nir.Linear(weight=np.ones((4, 2))), "lif": lif(4),
                           "rec": nir.Linear(weight=np.ones((4, 4))),
                           "out": nir.Output(output_type=np.array([4]))},
                          [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"),
                           ("lif", "out")]), dt=DT)
    records = {"input": np.ones((2, 1, 2)), "lif": np.array([[[1, 0, 1, 0]], [[1, 1, 0, 0]]])}
    layer = resource_map(program, "loihi1", records).layer("lif")
    assert layer.cores == 1 and layer.spikes_per_step == 2.0
    assert layer.traffic_per_step == 0.0


def test_too_many_decay_profiles_on_a_core_do_not_fit():
    """40 distinct betas in one 40-neuron layer: 40 compartment profiles > 32 per core."""
    betas = np.linspace(0.5, 0.95, 40)
    program = lower(graph({"input": nir.Input(input_type=np.array([3])),
                           "fc": nir.Linear(weight=np.ones((40, 3))),
                           "lif": lif_node(betas, np.ones(40)),
                           "out": nir.Output(output_type=np.array([40]))},
                          [("input", "fc"), ("fc", "lif"), ("lif", "out")]), dt=DT)
    rmap = resource_map(program, "loihi1")
    layer = rmap.layer("lif")
    assert layer.compartment_profiles == 40 and not layer.fits and "profiles" in layer.problem
    assert not rmap.totals["fits"]
