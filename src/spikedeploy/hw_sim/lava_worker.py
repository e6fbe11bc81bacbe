"""Child-process entry point that runs one Lava job: ``python -m ... JOB_DIR [WATCH_FD]``.

WATCH_FD is the read end of a pipe only the parent can write: when the
parent ends (SIGKILL included), a watcher thread tears this run down
(:func:`spikedeploy.hw_sim.supervised.watch_parent`), so a run never
outlives its caller.

JOB_DIR holds ``program.pkl`` (the Program the parent lowered and, in fixed
point, the FixedProgram it quantised), ``job.json`` (kind: our processes,
Lava's stock processes or a netx file; precision, records wanted),
``inputs.npz`` and, for netx, the network file; the worker
writes ``result.npz`` (or ``error.txt`` with a one-line message). Lava runs
here, never in the parent, so the parent can kill a hung run with its whole
process group.

The pickle is inter-process transport only: the parent writes it into a
private temporary directory it created (mode 0700) just before starting
this worker. User files (NIR graphs, checkpoints, inputs) are never
unpickled.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import first_line   # plain Python: usable even when the imports below fail
from .supervised import exit_code_when_orphaned, start_watching


def main(job_dir: str, watch_fd: str | None = None) -> int:
    job_dir = Path(job_dir)
    start_watching(watch_fd, job_dir)
    try:
        import pickle

        from ..errors import SpikedeployError

        job = json.loads((job_dir / "job.json").read_text())
        with open(job_dir / "program.pkl", "rb") as f:
            program, fixed = pickle.load(f)
        with np.load(job_dir / "inputs.npz") as f:
            data = {name: f[name] for name in f.files}
        records, latency = _run(job, job_dir, program, fixed, data)
        np.savez(job_dir / "result.npz", __latency__=np.array(latency), **records)
        return 0
    except SpikedeployError as exc:
        (job_dir / "error.txt").write_text(str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        msg = first_line(exc)
        (job_dir / "error.txt").write_text(f"Lava run failed: {type(exc).__name__}: {msg}")
        return 3


def _run(job: dict, job_dir: Path, program, fixed, data):
    """The job's kind: our processes, Lava's stock processes, or a netx file."""
    if job["kind"] == "loihi2":
        from .loihi2.stock import run_stock
        return run_stock(program, data, fixed, job["record"])
    if job["kind"] == "netx":
        from .loihi2.netx_run import run_netx
        return run_netx(job_dir / job["netx_file"], program, data, fixed, job["record"])
    from .lava_compiler import run_program
    return run_program(program, data, job["precision"], fixed, job["record"])


if __name__ == "__main__":
    sys.exit(exit_code_when_orphaned(main(*sys.argv[1:3]),
                                     sys.argv[2] if len(sys.argv) > 2 else None))
