"""Program -> Lava network (through :data:`~.lava_builders.BUILDERS`), run under Loihi2SimCfg.

Imported only inside the Lava worker process (it imports Lava).

Timing (see :mod:`.timing`): every synaptic process (Dense, Sparse, Conv)
delays its output by one step. The compiler gives each op a latency
(input: 0, synapse: +1), and where paths of different latency meet
(residual/skip connections, several inputs) it puts a Shift process of the
difference on the shorter edges; a recurrent edge gets the Shift its cycle
needs to deliver the previous step's value. It runs the samples back to
back in windows of T + latency (+ NIR delays) steps and reads each recorded
op at its latency, so returned records are aligned to the input's time
steps. Neurons restart their state at their latency, so biases and
initial states do not act before a sample's first input arrives.
"""
from __future__ import annotations

import os
import shutil
import tempfile

from functools import cached_property
from pathlib import Path

import numpy as np

from ..compat import lava_py311  # noqa: F401  (must precede any Lava import)
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer as SourceBuffer

from ..errors import SpikedeployError
from ..ir import fixed_point as fxp
from ..ir.ops import Program
from .lava_builders import BUILDERS, LavaBuild, lava_problem
from .lava_procs.neuron.process import WindowedNeuron
from .lava_procs.record.process import RecordSink
from .lava_procs.shift.process import Shift
from .process_group import PROGRESS_ENV
from .timing import schedule

PRECISION_TAGS = {"float": "floating_pt", "fixed": "fixed_pt"}


class LavaProcesses:
    """The Lava process classes builders instantiate (``LavaBuild.lava``)."""

    Dense = Dense
    SourceBuffer = SourceBuffer
    WindowedNeuron = WindowedNeuron
    Shift = Shift

    @cached_property
    def Sparse(self):        # imported on demand: scipy.signal is slow to import
        from lava.proc.sparse.process import Sparse
        return Sparse

    @cached_property
    def Conv(self):
        from lava.proc.conv.process import Conv
        return Conv


def build_network(program: Program, data: dict[str, np.ndarray], precision: str,
                  fixed: fxp.FixedProgram | None, num_steps: int, builders=BUILDERS,
                  processes=None) -> LavaBuild:
    """Every op through its entry of ``builders`` (ours by default; the Loihi 2 target
    passes its stock-process table), then the edges, with a Shift where an edge needs
    latency equalisation that its builder did not take on (``LavaBuild.delays_done``)."""
    b = LavaBuild(processes or LavaProcesses(), program, precision, fixed, data, num_steps,
                  schedule(program))
    for op in program.ops.values():
        if builders is BUILDERS:
            problem = lava_problem(program, op)
            if problem is not None:
                raise problem
        proc = builders.lookup(op).build(b, op)
        if proc is not None:
            b.processes.append(proc)
            b.process_of[op.name] = proc
    for op in program.ops.values():
        if b.in_port.get(op.name) is None:
            continue
        adapt = b.adapt.get(op.name, lambda port: port)
        for src in op.inputs:
            port = b.out_port[src]
            d = b.sched.edge_delay.get((src, op.name), 0)
            if d > 0 and (src, op.name) not in b.delays_done:
                sh = b.shift((program.ops[src].size,), d, f"shift_{src}_{op.name}")
                port.connect(sh.a_in)
                port = sh.s_out
            adapt(port).connect(b.in_port[op.name])
    return b


