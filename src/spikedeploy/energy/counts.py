"""Counting operations from recorded activity: events, synaptic ops, MACs, spikes.

Definitions (per time step t, summed over the batch; per-inference values
divide by the number of samples N):

* **Input** of a synaptic layer: each source op's record at step t, or at
  step t-1 for a recurrent source (zeros at t = 0). Sources are counted one by
  one, so a spike arriving from each of two sources is two events; the
  simulators feed the layer the sum of its sources, which for the usual single
  source is the same thing.
* **Input events**: non-zero input elements.
* **Operations** (per fan-out variant, see :mod:`.fanout`): the sum over
  input events of the element's fan-out. A layer is an **AC layer** when every
  input value is 0 or 1 (spikes): its operations are accumulates (synaptic
  operations, "synops"). Otherwise it is a **MAC layer** (graded input, e.g.
  direct encoding, or a non-spiking neuron's voltage): the same count is
  *effective MACs* (zero inputs skipped), and ``dense_macs`` = synapses x T
  is what evaluating the layer densely at every step would cost.
  Binary-ness is judged per layer over the whole run, so a layer is
  entirely AC or entirely MAC. In fixed precision a recorded value is
  divided by its op's integer scale before the test (scale 1 unless the
  run's ``info["fixed"]`` says otherwise). NeuroBench also counts -1 as AC;
  spikedeploy's neurons never emit -1, so only {0, 1} is accepted here.
* **Neuron layers** (NeuronOp, ThresholdOp): neurons, output spikes
  (non-zero outputs of a spiking population), firing rate =
  spikes / (neurons x T x N). Non-spiking populations (LI, CubaLI, I) emit a
  voltage: they have no spike count and no firing rate.

Fan-outs come from the Program's float weights (zero weights are zero
whatever the precision of the run).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpikedeployError
from ..hw_sim.result import SimResult
from ..ir.program import NeuronOp, Op, Program, ReshapeOp, ThresholdOp
from .fanout import VARIANTS, fanout, is_synaptic

NEURON_TYPES = (NeuronOp, ThresholdOp)
BINARY_VALUES = (0.0, 1.0)


def is_neuron_layer(op: Op) -> bool:
    return isinstance(op, NEURON_TYPES)


def _spiking(op: Op) -> bool:
    return isinstance(op, ThresholdOp) or (isinstance(op, NeuronOp) and op.params.spiking)


@dataclass
class SynapticCounts:
    """One synaptic layer. Per-step arrays are totals over the batch, shape (T,)."""

    name: str
    op_type: str                  # the NIR type, e.g. "Affine"
    in_size: int
    out_size: int
    synapses: int                 # all connections (zero weights included)
    synapses_nonzero: int
    binary: bool                  # AC layer (input all 0/1) or MAC layer
    events: np.ndarray            # non-zero inputs per step
    ops: dict[str, np.ndarray]    # variant -> sum of fan-out over events, per step
    num_samples: int

    @property
    def kind(self) -> str:
        return "AC" if self.binary else "MAC"

    @property
    def num_steps(self) -> int:
        return int(self.events.shape[0])

    def acs(self, variant: str) -> np.ndarray:
        """Accumulates per step (zeros for a MAC layer)."""
        ops = self.ops[variant]
        return ops if self.binary else np.zeros_like(ops)

    def macs(self, variant: str) -> np.ndarray:
        """Effective MACs per step (zeros for an AC layer)."""
        ops = self.ops[variant]
        return np.zeros_like(ops) if self.binary else ops

    def dense_macs(self) -> np.ndarray:
        """MACs per step if a MAC layer were evaluated densely (zeros for an AC layer)."""
        per_step = 0 if self.binary else self.synapses * self.num_samples
        return np.full(self.num_steps, per_step, dtype=np.int64)


@dataclass
class NeuronCounts:
    """One neuron population. ``spikes`` is per step, total over the batch, or None."""

    name: str
    op_type: str
    neurons: int
    spikes: np.ndarray | None     # None: non-spiking population
    num_samples: int
    num_steps: int

    @property
    def spiking(self) -> bool:
        return self.spikes is not None

    @property
    def firing_rate(self) -> float | None:
        """Spikes per neuron per time step, over all samples."""
        if self.spikes is None:
            return None
        denom = self.neurons * self.num_steps * self.num_samples
        return float(self.spikes.sum() / denom) if denom else 0.0


@dataclass
class OperationCounts:
    """Everything counted from one run, by op name, in execution order."""

    program: Program
    synaptic: dict[str, SynapticCounts]
    neurons: dict[str, NeuronCounts]
    num_steps: int
    num_samples: int


def _record(result: SimResult, name: str) -> np.ndarray:
    """The op's record; a Flatten without one reads through to its input."""
    if name in result.records:
        return result.records[name]
    op = result.program.ops.get(name)
    if isinstance(op, ReshapeOp) and len(op.inputs) == 1 and not op.recurrent:
        return _record(result, op.inputs[0])
    raise SpikedeployError(
        f"no record for op '{name}': the energy report needs every op's output "
        "(run the simulator with record='all')")


