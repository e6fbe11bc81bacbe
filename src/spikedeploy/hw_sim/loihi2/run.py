"""Run a Program on the Loihi 2 target: the stock-process network or its netx file.

Parent side (no Lava import): the Program is compiled for the target here
(:func:`.target.compile_loihi2`), the job runs in the killable Lava worker
(:func:`..lava_runner.run_lava_job`), and the result carries the target's
Program and quantisation, so it compares bit for bit with
:func:`reference_loihi2` -- the fixed reference simulator on the same
integers. Results show the target's program before decay grouping
(``Loihi2Program.view``: the graph's population names, records reassembled);
their ``fixed`` is the quantisation of the grouped program that ran (its
per-layer errors name the groups).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ...errors import SpikedeployError
from ...ir.ops import Program
from ..lava_runner import run_lava_job
from ..reference import as_input_dict, simulate
from ..result import SimResult, kept_ops
from .netx_file import netx_problems, write_netx
from .target import BACKENDS, Loihi2Program, compile_loihi2


def simulate_loihi2(program: Program, inputs, input_scale: float = 1.0, backend: str = "loihi2",
                    record: str = "all", timeout: float | None = None,
                    compiled: Loihi2Program | None = None) -> SimResult:
    """Run ``inputs`` (T, N, *shape) through the stock processes ('loihi2') or through the
    netx file spikedeploy writes for the program, loaded by lava-dl ('netx')."""
    if backend not in BACKENDS:
        raise SpikedeployError(f"unknown Loihi 2 backend {backend!r} ({'|'.join(BACKENDS)})")
    l2 = compiled or compile_loihi2(program, input_scale)
    target = l2.program
    data = as_input_dict(target, inputs)
    wanted = [name for name in kept_ops(target, record) if not target.ops[name].synaptic]
    files, options = None, None
    if backend == "netx":
        problems = netx_problems(l2)
        if problems:
            raise problems[0]
        with tempfile.TemporaryDirectory(prefix="spikedeploy-netx-") as tmp:
            path = write_netx(l2, Path(tmp) / "model.net")
            files, options = {"model.net": path.read_bytes()}, {"netx_file": "model.net"}
    records, latency, elapsed = run_lava_job(backend, target, l2.fixed, data, "fixed", wanted,
                                             timeout, files, options)
    return SimResult(l2.view, l2.merge(records), backend=backend, precision="fixed",
                     latency=latency, fixed=l2.fixed, info={"seconds": elapsed, "notes": l2.notes})


def reference_loihi2(program: Program, inputs, input_scale: float = 1.0, record: str = "all",
                     compiled: Loihi2Program | None = None) -> SimResult:
    """The fixed reference simulator on the target's Program and integers."""
    l2 = compiled or compile_loihi2(program, input_scale)
    run = simulate(l2.program, inputs, precision="fixed", fixed=l2.fixed, record=record)
    run.program, run.records = l2.view, l2.merge(run.records)
    return run
