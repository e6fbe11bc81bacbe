"""Program -> Lava processes, and running them under Loihi2SimCfg.

Imported only inside the Lava worker process (it imports Lava). Each op
type has one builder in :data:`BUILDERS`.

Layout: every port carries a flat vector per sample in NIR's C order, as in
the reference simulator. Only Lava's Conv wants (X, Y, C) = (W, H, C): its
input is connected through the virtual ports ``reshape((C, H, W))`` then
``transpose((2, 1, 0))``, and its output goes back through the inverse
transpose and a flatten, so Flatten costs nothing and every other process
(including our custom neuron) stays layout-agnostic. The kernel is flipped
and transposed to Lava's true-convolution (C_out, kW, kH, C_in) layout.
Convolutions Lava's Conv cannot express (asymmetric padding, e.g. 'same'
with an even kernel) run as a Sparse synapse holding the equivalent matrix.

Timing (see :func:`schedule`): every synaptic process (Dense, Sparse, Conv)
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

import numpy as np

from .. compat import lava_py311  # noqa: F401  (must precede any Lava import)
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as SinkBuffer
from lava.proc.io.source import RingBuffer as SourceBuffer

from ..errors import UnsupportedError
from ..ir import fixed_point as fxp
from ..ir.program import (ConvOp, DelayOp, DenseOp, InputOp, LinearOp, NeuronOp, Op, OutputOp,
                          Program, ReshapeOp, ScaleOp, bias_problem)
from .lava_procs.neuron.process import WindowedNeuron
from .lava_procs.shift.process import Shift
from .timing import Schedule, schedule

PRECISION_TAGS = {"float": "floating_pt", "fixed": "fixed_pt"}
GRADED_MESSAGE_BITS = 24


def latencies(program: Program) -> dict[str, int]:
    """Steps after which each op's output for input step 0 appears in Lava."""
    return schedule(program).latency


class _Build:
    """Holds the processes built so far and where each op's output comes out."""

    def __init__(self, program, precision, fixed, data, num_steps, window, sched: Schedule):
        self.program, self.precision, self.fixed = program, precision, fixed
        self.data, self.num_steps, self.window, self.sched = data, num_steps, window, sched
        self.lat = sched.latency
        self.out_port: dict[str, object] = {}
        self.in_port: dict[str, object] = {}      # op -> InPort (None: output aliased to its input)
        self.adapt: dict[str, object] = {}        # op -> function(OutPort) -> port to connect
        self.processes: list = []
        self.sinks: dict[str, SinkBuffer] = {}

    @property
    def total_steps(self) -> int:
        n = next(iter(self.data.values())).shape[1]
        return n * self.window

    def binary_source(self, name: str) -> bool:
        op = self.program.ops[name]
        while isinstance(op, (ReshapeOp, OutputOp, DelayOp)):
            if len(op.inputs) != 1:
                return False
            op = self.program.ops[op.inputs[0]]
        if isinstance(op, NeuronOp):
            return op.params.spiking
        if isinstance(op, InputOp):
            x = self.data[op.name]
            return bool(np.all((x == 0) | (x == 1)))
        return False

    def message_bits(self, op) -> int:
        # Several edges into one port are summed by Lava: the sum of spikes is graded.
        binary = len(op.inputs) == 1 and self.binary_source(op.inputs[0])
        return 0 if binary else GRADED_MESSAGE_BITS

    def shift(self, shape, delays, name):
        proc = Shift(shape=shape, delays=delays, name=name)
        self.processes.append(proc)
        return proc

    def fixed_weights(self, op) -> fxp.FixedDense:
        return self.fixed.params[op.name]


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


def _check_bias(b: _Build, op):
    why = bias_problem(b.program, op)
    if why:
        raise UnsupportedError(op.name, "bias", why, backend="lava")


def _build_dense(b: _Build, op: DenseOp):
    _check_bias(b, op)
    bits = b.message_bits(op)
    if b.precision == "fixed":
        p = b.fixed_weights(op)
        proc = Dense(weights=p.weight.astype(np.int32), weight_exp=p.weight_exp,
                     num_weight_bits=8, num_message_bits=bits, name=op.name)
    else:
        proc = Dense(weights=op.weight, num_message_bits=bits, name=op.name)
    b.in_port[op.name] = proc.s_in
    b.out_port[op.name] = proc.a_out
    return proc


def _sparse(b: _Build, op: LinearOp):
    """Any linear op as Lava's Sparse synapse holding its equivalent matrix."""
    from lava.proc.sparse.process import Sparse   # imported on demand: scipy.signal is slow
    _check_bias(b, op)
    bits = b.message_bits(op)
    if b.precision == "fixed":
        p = b.fixed_weights(op)
        m = op.matrix(p.weight.astype(np.int64)).astype(np.int32).tocsr()
        proc = Sparse(weights=m, weight_exp=p.weight_exp, num_weight_bits=8,
                      num_message_bits=bits, name=op.name)
    else:
        proc = Sparse(weights=op.matrix().tocsr(), num_message_bits=bits, name=op.name)
    b.in_port[op.name] = proc.s_in
    b.out_port[op.name] = proc.a_out
    return proc


