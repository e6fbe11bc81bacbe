"""Stable layer names for any torch module: the NIR node names and the keys of snnTorch records.

The exporter names NIR nodes, and :func:`~spikedeploy.models.run.run_snntorch`
keys the spikes it records, with the same names, so a spike train from
snnTorch can be compared with the same node's spikes in any backend.

A module's name is its attribute path in the model, parts joined by "_"
(``self.encoder.fc1`` -> ``encoder_fc1``). A child of an ``nn.Sequential``
added with PyTorch's default index name ("0", "1", ...) is named by kind
and a 1-based count per kind within that Sequential: ``nn.Linear`` -> fc1,
fc2, ...; ``snn.Leaky`` -> lif1, ...; ``snn.Synaptic`` -> cubalif1, ...;
``nn.Flatten`` -> flatten1, ...; ``nn.Conv2d`` -> conv; ``nn.BatchNorm1d/2d``
-> bn; ``nn.AvgPool2d`` -> pool; spikedeploy's own modules declare theirs in
a ``layer_prefix`` class attribute (IF -> if, LIF -> lif, IMPLIF -> imp,
Readout -> readout, TSM -> tsm, PreSpikeResidual -> block, SpikingUGO ->
ugo); any other type -> its lower-cased class name plus the count. A
top-level ``nn.Sequential`` model contributes no prefix of its own, so
``build_mlp`` and ``nn.Sequential(Linear, Leaky, Linear, Leaky)`` both give
fc1, lif1, fc2, lif2. "input" and "output" are reserved for the graph's ends.

Composite modules (a residual block, a spiking UGO) declare the neurons
inside them with ``spiking_layers() -> {suffix: module}``; those are
recorded (and exported) as ``<composite name>_<suffix>``.
"""
from __future__ import annotations

from collections import Counter

import snntorch as snn
from torch import nn

from ..errors import SpikedeployError
from .neurons import IF, IMPLIF, LIF, TSM, Readout, is_neuron
from .residual import PreSpikeResidual

RESERVED_NAMES = ("input", "output")
KIND_PREFIX: dict[type, str] = {
    nn.Linear: "fc",
    snn.Leaky: "lif",
    snn.Synaptic: "cubalif",
    nn.Flatten: "flatten",
    nn.Conv2d: "conv",
    nn.BatchNorm1d: "bn",
    nn.BatchNorm2d: "bn",
    nn.AvgPool2d: "pool",
}
for _cls, _prefix in ((IF, "if"), (LIF, "lif"), (IMPLIF, "imp"), (Readout, "readout"),
                      (TSM, "tsm"), (PreSpikeResidual, "block")):
    _cls.layer_prefix = _prefix


def layer_names(model: nn.Sequential) -> list[str]:
    """The stable name of every child of a Sequential, in order (see module docstring)."""
    if not isinstance(model, nn.Sequential):
        raise SpikedeployError(f"expected an nn.Sequential, got {type(model).__name__}")
    counts: Counter = Counter()
    names = []
    for child_name, module in model.named_children():
        if child_name.isdigit():
            prefix = KIND_PREFIX.get(type(module)) or type(module).__dict__.get("layer_prefix") \
                or type(module).__name__.lower()
            counts[prefix] += 1
            child_name = f"{prefix}{counts[prefix]}"
        names.append(child_name)
    _check_unique(names)
    return names


def _check_unique(names) -> None:
    for name in names:
        if name in RESERVED_NAMES:
            raise SpikedeployError(f"layer name '{name}' is reserved for the graph's {name} node")
    duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
    if duplicates:
        raise SpikedeployError(f"layer names collide: {', '.join(duplicates)}; name the layers "
                               "explicitly")


def module_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> name`` for every submodule of ``model`` (the model itself excluded)."""
    names: dict[int, str] = {}

    def walk(module: nn.Module, prefix: str) -> None:
        children = list(module.named_children())
        local = (layer_names(module) if isinstance(module, nn.Sequential)
                 else [name for name, _ in children])
        for (_, child), name in zip(children, local):
            full = f"{prefix}_{name}" if prefix else name
            if id(child) not in names:          # a module reused under two names keeps the first
                names[id(child)] = full
                walk(child, full)

    walk(model, "")
    _check_unique(names.values())
    return names


def recorded_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(record name, module) of every neuron layer in ``model``: the outermost neuron modules
    (a TSM, not the neuron it wraps) and the neurons composites declare."""
    names = module_names(model)
    layers: list[tuple[str, nn.Module]] = []

    def walk(module: nn.Module) -> None:
        for child in module.children():
            name = names[id(child)]
            if is_neuron(child):
                layers.append((name, child))
            elif hasattr(child, "spiking_layers"):
                layers.extend((f"{name}_{suffix}", inner)
                              for suffix, inner in child.spiking_layers().items())
            else:
                walk(child)

    if is_neuron(model):
        return [("output", model)]
    walk(model)
    return layers
