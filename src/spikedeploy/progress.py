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


def track(iterable, desc: str, total: int | None = None, unit: str = "it"):
    """``iterable`` with a progress bar while it is consumed."""
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    with bar(total, desc, unit) as b:
        for item in iterable:
            yield item
            b.update(1)