def _lava_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch cross-correlation (Co, Ci, kH, kW) -> Lava convolution (Co, kW, kH, Ci)."""
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def _build_conv(b: _Build, op: ConvOp):
    if not op.lava_native:
        return _sparse(b, op)
    from lava.proc.conv.process import Conv       # imported on demand: scipy.signal is slow
    _check_bias(b, op)
    cin, h, w = op.in_shape
    cout, ho, wo = op.shape
    if b.precision == "fixed":
        kernel = _lava_kernel(b.fixed_weights(op).weight.astype(np.int32))
    else:
        kernel = _lava_kernel(op.weight.astype(np.float64))
    (pt, _), (pl, _) = op.padding
    proc = Conv(weight=kernel, input_shape=(w, h, cin), padding=(pl, pt),
                stride=(op.stride[1], op.stride[0]), dilation=(op.dilation[1], op.dilation[0]),
                groups=op.groups, num_message_bits=b.message_bits(op), name=op.name)
    b.in_port[op.name] = proc.s_in
    b.adapt[op.name] = lambda port: port.reshape((cin, h, w)).transpose((2, 1, 0))
    b.out_port[op.name] = proc.a_out.transpose((2, 1, 0)).reshape((op.size,))
    return proc


def _build_neuron(b: _Build, op: NeuronOp):
    gains = op.params.step_gain
    if gains is not None and len(gains) < b.num_steps:
        raise UnsupportedError(op.name, "spikedeploy.tsm_gain",
                               f"TSM gains are defined for {len(gains)} time steps, the run has "
                               f"{b.num_steps}", backend="lava")
    common = dict(shape=(op.size,), window=b.window, latency=b.lat[op.name],
                  num_steps=b.num_steps, name=op.name)
    if b.precision == "fixed":
        q: fxp.FixedNeuron = b.fixed.params[op.name]
        proc = WindowedNeuron(
            du=q.du, dv=q.dv, gain=1, bias_mant=q.bias_mant, bias_exp=q.bias_exp,
            input_bias=q.input_bias, vth=0 if q.vth is None else q.vth, v_reset=q.v_reset,
            v_init=q.v_init, spiking=q.spiking, subtract_reset=q.reset_mode == "subtract",
            step_gain=q.step_gain, **common)
    else:
        p = op.params
        flat = lambda x: np.broadcast_to(np.asarray(x, np.float64), p.shape).reshape(-1)
        proc = WindowedNeuron(
            du=flat(p.du), dv=flat(p.dv), gain=flat(p.gain), bias_mant=flat(p.bias), bias_exp=0,
            input_bias=flat(p.input_bias), vth=flat(p.v_th) if p.spiking else 0.0,
            v_reset=flat(p.v_reset), v_init=flat(p.v_init), spiking=p.spiking,
            subtract_reset=p.reset_mode == "subtract", step_gain=p.step_gain, **common)
    b.in_port[op.name] = proc.a_in
    b.out_port[op.name] = proc.s_out
    return proc


def _build_delay(b: _Build, op: DelayOp):
    proc = Shift(shape=(op.size,), delays=op.steps, name=op.name)
    b.in_port[op.name] = proc.a_in
    b.out_port[op.name] = proc.s_out
    return proc


def _build_passthrough(b: _Build, op: Op):
    # Flatten / Output: no process when there is one plain input (the layout is flat C order
    # everywhere); several inputs are summed by a Shift with no delay.
    src = op.inputs[0]
    if len(op.inputs) == 1 and not op.recurrent and (src, op.name) not in b.sched.edge_delay:
        b.out_port[op.name] = b.out_port[src]
        b.in_port[op.name] = None
        return None
    return _build_delay(b, DelayOp(op.name, op.shape, steps=np.zeros(op.size, np.int64)))


# Registry: op type -> Lava builder (looked up along the class hierarchy: Threshold is a
# NeuronOp). One entry per primitive.
BUILDERS = {InputOp: _build_input, DenseOp: _build_dense, ScaleOp: _sparse, ConvOp: _build_conv,
            NeuronOp: _build_neuron, DelayOp: _build_delay,
            ReshapeOp: _build_passthrough, OutputOp: _build_passthrough}


def builder_for(op: Op):
    for cls in type(op).__mro__:
        if cls in BUILDERS:
            return BUILDERS[cls]
    return None


def build_network(program: Program, data: dict[str, np.ndarray], precision: str,
                  fixed: fxp.FixedProgram | None, num_steps: int) -> _Build:
    sched = schedule(program)
    b = _Build(program, precision, fixed, data, num_steps, sched.window(num_steps), sched)
    for op in program.ops.values():
        builder = builder_for(op)
        if builder is None:
            raise UnsupportedError(op.name, "type", f"{op.nir_type} has no Lava lowering yet",
                                   backend="lava")
        proc = builder(b, op)
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
    aliases: dict[str, str] = {}      # op -> op whose sink already records the same port
    by_port: dict[tuple, str] = {}
    for name in record:
        op = program.ops[name]
        if name in b.sinks or isinstance(op, (LinearOp, InputOp)):
            continue   # inputs are recorded from the data itself (a sink costs a process)
        key = (id(b.out_port[name]), lat[name])
        if key in by_port:
            aliases[name] = by_port[key]
            continue
        sink = SinkBuffer(shape=(op.size,), buffer=b.total_steps)
        b.out_port[name].connect(sink.a_in)
        b.sinks[name] = sink
        by_port[key] = name
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
    for name, target in aliases.items():
        records[name] = records[target]
    for name in record:
        if isinstance(program.ops[name], InputOp):
            x = data[name]
            records[name] = (np.round(x * fixed.scales[name]).astype(np.int64)
                             if precision == "fixed" else x.astype(np.float64))
    return records, b.sched.total_latency
