"""A self-contained HTML energy report: inline SVG charts, inline CSS, no script, no network.

``render_html(report)`` returns one HTML document that opens in any browser
offline: per-layer bars of operations and of energy (by term), the firing
rate of every spiking layer over time, a spike raster of one sample, the SNN
energy per time step, the SNN vs ANN comparison, the per-layer table, the
other tools' figures, the profile with the source of every number, and the
definitions used.
"""
from __future__ import annotations

import math
from html import escape

import numpy as np

from .columns import COLUMN_HEADINGS
from .fanout import VARIANT_LABELS
from .model import COMPONENTS

PALETTE = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2",
           "#97bbf5", "#9c6b4e", "#9498a0"]
TERM_COLORS = {"synaptic": "#4269d0", "bias": "#efb118", "neuron": "#3ca951",
               "spike": "#ff725c", "memory": "#a463f2"}
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'


def _fmt(v: float) -> str:
    if v is None:
        return "-"
    v = float(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3g} G"
    if a >= 1e6:
        return f"{v / 1e6:.3g} M"
    if a >= 1e4:
        return f"{v / 1e3:.3g} k"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.3g}"
    return f"{v:.3g}"


def _text(x, y, s, size=12, anchor="start", weight="normal", fill="#222", extra=""):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}" {FONT} {extra}>{escape(str(s))}</text>')


def _svg(width, height, body, title):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>{"".join(body)}</svg>')


def _legend(items, x, y, width):
    """items: (label, color); laid out left to right, wrapping."""
    out, cx, cy = [], x, y
    for label, color in items:
        w = 18 + 7 * len(label) + 14
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 18
        out.append(f'<rect x="{cx}" y="{cy - 10}" width="12" height="12" fill="{color}"/>')
        out.append(_text(cx + 16, cy, label, 12))
        cx += w
    return out, cy + 8


def hbar_chart(categories, series, title, log=False, stacked=False, width=760, unit=""):
    """Horizontal bars per category; ``series``: [(label, color, values)].

    Grouped (one bar per series) or stacked; a log10 axis for counts that span
    orders of magnitude (zero values are drawn as absent).
    """
    label_w = min(260, 12 + 7 * max((len(c) for c in categories), default=4))
    plot_w = width - label_w - 90
    n_series = 1 if stacked else len(series)
    bar_h = 14
    group_h = n_series * bar_h + 10
    legend, legend_bottom = _legend([(s[0], s[1]) for s in series], label_w, 40, plot_w)
    top = legend_bottom + 10
    height = top + group_h * len(categories) + 40
    values = np.array([np.asarray(s[2], np.float64) for s in series]) if series else np.zeros((0, 0))
    vmax = float(values.sum(axis=0).max() if stacked else values.max()) if values.size else 0.0
    positive = values[values > 0]
    if log and positive.size:
        lo = 10 ** math.floor(math.log10(positive.min()))
        hi = 10 ** math.ceil(math.log10(max(vmax, lo * 10)))

        def xpos(v):
            if v <= 0:
                return 0.0
            return plot_w * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        ticks = [10 ** e for e in range(int(round(math.log10(lo))), int(round(math.log10(hi))) + 1)]
    else:
        hi = vmax if vmax > 0 else 1.0

        def xpos(v):
            return plot_w * max(v, 0) / hi
        step = 10 ** math.floor(math.log10(hi)) if hi > 0 else 1
        if hi / step < 3:
            step /= 2
        ticks = list(np.arange(0, hi * 1.0001, step))
    body = [_text(0, 18, title, 15, weight="bold")]
    body += legend
    x0 = label_w
    for t in ticks:
        x = x0 + xpos(t)
        body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" '
                    f'y2="{height - 30}" stroke="#ddd"/>')
        body.append(_text(x, height - 14, _fmt(t), 10, anchor="middle", fill="#555"))
    if unit:
        body.append(_text(x0 + plot_w, height - 2, unit, 10, anchor="end", fill="#555"))
    for i, cat in enumerate(categories):
        y = top + i * group_h
        body.append(_text(x0 - 8, y + group_h / 2 + 2, cat, 12, anchor="end"))
        acc = 0.0
        for j, (label, color, vals) in enumerate(series):
            v = float(np.asarray(vals, np.float64)[i])
            if stacked:
                xa, xb = x0 + xpos(acc), x0 + xpos(acc + v)
                acc += v
                by = y + 5
            else:
                xa, xb = x0, x0 + xpos(v)
                by = y + 5 + j * bar_h
            if xb - xa > 0:
                body.append(f'<rect x="{xa:.1f}" y="{by:.1f}" width="{xb - xa:.1f}" '
                            f'height="{bar_h - 2}" fill="{color}"><title>{escape(cat)}: '
                            f'{escape(label)} {v:,.6g}</title></rect>')
            if not stacked and v > 0:
                body.append(_text(xb + 4, by + bar_h - 4, _fmt(v), 10, fill="#333"))
        if stacked:
            body.append(_text(x0 + xpos(acc) + 4, y + 5 + bar_h - 4, _fmt(acc), 10, fill="#333"))
    body.append(f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{height - 30}" stroke="#888"/>')
    return _svg(width, height, body, title)


def line_chart(series, title, xlabel, ylabel, width=760, height=300, ymax=None):
    """``series``: [(label, color, y values over steps)]; x = step index."""
    left, right, bottom = 60, 20, 50
    legend, legend_bottom = _legend([(s[0], s[1]) for s in series], left, 40, width - left - right)
    top = legend_bottom + 10
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max((len(s[2]) for s in series), default=0)
    vmax = ymax if ymax is not None else max((float(np.max(s[2])) for s in series if len(s[2])),
                                             default=0.0)
    vmax = vmax * 1.08 if vmax > 0 else 1.0      # headroom above the highest point

    def xy(i, v):
        x = left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return x, top + plot_h * (1 - v / vmax)

    body = [_text(0, 18, title, 15, weight="bold")] + legend
    for k in range(5):
        v = vmax * k / 4
        _, y = xy(0, v)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(_text(left - 6, y + 4, _fmt(v), 10, anchor="end", fill="#555"))
    tick_every = max(1, int(math.ceil(n / 12)))
    for i in range(0, n, tick_every):
        x, _ = xy(i, 0)
        body.append(_text(x, top + plot_h + 16, str(i), 10, anchor="middle", fill="#555"))
    body.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
                f'stroke="#888"/>')
    for label, color, ys in series:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, float(v)) for i, v in enumerate(ys)))
        body.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2">'
                    f'<title>{escape(label)}</title></polyline>')
        for i, v in enumerate(ys):
            x, y = xy(i, float(v))
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                        f'<title>{escape(label)} step {i}: {float(v):.6g}</title></circle>')
    body.append(_text(left + plot_w / 2, height - 14, xlabel, 11, anchor="middle"))
    body.append(_text(14, top + plot_h / 2, ylabel, 11, anchor="middle",
                      extra=f'transform="rotate(-90 14 {top + plot_h / 2:.1f})"'))
    return _svg(width, height, body, title)


