"""Graphs written by other tools: what their NIR files mean that the file does not say.

A NIR file holds continuous-time equations and no dt, reset mode, spike
count or threshold comparison. spikedeploy reads every file with one
discrete-time definition (:mod:`spikedeploy.ir.semantics`: forward Euler at
dt, one spike per step on ``v > v_threshold``, reset to ``v_reset`` in the
spike's step). Other producers simulate their networks differently and write
their parameters with their own conventions. Measured with sinabs 3.1.3,
Norse 1.1.0 and Rockpool 3.1.0 (tests/ir/test_foreign_producers.py runs each
library against spikedeploy on the same network and input):

=========== ======================================================================
producer    what its own simulator does that its NIR file does not carry
=========== ======================================================================
snnTorch    ``export_to_nir`` writes r = tau/dt with dt hard-coded to 1e-4 (no dt in
            the file) and drops reset_mechanism/reset_delay: only reset "zero"
            without delay is reproduced (REFERENCE.md section 3).
sinabs      IAF -> ``IF(r=1)``: v += x per step (dt = 1). LIF -> ``LIF(tau, r=1)``
            with tau in steps: v = a*v + (1-a)*x, a = exp(-1/tau) (norm_input=True;
            norm_input=False, gain 1, writes the same file; tau_syn is dropped).
            Default spike_fn MultiSpike: floor(v/threshold) spikes per step
            (v >= threshold); default reset MembraneSubtract (v -= spikes*threshold);
            min_v_mem is not exported. The Input type keeps the time dimension
            (nirtorch with ignore_dims=[0] on (batch, time, ...) data). Conv2d is
            written with input_shape=None (and None Conv2d/SumPool2d/Flatten
            types), which nir 1.0.8 cannot write to a file.
Norse       LIFBoxCell -> ``LIF(tau=dt/tau_mem_inv, r=1)``: Norse 1.1 writes
            tau = dt_norse * tau_mem (1e-5 s for the 10 ms default at dt 1e-3),
            so its Euler step v += dt/tau*(v_leak - v + x) is reproduced at
            dt = dt_norse**2. LIFCell -> ``CubaLIF(r=1, w_in=1)``: Norse adds each
            input to the current (i += x); NIR's CubaLIF integrates
            w_in*x*dt/tau_syn, so the file lacks w_in = tau_syn/dt and no dt
            reproduces it. IAFCell -> ``IF(r=1)``: v += x (dt = 1). v_reset is not
            exported (NIR's default 0). Fires on v > v_th, resets in the step (as NIR).
Rockpool    LIFNeuronTorch -> ``LIF``, LIFTorch -> ``CubaLIF`` with
            r = tau*exp(-dt/tau)/dt: Rockpool decays by exp(-dt/tau) (not 1-dt/tau),
            adds input with gain 1 (LIFTorch: i = exp(-dt/tau_syn)*(i + x)),
            emits floor(v/threshold) spikes per step when v >= threshold, resets by
            subtraction, and the neuron bias is not exported (v_leak = 0).
=========== ======================================================================

All three export through nirtorch, whose Input type may keep a leading batch
or time dimension; :func:`input_shape` drops leading dimensions the Input's
consumers do not take (and says so). :func:`producer_notes` recognises these
patterns and explains each, per node; ``spikedeploy check`` prints them as
notes (they do not stop a graph from running: the file is valid NIR, it just
does not mean what its producer simulated).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import nir
import numpy as np

from ..metadata import EXPORTER

ROCKPOOL_NAME = re.compile(r"^\d+_\w+Torch$")     # Rockpool's Sequential names: "0_LinearTorch"


@dataclass
class Note:
    """Something a graph's producer meant that the NIR file does not say (not an error)."""
    node: str
    field: str
    reason: str
    producer: str = ""

    def __str__(self):
        by = f" [{self.producer}]" if self.producer else ""
        return f"{self.node}: {self.field}: {self.reason}{by}"


