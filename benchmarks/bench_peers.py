"""The reference simulator's engines against the simulators a user could pick instead.

Usage: python benchmarks/bench_peers.py [--steps 100] [--batches 1,16,256,1024] [--rounds 3]
       [--nets mlp,cnn,nmnist] [--memory] [--device cuda]   (cuda: added where torch finds one)

Per network and batch size, every method runs the same random spike input (30 % of
inputs on) through the same weights, ``--rounds`` times in alternating order; the table
shows each method's median time per sample-step and its ratio to our float64 engine,
and how many output spikes differ from our float64 reference (fixed point: from our
numpy fixed-point run; 0 = identical). Methods:

* ours: the reference simulator (``simulate(..., record="outputs")``) with the numpy and
  torch engines, float64 and float32, and fixed point;
* snnTorch ``Leaky`` (reset to zero in the spike's step), float32 and float64, one step
  per call under ``no_grad``;
* Norse ``lif_box_feed_forward_step`` float32 (its Euler step needs the input scaled by
  1/(dt/tau), which rounds differently: its disagreements are counted);
* a plain torch step loop (in place), float32, float64, and float32 under torch.compile;
* a dense numpy step loop, float64, in place.

``--memory`` measures instead each method's peak resident memory at the largest batch,
one fresh process per method (what a user's process would hold, torch's ~240 MB of
libraries included). Networks: the digits MLP 64-128-10 and digits CNN of
``bench_simulators.py`` and an N-MNIST-sized CNN (2x34x34 -> conv 8 -> pool -> conv 16 ->
fc 10). Timings are never asserted in tests; this script is where speed is measured.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_simulators import cnn, mlp  # noqa: E402

from spikedeploy.hw_sim.reference import choose_engine, simulate  # noqa: E402
from spikedeploy.ir import fixed_point as fxp  # noqa: E402
from spikedeploy.ir.lowering import lower  # noqa: E402
from spikedeploy.ir.ops import ConvOp, DenseOp, InputOp, NeuronOp, OutputOp, ReshapeOp  # noqa: E402

BETA = 0.9


def nmnist_cnn(rng):
    """The digits CNN's layers on 2x34x34 inputs (N-MNIST's size)."""
    return cnn(rng, channels=2, size=34, conv_gain=2.0, fc_gain=4.0)


NETS = {"mlp": ("digits MLP 64-128-10", mlp), "cnn": ("digits CNN 1x8x8", cnn),
        "nmnist": ("N-MNIST CNN 2x34x34", nmnist_cnn)}


# --- the peers: one torch layer list built from the program's chain of ops ----------

def torch_layers(program, dtype):
    """(kind, callable-or-shape) per op of a feed-forward chain, in torch ``dtype``."""
    import torch
    import torch.nn.functional as F
    layers = []
    for op in program.ops.values():
        if isinstance(op, DenseOp):
            w = torch.tensor(op.weight, dtype=dtype)
            layers.append(("syn", lambda x, w=w: x @ w.T))
        elif isinstance(op, ConvOp):
            w = torch.tensor(op.weight, dtype=dtype)
            pad, shape, groups = op.padding[0][0], tuple(op.in_shape), op.groups
            stride = tuple(op.stride)
            layers.append(("syn", lambda x, w=w, pad=pad, shape=shape, groups=groups, stride=stride:
                           F.conv2d(x.reshape((-1,) + shape), w, padding=pad, groups=groups,
                                    stride=stride).flatten(1)))
        elif isinstance(op, NeuronOp):
            layers.append(("lif", op.size))
        elif not isinstance(op, (InputOp, OutputOp, ReshapeOp)):
            raise SystemExit(f"bench_peers: no peer form of {type(op).__name__}")
    return layers


def run_torch_loop(program, x, dtype_name, compiled=False):
    import torch
    dtype = getattr(torch, dtype_name)
    layers = torch_layers(program, dtype)
    xt = torch.tensor(x.reshape(x.shape[0], x.shape[1], -1), dtype=dtype)
    n = x.shape[1]
    beta = torch.tensor(BETA, dtype=dtype)

    def step(s, vs):
        i = 0
        for kind, f in layers:
            if kind == "syn":
                s = f(s)
            else:
                v = vs[i]
                v.mul_(beta).add_(s)
                z = v > 1.0
                v.masked_fill_(z, 0.0)
                s = z.to(dtype)
                i += 1
        return s

    fn = torch.compile(step) if compiled else step
    vs = [torch.zeros(n, size, dtype=dtype) for kind, size in layers if kind == "lif"]
    outs = []
    with torch.no_grad():
        if compiled:       # compile outside the timed run
            fn(xt[0], [torch.zeros_like(v) for v in vs])
        t0 = time.perf_counter()
        for t in range(x.shape[0]):
            outs.append(fn(xt[t], vs))
        seconds = time.perf_counter() - t0
    return seconds, torch.stack(outs).numpy()


def _run_torch_steps(layers, x, dtype, states, neuron):
    """Step by step under no_grad: synapses from ``layers``, each neuron layer i as
    ``neuron(i, input, states) -> spikes`` (the peer's own step); (seconds, spikes)."""
    import torch
    xt = torch.tensor(x.reshape(x.shape[0], x.shape[1], -1), dtype=dtype)
    outs = []
    with torch.no_grad():
        t0 = time.perf_counter()
        for t in range(x.shape[0]):
            s, i = xt[t], 0
            for kind, f in layers:
                if kind == "syn":
                    s = f(s)
                else:
                    s = neuron(i, s, states)
                    i += 1
            outs.append(s)
        seconds = time.perf_counter() - t0
    return seconds, torch.stack(outs).numpy()


def run_snntorch(program, x, dtype_name):
    import snntorch as snn
    import torch
    dtype = getattr(torch, dtype_name)
    layers = torch_layers(program, dtype)
    neurons = [snn.Leaky(beta=torch.tensor(BETA, dtype=dtype), threshold=1.0,
                         reset_mechanism="zero", reset_delay=False).to(dtype)
               for kind, _ in layers if kind == "lif"]
    mems = [torch.zeros(x.shape[1], size, dtype=dtype) for kind, size in layers if kind == "lif"]

    def leaky(i, s, mems):
        spk, mems[i] = neurons[i](s, mems[i])
        return spk.to(dtype)      # snnTorch's spikes are float32 whatever the layer's dtype
    return _run_torch_steps(layers, x, dtype, mems, leaky)


def run_norse(program, x, dtype_name="float32"):
    import torch
    from norse.torch import LIFBoxParameters
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step
    dtype = getattr(torch, dtype_name)
    layers = torch_layers(program, dtype)
    dt = 1e-3
    p = LIFBoxParameters(tau_mem_inv=torch.tensor((1 - BETA) / dt, dtype=dtype),
                         v_th=torch.tensor(1.0, dtype=dtype),
                         v_reset=torch.tensor(0.0, dtype=dtype),
                         v_leak=torch.tensor(0.0, dtype=dtype))
    gain = 1 / (1 - BETA)       # v + dt/tau (g a - v) = beta v + a
    states = [LIFBoxFeedForwardState(v=torch.zeros(x.shape[1], size, dtype=dtype))
              for kind, size in layers if kind == "lif"]

    def lif_box(i, s, states):
        spk, states[i] = lif_box_feed_forward_step(s * gain, states[i], p, dt)
        return spk
    return _run_torch_steps(layers, x, dtype, states, lif_box)


def run_numpy_dense(program, x):
    """Each synapse as its dense equivalent matrix, neurons in place: plain numpy."""
    mats = []
    for op in program.ops.values():
        if op.synaptic:
            m = op.matrix()
            mats.append(("syn", np.ascontiguousarray((m.toarray() if hasattr(m, "toarray")
                                                      else m).T)))
        elif isinstance(op, NeuronOp):
            mats.append(("lif", op.size))
    n = x.shape[1]
    vs = [np.zeros((n, size)) for kind, size in mats if kind == "lif"]
    zs = [np.zeros((n, size), bool) for kind, size in mats if kind == "lif"]
    xs = x.reshape(x.shape[0], n, -1)
    outs = []
    t0 = time.perf_counter()
    for t in range(x.shape[0]):
        s, i = xs[t], 0
        for kind, m in mats:
            if kind == "syn":
                s = s @ m
            else:
                v = vs[i]
                v *= BETA
                v += s
                np.greater(v, 1.0, out=zs[i])
                v[zs[i]] = 0.0
                s = zs[i].astype(np.float64)
                i += 1
        outs.append(s)
    return time.perf_counter() - t0, np.stack(outs)


def run_ours(program, x, engine, dtype="float64", precision="float", device="cpu"):
    fixed = fxp.quantise(program) if precision == "fixed" else None
    t0 = time.perf_counter()
    result = simulate(program, x, precision, fixed, record="outputs", engine=engine, dtype=dtype,
                      device=device)
    return time.perf_counter() - t0, result.output().reshape(x.shape[0], x.shape[1], -1)


def methods(device: str | None):
    m = {
        "ours numpy float64": lambda p, x: run_ours(p, x, "numpy"),
        "ours torch float64": lambda p, x: run_ours(p, x, "torch"),
        "ours numpy float32": lambda p, x: run_ours(p, x, "numpy", "float32"),
        "ours torch float32": lambda p, x: run_ours(p, x, "torch", "float32"),
        "ours numpy fixed": lambda p, x: run_ours(p, x, "numpy", precision="fixed"),
        "ours torch fixed": lambda p, x: run_ours(p, x, "torch", precision="fixed"),
        "snnTorch float32": lambda p, x: run_snntorch(p, x, "float32"),
        "snnTorch float64": lambda p, x: run_snntorch(p, x, "float64"),
        "Norse float32": run_norse,
        "torch loop float32": lambda p, x: run_torch_loop(p, x, "float32"),
        "torch loop float64": lambda p, x: run_torch_loop(p, x, "float64"),
        "torch loop float32 compiled": lambda p, x: run_torch_loop(p, x, "float32", True),
        "numpy dense loop float64": run_numpy_dense,
    }
    if device:
        m[f"ours torch float64 {device}"] = lambda p, x: run_ours(p, x, "torch", device=device)
        m[f"ours torch float32 {device}"] = lambda p, x: run_ours(p, x, "torch", "float32",
                                                                  device=device)
    return m


def make_input(program, steps, batch, seed=1):
    shape = tuple(program.ops[program.inputs[0]].shape)
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch) + shape) < 0.3).astype(np.float64)


