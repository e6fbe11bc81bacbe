"""snnTorch ``nn.Sequential`` -> NIR graph, and writing it to disk.

The graph is a chain::

    input -> <layer 1> -> ... -> <layer n> -> output

with nodes named as :func:`spikedeploy.models.sequential.layer_names` names
the Sequential's children (fc1, lif1, fc2, lif2 for the reference MLP), the
same names :func:`~spikedeploy.models.sequential.run_snntorch` uses for its
spike trains. Per-layer conversion rules are in :mod:`.layers`.

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
from ..fileio import write_atomically
from ..metadata import DEFAULT_DT, DEFAULT_READOUT, ENCODINGS, READOUTS
from ..models.checkpoint import input_shape_of, load_checkpoint
from ..models.sequential import layer_names
from .layers import (BATCHNORMS, INPUT, _unit_gain_r, convert_block, convert_with_batchnorm,
                     step_decay)


def export_model(model: nn.Sequential, input_shape, dt: float = DEFAULT_DT,
                 metadata: dict | None = None, readout: str | None = None,
                 threshold_scale: float = 1.0, strict_nir: bool = False) -> nir.NIRGraph:
    """Convert an snnTorch ``nn.Sequential`` to a NIR graph (see module docstring).

    ``input_shape`` excludes batch and time, e.g. ``(64,)``. ``metadata``
    adds graph-level entries (e.g. ``spikedeploy.num_steps``); it may not
    contradict ``dt``. ``readout``: how the output is read (``spike_count``,
    ``mean`` or ``last_step``; graph metadata ``spikedeploy.readout``).
    ``threshold_scale``: threshold guidance gamma applied at export (every
    spiking node's v_threshold x gamma; recorded as
    ``spikedeploy.threshold_scale``). ``strict_nir``: express everything
    with NIR primitives alone -- initial voltages (IMP) become the clock
    construction of :func:`strict_initial_voltage`; mechanisms with no
    pure-NIR form (TSM gains, subtractive reset) are refused.
    """
    dt = _check_dt(dt)
    input_shape = _shape(input_shape)
    names = layer_names(model)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges: list[tuple[str, str]] = []
    sources, shape = ["input"], input_shape     # the nodes whose sum is the current value
    items = list(zip(names, model))
    i = 0
    while i < len(items):
        name, module = items[i]
        follower = items[i + 1][1] if i + 1 < len(items) else None
        if isinstance(module, (nn.Conv2d, nn.Linear)) and isinstance(follower, BATCHNORMS):
            block = convert_with_batchnorm(name, module, follower, shape, dt)
            i += 2
        else:
            block = convert_block(name, module, shape, dt)
            i += 1
        for node_name, node in block.nodes.items():
            if node_name in nodes:
                raise SpikedeployError(f"layer '{name}' produces node '{node_name}', which exists "
                                       "already; name the layers explicitly")
            nodes[node_name] = node
        for a, b in block.edges:
            edges += [(src, b) for src in sources] if a == INPUT else [(a, b)]
        sources = [src for out in block.outputs for src in (sources if out == INPUT else [out])]
        shape = block.shape
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges += [(src, "output") for src in sources]
    extra = dict(metadata or {})
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
        strict_initial_voltage(nodes, edges, dt)
        extra[meta.STRICT_NIR] = 1
    graph_meta = _graph_metadata(dt, extra)
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph_meta)
    except (ValueError, TypeError, KeyError, AssertionError):
        # NIR's type inference does not cover every layout (e.g. Affine on a (C, H, W) input);
        # spikedeploy's lowering checks every shape itself.
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph_meta, type_check=False)


SPIKING_NODES = (nir.IF, nir.LIF, nir.CubaLIF)


def _check_threshold_scale(gamma) -> float:
    try:
        gamma = float(gamma)
    except (TypeError, ValueError):
        raise SpikedeployError(f"threshold scale must be a number, got {gamma!r}")
    if not (np.isfinite(gamma) and gamma > 0):
        raise SpikedeployError(f"threshold scale must be a positive number, got {gamma}")
    return gamma


CLOCK_DRIVE, CLOCK, CLOCK_LATCH = "strict_clock_drive", "strict_clock", "strict_clock_latch"


def strict_initial_voltage(nodes: dict, edges: list, dt: float) -> None:
    """Replace ``spikedeploy.v_init`` metadata by a pure-NIR construction (in place).

    A clock neuron fires once, at each sample's first step, and feeds every
    such neuron layer through a Linear whose weights add the initial voltage:

    * ``strict_clock_drive``: Affine from the input, weights 0, bias 1 (a
      constant current of 1 into the clock);
    * ``strict_clock``: IF (threshold 0.5, reset to 0) -- fires at step 0;
    * ``strict_clock_latch``: I with gain -2 fed by the clock: its voltage is
      -2 from step 0 on, and it feeds back into the clock (a recurrent edge,
      so the clock reads its value of the previous step): the clock's voltage
      goes 1 (spike), -1, -2, ... and never fires again;
    * ``strict_v0_<layer>``: Linear (size, 1) from the clock into the layer,
      weight beta * v0 (beta = 1 for IF: the exporter writes unit input gain),
      so the layer's first-step voltage is that of a neuron started at v0 (same
      value up to float rounding of the sum).

    Only for neurons with no synaptic state (IF, LIF) of 1-D shape. Graphs
    with TSM gains or subtractive reset have no pure-NIR form and are refused.
    """
    targets = []
    for name, node in list(nodes.items()):
        node_meta = dict(getattr(node, "metadata", None) or {})
        if meta.TSM_GAIN in node_meta:
            raise UnsupportedError(name, meta.TSM_GAIN, "TSM's per-step gains have no pure-NIR "
                                   "form; export without strict NIR (the gains are node metadata "
                                   "that spikedeploy's simulators honour)")
        if str(node_meta.get(meta.RESET_MODE, "zero")) == "subtract":
            raise UnsupportedError(name, meta.RESET_MODE, "subtractive reset has no pure-NIR form "
                                   "(NIR neurons reset to v_reset); export without strict NIR")
        if meta.V_INIT not in node_meta:
            continue
        if not isinstance(node, (nir.IF, nir.LIF)):
            raise UnsupportedError(name, meta.V_INIT, f"strict NIR initial voltage needs an IF or "
                                   f"LIF node, not {type(node).__name__}")
        v0 = np.asarray(node_meta[meta.V_INIT], np.float64)
        if v0.ndim != 1:
            raise UnsupportedError(name, meta.V_INIT, f"strict NIR initial voltage supports 1-D "
                                   f"layers only; this one has shape {v0.shape}")
        weight = (step_decay(node, dt) * v0).reshape(-1, 1)
        targets.append((name, weight))
        del node_meta[meta.V_INIT]
        node.metadata = node_meta
    if not targets:
        return
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    in_size = int(np.prod(np.asarray(nodes[inputs[0]].input_type["input"])))
    one = np.ones(1)
    nodes[CLOCK_DRIVE] = nir.Affine(weight=np.zeros((1, in_size)), bias=one.copy())
    nodes[CLOCK] = nir.IF(r=_unit_gain_r((1,), dt), v_threshold=np.full(1, 0.5), v_reset=np.zeros(1))
    nodes[CLOCK_LATCH] = nir.I(r=_unit_gain_r((1,), dt, gain=-2.0))
    edges += [(inputs[0], CLOCK_DRIVE), (CLOCK_DRIVE, CLOCK), (CLOCK, CLOCK_LATCH),
              (CLOCK_LATCH, CLOCK)]
    for name, weight in targets:
        nodes[f"strict_v0_{name}"] = nir.Linear(weight=weight)
        edges += [(CLOCK, f"strict_v0_{name}"), (f"strict_v0_{name}", name)]


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
    if isinstance(config.get("test_accuracy"), numbers.Real):
        metadata[meta.SNNTORCH_ACCURACY] = float(config["test_accuracy"])
    return export_model(checkpoint.model, input_shape_of(config), dt=config["dt"],
                        metadata=metadata, readout=config.get("readout", DEFAULT_READOUT),
                        threshold_scale=threshold_scale, strict_nir=strict_nir)


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
