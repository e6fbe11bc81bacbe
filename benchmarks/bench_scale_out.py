"""Scale-out: a Lava verify of the digits CNN serially, with --workers 2 and on a local Ray.

Usage: python benchmarks/bench_scale_out.py [--samples 360] [--repeats 2] [--nir cnn.nir]

Trains the snn-cnn on digits (one epoch; or takes --nir), then times
``spikedeploy verify GRAPH --samples N`` (reference + Lava float, the whole
command as a user runs it, start-up included) in each mode, alternating the
modes and taking the median of ``--repeats`` runs. A second, 2-sample run
per mode measures the fixed cost of sharding (process or Ray start-up,
shipping the task): overhead = its time minus the serial 2-sample time.
The reports (timing fields aside) are checked equal. Timings are never
asserted in tests; this script is where they are measured.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = {"serial": [], "--workers 2": ["--workers", "2"],
         "ray, 2 workers": ["--executor", "ray", "--workers", "2"]}


def _verify(graph: Path, samples: int, extra: list[str], out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spikedeploy.deploy.cli", "verify", str(graph),
                    "--samples", str(samples), "-q", "--json", str(out), *extra],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _graph(folder: Path) -> Path:
    from spikedeploy.deploy.stages import train_and_save
    from spikedeploy.export import export_checkpoint, write_nir
    train_and_save(folder / "ckpt", model="snn-cnn", epochs=1, shared_neuron_params=True,
                   progress=lambda m: None)
    write_nir(export_checkpoint(folder / "ckpt"), folder / "cnn.nir")
    return folder / "cnn.nir"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=360)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--nir", default=None)
    args = parser.parse_args()
    from spikedeploy.deploy.provenance import comparable
    from spikedeploy.tables import terminal_table
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        graph = Path(args.nir) if args.nir else _graph(folder)
        times = {mode: [] for mode in MODES}
        small = {mode: [] for mode in MODES}
        reports = {}
        for _ in range(args.repeats):
            for mode, extra in MODES.items():
                out = folder / "report.json"
                times[mode].append(_verify(graph, args.samples, extra, out))
                reports[mode] = comparable(json.loads(out.read_text()))
                small[mode].append(_verify(graph, 2, extra, folder / "small.json"))
        serial, serial_small = (statistics.median(times["serial"]),
                                statistics.median(small["serial"]))
        rows = []
        for mode in MODES:
            t, s = statistics.median(times[mode]), statistics.median(small[mode])
            rows.append([mode, f"{t:.1f}", f"{serial / t:.2f}", f"{s:.1f}",
                         "-" if mode == "serial" else f"{s - serial_small:+.1f}",
                         "yes" if reports[mode] == reports["serial"] else "NO"])
        print(f"spikedeploy verify (reference + Lava float) of the digits snn-cnn, "
              f"{args.samples} samples, T={reports['serial']['steps']}; {os.cpu_count()} cores; "
              f"median of {args.repeats}")
        print(terminal_table(["mode", "seconds", "speedup", "2-sample s", "overhead s",
                              "same report"], rows, text_cols=1))


if __name__ == "__main__":
    main()
