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
ends.
"""
from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import snntorch as snn
import torch
from torch import nn

from ..errors import SpikedeployError

RESERVED_NAMES = ("input", "output")
KIND_PREFIX: dict[type, str] = {
    nn.Linear: "fc",
    snn.Leaky: "lif",
    snn.Synaptic: "cubalif",
    nn.Flatten: "flatten",
}


def layer_names(model: nn.Sequential) -> list[str]:
    """The stable name of every child of ``model``, in order (see module docstring)."""
    if not isinstance(model, nn.Sequential):
        raise SpikedeployError(f"expected an nn.Sequential, got {type(model).__name__}")
    counts: Counter = Counter()
    names = []
    for child_name, module in model.named_children():
        if child_name.isdigit():
            prefix = KIND_PREFIX.get(type(module), type(module).__name__.lower())
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


def is_spiking(module: nn.Module) -> bool:
    return isinstance(module, snn.SpikingNeuron)


def reset_state(model: nn.Module) -> None:
    """Zero every neuron's hidden state (membrane, synaptic current).

    Does what ``snntorch.utils.reset`` does, per module: that function resets
    snnTorch's class-level registry of instances, which misses deep copies
    (``copy.deepcopy`` does not run ``__init__``, so copies are unregistered)
    and touches every other network in the process.
    """
    for module in model.modules():
        if is_spiking(module) and hasattr(module, "reset_mem"):
            module.reset_mem()


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

    Returns ``{layer_name: spikes (T, N, *layer_shape)}`` for every spiking
    layer, plus ``"output"``: the last layer's output. Arrays are float64.
    """
    names = layer_names(model)
    if dtype is not None:
        reset_state(model)  # hidden state left from training is not a graph leaf: deepcopy refuses it
        model = copy.deepcopy(model).to(dtype)
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
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
    recorded: dict[str, list] = {n: [] for n, m in zip(names, model) if is_spiking(m)}
    outputs = []
    for t in range(x.shape[0]):
        out = x[t]
        for name, module in zip(names, model):
            out = module(out)
            if isinstance(out, tuple):  # init_hidden=False or output=True: (spk, state...)
                out = out[0]
            if is_spiking(module):
                # snnTorch's spike function returns float32 whatever the model's
                # dtype; 0/1 is exact in any dtype, and the next layer needs its own.
                out = out.to(work_dtype)
                recorded[name].append(out)
        outputs.append(out)
    result = {n: torch.stack(s).double().numpy() for n, s in recorded.items()}
    result["output"] = torch.stack(outputs).double().numpy()
    return result
