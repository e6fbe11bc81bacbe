"""Conventions: what a NIR file leaves out, filled in the way its producer's simulator runs it.

A NIR file holds continuous-time equations and no time step, threshold
comparison, reset mode, spike count per step or decay form; each tool fills
the gaps its own way (measured in ``tests/ir/test_foreign_producers.py``,
see :mod:`spikedeploy.ir.producers`). A :class:`Convention` names one such
way; :func:`apply_convention` rewrites a graph into spikedeploy's single
discrete-time definition (:mod:`spikedeploy.ir.semantics`: forward Euler at
the graph's ``spikedeploy.dt``, plus per-node reset/threshold/spike-count
metadata) so every backend runs what the producer ran. The rewrite keeps
each neuron's per-step coefficients -- decays du, dv, input gain g, bias b
-- exactly as the producer computes them, and re-expresses them as NIR
fields at dt (tau' = dt/dv, r' = g tau'/dt, ...).

========== ======== ====================================================== ======= =========== ========
convention dt       per-step coefficients (d = decay, g = input gain)       fires   reset       spikes
========== ======== ====================================================== ======= =========== ========
nir        file     NIR's equations, forward Euler: d = dt/tau, g = dt r/tau v > th  to v_reset  one
snntorch   tau/r    same (the exporter writes r = tau/dt, dt = 1e-4)        v > th  subtract,   one
                                                                                    one step late
sinabs     1 step   IAF: v += r x; LIF: d = 1 - exp(-1/tau), g = d r        v >= th subtract    floor(v/th)
                    (tau in steps, norm_input=True); ExpLeak (LI): g = r
sinabs-    1 step   as sinabs                                              v >= th subtract    one
single
norse      1e-3**2  LIFBoxCell/LIFCell: Norse writes tau = dt*tau_mem, so   v > th  to v_reset  one
                    d = dt**2/tau at its default dt = 1e-3; LIFCell adds
                    its input to the current (g = d_mem); IAFCell: v += x
rockpool   from r   d = 1 - exp(-dt/tau); LIF g = 1; CubaLIF                v >= th subtract    floor(v/th)
                    g = exp(-dt/tau_syn) (r = tau exp(-dt/tau)/dt gives dt)
lava-dl    1 step   Loihi CUBA with tau in steps: d = 1/tau, g = 1          v > th  to v_reset  one
========== ======== ====================================================== ======= =========== ========

``auto`` picks: the file's own metadata for spikedeploy's files; the
producer :func:`~spikedeploy.ir.producers.identify_producer` recognises;
else ``nir``. A ``--dt`` given by the user replaces the convention's step.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import nir
import numpy as np

from ..errors import SpikedeployError
from ..metadata import (CONVENTION, CONVENTION_CHOICES, CONVENTION_REASON, DT, EXPORTER,
                        FIRE_AT_THRESHOLD, RESET_DELAY, RESET_IN_STEP, RESET_MODE,
                        SPIKES_PER_STEP, WRITTEN_FOR, metadata_value)
from .producers import as_float_array, identify_producer, rockpool_dt, snntorch_dt

NORSE_DT = 1e-3            # Norse's default time step; its exporter writes tau = dt * tau_mem

# (du, dv, g, b) per step for one node at step dt; None: NIR's own equations
Coefficients = Callable[[object, float], tuple]


_a = as_float_array


@dataclass(frozen=True)
class Convention:
    name: str
    summary: str
    step: Callable[[dict], float | None]       # the dt it implies from the flat nodes
    coefficients: dict = field(default_factory=dict)   # NIR type -> Coefficients
    fire_at_threshold: int = 0
    reset_mode: str = "zero"
    reset_delay: int = 0
    reset_in_step: int = 1
    spikes_per_step: str = "one"
    assumes: str = ""          # what is assumed that a file of this producer does not say

    def neuron_metadata(self) -> dict:
        return {RESET_MODE: self.reset_mode, RESET_DELAY: self.reset_delay,
                RESET_IN_STEP: self.reset_in_step, FIRE_AT_THRESHOLD: self.fire_at_threshold,
                SPIKES_PER_STEP: self.spikes_per_step}


# --- coefficient rules ------------------------------------------------------------------

def _exp_decay(tau, dt):
    return -np.expm1(-dt / _a(tau))


def _sinabs_lif(n, dt):
    d = _exp_decay(n.tau, dt)
    return 1.0, d, d * _a(n.r), d * _a(n.v_leak)


def _sinabs_import_lif(n, dt):
    return 1.0, _exp_decay(n.tau, dt), 1.0, 0.0         # norm_input=False: v = a v + x


def _sinabs_li(n, dt):
    d = _exp_decay(n.tau, dt)
    return 1.0, d, _a(n.r), 0.0                         # ExpLeak, norm_input=False: v = a v + x


def _rockpool_li(n, dt):
    d = _exp_decay(n.tau, dt)
    return 1.0, d, 1.0 - d, 0.0                         # ExpSynTorch: i = exp(-dt/tau) (i + x)


def _norse_lif(n, dt):
    d = dt / _a(n.tau)
    return 1.0, d, d * _a(n.r), d * _a(n.v_leak)


def _norse_cuba(n, dt):
    dm, ds = dt / _a(n.tau_mem), dt / _a(n.tau_syn)
    return ds, dm, dm * _a(n.r), dm * _a(n.v_leak)     # i += x, v += dm * (i - v)


def _unit_if(n, dt):
    return 1.0, 0.0, _a(n.r), 0.0                       # v += r x per step


def _rockpool_lif(n, dt):
    return 1.0, _exp_decay(n.tau, dt), 1.0, 0.0         # v = exp(-dt/tau) v + x (+ bias)


def _rockpool_cuba(n, dt):
    ds = _exp_decay(n.tau_syn, dt)
    return ds, _exp_decay(n.tau_mem, dt), 1.0 - ds, 0.0   # i = exp(-dt/tau_syn) (i + x)


def _lavadl_cuba(n, dt):
    return 1.0 / _a(n.tau_syn), 1.0 / _a(n.tau_mem), 1.0, 0.0


def _lavadl_lif(n, dt):
    return 1.0, 1.0 / _a(n.tau), 1.0, 0.0


def _first(values) -> float | None:
    values = [v for v in values if v is not None]
    return values[0] if values and all(np.isclose(v, values[0], rtol=1e-4) for v in values) \
        else None


def _neurons(nodes: dict):
    return [v for v in nodes.values() if isinstance(v, (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI))]


def _snntorch_step(nodes):
    return _first([snntorch_dt(getattr(v, "tau", getattr(v, "tau_mem", None)), v.r)
                   for v in _neurons(nodes)])


def _rockpool_step(nodes):
    return _first([rockpool_dt(getattr(v, "tau", getattr(v, "tau_mem", None)), v.r)
                   for v in _neurons(nodes)])


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("nir", "NIR's equations: forward Euler at the file's dt, fire on v > v_threshold, "
               "reset to v_reset in the spike's step, one spike per step", lambda nodes: None),
    Convention("snntorch", "snnTorch: dt = tau/r (its exporter's 1e-4), beta = 1 - dt/tau, fire "
               "on v > threshold, Leaky's default reset: subtract, one step late",
               _snntorch_step, reset_mode="subtract", reset_delay=1, reset_in_step=0,
               assumes="snnTorch's exporter drops reset_mechanism and reset_delay: assumed "
               "Leaky/Synaptic's defaults (subtract, delayed); --convention nir runs reset "
               "'zero' without delay"),
    Convention("sinabs", "sinabs: one time step per step (tau in steps), IAF v += x, LIF "
               "v = a v + (1-a) x with a = exp(-1/tau), fire on v >= threshold, MultiSpike "
               "floor(v/threshold) spikes per step, MembraneSubtract reset",
               lambda nodes: 1.0, {nir.LIF: _sinabs_lif, nir.LI: _sinabs_li},
               fire_at_threshold=1, reset_mode="subtract", spikes_per_step="multi",
               assumes="sinabs writes the same file for every spike function and reset: "
               "assumed its defaults MultiSpike and MembraneSubtract (--convention "
               "sinabs-single for SingleSpike); min_v_mem and tau_syn are not exported"),
    Convention("sinabs-single", "sinabs with SingleSpike: as 'sinabs' but one spike per step",
               lambda nodes: 1.0, {nir.LIF: _sinabs_lif, nir.LI: _sinabs_li},
               fire_at_threshold=1, reset_mode="subtract",
               assumes="sinabs' SingleSpike with MembraneSubtract assumed"),
    Convention("sinabs-import", "how sinabs.from_nir runs a file: tau in steps, "
               "v = exp(-1/tau) v + x (norm_input=False), v >= threshold, MultiSpike, "
               "MembraneSubtract", lambda nodes: 1.0,
               {nir.LIF: _sinabs_import_lif, nir.LI: _sinabs_import_lif},
               fire_at_threshold=1, reset_mode="subtract", spikes_per_step="multi"),
    Convention("norse", "Norse: its exporter writes tau = dt*tau_mem, so its Euler step is "
               f"reproduced at dt = {NORSE_DT:g}**2; LIFCell adds each input to the current; "
               "IAFCell v += x; fire on v > v_th, reset to v_reset",
               lambda nodes: NORSE_DT ** 2,
               {nir.LIF: _norse_lif, nir.LI: _norse_lif, nir.CubaLIF: _norse_cuba,
                nir.CubaLI: _norse_cuba, nir.IF: _unit_if, nir.I: _unit_if},
               assumes=f"assumed Norse's default dt = {NORSE_DT:g} (pass --dt dt_norse**2 "
               "otherwise); v_reset is not exported (0 assumed)"),
    Convention("rockpool", "Rockpool: dt solved from r = tau exp(-dt/tau)/dt, exp(-dt/tau) "
               "decays, unit input gain (LIFTorch: i = exp(-dt/tau_syn)(i + x)), fire on "
               "v >= threshold, floor(v/threshold) spikes, subtractive reset",
               _rockpool_step,
               {nir.LIF: _rockpool_lif, nir.LI: _rockpool_li, nir.CubaLIF: _rockpool_cuba,
                nir.CubaLI: _rockpool_cuba, nir.IF: _unit_if},
               fire_at_threshold=1, reset_mode="subtract", spikes_per_step="multi",
               assumes="Rockpool does not export the neuron bias (0 assumed) nor "
               "max_spikes_per_dt (unbounded assumed)"),
    Convention("lava-dl", "lava-dl / Loihi CUBA: one time step per step, du = 1/tau_syn, "
               "dv = 1/tau_mem, unit input gain, fire on v > threshold, reset to 0",
               lambda nodes: 1.0,
               {nir.CubaLIF: _lavadl_cuba, nir.CubaLI: _lavadl_cuba, nir.LIF: _lavadl_lif,
                nir.LI: _lavadl_lif, nir.IF: _unit_if}),
)}
CHOICES = ("auto",) + tuple(CONVENTIONS)
assert CHOICES == CONVENTION_CHOICES, "metadata.CONVENTION_CHOICES lists the conventions"


# --- rewriting a node into NIR's Euler form at dt ---------------------------------------------

def _as_euler(node, coeffs: tuple, dt: float):
    """The node with fields whose forward-Euler coefficients at ``dt`` are ``coeffs``."""
    du, dv, g, b = (_a(c) for c in coeffs)
    if isinstance(node, (nir.IF, nir.I)):
        fields = {"r": np.broadcast_to(g / dt, np.shape(node.r)).copy()}
    elif isinstance(node, (nir.LIF, nir.LI)):
        tau = dt / dv
        fields = {"tau": tau, "r": g * tau / dt, "v_leak": b * tau / dt}
    else:                              # CubaLIF, CubaLI: (dt/tau_mem) r = 1, w_in carries g
        tau_mem, tau_syn = dt / dv, dt / du
        fields = {"tau_mem": tau_mem, "tau_syn": tau_syn, "r": tau_mem / dt,
                  "w_in": g * tau_syn / dt, "v_leak": b * tau_mem / dt}
    shape = np.broadcast_shapes(*(np.shape(v) for v in fields.values()),
                                *(np.shape(getattr(node, k)) for k in ("v_threshold", "v_reset")
                                  if hasattr(node, k)))
    new = copy.copy(node)
    for key, value in fields.items():
        setattr(new, key, np.broadcast_to(value, shape).astype(np.float64))
    for key in ("v_threshold", "v_reset"):
        if hasattr(node, key):
            setattr(new, key, np.broadcast_to(_a(getattr(node, key)), shape).astype(np.float64))
    return new


def _rewrite(graph: nir.NIRGraph, convention: Convention, dt: float | None) -> nir.NIRGraph:
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            node = _rewrite(node, convention, dt)
        elif isinstance(node, (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI, nir.IF, nir.I)):
            rule = convention.coefficients.get(type(node))
            if rule is not None and dt is not None:
                with np.errstate(all="ignore"):    # bad values are check's to report
                    node = _as_euler(node, rule(node, dt), dt)
            else:
                node = copy.copy(node)
            if isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
                node.metadata = {**convention.neuron_metadata(),     # the file's own keys win
                                 **(getattr(node, "metadata", None) or {})}
        nodes[name] = node
    out = copy.copy(graph)
    out.nodes = nodes
    return out


# --- choosing and applying -----------------------------------------------------------------

@dataclass
class Choice:
    """The convention a graph runs under and why (recorded in every report)."""
    name: str              # a key of CONVENTIONS, or "spikedeploy" (the file's own metadata)
    reason: str
    assumes: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason, "assumes": self.assumes}


def _flat_nodes(graph) -> dict:
    from .graph import inline_graph
    try:
        return inline_graph(graph).nodes
    except Exception:      # noqa: BLE001 - a malformed graph is check's to report
        return dict(graph.nodes)


def choose_convention(graph: nir.NIRGraph, requested: str = "auto") -> Choice:
    meta = graph.metadata or {}
    if metadata_value(meta, CONVENTION) is not None:       # already applied
        applied = str(metadata_value(meta, CONVENTION))
        if requested not in ("auto", applied):
            raise SpikedeployError(f"--convention {requested}: this graph was already read "
                                   f"under the {applied} convention")
        return Choice(applied, str(metadata_value(meta, CONVENTION_REASON, "")))
    if requested not in CHOICES:
        raise SpikedeployError(f"--convention: unknown {requested!r} (one of {', '.join(CHOICES)})")
    if requested != "auto":
        return Choice(requested, "given with --convention", CONVENTIONS[requested].assumes)
    if metadata_value(meta, WRITTEN_FOR) == "sinabs":
        return Choice("sinabs-import", "written by spikedeploy for sinabs.from_nir")
    if EXPORTER in meta or any(str(k).startswith("spikedeploy.") for k in meta):
        return Choice("spikedeploy", "spikedeploy's metadata says how to run it")
    producer = identify_producer(_flat_nodes(graph), meta)
    if producer in CONVENTIONS:
        return Choice(producer, f"auto: looks written by {producer} "
                      f"({PRODUCER_EVIDENCE[producer]})", CONVENTIONS[producer].assumes)
    if producer:
        return Choice("nir", f"auto: could be written by {producer}, which run it differently: "
                      "NIR's equations used; pass --convention to choose")
    return Choice("nir", "auto: producer not recognised: NIR's own equations")


PRODUCER_EVIDENCE = {
    "snntorch": "r = tau/dt with a round dt, as snnTorch's exporter writes",
    "sinabs": "unit r with tau in time steps, or IF(r = 1) with a time axis in the Input type",
    "norse": "unit r with tau written as dt*tau_mem, or CubaLIF with r = w_in = 1",
    "rockpool": "Rockpool's node names or r = tau exp(-dt/tau)/dt",
}


def apply_convention(graph: nir.NIRGraph, requested: str = "auto",
                     dt: float | None = None) -> tuple[nir.NIRGraph, Choice]:
    """The graph in spikedeploy's semantics under the chosen convention, with its dt and the
    choice recorded in its metadata (applying it again changes nothing)."""
    choice = choose_convention(graph, requested)
    meta = dict(graph.metadata or {})
    if CONVENTION in meta:
        if dt is not None and metadata_value(meta, DT) != dt:
            raise SpikedeployError("--dt cannot change a graph already converted at another dt")
        return graph, choice
    if choice.name == "spikedeploy":
        out = copy.copy(graph)
    else:
        convention = CONVENTIONS[choice.name]
        own = convention.step(_flat_nodes(graph))
        if dt is not None and own is not None and not np.isclose(dt, own, rtol=1e-6):
            choice.assumes = "; ".join(filter(None, [choice.assumes, (
                f"--dt {dt:g} replaces the {choice.name} convention's step {own:g}: the "
                "producer's simulator does not run at this step")]))
        if dt is None:
            dt = metadata_value(meta, DT)
        if dt is None:
            dt = own
        valid = isinstance(dt, (int, float, np.integer, np.floating)) and \
            not isinstance(dt, bool) and bool(np.isfinite(dt)) and dt > 0
        out = _rewrite(graph, convention, float(dt) if valid else None)
    if dt is not None:
        meta[DT] = dt
    meta[CONVENTION], meta[CONVENTION_REASON] = choice.name, choice.reason
    out.metadata = meta
    return out, choice


def convention_notes(original: nir.NIRGraph, choice: Choice | None,
                     dt: float | None = None) -> tuple[str, list]:
    """(likely producer, notes): what the file does not say and what was assumed for it.
    Commands print these as warnings, so no foreign file runs on silent assumptions."""
    from .producers import Note, producer_notes
    if choice is None or choice.name == "spikedeploy":
        return ("spikedeploy" if choice else ""), []
    nodes = _flat_nodes(original)
    producer = identify_producer(nodes, original.metadata or {})
    if choice.name != "nir":
        notes = [Note("<graph>", "convention", f"read as {choice.name} "
                      f"({choice.reason}): {CONVENTIONS[choice.name].summary}", producer)]
        if choice.assumes:
            notes.append(Note("<graph>", "assumed", choice.assumes, producer))
        return producer, notes
    if dt is None:
        dt = metadata_value(original.metadata or {}, DT)
    _, notes = producer_notes(nodes, original.metadata or {}, dt)
    if producer and notes:
        notes.insert(0, Note("<graph>", "convention", choice.reason, producer))
    return producer, notes


def recorded_convention(metadata: dict | None) -> dict:
    """The convention a graph was read under and why, as reports record it."""
    name = metadata_value(metadata, CONVENTION)
    if name is None:
        return {"name": "spikedeploy", "reason": "spikedeploy's metadata says how to run it"}
    return {"name": str(name), "reason": str(metadata_value(metadata, CONVENTION_REASON, ""))}


def describe_convention(metadata: dict | None) -> str:
    c = recorded_convention(metadata)
    return f"convention {c['name']} ({c['reason']})"
