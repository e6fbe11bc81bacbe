"""Shared fixtures (helpers for building graphs and comparing runs are in helpers.py)."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The default digits MLP, trained once per test session, with its NIR export."""
    from spikedeploy.deploy.stages import train_and_save
    from spikedeploy.export import export_checkpoint, write_nir
    from spikedeploy.ir.load import read_nir
    from spikedeploy.ir.lowering import lower

    out = tmp_path_factory.mktemp("trained")
    ckpt = out / "checkpoint"
    config = train_and_save(ckpt, progress=lambda msg: None)
    nir_path = out / "model.nir"
    write_nir(export_checkpoint(ckpt), nir_path)
    graph = read_nir(nir_path)
    return dict(ckpt=ckpt, nir=nir_path, graph=graph, program=lower(graph), config=config)
