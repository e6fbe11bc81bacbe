"""Counting operations from recorded activity: events, synaptic ops, MACs, updates, spikes.

Everything here is counted exactly from a run's records (reference simulator
or Lava: both record every non-synaptic op, so both give the same counts),
per layer and per time step t, summed over the batch; per-inference values
divide by the number of samples N. Definitions:

* **Input** of a synaptic layer: each source op's record at step t, or at
  step t-1 for a recurrent source (zeros at t = 0). Sources are counted one by
  one, so a spike arriving from each of two sources is two events; the
  simulators feed the layer the sum of its sources, which for the usual single
  source is the same thing. A source that is itself a synaptic op and was not
  recorded (Lava does not record synapse outputs) is recomputed from its own
  inputs exactly as the reference simulator computes it (float or fixed).
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
  divided by its op's integer scale before the test (the scales of the
  FixedProgram the run carries, ``SimResult.fixed``; scale 1 in floating
  point).
* **Bias additions**, counted apart from synaptic operations: one addition
  per neuron with a non-zero bias per time step (Affine/Conv biases are
  folded into the neurons they feed, where they are added every step, as on
  Loihi), plus, for a bias that could not be folded, one per output element
  of its synaptic op per step.
* **Neuron updates**: every neuron is updated at every step (Loihi's
  synchronous time step), neurons x T x N in all. An update is **active** when
  the neuron receives input at that step: at least one input event reaches
  it through a non-zero weight (structural: positive and negative inputs that
  cancel still count), or it has a non-zero bias; otherwise **inactive**
  (its state only decays). Fan-in structure comes from the Program's float
  weights.
* **Output spikes**: non-zero outputs of a spiking population; **firing
  rate** = spikes / (neurons x T x N), also per step; **activation
  sparsity** = 1 - firing rate (NeuroBench's ActivationSparsity over all
  spiking populations). Non-spiking populations (LI, CubaLI, I) emit a
  voltage: no spike count, no firing rate.

For comparison with other tools, each synaptic layer also keeps
``value_ops`` (sum over inputs of value x fan-out over all synapses: sinabs'
value-weighted synops) and ``step_binary`` (NeuroBench's per-forward-call
AC/MAC test: every input value at that step in {-1, 0, 1}); see
:mod:`.conventions`.

Fan-outs come from the Program's float weights (zero weights are zero
whatever the precision of the run).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SpikedeployError
from ..hw_sim.result import SimResult
from ..ir.ops import NeuronOp, Op, Program, ReshapeOp
from ..progress import track
from .fanout import VARIANTS, connectivity, fanout, is_synaptic, tool_layer

BINARY_VALUES = (0.0, 1.0)
NEUROBENCH_BINARY = (-1.0, 0.0, 1.0)
RASTER_MAX_NEURONS = 256       # raster of one sample: at most this many neurons per layer


def is_neuron_layer(op: Op) -> bool:
    return isinstance(op, NeuronOp)


def _spiking(op: Op) -> bool:
    return isinstance(op, NeuronOp) and op.params.spiking


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.int64)


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
    flops: int = 0                # MACs of one dense evaluation, padded taps included
    value_ops: np.ndarray | None = None    # per step: sum of input value x fan-out (all)
    step_binary: np.ndarray | None = None  # per step: all inputs in {-1, 0, 1}
    bias_adds: np.ndarray | None = None    # per step: additions of a bias left on this op
    tool_layer: bool = True       # a torch Linear/Conv (counted by NeuroBench and sinabs)

    def __post_init__(self):
        t = self.num_steps
        if not self.flops:
            self.flops = self.synapses
        if self.value_ops is None:
            self.value_ops = self.ops["all"].astype(np.float64)
        if self.step_binary is None:
            self.step_binary = np.full(t, self.binary)
        if self.bias_adds is None:
            self.bias_adds = _zeros(t)

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

    @property
    def input_rate(self) -> float:
        """Fraction of non-zero input elements over all steps and samples (syops' fr)."""
        slots = self.in_size * self.num_steps * self.num_samples
        return float(self.events.sum() / slots) if slots else 0.0


@dataclass
class NeuronCounts:
    """One neuron population. Per-step arrays are totals over the batch, shape (T,)."""

    name: str
    op_type: str
    neurons: int
    spikes: np.ndarray | None     # None: non-spiking population
    num_samples: int
    num_steps: int
    active: np.ndarray | None = None      # active neuron updates per step
    bias_adds: np.ndarray | None = None   # bias additions per step
    biased_neurons: int = 0               # neurons with a non-zero bias
    raster: np.ndarray | None = None      # (T, k) bool: spikes of sample 0, k neurons
    raster_index: np.ndarray | None = None  # which neurons the raster shows
    neuron_rates: np.ndarray | None = None  # per neuron: spiking steps / (T x N), for dead or
    #                                         saturated units

    def __post_init__(self):
        if self.active is None:
            self.active = np.full(self.num_steps, self.neurons * self.num_samples, np.int64)
        if self.bias_adds is None:
            self.bias_adds = _zeros(self.num_steps)

    @property
    def spiking(self) -> bool:
        return self.spikes is not None

    @property
    def updates(self) -> np.ndarray:
        """Neuron updates per step: every neuron, every step."""
        return np.full(self.num_steps, self.neurons * self.num_samples, np.int64)

    @property
    def inactive(self) -> np.ndarray:
        return self.updates - self.active

    @property
    def firing_rate(self) -> float | None:
        """Spikes per neuron per time step, over all samples."""
        if self.spikes is None:
            return None
        denom = self.neurons * self.num_steps * self.num_samples
        return float(self.spikes.sum() / denom) if denom else 0.0

    @property
    def firing_rate_per_step(self) -> np.ndarray | None:
        if self.spikes is None:
            return None
        denom = self.neurons * self.num_samples
        return self.spikes / denom if denom else np.zeros(self.num_steps)

    @property
    def activation_sparsity(self) -> float | None:
        """1 - firing rate: the fraction of zero outputs (NeuroBench's definition)."""
        rate = self.firing_rate
        return None if rate is None else 1.0 - rate


@dataclass
class OperationCounts:
    """Everything counted from one run, by op name, in execution order."""

    program: Program
    synaptic: dict[str, SynapticCounts]
    neurons: dict[str, NeuronCounts]
    num_steps: int
    num_samples: int
    backend: str = ""
    precision: str = ""
    input_names: list = field(default_factory=list)


class _Records:
    """A run's records, with synapse outputs recomputed where the backend kept none."""

    def __init__(self, result: SimResult):
        self.result = result
        self.program = result.program
        self.cache: dict[str, np.ndarray] = {}
        self._driven: dict[str, np.ndarray] = {}

    def get(self, name: str) -> np.ndarray:
        records = self.result.records
        if name in records:
            return records[name]
        if name in self.cache:
            return self.cache[name]
        op = self.program.ops.get(name)
        if isinstance(op, ReshapeOp) and len(op.inputs) == 1 and not op.recurrent:
            return self.get(op.inputs[0])
        if op is not None and op.synaptic and op.inputs:
            self.cache[name] = self._recompute(op)
            return self.cache[name]
        raise SpikedeployError(
            f"no record for op '{name}': the energy report needs every op's output "
            "(run the simulator with record='all')")

    def _recompute(self, op: Op) -> np.ndarray:
        """The op's output per step, computed as the reference simulator computes it
        (its runner for the run's precision, on the sum of the op's inputs)."""
        from ..hw_sim.reference import RUNNERS
        from ..hw_sim.reference_shared import NumpyArrays
        precision = self.result.precision
        table = RUNNERS.get(precision)
        if table is None or table.problem(op):
            raise SpikedeployError(
                f"no record for synaptic op '{op.name}', which feeds another synaptic op, and "
                f"no {precision} reference runner to recompute it")
        if precision == "fixed" and self.result.fixed is None:
            raise SpikedeployError(f"the fixed-point run carries no quantisation (SimResult.fixed) "
                                   f"to recompute synaptic op '{op.name}'")
        t, n = self.result.num_steps, self.result.num_samples
        runner = table[type(op)](op, n, self.result.fixed, NumpyArrays())
        srcs = []
        for src in op.inputs:
            x = self.get(src)
            srcs.append(_shifted(x) if src in op.recurrent else x)
        out = None
        for step in range(t):
            xs = [x[step] for x in srcs]
            y = runner.step(np.asarray(xs[0] if len(xs) == 1 else np.sum(xs, axis=0),
                                       np.float64 if precision == "float" else np.int64))
            if out is None:
                out = np.zeros((t, n, op.size), dtype=np.asarray(y).dtype)
            out[step] = y
        return out

    def scale(self, name: str) -> float:
        """Integer units per float unit of op ``name``'s records (1 in floating point)."""
        fixed = self.result.fixed
        if fixed is None and self.result.precision == "fixed":
            raise SpikedeployError("the fixed-point run carries no quantisation (SimResult.fixed): "
                                   "its integer records cannot be converted to float units")
        scales = getattr(fixed, "scales", None) or {}
        scale = scales.get(name, 1.0)
        return float(scale) if scale else 1.0

    def driven(self, name: str) -> np.ndarray:
        """(T, N, size) bool: where op ``name``'s output receives input through a
        non-zero weight (a synaptic op) or is non-zero (any other op)."""
        if name in self._driven:
            return self._driven[name]
        op = self.program.ops[name]
        if is_synaptic(op):
            m = connectivity(op)
            t, n = self.result.num_steps, self.result.num_samples
            hit = np.zeros((t, n, op.size), dtype=bool)
            for src in op.inputs:
                x = self.driven(src)
                if src in op.recurrent:
                    x = _shifted(x)
                if m is None:       # no matrix form: any input event reaches every output
                    hit |= x.reshape(t, n, -1).any(axis=2, keepdims=True)
                else:
                    flat = x.reshape(t * n, -1).astype(np.float64)
                    hit |= (np.asarray((m @ flat.T).T) > 0).reshape(t, n, op.size)
            out = hit
        elif isinstance(op, ReshapeOp) and name not in self.result.records \
                and len(op.inputs) == 1 and not op.recurrent:
            out = self.driven(op.inputs[0])
        else:
            out = self.get(name) != 0
        self._driven[name] = out
        return out


def _is_binary(x: np.ndarray, scale: float, values=BINARY_VALUES) -> bool:
    if scale != 1.0:
        x = x / scale
    return bool(np.isin(x, values).all())


def _shifted(x: np.ndarray) -> np.ndarray:
    """Step t sees step t-1; zeros at t = 0 (a recurrent edge)."""
    out = np.zeros_like(x)
    out[1:] = x[:-1]
    return out


def count_synaptic(result: SimResult, op: Op, records: _Records | None = None) -> SynapticCounts:
    records = records or _Records(result)
    fan = fanout(op)
    num_steps, n = result.num_steps, result.num_samples
    fans = np.stack([fan.variant(v) for v in VARIANTS], axis=1).astype(np.float64)
    fan_all = fan.all.astype(np.float64)
    events = np.zeros(num_steps, dtype=np.int64)
    ops = np.zeros((num_steps, len(VARIANTS)), dtype=np.float64)
    value_ops = np.zeros(num_steps, dtype=np.float64)
    step_binary = np.ones(num_steps, dtype=bool)
    binary = True
    for src in op.inputs:
        x = records.get(src)
        if x.shape != (num_steps, n, fan.in_size):
            raise SpikedeployError(
                f"op '{op.name}': input '{src}' was recorded with shape {x.shape}, "
                f"expected {(num_steps, n, fan.in_size)}")
        if src in op.recurrent:
            x = _shifted(x)
        scale = records.scale(src)
        binary = binary and _is_binary(x, scale)
        for t in range(num_steps):          # one step at a time bounds the memory
            xt = x[t] if scale == 1.0 else x[t] / scale
            mask = xt != 0
            events[t] += np.count_nonzero(mask)
            # counts are integers well below 2**53: a float matmul is exact
            ops[t] += (mask.astype(np.float64) @ fans).sum(axis=0)
            value_ops[t] += float((xt.astype(np.float64) @ fan_all).sum())
            step_binary[t] &= _is_binary(xt, 1.0, NEUROBENCH_BINARY)
    ops = np.rint(ops).astype(np.int64)
    bias = op.full_bias()
    bias_adds = _zeros(num_steps) + (0 if bias is None else int(np.count_nonzero(bias)) * n)
    return SynapticCounts(
        name=op.name, op_type=op.nir_type or type(op).__name__, in_size=fan.in_size,
        out_size=op.size, synapses=fan.synapses, synapses_nonzero=fan.synapses_nonzero,
        binary=binary, events=events, ops={v: ops[:, i] for i, v in enumerate(VARIANTS)},
        num_samples=n, flops=fan.dense_flops, value_ops=value_ops, step_binary=step_binary,
        bias_adds=bias_adds, tool_layer=tool_layer(op))


def _raster_index(size: int) -> np.ndarray:
    if size <= RASTER_MAX_NEURONS:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, RASTER_MAX_NEURONS).round().astype(np.int64))