def bench(net: str, batch: int, steps: int, rounds: int, device: str | None):
    name, build = NETS[net]
    program = lower(build(np.random.default_rng(0)))
    x = make_input(program, steps, batch)
    table = methods(device)
    for f in table.values():          # warm every path (imports, compilation) untimed
        f(program, x[:1, :batch])
    times = {label: [] for label in table}
    spikes = {}
    for r in range(rounds):
        order = list(table) if r % 2 == 0 else list(reversed(table))
        for label in order:
            seconds, out = table[label](program, x)
            times[label].append(seconds / (steps * batch))
            spikes[label] = out
    truth = spikes["ours numpy float64"]      # fixed point: against our numpy fixed run
    fixed_truth = spikes["ours numpy fixed"]
    ours = float(np.median(times["ours numpy float64"]))
    print(f"\n{name}: batch {batch}, {steps} steps, median of {rounds}")
    print(f"{'method':<34} {'us/sample-step':>15} {'vs ours f64':>12} {'spikes differing':>17}")
    for label in table:
        med = float(np.median(times[label]))
        want = fixed_truth if label.endswith("fixed") else truth
        differ = int(np.count_nonzero(np.asarray(spikes[label], np.float64) != want))
        print(f"{label:<34} {med * 1e6:>15.3f} {med / ours:>11.2f}x {differ:>17}")
    picks = {dtype: choose_engine("auto", program, steps * batch, dtype)
             for dtype in ("float64", "float32")}
    print(f"(--engine auto picks {picks['float64']} in float64, {picks['float32']} in float32)")
    return {label: float(np.median(t)) for label, t in times.items()}


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM: unlike ru_maxrss it starts afresh
    at exec, not at the parent's size when it forked)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory(net: str, batch: int, steps: int, label: str) -> float:
    """Peak resident MB of one method in a fresh process."""
    code = (f"import sys; sys.argv=['x']; sys.path.insert(0, {str(Path(__file__).parent)!r});"
            "import bench_peers as b, numpy as np;"
            f"p = b.lower(b.NETS[{net!r}][1](np.random.default_rng(0)));"
            f"x = b.make_input(p, {steps}, {batch});"
            f"b.methods(None)[{label!r}](p, x);"
            f"print(b.peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cli_peak_memory(net: str, batch: int, steps: int) -> float | str:
    """Peak resident MB of ``spikedeploy simulate`` (default options: auto engine, layers
    recorded) on the network written to a NIR file, with a (T, N, ...) .npy input; the
    command's error line where it refuses the run."""
    import tempfile

    from spikedeploy.export import write_nir
    with tempfile.TemporaryDirectory() as tmp:
        graph = NETS[net][1](np.random.default_rng(0))
        write_nir(graph, Path(tmp) / "net.nir")
        np.save(Path(tmp) / "x.npy", make_input(lower(graph), steps, batch))
        code = ("import resource, sys; from spikedeploy.deploy.cli import main;"
                f"code = main(['simulate', {str(Path(tmp) / 'net.nir')!r}, '--input', "
                f"{str(Path(tmp) / 'x.npy')!r}, '-q']);"
                f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_peers;"
                "print(bench_peers.peak_rss_mb()); sys.exit(code)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:         # e.g. refused before the run: more than memory allows
        return (out.stderr.strip().splitlines() or ["no output"])[-1]
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batches", default="1,16,256,1024")
    p.add_argument("--nets", default="mlp,cnn,nmnist")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--memory", action="store_true", help="peak memory at the largest batch")
    p.add_argument("--device", default=None, help="also run our torch engine on this device "
                   "(default: cuda where torch finds one)")
    args = p.parse_args(argv)
    if args.device is None:
        import torch
        args.device = "cuda" if torch.cuda.is_available() else None
    batches = [int(b) for b in args.batches.split(",")]
    nets = args.nets.split(",")
    if args.memory:
        for net in nets:
            print(f"\n{NETS[net][0]}: peak resident memory, batch {max(batches)}, "
                  f"{args.steps} steps (fresh process each)")
            mb = cli_peak_memory(net, max(batches), args.steps)
            print(f"{'spikedeploy simulate (CLI defaults)':<34} "
                  + (f"{mb:>9.0f} MB" if isinstance(mb, float) else mb))
            for label in methods(None):
                mb = peak_memory(net, max(batches), args.steps, label)
                print(f"{label:<34} {mb:>9.0f} MB")
        return 0
    results = {}
    for net in nets:
        for batch in batches:
            results[f"{net}/{batch}"] = bench(net, batch, args.steps, args.rounds, args.device)
    print("\nJSON " + json.dumps(results))
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
