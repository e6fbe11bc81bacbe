"""``spikedeploy demo``: the whole pipeline on the digits, with default settings.

train (snnTorch) -> export (NIR) -> Lava float and fixed -> the Loihi 2
artefact (a netx file, run by lava-dl's own loader) -> energy report and
resource map, every artifact in one folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import SpikedeployError
from ..fileio import write_text
from ..hw_sim.compare import compare_records
from ..hw_sim.result import SimResult
from ..ir.load import read_nir
from ..ir.lowering import lower
from ..metadata import DEFAULT_SEED, SEED
from ..readout import accuracy
from .inputs import resolve_inputs
from .runs import run_backend, save_records
from .stages import checkpoint_records


def run_demo(out: Path, samples: int | None, say=print) -> int:
    from ..energy.report import energy_report
    from ..export.to_nir import export_checkpoint, write_nir
    from ..hw_sim.loihi2.netx_file import write_netx
    from ..hw_sim.loihi2.run import reference_loihi2, simulate_loihi2
    from ..hw_sim.loihi2.target import compile_loihi2
    from .stages import train_and_save

    if samples is not None and samples <= 0:       # before any training or writing
        raise SpikedeployError(f"--samples must be positive, got {samples}")
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    ckpt, nir_path = out / "checkpoint", out / "model.nir"

    say("[1/6] training an snnTorch MLP on the 8x8 digits ...")
    trained = train_and_save(ckpt, progress=lambda msg: say(f"      {msg}"))

    say("[2/6] exporting to NIR ...")
    write_nir(export_checkpoint(ckpt), nir_path)
    graph = read_nir(nir_path)
    program = lower(graph)
    readout = program.readout
    n = samples if samples is not None else len(_test_labels(program))
    batch = resolve_inputs(program, n, None, None, None, None, n)

    say(f"[3/6] Lava CPU simulator, floating point ({batch.source}) ...")
    snn = SimResult(program, checkpoint_records(ckpt, batch.x), backend="snntorch", precision="float")
    reference = run_backend(graph, program, batch, "reference", "float")
    lava_float = run_backend(graph, program, batch, "lava", "float")
    vs_snntorch = compare_records(snn, lava_float)
    float_agree = compare_records(reference, lava_float).agrees and vs_snntorch.agrees
    say(f"      {lava_float.info['seconds']:.1f} s; latency {lava_float.latency} steps; spikes "
        f"identical to snnTorch: {vs_snntorch.agrees} ({vs_snntorch.disagreement:.1e} differ), "
        f"to the reference simulator: {compare_records(reference, lava_float).agrees}")

    say("[4/6] Lava CPU simulator, Loihi fixed point ...")
    lava_fixed = run_backend(graph, program, batch, "lava", "fixed")
    fixed_ref = run_backend(graph, program, batch, "reference", "fixed")
    fixed_agree = compare_records(fixed_ref, lava_fixed).agrees
    say(f"      {lava_fixed.info['seconds']:.1f} s; bit-exact with the fixed reference: {fixed_agree}")
    save_records(out / "rasters_lava_float.npz", lava_float)
    save_records(out / "rasters_lava_fixed.npz", lava_fixed)

    say("[5/6] Loihi 2 artefact: netx file, run by lava-dl's hdf5.Network (fixed_pt) ...")
    compiled = compile_loihi2(program, batch.input_scale)
    write_netx(compiled, out / "model.net")
    netx = simulate_loihi2(program, batch.x, batch.input_scale, "netx", compiled=compiled)
    netx_agree = compare_records(reference_loihi2(program, batch.x, compiled=compiled),
                                 netx).agrees
    say(f"      {netx.info['seconds']:.1f} s; bit-exact with the target's fixed reference: "
        f"{netx_agree}")

    say("[6/6] energy report (spikes from the Lava float run) and Loihi 2 resource map ...")
    report = energy_report(lava_float, chip="loihi2")
    from .provenance import describe_sample, provenance
    readout = program.readout
    report.provenance = provenance(out / "model.nir", checkpoint=str(out / "checkpoint"))
    report.accuracy = {name: accuracy(run.output(), batch.labels, readout) for name, run in
                       (("snnTorch", snn), ("float", lava_float), ("fixed", lava_fixed),
                        ("Loihi 2 netx", netx))}
    report.sample = describe_sample(lava_float, batch, readout)
    report.companions = {"fixed": energy_report(lava_fixed)}
    report.companions["fixed"].accuracy = {"fixed": report.accuracy["fixed"]}
    report.write(out)
    say(report.to_table())

    headline = {
        "samples": int(batch.x.shape[1]),
        "snntorch_test_accuracy": trained["test_accuracy"],
        "snntorch_accuracy": accuracy(snn.output(), batch.labels, readout),
        "lava_float_accuracy": accuracy(lava_float.output(), batch.labels, readout),
        "lava_fixed_accuracy": accuracy(lava_fixed.output(), batch.labels, readout),
        "netx_accuracy": accuracy(netx.output(), batch.labels, readout),
        "netx_bit_exact_with_target_reference": bool(netx_agree),
        "loihi2_cores": report.resources.totals["cores"],
        "lava_float_identical_to_reference": bool(float_agree),
        "lava_fixed_bit_exact_with_reference": bool(fixed_agree),
        "energy_per_inference_pJ": report.total_energy_pj,
        "ann_energy_per_inference_pJ": report.ann_energy_pj,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_text(out / "summary.json", json.dumps(headline, indent=2) + "\n")
    say("")
    say(f"artifacts in {out}/: checkpoint/, model.nir, model.net, rasters_lava_float.npz, "
        "rasters_lava_fixed.npz, report.json, report.csv, report.html, resources.html, "
        "resources.csv, summary.json")
    say(f"snnTorch accuracy {headline['snntorch_accuracy']:.4f} | Lava float "
        f"{headline['lava_float_accuracy']:.4f} | Lava fixed {headline['lava_fixed_accuracy']:.4f}"
        f" | Loihi 2 netx {headline['netx_accuracy']:.4f} ({headline['samples']} test samples)")
    ratio = headline["energy_per_inference_pJ"] / headline["ann_energy_per_inference_pJ"]
    say(f"energy per inference {headline['energy_per_inference_pJ'] / 1e3:.2f} nJ vs ANN "
        f"{headline['ann_energy_per_inference_pJ'] / 1e3:.2f} nJ (ratio {ratio:.3f}); "
        f"{headline['loihi2_cores']} Loihi 2 cores (estimate); total {headline['seconds']:.0f} s")
    return 0 if float_agree and fixed_agree and netx_agree else 1


def _test_labels(program):
    from ..models.data import load_digits_split
    return load_digits_split(seed=int(program.meta(SEED, DEFAULT_SEED))).y_test