def raster_chart(panels, num_steps, title, width=760):
    """``panels``: [(label, color, raster (T, k) bool, neuron indices, total neurons)]."""
    left, right = 150, 20
    plot_w = width - left - right
    body = [_text(0, 18, title, 15, weight="bold")]
    y = 36
    cell_w = plot_w / max(num_steps, 1)
    for label, color, raster, index, total in panels:
        k = raster.shape[1]
        row_h = max(1.0, min(6.0, 160.0 / max(k, 1)))
        h = row_h * k
        shown = f"{k} of {total} neurons" if k < total else f"{total} neurons"
        body.append(_text(left - 8, y + h / 2, label, 12, anchor="end"))
        body.append(_text(left - 8, y + h / 2 + 14, shown, 10, anchor="end", fill="#666"))
        body.append(f'<rect x="{left}" y="{y:.1f}" width="{plot_w}" height="{h:.1f}" '
                    f'fill="#fafafa" stroke="#bbb"/>')
        ts, ns = np.nonzero(raster)
        for t, j in zip(ts, ns):
            body.append(f'<rect x="{left + t * cell_w + 0.5:.1f}" y="{y + j * row_h:.1f}" '
                        f'width="{max(cell_w - 1, 1):.1f}" height="{max(row_h - 0.3, 0.8):.1f}" '
                        f'fill="{color}"/>')
        y += max(h, 30) + 14
    tick_every = max(1, int(math.ceil(num_steps / 12)))
    for t in range(0, num_steps, tick_every):
        body.append(_text(left + (t + 0.5) * cell_w, y + 4, str(t), 10, anchor="middle",
                          fill="#555"))
    body.append(_text(left + plot_w / 2, y + 22, "time step", 11, anchor="middle"))
    return _svg(width, int(y + 32), body, title)


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
figure{margin:16px 0}figcaption{color:#555;font-size:13px}
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


def render_html(report) -> str:
    rows = report.per_inference_rows()
    n, t = report.num_samples, report.num_steps
    p = report.profile
    conv = report.conventions
    labels = [r["layer"] for r in rows]
    syn_rows = [(row, v) for row, v in zip(report.rows, rows) if row.synaptic is not None]

    figures = []
    if syn_rows:
        cats = [v["layer"] for _, v in syn_rows]
        ops_series = [
            ("synops (AC)", PALETTE[0], [v["synops_ac"] or 0 for _, v in syn_rows]),
            ("effective MACs", PALETTE[2], [v["macs"] or 0 for _, v in syn_rows]),
            ("ops, all synapses", PALETTE[7], [v["ops_all_synapses"] or 0 for _, v in syn_rows]),
            ("ANN MACs (synapses x T)", PALETTE[9],
             [row.synaptic.synapses * t for row, _ in syn_rows]),
        ]
        figures.append((hbar_chart(cats, ops_series, "Operations per layer, per inference",
                                   log=True, unit="operations (log scale)"),
                        f"Synaptic operations counted per input event ({VARIANT_LABELS[report.variant]}"
                        " for synops/MACs) against a dense ANN evaluating every synapse at every step."))
    energy_series = [(k, TERM_COLORS[k], [v[f"energy_{k}_pj"] or 0 for v in rows])
                     for k in COMPONENTS if any((v[f"energy_{k}_pj"] or 0) > 0 for v in rows)]
    if not energy_series:
        energy_series = [("synaptic", TERM_COLORS["synaptic"], [0] * len(rows))]
    figures.append((hbar_chart(labels, energy_series, f"Energy per layer, per inference "
                               f"(profile {p.name})", stacked=True, unit="pJ"),
                    "Stacked by term; terms the profile does not price are omitted."))
    spiking = [(name, c) for name, c in report.counts.neurons.items() if c.spiking]
    if spiking:
        series = [(name, PALETTE[i % len(PALETTE)], c.firing_rate_per_step)
                  for i, (name, c) in enumerate(spiking)]
        figures.append((line_chart(series, "Firing rate per layer over time", "time step",
                                   "spikes / neuron / step"),
                        f"Mean over {n} samples."))
        panels = [(name, PALETTE[i % len(PALETTE)], c.raster, c.raster_index, c.neurons)
                  for i, (name, c) in enumerate(spiking) if c.raster is not None]
        if panels:
            figures.append((raster_chart(panels, t, "Spike raster of sample 0"),
                            "Each mark is a spike; large layers show evenly spaced neurons."))
    per_step = report.energy_per_step_pj
    ann_step = report.ann_energy_pj / t if t else 0.0
    figures.append((line_chart([("SNN", TERM_COLORS["synaptic"], per_step),
                                ("ANN equivalent (per step)", PALETTE[9], np.full(t, ann_step))],
                               "Energy per time step, per inference", "time step", "pJ"),
                    "The ANN equivalent evaluates every synapse once per step."))
    sy = conv["syops"]
    compare = [("SNN (this report)", report.total_energy_pj),
               ("ANN equivalent (x T)", report.ann_energy_pj),
               ("ANN, one pass", report.ann_energy_per_pass_pj),
               ("fr x T x FLOPs estimate", sy["energy_pj"])]
    figures.append((hbar_chart([c[0] for c in compare],
                               [("energy", PALETTE[0], [c[1] for c in compare])],
                               "SNN vs ANN energy, per inference", unit="pJ"),
                    f"Ratio SNN / ANN equivalent: "
                    f"{'n/a' if report.ratio is None else f'{report.ratio:.4f}'}."))

    cols = ["layer", "type", "neurons", "synapses", "input_spikes", "output_spikes",
            "firing_rate", "synops_ac", "macs", "macs_dense", "bias_adds", "active_updates",
            "inactive_updates", "energy_pj"]
    heads = [COLUMN_HEADINGS[c] for c in cols]
    totals = report.to_dict()["totals"]["per_inference"]
    layer_table = _table(heads, [[r.get(c) for c in cols] for r in rows + [totals]], left_cols=2)

    nb, sn = conv["neurobench"], conv["sinabs"]
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
    defs = report.to_dict()["definitions"]
    br = report.energy_breakdown_pj
    sparsity = nb["ActivationSparsity"]
    cards = [
        ("SNN energy / inference", f"{report.total_energy_pj:,.1f} pJ"),
        ("ANN equivalent (x T)", f"{report.ann_energy_pj:,.1f} pJ"),
        ("SNN / ANN", "n/a" if report.ratio is None else f"{report.ratio:.4f}"),
        ("firing rate", "n/a" if report.firing_rate is None else f"{report.firing_rate:.4f}"),
        ("activation sparsity", "n/a" if sparsity is None else f"{sparsity:.4f}"),
    ]
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
    ]
    for svg, caption in figures:
        parts.append(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>")
    hw = report.to_dict()["hardware"]
    if hw is not None:
        parts.append(f"<p>Hardware: {hw['cores']} cores, {hw['chips']} chip(s) on "
                     f"{escape(hw['chip'])}{' (estimate)' if hw['estimate'] else ''}"
                     f"{'' if hw['fits'] else ', does not fit'}: see the "
                     f"<a href=\"{escape(hw['resource_map'])}\">resource map</a> (per layer: "
                     "compartments, axons, synapse memory, limiting ceiling, spikes per core).</p>")
    parts += ["<h2>Per layer</h2>", layer_table,
              "<h2>Other tools' definitions</h2>",
              "<p class='muted'>The same run counted as NeuroBench, sinabs and the fr x T x FLOPs "
              "papers count it (per sample). NeuroBench ActivationSparsity: "
              f"{'n/a' if sparsity is None else f'{sparsity:.6f}'}.</p>", tools_table,
              f"<h2>Profile {escape(p.name)}</h2>", profile_table]
    if p.notes:
        parts.append(f"<p class='muted'>{escape(p.notes)}</p>")
    parts.append("<h2>Definitions</h2><dl>")
    parts += [f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in defs.items()]
    parts.append("</dl></body></html>\n")
    return "\n".join(parts)
