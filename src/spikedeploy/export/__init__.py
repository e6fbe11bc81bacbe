"""Stage 2: snnTorch nn.Sequential or checkpoint -> NIR graph (with spikedeploy metadata).

Public API::

    export_model(model, input_shape, dt=1e-4, metadata=None) -> nir.NIRGraph
    export_checkpoint(checkpoint_path) -> nir.NIRGraph
    write_nir(graph, path)                       # atomic
    register_converter(module_type)              # extend the module -> NIR registry
"""
from .layers import CONVERTERS, register_converter
from . import recurrent_layers  # noqa: F401  (registers snn.RLeaky / refuses snn.RSynaptic)
from .to_nir import export_checkpoint, export_model, write_nir

__all__ = ["CONVERTERS", "register_converter", "export_checkpoint", "export_model", "write_nir"]
