"""Stage 2: snnTorch -> NIR export, its metadata, refusals and exactness."""
from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from spikedeploy.errors import SpikedeployError, UnsupportedError
from spikedeploy.export import export_checkpoint, export_model, write_nir
from spikedeploy.export import to_nir
from spikedeploy.ir.load import read_nir
from spikedeploy.ir.lowering import lower
from spikedeploy.ir.ops import DenseOp, NeuronOp
from spikedeploy.ir.semantics import neuron_step
from spikedeploy.metadata import metadata_value
from spikedeploy.models import (TrainConfig, build_mlp, run_snntorch, save_checkpoint, train,
                                training_config)

DT = 1e-4


def random_mlp(seed=0, hidden=24, bias=True) -> nn.Sequential:
    """An MLP with per-neuron random beta and threshold and weights that make it spike."""
    torch.manual_seed(seed)
    model = build_mlp(hidden=hidden)
    with torch.no_grad():
        for fc in (model.fc1, model.fc2):
            fc.weight.normal_(0.0, 0.6)
            if bias:
                fc.bias.uniform_(-0.2, 0.2)
        for lif in (model.lif1, model.lif2):
            lif.beta.uniform_(0.0, 1.0)
            lif.threshold.uniform_(0.5, 1.5)
    if not bias:
        model.fc1.bias = None
        model.fc2.bias = None
    return model


def random_spikes(shape, p=0.3, seed=0):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float64)


def leaky(**kwargs):
    settings = dict(beta=torch.full((3,), 0.8), threshold=torch.ones(3), reset_mechanism="zero",
                    reset_delay=False, init_hidden=True)
    settings.update(kwargs)
    return snn.Leaky(**settings)


def net_with(neuron) -> nn.Sequential:
    return nn.Sequential(OrderedDict(fc1=nn.Linear(4, 3), lif1=neuron))


# --- structure and parameters ------------------------------------------------

def test_mlp_graph_nodes_edges_and_parameters():
    model = random_mlp()
    graph = export_model(model, (64,), dt=DT)
    assert list(graph.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "output"]
    assert graph.edges == [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"),
                           ("fc2", "lif2"), ("lif2", "output")]
    for fc_name, lif_name in (("fc1", "lif1"), ("fc2", "lif2")):
        fc, lif = getattr(model, fc_name), getattr(model, lif_name)
        affine, node = graph.nodes[fc_name], graph.nodes[lif_name]
        assert isinstance(affine, nir.Affine) and isinstance(node, nir.LIF)
        assert affine.weight.dtype == np.float64
        assert np.array_equal(affine.weight, fc.weight.detach().double().numpy())
        assert np.array_equal(affine.bias, fc.bias.detach().double().numpy())
        beta = lif.beta.double().numpy()
        size = beta.shape[0]
        for field in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            value = getattr(node, field)
            assert value.dtype == np.float64 and value.shape == (size,), field
        np.testing.assert_allclose(node.tau, DT / (1 - beta), rtol=1e-14)
        np.testing.assert_allclose(node.r, node.tau / DT, rtol=1e-14)
        assert np.array_equal(node.v_threshold, lif.threshold.double().numpy())
        assert not node.v_leak.any() and not node.v_reset.any()
        # the consumer's discretisation lands on snnTorch's values (see test below)
        assert np.abs((1 - DT / node.tau) - beta).max() <= 2.0 ** -52
        assert np.all(DT * node.r / node.tau == 1.0)
    assert graph.nodes["output"].output_type["output"].tolist() == [10]


def test_default_beta_and_gain_are_exact():
    graph = export_model(build_mlp(hidden=8), (64,))
    lif = graph.nodes["lif1"]
    assert np.all(1 - DT / lif.tau == np.float64(np.float32(0.9)))
    assert np.all(DT * lif.r / lif.tau == 1.0)


def test_decay_is_exact_for_most_float32_betas():
    beta = torch.rand(5000, generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 5000),
                                      lif1=leaky(beta=beta, threshold=torch.ones(5000))))
    node = export_model(model, (4,)).nodes["lif1"]
    achieved = 1 - DT / node.tau
    assert np.mean(achieved == beta.double().numpy()) > 0.85
    assert np.abs(achieved - beta.double().numpy()).max() <= 2.0 ** -52
    assert np.all(DT * node.r / node.tau == 1.0)


