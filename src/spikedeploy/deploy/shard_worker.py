"""Child-process entry point that runs one shard: ``python -m ... JOB_DIR WATCH_FD``.

JOB_DIR holds ``task.pkl`` (the task function and its arguments, written by
the parent into a folder only it writes) and ``inputs.npy`` (the shard's
samples); the worker writes ``result.pkl`` (the SimResult) or ``error.txt``
(one line). WATCH_FD: see :func:`spikedeploy.hw_sim.supervised.watch_parent`
-- when the parent ends, however it ends, this shard tears its own process
group down (a Lava run it started watches this process the same way).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import SpikedeployError, first_line   # plain Python, no heavy imports
from ..hw_sim.supervised import exit_code_when_orphaned, start_watching


def main(job_dir: str, watch_fd: str | None = None) -> int:
    job = Path(job_dir)
    start_watching(watch_fd, job)
    try:
        import pickle

        import numpy as np

        from ..fileio import write_atomically
        from .shard_local import run_task
        with open(job / "task.pkl", "rb") as f:
            task, kwargs = pickle.load(f)
        result = run_task(task, np.load(job / "inputs.npy", allow_pickle=False), kwargs)

        def write(tmp):
            with open(tmp, "wb") as f:
                pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        write_atomically(job / "result.pkl", write)
        return 0
    except SpikedeployError as exc:
        (job / "error.txt").write_text(first_line(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        (job / "error.txt").write_text(f"{type(exc).__name__}: {first_line(exc)}")
        return 3


if __name__ == "__main__":
    sys.exit(exit_code_when_orphaned(main(*sys.argv[1:3]),
                                     sys.argv[2] if len(sys.argv) > 2 else None))
