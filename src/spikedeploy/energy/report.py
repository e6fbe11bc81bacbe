"""The per-layer energy report: terminal table, JSON, CSV and a self-contained HTML page.

Rows pair each synaptic layer with the neuron population it feeds
("fc1 -> lif1", type "Affine[AC] -> LIF"), which reads like the network's
layers. A neuron population is paired with its first forward (non-recurrent)
synaptic input whose only consumer it is; every other synaptic layer (e.g. a
recurrent Dense) and every other population gets a row of its own, so each op
appears in exactly one row and totals never double count. ``[AC]`` or
``[MAC]`` after a synaptic type says how its operations were counted.

Table and CSV values are per inference (mean over the N samples). JSON holds
the same, the totals over all samples, per-time-step arrays (per inference),
the other tools' figures and every definition used. Columns:

* ``neurons``: size of the neuron population;
* ``synapses``: connections of the synaptic layer, zero weights included;
* ``input spikes``: input events, non-zero inputs of the synaptic layer
  (for a MAC layer, non-zero graded values);
* ``output spikes``, ``firing rate``: of the neuron population
  (spikes per neuron per step; "-" for a non-spiking population);
* ``synops(AC)``: accumulates of an AC layer; ``MACs``: effective MACs of a
  MAC layer; both are events x fan-out of the report's variant
  (non-zero weights by default, see :mod:`.fanout`);
* ``bias adds``: bias additions; ``active upd``: active neuron updates
  (of neurons x T updates, see :mod:`.counts`);
* ``energy pJ``: every priced term of the row (:mod:`.model`).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpikedeployError
from ..fileio import write_text
from ..hw_sim.result import SimResult
from ..ir.conventions import recorded_convention
from ..ir.ops import Program
from ..tables import fit_lines, terminal_table
from .conventions import DEFINITIONS as TOOL_DEFINITIONS
from .conventions import all_conventions
from .counts import NeuronCounts, OperationCounts, SynapticCounts, count_operations, \
    is_neuron_layer
from .columns import COLUMN_HEADINGS
from .fanout import VARIANT_LABELS, VARIANTS, is_synaptic
from .model import (ANN_DEFINITION, ANN_PER_PASS_DEFINITION, COMPONENTS, DEFAULT_PROFILE,
                    SNN_DEFINITION, EnergyProfile, ann_energy, ann_macs, check_memory,
                    load_profile, neuron_energy, synaptic_energy)

SCHEMA = "spikedeploy.energy/2"
DEFAULT_VARIANT = "nonzero"

# (key, table header): table columns, in order; CSV adds the columns after them
COLUMNS = [(key, COLUMN_HEADINGS[key]) for key in (
    "layer", "type", "neurons", "synapses", "input_spikes", "output_spikes", "firing_rate",
    "synops_ac", "macs", "bias_adds", "active_updates", "energy_pj")]
CSV_EXTRA = ["kind", "synapses_nonzero", "ops_nonzero_weights", "ops_all_synapses",
             "macs_dense", "neuron_updates", "inactive_updates", "activation_sparsity",
             "energy_synaptic_pj", "energy_bias_pj", "energy_neuron_pj", "energy_spike_pj",
             "energy_memory_pj", "neurobench_effective_acs", "neurobench_effective_macs",
             "neurobench_dense", "sinabs_synops", "syops_flops", "syops_input_rate",
             "syops_sop", "syops_energy_pj"]

DEFINITIONS = {
    "per_inference": "mean over samples of the count over all time steps",
    "input_spikes": "non-zero inputs of a synaptic layer (recurrent inputs read step t-1)",
    "ops": "sum over input events of the element's fan-out (non-zero weights / all synapses)",
    "kind": "AC if every input value is 0 or 1 over the whole run, else MAC",
    "macs_dense": "MAC layers only: synapses x time steps",
    "bias_adds": ("one addition per neuron with a non-zero (folded) bias per step, plus one per "
                  "output element of a synaptic op whose bias could not be folded"),
    "neuron_updates": ("every neuron every step; active when an input event reaches it through a "
                       "non-zero weight, or it has a non-zero bias; else inactive"),
    "firing_rate": "spikes / (neurons x time steps x samples)",
    "activation_sparsity": "1 - firing rate",
    "snn_energy": SNN_DEFINITION,
    "ann_energy": ANN_DEFINITION,
    "ann_energy_per_pass": ANN_PER_PASS_DEFINITION,
    "ratio": "SNN energy / ANN-equivalent energy (x T), per inference",
    "memory": "memory-access term: off unless enabled; synaptic ops x E_weight_read + neuron "
              "updates x E_state",
}


@dataclass
class LayerRow:
    """One report row: a synaptic layer, a neuron population, or the pair."""

    synaptic: SynapticCounts | None
    neuron: NeuronCounts | None

    @property
    def label(self) -> str:
        return " -> ".join(c.name for c in (self.synaptic, self.neuron) if c is not None)

    @property
    def type(self) -> str:
        parts = []
        if self.synaptic is not None:
            parts.append(f"{self.synaptic.op_type}[{self.synaptic.kind}]")
        if self.neuron is not None:
            parts.append(self.neuron.op_type)
        return " -> ".join(parts)


def pair_layers(program: Program) -> list[tuple[str | None, str | None]]:
    """(synaptic op, neuron op) name pairs in execution order (see module docstring)."""
    ops = program.ops
    partner: dict[str, str] = {}
    for op in ops.values():
        if not is_neuron_layer(op):
            continue
        for src in op.inputs:
            if (src not in op.recurrent and src not in partner and is_synaptic(ops[src])
                    and [c.name for c in program.consumers(src)] == [op.name]):
                partner[src] = op.name
                break
    paired_neurons = set(partner.values())
    rows = []
    for op in ops.values():
        if is_synaptic(op):
            rows.append((op.name, partner.get(op.name)))
        elif is_neuron_layer(op) and op.name not in paired_neurons:
            rows.append((None, op.name))
    return rows


def _num(x):
    """JSON-friendly number: int when integral, else rounded to 12 significant digits."""
    if x is None:
        return None
    x = float(x)
    if x.is_integer() and abs(x) < 2**53:
        return int(x)
    return float(f"{x:.12g}")


def _nums(a) -> list:
    return [_num(x) for x in np.asarray(a, np.float64)]


@dataclass
class EnergyReport:
    """Counts of one run priced with an energy profile; see the module docstring."""

    counts: OperationCounts
    profile: EnergyProfile
    variant: str = DEFAULT_VARIANT
    backend: str = ""
    precision: str = ""
    memory: bool = False
    resources: object = None          # hw_sim.loihi2.resources.ResourceMap of the same run
    # What the caller knows about the run, recorded in report.json and the HTML page:
    provenance: dict = field(default_factory=dict)   # input file and SHA-256, versions, command,
    #                                                  date, convention
    accuracy: dict = field(default_factory=dict)     # backend -> test accuracy
    sample: dict = field(default_factory=dict)       # sample 0: label, prediction, input raster
    companions: dict = field(default_factory=dict)   # another precision's report of the same
    #                                                  inputs (the demo's fixed-point run)
    rows: list[LayerRow] = field(init=False)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise SpikedeployError(f"unknown synop variant {self.variant!r} ({'|'.join(VARIANTS)})")
        check_memory(self.profile, self.memory)
        c = self.counts
        self.rows = [LayerRow(c.synaptic.get(s) if s else None, c.neurons.get(n) if n else None)
                     for s, n in pair_layers(c.program)]
        self._syn_e = {name: synaptic_energy(s, self.profile, self.variant, self.memory)
                       for name, s in c.synaptic.items()}
        self._neu_e = {name: neuron_energy(n, self.profile, self.memory)
                       for name, n in c.neurons.items()}
        self._conventions = None

    # -- headline numbers (per inference) ---------------------------------
    @property
    def num_samples(self) -> int:
        return self.counts.num_samples

    @property
    def num_steps(self) -> int:
        return self.counts.num_steps

    def row_energy_per_step(self, row: LayerRow) -> dict[str, np.ndarray]:
        """Energy of a row per step (pJ, total over the batch), by component."""
        out = {k: np.zeros(self.num_steps) for k in COMPONENTS}
        for parts in ([self._syn_e[row.synaptic.name]] if row.synaptic else []) + \
                ([self._neu_e[row.neuron.name]] if row.neuron else []):
            for k in COMPONENTS:
                out[k] = out[k] + parts[k]
        return out

    @property
    def energy_per_step_pj(self) -> np.ndarray:
        """SNN energy per time step, per inference (pJ), all layers and terms."""
        total = np.zeros(self.num_steps)
        for parts in list(self._syn_e.values()) + list(self._neu_e.values()):
            total = total + sum(parts.values())
        return total / self.num_samples

    @property
    def energy_breakdown_pj(self) -> dict[str, float]:
        """SNN energy per inference by component (pJ)."""
        out = dict.fromkeys(COMPONENTS, 0.0)
        for parts in list(self._syn_e.values()) + list(self._neu_e.values()):
            for k in COMPONENTS:
                out[k] += float(parts[k].sum())
        return {k: v / self.num_samples for k, v in out.items()}

    @property
    def total_energy_pj(self) -> float:
        """SNN energy per inference (pJ), mean over samples; see ``model.SNN_DEFINITION``."""
        return float(sum(self.energy_breakdown_pj.values()))

    @property
    def synaptic_energy_pj(self) -> float:
        """The synaptic-operation term alone, per inference (the literature's usual figure)."""
        return self.energy_breakdown_pj["synaptic"]

    @property
    def ann_macs(self) -> int:
        """MACs of one dense pass (every synapse once); the ANN equivalent does it T times."""
        return ann_macs(self.counts)

    @property
    def ann_energy_breakdown_pj(self) -> dict[str, float]:
        return ann_energy(self.counts, self.profile, self.memory)

    @property
    def ann_energy_pj(self) -> float:
        """ANN-equivalent energy per inference (pJ): every synapse a MAC at every step."""
        return float(sum(self.ann_energy_breakdown_pj.values()))

    @property
    def ann_energy_per_pass_pj(self) -> float:
        """ANN-equivalent energy of one pass (not x T), per inference (pJ)."""
        return float(sum(ann_energy(self.counts, self.profile, self.memory, per_pass=True).values()))

    @property
    def ratio(self) -> float | None:
        """SNN energy / ANN-equivalent energy (None without synaptic layers)."""
        ann = self.ann_energy_pj
        return self.total_energy_pj / ann if ann else None

    @property
    def firing_rate(self) -> float | None:
        spiking = [c for c in self.counts.neurons.values() if c.spiking]
        slots = sum(c.neurons for c in spiking) * self.num_steps * self.num_samples
        return sum(int(c.spikes.sum()) for c in spiking) / slots if slots else None

    @property
    def conventions(self) -> dict:
        """NeuroBench, sinabs and fr x T x FLOPs figures (see :mod:`.conventions`)."""
        if self._conventions is None:
            self._conventions = all_conventions(self.counts, self.profile)
        return self._conventions

    # -- rows -------------------------------------------------------------
    def _values(self, row: LayerRow, scale: float) -> dict:
        """Row values; ``scale`` = 1/N for per inference, 1 for totals over samples."""
        s, n = row.synaptic, row.neuron
        v = dict.fromkeys([k for k, _ in COLUMNS] + CSV_EXTRA)
        v.update(layer=row.label, type=row.type, kind=s.kind if s else None,
                 neurons=n.neurons if n else None,
                 synapses=s.synapses if s else None,
                 synapses_nonzero=s.synapses_nonzero if s else None)
        if s is not None:
            v.update(input_spikes=s.events.sum() * scale,
                     synops_ac=s.acs(self.variant).sum() * scale,
                     macs=s.macs(self.variant).sum() * scale,
                     macs_dense=s.dense_macs().sum() * scale,
                     ops_nonzero_weights=s.ops["nonzero"].sum() * scale,
                     ops_all_synapses=s.ops["all"].sum() * scale)
            conv = self.conventions
            nb = conv["neurobench"]["per_layer"].get(s.name)
            if nb is not None:
                factor = scale * self.num_samples     # the tools' figures are per sample
                v.update(neurobench_effective_acs=nb["Effective_ACs"] * factor,
                         neurobench_effective_macs=nb["Effective_MACs"] * factor,
                         neurobench_dense=nb["Dense"] * factor,
                         sinabs_synops=conv["sinabs"]["per_layer"][s.name] * factor)
            sy = conv["syops"]["per_layer"][s.name]
            v.update(syops_flops=sy["flops"], syops_input_rate=sy["input_rate"],
                     syops_sop=None if sy["sop"] is None else sy["sop"] * scale * self.num_samples,
                     syops_energy_pj=sy["energy_pj"] * scale * self.num_samples)
        bias = 0 if s is None else s.bias_adds.sum()
        if n is not None:
            bias += n.bias_adds.sum()
            v.update(neuron_updates=n.updates.sum() * scale, active_updates=n.active.sum() * scale,
                     inactive_updates=n.inactive.sum() * scale)
            if n.spiking:
                v.update(output_spikes=n.spikes.sum() * scale, firing_rate=n.firing_rate,
                         activation_sparsity=n.activation_sparsity)
        v["bias_adds"] = bias * scale
        energy = {k: float(a.sum()) * scale for k, a in self.row_energy_per_step(row).items()}
        for k in COMPONENTS:
            v[f"energy_{k}_pj"] = energy[k]
        v["energy_pj"] = sum(energy.values())
        return {k: (x if isinstance(x, str) else _num(x)) for k, x in v.items()}

    def _totals(self, scale: float) -> dict:
        rows = [self._values(r, scale) for r in self.rows]

        def total(key):
            vals = [r[key] for r in rows if r[key] is not None]
            return _num(sum(vals)) if vals else None

        keys = [k for k, _ in COLUMNS[2:]] + CSV_EXTRA
        skip = {"firing_rate", "kind", "activation_sparsity", "syops_input_rate"}
        t = {k: total(k) for k in keys if k not in skip}
        rate = self.firing_rate
        t.update(layer="total", type="", kind=None, firing_rate=_num(rate),
                 activation_sparsity=None if rate is None else _num(1 - rate),
                 syops_input_rate=None)
        return t

    def per_inference_rows(self) -> list[dict]:
        """Every row's values, per inference (mean over samples)."""
        return [self._values(r, 1.0 / self.num_samples) for r in self.rows]

    # -- output -----------------------------------------------------------
    def to_table(self) -> str:
        scale = 1.0 / self.num_samples
        rows = self.per_inference_rows() + [self._totals(scale)]
        table = _terminal_table(rows)
        p = self.profile
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.4f}"
        br = self.energy_breakdown_pj
        conv = self.conventions
        nb, sn, sy = conv["neurobench"], conv["sinabs"], conv["syops"]
        sparsity = nb["ActivationSparsity"]
        lines = [
            f"Energy per inference (mean over {self.num_samples} samples x {self.num_steps} steps "
            f"of dt={self.counts.program.dt:g} s"
            + (f", thresholds x {g:g}" if (g := self.counts.program.threshold_scale) != 1.0
               else "") + "; "
            f"{self.backend or '?'} {self.precision or ''} run; fan-out: "
            f"{VARIANT_LABELS[self.variant]}; profile {p.name}: E_AC {p.e_ac_pj:g} pJ, "
            f"E_MAC {p.e_mac_pj:g} pJ)",
            table, "",
            "SNN energy by term (pJ per inference): " + ", ".join(
                f"{k} {br[k]:,.1f}" for k in COMPONENTS if k != "memory")
            + (f", memory {br['memory']:,.1f}" if self.memory else ", memory term off"),
            f"SNN energy:            {self.total_energy_pj:,.1f} pJ per inference",
            f"ANN-equivalent energy: {self.ann_energy_pj:,.1f} pJ per inference "
            f"({self.ann_macs:,} MACs x T={self.num_steps}: every synapse a MAC at every step, "
            f"+ the same bias additions)",
            f"ANN one pass (not x T): {self.ann_energy_per_pass_pj:,.1f} pJ",
            f"SNN / ANN:             {ratio}",
            "",
            "Other tools' definitions (per inference; see report.json 'definitions'):",
            f"  NeuroBench: Effective_ACs {nb['Effective_ACs']:,.1f}  Effective_MACs "
            f"{nb['Effective_MACs']:,.1f}  Dense {nb['Dense']:,.1f}  ActivationSparsity "
            + ("n/a" if sparsity is None else f"{sparsity:.4f}"),
            f"  sinabs synops (value-weighted, all synapses): {sn['total']:,.1f}",
            f"  fr x T x FLOPs (syops/Spikformer/SDM): SOP {sy['sop_total']:,.1f}, graded-layer "
            f"FLOPs {sy['flops_graded']:,}, energy {sy['energy_pj']:,.1f} pJ",
        ]
        return fit_lines("\n".join(lines))

    __str__ = to_table

    def to_dict(self) -> dict:
        n = self.num_samples
        layers = []
        for row, values in zip(self.rows, self.per_inference_rows()):
            energy = self.row_energy_per_step(row)
            layers.append({
                "layer": row.label, "type": row.type, "per_inference": values,
                "energy_per_step_per_inference_pj": {k: _nums(a / n) for k, a in energy.items()},
                "synaptic": self._synaptic_dict(row.synaptic) if row.synaptic else None,
                "neuron": self._neuron_dict(row.neuron) if row.neuron else None})
        conv = self.conventions
        return {
            "schema": SCHEMA,
            "hardware": self._hardware_dict(),
            "backend": self.backend, "precision": self.precision,
            "num_samples": n, "num_steps": self.num_steps,
            "dt": self.counts.program.dt,
            "convention": recorded_convention(self.counts.program.metadata),
            "provenance": _jsonable(self.provenance), "accuracy": _jsonable(self.accuracy),
            "sample": _jsonable({k: v for k, v in self.sample.items() if k != "input_raster"}),
            "comparison": {name: _summary(other) for name, other in
                           {**{self.precision or "this run": self}, **self.companions}.items()},
            "threshold_scale": self.counts.program.threshold_scale,
            "variant": self.variant, "variant_label": VARIANT_LABELS[self.variant],
            "memory_term": self.memory,
            "profile": self.profile.to_dict(),
            "definitions": DEFINITIONS | {f"tool_{k}": v for k, v in TOOL_DEFINITIONS.items()},
            "layers": layers,
            "totals": {"per_inference": self._totals(1.0 / n),
                       "over_all_samples": self._totals(1.0)},
            "snn_energy_pj": _num(self.total_energy_pj),
            "snn_energy_by_term_pj": {k: _num(v) for k, v in self.energy_breakdown_pj.items()},
            "snn_energy_per_step_pj": _nums(self.energy_per_step_pj),
            "ann_equivalent": {
                "macs_per_pass": self.ann_macs, "macs": self.ann_macs * self.num_steps,
                "energy_pj": _num(self.ann_energy_pj),
                "energy_by_term_pj": {k: _num(v) for k, v in self.ann_energy_breakdown_pj.items()},
                "definition": ANN_DEFINITION,
                "per_pass_energy_pj": _num(self.ann_energy_per_pass_pj),
                "per_pass_definition": ANN_PER_PASS_DEFINITION},
            "ratio_snn_to_ann": _num(self.ratio),
            "firing_rate": _num(self.firing_rate),
            "other_tools": _jsonable(conv),
        }

    def _synaptic_dict(self, c: SynapticCounts) -> dict:
        n = self.num_samples
        steps = {"input_events": c.events, "ops_nonzero_weights": c.ops["nonzero"],
                 "ops_all_synapses": c.ops["all"], "acs": c.acs(self.variant),
                 "macs": c.macs(self.variant), "bias_adds": c.bias_adds,
                 "value_weighted_ops": c.value_ops}
        return {
            "name": c.name, "op_type": c.op_type, "kind": c.kind,
            "in_size": c.in_size, "out_size": c.out_size,
            "synapses": c.synapses, "synapses_nonzero": c.synapses_nonzero,
            "flops_per_pass": c.flops, "input_rate": _num(c.input_rate),
            "over_all_samples": {k: _num(a.sum()) for k, a in steps.items()}
            | {"macs_dense": _num(c.dense_macs().sum())},
            "per_step_per_inference": {k: _nums(a / n) for k, a in steps.items()},
            "neurobench_binary_per_step": [bool(b) for b in c.step_binary],
        }

    def _neuron_dict(self, c: NeuronCounts) -> dict:
        n = self.num_samples
        steps = {"active_updates": c.active, "inactive_updates": c.inactive,
                 "bias_adds": c.bias_adds}
        if c.spiking:
            steps["spikes"] = c.spikes
        return {
            "name": c.name, "op_type": c.op_type, "neurons": c.neurons, "spiking": c.spiking,
            "biased_neurons": c.biased_neurons,
            "firing_rate": _num(c.firing_rate),
            "activation_sparsity": _num(c.activation_sparsity),
            "firing_rate_per_step": None if not c.spiking else _nums(c.firing_rate_per_step),
            "over_all_samples": {k: _num(a.sum()) for k, a in steps.items()}
            | {"spikes": _num(c.spikes.sum()) if c.spiking else None,
               "updates": _num(c.updates.sum())},
            "per_step_per_inference": {k: _nums(a / n) for k, a in steps.items()}
            | {"spikes": _nums(c.spikes / n) if c.spiking else None},
        }

    def to_json(self, path=None) -> str:
        """:meth:`to_dict` as JSON; written atomically if ``path``."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            write_text(path, text)
        return text

    def to_csv(self, path=None) -> str:
        """Per-inference rows, a total row and ANN-equivalent rows; written if ``path``."""
        keys = [k for k, _ in COLUMNS] + CSV_EXTRA
        rows = self.per_inference_rows() + [self._totals(1.0 / self.num_samples)]
        ann = dict.fromkeys(keys)
        br = self.ann_energy_breakdown_pj
        ann.update(layer="ANN equivalent", type="dense, every synapse a MAC at every step (x T)",
                   kind="MAC", synapses=self.ann_macs, macs=self.ann_macs * self.num_steps,
                   energy_pj=_num(self.ann_energy_pj),
                   **{f"energy_{k}_pj": _num(br[k]) for k in COMPONENTS})
        one = dict.fromkeys(keys)
        one.update(layer="ANN equivalent, one pass", type="dense, once per inference (not x T)",
                   kind="MAC", synapses=self.ann_macs, macs=self.ann_macs,
                   energy_pj=_num(self.ann_energy_per_pass_pj))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows + [ann, one]:
            writer.writerow({k: "" if r.get(k) is None else r[k] for k in keys})
        if path is not None:
            write_text(path, buf.getvalue())
        return buf.getvalue()

    def to_html(self, path=None) -> str:
        """The self-contained HTML report (inline SVG, no network); written if ``path``."""
        from .html_report import render_html
        text = render_html(self)
        if path is not None:
            write_text(path, text)
        return text

    def _hardware_dict(self) -> dict | None:
        """Cores per layer on the report's chip, from the resource map (``resources.*``)."""
        rmap = self.resources
        if rmap is None:
            return None
        return {"chip": rmap.chip.name, "estimate": rmap.chip.estimate,
                "cores": rmap.totals["cores"], "chips": rmap.totals["chips"],
                "fits": rmap.totals["fits"], "resource_map": RESOURCE_FILES[0],
                "cores_per_layer": {lay.name: lay.cores for lay in rmap.layers}}

    def write(self, out_dir) -> list[Path]:
        """report.json, report.csv and report.html in ``out_dir`` (and the resource map it
        links to, resources.html and resources.csv), as one transaction: all of them or, if
        any write fails, none; returns their paths."""
        from ..fileio import write_files
        from ..hw_sim.loihi2.resource_formats import to_csv, to_html
        out = Path(out_dir)
        contents = {out / "report.json": self.to_json(), out / "report.csv": self.to_csv(),
                    out / "report.html": self.to_html()}
        if self.resources is not None:
            html_path, csv_path = (out / name for name in RESOURCE_FILES)
            contents[html_path] = to_html(self.resources, f"resource map on "
                                                          f"{self.resources.chip.name}")
            contents[csv_path] = to_csv(self.resources)
        return write_files(contents)


