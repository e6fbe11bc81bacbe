"""``spikedeploy demo`` end to end, as a user runs it: wall time and peak memory of the whole
command in a fresh process (training, export, Lava float and fixed, netx, energy and
resource reports), and the time of each stage from the demo's own log.

Usage: python benchmarks/bench_demo.py [--runs 1]

Needs Lava (``make demo`` installs it). Timings are never asserted in tests; this script
is where speed is measured.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process (its peak resident memory), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_demo() -> tuple[float, float, str]:
    """(seconds, peak MB of the command's own process, its output)."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "spikedeploy", "demo", "--out", out],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak = 0.0
        while proc.poll() is None:
            try:
                peak = max(peak, peak_rss_mb(proc.pid))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.2)
        output = proc.communicate()[0]
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"demo failed ({proc.returncode}):\n{output[-2000:]}")
    return seconds, peak, output


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args(argv)
    for i in range(args.runs):
        seconds, peak, output = run_demo()
        summary = [line for line in output.splitlines()
                   if re.search(r"accuracy|energy per inference|samples\)", line)]
        print(f"run {i + 1}: {seconds:.1f} s wall, peak {peak:.0f} MB (the command's process; "
              "Lava workers are separate)")
        for line in summary:
            print(f"  {line.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
