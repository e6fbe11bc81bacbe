"""Per-module conversion to NIR: a registry ``module type -> converter``.

A converter takes ``(name, module, in_shape, dt)`` (``in_shape`` excludes
the batch) and returns ``(node, out_shape)``; ``node`` is None for modules
that are the identity at inference (they add no node). A composite module
(a residual block, a spiking UGO, a recurrent neuron) returns a
:class:`Block`: several nodes, their internal edges, and which nodes feed
the next layer (NIR sums the fan-in of a node, so a residual sum is just
several edges). Lookup is by exact type: a subclass may compute something
else (snnTorch's DeltaLeaky subclasses Leaky), so it needs its own entry.
Add one with :func:`register_converter`. Modules whose computation no NIR
primitive can express (LayerNorm, GroupNorm, softmax, attention, STA's
spike-spike products) are in :data:`REFUSED` and fail with the reason,
naming the layer. Converters live here (synapses, shape ops, pooling),
in :mod:`.snntorch_neurons` and in :mod:`.own_modules`.

Every parameter is computed in float64 from the module's values:

* ``nn.Linear`` -> ``nir.Affine`` (``nir.Linear`` without bias);
  ``nn.Flatten`` -> ``nir.Flatten`` (dims shifted: NIR excludes the batch);
  ``nn.Identity`` and ``nn.Dropout`` (identity in evaluation) -> no node.
* ``nn.Conv2d`` / ``nn.Conv1d`` -> ``nir.Conv2d`` / ``nir.Conv1d`` (float64
  weight, bias zeros if none); followed by ``nn.BatchNorm2d`` (and
  ``nn.Linear`` by ``nn.BatchNorm1d``) the BatchNorm's running statistics are
  folded in: w' = w * gamma/sqrt(var+eps) per output channel,
  b' = (b - mean) * gamma/sqrt(var+eps) + beta. A BatchNorm anywhere else is
  refused.
* ``nn.AvgPool2d`` -> ``nir.AvgPool2d`` (no ceil_mode, no divisor_override).
* ``nn.MaxPool2d`` of binary spikes -> ``nir.SumPool2d`` feeding a
  ``nir.Threshold`` at 0.5: the max of 0/1 values is their OR, which is
  "sum > 0.5" (:func:`maxpool_of_spikes`, chosen by the graph builder, which
  knows what feeds the pool). Of real-valued currents it is refused: a max
  is not a sum of weighted inputs, which is all a NIR edge or a Loihi
  synapse computes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import nir
import numpy as np
from nir.ir.utils import calculate_conv_output   # NIR's own output-size rule
from torch import nn

from ..errors import UnsupportedError
from ..models.sta import TCSA
from .neuron_nodes import float64 as _float64

INPUT = "<input>"   # in a Block: the stream entering the block (all its source nodes)


@dataclass
class Block:
    """Several NIR nodes standing for one module.

    ``edges`` may start at :data:`INPUT` (the nodes feeding the module);
    ``outputs`` lists the nodes whose sum is the module's output, where
    :data:`INPUT` means "the module's input sources" (a residual path).
    """
    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    shape: tuple = ()

    @classmethod
    def single(cls, name, node, shape) -> "Block":
        if node is None:
            return cls({}, [], [INPUT], tuple(shape))
        return cls({name: node}, [(INPUT, name)], [name], tuple(shape))


Converter = Callable[[str, nn.Module, tuple, float], tuple]
CONVERTERS: dict[type, Converter] = {}


def register_converter(*module_types: type):
    """Decorator: use the function to convert modules of exactly these types."""
    def register(fn: Converter) -> Converter:
        for t in module_types:
            CONVERTERS[t] = fn
        return fn
    return register


# Modules no NIR primitive can express: type -> why (the error names the layer).
REFUSED: dict[type, str] = {
    nn.LayerNorm: "LayerNorm divides by a standard deviation computed from each sample at run "
                  "time; NIR has no normalisation primitive (use BatchNorm after a Conv2d/Linear, "
                  "which is folded into the weights, or approximate 1/sqrt with a UGO)",
    nn.GroupNorm: "GroupNorm divides by per-sample group statistics computed at run time; NIR has "
                  "no normalisation primitive (use BatchNorm after a Conv2d, which is folded)",
    nn.Softmax: "softmax needs exp and a per-sample division; no NIR primitive computes either "
                "(STA approximates exp and 1/x with UGOs, but the product needs TCSA)",
    nn.MultiheadAttention: "attention multiplies activations with each other; NIR edges only add "
                           "weighted inputs",
    TCSA: "TCSA multiplies two spike streams (spike-spike product, estimate-and-correct); NIR "
          "edges only add weighted inputs, so no NIR graph computes a product of activations",
}


def _refused_inside(module: nn.Module) -> str | None:
    for sub_name, sub in module.named_modules():
        if sub_name and type(sub) in REFUSED:
            return f"{sub_name} ({type(sub).__name__}): {REFUSED[type(sub)]}"
    return None


def convert_layer(name: str, module: nn.Module, in_shape: tuple, dt: float):
    """(NIR node or None, output shape) -- or a :class:`Block` -- for one layer."""
    if type(module) in REFUSED:
        raise UnsupportedError(name, "type", f"{type(module).__name__} cannot be exported to NIR: "
                               f"{REFUSED[type(module)]}")
    converter = CONVERTERS.get(type(module))
    if converter is None:
        inside = _refused_inside(module)
        if inside:
            raise UnsupportedError(name, "type", f"{type(module).__name__} contains a layer NIR "
                                   f"cannot express: {inside}")
        known = ", ".join(sorted(t.__name__ for t in CONVERTERS))
        raise UnsupportedError(name, "type", f"{type(module).__module__}.{type(module).__name__} "
                               f"has no NIR conversion (supported: {known})")
    return converter(name, module, tuple(int(s) for s in in_shape), dt)


def convert_block(name: str, module: nn.Module, in_shape: tuple, dt: float) -> Block:
    """Like :func:`convert_layer`, always as a :class:`Block`."""
    result = convert_layer(name, module, in_shape, dt)
    return result if isinstance(result, Block) else Block.single(name, *result)


# --- synapses and shape ops -------------------------------------------------

@register_converter(nn.Linear)
def _linear(name, module: nn.Linear, in_shape, dt):
    if len(in_shape) != 1 or in_shape[0] != module.in_features:
        raise UnsupportedError(name, "in_features", f"expects input of shape ({module.in_features},), "
                               f"gets {in_shape}; add nn.Flatten before it")
    weight = _float64(module.weight)
    if module.bias is None:
        return nir.Linear(weight=weight), (module.out_features,)
    return nir.Affine(weight=weight, bias=_float64(module.bias)), (module.out_features,)


@register_converter(nn.Flatten)
def _flatten(name, module: nn.Flatten, in_shape, dt):
    ndim = len(in_shape) + 1                # torch counts the batch dimension
    start, end = module.start_dim % ndim, module.end_dim % ndim
    if start == 0:
        raise UnsupportedError(name, "start_dim", "flattening the batch dimension has no NIR equivalent")
    start, end = start - 1, end - 1         # NIR dims exclude the batch
    out_shape = in_shape[:start] + (int(np.prod(in_shape[start:end + 1])),) + in_shape[end + 1:]
    node = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end)
    return node, out_shape


@register_converter(nn.Identity, nn.Dropout)
def _identity(name, module, in_shape, dt):
    return None, in_shape


# --- convolution, BatchNorm folding, pooling --------------------------------------

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def fold_batchnorm(name: str, weight: np.ndarray, bias: np.ndarray | None, bn) -> tuple:
    """(w', b') of a Conv2d/Conv1d/Linear followed by BatchNorm in evaluation mode, in float64.

    y = gamma * (W x + b - mean) / sqrt(var + eps) + beta
      = (W * k) x + (b - mean) * k + beta,   k = gamma / sqrt(var + eps) per output channel.
    """
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedError(name, "batchnorm", "BatchNorm without running statistics "
                               "(track_running_stats=False) normalises by batch statistics at run "
                               "time; NIR cannot express it")
    mean, var = _float64(bn.running_mean), _float64(bn.running_var)
    gamma = _float64(bn.weight) if bn.weight is not None else np.ones_like(mean)
    beta = _float64(bn.bias) if bn.bias is not None else np.zeros_like(mean)
    if mean.shape[0] != weight.shape[0]:
        raise UnsupportedError(name, "batchnorm", f"BatchNorm has {mean.shape[0]} channels, the "
                               f"layer before it {weight.shape[0]}")
    k = gamma / np.sqrt(var + float(bn.eps))
    w = weight * k.reshape((-1,) + (1,) * (weight.ndim - 1))
    b = (np.zeros_like(mean) if bias is None else bias) - mean
    return w, b * k + beta


def _pair(value) -> tuple:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * 2


def _check_conv_input(name: str, module, in_shape, spatial: str) -> None:
    """A convolution's input is (C, *spatial) with its in_channels; it pads with zeros."""
    if len(in_shape) != 1 + len(spatial.split(",")) or in_shape[0] != module.in_channels:
        raise UnsupportedError(name, "in_channels", f"expects input (C={module.in_channels}, "
                               f"{spatial}), gets {in_shape}")
    if module.padding_mode != "zeros":
        raise UnsupportedError(name, "padding_mode", f"padding_mode {module.padding_mode!r}: NIR "
                               "convolutions pad with zeros")


