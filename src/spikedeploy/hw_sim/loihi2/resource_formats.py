"""The resource map as text (<= 100 columns), CSV and a self-contained HTML page."""
from __future__ import annotations

import csv
import html
import io
import textwrap

from .resources import CEILINGS, ResourceMap
from ...tables import terminal_table


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "~"


_SHORT_CEILING = {"compartments": "compartments", "input_axons": "input axons",
                  "output_axons": "output axons", "synapse_memory": "synapse mem"}


def format_table(rmap: ResourceMap) -> str:
    """Plain-text table, at most 100 columns wide."""
    chip = rmap.chip
    head = (f"{chip.name}: {chip.description}. Per core: {chip.compartments} compartments, "
            f"{chip.input_axons} input axons, {chip.output_axons} output axons, "
            f"{chip.synapse_memory_bits} synapse bits; {chip.cores_per_chip} cores per chip.")
    lines = textwrap.wrap(head, 100)
    if chip.estimate:
        lines += textwrap.wrap("ESTIMATE: " + chip.note, 100)
    # headings are the JSON/CSV field names, spaced (tables.py keeps them within 100 columns)
    main_keys = ["name", "neurons", "input_axons", "output_axons", "synapses_nonzero",
                 "synapse_bits", "cores", "limiting", "utilisation"]
    rows = []
    for lay in rmap.layers:
        values = {"name": lay.name, "neurons": f"{lay.neurons:,}",
                  "input_axons": f"{lay.input_axons:,}", "output_axons": f"{lay.output_axons:,}",
                  "synapses_nonzero": f"{lay.synapses_nonzero:,}",
                  "synapse_bits": f"{lay.synapse_bits:,}", "cores": f"{lay.cores:,}",
                  "limiting": lay.limiting + ("" if lay.fits else " (!)"),
                  "utilisation": f"{lay.utilisation:.3f}"}
        rows.append([values[k] for k in main_keys])
    lines += ["", terminal_table([k.replace("_", " ") for k in main_keys], rows, text_cols=1,
                                 whole_cols=0)]
    t = rmap.totals
    lines.append(f"total: {t['layers']} layers, {t['neurons']} neurons, {t['cores']} cores, "
                 f"{t['chips']} chip(s)" + ("" if t["fits"] else "; DOES NOT FIT (see '!')"))
    if any(lay.spikes_per_step is not None for lay in rmap.layers):
        keys = ["name", "spikes_per_step", "spikes_per_core_per_step",
                "busiest_core_spikes_per_step", "traffic_per_step",
                "busiest_core_synops_per_step"]
        lines += ["", terminal_table(
            [k.replace("_", " ") for k in keys],
            [[lay.name] + [f"{getattr(lay, k):.3f}" for k in keys[1:]] for lay in rmap.layers],
            text_cols=1, whole_cols=0)]
    for lay in rmap.layers:
        if lay.problem:
            lines += textwrap.wrap(f"! {lay.name}: {lay.problem}", 100)
    for note in rmap.notes:
        lines += textwrap.wrap(f"note: {note}", 100)
    return "\n".join(lines) + "\n"


_CSV_FIELDS = ("name", "op_type", "neurons", "cores", "neurons_per_core", "limiting", "fits",
               "problem", "formula_cores", "input_axons", "output_axons", "synapses_nonzero",
               "synapses_total", "weight_bits", "delay_bits", "synapse_bits",
               "compartment_profiles", "utilisation", "spikes_per_step",
               "spikes_per_core_per_step", "busiest_core_spikes_per_step", "traffic_per_step",
               "busiest_core_synops_per_step")


def to_csv(rmap: ResourceMap) -> str:
    """One row per layer (fullest core's usage in ``max_core_*``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(_CSV_FIELDS) + [f"max_core_{c}" for c in CEILINGS]
                    + ["sources", "targets"])
    for lay in rmap.layers:
        values = ["" if getattr(lay, f) is None else getattr(lay, f) for f in _CSV_FIELDS]
        writer.writerow(values + [lay.max_core[c] for c in CEILINGS]
                        + [" ".join(lay.sources), " ".join(lay.targets)])
    return buf.getvalue()


def to_html(rmap: ResourceMap, title: str = "spikedeploy resource map") -> str:
    """One self-contained page: the chip's ceilings (with their sources), a row per layer."""
    chip = rmap.chip
    t = rmap.totals
    cols = ["name", "neurons", "input_axons", "output_axons", "synapses_nonzero",
            "synapse_bits", "cores", "limiting", "utilisation"]
    if any(lay.spikes_per_step is not None for lay in rmap.layers):
        cols += ["spikes_per_step", "spikes_per_core_per_step", "traffic_per_step",
                 "busiest_core_synops_per_step"]

    def cell(value):
        if isinstance(value, float):
            value = f"{value:.3g}"
        return f"<td>{html.escape(str(value))}</td>"

    rows = "".join("<tr>" + "".join(cell(getattr(lay, c)) for c in cols) + "</tr>"
                   for lay in rmap.layers)
    sources = chip.sources
    limits = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}"
                     + (f" <small>({html.escape(sources[k])})</small>" if k in sources else "")
                     + "</li>" for k, v in chip.to_dict().items()
                     if k not in ("note", "description", "sources"))
    estimate = f"<p><b>Estimate.</b> {html.escape(chip.note)}</p>" if chip.estimate else ""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in rmap.notes)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            "</title><style>body{font-family:sans-serif;max-width:1100px;margin:1em auto}"
            "table{border-collapse:collapse;display:block;overflow-x:auto}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
            "td:first-child{text-align:left}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(chip.description)}: "
            f"{t['cores']} cores, {t['chips']} chip(s)"
            f"{'' if t['fits'] else ' &mdash; DOES NOT FIT'}.</p>{estimate}"
            "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
            f"{rows}</table><h2>Chip profile</h2><ul>{limits}</ul>"
            + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "") + "</body></html>\n")
