"""Where a report's numbers come from: input file and its SHA-256, versions, command, date."""
from __future__ import annotations

import datetime
import hashlib
import shlex
import sys
from pathlib import Path

import numpy as np

from ..readout import accuracy, predictions
from .versions import library_versions

COMMAND_LINE: list[str] | None = None       # set by the CLI: the arguments it was given
RASTER_INPUTS = 256                          # input values shown in a report's raster


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(path=None, **extra) -> dict:
    """Input file (with its SHA-256) and how it was run; ``extra`` entries are added as given."""
    out = {}
    if path is not None:
        out["input file"] = str(Path(path).resolve())
        out["input SHA-256"] = sha256(path)
    argv = COMMAND_LINE if COMMAND_LINE is not None else sys.argv[1:]
    out["command"] = "spikedeploy " + shlex.join(argv)
    out["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out["versions"] = library_versions()
    out.update(extra)
    return out


def describe_sample(result, batch, readout: str) -> dict:
    """Sample 0 of a run for the report: its label, the run's prediction, its input raster."""
    sample = {"input_raster": np.asarray(batch.x[:, 0]).reshape(batch.x.shape[0], -1)
              [:, :RASTER_INPUTS]}
    if batch.labels is not None:
        sample["label"] = int(batch.labels[0])
    output = result.output()
    if output.ndim >= 3:
        sample["prediction"] = int(predictions(output[:, :1], readout)[0])
    return sample


def run_accuracy(result, batch, readout: str) -> float | None:
    return None if batch.labels is None else accuracy(result.output(), batch.labels, readout)


# Fields two runs of the same work differ in: wall-clock times, when and how they were run.
RUN_SPECIFIC = {"seconds", "date", "command", "provenance"}


def comparable(report):
    """A JSON report without :data:`RUN_SPECIFIC` fields, at any depth: what must be equal
    for two runs of the same work (e.g. serial and sharded)."""
    if isinstance(report, dict):
        return {k: comparable(v) for k, v in report.items() if k not in RUN_SPECIFIC}
    if isinstance(report, list):
        return [comparable(v) for v in report]
    return report