def test_linear_without_bias_exports_nir_linear():
    graph = export_model(random_mlp(bias=False), (64,))
    assert isinstance(graph.nodes["fc1"], nir.Linear) and isinstance(graph.nodes["fc2"], nir.Linear)


def test_index_named_sequential_with_flatten_and_identity_layers():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(32, 5), leaky(beta=torch.full((5,), 0.5),
                          threshold=torch.ones(5)), nn.Identity())
    graph = export_model(model, (2, 4, 4))
    assert list(graph.nodes) == ["input", "flatten1", "fc1", "lif1", "output"]
    flatten = graph.nodes["flatten1"]
    assert (flatten.start_dim, flatten.end_dim) == (0, 2)
    assert flatten.output_type["output"].tolist() == [32]
    lowered = lower(graph)                       # the IR reads the dims the same way
    assert lowered.ops["flatten1"].shape == (32,)


def test_scalar_and_unit_beta():
    graph = export_model(net_with(leaky(beta=0.5, threshold=2.0)), (4,))
    assert graph.nodes["lif1"].tau.shape == (3,) and np.all(graph.nodes["lif1"].v_threshold == 2.0)
    no_leak = export_model(net_with(leaky(beta=torch.ones(3))), (4,)).nodes["lif1"]
    assert isinstance(no_leak, nir.IF) and np.all(DT * no_leak.r == 1.0)
    clamped = export_model(net_with(leaky(beta=torch.tensor([-0.5, 0.3, 0.0]))), (4,)).nodes["lif1"]
    assert np.array_equal(1 - DT / clamped.tau, np.float32([0.0, 0.3, 0.0]).astype(np.float64))


# --- refusals --------------------------------------------------------------

@pytest.mark.parametrize("make_neuron, field", [
    (lambda: leaky(threshold=torch.tensor([1.0, 0.0, 1.0])), "threshold"),
    (lambda: leaky(beta=torch.tensor([1.0, 0.5, 0.5])), "beta"),
    (lambda: leaky(beta=torch.full((4,), 0.5)), "beta"),
    (lambda: leaky(inhibition=True), "inhibition"),
    (lambda: leaky(state_quant=lambda mem: mem.round()), "state_quant"),
    (lambda: leaky(graded_spikes_factor=0.0), "graded_spikes_factor"),
    (lambda: nn.ReLU(), "type"),
    # snnTorch 1.0's RSynaptic cannot run with reset_delay=False and init_hidden=True
    (lambda: snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=3, init_hidden=True,
                           reset_mechanism="zero", reset_delay=False), "reset_delay"),
], ids=["threshold-0", "mixed-beta-1", "beta-shape", "inhibition", "state-quant", "graded-0",
        "relu", "rsynaptic-init-hidden"])
def test_unrepresentable_layers_are_refused_by_name(make_neuron, field):
    with warnings.catch_warnings():  # snnTorch warns that inhibition is experimental
        warnings.simplefilter("ignore", UserWarning)
        model = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 3), lif1=make_neuron()))
    with pytest.raises(UnsupportedError) as info:
        export_model(model, (4,))
    assert info.value.node == "lif1" and info.value.field == field
    assert "lif1" in str(info.value) and "\n" not in str(info.value)


def test_unknown_layer_message_names_its_type():
    with pytest.raises(UnsupportedError, match=r"node 'relu1'.*torch\.nn\.modules\.activation\.ReLU"):
        export_model(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (4,))


def test_learnable_beta_and_threshold_export_their_values():
    neuron = leaky(learn_beta=True, learn_threshold=True)
    with torch.no_grad():
        neuron.threshold.mul_(1.25)
    node = export_model(net_with(neuron), (4,)).nodes["lif1"]
    assert np.all(node.v_threshold == 1.25)


