"""snnTorch ``nn.Sequential`` -> NIR graph, and writing it to disk.

The graph is a chain::

    input -> <layer 1> -> ... -> <layer n> -> output

with nodes named as :func:`spikedeploy.models.sequential.layer_names` names
the Sequential's children (fc1, lif1, fc2, lif2 for the reference MLP), the
same names :func:`~spikedeploy.models.sequential.run_snntorch` uses for its
spike trains. Per-layer conversion rules are in :mod:`.layers`.

NIR files hold no time step, encoding or readout, so the exporter adds
graph-level metadata (keys defined in :mod:`spikedeploy.ir.load`):

=========================== =====================================================
``spikedeploy.dt``          float, seconds per step used to derive tau (always)
``spikedeploy.readout``     "spike_count" (argmax of output counts over T)
``spikedeploy.num_steps``   int T                (checkpoints, or given)
``spikedeploy.encoding``    "rate" | "direct"    (checkpoints, or given)
``spikedeploy.dataset``     "digits"             (checkpoints, or given)
``spikedeploy.seed``        int, split/encoding seed (checkpoints)
``spikedeploy.snntorch_accuracy`` float, float64 snnTorch test accuracy (checkpoints)
``spikedeploy.exporter``    "spikedeploy <version>, snntorch <version>"
=========================== =====================================================

Values must be numbers, strings or numeric arrays: NIR's HDF5 writer cannot
store lists or None. ``nir.read`` returns strings as bytes;
:func:`spikedeploy.ir.load.metadata_value` decodes them.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import nir
import numpy as np
import snntorch
from torch import nn

from .. import __version__
from ..errors import SpikedeployError
from ..ir.load import META_DATASET, META_DT, META_ENCODING, META_NUM_STEPS, META_READOUT
from ..fileio import write_atomically
from ..models.checkpoint import load_checkpoint
from ..models.data import ENCODINGS
from ..models.sequential import layer_names
from .layers import convert_layer

META_SEED = "spikedeploy.seed"
META_SNNTORCH_ACCURACY = "spikedeploy.snntorch_accuracy"
META_EXPORTER = "spikedeploy.exporter"
READOUT_SPIKE_COUNT = "spike_count"
DEFAULT_DT = 1e-4


def export_model(model: nn.Sequential, input_shape, dt: float = DEFAULT_DT,
                 metadata: dict | None = None) -> nir.NIRGraph:
    """Convert an snnTorch ``nn.Sequential`` to a NIR graph (see module docstring).

    ``input_shape`` excludes batch and time, e.g. ``(64,)``. ``metadata``
    adds graph-level entries (e.g. ``spikedeploy.num_steps``); it may not
    contradict ``dt``.
    """
    dt = _check_dt(dt)
    input_shape = _shape(input_shape)
    names = layer_names(model)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges: list[tuple[str, str]] = []
    previous, shape = "input", input_shape
    for name, module in zip(names, model):
        node, shape = convert_layer(name, module, shape, dt)
        if node is None:     # identity at inference
            continue
        nodes[name] = node
        edges.append((previous, name))
        previous = name
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_graph_metadata(dt, metadata))


def export_checkpoint(checkpoint_path) -> nir.NIRGraph:
    """Load a checkpoint directory and export it with its run settings as metadata."""
    checkpoint = load_checkpoint(checkpoint_path)
    config = checkpoint.config
    metadata = {
        META_NUM_STEPS: int(config["num_steps"]),
        META_ENCODING: config["encoding"],
        META_DATASET: str(config.get("dataset", "digits")),
        META_SEED: int(config["seed"]),
    }
    if isinstance(config.get("test_accuracy"), numbers.Real):
        metadata[META_SNNTORCH_ACCURACY] = float(config["test_accuracy"])
    return export_model(checkpoint.model, (config["num_inputs"],), dt=config["dt"], metadata=metadata)


def write_nir(graph: nir.NIRGraph, path) -> Path:
    """Write ``graph`` to ``path`` atomically: the old file or the new one, never half of one."""
    path = Path(path)
    if not path.parent.is_dir():
        raise SpikedeployError(f"{path.parent}: no such directory")
    try:
        return write_atomically(path, lambda tmp: nir.write(tmp, graph))
    except OSError as exc:
        raise SpikedeployError(f"{path}: cannot write NIR file: {exc.strerror or exc}")


def _graph_metadata(dt: float, extra: dict | None) -> dict:
    metadata = {
        META_DT: dt,
        META_READOUT: READOUT_SPIKE_COUNT,
        META_EXPORTER: f"spikedeploy {__version__}, snntorch {snntorch.__version__}",
    }
    for key, value in (extra or {}).items():
        _check_metadata_value(key, value)
        if key == META_DT and float(value) != dt:
            raise SpikedeployError(f"metadata '{META_DT}' = {value} contradicts dt = {dt}")
        metadata[key] = value
    if META_NUM_STEPS in metadata:
        steps = metadata[META_NUM_STEPS]
        if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
            raise SpikedeployError(f"metadata '{META_NUM_STEPS}' must be a positive integer, got {steps!r}")
        metadata[META_NUM_STEPS] = int(steps)
    if META_ENCODING in metadata and metadata[META_ENCODING] not in ENCODINGS:
        raise SpikedeployError(f"metadata '{META_ENCODING}' must be one of {', '.join(ENCODINGS)}, "
                               f"got {metadata[META_ENCODING]!r}")
    return metadata


def _check_metadata_value(key, value) -> None:
    if not isinstance(key, str):
        raise SpikedeployError(f"metadata keys must be strings, got {key!r}")
    if isinstance(value, (str, numbers.Real, np.generic)):
        return
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return
    raise SpikedeployError(f"metadata '{key}': NIR files store numbers, strings and numeric arrays, "
                           f"not {type(value).__name__}")


def _check_dt(dt) -> float:
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise SpikedeployError(f"dt must be a number, got {dt!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise SpikedeployError(f"dt must be positive and finite, got {dt}")
    return dt


def _shape(input_shape) -> tuple:
    shape = (input_shape,) if isinstance(input_shape, numbers.Integral) else tuple(input_shape)
    if not shape or any(int(s) < 1 for s in shape):
        raise SpikedeployError(f"input_shape must be positive sizes without the batch, got {input_shape!r}")
    return tuple(int(s) for s in shape)
