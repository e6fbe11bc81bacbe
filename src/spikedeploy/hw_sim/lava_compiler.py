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

from functools import cached_property

import numpy as np

from ..compat import lava_py311  # noqa: F401  (must precede any Lava import)
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as SinkBuffer
from lava.proc.io.source import RingBuffer as SourceBuffer

from ..ir import fixed_point as fxp
from ..ir.ops import Program
from .lava_builders import BUILDERS, LavaBuild, lava_problem
from .lava_procs.neuron.process import WindowedNeuron
from .lava_procs.shift.process import Shift
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
                  fixed: fxp.FixedProgram | None, num_steps: int) -> LavaBuild:
    b = LavaBuild(LavaProcesses(), program, precision, fixed, data, num_steps, schedule(program))
    for op in program.ops.values():
        problem = lava_problem(program, op)
        if problem is not None:
            raise problem
        proc = BUILDERS[type(op)].build(b, op)
        if proc is not None:
            b.processes.append(proc)
    for op in program.ops.values():
        if b.in_port.get(op.name) is None:
            continue
        adapt = b.adapt.get(op.name, lambda port: port)
        for src in op.inputs:
            port = b.out_port[src]
            d = b.sched.edge_delay.get((src, op.name), 0)
            if d > 0:
                sh = b.shift((program.ops[src].size,), d, f"shift_{src}_{op.name}")
                port.connect(sh.a_in)
                port = sh.s_out
            adapt(port).connect(b.in_port[op.name])
    return b


def run_program(program: Program, data: dict[str, np.ndarray], precision: str,
                fixed: fxp.FixedProgram | None, record: list[str]) -> tuple[dict, int]:
    """Build, run and stop a Lava network; returns (records aligned to input steps, latency)."""
    num_steps, n = next(iter(data.values())).shape[:2]
    b = build_network(program, data, precision, fixed, num_steps)
    lat = b.lat
    sinks: dict[str, SinkBuffer] = {}
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
        sink = SinkBuffer(shape=(op.size,), buffer=b.total_steps)
        b.out_port[name].connect(sink.a_in)
        sinks[name] = sink
        by_port[key] = name
    runner = b.processes[0]
    cfg = Loihi2SimCfg(select_tag=PRECISION_TAGS[precision])
    try:
        runner.run(condition=RunSteps(num_steps=b.total_steps), run_cfg=cfg)
        raw = {name: sink.data.get() for name, sink in sinks.items()}
    finally:
        runner.stop()
    records = {}
    for name, stream in raw.items():
        size = stream.shape[0]
        windows = stream.reshape(size, n, b.window)
        start = lat[name]
        aligned = windows[:, :, start:start + num_steps].transpose(2, 1, 0)
        records[name] = aligned.astype(np.int64 if precision == "fixed" else np.float64)
    for name, target in aliases.items():
        records[name] = records[target]
    for name in record:
        if name in program.inputs:
            x = data[name]
            records[name] = (np.round(x * fixed.scales[name]).astype(np.int64)
                             if precision == "fixed" else x.astype(np.float64))
    return records, b.sched.total_latency
