"""Per-module conversion to NIR: a registry ``module type -> converter``.

A converter takes ``(name, module, in_shape, dt)`` (``in_shape`` excludes
the batch) and returns ``(node, out_shape)``; ``node`` is None for modules
that are the identity at inference (they add no node). A composite module
(a residual block, a spiking UGO) returns a :class:`Block`: several nodes,
their internal edges, and which nodes feed the next layer (NIR sums the
fan-in of a node, so a residual sum is just several edges). Lookup is by
exact type: a subclass may compute something else (snnTorch's DeltaLeaky
subclasses Leaky), so it needs its own entry. Add one with
:func:`register_converter`. Modules whose computation no NIR primitive can
express (LayerNorm, GroupNorm, softmax, attention, STA's spike-spike
products) are in :data:`REFUSED` and fail with the reason, naming the layer.

Every parameter is computed in float64 from the module's values, so the
graph, discretised as :mod:`spikedeploy.ir.semantics` defines (forward Euler
at ``dt``), reproduces snnTorch's float64 arithmetic:

* ``snn.Leaky`` (reset "zero", reset_delay=False): mem = beta*mem + I
  -> ``nir.LIF`` with tau = dt/(1-beta), r = tau/dt, v_leak = 0,
  v_reset = 0, v_threshold = threshold, so dv = dt/tau = 1-beta and the
  input gain g = dt*r/tau = 1. All beta = 1 (no leak) -> ``nir.IF`` with
  r = 1/dt.
* ``snn.Synaptic`` (same reset rules): syn = alpha*syn + I;
  mem = beta*mem + syn -> ``nir.CubaLIF`` with tau_syn = dt/(1-alpha),
  tau_mem = dt/(1-beta), r = tau_mem/dt, w_in = tau_syn/dt (gain 1).
* ``nn.Linear`` -> ``nir.Affine`` (``nir.Linear`` without bias);
  ``nn.Flatten`` -> ``nir.Flatten`` (dims shifted: NIR excludes the batch);
  ``nn.Identity`` and ``nn.Dropout`` (identity in evaluation) -> no node.

Rounding: tau, r and w_in are moved by a few ulps where that makes the
consumer's expressions (1 - dt/tau, dt*r/tau, ...) land exactly on beta,
alpha and 1 in float64, so (nearly always) no rounding error separates the
two simulations; where no such neighbour exists the error is 1 ulp.

Anything NIR cannot carry is refused with
:class:`~spikedeploy.errors.UnsupportedError` naming the layer and field:
reset "subtract"/"none", reset_delay=True, graded spikes, inhibition,
state quantisation, learnable values with no NIR field, thresholds <= 0
(snnTorch's reset logic then departs from NIR's), mixed beta = 1.

spikedeploy's own modules (:mod:`spikedeploy.models.neurons`) and the
convolutional layers:

* ``IF`` / ``LIF`` / ``IMPLIF`` -> ``nir.IF`` (beta = 1, r = 1/dt so g = 1)
  or ``nir.LIF`` as above, v_reset = 0. What NIR has no field for goes into
  node metadata (keys defined in :mod:`spikedeploy.metadata`, honoured
  by the reference simulator and the Lava process ``WindowedNeuron``):

  ============================ ===============================================
  ``spikedeploy.reset_mode``   "subtract": v -= v_threshold on a spike
                               (written only for subtractive reset)
  ``spikedeploy.v_init``       float64 array, layer shape: the voltage at the
                               start of every sample (IMP v0, conversion s/2;
                               written only when non-zero)
  ``spikedeploy.tsm_gain``     float64 array (T,): the TSM gain p[t]; the
                               update is u[t] = g * p[t] * (a[t] + c)
  ============================ ===============================================

* ``TSM(neuron)`` -> the wrapped neuron's node plus ``spikedeploy.tsm_gain``.
* ``Readout(beta)`` -> ``nir.LI`` (tau = dt/(1-beta), r = tau/dt: v = beta*v + I)
  or, for beta = 1, ``nir.I`` (r = 1/dt: v = v + I). Outputs its voltage.
* ``nn.Conv2d`` -> ``nir.Conv2d`` (float64 weight, bias zeros if none);
  followed by ``nn.BatchNorm2d`` (and ``nn.Linear`` by ``nn.BatchNorm1d``)
  the BatchNorm's running statistics are folded in:
  w' = w * gamma/sqrt(var+eps) per output channel,
  b' = (b - mean) * gamma/sqrt(var+eps) + beta. A BatchNorm anywhere else is
  refused.
* ``nn.AvgPool2d`` -> ``nir.AvgPool2d`` (no ceil_mode, no divisor_override).
* ``PreSpikeResidual`` (block ``B``) -> ``B_sn`` (its neuron) -> ``B_conv``
  (conv with BN folded); the block's output is ``B_conv`` *and* the block's
  input sources: the next layer gets one edge from each.
* ``SpikingUGO`` (block ``U``) -> ``U_fc_in`` -> ``U_sn`` -> ``U_fc_out`` -> ``U_acc``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import nir
import numpy as np
import snntorch as snn
from nir.ir.utils import calculate_conv_output   # NIR's own output-size rule
import torch
from torch import nn

from ..errors import UnsupportedError
from ..metadata import RESET_MODE, TSM_GAIN, V_INIT
from ..models.neurons import IF, IMPLIF, LIF, TSM, Readout
from ..models.residual import PreSpikeResidual
from ..models.sta import TCSA
from ..models.ugo import SpikingUGO

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

# Learnable values a NIR neuron field carries (their trained value is exported).
NEURON_FIELDS_WITH_NIR_HOME = {"beta", "alpha", "threshold"}


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
    nn.MaxPool2d: "max pooling is not linear and has no NIR primitive; use nn.AvgPool2d",
}


def _refused_inside(module: nn.Module) -> str | None:
    for sub_name, sub in module.named_modules():
        if sub_name and type(sub) in REFUSED:
            return f"{sub_name} ({type(sub).__name__}): {REFUSED[type(sub)]}"
    return None


def convert_layer(name: str, module: nn.Module, in_shape: tuple, dt: float):
    """(NIR node or None, output shape) -- or a :class:`Block` -- for one child of the Sequential."""
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


def _float64(value) -> np.ndarray:
    """A module value as float64 (float32 -> float64 is exact)."""
    if torch.is_tensor(value):
        value = value.detach().cpu().to(torch.float64).numpy()
    return np.array(value, dtype=np.float64)


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


# --- neurons ------------------------------------------------------------------

def _nudge(start: np.ndarray, achieved: Callable[[np.ndarray], np.ndarray], target: np.ndarray,
           max_ulps: int = 64) -> np.ndarray:
    """The float64 closest to ``start`` (within max_ulps) with achieved(x) == target, per element.

    Elements with no such neighbour keep ``start`` (then off by an ulp or two).
    """
    start = np.asarray(start, np.float64)
    best = start.copy()
    found = achieved(start) == target
    up, down = start.copy(), start.copy()
    for _ in range(max_ulps):
        if found.all():
            break
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
        for candidate in (up, down):
            hit = ~found & (achieved(candidate) == target)
            best[hit] = candidate[hit]
            found |= hit
    return best


def _time_constant(decay: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(tau, tau/dt) for a per-step decay factor (beta or alpha).

    tau is built as dt * ratio, so ``dt * r / tau`` is exactly 1 for r = ratio,
    and ratio is tuned so that the consumer's 1 - dt/tau equals ``decay``
    (for about 9 in 10 values; the rest are 1 ulp off).
    """
    ratio = _nudge(1.0 / (1.0 - decay), lambda k: 1.0 - dt / (dt * k), decay)
    return dt * ratio, ratio


