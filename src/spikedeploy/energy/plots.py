"""The energy report's figures, drawn by matplotlib as inline SVG (the page stays one
self-contained, offline file).

matplotlib chooses round ticks and axes that contain their data; a value axis
spanning more than two decades is logarithmic; a legend lists only what is drawn.
"""
from __future__ import annotations

import io
import re

import numpy as np

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]
LOG_SPAN = 100.0             # bars: max / min of the positive values above which the axis is log
LINE_LOG_SPAN = 10.0         # lines: a decade apart already squashes the lower one flat
WIDTH_IN = 7.6               # inches at 100 dpi: 760 px, scaled down by the page's CSS


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "spikedeploy"})
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)   # creator, date, licence
    # scale with the page: the viewBox keeps the drawing, CSS sets the width
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="plot"', text,
                  count=1)


def _log_if_wide(values, span: float = LOG_SPAN) -> bool:
    v = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in values]) if len(values) \
        else np.zeros(0)
    v = v[np.isfinite(v) & (v > 0)]
    return v.size > 1 and v.max() / v.min() > span


def _drawn(series):
    """Series with something to draw (a legend entry only for those)."""
    return [(label, np.asarray(values, np.float64)) for label, values in series
            if np.any(np.asarray(values, np.float64) != 0)]


def hbar(categories, series, title, xlabel, stacked=False) -> str:
    """Horizontal bars per category: grouped, or stacked (terms of one total)."""
    plt = _pyplot()
    series = _drawn(series) or [(series[0][0], np.zeros(len(categories)))]
    height = 0.6 + 0.32 * len(categories) * (1 if stacked else max(1, len(series)) * 0.6)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, max(2.0, height)))
    y = np.arange(len(categories))
    left = np.zeros(len(categories))
    bar_h = 0.7 if stacked else 0.8 / len(series)
    log = not stacked and _log_if_wide([v for _, v in series])   # stacked bars stay linear
    for i, (label, values) in enumerate(series):
        if stacked:
            ax.barh(y, values, left=left, height=bar_h, label=label,
                    color=PALETTE[i % len(PALETTE)])
            left = left + values
        else:
            ax.barh(y - 0.4 + bar_h * (i + 0.5), np.where(values > 0, values, np.nan),
                    height=bar_h, label=label, color=PALETTE[i % len(PALETTE)])
    if log:
        ax.set_xscale("log")
    ax.set_yticks(y, categories)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel + (" (log scale)" if log else ""))
    ax.set_title(title, loc="left")
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False, loc="best")
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def lines(series, title, xlabel, ylabel) -> str:
    """Lines over time steps; a y axis spanning decades is logarithmic."""
    plt = _pyplot()
    series = _drawn(series) or series[:1]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.8))
    for i, (label, values) in enumerate(series):
        ax.plot(np.arange(len(values)), values, label=label, color=PALETTE[i % len(PALETTE)],
                linewidth=1.4)
    finite = np.concatenate([np.ravel(v) for _, v in series])
    if np.all(finite > 0) and _log_if_wide([v for _, v in series], LINE_LOG_SPAN):
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False, loc="best")
    ax.grid(alpha=0.3)
    return _svg(fig)


def rate_histograms(layers) -> str:
    """Per spiking layer: how many neurons fire at each rate (dead and saturated counted)."""
    plt = _pyplot()
    cols = min(3, len(layers))
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH_IN, 2.2 * rows), squeeze=False)
    bins = np.linspace(0, 1, 21)
    for ax, (name, rates) in zip(axes.ravel(), layers):
        dead, saturated = int(np.sum(rates == 0)), int(np.sum(rates >= 1))
        ax.hist(rates, bins=bins, color=PALETTE[0])
        ax.set_title(f"{name}: {dead} dead, {saturated} saturated", fontsize=8, loc="left")
        ax.set_xlabel("firing rate (spiking steps / step)")
        ax.set_ylabel("neurons")
        ax.set_xlim(0, 1)
    for ax in axes.ravel()[len(layers):]:
        ax.set_visible(False)
    fig.tight_layout()
    return _svg(fig)


def rasters(panels, num_steps: int, title: str) -> str:
    """Spike rasters of one sample, one panel per layer: (name, (T, k) bool, neuron index)."""
    plt = _pyplot()
    heights = [max(1.0, min(3.0, 0.02 * raster.shape[1] + 0.8)) for _, raster, _ in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH_IN, sum(heights) + 0.6),
                             squeeze=False, gridspec_kw={"height_ratios": heights},
                             sharex=True)
    for i, (ax, (name, raster, index)) in enumerate(zip(axes[:, 0], panels)):
        t, k = np.nonzero(np.asarray(raster))
        ax.scatter(t, np.asarray(index)[k], s=4, marker="|", color=PALETTE[i % len(PALETTE)])
        ax.set_ylabel(f"{name}\nneuron", fontsize=8)
        ax.set_xlim(-0.5, num_steps - 0.5)
        if len(index):
            ax.set_ylim(-0.5, max(index) + 0.5)
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title(title, loc="left")
    fig.tight_layout()
    return _svg(fig)
