"""Threshold guidance (SDM): accuracy, spikes and energy for each threshold scale."""
from __future__ import annotations

import numpy as np

from ..energy.report import energy_report
from ..ir.passes import scale_thresholds
from ..progress import track
from ..readout import accuracy, readout_values
from .runs import run_backend, spike_counts


def threshold_sweep(graph, program, batch, gammas, backend: str = "reference",
                    precision: str = "float", profile: str = "45nm",
                    targets: np.ndarray | None = None, scale_out=None,
                    engine=None) -> list[dict]:
    """Threshold guidance (SDM): accuracy, spikes and energy for each threshold scale gamma.

    ``batch``: an :class:`~spikedeploy.deploy.inputs.InputBatch`. Each row:
    gamma, accuracy (None without labels), total spikes, energy per inference
    (pJ) and the ANN's, from ``spikedeploy.energy``; with ``targets`` (N,
    *output_shape), also ``mse``: the mean squared error of the graph's readout of
    the output (:func:`spikedeploy.readout.readout_values`: its sum, mean or last
    step over time) against them (e.g. a denoiser's eps). ``scale_out``: every point's
    samples sharded over workers (:class:`~spikedeploy.deploy.shards.ScaleOut`); ``engine``:
    the reference simulator's (:class:`~spikedeploy.hw_sim.reference.EngineChoice`).
    """
    readout = program.readout
    rows = []
    for gamma in track(gammas, "sweep", unit="point"):
        scaled = scale_thresholds(program, float(gamma))
        result = run_backend(graph, scaled, batch, backend, precision, scale=scale_out,
                             engine=engine)
        report = energy_report(result, profile=profile)
        rows.append({
            "threshold_scale": float(gamma),
            "accuracy": (None if batch.labels is None
                         else accuracy(result.output(), batch.labels, readout)),
            "spikes": int(sum(spike_counts(result).values())),
            "energy_per_inference_pJ": float(report.total_energy_pj),
            "ann_energy_per_inference_pJ": float(report.ann_energy_pj),
            "ratio_snn_to_ann": (None if not report.ann_energy_pj
                                 else float(report.total_energy_pj / report.ann_energy_pj)),
        })
        if targets is not None:
            value = readout_values(result.output(), readout)
            want = np.asarray(targets, np.float64).reshape(value.shape)
            rows[-1]["mse"] = float(np.mean((value - want) ** 2))
    return rows
