"""Any snnTorch model -> NIR graph, and writing it to disk.

:func:`export_model` runs the model on a small input and reads its graph from
what ``forward`` really computes (:mod:`spikedeploy.models.trace`,
:mod:`.trace_graph`): an ``nn.Sequential`` of ``init_hidden`` neurons called
once per step, or a module whose ``forward`` loops over the time steps of a
(T, N, ...) sequence, or repeats one (N, ...) input over its own steps. Nodes
are named as :mod:`spikedeploy.models.naming` names the modules (fc1, lif1,
fc2, lif2 for the reference MLP), the names
:func:`~spikedeploy.models.run.run_snntorch` keys its spike trains with.
Per-layer conversion rules are in :mod:`.layers`, :mod:`.snntorch_neurons`
and :mod:`.own_modules`; ``strict_nir`` rewrites to NIR primitives only
(:mod:`.strict`).

NIR files hold no time step, encoding or readout, so the exporter adds
graph-level metadata (keys defined in :mod:`spikedeploy.metadata`):

=========================== =====================================================
``spikedeploy.dt``          float, seconds per step used to derive tau (always)
``spikedeploy.readout``     "spike_count" (argmax of output counts over T, the
                            default), "mean" (argmax of the output's mean over
                            steps: TET-S, SDM CNN) or "last_step" (argmax of the
                            output at the last step: LTS, conversion readouts)
``spikedeploy.threshold_scale`` float gamma, when thresholds were scaled at export
``spikedeploy.strict_nir``  1 when exported with NIR primitives only
``spikedeploy.architecture`` checkpoint architecture (checkpoints)
``spikedeploy.num_steps``   int T                (checkpoints, or given)
``spikedeploy.encoding``    "rate" | "direct"    (checkpoints, or given)
``spikedeploy.dataset``     "digits"             (checkpoints, or given)
``spikedeploy.seed``        int, split/encoding seed (checkpoints)
``spikedeploy.snntorch_accuracy`` float, float64 snnTorch test accuracy (checkpoints)
``spikedeploy.exporter``    "spikedeploy <version>, snntorch <version>"
=========================== =====================================================

Values must be numbers, strings or numeric arrays: NIR's HDF5 writer cannot
store lists or None. ``nir.read`` returns strings as bytes;
:func:`spikedeploy.metadata.metadata_value` decodes them.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import nir
import numpy as np
import snntorch
from torch import nn

from .. import __version__
from .. import metadata as meta
from ..errors import SpikedeployError, UnsupportedError
from ..fileio import in_memory, require_folder, write_bytes
from ..metadata import DEFAULT_DT, DEFAULT_READOUT, ENCODINGS, READOUTS
from ..models.checkpoint import input_shape_of, load_checkpoint
from ..models.trace import trace_module
from .layers import CONVERTERS, REFUSED
from .snntorch_neurons import explain_failure
from .strict import make_strict
from .trace_graph import build_graph

TRACE_STEPS = 2      # steps a step-by-step or sequence model is traced for (enough to see loops)


def export_model(model: nn.Module, input_shape, dt: float = DEFAULT_DT,
                 metadata: dict | None = None, readout: str | None = None,
                 threshold_scale: float = 1.0, strict_nir: bool = False,
                 num_steps: int | None = None, forward: str | None = None) -> nir.NIRGraph:
    """Convert any snnTorch model to a NIR graph (see module docstring).

    ``input_shape``: one step's input without the batch, e.g. ``(64,)`` or
    ``(1, 28, 28)``. ``num_steps``: the run length T (graph metadata
    ``spikedeploy.num_steps``; a model that loops over its own steps fixes it).
    ``forward``: "step" (one call per step) or "sequence" (``forward`` loops
    over time itself); detected when None. ``metadata`` adds graph-level
    entries; it may not contradict ``dt``. ``readout``: how the output is read
    (``spike_count``, ``mean`` or ``last_step``; graph metadata
    ``spikedeploy.readout``). ``threshold_scale``: threshold guidance gamma
    applied at export (every spiking node's v_threshold x gamma; recorded as
    ``spikedeploy.threshold_scale``). ``strict_nir``: express everything
    with NIR primitives alone (:mod:`.strict`); what has no pure-NIR form is
    refused.
    """
    dt = _check_dt(dt)
    input_shape = _shape(input_shape)
    if forward not in (None, "step", "sequence"):
        raise SpikedeployError(f"unknown forward style {forward!r} (step|sequence)")
    if num_steps is not None and (not isinstance(num_steps, numbers.Integral) or num_steps < 1):
        raise SpikedeployError(f"num_steps must be a positive integer, got {num_steps!r}")
    steps = min(TRACE_STEPS, num_steps or TRACE_STEPS)
    style = forward
    if forward == "sequence":
        style = None                      # "sequence" or "repeat": the trace tells
    trace = trace_module(model, input_shape, steps, style=style, is_leaf=_is_leaf,
                         explain=_explain_failure)
    if forward == "sequence" and trace.style == "step":
        raise SpikedeployError("the model does not loop over time steps itself (--forward step)")
    traced = build_graph(trace, dt)
    nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)}), **traced.nodes}
    edges = list(traced.edges)
    extra = dict(metadata or {})
    if trace.style == "repeat":
        if num_steps is not None and num_steps != trace.num_steps:
            raise SpikedeployError(f"the model runs {trace.num_steps} steps of its own, not "
                                   f"{num_steps}")
        num_steps = trace.num_steps
    if num_steps is not None:
        extra.setdefault(meta.NUM_STEPS, int(num_steps))
    readout = readout or traced.readout
    if readout is not None:
        if readout not in READOUTS:
            raise SpikedeployError(f"unknown readout {readout!r} ({'|'.join(READOUTS)})")
        extra[meta.READOUT] = readout
    gamma = _check_threshold_scale(threshold_scale)
    if gamma != 1.0:
        for node in nodes.values():
            if isinstance(node, SPIKING_NODES):
                node.v_threshold = np.asarray(node.v_threshold, np.float64) * gamma
        extra[meta.THRESHOLD_SCALE] = gamma
    if strict_nir:
        make_strict(nodes, edges, dt)
        extra[meta.STRICT_NIR] = 1
    nodes["output"] = nir.Output(output_type={"output": np.array(traced.output_shape)})
    graph_meta = _graph_metadata(dt, extra)
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph_meta)
    except (ValueError, TypeError, KeyError, AssertionError):
        # NIR's type inference does not cover every layout (e.g. Affine on a (C, H, W) input);
        # spikedeploy's lowering checks every shape itself.
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph_meta, type_check=False)


def _explain_failure(name, module, in_shape, exc):
    """Why a layer failed while the model ran, when a refusal says it better."""
    if type(module) in REFUSED:
        return UnsupportedError(name, "type", f"{type(module).__name__} cannot be exported to NIR: "
                                f"{REFUSED[type(module)]}")
    return explain_failure(name, module, in_shape, exc)


def _is_leaf(module: nn.Module) -> bool:
    """A layer the exporter converts as a whole (its inside is not traced)."""
    return (type(module) in CONVERTERS or type(module) in REFUSED or not list(module.children())
            or isinstance(module, snntorch.SpikingNeuron))


SPIKING_NODES = (nir.IF, nir.LIF, nir.CubaLIF)


def _check_threshold_scale(gamma) -> float:
    try:
        gamma = float(gamma)
    except (TypeError, ValueError):
        raise SpikedeployError(f"threshold scale must be a number, got {gamma!r}")
    if not (np.isfinite(gamma) and gamma > 0):
        raise SpikedeployError(f"threshold scale must be a positive number, got {gamma}")
    return gamma


def export_checkpoint(checkpoint_path, threshold_scale: float = 1.0,
                      strict_nir: bool = False) -> nir.NIRGraph:
    """Load a checkpoint directory and export it with its run settings as metadata."""
    checkpoint = load_checkpoint(checkpoint_path)
    config = checkpoint.config
    metadata = {
        meta.NUM_STEPS: int(config["num_steps"]),
        meta.ENCODING: config["encoding"],
        meta.DATASET: str(config.get("dataset", "digits")),
        meta.SEED: int(config["seed"]),
        meta.ARCHITECTURE: str(config["architecture"]),
    }
    if isinstance(config.get("frames"), dict):       # a tonic dataset's frame options
        import json
        metadata[meta.FRAMES] = json.dumps(config["frames"], sort_keys=True)
    if isinstance(config.get("test_accuracy"), numbers.Real):
        metadata[meta.SNNTORCH_ACCURACY] = float(config["test_accuracy"])
    return export_model(checkpoint.model, input_shape_of(config), dt=config["dt"],
                        metadata=metadata, readout=config.get("readout", DEFAULT_READOUT),
                        threshold_scale=threshold_scale, strict_nir=strict_nir,
                        num_steps=int(config["num_steps"]))


def write_nir(graph: nir.NIRGraph, path) -> Path:
    """Write ``graph`` to ``path`` atomically: the old file or the new one, never half of one."""
    return write_bytes(require_folder(path), in_memory(lambda buf: nir.write(buf, graph)))


def _graph_metadata(dt: float, extra: dict | None) -> dict:
    metadata = {
        meta.DT: dt,
        meta.READOUT: DEFAULT_READOUT,
        meta.EXPORTER: f"spikedeploy {__version__}, snntorch {snntorch.__version__}",
    }
    for key, value in (extra or {}).items():
        _check_metadata_value(key, value)
        if key == meta.DT and float(value) != dt:
            raise SpikedeployError(f"metadata '{meta.DT}' = {value} contradicts dt = {dt}")
        metadata[key] = value
    if meta.NUM_STEPS in metadata:
        steps = metadata[meta.NUM_STEPS]
        if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
            raise SpikedeployError(f"metadata '{meta.NUM_STEPS}' must be a positive integer, "
                                   f"got {steps!r}")
        metadata[meta.NUM_STEPS] = int(steps)
    if meta.ENCODING in metadata and metadata[meta.ENCODING] not in ENCODINGS:
        raise SpikedeployError(f"metadata '{meta.ENCODING}' must be one of "
                               f"{', '.join(ENCODINGS)}, got {metadata[meta.ENCODING]!r}")
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
