"""Progress of long work (training epochs, simulation steps, Lava windows, sweep points).

tqdm draws the bars on stderr when stderr is a terminal; in pipes, files and
CI it draws nothing (tqdm's own test), and ``--quiet`` turns them off
everywhere. Every stage uses this one module, so the rule is the same for
all of them.
"""
from __future__ import annotations

import sys

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = bool(quiet)


def _disabled():
    # True: off; None: tqdm decides (off unless stderr is a terminal)
    return True if _quiet else None


def bar(total: int | None, desc: str, unit: str = "it"):
    """A progress bar to ``update`` (tqdm's own no-op where none is shown)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                disable=_disabled(), dynamic_ncols=True)


def _shown() -> bool:
    """Whether bars are drawn at all (tqdm's rule): not quiet, and stderr a terminal."""
    if _quiet:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):       # replaced or closed stderr
        return False


def track(iterable, desc: str, total: int | None = None, unit: str = "it"):
    """``iterable`` with a progress bar while it is consumed (the bare iterable where no bar
    is drawn: a hidden tqdm still costs ~0.1 ms per use, which small runs felt)."""
    if not _shown():
        yield from iterable
        return
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    with bar(total, desc, unit) as b:
        for item in iterable:
            yield item
            b.update(1)
