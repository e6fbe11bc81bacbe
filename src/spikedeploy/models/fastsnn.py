"""Fast-SNN: a quantised ReLU network converted to IF neurons whose spike counts equal it.

1. A ReLU MLP (``nn.Linear``/``nn.ReLU``/``nn.Flatten``), trained here
   (:func:`train_relu_mlp`) or read from an ONNX file
   (:func:`spikedeploy.models.relu_onnx.relu_mlp_from_onnx`: Gemm, MatMul+Add,
   Relu, Flatten, Identity/Dropout).
2. Activations quantised to b bits with a learned clipping value s per layer
   (:class:`QuantReLU`, initialised from the calibration data's activation
   percentile, then fine-tuned with a straight-through estimator)::

       Q(x) = s/L * clip(round(L x / s), 0, L),   L = 2^b - 1

3. Conversion (:func:`convert`): T = L steps, direct input; each quantised
   ReLU becomes an IF neuron with threshold s, initial voltage s/2 and
   subtractive reset; the next layer's weights are scaled by the previous s
   (a spike stands for s). With a constant input current I the IF neuron's
   count over T steps is round(T I / s) clipped to [0, T] -- the
   quantised activation, L/s * Q -- except at exact ties (x.5: spikes fire
   on v > s, so ties round down while ``torch.round`` rounds to even). The
   last Linear feeds a non-spiking integrator with weights and bias / T,
   whose voltage at the last step equals the ANN's logits on the quantised
   activations (readout ``last_step``).

The first IF layer receives a constant current, so its counts equal the
quantised activations exactly; a deeper layer receives spikes spread over
time and may differ (Fast-SNN's "sequential error"), which
:func:`count_check` measures per layer and reports.

Export: IF nodes with metadata ``spikedeploy.reset_mode`` = "subtract" and
``spikedeploy.v_init`` = s/2; the integrator is ``nir.I``.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpikedeployError
from .data import NUM_CLASSES, NUM_PIXELS
from .fit import Timer, Trained, accuracy, adam_epochs, base_config, digits
from .neurons import IF, Readout
from .relu_onnx import relu_mlp_from_onnx
from .run import run_snntorch

ARCHITECTURE = "fastsnn-mlp"
READOUT = "last_step"
TIE_TOLERANCE = 1e-9


class QuantReLU(nn.Module):
    """Q(x) = s/L * clip(round(L x / s), 0, L) with learned s; straight-through rounding."""

    def __init__(self, bits: int = 3, clip: float = 1.0):
        super().__init__()
        if not 1 <= int(bits) <= 16:
            raise SpikedeployError(f"bits must be in 1..16, got {bits}")
        self.bits = int(bits)
        self.clip = nn.Parameter(torch.tensor(float(clip)))

    @property
    def levels(self) -> int:
        return 2 ** self.bits - 1

    def forward(self, x):
        s = self.clip.abs()
        y = torch.clamp(x / s, 0.0, 1.0) * self.levels
        y = y + (torch.round(y) - y).detach()
        return y * s / self.levels

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def quantized_levels(z: np.ndarray, clip: float, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(clip(round(L z / s), 0, L), tie mask) in float64: the count an IF neuron should give."""
    levels = 2 ** bits - 1
    k = levels * np.asarray(z, np.float64) / clip
    frac = k - np.floor(k)
    ties = (np.abs(frac - 0.5) <= TIE_TOLERANCE * np.maximum(1.0, np.abs(k))) & (k > 0) & (k < levels)
    return np.clip(np.round(k), 0, levels), ties


# --- the ANN -------------------------------------------------------------------

def build_relu_mlp(sizes=(NUM_PIXELS, 64, NUM_CLASSES)) -> nn.Sequential:
    layers = OrderedDict()
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers[f"fc{i}"] = nn.Linear(a, b)
        if i < len(sizes) - 1:
            layers[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(layers)


def _ann_epochs(model, x, y, epochs, lr, batch_size, seed, parameters=None) -> list[float]:
    xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))

    def batch_loss(idx):
        idx = torch.from_numpy(idx)
        return F.cross_entropy(model(xt[idx]), yt[idx])

    return adam_epochs(model, len(x), batch_loss, epochs, batch_size, lr, seed, parameters)


def train_relu_mlp(model: nn.Sequential, x, y, epochs: int = 10, lr: float = 5e-3,
                   batch_size: int = 64, seed: int = 0) -> list[float]:
    """Plain cross-entropy training of the ANN; returns per-epoch losses."""
    return _ann_epochs(model, x, y, epochs, lr, batch_size, seed)


