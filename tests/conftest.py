"""Shared fixtures: small NIR graphs built by hand with random parameters."""
import nir
import numpy as np
import pytest

DT = 1e-4


def lif_node(beta, threshold, v_reset=None, v_leak=None, dt=DT):
    beta = np.asarray(beta, np.float64)
    tau = dt / (1 - beta)
    return nir.LIF(tau=tau, r=tau / dt,
                   v_leak=np.zeros_like(beta) if v_leak is None else v_leak,
                   v_threshold=np.asarray(threshold, np.float64),
                   v_reset=np.zeros_like(beta) if v_reset is None else v_reset)


def mlp_graph(rng, sizes=(20, 32, 10), weight_std=0.5, bias_std=0.1, dt=DT):
    """Input -> (Affine -> LIF) x len(sizes)-1 -> Output, random per-neuron params."""
    nodes = {"input": nir.Input(input_type=np.array([sizes[0]]))}
    edges, prev = [], "input"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        nodes[f"fc{i}"] = nir.Affine(weight=rng.normal(0, weight_std, (n_out, n_in)),
                                     bias=rng.normal(0, bias_std, n_out))
        nodes[f"lif{i}"] = lif_node(rng.uniform(0.7, 0.97, n_out), rng.uniform(0.7, 1.3, n_out))
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type=np.array([sizes[-1]]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": dt})


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The default digits MLP, trained once per test session, with its NIR export."""
    from spikedeploy.deploy.stages import train_and_save
    from spikedeploy.export import export_checkpoint, write_nir
    from spikedeploy.ir.load import read_nir
    from spikedeploy.ir.program import lower

    out = tmp_path_factory.mktemp("trained")
    ckpt = out / "checkpoint"
    config = train_and_save(ckpt, progress=lambda msg: None)
    nir_path = out / "model.nir"
    write_nir(export_checkpoint(ckpt), nir_path)
    graph = read_nir(nir_path)
    return dict(ckpt=ckpt, nir=nir_path, graph=graph, program=lower(graph), config=config)
