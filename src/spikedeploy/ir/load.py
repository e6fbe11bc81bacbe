"""Reading NIR files: every failure becomes a one-line SpikedeployError."""
from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np

from ..errors import SpikedeployError, first_line
from ..limits import check_memory
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
            _check_declared_sizes(path, f)
            _check_node_types(path, f)
    except OSError as exc:
        raise SpikedeployError(f"{path}: corrupt or truncated HDF5 file ({exc})")
    errors = (OSError, KeyError, ValueError, TypeError, AssertionError, IndexError,
              AttributeError)
    try:
        graph = nir.read(path)
    except errors as first:
        try:  # files from NIR 0.x may not pass NIR 1.0's type check
            graph = nir.read(path, type_check=False)
        except errors:
            raise SpikedeployError(f"{path}: {_failing_node(path) or ''}unreadable NIR "
                                   f"graph: {_describe(first)}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise SpikedeployError(f"{path}: NIR file holds a {type(graph).__name__}, not a graph")
    return graph


# A population is lowered into about this many float64 arrays of its size (parameters,
# state, records), so a declared shape costs this many bytes per element.
BYTES_PER_DECLARED_ELEMENT = 16 * 8
SHAPE_KEYS = ("shape", "input_shape", "input_type", "output_type")   # how NIR stores shapes


def _check_declared_sizes(path: Path, f: h5py.File) -> None:
    """Refuse, before reading them, datasets and declared shapes beyond the memory limit."""
    stored = [0]
    shapes: list[tuple[str, int]] = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        stored[0] += int(obj.size) * obj.dtype.itemsize
        parts = name.split("/")
        if any(key in parts[:-1] or parts[-1] == key for key in SHAPE_KEYS) and obj.size <= 8 \
                and np.issubdtype(obj.dtype, np.number):
            values = np.asarray(obj[()], np.float64).reshape(-1)
            if values.size and np.all(np.isfinite(values)):
                shapes.append((name, float(np.prod(np.abs(values)))))

    f.visititems(visit)
    check_memory(f"{path}: reading its datasets", stored[0])
    for name, elements in shapes:
        parts = name.split("/")
        node = parts[parts.index("nodes") + 1] if "nodes" in parts[:-1] else name
        check_memory(f"{path}: node '{node}' (a declared shape of {elements:.3g} values)",
                     elements * BYTES_PER_DECLARED_ELEMENT)


def _known_types() -> set[str]:
    def names(cls):
        return {s.__name__ for s in cls.__subclasses__()}.union(*[names(s) for s in
                                                                   cls.__subclasses__()])
    return names(nir.NIRNode)


def _check_node_types(path: Path, f: h5py.File) -> None:
    """Name a node whose type NIR does not know (NIR's reader only fails an assertion)."""
    known = _known_types()

    def visit(group, prefix=""):
        for name, item in group.items():
            if not isinstance(item, h5py.Group):
                raise SpikedeployError(f"{path}: node '{prefix}{name}' is stored as a dataset, "
                                       "not as a NIR node group")
            if "type" not in item:
                raise SpikedeployError(f"{path}: node '{prefix}{name}' has no type")
            kind = item["type"][()]
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            if kind not in known:
                raise SpikedeployError(f"{path}: node '{prefix}{name}' has the unknown NIR type "
                                       f"{kind!r} (known: {', '.join(sorted(known))})")
            if kind == "NIRGraph" and "nodes" in item:
                visit(item["nodes"], f"{prefix}{name}.")
                continue
            for key, field in item.items():   # a primitive's fields are numbers (padding may
                #                                  also be 'same' or 'valid')
                if (key not in ("type", "padding") and isinstance(field, h5py.Dataset)
                        and field.dtype.kind in "SOU"):
                    raise SpikedeployError(f"{path}: node '{prefix}{name}', field '{key}': must "
                                           "be numbers, got text")

    if isinstance(f["node"].get("nodes"), h5py.Group):
        visit(f["node"]["nodes"])


def _failing_node(path: Path) -> str | None:
    """'node NAME (TYPE): ' for the first node NIR cannot build, with its fields' shapes
    where they disagree (NIR only asserts that they must agree)."""
    from nir.serialization import hdf2dict
    try:
        with h5py.File(path, "r") as f:
            nodes = hdf2dict(f["node"]).get("nodes", {})
    except Exception:       # noqa: BLE001 - only a better message is at stake
        return None

    def visit(nodes: dict, prefix: str):
        for name, item in nodes.items():
            if not isinstance(item, dict):
                continue
            if item.get("type") == "NIRGraph":
                found = visit(item.get("nodes", {}), f"{prefix}{name}.")
                if found:
                    return found
                continue
            try:
                nir.dict2NIRNode(dict(item))
            except Exception:      # noqa: BLE001
                shapes = {k: np.shape(v) for k, v in item.items()
                          if isinstance(v, np.ndarray) and v.dtype.kind in "fiu"
                          and k not in SHAPE_KEYS and k != "metadata"}
                fields = ", ".join(f"{k} {s}" for k, s in shapes.items())
                return f"node '{prefix}{name}' ({item.get('type')}" + \
                    (f"; fields {fields}" if len(set(shapes.values())) > 1 else "") + "): "
        return None

    return visit(nodes, "")


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
            f"use {DEFAULT_DT}) or --convention with the tool that wrote it")
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)):
        raise SpikedeployError(f"time step dt must be a positive number of seconds, got {dt!r}")
    dt = float(dt)
    if not np.isfinite(dt) or dt <= 0:
        raise SpikedeployError(f"time step dt must be positive, got {dt}")
    return dt