def count_neurons(result: SimResult, op: Op, records: _Records | None = None) -> NeuronCounts:
    records = records or _Records(result)
    num_steps, n = result.num_steps, result.num_samples
    spikes = raster = index = rates = None
    if _spiking(op):
        x = records.get(op.name)
        spikes = np.count_nonzero(x.reshape(num_steps, -1), axis=1).astype(np.int64)
        rates = np.count_nonzero(x.reshape(num_steps * n, -1), axis=0) / float(num_steps * n)
        index = _raster_index(op.size)
        raster = x[:, 0, :][:, index] != 0
    bias = np.zeros(op.size)
    if isinstance(op, NeuronOp):
        b = np.asarray(op.params.input_bias, np.float64)
        bias = b.reshape(-1) if b.size == op.size else np.broadcast_to(b.reshape(()), (op.size,))
    biased = bias != 0
    active = np.zeros((num_steps, n, op.size), dtype=bool)
    for src in op.inputs:
        d = records.driven(src)
        if src in op.recurrent:
            d = _shifted(d)
        active |= d.reshape(num_steps, n, op.size)
    active |= biased
    n_biased = int(np.count_nonzero(biased))
    return NeuronCounts(name=op.name, op_type=op.nir_type or type(op).__name__,
                        neurons=op.size, spikes=spikes, num_samples=n, num_steps=num_steps,
                        active=active.reshape(num_steps, -1).sum(axis=1).astype(np.int64),
                        bias_adds=np.full(num_steps, n_biased * n, np.int64),
                        biased_neurons=n_biased, raster=raster, raster_index=index,
                        neuron_rates=rates)


def count_operations(result: SimResult) -> OperationCounts:
    """Count events, operations, updates and spikes of every layer of a run."""
    if not result.records:
        raise SpikedeployError("the run recorded nothing")
    if result.num_steps == 0 or result.num_samples == 0:
        raise SpikedeployError("the run has no time steps or no samples: nothing to count")
    records = _Records(result)
    synaptic, neurons = {}, {}
    for op in track(list(result.program.ops.values()), "counting", unit="layer"):
        if is_synaptic(op):
            synaptic[op.name] = count_synaptic(result, op, records)
        elif is_neuron_layer(op):
            neurons[op.name] = count_neurons(result, op, records)
    return OperationCounts(result.program, synaptic, neurons, result.num_steps,
                           result.num_samples, backend=result.backend,
                           precision=result.precision, input_names=list(result.program.inputs))
