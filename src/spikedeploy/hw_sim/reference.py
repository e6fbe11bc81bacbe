"""Batched reference simulator: the Lava lowering's semantics, vectorised over samples.

Time model: latency-free. At step t every op reads its inputs' outputs of
step t (recurrent inputs: of step t-1). Lava delays each synaptic hop by one
step; the Lava runner aligns its outputs back to the input's steps, so after
alignment both backends emit the same spikes (float) and the same integers
(fixed), step for step. See README "Semantics".

Each op type has one runner per precision, an entry of the OpTables
:data:`FLOAT_RUNNERS` and :data:`FIXED_RUNNERS` (README: "Extending
spikedeploy").
"""
from __future__ import annotations

import numpy as np

from ..errors import SpikedeployError
from ..ir import fixed_point as fxp
from ..ir.op_table import OpTable
from ..ir.ops import (ConvOp, DelayOp, DenseOp, InputOp, NeuronOp, Op, OutputOp, Program,
                      ReshapeOp, ScaleOp, SynapticOp, ThresholdOp)
from ..ir.semantics import neuron_step, require_step_gains
from ..progress import track
from .result import SimResult

FLOAT_RUNNERS: OpTable = OpTable("float reference runner", backend="reference-float")
FIXED_RUNNERS: OpTable = OpTable("fixed-point reference runner", backend="reference-fixed")
RUNNERS = {"float": FLOAT_RUNNERS, "fixed": FIXED_RUNNERS}


@FLOAT_RUNNERS.register(InputOp, OutputOp, ReshapeOp)
@FIXED_RUNNERS.register(OutputOp, ReshapeOp)
class _PassThrough:
    def __init__(self, op: Op, n: int, fixed=None):
        pass

    def step(self, x):
        return x


@FIXED_RUNNERS.register(InputOp)
class _InputFixed:
    def __init__(self, op, n, fixed: fxp.FixedProgram):
        self.scale = fixed.scales[op.name]

    def step(self, x):
        return np.round(x * self.scale).astype(np.int64)


EXACT_LIMIT = float(2 ** 52)   # float64 sums of integers below this are exact
DENSE_MATRIX_LIMIT = 1 << 22   # a conv's equivalent matrix up to 4M entries runs as dense BLAS


def _batched_matrix(matrix):
    """M^T for ``x @ M^T``: dense when small (BLAS beats sparse there), else sparse CSR."""
    if hasattr(matrix, "toarray") and np.prod(matrix.shape) <= DENSE_MATRIX_LIMIT:
        matrix = matrix.toarray()
    return np.ascontiguousarray(matrix.T) if isinstance(matrix, np.ndarray) else matrix.T.tocsr()


@FLOAT_RUNNERS.register(DenseOp)
class _SynapseFloat:
    """y = M x (+ a bias no neuron could carry)."""

    def __init__(self, op: SynapticOp, n, fixed=None):
        self.op = op
        self.bias = op.full_bias()
        self.mt = _batched_matrix(op.matrix())

    def _apply(self, x):
        return np.asarray(x @ self.mt)

    def step(self, x):
        y = self._apply(x)
        return y if self.bias is None else y + self.bias


@FLOAT_RUNNERS.register(ScaleOp)
class _ScaleFloat(_SynapseFloat):
    """y = s * x elementwise (no matrix)."""

    def __init__(self, op: ScaleOp, n, fixed=None):
        self.op, self.bias = op, op.full_bias()

    def _apply(self, x):
        return self.op.apply(x)


