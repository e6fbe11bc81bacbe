"""Stage 2: any snnTorch model or checkpoint -> NIR graph (with spikedeploy metadata).

Public API::

    export_model(model, input_shape, dt=1e-4, num_steps=None, forward=None, ...) -> nir.NIRGraph
    export_checkpoint(checkpoint_path) -> nir.NIRGraph
    write_nir(graph, path)                       # atomic
    register_converter(module_type)              # extend the module -> NIR registry
"""
from . import own_modules, snntorch_neurons  # noqa: F401  (register their converters)
from .layers import CONVERTERS, register_converter
from .to_nir import export_checkpoint, export_model, write_nir

__all__ = ["CONVERTERS", "register_converter", "export_checkpoint", "export_model", "write_nir"]
