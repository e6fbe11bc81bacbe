"""OpTable: one backend behaviour per op class -- the single lookup style of every backend.

Each backend keeps what it does with each op type in one OpTable (the
reference simulator's runners per precision, the Lava builders, the
fixed-point quantisation rules, the energy model's fan-out). Lookup is by
the *exact* class of the op, as hls4ml keys its backend templates by layer
class: a new op class, even a subclass of an existing one, has no behaviour
anywhere until it is registered, so it can never run with an inherited rule
that computes something else. A backend that cannot run an op type says so
with :meth:`OpTable.refuse` and a reason, which ``spikedeploy check``
reports; ``tests/test_architecture.py`` fails when a table lacks an op type.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from ..errors import UnsupportedError

T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """A backend's reasoned refusal of an op type (reported by ``check``)."""
    reason: str


class OpTable(dict, Generic[T]):
    """``{op class: entry}`` for one backend behaviour, named for its error messages."""

    def __init__(self, what: str, backend: str = "", entries: dict | None = None):
        super().__init__(entries or {})
        self.what = what          # e.g. "float reference runner"
        self.backend = backend    # e.g. "reference-float", for UnsupportedError.backend

    def register(self, *op_types: type) -> Callable[[T], T]:
        """Decorator: the decorated function or class is the entry for these op types."""
        def add(entry: T) -> T:
            for op_type in op_types:
                self[op_type] = entry
            return entry
        return add

    def refuse(self, op_type: type, reason: str) -> None:
        self[op_type] = Refusal(reason)

    def problem(self, op) -> str | None:
        """Why this backend cannot handle ``op`` (None if it can)."""
        entry = self.get(type(op))
        if entry is None:
            return f"{op.nir_type or type(op).__name__} has no {self.what}"
        if isinstance(entry, Refusal):
            return entry.reason
        return None

    def lookup(self, op) -> T:
        """The entry for ``op``'s exact class; UnsupportedError naming the node otherwise."""
        why = self.problem(op)
        if why is not None:
            raise UnsupportedError(op.name, "type", why, backend=self.backend)
        return self[type(op)]
