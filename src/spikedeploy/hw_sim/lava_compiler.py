"""Program -> Lava processes, and running them under Loihi2SimCfg.

Imported only inside the Lava worker process (it imports Lava). Each op
type has one builder in :data:`BUILDERS`.

Timing: every Dense hop delays its output by one step (Lava buffers the
dendritic accumulation). The compiler gives each op a latency (input: 0,
Dense: +1), runs the samples back to back in windows of T + max latency
steps, and reads each recorded op at its latency, so returned records are
aligned to the input's time steps.
"""
from __future__ import annotations

import numpy as np

from .. compat import lava_py311  # noqa: F401  (must precede any Lava import)
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as SinkBuffer
from lava.proc.io.source import RingBuffer as SourceBuffer

from ..errors import UnsupportedError
from ..ir import fixed_point as fxp
from ..ir.program import DenseOp, InputOp, NeuronOp, Op, OutputOp, Program, ReshapeOp
from .lava_procs.neuron.process import WindowedNeuron

PRECISION_TAGS = {"float": "floating_pt", "fixed": "fixed_pt"}
GRADED_MESSAGE_BITS = 24


def latencies(program: Program) -> dict[str, int]:
    """Steps after which each op's output for input step 0 appears in Lava."""
    lat: dict[str, int] = {}
    for op in program.ops.values():
        if isinstance(op, InputOp):
            lat[op.name] = 0
            continue
        arrivals = {lat[s] for s in op.inputs if s not in op.recurrent}
        if len(arrivals) > 1:
            raise UnsupportedError(op.name, "inputs",
                                   f"paths of different latency {sorted(arrivals)} meet here; "
                                   "delay equalisation is not implemented yet", backend="lava")
        lat[op.name] = arrivals.pop() + (1 if isinstance(op, DenseOp) else 0)
    for op in program.ops.values():
        for src in op.recurrent:
            if lat[src] != lat[op.name] + 1:
                raise UnsupportedError(
                    op.name, "recurrent",
                    f"the cycle through '{src}' takes {lat[src] - lat[op.name]} Lava steps; "
                    "recurrent edges must pass through exactly one synaptic node", backend="lava")
    return lat


class _Build:
    """Holds the processes built so far and where each op's output comes out."""

    def __init__(self, program, precision, fixed, data, num_steps, window, lat):
        self.program, self.precision, self.fixed = program, precision, fixed
        self.data, self.num_steps, self.window, self.lat = data, num_steps, window, lat
        self.out_port: dict[str, object] = {}
        self.in_ports: dict[str, list] = {}
        self.processes: list = []
        self.sinks: dict[str, SinkBuffer] = {}

    @property
    def total_steps(self) -> int:
        n = next(iter(self.data.values())).shape[1]
        return n * self.window

    def binary_source(self, name: str) -> bool:
        op = self.program.ops[name]
        while isinstance(op, (ReshapeOp, OutputOp)):
            op = self.program.ops[op.inputs[0]]
        if isinstance(op, NeuronOp):
            return op.params.spiking
        if isinstance(op, InputOp):
            x = self.data[op.name]
            return bool(np.all((x == 0) | (x == 1)))
        return False


def _build_input(b: _Build, op: InputOp):
    x = b.data[op.name]                                   # (T, N, size)
    steps, n, size = x.shape
    stream = np.zeros((size, n, b.window))
    stream[:, :, :steps] = x.transpose(2, 1, 0)
    if b.precision == "fixed":
        stream = np.round(stream * b.fixed.scales[op.name])
    proc = SourceBuffer(data=stream.reshape(size, n * b.window))
    b.out_port[op.name] = proc.s_out
    return proc


def _build_dense(b: _Build, op: DenseOp):
    bits = 0 if all(b.binary_source(s) for s in op.inputs) else GRADED_MESSAGE_BITS
    if b.precision == "fixed":
        p: fxp.FixedDense = b.fixed.params[op.name]
        proc = Dense(weights=p.weight.astype(np.int32), weight_exp=p.weight_exp,
                     num_weight_bits=8, num_message_bits=bits, name=op.name)
    else:
        proc = Dense(weights=op.weight, num_message_bits=bits, name=op.name)
    b.in_ports[op.name] = [proc.s_in]
    b.out_port[op.name] = proc.a_out
    return proc