def step_decay(node, dt: float) -> np.ndarray:
    """The per-step voltage decay (snnTorch's beta) of an IF/LIF node this exporter wrote:
    1 - dt/tau, which :func:`_time_constant` makes equal to beta; 1 for IF."""
    if isinstance(node, nir.IF):
        return np.ones(np.shape(node.v_threshold))
    return 1.0 - dt / np.asarray(node.tau, np.float64)


def _per_neuron(name, field, value, shape) -> np.ndarray:
    value = _float64(value)
    try:
        return np.broadcast_to(value, shape).copy()
    except ValueError:
        raise UnsupportedError(name, field, f"shape {value.shape} does not fit the layer's shape {shape}")


def _decay(name, field, value, shape) -> np.ndarray:
    """beta/alpha per neuron, clamped to [0, 1] as snnTorch's forward pass does."""
    decay = _per_neuron(name, field, value, shape)
    if not np.all(np.isfinite(decay)):
        raise UnsupportedError(name, field, f"{field} holds NaN or infinite values")
    return np.clip(decay, 0.0, 1.0)


def _threshold(name, module, shape) -> np.ndarray:
    threshold = _per_neuron(name, "threshold", module.threshold, shape)
    if not np.all(np.isfinite(threshold)) or np.any(threshold <= 0):
        # snnTorch derives its "already reset" flag from mem > threshold with
        # mem = 0 after a spike; with threshold <= 0 that flag is set and its
        # update departs from NIR's reset (it doubles or keeps mem).
        raise UnsupportedError(name, "threshold", "thresholds must be finite and > 0; "
                               f"got min {threshold.min():g}")
    return threshold