def _conv_weights(name: str, module, in_shape, spatial: str, bn) -> tuple:
    """(weight, bias) of a Conv1d/Conv2d in float64, a following BatchNorm folded in (a
    zero bias when there is none), after checking its input."""
    _check_conv_input(name, module, in_shape, spatial)
    weight = _float64(module.weight)
    bias = None if module.bias is None else _float64(module.bias)
    if bn is not None:
        weight, bias = fold_batchnorm(name, weight, bias, bn)
    return weight, np.zeros(weight.shape[0]) if bias is None else bias


def conv_node(name: str, module: nn.Conv2d, in_shape, bn=None):
    """``nir.Conv2d`` (float64) for a torch Conv2d, with a following BatchNorm2d folded in."""
    weight, bias = _conv_weights(name, module, in_shape, "H, W", bn)
    stride, dilation = _pair(module.stride), _pair(module.dilation)
    _, h, w = in_shape
    if isinstance(module.padding, str):   # "same" (stride 1): torch puts the extra pixel after
        padding = (0, 0) if module.padding == "valid" else "same"
    else:
        padding = _pair(module.padding)
    out_hw = calculate_conv_output((h, w), padding, dilation, weight.shape[2:], stride)
    node = nir.Conv2d(input_shape=(h, w), weight=weight, stride=stride, padding=padding,
                      dilation=dilation, groups=int(module.groups), bias=bias)
    return node, (weight.shape[0],) + tuple(int(s) for s in out_hw)