def _scale(result: SimResult, name: str) -> float:
    scales = getattr(result.info.get("fixed"), "scales", None) or {}
    scale = scales.get(name, 1.0)
    return float(scale) if scale else 1.0


def _is_binary(x: np.ndarray, scale: float) -> bool:
    if scale != 1.0:
        x = x / scale
    return bool(np.all((x == BINARY_VALUES[0]) | (x == BINARY_VALUES[1])))


def _shifted(x: np.ndarray) -> np.ndarray:
    """Step t sees step t-1; zeros at t = 0 (a recurrent edge)."""
    out = np.zeros_like(x)
    out[1:] = x[:-1]
    return out


def count_synaptic(result: SimResult, op: Op) -> SynapticCounts:
    fan = fanout(op)
    num_steps, n = result.num_steps, result.num_samples
    fans = np.stack([fan.variant(v) for v in VARIANTS], axis=1).astype(np.float64)
    events = np.zeros(num_steps, dtype=np.int64)
    ops = np.zeros((num_steps, len(VARIANTS)), dtype=np.float64)
    binary = True
    for src in op.inputs:
        x = _record(result, src)
        if x.shape != (num_steps, n, fan.in_size):
            raise SpikedeployError(
                f"op '{op.name}': input '{src}' was recorded with shape {x.shape}, "
                f"expected {(num_steps, n, fan.in_size)}")
        if src in op.recurrent:
            x = _shifted(x)
        binary = binary and _is_binary(x, _scale(result, src))
        for t in range(num_steps):          # one step at a time bounds the memory
            mask = x[t] != 0
            events[t] += np.count_nonzero(mask)
            # counts are integers well below 2**53: a float matmul is exact
            ops[t] += (mask.astype(np.float64) @ fans).sum(axis=0)
    ops = np.rint(ops).astype(np.int64)
    return SynapticCounts(
        name=op.name, op_type=op.nir_type or type(op).__name__, in_size=fan.in_size,
        out_size=op.size, synapses=fan.synapses, synapses_nonzero=fan.synapses_nonzero,
        binary=binary, events=events, ops={v: ops[:, i] for i, v in enumerate(VARIANTS)},
        num_samples=n)


def count_neurons(result: SimResult, op: Op) -> NeuronCounts:
    num_steps, n = result.num_steps, result.num_samples
    spikes = None
    if _spiking(op):
        x = _record(result, op.name)
        spikes = np.count_nonzero(x.reshape(num_steps, -1), axis=1).astype(np.int64)
    return NeuronCounts(name=op.name, op_type=op.nir_type or type(op).__name__,
                        neurons=op.size, spikes=spikes, num_samples=n, num_steps=num_steps)


def count_operations(result: SimResult) -> OperationCounts:
    """Count events, operations and spikes of every layer of a run."""
    if not result.records:
        raise SpikedeployError("the run recorded nothing")
    if result.num_steps == 0 or result.num_samples == 0:
        raise SpikedeployError("the run has no time steps or no samples: nothing to count")
    synaptic, neurons = {}, {}
    for op in result.program.ops.values():
        if is_synaptic(op):
            synaptic[op.name] = count_synaptic(result, op)
        elif is_neuron_layer(op):
            neurons[op.name] = count_neurons(result, op)
    return OperationCounts(result.program, synaptic, neurons,
                           result.num_steps, result.num_samples)
