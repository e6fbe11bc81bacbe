"""``--strict-nir`` on snnTorch's default neurons: NIR primitives only, and the file as other
tools read it (``nir.read``, no spikedeploy metadata) reproduces snnTorch's spikes.

snnTorch's default reset (subtract, delayed) is an LI neuron feeding a Threshold node, with
a recurrent synapse of weight -threshold from the spikes back into the LI node; Synaptic
adds an LI synaptic current in front; reset "none" has no feedback.
"""
from __future__ import annotations

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from spikedeploy.deploy.cli import main
from spikedeploy.errors import UnsupportedError
from spikedeploy.export import export_model, write_nir
from spikedeploy.hw_sim.compare import compare_records
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.ir.lowering import lower
from spikedeploy.models.run import run_snntorch

# what a graph written with NIR's own vocabulary may hold
NIR_PRIMITIVES = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.LI, nir.Threshold,
                  nir.Scale, nir.Conv2d, nir.Flatten)


def _model(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    n = 16
    first = {
        "leaky": lambda: snn.Leaky(beta=torch.rand(n) * 0.3 + 0.6, threshold=torch.rand(n) + 0.5,
                                   init_hidden=True),
        "synaptic": lambda: snn.Synaptic(alpha=0.6, beta=0.8, init_hidden=True),
        "rleaky": lambda: snn.RLeaky(beta=0.8, linear_features=n, init_hidden=True),
        "rsynaptic": lambda: snn.RSynaptic(alpha=0.6, beta=0.8, linear_features=n,
                                           init_hidden=True),
        "rleaky_one_to_one": lambda: snn.RLeaky(beta=0.8, all_to_all=False, V=torch.rand(n) - 0.5,
                                                init_hidden=True),
        "none": lambda: snn.Leaky(beta=0.7, init_hidden=True, reset_mechanism="none"),
    }[kind]()
    model = nn.Sequential(nn.Linear(10, n), first, nn.Linear(n, 5),
                          snn.Leaky(beta=0.8, threshold=0.7, init_hidden=True))
    with torch.no_grad():
        model[0].weight.mul_(4)
        model[2].weight.mul_(3)
    return model


def _x(shape=(30, 8, 10), seed=0):
    return (np.random.default_rng(seed).random(shape) < 0.5).astype(np.float64)


@pytest.mark.parametrize("kind", ["leaky", "synaptic", "rleaky", "rsynaptic",
                                  "rleaky_one_to_one", "none"])
def test_only_nir_primitives_and_nir_read_reproduces_snntorch(kind, tmp_path):
    model = _model(kind)
    graph = export_model(model, (10,), strict_nir=True)
    assert graph.metadata["spikedeploy.strict_nir"] == 1
    for name, node in graph.nodes.items():
        assert isinstance(node, NIR_PRIMITIVES), (name, type(node).__name__)
        assert not getattr(node, "metadata", None), (name, node.metadata)
    if kind != "none":                       # the reset is a recurrent synapse of -threshold
        reset = next(n for n in graph.nodes if n.endswith("_reset"))
        (spiking,) = [a for a, b in graph.edges if b == reset]
        threshold = np.asarray(graph.nodes[spiking].threshold)
        np.testing.assert_array_equal(graph.nodes[reset].weight, np.diag(-threshold))
    path = write_nir(graph, tmp_path / "strict.nir")
    read = nir.read(str(path))                         # as any NIR tool reads it
    x = _x()
    theirs, ours = run_snntorch(model, x), simulate(lower(read), x)
    layers = [n for n in theirs if n != "output"]
    assert len(layers) == 2
    for layer in layers:
        a, b = theirs[layer].reshape(ours.records[layer].shape), ours.records[layer]
        assert 0.01 < a.mean() < 0.99, f"{layer}: the test needs activity"
        assert np.array_equal(a, b), f"{layer}: {int(np.sum(a != b))} differ"


def test_convolutional_layers_reset_through_a_scale(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1),
                          snn.Leaky(beta=torch.full((4, 1, 1), 0.8), init_hidden=True),
                          nn.Flatten(), nn.Linear(64, 5), snn.Leaky(beta=0.9, init_hidden=True))
    with torch.no_grad():
        model[0].weight.mul_(3)
        model[3].weight.mul_(3)
    graph = export_model(model, (2, 4, 4), strict_nir=True)
    assert isinstance(graph.nodes["lif1_reset"], nir.Scale)
    read = nir.read(str(write_nir(graph, tmp_path / "conv.nir")))
    x = _x((20, 4, 2, 4, 4), seed=1)
    theirs, ours = run_snntorch(model, x), simulate(lower(read), x)
    for layer in ("lif1", "lif2"):
        a = theirs[layer].reshape(ours.records[layer].shape)
        assert a.mean() > 0.01 and np.array_equal(a, ours.records[layer]), layer


@pytest.mark.lava
def test_strict_graph_on_lava_float_and_bit_exact_fixed(tmp_path):
    from spikedeploy.hw_sim.lava_runner import simulate_lava
    model = _model("synaptic", seed=2)
    read = nir.read(str(write_nir(export_model(model, (10,), strict_nir=True),
                                  tmp_path / "m.nir")))
    program = lower(read)
    x = _x((20, 4, 10), seed=2)
    ref = simulate(program, x)
    assert compare_records(ref, simulate_lava(read, x, program=program)).agrees
    fixed = fxp.quantise(program)
    ref_fx = simulate(program, x, "fixed", fixed)
    assert compare_records(ref_fx, simulate_lava(read, x, "fixed", program=program,
                                                 fixed=fixed)).agrees


@pytest.mark.parametrize("neuron, field, reason", [
    (lambda: snn.Leaky(beta=0.8, init_hidden=True, reset_delay=False), "reset_mode",
     "reset_delay=False"),
    (lambda: snn.Synaptic(alpha=0.5, beta=0.8, init_hidden=True, reset_mechanism="zero"),
     "reset_mode", "delayed reset to zero"),
    (lambda: snn.Leaky(beta=0.8, init_hidden=True, graded_spikes_factor=0.5), "spike_value",
     "graded spikes"),
])
def test_what_pure_nir_cannot_say_is_refused(neuron, field, reason):
    model = nn.Sequential(nn.Linear(4, 3), neuron())
    with pytest.raises(UnsupportedError, match=f"node 'l?\\w+'.*{field}.*{reason}"):
        export_model(model, (4,), strict_nir=True)
    export_model(model, (4,))                # the metadata form carries it


def test_the_cli_writes_strict_nir_from_a_user_model(tmp_path):
    source = tmp_path / "net.py"
    source.write_text("import torch.nn as nn\nimport snntorch as snn\n"
                      "def net():\n    return nn.Sequential(nn.Linear(6, 4), "
                      "snn.Leaky(beta=0.9, init_hidden=True))\n")
    out = tmp_path / "m.nir"
    assert main(["export", "--model", f"{source}:net", "--input-shape", "6", "--steps", "10",
                 "--strict-nir", "-o", str(out)]) == 0
    read = nir.read(str(out))
    assert {type(n).__name__ for n in read.nodes.values()} == {
        "Input", "Output", "Affine", "LI", "Threshold", "Linear"}
