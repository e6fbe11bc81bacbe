"""Speed of the reference simulator vs Lava's CPU simulator (our processes, and the Loihi 2
target's stock processes and netx file) vs a bare matmul floor.

Usage: python benchmarks/bench_simulators.py [--steps 100] [--batch 256] [--lava-samples 8]
       [--nir model.nir]

Networks: the digits MLP 64-128-10 (random weights unless --nir is given)
and, when the compiler supports it, a small digits CNN. Prints, per network,
the time per sample-step of each backend and the ratios. Timings are never
asserted in tests; this script is where speed is measured.
"""
from __future__ import annotations

import argparse
import sys
import time

import nir
import numpy as np

from spikedeploy.hw_sim.lava_runner import simulate_lava
from spikedeploy.hw_sim.loihi2.run import simulate_loihi2
from spikedeploy.hw_sim.loihi2.target import loihi2_problems
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir import fixed_point as fxp
from spikedeploy.ir.load import read_nir
from spikedeploy.ir.lowering import lower

DT = 1e-4


def mlp(rng, sizes=(64, 128, 10)):
    nodes = {"input": nir.Input(input_type=np.array([sizes[0]]))}
    edges, prev = [], "input"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        tau = np.full(b, DT / 0.1)
        nodes[f"fc{i}"] = nir.Affine(weight=rng.normal(0, 2 / np.sqrt(a), (b, a)), bias=np.zeros(b))
        nodes[f"lif{i}"] = nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(b), v_threshold=np.ones(b),
                                   v_reset=np.zeros(b))
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type=np.array([sizes[-1]]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikedeploy.dt": DT})


def lif(shape, beta=0.9):
    tau = np.full(shape, DT / (1 - beta))
    return nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(shape), v_threshold=np.ones(shape),
                   v_reset=np.zeros(shape))


def cnn(rng, channels: int = 1, size: int = 8, conv_gain: float = 1.5, fc_gain: float = 2.0):
    """Conv(channels->8,3,p1) -> LIF -> SumPool(2) -> Conv(8->16,3,p1) -> LIF -> Flatten ->
    Affine -> LIF on channels x size x size inputs (default: the digits CNN, 1x8x8)."""
    conv = lambda cin, cout, hw: nir.Conv2d(
        input_shape=(hw, hw), weight=rng.normal(0, conv_gain / np.sqrt(9 * cin), (cout, cin, 3, 3)),
        stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(cout))
    half = size // 2
    flat = 16 * half * half
    nodes = {
        "input": nir.Input(input_type=np.array([channels, size, size])),
        "conv1": conv(channels, 8, size), "lif1": lif((8, size, size)),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0])),
        "conv2": conv(8, 16, half), "lif2": lif((16, half, half)),
        "flat": nir.Flatten(input_type={"input": np.array([16, half, half])}, start_dim=0,
                            end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, fc_gain / np.sqrt(flat), (10, flat)),
                         bias=np.zeros(10)),
        "lif3": lif((10,)), "output": nir.Output(output_type=np.array([10])),
    }
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])),
                        metadata={"spikedeploy.dt": DT})


def bare_matmul_floor(program, x):
    """The same maths as plain numpy with no framework: the speed floor."""
    linear = [op for op in program.ops.values() if op.synaptic]
    weights = [op.matrix().T.tocsr() if hasattr(op.matrix(), "tocsr") else
               np.ascontiguousarray(op.matrix().T) for op in linear]
    n = x.shape[1]
    vs = [np.zeros((n, w.shape[1])) for w in weights]
    started = time.perf_counter()
    for t in range(x.shape[0]):
        s = x[t].reshape(n, -1)
        for i, w in enumerate(weights):
            a = np.asarray(s @ w) if not hasattr(w, "tocsr") else np.asarray((w.T @ s.T).T)
            if linear[i].name.startswith("pool"):    # pooling feeds the next synapse directly
                s = a
                continue
            vs[i] = vs[i] * 0.9 + a
            s = vs[i] > 1.0
            vs[i][s] = 0.0
            s = s.astype(np.float64)
    return time.perf_counter() - started