@pytest.mark.parametrize("kwargs", [
    dict(dt=0.0), dict(dt=float("nan")),
    dict(metadata={"spikedeploy.num_steps": [25]}),
    dict(metadata={"note": None}),
    dict(metadata={"spikedeploy.num_steps": 0}),
    dict(metadata={"spikedeploy.encoding": "poisson"}),
    dict(metadata={"spikedeploy.dt": 1e-3}),
])
def test_bad_dt_and_metadata_are_refused(kwargs):
    with pytest.raises(SpikedeployError):
        export_model(net_with(leaky()), (4,), **kwargs)


def test_shape_mismatch_is_refused():
    with pytest.raises(UnsupportedError, match="fc1"):
        export_model(net_with(leaky()), (5,))


# --- files and metadata ------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    result = train(TrainConfig(hidden=16, num_steps=5, epochs=1, train_subset=128, seed=2))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt"), result.model, training_config(result)), result


def test_checkpoint_export_round_trips_through_nir_files(tiny_checkpoint, tmp_path):
    path, result = tiny_checkpoint
    graph = export_checkpoint(path)
    target = write_nir(graph, tmp_path / "model.nir")
    back = nir.read(target)
    assert set(back.nodes) == set(graph.nodes) and sorted(back.edges) == sorted(graph.edges)
    for name, node in graph.nodes.items():
        assert type(back.nodes[name]) is type(node)
        for field in ("weight", "bias", "tau", "r", "v_leak", "v_threshold", "v_reset"):
            if hasattr(node, field):
                assert np.array_equal(getattr(back.nodes[name], field), getattr(node, field))
    meta = back.metadata
    expected = {"spikedeploy.dt": 1e-4, "spikedeploy.num_steps": 5, "spikedeploy.encoding": "rate",
                "spikedeploy.readout": "spike_count", "spikedeploy.dataset": "digits",
                "spikedeploy.seed": 2, "spikedeploy.snntorch_accuracy": result.test_accuracy}
    for key, value in expected.items():
        assert metadata_value(meta, key) == value, key
    assert metadata_value(meta, "spikedeploy.exporter").startswith("spikedeploy ")
    assert read_nir(target).nodes.keys() == back.nodes.keys()    # the IR's reader accepts it