def ann_accuracy(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        logits = copy.deepcopy(model).double()(torch.from_numpy(np.asarray(x, np.float64)))
    return float((logits.argmax(1).numpy() == np.asarray(y)).mean())


def _check_relu_mlp(model: nn.Sequential) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Sequential):
        raise SpikedeployError(f"expected an nn.Sequential ReLU network, got {type(model).__name__}")
    kept = []
    for name, module in model.named_children():
        if isinstance(module, (nn.Identity, nn.Dropout)):
            continue
        if not isinstance(module, (nn.Linear, nn.ReLU, QuantReLU, nn.Flatten)):
            raise SpikedeployError(f"layer '{name}' ({type(module).__name__}): Fast-SNN conversion "
                                   "takes Linear, ReLU, Flatten only")
        kept.append((name, module))
    return kept


def quantize(model: nn.Sequential, bits: int, x_calib, percentile: float = 99.9) -> nn.Sequential:
    """A copy with every ReLU replaced by a QuantReLU, s = the activation percentile on ``x_calib``."""
    layers = OrderedDict()
    h = torch.from_numpy(np.asarray(x_calib, np.float32))
    with torch.no_grad():
        for name, module in _check_relu_mlp(model):
            module = copy.deepcopy(module)
            if isinstance(module, (nn.ReLU, QuantReLU)):
                positive = torch.relu(h).reshape(-1)
                positive = positive[positive > 0]
                clip = float(np.percentile(positive.numpy(), percentile)) if positive.numel() else 1.0
                module = QuantReLU(bits, max(clip, 1e-3))
                name = name.replace("relu", "q")
            h = module(h)
            layers[name] = module
    return nn.Sequential(layers)


def finetune_quantized(qmodel: nn.Sequential, x, y, epochs: int = 4, lr: float = 2e-3,
                       batch_size: int = 64, seed: int = 0) -> list[float]:
    """Quantisation-aware fine-tuning: weights and clipping values s together."""
    return _ann_epochs(qmodel, x, y, epochs, lr, batch_size, seed)


# --- conversion ---------------------------------------------------------------

def convert(qmodel: nn.Sequential) -> tuple[nn.Sequential, int]:
    """The quantised ReLU network as IF neurons over T = 2^b - 1 steps; returns (snn, T)."""
    layers = _check_relu_mlp(qmodel)
    quants = [m for _, m in layers if isinstance(m, QuantReLU)]
    if any(isinstance(m, nn.ReLU) for _, m in layers):
        raise SpikedeployError("quantise the ReLUs first (fastsnn.quantize)")
    if not quants or len({q.bits for q in quants}) != 1:
        raise SpikedeployError("conversion needs QuantReLUs with one bit width")
    steps = quants[0].levels
    snn = OrderedDict()
    scale = 1.0                         # what one spike of the previous layer stands for
    linears = [(n, m) for n, m in layers if isinstance(m, nn.Linear)]
    last_linear = linears[-1][0]
    if not isinstance(layers[-1][1], nn.Linear):
        raise SpikedeployError("the network must end with a Linear layer (the logits)")
    index = 0
    with torch.no_grad():
        for name, module in layers:
            if isinstance(module, nn.Flatten):
                snn[name] = nn.Flatten(module.start_dim, module.end_dim)
            elif isinstance(module, nn.Linear):
                fc = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
                weight = module.weight * scale
                bias = module.bias
                if name == last_linear:
                    weight = weight / steps
                    bias = None if bias is None else bias / steps
                fc.weight.copy_(weight)
                if bias is not None:
                    fc.bias.copy_(bias)
                snn[name] = fc
                size = module.out_features
            else:
                index += 1
                s = float(module.clip.detach().abs())
                snn[f"if{index}"] = IF(size, threshold=s, reset_mechanism="subtract", v_init=s / 2)
                scale = s
        snn["readout"] = Readout(linears[-1][1].out_features, beta=1.0)
    return nn.Sequential(snn), steps


