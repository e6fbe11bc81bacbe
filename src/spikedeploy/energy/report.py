"""The per-layer energy report: terminal table, JSON and CSV.

Rows pair each synaptic layer with the neuron population it feeds
("fc1 -> lif1", type "Affine[AC] -> LIF"), which reads like the network's
layers. A neuron population is paired with its first forward (non-recurrent)
synaptic input whose only consumer it is; every other synaptic layer (e.g. a
recurrent Dense) and every other population gets a row of its own, so each op
appears in exactly one row and totals never double count. ``[AC]`` or
``[MAC]`` after a synaptic type says how its operations were counted.

Table and CSV values are per inference (mean over the N samples). JSON holds
the same, the totals over all samples, per-time-step arrays (per inference)
and the definitions used. Columns:

* ``neurons``: size of the neuron population;
* ``synapses``: connections of the synaptic layer, zero weights included;
* ``input spikes``: input events, non-zero inputs of the synaptic layer
  (for a MAC layer, non-zero graded values);
* ``output spikes``, ``firing rate``: of the neuron population
  (spikes per neuron per step; "-" for a non-spiking population);
* ``synops(AC)``: accumulates of an AC layer; ``MACs``: effective MACs of a
  MAC layer; both are events x fan-out of the report's variant
  (non-zero weights by default, see :mod:`.fanout`);
* ``energy pJ``: ACs x E_AC + MACs x E_MAC (:mod:`.model`).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field


from ..errors import SpikedeployError
from ..fileio import write_text
from ..hw_sim.result import SimResult
from ..ir.program import Program
from .counts import NeuronCounts, OperationCounts, SynapticCounts, count_operations, \
    is_neuron_layer
from .fanout import VARIANT_LABELS, VARIANTS, is_synaptic
from .model import (ANN_DEFINITION, DEFAULT_PROFILE, SNN_DEFINITION, EnergyProfile,
                    ann_energy_pj, ann_macs, layer_energy_pj, load_profile)

SCHEMA = "spikedeploy.energy/1"
DEFAULT_VARIANT = "nonzero"

# (key, table header): table columns, in order; CSV adds the columns after them
COLUMNS = [
    ("layer", "layer"), ("type", "type"), ("neurons", "neurons"), ("synapses", "synapses"),
    ("input_spikes", "input spikes"), ("output_spikes", "output spikes"),
    ("firing_rate", "firing rate"), ("synops_ac", "synops(AC)"), ("macs", "MACs"),
    ("energy_pj", "energy pJ"),
]
CSV_EXTRA = ["kind", "synapses_nonzero", "ops_nonzero_weights", "ops_all_synapses",
             "macs_dense"]


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


@dataclass
class EnergyReport:
    """Counts of one run priced with an energy profile; see the module docstring."""

    counts: OperationCounts
    profile: EnergyProfile
    variant: str = DEFAULT_VARIANT
    backend: str = ""
    precision: str = ""
    rows: list[LayerRow] = field(init=False)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise SpikedeployError(f"unknown synop variant {self.variant!r} ({'|'.join(VARIANTS)})")
        c = self.counts
        self.rows = [LayerRow(c.synaptic.get(s) if s else None, c.neurons.get(n) if n else None)
                     for s, n in pair_layers(c.program)]

    # -- headline numbers (per inference) ---------------------------------
    @property
    def num_samples(self) -> int:
        return self.counts.num_samples

    @property
    def num_steps(self) -> int:
        return self.counts.num_steps

    def _layer_energy_total(self, c: SynapticCounts) -> float:
        return float(layer_energy_pj(c, self.profile, self.variant).sum())

    @property
    def total_energy_pj(self) -> float:
        """SNN energy per inference (pJ), mean over samples."""
        total = sum(self._layer_energy_total(c) for c in self.counts.synaptic.values())
        return total / self.num_samples if self.num_samples else 0.0

    @property
    def ann_macs(self) -> int:
        return ann_macs(self.counts)

    @property
    def ann_energy_pj(self) -> float:
        """ANN-equivalent energy per inference (pJ); see ``model.ANN_DEFINITION``."""
        return ann_energy_pj(self.counts, self.profile)

    @property
    def ratio(self) -> float | None:
        """SNN energy / ANN-equivalent energy (None without synaptic layers)."""
        ann = self.ann_energy_pj
        return self.total_energy_pj / ann if ann else None

    # -- rows -------------------------------------------------------------
    def _values(self, row: LayerRow, scale: float) -> dict:
        """Row values; ``scale`` = 1/N for per inference, 1 for totals over samples."""
        s, n = row.synaptic, row.neuron
        v = {"layer": row.label, "type": row.type, "kind": s.kind if s else None,
             "neurons": n.neurons if n else None,
             "synapses": s.synapses if s else None,
             "synapses_nonzero": s.synapses_nonzero if s else None,
             "input_spikes": None, "output_spikes": None, "firing_rate": None,
             "synops_ac": None, "macs": None, "macs_dense": None,
             "ops_nonzero_weights": None, "ops_all_synapses": None, "energy_pj": 0.0}
        if s is not None:
            v.update(input_spikes=s.events.sum() * scale,
                     synops_ac=s.acs(self.variant).sum() * scale,
                     macs=s.macs(self.variant).sum() * scale,
                     macs_dense=s.dense_macs().sum() * scale,
                     ops_nonzero_weights=s.ops["nonzero"].sum() * scale,
                     ops_all_synapses=s.ops["all"].sum() * scale,
                     energy_pj=self._layer_energy_total(s) * scale)
        if n is not None and n.spiking:
            v.update(output_spikes=n.spikes.sum() * scale, firing_rate=n.firing_rate)
        return {k: (x if isinstance(x, str) else _num(x)) for k, x in v.items()}

    def _totals(self, scale: float) -> dict:
        rows = [self._values(r, scale) for r in self.rows]

        def total(key):
            vals = [r[key] for r in rows if r[key] is not None]
            return _num(sum(vals)) if vals else None

        t = {k: total(k) for k in ("neurons", "synapses", "synapses_nonzero", "input_spikes",
                                   "output_spikes", "synops_ac", "macs", "macs_dense",
                                   "ops_nonzero_weights", "ops_all_synapses", "energy_pj")}
        spiking = [c for c in self.counts.neurons.values() if c.spiking]
        slots = sum(c.neurons for c in spiking) * self.num_steps * self.num_samples
        rate = sum(int(c.spikes.sum()) for c in spiking) / slots if slots else None
        t.update(layer="total", type="", kind=None, firing_rate=_num(rate))
        return t

    def per_inference_rows(self) -> list[dict]:
        """Every row's values, per inference (mean over samples)."""
        return [self._values(r, 1.0 / self.num_samples) for r in self.rows]

    # -- output -----------------------------------------------------------
    def to_table(self) -> str:
        scale = 1.0 / self.num_samples
        rows = self.per_inference_rows() + [self._totals(scale)]
        cells = [[h for _, h in COLUMNS]] + [[_cell(k, r[k]) for k, _ in COLUMNS] for r in rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]

        def fmt(line):
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(line, widths))).rstrip()

        rule = "-" * len(fmt(cells[0]))
        p = self.profile
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.4f}"
        lines = [
            f"Energy per inference (mean over {self.num_samples} samples x {self.num_steps} steps; "
            f"fan-out: {VARIANT_LABELS[self.variant]}; profile {p.name}: "
            f"E_AC {p.e_ac_pj:g} pJ, E_MAC {p.e_mac_pj:g} pJ)",
            fmt(cells[0]), rule, *(fmt(line) for line in cells[1:-1]), rule, fmt(cells[-1]), "",
            f"SNN energy:            {self.total_energy_pj:,.1f} pJ per inference",
            f"ANN-equivalent energy: {self.ann_energy_pj:,.1f} pJ per inference "
            f"({self.ann_macs:,} MACs: every synapse one MAC, one dense pass, not x T)",
            f"SNN / ANN:             {ratio}",
        ]
        return "\n".join(lines)

    __str__ = to_table

    def to_dict(self) -> dict:
        n = self.num_samples
        layers = []
        for row, values in zip(self.rows, self.per_inference_rows()):
            layers.append({"layer": row.label, "type": row.type, "per_inference": values,
                           "synaptic": self._synaptic_dict(row.synaptic) if row.synaptic else None,
                           "neuron": self._neuron_dict(row.neuron) if row.neuron else None})
        return {
            "schema": SCHEMA,
            "backend": self.backend, "precision": self.precision,
            "num_samples": n, "num_steps": self.num_steps,
            "variant": self.variant, "variant_label": VARIANT_LABELS[self.variant],
            "profile": self.profile.to_dict(),
            "definitions": {
                "per_inference": "mean over samples of the count over all time steps",
                "input_spikes": "non-zero inputs of a synaptic layer (recurrent inputs read step t-1)",
                "ops": "sum over input events of the element's fan-out (non-zero weights / all synapses)",
                "kind": "AC if every input value is 0 or 1, else MAC",
                "macs_dense": "MAC layers only: synapses x time steps",
                "firing_rate": "spikes / (neurons x time steps x samples)",
                "snn_energy": SNN_DEFINITION,
                "ann_energy": ANN_DEFINITION,
                "ratio": "SNN energy / ANN-equivalent energy, per inference",
            },
            "layers": layers,
            "totals": {"per_inference": self._totals(1.0 / n),
                       "over_all_samples": self._totals(1.0)},
            "snn_energy_pj": _num(self.total_energy_pj),
            "ann_equivalent": {"macs": self.ann_macs, "energy_pj": _num(self.ann_energy_pj),
                               "definition": ANN_DEFINITION},
            "ratio_snn_to_ann": _num(self.ratio),
        }

    def _synaptic_dict(self, c: SynapticCounts) -> dict:
        n = self.num_samples
        energy = layer_energy_pj(c, self.profile, self.variant)
        steps = {"input_events": c.events, "ops_nonzero_weights": c.ops["nonzero"],
                 "ops_all_synapses": c.ops["all"], "acs": c.acs(self.variant),
                 "macs": c.macs(self.variant), "energy_pj": energy}
        return {
            "name": c.name, "op_type": c.op_type, "kind": c.kind,
            "in_size": c.in_size, "out_size": c.out_size,
            "synapses": c.synapses, "synapses_nonzero": c.synapses_nonzero,
            "over_all_samples": {k: _num(a.sum()) for k, a in steps.items()}
            | {"macs_dense": _num(c.dense_macs().sum())},
            "per_step_per_inference": {k: [_num(x) for x in a / n] for k, a in steps.items()},
        }

    def _neuron_dict(self, c: NeuronCounts) -> dict:
        n = self.num_samples
        return {
            "name": c.name, "op_type": c.op_type, "neurons": c.neurons, "spiking": c.spiking,
            "firing_rate": _num(c.firing_rate),
            "over_all_samples": {"spikes": _num(c.spikes.sum()) if c.spiking else None},
            "per_step_per_inference": {
                "spikes": [_num(x) for x in c.spikes / n] if c.spiking else None},
        }

    def to_json(self, path) -> None:
        """Write :meth:`to_dict` as JSON, atomically (temporary file + os.replace)."""
        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def to_csv(self, path) -> None:
        """Per-inference rows, a total row and an ANN-equivalent row, atomically."""
        keys = [k for k, _ in COLUMNS] + CSV_EXTRA
        rows = self.per_inference_rows() + [self._totals(1.0 / self.num_samples)]
        ann = dict.fromkeys(keys)
        ann.update(layer="ANN equivalent", type="dense, once per inference", kind="MAC",
                   synapses=self.ann_macs, macs=self.ann_macs, energy_pj=_num(self.ann_energy_pj))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows + [ann]:
            writer.writerow({k: "" if r.get(k) is None else r[k] for k in keys})
        write_text(path, buf.getvalue())


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
                  variant: str = DEFAULT_VARIANT) -> EnergyReport:
    """Count a run's operations and price them (``variant``: "nonzero" | "all")."""
    profile = load_profile(profile)
    return EnergyReport(count_operations(result), profile, variant,
                        backend=result.backend, precision=result.precision)