def test_user_metadata_round_trips(tmp_path):
    graph = export_model(net_with(leaky()), (4,), dt=1e-3,
                         metadata={"spikedeploy.num_steps": np.int64(7), "note": "hello",
                                   "gains": np.arange(3.0)})
    back = nir.read(write_nir(graph, tmp_path / "g.nir"))
    assert metadata_value(back.metadata, "spikedeploy.dt") == 1e-3
    assert metadata_value(back.metadata, "spikedeploy.num_steps") == 7
    assert metadata_value(back.metadata, "note") == "hello"
    assert np.array_equal(back.metadata["gains"], np.arange(3.0))


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    """Not only errors: an interrupt (BaseException) mid-write must also clean up."""
    def interrupted_write(target, graph):
        target.write(b"\x89HDF")
        raise KeyboardInterrupt

    monkeypatch.setattr(to_nir.nir, "write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        write_nir(export_model(net_with(leaky()), (4,)), tmp_path / "m.nir")
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic(tmp_path, monkeypatch):
    """A full disk while the file is written: the old file stays, no partial or temp file."""
    graph = export_model(net_with(leaky()), (4,))
    target = tmp_path / "model.nir"
    write_nir(graph, target)
    original = target.read_bytes()

    def disk_full(self, data):
        with open(self, "wb") as f:
            f.write(data[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(SpikedeployError, match="No space left on device"):
        write_nir(graph, target)
    assert target.read_bytes() == original                        # old file intact
    with pytest.raises(SpikedeployError):
        write_nir(graph, tmp_path / "new.nir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nir"]   # no partial or temp file


def test_write_into_missing_directory_is_refused(tmp_path):
    with pytest.raises(SpikedeployError, match="no such directory"):
        write_nir(export_model(net_with(leaky()), (4,)), tmp_path / "nope" / "m.nir")


# --- equivalence with snnTorch -------------------------------------------------

def euler_lif_spikes(graph: nir.NIRGraph, inputs: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """v = (1 - dt/tau) v + (dt r / tau)(W x + b); spike v > v_th; v = v_reset (a chain of Affine -> LIF)."""
    spikes, x = {}, inputs
    for affine_name, lif_name in (("fc1", "lif1"), ("fc2", "lif2")):
        affine, lif = graph.nodes[affine_name], graph.nodes[lif_name]
        current = x @ affine.weight.T + affine.bias
        decay, gain = 1 - dt / lif.tau, dt * lif.r / lif.tau
        v = np.zeros(current.shape[1:])
        out = np.zeros_like(current)
        for t in range(current.shape[0]):
            v = decay * v + gain * current[t]
            out[t] = v > lif.v_threshold
            v = np.where(out[t] > 0, lif.v_reset, v)
        spikes[lif_name] = x = out
    return spikes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exported_graph_reproduces_snntorch_spikes(seed):
    model = random_mlp(seed)
    inputs = random_spikes((30, 64, 64), seed=seed)
    reference = run_snntorch(model, inputs)
    graph = export_model(model, (64,), dt=DT)
    mine = euler_lif_spikes(graph, inputs, DT)
    for layer in ("lif1", "lif2"):
        assert 0.02 < reference[layer].mean() < 0.9, "the test needs spiking activity"
        assert np.array_equal(mine[layer], reference[layer]), layer


def test_ir_lowering_of_the_written_file_reproduces_snntorch(tmp_path):
    """Through the file and the IR's discretisation (spikedeploy.ir.semantics)."""
    model = random_mlp(5)
    inputs = random_spikes((25, 40, 64), seed=5)
    reference = run_snntorch(model, inputs)
    program = lower(read_nir(write_nir(export_model(model, (64,)), tmp_path / "m.nir")))
    for op in program.ops.values():
        if isinstance(op, NeuronOp):
            snn_layer = getattr(model, op.name)
            assert np.all(op.params.gain == 1.0)
            beta = snn_layer.beta.double().numpy()
            assert np.abs((1 - op.params.dv) - beta).max() <= 2.0 ** -52
    values = {"input": None}
    state = {}
    for t in range(inputs.shape[0]):
        values["input"] = inputs[t]
        for op in list(program.ops.values())[1:]:
            src = values[op.inputs[0]]
            if isinstance(op, DenseOp):
                values[op.name] = src @ op.weight.T
            elif isinstance(op, NeuronOp):
                u, v = state.get(op.name, (0.0, np.broadcast_to(op.params.v_init, src.shape).copy()))
                u, v, z = neuron_step(u, v, src, op.params)
                state[op.name] = (u, v)
                values[op.name] = z
                assert np.array_equal(z, reference[op.name][t]), (op.name, t)
            else:
                values[op.name] = src


def test_synaptic_exports_cubalif_that_reproduces_snntorch():
    torch.manual_seed(4)
    syn = snn.Synaptic(alpha=torch.rand(12), beta=torch.rand(12), threshold=torch.rand(12) + 0.5,
                       reset_mechanism="zero", reset_delay=False, init_hidden=True)
    model = nn.Sequential(nn.Linear(20, 12), syn)
    with torch.no_grad():
        model[0].weight.normal_(0, 0.5)
    inputs = random_spikes((30, 16, 20), seed=4)
    reference = run_snntorch(model, inputs)["cubalif1"]
    graph = export_model(model, (20,))
    node = graph.nodes["cubalif1"]
    assert isinstance(node, nir.CubaLIF)
    du, dv = DT / node.tau_syn, DT / node.tau_mem
    gain = (DT / node.tau_mem) * node.r * (DT / node.tau_syn) * node.w_in
    assert np.abs(gain - 1).max() < 1e-15
    affine = graph.nodes["fc1"]
    current = inputs @ affine.weight.T + affine.bias
    u = v = np.zeros(current.shape[1:])
    spikes = np.zeros_like(current)
    for t in range(current.shape[0]):
        u = (1 - du) * u + gain * current[t]
        v = (1 - dv) * v + u
        spikes[t] = v > node.v_threshold
        v = np.where(spikes[t] > 0, node.v_reset, v)
    assert 0.02 < reference.mean() < 0.9
    assert np.array_equal(spikes, reference)