def run_program(program: Program, data: dict[str, np.ndarray], precision: str,
                fixed: fxp.FixedProgram | None, record: list[str], builders=BUILDERS,
                processes=None, clear: dict | None = None) -> tuple[dict, int]:
    """Build, run and stop a Lava network; returns (records aligned to input steps, latency).

    ``clear``: synaptic op -> window position; its process's activation buffer is zeroed
    before that step of every window (see :func:`run_windows`)."""
    num_steps, n = next(iter(data.values())).shape[:2]
    b = build_network(program, data, precision, fixed, num_steps, builders, processes)
    lat = b.lat
    sinks: dict = {}                  # op -> the port its record is read from
    aliases: dict[str, str] = {}      # op -> op whose sink already records the same port
    by_port: dict[tuple, str] = {}
    for name in record:
        op = program.ops[name]
        if name in sinks or op.synaptic or name in program.inputs:
            continue   # inputs are recorded from the data itself (a sink costs a process)
        key = (id(b.out_port[name]), lat[name])
        if key in by_port:
            aliases[name] = by_port[key]
            continue
        sinks[name] = b.out_port[name]
        by_port[key] = name
    runner = b.processes[0]
    cfg = Loihi2SimCfg(select_tag=PRECISION_TAGS[precision])
    buffers = {b.process_of[name].a_buff: pos for name, pos in (clear or {}).items()}
    with Recorders(sinks, b.total_steps) as recorders:
        try:
            run_windows(runner, cfg, n, b.window, buffers)
        finally:
            runner.stop()
        raw = recorders.read()
    records = align_windows(raw, lat, n, b.window, num_steps, precision)
    for name, target in aliases.items():
        records[name] = records[target]
    for name in record:
        if name in program.inputs:
            x = data[name]
            records[name] = (np.round(x * fixed.scales[name]).astype(np.int64)
                             if precision == "fixed" else x.astype(np.float64))
    return records, b.sched.total_latency


class Recorders:
    """A RecordSink on each named flat port (netx's conv ports are flattened in C order by
    their caller), each writing its whole record to a file of a private folder in the step
    that fills it; ``read()`` loads them after the run: one file per sink instead of one
    Lava message per value."""

    def __init__(self, ports: dict, length: int):
        self.folder = Path(tempfile.mkdtemp(prefix="spikedeploy-records-"))
        self.paths = {}
        for k, (name, port) in enumerate(ports.items()):
            self.paths[name] = self.folder / f"{k}.npy"
            sink = RecordSink(shape=tuple(port.shape), buffer=length, path=self.paths[name])
            port.connect(sink.a_in)

    def read(self) -> dict:
        raw = {}
        for name, path in self.paths.items():
            if not path.exists():
                raise SpikedeployError(f"Lava run ended before recording '{name}' whole")
            raw[name] = np.load(path, allow_pickle=False)
        return raw

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.folder, ignore_errors=True)


def align_windows(raw: dict, lat: dict, n: int, window: int, num_steps: int,
                  precision: str) -> dict:
    """Sink streams (size, n * window) -> (T, n, size) records read at each op's latency."""
    records = {}
    for name, stream in raw.items():
        windows = stream.reshape(stream.shape[0], n, window)
        start = lat[name]
        aligned = windows[:, :, start:start + num_steps].transpose(2, 1, 0)
        records[name] = aligned.astype(np.int64 if precision == "fixed" else np.float64)
    return records


PROGRESS_CHUNKS = 20                         # reports per run when one is watched


def _progress_reporter():
    """A function writing the number of windows run to the file the caller named, or None."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return None

    def report(done: int) -> None:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(str(done))
        os.replace(tmp, path)
    return report


def run_windows(runner, cfg, n: int, window: int, buffers: dict) -> None:
    """Run n windows; ``buffers``: activation-buffer Var -> window position before which it
    is zeroed in every window.

    A recurrent synapse of a stock LIFReset population delivers, in the step
    the population restarts for a new sample, the spikes it sent one step
    earlier, while the previous sample was draining; the graph's recurrent
    edge reads zero there. Zeroing that synapse's buffer from the host between
    those two steps, as a Loihi host resets state between samples, makes the
    run the graph's. Without such buffers the whole run is one call.
    """
    report = _progress_reporter()
    if not buffers:
        # In chunks only when someone watches: each run call costs a synchronisation.
        chunk = n if report is None else max(1, -(-n // PROGRESS_CHUNKS))
        for first in range(0, n, chunk):
            count = min(chunk, n - first)
            runner.run(condition=RunSteps(num_steps=count * window), run_cfg=cfg)
            if report is not None:
                report(first + count)
        return
    stops = sorted(set(buffers.values()))
    done = 0
    for k in range(n):
        if report is not None:
            report(k)
        for pos in stops:
            target = k * window + pos
            if target > done:
                runner.run(condition=RunSteps(num_steps=target - done), run_cfg=cfg)
                done = target
            for var, at in buffers.items():
                if at == pos:
                    var.set(np.zeros(var.shape))
    if n * window > done:
        runner.run(condition=RunSteps(num_steps=n * window - done), run_cfg=cfg)
