"""The memory a command may use: checked before allocating, never after the fact.

The limit is half of the machine's physical memory unless the user sets one
(``--max-memory 4G`` on the commands that take a graph, or the
``SPIKEDEPLOY_MAX_MEMORY`` environment variable). Sizes that a file or an
option only *declares* -- a NIR dataset, an Input's shape, the run's
neurons x samples x steps -- are compared with it before anything that big
is read or allocated, and refused in one line naming the size.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager

from .errors import SpikedeployError

ENV_VAR = "SPIKEDEPLOY_MAX_MEMORY"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_override: int | None = None


def parse_size(text: str) -> int:
    """'512M', '4G', '1.5G' or a number of bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise SpikedeployError(f"memory size {text!r}: use a number of bytes or e.g. 512M, 4G")
    size = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if size <= 0:
        raise SpikedeployError(f"memory size {text!r} must be positive")
    return size


def set_limit(text: str | None) -> None:
    """The user's limit for this process (``--max-memory``); None: back to the default."""
    global _override
    _override = None if text is None else parse_size(text)


def memory_limit() -> int:
    if _override is not None:
        return _override
    if os.environ.get(ENV_VAR):
        return parse_size(os.environ[ENV_VAR])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError):        # pragma: no cover - not Linux
        return 8 << 30


def describe(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"    # pragma: no cover


def check_memory(what: str, nbytes: float) -> None:
    """Refuse ``what`` when it needs more than the limit."""
    limit = memory_limit()
    if nbytes > limit:
        raise SpikedeployError(f"{what} needs about {describe(nbytes)}, more than the memory "
                               f"limit of {describe(limit)} (--max-memory or {ENV_VAR} to change "
                               "it)")


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def bounded_allocation(what: str, limit: int | None = None):
    """Run a block whose allocations cannot be sized beforehand (building a
    user's model from its config, training) with the process's address space
    capped at its current size plus the limit: an allocation past it fails
    at once -- instead of the OOM killer ending the process -- and becomes one
    line naming ``what``. ``limit``: a tighter bound than the memory limit for
    this block. The previous cap is restored afterwards."""
    limit = memory_limit() if limit is None else min(limit, memory_limit())
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = _address_space() + limit
    except (ImportError, OSError, ValueError):      # pragma: no cover - not Linux
        yield
        return
    for bound in (soft, hard):
        if bound != resource.RLIM_INFINITY:
            cap = min(cap, bound)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    except MemoryError:
        raise SpikedeployError(f"{what} needs more than {describe(limit)}") from None
    except RuntimeError as exc:          # torch's allocator: "... can't allocate memory ..."
        if "allocate" not in str(exc):
            raise
        raise SpikedeployError(f"{what} needs more than {describe(limit)}") from None
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
