"""Walking an snnTorch ``nn.Sequential``: stable layer names and a time-stepped run.

Layer names are shared by the exporter (they become NIR node names) and by
:func:`run_snntorch` (they key its result), so a spike train from snnTorch
can be compared with the same node's spikes in any backend.

Naming rule, per child of the Sequential, in order:

* a child added under a name (``nn.Sequential(OrderedDict(fc1=...))``) keeps
  that name;
* a child with PyTorch's default index name ("0", "1", ...) is named by kind
  and a 1-based count per kind: ``nn.Linear`` -> fc1, fc2, ...;
  ``snn.Leaky`` -> lif1, ...; ``snn.Synaptic`` -> cubalif1, ...;
  ``nn.Flatten`` -> flatten1, ...; any other type -> its lower-cased class
  name plus the count.

So ``build_mlp`` and ``nn.Sequential(Linear, Leaky, Linear, Leaky)`` both
give fc1, lif1, fc2, lif2. "input" and "output" are reserved for the graph's
ends. More kinds: ``nn.Conv2d`` -> conv, ``nn.BatchNorm1d/2d`` -> bn,
``nn.AvgPool2d`` -> pool; spikedeploy's own modules declare theirs in a
``layer_prefix`` class attribute (IF -> if, LIF -> lif, IMPLIF -> imp,
Readout -> readout, TSM -> tsm, PreSpikeResidual -> block, SpikingUGO -> ugo).

Composite modules (a residual block, a spiking UGO) declare the neurons
inside them with ``spiking_layers() -> {suffix: module}``; those are
recorded (and exported) as ``<child name>_<suffix>``.
"""
from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import snntorch as snn
import torch
from torch import nn

from ..errors import SpikedeployError
from .neurons import IF, IMPLIF, LIF, TSM, Readout, is_neuron, reset_state
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
    """The stable name of every child of ``model``, in order (see module docstring)."""
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
    for name in names:
        if name in RESERVED_NAMES:
            raise SpikedeployError(f"layer name '{name}' is reserved for the graph's {name} node")
    duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
    if duplicates:
        raise SpikedeployError(f"layer names collide: {', '.join(duplicates)}; name the layers explicitly")
    return names


def recorded_layers(model: nn.Sequential) -> list[tuple[str, nn.Module]]:
    """(record name, module) of every neuron layer, nested ones of composites included."""
    layers = []
    for name, module in zip(layer_names(model), model):
        if is_neuron(module):
            layers.append((name, module))
        elif hasattr(module, "spiking_layers"):
            layers += [(f"{name}_{suffix}", inner) for suffix, inner in module.spiking_layers().items()]
    return layers


@torch.no_grad()
def run_snntorch(model: nn.Sequential, x, dtype: torch.dtype | None = torch.float64,
                 batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Step ``model`` over time; return every spiking layer's spikes.

    ``x`` is time-major, (T, N, *input_shape), numpy or torch. The model runs
    in evaluation mode on a copy converted to ``dtype`` (float64 by default,
    so results can be compared with a float64 NIR simulation; ``None`` runs
    the model as it is). Hidden state is reset before each batch of
    ``batch_size`` samples (all at once if None). The caller's model keeps
    its weights and dtype; its hidden state is zeroed.

    Returns ``{layer_name: spikes (T, N, *layer_shape)}`` for every neuron
    layer (spikes; a non-spiking :class:`~spikedeploy.models.neurons.Readout`
    gives its voltage), neurons inside composite blocks as
    ``<block>_<suffix>``, plus ``"output"``: the last layer's output.
    Arrays are float64.
    """
    names = layer_names(model)
    if dtype is not None:
        reset_state(model)  # hidden state left from training is not a graph leaf: deepcopy refuses it
        model = copy.deepcopy(model).to(dtype)
    if not torch.is_tensor(x):
        x = np.asarray(x)
        x = torch.as_tensor(x if x.flags.writeable else x.copy())   # e.g. a broadcast view
    work_dtype = dtype or _model_dtype(model)
    x = x.to(work_dtype)
    if x.ndim < 3:
        raise SpikedeployError(f"expected input of shape (T, N, features...), got {tuple(x.shape)}")
    num_samples = x.shape[1]
    if num_samples == 0 or x.shape[0] == 0:
        raise SpikedeployError(f"input has no samples or no time steps: shape {tuple(x.shape)}")
    batch_size = batch_size or num_samples
    was_training = model.training
    model.eval()
    try:
        chunks = [_run_batch(model, names, x[:, start:start + batch_size], work_dtype)
                  for start in range(0, num_samples, batch_size)]
    finally:
        model.train(was_training)
    return {key: np.concatenate([c[key] for c in chunks], axis=1) for key in chunks[0]}


def _model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def _run_batch(model, names, x, work_dtype) -> dict[str, np.ndarray]:
    reset_state(model)
    top = {n for n, m in zip(names, model) if is_neuron(m)}
    recorded: dict[str, list] = {n: [] for n, _ in recorded_layers(model)}
    hooks = []
    for rec_name, module in recorded_layers(model):
        if rec_name not in top:      # a neuron inside a composite block: record via a hook
            def hook(mod, args, out, _name=rec_name):
                out = (out[0] if isinstance(out, tuple) else out).to(work_dtype)
                recorded[_name].append(out)
                return out
            hooks.append(module.register_forward_hook(hook))
    hooks += _recurrent_dtype_hooks(model, work_dtype)
    outputs = []
    try:
        for t in range(x.shape[0]):
            out = x[t]
            for name, module in zip(names, model):
                out = module(out)
                if isinstance(out, tuple):  # init_hidden=False or output=True: (spk, state...)
                    out = out[0]
                if name in top:
                    # snnTorch's spike function returns float32 whatever the model's
                    # dtype; 0/1 is exact in any dtype, and the next layer needs its own.
                    out = out.to(work_dtype)
                    recorded[name].append(out)
            outputs.append(out)
    finally:
        for h in hooks:
            h.remove()
    result = {n: torch.stack(s).double().numpy() for n, s in recorded.items() if s}
    result["output"] = torch.stack(outputs).double().numpy()
    return result


def _recurrent_dtype_hooks(model: nn.Module, work_dtype: torch.dtype) -> list:
    """Cast the spikes snnTorch's RLeaky/RSynaptic feed back to their ``recurrent`` layer.

    Their spike function returns float32 whatever the model's dtype, and the
    recurrent nn.Linear/nn.Conv2d of a float64 model refuses float32 input
    (0/1 spikes are exact in any dtype).
    """
    hooks = []
    for module in model.modules():
        recurrent = getattr(module, "recurrent", None)
        if isinstance(module, snn.SpikingNeuron) and isinstance(recurrent, nn.Module):
            hooks.append(recurrent.register_forward_pre_hook(
                lambda mod, args: tuple(a.to(work_dtype) if torch.is_tensor(a) else a for a in args)))
    return hooks