@register_converter(nn.Conv2d)
def _conv2d(name, module: nn.Conv2d, in_shape, dt):
    return conv_node(name, module, in_shape)


def convert_with_batchnorm(name: str, module: nn.Module, bn, in_shape: tuple, dt: float) -> Block:
    """A Conv2d/Conv1d/Linear and the BatchNorm right after it, as one folded node named
    ``name``."""
    if isinstance(module, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
        node, shape = conv_node(name, module, in_shape, bn)
        return Block.single(name, node, shape)
    if isinstance(module, nn.Conv1d) and isinstance(bn, nn.BatchNorm1d):
        node, shape = conv1d_node(name, module, in_shape, bn)
        return Block.single(name, node, shape)
    if isinstance(module, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
        node, shape = _linear(name, module, in_shape, dt)
        bias = None if module.bias is None else _float64(module.bias)
        weight, bias = fold_batchnorm(name, _float64(module.weight), bias, bn)
        return Block.single(name, nir.Affine(weight=weight, bias=bias), shape)
    raise UnsupportedError(name, "batchnorm", f"{type(bn).__name__} cannot follow "
                           f"{type(module).__name__}")


@register_converter(*BATCHNORMS)
def _batchnorm(name, module, in_shape, dt):
    raise UnsupportedError(name, "type", f"{type(module).__name__} must directly follow a Conv2d "
                           "(BatchNorm2d), Conv1d or Linear (BatchNorm1d): it is folded into that "
                           "layer's weights and bias at export")


@register_converter(nn.AvgPool2d)
def _avgpool(name, module: nn.AvgPool2d, in_shape, dt):
    k, stride, pad = _pool_geometry(name, module, in_shape)
    if module.divisor_override is not None:
        raise UnsupportedError(name, "divisor_override", "NIR's AvgPool2d divides by the kernel size")
    if any(pad) and not module.count_include_pad:
        raise UnsupportedError(name, "count_include_pad", "NIR's AvgPool2d counts padded pixels")
    c, h, w = in_shape
    out = tuple(int(v) for v in calculate_conv_output((h, w), pad, (1, 1), k, stride))
    node = nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(stride), padding=np.array(pad))
    return node, (c,) + out


def _pool_geometry(name, module, in_shape):
    if len(in_shape) != 3:
        raise UnsupportedError(name, "input", f"needs a (C, H, W) input, gets {in_shape}")
    if module.ceil_mode:
        raise UnsupportedError(name, "ceil_mode", "ceil_mode=True has no NIR equivalent")
    k = _pair(module.kernel_size)
    stride = _pair(module.stride if module.stride is not None else module.kernel_size)
    return k, stride, _pair(module.padding)


@register_converter(nn.MaxPool2d)
def _maxpool(name, module: nn.MaxPool2d, in_shape, dt):
    raise UnsupportedError(name, "type", "MaxPool2d of real-valued currents (it does not follow a "
                           "spiking neuron): a max is not a sum of weighted inputs, which is all "
                           "a NIR edge or a Loihi synapse computes; pool the spikes instead (put "
                           "the MaxPool2d after the neuron: the max of spikes is their OR) or use "
                           "nn.AvgPool2d")


def maxpool_of_spikes(name: str, module: nn.MaxPool2d, in_shape: tuple) -> Block:
    """MaxPool2d of binary spikes: SumPool2d (the count of spikes in the window) feeding a
    Threshold at 0.5 (z = count > 0.5), named ``name``: exactly the max of 0/1 values.
    Padding pads with zeros where torch pads with -inf: the same max for spikes."""
    k, stride, pad = _pool_geometry(name, module, in_shape)
    if _pair(module.dilation) != (1, 1):
        raise UnsupportedError(name, "dilation", "NIR's SumPool2d has no dilation")
    if getattr(module, "return_indices", False):
        raise UnsupportedError(name, "return_indices", "pooling indices have no NIR meaning")
    c, h, w = in_shape
    out = (c,) + tuple(int(v) for v in calculate_conv_output((h, w), pad, (1, 1), k, stride))
    count = f"{name}_count"
    pool = nir.SumPool2d(kernel_size=np.array(k), stride=np.array(stride), padding=np.array(pad))
    threshold = nir.Threshold(threshold=np.full(out, 0.5))
    return Block({count: pool, name: threshold}, [(INPUT, count), (count, name)], [name], out)


@register_converter(nn.Conv1d)
def _conv1d(name, module: nn.Conv1d, in_shape, dt):
    return conv1d_node(name, module, in_shape)


def conv1d_node(name: str, module: nn.Conv1d, in_shape, bn=None):
    """``nir.Conv1d`` (float64) for a torch Conv1d, with a following BatchNorm1d folded in."""
    weight, bias = _conv_weights(name, module, in_shape, "L", bn)
    padding = module.padding if isinstance(module.padding, str) else int(module.padding[0])
    if padding == "valid":
        padding = 0
    node = nir.Conv1d(input_shape=int(in_shape[1]), weight=weight, stride=int(module.stride[0]),
                      padding=padding, dilation=int(module.dilation[0]),
                      groups=int(module.groups), bias=bias)
    length = calculate_conv_output(int(in_shape[1]), padding, int(module.dilation[0]),
                                   weight.shape[2], int(module.stride[0]))
    return node, (weight.shape[0], int(np.atleast_1d(length)[0]))
