"""A self-contained HTML energy report: figures drawn by matplotlib as inline SVG, inline
CSS, no script, no network.

``render_html(report)`` returns one HTML document that opens in any browser
offline: provenance (input file and its SHA-256, versions, command, date, dt,
convention, profile), accuracy per backend, float vs fixed point side by side
when both ran, per-layer bars of operations and of energy (by term), firing
rates over time and their distribution across neurons (dead and saturated
units), spike rasters of one sample with its input, label and prediction, the
SNN energy per time step, the SNN vs ANN comparison, the per-layer table, the
other tools' figures, the profile with the source of every number, and the
definitions used.
"""
from __future__ import annotations

from html import escape

import numpy as np

from . import plots
from .columns import COLUMN_HEADINGS
from .fanout import VARIANT_LABELS
from .model import COMPONENTS

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1000px;color:#222;line-height:1.4;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.headline{display:flex;gap:16px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:150px}
.card b{display:block;font-size:20px}.muted{color:#666;font-size:13px}
figure{margin:16px 0;max-width:100%}figcaption{color:#555;font-size:13px}
svg.plot{width:100%;height:auto;display:block}
.scroll{overflow-x:auto;max-width:100%}
.prov td{text-align:left;word-break:break-all}
dl dt{font-weight:bold;margin-top:6px}dl dd{margin-left:16px}
"""


def _table(headers, rows, left_cols=1):
    """Numbers right-aligned; the first ``left_cols`` columns and text cells left-aligned."""
    text_cols = {i for r in rows for i, v in enumerate(r) if isinstance(v, str) and v}
    out = ["<table><tr>"]
    out += [f'<th class="{"l" if i < left_cols or i in text_cols else ""}">{escape(h)}</th>'
            for i, h in enumerate(headers)]
    out.append("</tr>")
    for r in rows:
        out.append("<tr>" + "".join(
            f'<td class="{"l" if i < left_cols or isinstance(v, str) else ""}">'
            f'{escape(_cellfmt(v))}</td>' for i, v in enumerate(r)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _cellfmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v)
    v = float(v)
    if v.is_integer():
        return f"{int(v):,}"
    return f"{v:,.4g}" if abs(v) < 1 else f"{v:,.1f}"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _scroll(table: str) -> str:
    """Wide tables scroll inside their box instead of widening the page."""
    return f'<div class="scroll">{table}</div>'


def _figures(report, rows) -> list[str]:
    t, n = report.num_steps, report.num_samples
    out = []
    syn_rows = [(row, v) for row, v in zip(report.rows, rows) if row.synaptic is not None]
    if syn_rows:
        cats = [v["layer"] for _, v in syn_rows]
        out.append(_figure(plots.hbar(cats, [
            ("synops (AC)", [v["synops_ac"] or 0 for _, v in syn_rows]),
            ("effective MACs", [v["macs"] or 0 for _, v in syn_rows]),
            ("ops, all synapses", [v["ops_all_synapses"] or 0 for _, v in syn_rows]),
            ("ANN MACs (synapses x T)", [row.synaptic.synapses * t for row, _ in syn_rows])],
            "Operations per layer, per inference", "operations"),
            f"Synaptic operations counted per input event ({VARIANT_LABELS[report.variant]} "
            "for synops/MACs) against a dense ANN evaluating every synapse at every step."))
    out.append(_figure(plots.hbar([r["layer"] for r in rows], [
        (k, [v[f"energy_{k}_pj"] or 0 for v in rows]) for k in COMPONENTS],
        f"Energy per layer, per inference (profile {report.profile.name})", "pJ", stacked=True),
        "Stacked by term; terms that cost nothing here are not drawn."))
    spiking = [(name, c) for name, c in report.counts.neurons.items() if c.spiking]
    if spiking:
        out.append(_figure(plots.lines([(name, c.firing_rate_per_step) for name, c in spiking],
                                       "Firing rate per layer over time", "time step",
                                       "spikes / neuron / step"), f"Mean over {n} samples."))
        rated = [(name, c.neuron_rates) for name, c in spiking if c.neuron_rates is not None]
        if rated:
            out.append(_figure(plots.rate_histograms(rated),
                               "Firing rate of each neuron over all samples and steps: dead "
                               "units never fire, saturated ones fire at every step."))
        panels = []
        sample = report.sample or {}
        if sample.get("input_raster") is not None:
            raster = np.asarray(sample["input_raster"]) != 0
            panels.append(("input", raster, np.arange(raster.shape[1])))
        panels += [(name, c.raster, c.raster_index) for name, c in spiking if c.raster is not None]
        if panels:
            said = ""
            if sample.get("label") is not None or sample.get("prediction") is not None:
                said = f": label {sample.get('label', '-')}, prediction " \
                       f"{sample.get('prediction', '-')}"
            out.append(_figure(plots.rasters(panels, t, f"Spike raster of sample 0{said}"),
                               "Each mark is a spike (or a non-zero input); large layers show "
                               "evenly spaced neurons."))
    per_step = report.energy_per_step_pj
    ann_step = report.ann_energy_pj / t if t else 0.0
    out.append(_figure(plots.lines([("SNN", per_step),
                                    ("ANN equivalent (per step)", np.full(t, ann_step))],
                                   "Energy per time step, per inference", "time step", "pJ"),
                       "The ANN equivalent evaluates every synapse once per step."))
    sy = report.conventions["syops"]
    compare = [("SNN (this report)", report.total_energy_pj),
               ("ANN equivalent (x T)", report.ann_energy_pj),
               ("ANN, one pass", report.ann_energy_per_pass_pj),
               ("fr x T x FLOPs estimate", sy["energy_pj"])]
    out.append(_figure(plots.hbar([c[0] for c in compare], [("energy", [c[1] for c in compare])],
                                  "SNN vs ANN energy, per inference", "pJ"),
                       "Ratio SNN / ANN equivalent: "
                       f"{'n/a' if report.ratio is None else f'{report.ratio:.4f}'}."))
    return out


def _provenance(report, data: dict) -> str:
    prov = dict(report.provenance or {})
    prov.setdefault("dt", f"{data['dt']:g} s")
    prov.setdefault("convention", f"{data['convention']['name']} "
                                  f"({data['convention']['reason']})")
    prov.setdefault("profile", report.profile.name)
    rows = []
    for key, value in prov.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        rows.append([str(key), str(value)])
    return _scroll(_table(["field", "value"], rows, left_cols=2).replace("<table>", '<table class="prov">'))


def render_html(report) -> str:
    rows = report.per_inference_rows()
    n, t = report.num_samples, report.num_steps
    p = report.profile
    conv = report.conventions
    data = report.to_dict()

    cols = ["layer", "type", "neurons", "synapses", "input_spikes", "output_spikes",
            "firing_rate", "synops_ac", "macs", "macs_dense", "bias_adds", "active_updates",
            "inactive_updates", "energy_pj"]
    heads = [COLUMN_HEADINGS[c] for c in cols]
    totals = data["totals"]["per_inference"]
    layer_table = _table(heads, [[r.get(c) for c in cols] for r in rows + [totals]], left_cols=2)

    nb, sn, sy = conv["neurobench"], conv["sinabs"], conv["syops"]
    tool_rows = []
    for name, c in report.counts.synaptic.items():
        nbl = nb["per_layer"].get(name)
        syl = sy["per_layer"][name]
        tool_rows.append([name, c.kind,
                          nbl["Effective_ACs"] if nbl else None,
                          nbl["Effective_MACs"] if nbl else None,
                          nbl["Dense"] if nbl else None,
                          sn["per_layer"].get(name), syl["flops"], syl["input_rate"],
                          syl["sop"], syl["energy_pj"]])
    tool_rows.append(["total", "", nb["Effective_ACs"], nb["Effective_MACs"], nb["Dense"],
                      sn["total"], None, None, sy["sop_total"], sy["energy_pj"]])
    tools_table = _table(["layer", "kind", "NeuroBench Effective_ACs", "Effective_MACs", "Dense",
                          "sinabs synops", "FLOPs/pass", "input fr", "fr x T x FLOPs",
                          "syops energy pJ"], tool_rows, left_cols=2)

    prices = p.prices(report.memory)
    profile_table = _table(["field", "pJ", "source"],
                           [[k, v, p.source(k)] for k, v in prices.items()], left_cols=1)
    br = report.energy_breakdown_pj
    sparsity = nb["ActivationSparsity"]
    cards = [
        ("SNN energy / inference", f"{report.total_energy_pj:,.1f} pJ"),
        ("ANN equivalent (x T)", f"{report.ann_energy_pj:,.1f} pJ"),
        ("SNN / ANN", "n/a" if report.ratio is None else f"{report.ratio:.4f}"),
        ("firing rate", "n/a" if report.firing_rate is None else f"{report.firing_rate:.4f}"),
        ("activation sparsity", "n/a" if sparsity is None else f"{sparsity:.4f}"),
    ] + [(f"accuracy, {name}", f"{value:.4f}") for name, value in (report.accuracy or {}).items()
         if value is not None]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>spikedeploy energy report</title>", f"<style>{CSS}</style></head><body>",
        "<h1>spikedeploy energy report</h1>",
        f'<p class="muted">{n} samples x {t} time steps; spikes from the '
        f"{escape(report.backend or '?')} {escape(report.precision or '')} run; synaptic "
        f"operations over {escape(VARIANT_LABELS[report.variant])}; profile "
        f"<b>{escape(p.name)}</b> ({escape(p.description)}); memory-access term "
        f"{'on' if report.memory else 'off'}. All values per inference (mean over samples) "
        "unless stated.</p>",
        '<div class="headline">' + "".join(
            f'<div class="card"><span class="muted">{escape(a)}</span><b>{escape(b)}</b></div>'
            for a, b in cards) + "</div>",
        "<p>SNN energy by term: " + ", ".join(
            f"{escape(k)} {br[k]:,.1f} pJ" for k in COMPONENTS
            if k != "memory" or report.memory) + ".</p>",
        "<h2>Provenance</h2>", _provenance(report, data),
    ]
    if report.companions:
        comparison = data["comparison"]
        keys = ["backend", "precision", "snn_energy_pj", "ratio_snn_to_ann", "firing_rate",
                "spikes_per_inference", "accuracy"]
        names = {"snn_energy_pj": "SNN energy pJ", "ratio_snn_to_ann": "SNN / ANN",
                 "spikes_per_inference": "spikes per inference"}
        parts += ["<h2>Float and fixed point side by side</h2>", _scroll(_table(
            ["run"] + [names.get(k, k.replace("_", " ")) for k in keys],
            [[name] + [v.get(k) for k in keys] for name, v in comparison.items()],
            left_cols=3))]
    parts.append("<h2>Figures</h2>")
    parts += _figures(report, rows)
    hw = data["hardware"]
    if hw is not None:
        parts.append(f"<p>Hardware: {hw['cores']} cores, {hw['chips']} chip(s) on "
                     f"{escape(hw['chip'])}{' (estimate)' if hw['estimate'] else ''}"
                     f"{'' if hw['fits'] else ', does not fit'}: see the "
                     f"<a href=\"{escape(hw['resource_map'])}\">resource map</a> (per layer: "
                     "compartments, axons, synapse memory, limiting ceiling, spikes per core).</p>")
    parts += ["<h2>Per layer</h2>", _scroll(layer_table),
              "<h2>Other tools' definitions</h2>",
              "<p class='muted'>The same run counted as NeuroBench, sinabs and the fr x T x FLOPs "
              "papers count it (per sample). NeuroBench ActivationSparsity: "
              f"{'n/a' if sparsity is None else f'{sparsity:.6f}'}.</p>", _scroll(tools_table),
              f"<h2>Profile {escape(p.name)}</h2>", _scroll(profile_table)]
    if p.notes:
        parts.append(f"<p class='muted'>{escape(p.notes)}</p>")
    parts.append("<h2>Definitions</h2><dl>")
    parts += [f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in data["definitions"].items()]
    parts.append("</dl></body></html>\n")
    return "\n".join(parts)