@FLOAT_RUNNERS.register(ConvOp)
@FIXED_RUNNERS.register(ConvOp)
class _Conv:
    """Convolutions (and pooling) as im2col + batched matmul over the real taps only.

    The equivalent matrix would multiply mostly zeros. In fixed precision the
    integer mantissas and inputs give integer partial sums below 2**52
    (checked), which float64 computes exactly in any order.
    """

    def __init__(self, op: ConvOp, n, fixed: fxp.FixedProgram | None = None):
        self.op = op
        p = None if fixed is None else fixed.params[op.name]
        weight = np.asarray(op.weight if p is None else p.weight, np.float64)
        cout, cin_g, kh, kw = weight.shape
        g = op.groups
        # (g, K, Cout/g): one GEMM per group over all samples and positions
        self.kernel = np.ascontiguousarray(
            weight.reshape(g, cout // g, cin_g * kh * kw).transpose(0, 2, 1))
        self.gather = op.geometry.gather_index().transpose(0, 2, 1).copy()  # (g, P, K)
        self.bias = op.full_bias() if p is None else None
        self.fixed = p
        self.tap_bound = float(np.abs(weight).reshape(cout, -1).sum(axis=1).max())

    def step(self, x):
        op = self.op
        if self.fixed is not None and (float(np.abs(x).max(initial=0)) * self.tap_bound
                                       >= EXACT_LIMIT):
            raise SpikedeployError(f"node '{op.name}': integer activations exceed the exact "
                                   "range of the fixed-point reference")
        n = x.shape[0]
        g, positions, taps = self.gather.shape
        padded = np.concatenate([np.asarray(x, np.float64), np.zeros((n, 1))], axis=1)
        patches = padded.T[self.gather]                          # (g, P, K, N)
        patches = patches.transpose(0, 3, 1, 2).reshape(g, n * positions, taps)
        y = np.matmul(patches, self.kernel)                      # (g, N*P, Cout/g)
        y = y.reshape(g, n, positions, -1).transpose(1, 0, 3, 2).reshape(n, -1)   # C order
        if self.fixed is None:
            return y if self.bias is None else y + self.bias
        a = np.rint(y).astype(np.int64)
        p = self.fixed
        a = a << p.weight_exp if p.weight_exp > 0 else a >> -p.weight_exp
        return a if p.wrap_bits is None else fxp.wrap_signed(a, p.wrap_bits)


@FIXED_RUNNERS.register(DenseOp, ScaleOp)
class _SynapseFixed:
    """Lava's bit-accurate synapses: integer mantissas, exponent shift, Conv's 24-bit wrap.

    The integer products are computed with float64 BLAS when every partial sum
    is an integer below 2**52 (then exact), else with int64 arithmetic.
    """

    def __init__(self, op: SynapticOp, n, fixed: fxp.FixedProgram):
        p: fxp.FixedWeights = fixed.params[op.name]
        self.op, self.exp, self.wrap = op, p.weight_exp, p.wrap_bits
        weight = p.weight.astype(np.int64)
        matrix = op.matrix(weight)
        self.matrix = np.ascontiguousarray(matrix) if isinstance(matrix, np.ndarray) else matrix
        self.mt_f = _batched_matrix(self.matrix.astype(np.float64))
        self.row_bound = float(abs(self.matrix).sum(axis=1).max()) if self.matrix.shape[0] else 0.0

    def step(self, x):
        peak = float(np.abs(x).max()) if x.size else 0.0
        if peak * self.row_bound < EXACT_LIMIT:
            a = np.rint(np.asarray(x.astype(np.float64) @ self.mt_f)).astype(np.int64)
        else:
            a = np.asarray((self.matrix @ x.astype(np.int64).T).T).astype(np.int64)
        a = a << self.exp if self.exp > 0 else a >> -self.exp
        return a if self.wrap is None else fxp.wrap_signed(a, self.wrap)


@FLOAT_RUNNERS.register(DelayOp)
@FIXED_RUNNERS.register(DelayOp)
class _Delay:
    """y[t] = x[t - d] per element (zero before), as a ring buffer."""

    def __init__(self, op: DelayOp, n, fixed=None):
        self.d = op.steps.astype(np.int64)
        self.depth = int(self.d.max(initial=0)) + 1
        self.buf = None
        self.t = 0
        self.cols = np.arange(op.size)

    def step(self, x):
        if self.buf is None:
            self.buf = np.zeros((self.depth,) + x.shape, x.dtype)
        self.buf[self.t % self.depth] = x
        y = self.buf[(self.t - self.d) % self.depth, :, self.cols].T
        y = np.where(self.t >= self.d, y, 0)
        self.t += 1
        return y.astype(x.dtype)


@FLOAT_RUNNERS.register(NeuronOp, ThresholdOp)
class _NeuronFloat:
    def __init__(self, op: NeuronOp, n, fixed=None):
        self.p = op.params.flat()
        self.u = np.zeros((n, op.size))
        self.v = np.broadcast_to(self.p.v_init, (n, op.size)).copy()
        self.t = 0   # time step within the sample (TSM gains are per step)

    def step(self, a):
        self.u, self.v, out = neuron_step(self.u, self.v, a, self.p, self.t)
        self.t += 1
        return out


@FIXED_RUNNERS.register(NeuronOp, ThresholdOp)
class _NeuronFixed:
    def __init__(self, op: NeuronOp, n, fixed: fxp.FixedProgram):
        self.p = fixed.params[op.name]
        self.u = np.zeros((n, op.size), np.int64)
        self.v = np.broadcast_to(self.p.v_init, (n, op.size)).astype(np.int64).copy()
        self.t = 0

    def step(self, a):
        self.u, self.v, out = fxp.neuron_step_fixed(self.u, self.v, a, self.p, self.t)
        self.t += 1
        return out


def as_input_dict(program: Program, inputs) -> dict[str, np.ndarray]:
    if not isinstance(inputs, dict):
        if len(program.inputs) != 1:
            raise SpikedeployError(f"graph has {len(program.inputs)} inputs: pass a dict by name")
        inputs = {program.inputs[0]: inputs}
    out = {}
    for name in program.inputs:
        if name not in inputs:
            raise SpikedeployError(f"no data for input node '{name}'")
        x = np.asarray(inputs[name], dtype=np.float64)
        op = program.ops[name]
        if x.ndim < 2 or int(np.prod(x.shape[2:])) != op.size:
            raise SpikedeployError(
                f"input '{name}' must be time-major (T, N, *{op.shape}), got shape {x.shape}")
        out[name] = x.reshape(x.shape[0], x.shape[1], op.size)
    steps = {x.shape[:2] for x in out.values()}
    if len(steps) != 1:
        raise SpikedeployError(f"inputs disagree on (T, N): {sorted(steps)}")
    return out


def simulate(program: Program, inputs, precision: str = "float",
             fixed: fxp.FixedProgram | None = None, record: str = "all",
             record_voltages: bool = False) -> SimResult:
    """Run a batch: ``inputs`` is (T, N, *input_shape) or a dict of them by input name.

    ``record``: "all" keeps every op's output per step (for energy and
    verification); "outputs" keeps only the Output nodes. With
    ``record_voltages`` every neuron's membrane voltage after its update
    (after reset; integer units in fixed precision) goes to ``voltages``.
    """
    if precision not in RUNNERS:
        raise SpikedeployError(f"unknown precision {precision!r} (float|fixed)")
    data = as_input_dict(program, inputs)
    num_steps, n = next(iter(data.values())).shape[:2]
    for op in program.ops.values():
        if isinstance(op, NeuronOp):
            require_step_gains(op.params, num_steps, op.name)
    fixed = fxp.for_run(program, precision, fixed)
    table = RUNNERS[precision]
    runners = {op.name: table.lookup(op)(op, n, fixed) for op in program.ops.values()}
    dtype = np.float64 if precision == "float" else np.int64
    keep = list(program.ops) if record == "all" else list(program.outputs)
    records = {name: np.zeros((num_steps, n, program.ops[name].size), dtype) for name in keep}
    zero = {name: np.zeros((n, op.size), dtype) for name, op in program.ops.items()}
    prev = dict(zero)
    neurons = [name for name, op in program.ops.items() if isinstance(op, NeuronOp)]
    voltages = ({name: np.zeros((num_steps, n, program.ops[name].size), dtype) for name in neurons}
                if record_voltages else {})
    for t in track(range(num_steps), f"reference {precision}", unit="step"):
        cur: dict[str, np.ndarray] = {}
        for name, op in program.ops.items():
            if isinstance(op, InputOp):
                x = data[name][t]
            else:
                srcs = [prev[s] if s in op.recurrent else cur[s] for s in op.inputs]
                x = srcs[0] if len(srcs) == 1 else np.sum(srcs, axis=0)
            cur[name] = runners[name].step(x)
        for name in keep:
            records[name][t] = cur[name]
        for name, v in voltages.items():
            v[t] = runners[name].v
        prev = cur
    return SimResult(program, records, backend="reference", precision=precision, fixed=fixed,
                     voltages=voltages)