def _build_neuron(b: _Build, op: NeuronOp):
    common = dict(shape=(op.size,), window=b.window, latency=b.lat[op.name],
                  num_steps=b.num_steps, name=op.name)
    if b.precision == "fixed":
        q: fxp.FixedNeuron = b.fixed.params[op.name]
        proc = WindowedNeuron(
            du=q.du, dv=q.dv, gain=1, bias_mant=q.bias_mant, bias_exp=q.bias_exp,
            input_bias=q.input_bias, vth=0 if q.vth is None else q.vth, v_reset=q.v_reset,
            v_init=q.v_init, spiking=q.spiking, subtract_reset=q.reset_mode == "subtract",
            **common)
    else:
        p = op.params
        flat = lambda x: np.broadcast_to(np.asarray(x, np.float64), p.shape).reshape(-1)
        proc = WindowedNeuron(
            du=flat(p.du), dv=flat(p.dv), gain=flat(p.gain), bias_mant=flat(p.bias), bias_exp=0,
            input_bias=flat(p.input_bias), vth=flat(p.v_th) if p.spiking else 0.0,
            v_reset=flat(p.v_reset), v_init=flat(p.v_init), spiking=p.spiking,
            subtract_reset=p.reset_mode == "subtract", **common)
    b.in_ports[op.name] = [proc.a_in]
    b.out_port[op.name] = proc.s_out
    return proc


def _build_passthrough(b: _Build, op: Op):
    # Flatten / Output: no process; the flat layout is unchanged.
    b.out_port[op.name] = b.out_port[op.inputs[0]]
    b.in_ports[op.name] = []
    return None


# Registry: op type -> Lava builder. One entry per primitive.
BUILDERS = {InputOp: _build_input, DenseOp: _build_dense, NeuronOp: _build_neuron,
            ReshapeOp: _build_passthrough, OutputOp: _build_passthrough}


def run_program(program: Program, data: dict[str, np.ndarray], precision: str,
                fixed: fxp.FixedProgram | None, record: list[str]) -> tuple[dict, int]:
    """Build, run and stop a Lava network; returns (records aligned to input steps, latency)."""
    num_steps, n = next(iter(data.values())).shape[:2]
    lat = latencies(program)
    max_lat = max(lat.values())
    b = _Build(program, precision, fixed, data, num_steps, num_steps + max_lat, lat)
    for op in program.ops.values():
        builder = BUILDERS.get(type(op))
        if builder is None:
            raise UnsupportedError(op.name, "type", f"{op.nir_type} has no Lava lowering yet",
                                   backend="lava")
        proc = builder(b, op)
        if proc is not None:
            b.processes.append(proc)
    for op in program.ops.values():
        for src in op.inputs:
            for port in b.in_ports[op.name]:
                b.out_port[src].connect(port)
    for name in record:
        if name in b.sinks or isinstance(program.ops[name], DenseOp):
            continue
        sink = SinkBuffer(shape=(program.ops[name].size,), buffer=b.total_steps)
        b.out_port[name].connect(sink.a_in)
        b.sinks[name] = sink
    runner = b.processes[0]
    cfg = Loihi2SimCfg(select_tag=PRECISION_TAGS[precision])
    try:
        runner.run(condition=RunSteps(num_steps=b.total_steps), run_cfg=cfg)
        raw = {name: sink.data.get() for name, sink in b.sinks.items()}
    finally:
        runner.stop()
    records = {}
    for name, stream in raw.items():
        size = stream.shape[0]
        windows = stream.reshape(size, n, b.window)
        start = lat[name]
        aligned = windows[:, :, start:start + num_steps].transpose(2, 1, 0)
        records[name] = aligned.astype(np.int64 if precision == "fixed" else np.float64)
    return records, max_lat
