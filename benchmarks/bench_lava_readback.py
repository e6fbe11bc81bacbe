"""Reading recorded values back from Lava: the stock RingBuffer sink vs our RecordSink.

Usage: python benchmarks/bench_lava_readback.py [--size 512] [--steps 400] [--repeats 3]

One RingBuffer source of ``size`` values feeds, for ``steps`` steps, either
Lava's RingBuffer sink (read from the host with ``sink.data.get()``: one
message per value in Lava 0.10) or spikedeploy's RecordSink (the whole
record written to one file in the step that fills it, read with numpy).
Prints the run and read-back time of each, per recorded value, and checks
that both recorded the same values. Timings are never asserted in tests.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from spikedeploy.compat import lava_py311  # noqa: F401  (must precede any Lava import)
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.sink import RingBuffer as SinkBuffer
from lava.proc.io.source import RingBuffer as SourceBuffer

from spikedeploy.hw_sim.lava_compiler import Recorders


def _run(kind: str, data: np.ndarray) -> tuple[float, float, np.ndarray]:
    size, steps = data.shape
    source = SourceBuffer(data=data)
    started = time.perf_counter()
    if kind == "RingBuffer .get()":
        sink = SinkBuffer(shape=(size,), buffer=steps)
        source.s_out.connect(sink.a_in)
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg())
        ran = time.perf_counter()
        values = sink.data.get()
        source.stop()
        return ran - started, time.perf_counter() - ran, values
    with Recorders({"x": source.s_out}, steps) as recorders:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg())
        ran = time.perf_counter()
        source.stop()
        values = recorders.read()["x"]
        return ran - started, time.perf_counter() - ran, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from spikedeploy.tables import terminal_table
    data = np.random.default_rng(0).integers(0, 2, (args.size, args.steps)).astype(float)
    kinds = ("RingBuffer .get()", "RecordSink file")
    times = {k: ([], []) for k in kinds}
    values = {}
    for _ in range(args.repeats):
        for kind in kinds:                     # alternated
            run, read, values[kind] = _run(kind, data)
            times[kind][0].append(run)
            times[kind][1].append(read)
    same = np.array_equal(values[kinds[0]], values[kinds[1]]) and \
        np.array_equal(values[kinds[1]], data)
    count = args.size * args.steps
    rows = [[k, f"{statistics.median(times[k][0]):.2f}", f"{statistics.median(times[k][1]):.3f}",
             f"{statistics.median(times[k][1]) / count * 1e6:.3f}"] for k in kinds]
    print(f"{args.size} values x {args.steps} steps = {count:,} recorded values; median of "
          f"{args.repeats}; same values: {'yes' if same else 'NO'}")
    print(terminal_table(["sink", "run s", "read-back s", "us per value"], rows, text_cols=1))
    ratio = statistics.median(times[kinds[0]][1]) / max(statistics.median(times[kinds[1]][1]),
                                                        1e-9)
    print(f"read-back: RecordSink {ratio:,.0f}x faster")


if __name__ == "__main__":
    main()