def lava_startup_and_step(graph, x, lava_samples):
    """Lava float's fixed cost per run (worker start, compilation, read-back of nothing) and
    its cost per sample-step, from two runs that differ only in their number of samples."""
    small = max(1, lava_samples // 2)
    seconds = {}
    for n in (small, lava_samples):
        seconds[n] = simulate_lava(graph, x[:, :n], "float", record="outputs").info["seconds"]
    steps = x.shape[0]
    per_step = (seconds[lava_samples] - seconds[small]) / max(1, steps * (lava_samples - small))
    return seconds[small] - per_step * steps * small, per_step


def op_count(graph) -> int:
    """Ops in the lowered program (about one Lava process each)."""
    return len(lower(graph).ops)


def bench(name, graph, steps, batch, lava_samples, rng):
    program = lower(graph)
    shape = program.ops[program.inputs[0]].shape
    x = (rng.random((steps, batch) + tuple(shape)) < 0.3).astype(np.float64)
    rows = []
    t0 = time.perf_counter()
    simulate(program, x, "float", record="outputs")
    rows.append(("reference float (batched)", (time.perf_counter() - t0) / (steps * batch)))
    fixed = fxp.quantise(program)
    t0 = time.perf_counter()
    simulate(program, x, "fixed", fixed, record="outputs")
    rows.append(("reference fixed (batched)", (time.perf_counter() - t0) / (steps * batch)))
    rows.append(("bare numpy matmul loop (floor)", bare_matmul_floor(program, x) / (steps * batch)))
    xl = x[:, :lava_samples]
    for precision in ("float", "fixed"):
        res = simulate_lava(graph, xl, precision, record="outputs")
        rows.append((f"Lava {precision} (sample by sample, incl. start-up)",
                     res.info["seconds"] / (steps * lava_samples)))
    compiled, refused = loihi2_problems(program)
    for backend in ("loihi2", "netx") if compiled is not None else ():
        res = simulate_loihi2(program, xl, backend=backend, record="outputs", compiled=compiled)
        label = {"loihi2": "Loihi 2 target: stock processes (fixed_pt)",
                 "netx": "Loihi 2 target: netx file via lava-dl"}[backend]
        rows.append((label, res.info["seconds"] / (steps * lava_samples)))
    if compiled is None:
        print(f"(Loihi 2 target not run: {refused[0]})")
    startup, per_step = lava_startup_and_step(graph, x, lava_samples)
    print(f"\n{name}: {steps} steps, reference batch {batch}, Lava {lava_samples} samples")
    print(f"Lava float, from runs of {max(1, lava_samples // 2)} and {lava_samples} samples: "
          f"start-up {startup:.2f} s, then {per_step * 1e6:.0f} us per sample-step "
          f"({per_step / op_count(graph) * 1e6:.1f} us per op-step)")
    print(f"{'backend':<48} {'us / sample-step':>16}")
    for label, sec in rows:
        print(f"{label:<48} {sec * 1e6:>16.3f}")
    ref, floor, lava = rows[0][1], rows[2][1], rows[3][1]
    print(f"Lava float / reference float: {lava / ref:,.0f}x   "
          f"reference float / matmul floor: {ref / floor:.2f}x")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lava-samples", type=int, default=8)
    p.add_argument("--nir", default=None, help="benchmark this NIR graph instead of the MLP")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    graphs = ({"digits MLP 64-128-10": mlp(rng), "digits CNN (conv-pool-conv-fc)": cnn(rng)}
              if args.nir is None else {args.nir: read_nir(args.nir)})
    for name, graph in graphs.items():
        bench(name, graph, args.steps, args.batch, args.lava_samples, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