def as_float_array(x) -> np.ndarray:
    """``x`` as float64; a torch tensor left in an in-memory graph (Rockpool) included."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


_arr = as_float_array


def _all(x, value, rtol=1e-6) -> bool:
    a = _arr(x)
    return bool(a.size) and bool(np.all(np.isclose(a, value, rtol=rtol, atol=0)))


# --- Input shapes ---------------------------------------------------------------

def input_shape(name: str, shape: tuple, wanted: list) -> tuple[tuple, Note | None]:
    """The shape an Input node really feeds, and a note when leading dimensions were dropped.

    nirtorch-based exporters (sinabs, Norse, Rockpool) record the sample
    data's shape, keeping a time (sinabs) or batch (Norse, Rockpool)
    dimension in front. When every consumer that states its input size
    takes a trailing part of the declared shape, the leading dimensions are
    dropped. ``wanted``: the input shape each consumer states (its lowering's
    ``takes``: a flat size as a 1-tuple, (C, None, None) when only the channels
    are known, or None).
    """
    shape = tuple(int(s) for s in shape)
    wanted = {e for e in wanted if e is not None}
    if len(wanted) != 1 or len(shape) < 2:
        return shape, None
    want = wanted.pop()
    if None in want:            # a (C, ?, ?) map: the last three declared dims, if C fits
        if len(shape) <= 3 or shape[-3] != want[0]:
            return shape, None
        size, want = int(np.prod(shape[-3:])), shape[-3:]
    else:
        size = int(np.prod(want))
    if int(np.prod(shape)) == size:
        return shape, None
    for k in range(1, len(shape)):
        tail = shape[k:]
        if int(np.prod(tail)) == size and (len(want) == 1 or tail == want):
            note = Note(name, "input_type",
                        f"declares shape {shape} but its consumers take {tail}: the leading "
                        f"dimension(s) {shape[:k]} are the batch/time axes of the sample data "
                        "nirtorch's exporter recorded (sinabs keeps time, Norse and Rockpool "
                        "keep the batch); they are dropped")
            return tail, note
    return shape, None


# --- neuron patterns ----------------------------------------------------------

def _is_round(dt: float, rtol: float = 1e-5) -> bool:
    """dt of the form {1, 2, 5} x 10^k: the step sizes people choose (1e-4, 1e-3, 5e-4...)."""
    if not (np.isfinite(dt) and dt > 0):
        return False
    mantissa = dt / 10 ** np.floor(np.log10(dt))
    return any(abs(mantissa - m) <= rtol * m for m in (1.0, 2.0, 5.0, 10.0))


def _uniform(values, rtol=1e-5) -> float | None:
    v = _arr(values).reshape(-1)
    if v.size and np.all(np.isfinite(v)) and np.allclose(v, v[0], rtol=rtol, atol=0):
        return float(v[0])
    return None


def snntorch_dt(tau, r) -> float | None:
    """The dt with r == tau/dt for every neuron (snnTorch's and spikedeploy's convention), if round."""
    tau, r = np.broadcast_arrays(_arr(tau), _arr(r))
    if not tau.size or np.any(r <= 0) or np.allclose(r, 1.0, rtol=1e-6, atol=0):
        return None
    dt = _uniform(tau / r)
    return dt if dt is not None and _is_round(dt) else None


def rockpool_dt(tau, r) -> float | None:
    """The dt with r == tau*exp(-dt/tau)/dt for every neuron, if one exists (Rockpool's r)."""
    tau, r = _arr(tau).reshape(-1), _arr(r).reshape(-1)
    tau, r = np.broadcast_arrays(tau, r)
    if not tau.size or np.any(tau <= 0) or np.any(r <= 0) or np.any(~np.isfinite(tau + r)):
        return None
    if np.allclose(r, 1.0, rtol=1e-6, atol=0):
        return None           # r = 1 is sinabs'/Norse's convention (any uniform tau fits some dt)
    lo, hi = np.full(r.shape, 1e-12), np.full(r.shape, 50.0)   # x = dt/tau; exp(-x)/x falls
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        high = np.exp(-mid) / mid > r
        lo, hi = np.where(high, mid, lo), np.where(high, hi, mid)
    dts = np.sqrt(lo * hi) * tau
    if np.allclose(dts, dts[0], rtol=1e-4) and _is_round(float(dts[0]), rtol=1e-4):
        return float(dts[0])
    return None


def identify_producer(nodes: dict, metadata: dict) -> str:
    """Best guess of the tool that wrote a graph: spikedeploy, rockpool, norse, sinabs or ''."""
    if EXPORTER in (metadata or {}):
        return "spikedeploy"
    names = [n for n, v in nodes.items() if not isinstance(v, (nir.Input, nir.Output))]
    if names and all(ROCKPOOL_NAME.match(n.split(".")[-1]) for n in names):
        return "rockpool"
    neurons = [v for v in nodes.values() if isinstance(v, (nir.LIF, nir.LI, nir.CubaLIF))]
    taus = [(v.tau_mem if isinstance(v, nir.CubaLIF) else v.tau, v.r) for v in neurons]
    if taus and all(snntorch_dt(tau, r) is not None for tau, r in taus):
        return "snntorch"
    if any(rockpool_dt(tau, r) is not None for tau, r in taus):
        return "rockpool"
    unit_r = [v for v in nodes.values() if isinstance(v, (nir.IF, nir.LIF, nir.LI, nir.CubaLIF))
              and _all(v.r, 1.0)]
    if any(isinstance(v, nir.CubaLIF) and _all(v.w_in, 1.0) for v in unit_r):
        return "norse"
    taus = [_arr(v.tau) for v in unit_r if isinstance(v, (nir.LIF, nir.LI))]
    if taus and all(np.all(t < 1e-3) for t in taus):
        return "norse"          # tau written as dt * tau_mem
    if taus and all(np.all(t >= 1.0) for t in taus):
        return "sinabs"         # tau in time steps
    if unit_r:     # IF(r=1) only: sinabs records (time, ...) as the Input type, Norse (batch=1, ...)
        leads = [_declared(v)[0] for v in nodes.values()
                 if isinstance(v, nir.Input) and len(_declared(v)) >= 2]
        if leads and all(lead > 1 for lead in leads):
            return "sinabs"
        if leads and all(lead == 1 for lead in leads):
            return "norse"
        return "sinabs or norse"
    return ""


def _declared(node) -> tuple:
    types = getattr(node, "input_type", None) or {}
    shape = next(iter(types.values()), None) if isinstance(types, dict) else types
    return () if shape is None else tuple(int(s) for s in np.atleast_1d(shape))


def producer_notes(nodes: dict, metadata: dict, dt: float | None) -> tuple[str, list[Note]]:
    """(likely producer, notes) for a flat graph's nodes at time step ``dt``."""
    producer = identify_producer(nodes, metadata)
    if producer == "spikedeploy":
        return producer, []
    notes: list[Note] = []
    spiking = [n for n, v in nodes.items() if isinstance(v, (nir.IF, nir.LIF, nir.CubaLIF))]
    if spiking:
        notes.append(Note("<graph>", "semantics",
                          "written by another tool: NIR records no reset mode, spike count per "
                          "step or threshold comparison; spikedeploy fires one spike per step on "
                          "v > v_threshold and resets to v_reset in that step (sinabs and Rockpool "
                          "fire on v >= threshold, floor(v/threshold) spikes per step, and reset by "
                          "subtraction by default; snnTorch's reset_mechanism and reset_delay are "
                          "dropped by its exporter: only reset 'zero' without delay matches; Norse's "
                          "reset matches)",
                          producer))
    for name, node in nodes.items():
        notes += _node_notes(name, node, dt, producer)
    return producer, notes


def _node_notes(name, node, dt, producer) -> list[Note]:
    notes = []
    at = f"{dt:g}" if dt else "dt"
    if isinstance(node, (nir.IF, nir.I)) and _all(node.r, 1.0) and dt != 1.0:
        notes.append(Note(name, "r", f"r = 1 gives the per-step input gain dt*r = {at}; sinabs' IAF "
                          "and Norse's IAFCell write r = 1 for v += x per step, i.e. dt = 1: run "
                          "with --dt 1", producer))
    if isinstance(node, (nir.LIF, nir.LI)):
        tau, r = _arr(node.tau), _arr(node.r)
        snn_dt, rock_dt = snntorch_dt(tau, r), rockpool_dt(tau, r)
        if snn_dt is not None and dt is not None and not np.isclose(dt, snn_dt, rtol=1e-5):
            notes.append(Note(name, "r", _snntorch_reason(snn_dt, dt), "snntorch"))
        elif snn_dt is None and rock_dt is not None:
            notes.append(Note(name, "r", _rockpool_reason(rock_dt, cuba=False), "rockpool"))
        elif _all(r, 1.0) and np.all(tau < 1e-3):
            notes.append(Note(name, "tau", "tau < 1 ms with r = 1: Norse 1.1's exporter writes tau "
                              "= dt/tau_mem_inv = dt_norse*tau_mem (a unit slip); its LIFBoxCell "
                              "step v += dt/tau*(v_leak - v + x) is reproduced at --dt dt_norse**2 "
                              "(1e-6 for Norse's default dt = 1e-3)", "norse"))
        elif _all(r, 1.0) and np.all(tau >= 1.0):
            hint = ""
            flat = np.unique(tau)
            if flat.size == 1:
                hint = f" (here --dt {flat[0] * (1 - np.exp(-1 / flat[0])):.10g})"
            notes.append(Note(name, "tau", "tau >= 1 with r = 1: sinabs writes tau in time steps; "
                              "its LIF computes v = a*v + (1-a)*x with a = exp(-1/tau) "
                              "(norm_input=True), which forward Euler reproduces at dt = "
                              f"tau*(1 - exp(-1/tau)) when the layer's tau is uniform{hint}; "
                              "norm_input=False (gain 1) writes the same file, and tau_syn "
                              "is not exported", "sinabs"))
    if isinstance(node, nir.CubaLIF):
        snn_dt, rock_dt = snntorch_dt(node.tau_mem, node.r), rockpool_dt(node.tau_mem, node.r)
        if snn_dt is not None and dt is not None and not np.isclose(dt, snn_dt, rtol=1e-5):
            notes.append(Note(name, "r", _snntorch_reason(snn_dt, dt), "snntorch"))
        elif snn_dt is None and rock_dt is not None:
            notes.append(Note(name, "r", _rockpool_reason(rock_dt, cuba=True), "rockpool"))
        elif _all(node.r, 1.0) and _all(node.w_in, 1.0):
            factor = "dt/tau_syn"
            if dt:
                f = dt / _arr(node.tau_syn)
                factor = f"dt/tau_syn = {float(np.min(f)):.4g}" + \
                    ("" if np.allclose(f, f.reshape(-1)[0]) else f"..{float(np.max(f)):.4g}")
            notes.append(Note(name, "w_in", "r = 1 and w_in = 1 (Norse's LIFCell export): Norse "
                              "adds each input to the synaptic current (i += x), NIR's CubaLIF "
                              "integrates w_in*x*dt/tau_syn; the file lacks w_in = tau_syn/dt, so "
                              f"inputs arrive scaled by {factor} and no --dt reproduces Norse "
                              "(Norse 1.1 also writes tau = dt_norse*tau: its decays match at "
                              "--dt dt_norse**2)", "norse"))
    return notes


def _snntorch_reason(snn_dt: float, dt: float) -> str:
    return (f"r = tau/dt with dt = {snn_dt:g} (snnTorch's exporter hard-codes dt = 1e-4; "
            f"spikedeploy's writes its dt into the graph): snnTorch's beta (and alpha) and unit "
            f"input gain are reproduced at --dt {snn_dt:g}, not at dt = {dt:g}")


def _rockpool_reason(rock_dt: float, cuba: bool) -> str:
    gain = ("input gain exp(-dt/tau_syn) onto the current i = exp(-dt/tau_syn)*(i + x)"
            if cuba else "input gain 1 (v = exp(-dt/tau)*v + x + bias)")
    ours = ("(dt/tau_mem)*r*(dt/tau_syn)*w_in = exp(-dt/tau_mem)*dt/tau_syn" if cuba
            else "dt*r/tau = exp(-dt/tau)")
    return (f"r = tau*exp(-dt/tau)/dt with dt = {rock_dt:.6g} (Rockpool's exporter): Rockpool "
            f"decays by exp(-dt/tau) and uses {gain}; forward Euler here decays by 1 - dt/tau "
            f"with input gain {ours}. Rockpool also fires floor(v/threshold) spikes per step on "
            "v >= threshold, resets by subtraction and does not export the neuron bias "
            "(v_leak = 0)")