def _check_spiking_neuron(name, module) -> None:
    """Refuse every snnTorch option whose effect NIR's neuron nodes cannot carry."""
    mechanism = module.reset_mechanism
    if mechanism != "zero" or int(module.reset_mechanism_val) != 1:
        raise UnsupportedError(name, "reset_mechanism",
                               f"reset {mechanism!r} (code {int(module.reset_mechanism_val)}) is not "
                               "representable: NIR neurons reset to v_reset; use reset_mechanism='zero'")
    if getattr(module, "reset_delay", True):
        raise UnsupportedError(name, "reset_delay", "reset_delay=True resets one step late; NIR "
                               "resets in the step of the spike: use reset_delay=False")
    if getattr(module, "inhibition", False):
        raise UnsupportedError(name, "inhibition", "winner-take-all inhibition has no NIR field")
    if getattr(module, "state_quant", False):
        raise UnsupportedError(name, "state_quant", "state quantisation has no NIR field")
    factor = module.graded_spikes_factor
    if isinstance(factor, nn.Parameter):
        raise UnsupportedError(name, "graded_spikes_factor", "a learnable graded-spike factor has "
                               "no NIR field")
    if np.any(_float64(factor) != 1.0):
        raise UnsupportedError(name, "graded_spikes_factor", "graded spikes (factor != 1) have no "
                               "NIR field; NIR spikes are 1")
    for param, _ in module.named_parameters(recurse=False):
        if param not in NEURON_FIELDS_WITH_NIR_HOME:
            raise UnsupportedError(name, param, f"learnable '{param}' has no NIR field")


@register_converter(snn.Leaky)
def _leaky(name, module: snn.Leaky, in_shape, dt):
    _check_spiking_neuron(name, module)
    beta = _decay(name, "beta", module.beta, in_shape)
    threshold = _threshold(name, module, in_shape)
    zeros = np.zeros(in_shape)
    if np.all(beta == 1.0):  # no leak: tau would be infinite, NIR's IF is exact
        r = _nudge(np.full(in_shape, 1.0 / dt), lambda r: dt * r, np.ones(in_shape))
        return nir.IF(r=r, v_threshold=threshold, v_reset=zeros), in_shape
    if np.any(beta == 1.0):
        raise UnsupportedError(name, "beta", "mixes beta = 1 (no leak, NIR IF) with leaky neurons "
                               "(NIR LIF) in one layer")
    tau, r = _time_constant(beta, dt)
    return nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=threshold, v_reset=zeros), in_shape


