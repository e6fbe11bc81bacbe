"""Comparing backends' runs of one graph: per-layer spike agreement.

Used by ``spikedeploy verify``. Results of every backend are aligned to the
input's time steps, so step t of sample n is compared across backends.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .result import SimResult


@dataclass
class LayerAgreement:
    layer: str
    identical: int              # (step, sample, neuron) entries equal in both runs
    total: int
    first_divergence: tuple | None = None   # (time step, sample, neuron) or None

    @property
    def fraction(self) -> float:
        return self.identical / self.total if self.total else 1.0

    @property
    def agrees(self) -> bool:
        return self.identical == self.total


@dataclass
class Comparison:
    reference: str              # backend name of the baseline
    other: str
    precision: str
    layers: list[LayerAgreement] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return all(layer.agrees for layer in self.layers)

    @property
    def disagreement(self) -> float:
        total = sum(layer.total for layer in self.layers)
        same = sum(layer.identical for layer in self.layers)
        return 1.0 - same / total if total else 0.0

    def first_divergent_layer(self) -> LayerAgreement | None:
        """The earliest layer in execution order that differs."""
        return next((layer for layer in self.layers if not layer.agrees), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["agrees"] = self.agrees
        d["disagreement"] = self.disagreement
        return d


def _float_units(result: SimResult, name: str, record: np.ndarray) -> np.ndarray:
    """A fixed-point run's record in float units (its integer units / the op's scale)."""
    scale = result.fixed.scales.get(name, 1.0) if result.fixed is not None else 1.0
    return record if scale == 1.0 else record / scale


def compare_records(a: SimResult, b: SimResult, layers: list[str] | None = None) -> Comparison:
    """Element-wise agreement of the layers both runs recorded (execution order).

    Runs of different precision are compared in float units (a graded spike's
    integer payload divided by its scale), so spikes compare as spikes; voltages
    and currents then differ by their quantisation."""
    order = [name for name in a.program.ops if name in a.records and name in b.records]
    if layers is not None:
        order = [name for name in order if name in layers]
    comp = Comparison(a.backend, b.backend, a.precision)
    mixed = a.precision != b.precision
    for name in order:
        x, y = a.records[name], b.records[name]
        if mixed:
            x, y = _float_units(a, name, x), _float_units(b, name, y)
        if x.shape != y.shape:
            raise ValueError(f"layer '{name}': shapes differ {x.shape} vs {y.shape}")
        same = x == y
        first = None
        if not same.all():
            t, n, i = np.argwhere(~same)[0]   # C order: earliest step first
            first = (int(t), int(n), int(i))
        comp.layers.append(LayerAgreement(name, int(same.sum()), int(same.size), first))
    return comp
