"""Writing output files atomically: a failed write never leaves a partial file.

Every writer ends here. Contents are produced in memory first where a
library writes them (h5py for NIR and netx files, numpy's zip for .npz), so
that a full disk or a file-size limit surfaces as one ``OSError`` from a
plain write -- never inside h5py (which crashed the process on a full disk)
or zipfile -- and becomes one :class:`SpikedeployError` naming the file.
Several files that belong together (:func:`write_files`) appear all at once
or not at all.
"""
from __future__ import annotations

import glob
import io
import os
import socket
import tempfile
from pathlib import Path
from typing import Callable

from .errors import SpikedeployError


def write_atomically(path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``.

    The temporary file lives in the same directory so ``os.replace`` is an
    atomic rename on the same file system. If ``write`` fails (or the process
    is interrupted), the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = None
    try:
        check_destination(path)
        tmp = _temporary(path, write)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise SpikedeployError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path


def check_destination(path, folder: bool = False) -> None:
    """One line for a destination that cannot be written: a folder where a file is
    wanted (or the reverse), a path under a file, or a folder we may not write."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        raise SpikedeployError(f"{path}: is a folder; give a file name" if not folder else
                               f"{path}: is a file, not a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SpikedeployError(f"{parent}: is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise SpikedeployError(f"{parent}: not writable")
            return


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _host_prefix(path: Path) -> str:
    return f".{path.name}.{socket.gethostname()}."


def _temporary_prefix(path: Path, pid: int) -> str:
    # Host and pid in the name: a later write finds what a killed writer left.
    return f"{_host_prefix(path)}{pid}."


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (someone else's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:        # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` whose writer on this host has died (a
    SIGKILL cannot run cleanup; the next write of the same file does it)."""
    removed = []
    prefix = _host_prefix(path)
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        rest = tmp.name[len(prefix):] if tmp.name.startswith(prefix) else ""
        pid = rest.split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _temporary(path: Path, write: Callable[[Path], None]) -> Path:
    """``write`` into a synced temporary file beside ``path`` (removed if anything fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path, os.getpid()),
                                    suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())     # mkstemp makes 0600; outputs follow the umask
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # the bytes reach the disk before the rename publishes them
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def require_folder(path) -> Path:
    """``path`` as a Path, refused in one line when its folder does not exist (writers of a
    single named file do not create folders the user may have mistyped)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise SpikedeployError(f"{path.parent}: no such directory")
    return path


def write_text(path, text: str) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def write_bytes(path, data: bytes) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_bytes(data))


def write_files(contents: dict) -> list[Path]:
    """Several files as one transaction: all written to temporary files first, then renamed
    into place; if any write fails, none of them appears (and no temporary file stays)."""
    temps: dict[Path, Path] = {}
    current = None
    try:
        for current, data in contents.items():
            current = Path(current)
            check_destination(current)
            payload = data.encode() if isinstance(data, str) else data
            temps[current] = _temporary(current, lambda tmp, b=payload: tmp.write_bytes(b))
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except OSError as exc:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise SpikedeployError(f"{current}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise
    return list(temps)


def in_memory(write: Callable[[io.BytesIO], None]) -> bytes:
    """The bytes a library writes to a file object (h5py, numpy), produced in memory."""
    buf = io.BytesIO()
    write(buf)
    return buf.getvalue()
