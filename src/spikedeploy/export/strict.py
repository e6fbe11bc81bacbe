"""``--strict-nir``: the same network with NIR primitives only, for tools that read no metadata.

Rewritten in place, node by node (the spiking node keeps its name, so its
spikes are recorded and compared under the layer's name):

* reset "none": the neuron's voltage as an LI (or I) node ``<name>_mem``
  feeding ``<name>``, a Threshold node (z = v > threshold);
* snnTorch's delayed subtractive reset (``spikedeploy.reset_delay`` 1,
  ``reset_in_step`` 0): the same plus ``<name>_reset``, a Scale(-threshold)
  from the spikes back into ``<name>_mem`` -- a recurrent edge, so the
  voltage gets -threshold in the step after a spike: exactly
  ``mem = beta * mem + input - reset * threshold``;
* a CubaLIF (snnTorch's Synaptic) with either: the synaptic current as an LI
  ``<name>_syn`` (``syn = alpha * syn + input``) feeding ``<name>_mem``
  (``mem = beta * mem + syn``) -- a feedback into a CubaLIF would enter its
  synaptic current, not its voltage;
* ``spikedeploy.v_init`` on IF/LIF layers: a clock construction
  (:func:`strict_initial_voltage`).

A reset NIR has no form for (in-step subtraction, a delayed zero, snnTorch's
reset_delay=False), graded spikes and TSM gains are refused, naming the node.
Float sums associate differently here (input + feedback is summed before the
decay is added), so in rare ties a spike can differ from the metadata form.
"""
from __future__ import annotations

import nir
import numpy as np

from .. import metadata as meta
from ..errors import UnsupportedError
from .neuron_nodes import leaky_node, step_decay, unit_gain_r

CLOCK_DRIVE, CLOCK, CLOCK_LATCH = "strict_clock_drive", "strict_clock", "strict_clock_latch"
_NEURONS = (nir.LIF, nir.IF, nir.CubaLIF)


def make_strict(nodes: dict, edges: list, dt: float) -> None:
    """Rewrite every neuron carrying reset/spike metadata, then the initial voltages."""
    for name, node in list(nodes.items()):
        node_meta = dict(getattr(node, "metadata", None) or {})
        if meta.TSM_GAIN in node_meta:
            raise UnsupportedError(name, meta.TSM_GAIN, "TSM's per-step gains have no pure-NIR "
                                   "form; export without strict NIR (the gains are node metadata "
                                   "that spikedeploy's simulators honour)")
        if meta.SPIKE_VALUE in node_meta:
            raise UnsupportedError(name, meta.SPIKE_VALUE, "graded spikes have no NIR field (NIR "
                                   "spikes are 1); export without strict NIR")
        if isinstance(node, _NEURONS) and _reset(node_meta) != ("zero", 0, 1):
            _decompose(name, node, node_meta, nodes, edges, dt)
    strict_initial_voltage(nodes, edges, dt)


def _reset(node_meta: dict) -> tuple:
    return (str(meta.metadata_value(node_meta, meta.RESET_MODE, "zero")),
            int(meta.metadata_value(node_meta, meta.RESET_DELAY, 0)),
            int(meta.metadata_value(node_meta, meta.RESET_IN_STEP, 1)))


def _decompose(name, node, node_meta, nodes, edges, dt) -> None:
    mode, delay, in_step = _reset(node_meta)
    feedback = (mode, delay, in_step) == ("subtract", 1, 0)
    if mode != "none" and not feedback:
        what = {("subtract", 0, 1): "subtractive reset in the spike's step",
                ("subtract", 1, 1): "snnTorch's reset_delay=False subtraction",
                ("zero", 1, 0): "a delayed reset to zero (the step after a spike ends at 0)"}
        raise UnsupportedError(name, meta.RESET_MODE, f"{what.get((mode, delay, in_step), mode)} "
                               "has no pure-NIR form (NIR neurons reset to v_reset in the spike's "
                               "step); export without strict NIR")
    if node_meta.get(meta.V_INIT) is not None:
        raise UnsupportedError(name, meta.V_INIT, "an initial voltage on a decomposed neuron has "
                               "no strict NIR form")
    threshold = np.asarray(node.v_threshold, np.float64)
    mem = f"{name}_mem"
    first = mem
    if isinstance(node, nir.CubaLIF):
        syn = f"{name}_syn"
        nodes[syn] = leaky_node(syn, 1.0 - dt / np.asarray(node.tau_syn, np.float64), None, dt)
        nodes[mem] = leaky_node(mem, 1.0 - dt / np.asarray(node.tau_mem, np.float64), None, dt)
        internal = [(syn, mem)]
        first = syn
    else:
        nodes[mem] = leaky_node(mem, step_decay(node, dt), None, dt)
        internal = []
    nodes[name] = nir.Threshold(threshold=threshold)
    edges[:] = [(a, first if b == name else b) for a, b in edges]
    edges += internal + [(mem, name)]
    if feedback:
        nodes[f"{name}_reset"] = _reset_synapse(threshold, node)
        edges += [(name, f"{name}_reset"), (f"{name}_reset", mem)]


def _reset_synapse(threshold: np.ndarray, node) -> nir.NIRNode:
    """The recurrent synapse of weight -threshold: a diagonal Linear for a 1-D layer (the
    form other NIR tools read most widely), a Scale for a layer of channels (a Linear
    acts on a vector)."""
    shape = np.shape(np.asarray(node.v_threshold))
    if len(shape) == 1:
        return nir.Linear(weight=np.diag(-np.broadcast_to(threshold, shape)))
    return nir.Scale(scale=-threshold)


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

    Only for neurons with no synaptic state (IF, LIF) of 1-D shape.
    """
    targets = []
    for name, node in list(nodes.items()):
        node_meta = dict(getattr(node, "metadata", None) or {})
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
    nodes[CLOCK] = nir.IF(r=unit_gain_r((1,), dt), v_threshold=np.full(1, 0.5), v_reset=np.zeros(1))
    nodes[CLOCK_LATCH] = nir.I(r=unit_gain_r((1,), dt, gain=-2.0))
    edges += [(inputs[0], CLOCK_DRIVE), (CLOCK_DRIVE, CLOCK), (CLOCK, CLOCK_LATCH),
              (CLOCK_LATCH, CLOCK)]
    for name, weight in targets:
        nodes[f"strict_v0_{name}"] = nir.Linear(weight=weight)
        edges += [(CLOCK, f"strict_v0_{name}"), (f"strict_v0_{name}", name)]
