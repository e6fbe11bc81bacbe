"""Running any snnTorch model over time and recording every neuron layer's spikes.

Works for the three ways a model runs over time (:data:`~.trace.STYLES`): an
``nn.Sequential`` (or any module) called once per step, a ``forward`` that
loops over a (T, N, ...) sequence, and a ``forward`` that repeats one (N, ...)
input over its own steps. Records are keyed by the layer names of
:mod:`.naming`, the names the exporter gives the NIR nodes.
"""
from __future__ import annotations

import copy

import numpy as np
import snntorch as snn
import torch
from torch import nn

from ..errors import SpikedeployError
from .naming import recorded_layers
from .neurons import is_neuron, reset_state
from .trace import STYLES, first_tensor, model_dtype, trace_module


def detect_style(model: nn.Module, step_shape: tuple) -> str:
    """How ``model`` runs over time (see :func:`~.trace.trace_module`)."""
    if isinstance(model, nn.Sequential):
        return "step"
    return trace_module(model, tuple(step_shape), num_steps=1, batch=1,
                        is_leaf=lambda m: is_neuron(m) or not list(m.children())).style


@torch.no_grad()
def run_snntorch(model: nn.Module, x, dtype: torch.dtype | None = torch.float64,
                 batch_size: int | None = None, style: str | None = None) -> dict[str, np.ndarray]:
    """Run ``model`` over time; return every neuron layer's output per step.

    ``x`` is time-major, (T, N, *input_shape), numpy or torch. ``style``:
    ``step`` (one call per step), ``sequence`` (the model takes x whole) or
    ``repeat`` (the model takes one step's input and repeats it over its own
    steps: x must then be constant over time); None detects it. The model
    runs in evaluation mode on a copy converted to ``dtype`` (float64 by
    default, so results can be compared with a float64 NIR simulation;
    ``None`` runs the model as it is). Hidden state is reset before each
    batch of ``batch_size`` samples (all at once if None). The caller's
    model keeps its weights and dtype; its hidden state is zeroed.

    Returns ``{layer_name: outputs (T, N, *layer_shape)}`` for every neuron
    layer (spikes, graded as the model emits them; a non-spiking
    :class:`~spikedeploy.models.neurons.Readout` gives its voltage), neurons
    inside composite blocks as ``<block>_<suffix>``, plus ``"output"``: the
    model's first output per step. Arrays are float64.
    """
    if not torch.is_tensor(x):
        x = np.asarray(x)
        x = torch.as_tensor(x if x.flags.writeable else x.copy())   # e.g. a broadcast view
    if x.ndim < 3:
        raise SpikedeployError(f"expected input of shape (T, N, features...), got {tuple(x.shape)}")
    if x.shape[1] == 0 or x.shape[0] == 0:
        raise SpikedeployError(f"input has no samples or no time steps: shape {tuple(x.shape)}")
    if style is None:
        style = detect_style(model, tuple(x.shape[2:]))
    if style not in STYLES:
        raise SpikedeployError(f"unknown forward style {style!r} ({'|'.join(STYLES)})")
    if style == "repeat" and not torch.equal(x, x[:1].expand_as(x)):
        raise SpikedeployError("this model repeats one input over its own time steps; the given "
                               "input changes over time")
    if dtype is not None:
        reset_state(model)  # hidden state left from training is not a graph leaf: deepcopy refuses it
        model = copy.deepcopy(model).to(dtype)
    work_dtype = dtype or model_dtype(model)
    x = x.to(work_dtype)
    num_samples = x.shape[1]
    batch_size = batch_size or num_samples
    was_training = model.training
    model.eval()
    default = torch.get_default_dtype()
    torch.set_default_dtype(work_dtype)     # tensors the model's forward makes (zeros) match it
    try:
        chunks = [_run_batch(model, x[:, start:start + batch_size], work_dtype, style)
                  for start in range(0, num_samples, batch_size)]
    finally:
        torch.set_default_dtype(default)
        model.train(was_training)
        reset_state(model)
    return {key: np.concatenate([c[key] for c in chunks], axis=1) for key in chunks[0]}


def _cast(out, dtype):
    if isinstance(out, tuple):
        return tuple(_cast(o, dtype) for o in out)
    return out.to(dtype) if torch.is_tensor(out) and out.is_floating_point() else out


def _run_batch(model, x, work_dtype, style) -> dict[str, np.ndarray]:
    reset_state(model)
    layers = recorded_layers(model)
    recorded: dict[str, list] = {name: [] for name, _ in layers}
    hooks = []
    for name, module in layers:
        # snnTorch's spike function returns float32 whatever the model's dtype: spikes are
        # cast (exactly) to the model's dtype, which the next layer needs.
        def hook(mod, args, out, _name=name):
            out = _cast(out, work_dtype)
            recorded[_name].append(first_tensor(out))
            return out
        hooks.append(module.register_forward_hook(hook))
    hooks += _recurrent_dtype_hooks(model, work_dtype)
    try:
        if style == "step":
            output = torch.stack([first_tensor(model(x[t])).to(work_dtype) for t in range(x.shape[0])])
        else:
            output = first_tensor(model(x if style == "sequence" else x[0])).to(work_dtype)
    finally:
        for h in hooks:
            h.remove()
    if is_neuron(model):
        recorded.pop("output", None)
    result = {n: torch.stack(s).double().numpy() for n, s in recorded.items() if s}
    result["output"] = output.double().numpy()
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
