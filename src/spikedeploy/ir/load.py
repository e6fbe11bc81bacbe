"""Reading NIR files: every failure becomes a one-line SpikedeployError."""
from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np

from ..errors import SpikedeployError, first_line
from ..metadata import DEFAULT_DT, DT, metadata_value


def read_nir(path) -> nir.NIRGraph:
    """Read a NIR file, falling back to untyped reading for NIR 0.x files."""
    path = Path(path)
    if not path.is_file():
        raise SpikedeployError(f"{path}: no such file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise SpikedeployError(f"{path}: cannot open: {exc.strerror or exc}")
    if not is_hdf5:
        raise SpikedeployError(f"{path}: not a NIR file (not HDF5)")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                hint = ("; it looks like a lava-dl netx file: spikedeploy runs the NIR graph it "
                        "was written from (simulate --backend netx writes and runs the same file)"
                        if "layer" in f else "")
                raise SpikedeployError(f"{path}: not a NIR file (HDF5 without a 'node' "
                                       f"group){hint}")
    except OSError as exc:
        raise SpikedeployError(f"{path}: corrupt or truncated HDF5 file ({exc})")
    errors = (OSError, KeyError, ValueError, TypeError, AssertionError, IndexError)
    try:
        graph = nir.read(path)
    except errors as first:
        try:  # files from NIR 0.x may not pass NIR 1.0's type check
            graph = nir.read(path, type_check=False)
        except errors:
            raise SpikedeployError(f"{path}: unreadable NIR graph: {_describe(first)}")
    if not isinstance(graph, nir.NIRGraph):
        raise SpikedeployError(f"{path}: NIR file holds a {type(graph).__name__}, not a graph")
    return graph


def _describe(exc: Exception) -> str:
    text = first_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def graph_dt(metadata: dict, dt: float | None = None) -> float:
    """The time step: the user's ``dt`` if given, else the exporter's metadata."""
    if dt is None:
        dt = metadata_value(metadata, DT)
    if dt is None:
        raise SpikedeployError(
            "the graph records no time step: pass --dt (snnTorch and the NIR paper "
            f"use {DEFAULT_DT})")
    dt = float(dt)
    if not np.isfinite(dt) or dt <= 0:
        raise SpikedeployError(f"time step dt must be positive, got {dt}")
    return dt