RESOURCE_FILES = ("resources.html", "resources.csv")


def _summary(report: "EnergyReport") -> dict:
    """The headline numbers of a run, for side-by-side comparison (float vs fixed)."""
    spikes = sum(float(c.spikes.sum()) for c in report.counts.neurons.values() if c.spiking)
    return {"backend": report.backend, "precision": report.precision,
            "snn_energy_pj": _num(report.total_energy_pj),
            "ratio_snn_to_ann": None if report.ratio is None else _num(report.ratio),
            "firing_rate": None if report.firing_rate is None else _num(report.firing_rate),
            "spikes_per_inference": _num(spikes / max(1, report.num_samples)),
            "accuracy": next((v for k, v in (report.accuracy or {}).items()
                              if k == report.precision or k.endswith(" " + report.precision)),
                             None)}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, str)) or obj is None:
        return obj
    return _num(obj)




def _terminal_table(rows: list[dict]) -> str:
    """The per-layer rows (the last one the total) at most TABLE_WIDTH wide."""
    return terminal_table([head for _, head in COLUMNS],
                          [[_cell(k, row[k]) for k, _ in COLUMNS] for row in rows],
                          text_cols=2, whole_cols=1, section_before_last=True)


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if key == "firing_rate":
        return f"{value:.4f}"
    if key == "energy_pj":
        return f"{value:,.1f}"
    return f"{value:,}" if float(value).is_integer() else f"{value:,.1f}"


def energy_report(result: SimResult, profile: str | EnergyProfile = DEFAULT_PROFILE,
                  variant: str = DEFAULT_VARIANT, memory: bool = False,
                  chip: str | None = None) -> EnergyReport:
    """Count a run's operations and price them.

    ``variant``: "nonzero" | "all" synapses; ``memory``: add the memory-access term;
    ``chip``: also map the layers onto that chip's cores (the report links the map).
    """
    profile = load_profile(profile)
    check_memory(profile, memory)
    resources = None
    if chip is not None:
        from ..hw_sim.loihi2.resources import resource_map
        resources = resource_map(result.program, chip, result.records)
    return EnergyReport(count_operations(result), profile, variant,
                        backend=result.backend, precision=result.precision, memory=memory,
                        resources=resources)
