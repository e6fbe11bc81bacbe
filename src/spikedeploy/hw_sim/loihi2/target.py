"""The Loihi 2 target: what Lava's stock processes (and lava-dl netx) can run.

Intel's Loihi 2 flow runs networks of Lava's stock processes that have
NeuroCore models: Dense / Sparse / Conv / DelayDense synapses and LIF
neurons (``LIFReset`` here, whose periodic state reset lets samples run
back to back). Those hold, per population, ONE current decay du, voltage
decay dv and threshold, per-neuron biases as a 13-bit mantissa (netx fixes
the exponent at 6), reset to 0 in the spike's step, send binary spikes only,
and compute in Loihi's fixed point. So a Program reaches the target through:

1. :func:`prepare`: synapse chains fused (``passes.fuse_synapse_chains``:
   pooling into the next convolution or dense layer; a synapse feeds
   neurons only) and every population's thresholds folded into its input
   gain and bias (``passes.fold_thresholds``; exact in floating point);
   then populations with several decays split into one population per
   decay where the graph allows (:mod:`.decay_groups`).
2. the rules of :data:`LOIHI2_RULES`, one per op type, on that program
   (what the stock processes cannot express: TSM gains, initial voltages,
   delayed or subtractive resets, non-zero v_reset, graded spike values,
   membrane-voltage readouts, inputs without a synapse, ...), then the
   decay grouping (which refuses the per-neuron decays it cannot group);
3. quantisation with :data:`~spikedeploy.ir.fixed_point.LOIHI2_FIXED`
   (the gain, i.e. the folded thresholds, in the rows of the 8-bit weights;
   one threshold mantissa; the Affine bias in the 13-bit bias mantissa),
   then the check that each population has one non-zero threshold mantissa
   (one du and dv each is what the grouping guarantees).
Every problem names the graph's own node (a decay group by its population).

``spikedeploy check --target loihi2`` reports every problem of all three
steps; :func:`compile_loihi2` returns what the stock lowering, the netx
writer and the fixed reference all run, so they agree bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...errors import UnsupportedError
from ...ir import fixed_point as fxp
from ...ir.op_table import OpTable
from ...ir.ops import (ConvOp, DelayOp, DenseOp, InputOp, NeuronOp, Op, OutputOp, Program,
                       ReshapeOp, ScaleOp, ThresholdOp)
from ...ir.passes import fold_thresholds, fuse_synapse_chains
from ...metadata import (FIRE_AT_THRESHOLD, RESET_DELAY, RESET_IN_STEP, RESET_MODE,
                         SPIKE_VALUE, SPIKES_PER_STEP, TSM_GAIN, V_INIT)
from ..timing import Schedule, schedule
from .decay_groups import merge_group_records, split_decay_groups

TARGET = "loihi2"
BACKENDS = ("loihi2", "netx")      # what runs the target: stock processes, a netx file
MAX_DELAY = 62        # DelayDense's 6-bit delays; netx clamps at 62


@dataclass
class Loihi2Program:
    """A Program as the Loihi 2 target runs it (prepared, quantised) and its timing."""
    program: Program                # fused, thresholds folded, decays grouped: what runs
    fixed: fxp.FixedProgram         # LOIHI2_FIXED quantisation of ``program``
    view: Program                   # ``program`` before decay grouping: what records show
    groups: dict = field(default_factory=dict)        # population -> [(group, indices)]
    notes: list[str] = field(default_factory=list)    # what the passes changed

    def merge(self, records: dict) -> dict:
        """Records of ``program`` as records of ``view`` (decay groups reassembled)."""
        sizes = {name: self.view.ops[name].size for name in self.groups}
        return merge_group_records(records, self.groups, sizes)


def _problem(op, field_name: str, reason: str) -> UnsupportedError:
    """A refusal of node ``op`` (an op, or a node name)."""
    return UnsupportedError(getattr(op, "name", op), field_name, reason, backend=TARGET)


# --- rules per op type -----------------------------------------------------------------

Rule = Callable[[Program, Op], list]
LOIHI2_RULES: OpTable[Rule] = OpTable("Loihi 2 stock-process lowering", backend=TARGET)


@LOIHI2_RULES.register(InputOp, ReshapeOp)
def _no_rule(program: Program, op: Op) -> list:
    return []


@LOIHI2_RULES.register(OutputOp)
def _output_rule(program: Program, op: Op) -> list:
    if len(op.inputs) != 1:
        return [_problem(op, "inputs", "an Output summing several edges has no stock process "
                         "(the sum would need a neuron population)")]
    src = program.through_copies(op.inputs[0])
    if src.synaptic:
        return [_problem(op, "inputs", f"fed by synapse '{src.name}' without a neuron: a Loihi "
                         "synapse ends on neurons, and only spikes leave the chip")]
    if isinstance(src, NeuronOp) and not src.params.spiking:
        return [_problem(op, "inputs", f"'{src.name}' is a non-spiking readout (its membrane "
                         "voltage): stock LIF sends spikes only; read out a spiking layer")]
    return []


@LOIHI2_RULES.register(DelayOp)
def _delay_rule(program: Program, op: Op) -> list:
    out = []
    for cons in program.consumers(op.name):
        if not isinstance(cons, (DenseOp, ScaleOp)):
            out.append(_problem(op, "delay", f"feeds '{cons.name}' ({cons.nir_type}): a delay "
                                "becomes the per-synapse delays of the Dense it feeds "
                                "(DelayDense); convolutions and neurons have none"))
    if op.max_delay > MAX_DELAY:
        out.append(_problem(op, "delay", f"{op.max_delay} steps; DelayDense holds at most "
                            f"{MAX_DELAY}"))
    return out


@LOIHI2_RULES.register(DenseOp, ScaleOp, ConvOp)
def _synapse_rule(program: Program, op: Op) -> list:
    out = []
    if op.full_bias() is not None:
        out.append(_problem(op, "bias", "a bias that reaches no neuron: Loihi's synapses have "
                            "none"))
    for name in op.inputs:
        src = program.through_copies(name)
        if src.synaptic:
            out.append(_problem(op, "inputs", f"fed by synapse '{src.name}' without a neuron "
                                "between (a Loihi synapse feeds dendrites only, and this chain "
                                "could not be fused into one synapse)"))
    if op.name not in fxp.quantising_targets(program):
        out.append(_problem(op, "outputs", "does not feed exactly one neuron population: a "
                            "stock synapse process ends on one population's dendrites"))
    return out


def _nonzero(x) -> bool:
    return bool(np.any(np.asarray(x) != 0))


@LOIHI2_RULES.register(NeuronOp, ThresholdOp)
def _neuron_rule(program: Program, op: Op) -> list:
    p = op.params
    out = []
    if not p.spiking:
        return [_problem(op, "v_threshold", "a non-spiking neuron (LI/CubaLI/I readout) sends "
                         "its membrane voltage; stock LIF sends spikes only")]
    if np.any(np.asarray(p.v_th) <= 0):
        out.append(_problem(op, "v_threshold", "a threshold <= 0: stock LIF's threshold is an "
                            "unsigned mantissa, and it cannot be folded into the weights"))
    if p.step_gain is not None:
        out.append(_problem(op, TSM_GAIN, "time-varying input gains (TSM): stock LIF has no "
                            "per-step gain"))
    if _nonzero(p.v_init):
        out.append(_problem(op, V_INIT, "initial voltages: LIFReset restarts every sample at "
                            "u = v = 0"))
    if p.reset_mode != "zero":
        out.append(_problem(op, RESET_MODE, f"reset '{p.reset_mode}': stock LIF resets v to 0 "
                            "in the spike's step"))
    if p.reset_delay:
        out.append(_problem(op, RESET_DELAY, "a reset applied one step after the spike "
                            "(snnTorch's reset_delay): stock LIF resets in the spike's step"))
    if not p.reset_in_step and p.reset_mode != "none":
        out.append(_problem(op, RESET_IN_STEP, "no reset in the spike's step: stock LIF "
                            "always resets there"))
    if _nonzero(p.v_reset):
        out.append(_problem(op, "v_reset", "a non-zero reset voltage: stock LIF resets to 0"))
    if p.graded:
        out.append(_problem(op, SPIKE_VALUE, "graded spike values: stock LIF sends binary "
                            "spikes"))
    if p.multi_spike:
        out.append(_problem(op, SPIKES_PER_STEP, "several spikes per step (floor(v / v_th), "
                            "sinabs/Rockpool): stock LIF sends one binary spike"))
    if p.fire_at_threshold:
        out.append(_problem(op, FIRE_AT_THRESHOLD, "fires on v >= v_th: stock LIF fires on "
                            "v > v_th"))
    if _nonzero(p.input_bias) and np.any(np.asarray(p.du) < 1):
        out.append(_problem(op, "bias", "an Affine bias into a current-based neuron (du < 1): "
                            "Loihi adds biases to v, while the graph filters this one through u"))
    for name in op.inputs:
        src = program.through_copies(name)
        if not src.synaptic:
            out.append(_problem(op, "inputs", f"fed by '{src.name}' without a synapse: a "
                                "Loihi neuron's input arrives through synapses"))
        elif isinstance(src, ConvOp) and len(op.shape) == 3:
            gain = np.broadcast_to(np.asarray(p.gain, np.float64), op.shape).reshape(op.shape[0], -1)
            if not np.allclose(gain, gain[:, :1], rtol=1e-12, atol=0):
                out.append(_problem(op, "v_threshold", "thresholds (or input gains) that differ "
                                    f"within a channel under convolution '{src.name}': they fold "
                                    "into the kernel, which every position shares"))
    return out


def prepare(program: Program) -> tuple[Program, list[str]]:
    """The passes that fit a Program to the target (new Program), and notes on what changed."""
    fused = fuse_synapse_chains(program)
    notes = [f"synapse '{name}' fused into the synapse it feeds"
             for name, op in program.ops.items() if op.synaptic and name not in fused.ops]
    folded = fold_thresholds(fused)
    folded_names = [name for name, op in fused.ops.items() if isinstance(op, NeuronOp)
                    and op.params.spiking and np.all(np.asarray(op.params.v_th) > 0)
                    and np.any(np.asarray(op.params.v_th) != 1)]
    if folded_names:
        notes.append("thresholds folded into the incoming weights and bias of "
                     + ", ".join(f"'{n}'" for n in folded_names))
    return folded, notes


def _population_problems(fixed: fxp.FixedProgram) -> list:
    out = []
    for name, op in fixed.program.ops.items():
        if not isinstance(op, NeuronOp) or not op.params.spiking:
            continue
        p = fixed.params.get(name)
        if p is None:
            continue
        if np.ravel(p.v_th)[0] < 1:
            out.append(_problem(op, "weight", "the weights into this population are so large "
                                "against its threshold that 8-bit weights leave a threshold "
                                "mantissa of 0"))
        if len(set(np.ravel(p.v_th).tolist())) > 1:
            out.append(_problem(op, "v_threshold", "different threshold mantissas in one "
                                "population: a stock LIF process holds one vth"))
    return out


def _timing_problems(program: Program, sched: Schedule) -> list:
    """Equalising delays go on the synapse into the later neuron (DelayDense)."""
    out = []
    for (src, dst), d in sched.edge_delay.items():
        op, source = program.ops[dst], program.ops[src]
        if not (isinstance(op, NeuronOp) and source.synaptic):
            out.append(_problem(op, "inputs", f"the edge from '{src}' needs {d} step(s) of "
                                "latency equalisation, which stock processes only give on a "
                                "synapse into a neuron (DelayDense)"))
        else:
            before = program.ops[source.inputs[0]]      # a NIR Delay adds its steps
            total = d + (before.max_delay if isinstance(before, DelayOp) else 0)
            if total > MAX_DELAY:
                out.append(_problem(source, "delay", f"needs {total} steps of delay; "
                                    f"DelayDense holds at most {MAX_DELAY}"))
    return out


def loihi2_problems(program: Program, input_scale: float = 1.0
                    ) -> tuple[Loihi2Program | None, list[UnsupportedError]]:
    """Every reason the target cannot run ``program`` (all of them, named by the graph's own
    nodes), and the compiled form when there is none."""
    view, notes = prepare(program)
    found: list[UnsupportedError] = []
    for op in view.ops.values():
        why = LOIHI2_RULES.problem(op)
        if why is not None:
            found.append(_problem(op, "type", why))
            continue
        found += LOIHI2_RULES[type(op)](view, op)
    prepared, groups, refused = split_decay_groups(view)
    found += refused
    notes += [f"'{name}' split into {len(parts)} populations, one per (du, dv) decay"
              for name, parts in groups.items()]
    later: list = []
    sched = schedule(prepared, collect=later)
    later += _timing_problems(prepared, sched)
    fixed = fxp.quantise(prepared, input_scale, collect=later, target=fxp.LOIHI2_FIXED)
    later += _population_problems(fixed)
    found += [_problem(_graph_name(view, e.node), e.field, e.reason) for e in later]
    if found:
        return None, _unique(found)
    return Loihi2Program(prepared, fixed, view, groups, notes), []


def _graph_name(view: Program, node: str) -> str:
    """A node of the split program by its graph name (a decay group by its population)."""
    if node in view.ops:
        return node
    base, _, index = node.rpartition("_decay")
    return base if base in view.ops and index.isdigit() else node


def _unique(found: list) -> list:
    seen, out = set(), []
    for exc in found:
        key = (exc.node, exc.field, exc.reason)
        if key not in seen:
            seen.add(key)
            out.append(exc)
    return out


def compile_loihi2(program: Program, input_scale: float = 1.0) -> Loihi2Program:
    """The target's form of ``program``; raises the first problem (naming how many more)."""
    compiled, found = loihi2_problems(program, input_scale)
    if found:
        first = found[0]
        more = f" (and {len(found) - 1} more: spikedeploy check --target loihi2)" \
            if len(found) > 1 else ""
        raise UnsupportedError(first.node, first.field, first.reason + more, backend=TARGET)
    return compiled