def count_check(qmodel: nn.Sequential, snn: nn.Sequential, x: np.ndarray) -> list[dict]:
    """Per IF layer: do the spike counts over T equal the quantised activations?

    ``x``: inputs (N, features). For each layer: ``equal``/``unequal`` over
    (sample, neuron) pairs that are not exact rounding ties, and ``ties``
    (excluded, counted). ``vs_ann`` compares with the quantised ANN run on
    its own; ``vs_own_input`` with the rounding of the layer's actual summed
    input in the SNN (isolates the temporal error of that layer).
    """
    quants = [m for m in qmodel if isinstance(m, QuantReLU)]
    steps = quants[0].levels
    x = np.asarray(x, np.float64)
    inputs = np.broadcast_to(x, (steps,) + x.shape).copy()
    records = run_snntorch(snn, inputs)
    snn_layers = [(n, m) for n, m in snn.named_children()]
    report = []
    ann_h = torch.from_numpy(x)
    snn_h = torch.from_numpy(x)
    q_index = 0
    qlayers = [m for _, m in _check_relu_mlp(qmodel)]
    with torch.no_grad():
        ann = copy.deepcopy(nn.Sequential(*qlayers)).double()
        for module in ann:
            if isinstance(module, QuantReLU):
                name, neuron = [(n, m) for n, m in snn_layers if isinstance(m, IF)][q_index]
                q_index += 1
                s = float(module.clip.abs())
                counts = records[name].sum(axis=0)
                row = {"layer": name, "pairs": int(counts.size)}
                for key, pre in (("vs_ann", ann_h), ("vs_own_input", snn_h)):
                    expected, ties = quantized_levels(pre.numpy(), s, module.bits)
                    same = counts == expected
                    row[key] = {"ties": int(ties.sum()), "equal": int((same & ~ties).sum()),
                                "unequal": int((~same & ~ties).sum())}
                report.append(row)
                ann_h = module(ann_h)
                snn_h = torch.from_numpy(counts * s / steps)     # what the SNN layer passed on
            else:
                ann_h = module(ann_h)
                snn_h = module(snn_h)
    return report


# --- checkpoints and the recipe -------------------------------------------------------

def build_converted(sizes, num_steps: int) -> nn.Sequential:
    """An untrained converted network of these sizes (thresholds come from the checkpoint)."""
    layers = OrderedDict()
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers[f"fc{i}"] = nn.Linear(a, b)
        if i < len(sizes) - 1:
            layers[f"if{i}"] = IF(b, threshold=1.0, reset_mechanism="subtract", v_init=0.5)
    layers["readout"] = Readout(sizes[-1], beta=1.0)
    return nn.Sequential(layers)


def _from_config(config: dict) -> nn.Sequential:
    sizes = config["sizes"]
    if not (isinstance(sizes, list) and len(sizes) >= 3 and all(isinstance(s, int) and s > 0 for s in sizes)):
        raise SpikedeployError(f"'sizes' must list at least 3 positive layer sizes, got {sizes!r}")
    return build_converted(sizes, config["num_steps"])


ARCHITECTURES = {ARCHITECTURE: (_from_config, {"sizes": (list,), "bits": (int,)})}


def train_fastsnn(bits: int = 3, hidden=64, epochs: int = 10, qat_epochs: int = 4,
                  onnx_path=None, seed: int = 0, train_subset: int | None = None,
                  lr: float = 5e-3, batch_size: int = 64) -> Trained:
    """Train (or read from ONNX) a ReLU MLP, quantise it to ``bits``, convert it to IF neurons."""
    timer = Timer()
    torch.manual_seed(seed)
    data = digits(seed, train_subset)
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    if onnx_path is not None:
        ann = relu_mlp_from_onnx(onnx_path)
        ann_losses = []
        source = str(onnx_path)
    else:
        ann = build_relu_mlp([NUM_PIXELS, *hidden, NUM_CLASSES])
        ann_losses = train_relu_mlp(ann, data.x_train, data.y_train, epochs, lr, batch_size, seed)
        source = "trained"
    linears = [m for m in ann if isinstance(m, nn.Linear)]
    if not linears:
        raise SpikedeployError("the ReLU network has no Linear layer")
    sizes = [linears[0].in_features] + [m.out_features for m in linears]
    if sizes[0] != NUM_PIXELS or sizes[-1] != NUM_CLASSES:
        raise SpikedeployError(f"the digits need a network 64 -> ... -> 10; this one is {sizes}")
    ann_acc = ann_accuracy(ann, data.x_test, data.y_test)
    qmodel = quantize(ann, bits, data.x_train)
    qat_losses = finetune_quantized(qmodel, data.x_train, data.y_train, qat_epochs, seed=seed) \
        if qat_epochs > 0 else []
    q_acc = ann_accuracy(qmodel, data.x_test, data.y_test)
    snn, steps = convert(qmodel)
    snn_acc = accuracy(snn, data.x_test, data.y_test, steps, (NUM_PIXELS,), READOUT)
    check = count_check(qmodel, snn, data.x_test)
    config = base_config(ARCHITECTURE, steps, (NUM_PIXELS,), READOUT, seed, sizes=sizes,
                         bits=int(bits), test_accuracy=snn_acc, ann_source=source,
                         ann_test_accuracy=ann_acc, quantized_test_accuracy=q_acc,
                         clips=[float(m.clip.detach()) for m in qmodel if isinstance(m, QuantReLU)],
                         count_check=check,
                         training={"epochs": epochs if onnx_path is None else 0,
                                   "qat_epochs": qat_epochs, "lr": lr, "batch_size": batch_size,
                                   "train_subset": train_subset, "ann_epoch_losses": ann_losses,
                                   "qat_epoch_losses": qat_losses, **timer.info()})
    return Trained(snn, config)