@register_converter(snn.Synaptic)
def _synaptic(name, module: snn.Synaptic, in_shape, dt):
    _check_spiking_neuron(name, module)
    alpha = _decay(name, "alpha", module.alpha, in_shape)
    beta = _decay(name, "beta", module.beta, in_shape)
    for field_name, decay in (("alpha", alpha), ("beta", beta)):
        if np.any(decay == 1.0):
            raise UnsupportedError(name, field_name, f"{field_name} = 1 (no decay) gives an "
                                   "infinite time constant in NIR's CubaLIF")
    threshold = _threshold(name, module, in_shape)
    tau_syn, w_in = _time_constant(alpha, dt)
    tau_mem, r = _time_constant(beta, dt)
    # the consumer's input gain: (dt/tau_mem) * r * (dt/tau_syn) * w_in, made exactly 1
    w_in = _nudge(w_in, lambda w: (dt / tau_mem) * r * (dt / tau_syn) * w, np.ones(in_shape))
    zeros = np.zeros(in_shape)
    node = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=zeros,
                       v_threshold=threshold, v_reset=zeros, w_in=w_in)
    return node, in_shape


# --- convolution, BatchNorm folding, pooling --------------------------------------

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def fold_batchnorm(name: str, weight: np.ndarray, bias: np.ndarray | None, bn) -> tuple:
    """(w', b') of a Conv2d/Linear followed by BatchNorm in evaluation mode, in float64.

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


def conv_node(name: str, module: nn.Conv2d, in_shape, bn=None):
    """``nir.Conv2d`` (float64) for a torch Conv2d, with a following BatchNorm2d folded in."""
    if len(in_shape) != 3 or in_shape[0] != module.in_channels:
        raise UnsupportedError(name, "in_channels", f"expects input (C={module.in_channels}, H, W), "
                               f"gets {in_shape}")
    if module.padding_mode != "zeros":
        raise UnsupportedError(name, "padding_mode", f"padding_mode {module.padding_mode!r}: NIR "
                               "convolutions pad with zeros")
    weight = _float64(module.weight)
    bias = None if module.bias is None else _float64(module.bias)
    if bn is not None:
        weight, bias = fold_batchnorm(name, weight, bias, bn)
    if bias is None:
        bias = np.zeros(weight.shape[0])
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
    """A Conv2d/Linear and the BatchNorm right after it, as one folded node named ``name``."""
    if isinstance(module, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
        node, shape = conv_node(name, module, in_shape, bn)
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
                           "(BatchNorm2d) or Linear (BatchNorm1d): it is folded into that layer's "
                           "weights and bias at export")


@register_converter(nn.AvgPool2d)
def _avgpool(name, module: nn.AvgPool2d, in_shape, dt):
    if len(in_shape) != 3:
        raise UnsupportedError(name, "input", f"needs a (C, H, W) input, gets {in_shape}")
    if module.ceil_mode:
        raise UnsupportedError(name, "ceil_mode", "ceil_mode=True has no NIR equivalent")
    if module.divisor_override is not None:
        raise UnsupportedError(name, "divisor_override", "NIR's AvgPool2d divides by the kernel size")
    k = _pair(module.kernel_size)
    stride = _pair(module.stride if module.stride is not None else module.kernel_size)
    pad = _pair(module.padding)
    if any(pad) and not module.count_include_pad:
        raise UnsupportedError(name, "count_include_pad", "NIR's AvgPool2d counts padded pixels")
    c, h, w = in_shape
    out = tuple(int(v) for v in calculate_conv_output((h, w), pad, (1, 1), k, stride))
    node = nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(stride), padding=np.array(pad))
    return node, (c,) + out


# --- spikedeploy's neuron modules -------------------------------------------------

def _module_shape(name, module, in_shape) -> tuple:
    if tuple(module.shape) != tuple(in_shape):
        raise UnsupportedError(name, "shape", f"the neuron layer has shape {tuple(module.shape)}, "
                               f"its input has shape {tuple(in_shape)}")
    return tuple(in_shape)


def _unit_gain_r(shape, dt, gain=1.0) -> np.ndarray:
    """r with dt * r == gain exactly (IF and I nodes: g = dt * r)."""
    target = np.full(shape, float(gain))
    return _nudge(target / dt, lambda r: dt * r, target)


@register_converter(LIF, IF, IMPLIF)
def _lif_module(name, module: LIF, in_shape, dt):
    shape = _module_shape(name, module, in_shape)
    beta = _decay(name, "beta", module.beta, shape)
    threshold = _per_neuron(name, "threshold", module.threshold, shape)
    if not np.all(np.isfinite(threshold)):
        raise UnsupportedError(name, "threshold", "thresholds must be finite")
    v_init = _per_neuron(name, "v_init", module.v_init, shape)
    if not np.all(np.isfinite(v_init)):
        raise UnsupportedError(name, "v_init", "initial voltages must be finite")
    zeros = np.zeros(shape)
    metadata = {}
    if module.reset_mechanism == "subtract":
        metadata[RESET_MODE] = "subtract"
    elif module.reset_mechanism != "zero":
        raise UnsupportedError(name, "reset_mechanism", f"unknown reset {module.reset_mechanism!r}")
    if np.any(v_init != 0):
        metadata[V_INIT] = v_init
    if np.all(beta == 1.0):
        node = nir.IF(r=_unit_gain_r(shape, dt), v_threshold=threshold, v_reset=zeros,
                      metadata=metadata)
    elif np.any(beta == 1.0):
        raise UnsupportedError(name, "beta", "mixes beta = 1 (no leak, NIR IF) with leaky neurons "
                               "(NIR LIF) in one layer")
    else:
        tau, r = _time_constant(beta, dt)
        node = nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=threshold, v_reset=zeros,
                       metadata=metadata)
    return node, shape


@register_converter(Readout)
def _readout(name, module: Readout, in_shape, dt):
    shape = _module_shape(name, module, in_shape)
    beta = _decay(name, "beta", module.beta, shape)
    if np.all(beta == 1.0):
        return nir.I(r=_unit_gain_r(shape, dt)), shape
    if np.any(beta == 1.0):
        raise UnsupportedError(name, "beta", "mixes beta = 1 (NIR I) with leaky (NIR LI) readouts")
    tau, r = _time_constant(beta, dt)
    return nir.LI(tau=tau, r=r, v_leak=np.zeros(shape)), shape


@register_converter(TSM)
def _tsm(name, module: TSM, in_shape, dt):
    inner = convert_layer(name, module.neuron, in_shape, dt)
    if isinstance(inner, Block) or inner[0] is None:
        raise UnsupportedError(name, "neuron", f"TSM wraps {type(module.neuron).__name__}, "
                               "which is not a single neuron layer")
    node, shape = inner
    gains = _float64(module.gain).reshape(-1)
    if not np.all(np.isfinite(gains)):
        raise UnsupportedError(name, "gain", "TSM gains must be finite")
    node.metadata = dict(node.metadata or {}, **{TSM_GAIN: gains})
    return node, shape


# --- composite modules ------------------------------------------------------------

@register_converter(PreSpikeResidual)
def _pre_spike_residual(name, module: PreSpikeResidual, in_shape, dt):
    sn_name, conv_name = f"{name}_sn", f"{name}_conv"
    sn = convert_layer(sn_name, module.sn, in_shape, dt)
    if isinstance(sn, Block) or sn[0] is None:
        raise UnsupportedError(sn_name, "type", "the block's activation must be one neuron layer")
    conv, shape = conv_node(conv_name, module.conv, sn[1], module.bn)
    if tuple(shape) != tuple(in_shape):
        raise UnsupportedError(conv_name, "shape", f"the residual adds {shape} to {in_shape}")
    return Block({sn_name: sn[0], conv_name: conv}, [(INPUT, sn_name), (sn_name, conv_name)],
                 [conv_name, INPUT], tuple(shape))


def chain_block(name: str, chain, in_shape, dt) -> Block:
    """A composite given as an ordered list of (suffix, module): one node each, in a chain."""
    block = Block(shape=tuple(in_shape))
    previous = INPUT
    for suffix, sub in chain:
        node, block.shape = convert_layer(f"{name}_{suffix}", sub, block.shape, dt)
        if node is None:
            continue
        block.nodes[f"{name}_{suffix}"] = node
        block.edges.append((previous, f"{name}_{suffix}"))
        previous = f"{name}_{suffix}"
    block.outputs = [previous]
    return block


@register_converter(SpikingUGO)
def _spiking_ugo(name, module: SpikingUGO, in_shape, dt):
    return chain_block(name, module.nir_chain(), in_shape, dt)
