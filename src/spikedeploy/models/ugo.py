"""STA's universal group operators (UGO): small ReLU MLPs for non-linear functions, as IF neurons.

A UGO approximates one scalar function f on a domain [lo, hi] with a ReLU
MLP 1 -> N -> 1, fitted on synthetic inputs (:func:`fit_ugo`):

    f(x) ~ sum_j a_j ReLU(w_j x + b_j) + c

Converted to spikes over T steps (:class:`SpikingUGO`), hidden unit j
becomes an IF neuron with its own threshold theta_j (the unit's largest
activation on the domain), initial voltage theta_j / 2 and subtractive
reset; with the constant input current w_j x + b_j its spike count k_j over
T steps is round(T * ReLU(w_j x + b_j) / theta_j) clipped to [0, T] (ties
round down: spikes fire on v > threshold). The output layer has weights
a_j theta_j / T and bias c / T into a non-spiking integrator, whose
voltage at the last step is sum_j a_j theta_j k_j / T + c: the ANN's value
up to sum_j |a_j| theta_j / (2T) (:func:`error_vs_steps` measures it).

Functions (:data:`FUNCTIONS`): ``gelu`` on [-4, 4], ``exp`` on [-4, 0]
(softmax's range after subtracting the max), ``recip`` (1/x) on [0.25, 4],
``rsqrt`` (1/sqrt(x), LayerNorm's) on [0.25, 4].

A SpikingUGO acts elementwise on ``features`` inputs and is usable as a
layer of an ``nn.Sequential``; it exports to NIR (Affine -> IF -> Affine ->
I, subtractive reset and v_init as node metadata) and reads out on the last
step (graph readout ``last_step``).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import SpikedeployError
from .neurons import IF, Readout


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class UGOFunction:
    name: str
    fn: object          # torch -> torch
    domain: tuple


FUNCTIONS: dict[str, UGOFunction] = {
    "gelu": UGOFunction("gelu", _gelu, (-4.0, 4.0)),
    "exp": UGOFunction("exp", torch.exp, (-4.0, 0.0)),
    "recip": UGOFunction("recip", lambda x: 1.0 / x, (0.25, 4.0)),
    "rsqrt": UGOFunction("rsqrt", torch.rsqrt, (0.25, 4.0)),
}


def function(name: str) -> UGOFunction:
    if name not in FUNCTIONS:
        raise SpikedeployError(f"unknown UGO function {name!r} (known: {', '.join(FUNCTIONS)})")
    return FUNCTIONS[name]


class UGO(nn.Module):
    """The ANN: elementwise ReLU MLP 1 -> hidden -> 1."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.fc1 = nn.Linear(1, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    @property
    def hidden(self) -> int:
        return self.fc1.out_features

    def forward(self, x):
        flat = x.reshape(-1, 1)
        return self.fc2(torch.relu(self.fc1(flat))).reshape(x.shape)


def _arc_length_knots(spec: UGOFunction, count: int) -> torch.Tensor:
    """Knots evenly spaced along the curve (both axes scaled to [0, 1]): dense where f bends."""
    lo, hi = spec.domain
    x = torch.linspace(lo, hi, 4001, dtype=torch.float64)
    y = spec.fn(x)
    dx = torch.diff((x - lo) / (hi - lo))
    dy = torch.diff((y - y.min()) / (y.max() - y.min()))
    arc = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(torch.hypot(dx, dy), 0)])
    targets = arc[-1] * (torch.arange(count, dtype=torch.float64) + 0.5) / count
    index = torch.searchsorted(arc, targets).clamp(max=len(x) - 1)
    return x[index].float()


def fit_ugo(name: str, hidden: int = 32, steps: int = 2000, samples: int = 4096, lr: float = 1e-2,
            seed: int = 0) -> tuple[UGO, list[float]]:
    """Fit a UGO to ``name`` on its domain; returns (model, loss every 100 steps).

    Hidden units start as ramps with knots spread evenly along the curve
    (dense where f bends; half rising, half falling), then Adam fits all
    weights on uniform samples (mean squared error, a fresh batch every step).
    """
    spec = function(name)
    lo, hi = spec.domain
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = UGO(hidden)
    with torch.no_grad():
        sign = torch.where(torch.arange(hidden) % 2 == 0, 1.0, -1.0)
        knots = _arc_length_knots(spec, hidden)
        model.fc1.weight.copy_(sign.reshape(-1, 1))
        model.fc1.bias.copy_(-sign * knots)
        model.fc2.weight.normal_(0.0, 0.1, generator=gen)
        model.fc2.bias.zero_()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    losses = []
    for step in range(steps):
        x = lo + (hi - lo) * torch.rand(samples, 1, generator=gen)
        loss = torch.mean((model(x) - spec.fn(x)) ** 2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        scheduler.step()
        if step % 100 == 0 or step == steps - 1:
            losses.append(loss.item())
    return model, losses


def hidden_thresholds(ugo: UGO, domain) -> torch.Tensor:
    """theta_j: each hidden unit's largest activation on the domain (1 for units dead there)."""
    lo, hi = domain
    w, b = ugo.fc1.weight.detach().reshape(-1), ugo.fc1.bias.detach()
    peak = torch.maximum(torch.relu(w * lo + b), torch.relu(w * hi + b))
    return torch.where(peak > 0, peak, torch.ones_like(peak))


class SpikingUGO(nn.Module):
    """A UGO as IF neurons over ``num_steps`` steps, elementwise on ``features`` inputs.

    Children (NIR nodes ``<name>_<child>``): ``fc_in`` (Linear, features ->
    features*hidden), ``sn`` (IF: per-neuron thresholds, subtractive reset,
    v_init = threshold/2), ``fc_out`` (Linear, features*hidden -> features),
    ``acc`` (non-spiking integrator). The output at the last step is the
    approximation; earlier steps hold partial sums.
    """

    layer_prefix = "ugo"

    def __init__(self, features: int, hidden: int, num_steps: int):
        super().__init__()
        size = features * hidden
        self.features, self.hidden, self.num_steps = int(features), int(hidden), int(num_steps)
        self.fc_in = nn.Linear(features, size)
        self.sn = IF(size, threshold=1.0, reset_mechanism="subtract", v_init=0.5)
        self.fc_out = nn.Linear(size, features)
        self.acc = Readout(features, beta=1.0)

    @classmethod
    def from_ugo(cls, ugo: UGO, domain, features: int = 1, num_steps: int = 32) -> "SpikingUGO":
        if int(num_steps) < 1:
            raise SpikedeployError(f"num_steps must be positive, got {num_steps}")
        spiking = cls(features, ugo.hidden, num_steps)
        theta = hidden_thresholds(ugo, domain)
        w_in, b_in = ugo.fc1.weight.detach().reshape(-1), ugo.fc1.bias.detach()
        a, c = ugo.fc2.weight.detach().reshape(-1), ugo.fc2.bias.detach()
        n = ugo.hidden
        with torch.no_grad():
            spiking.fc_in.weight.zero_()
            spiking.fc_out.weight.zero_()
            for d in range(features):
                block = slice(d * n, (d + 1) * n)
                spiking.fc_in.weight[block, d] = w_in
                spiking.fc_in.bias[block] = b_in
                spiking.fc_out.weight[d, block] = a * theta / num_steps
                spiking.fc_out.bias[d] = c[0] / num_steps
            spiking.sn.threshold.copy_(theta.repeat(features))
            spiking.sn.v_init.copy_(theta.repeat(features) / 2)
        return spiking

    def forward(self, x):
        return self.acc(self.fc_out(self.sn(self.fc_in(x))))

    def nir_chain(self) -> list[tuple[str, nn.Module]]:
        return [("fc_in", self.fc_in), ("sn", self.sn), ("fc_out", self.fc_out), ("acc", self.acc)]

    def spiking_layers(self) -> dict[str, nn.Module]:
        return {"sn": self.sn, "acc": self.acc}


def grid_inputs(name: str, n: int, num_steps: int, features: int = 1) -> np.ndarray:
    """(T, n, features) direct inputs: n points evenly over the domain (interior), repeated over T."""
    lo, hi = function(name).domain
    x = lo + (hi - lo) * (np.arange(n * features) + 0.5) / (n * features)
    x = x.reshape(n, features)
    return np.broadcast_to(x, (int(num_steps), n, features)).copy()


def error_vs_steps(ugo: UGO, name: str, steps=(8, 16, 32, 64, 128), n: int = 512) -> list[dict]:
    """Approximation error of the spiking UGO for each T, against f and against the ANN.

    Each row: T, max and mean |SNN - f|, max |SNN - ANN|, and the ANN's own
    max |ANN - f| (the floor T cannot beat). float64, snnTorch run.
    """
    from .run import run_snntorch

    spec = function(name)
    rows = []
    for T in steps:
        x = grid_inputs(name, n, T)
        model = nn.Sequential(SpikingUGO.from_ugo(ugo, spec.domain, 1, T))
        y_snn = run_snntorch(model, x)["output"][-1].reshape(-1)
        xt = torch.from_numpy(x[0].reshape(-1))
        with torch.no_grad():
            y_ann = copy.deepcopy(ugo).double()(xt).numpy()
            y_true = spec.fn(xt).numpy()
        rows.append({"steps": int(T),
                     "max_abs_error": float(np.abs(y_snn - y_true).max()),
                     "mean_abs_error": float(np.abs(y_snn - y_true).mean()),
                     "max_abs_error_vs_ann": float(np.abs(y_snn - y_ann).max()),
                     "ann_max_abs_error": float(np.abs(y_ann - y_true).max())})
    return rows


# --- checkpoints and the recipe -------------------------------------------------------

ARCHITECTURE = "ugo"
READOUT = "last_step"
ERROR_STEPS = (8, 16, 32, 64, 128)


def _from_config(config: dict) -> nn.Sequential:
    from collections import OrderedDict
    function(config["function"])
    return nn.Sequential(OrderedDict(
        ugo=SpikingUGO(config["features"], config["hidden"], config["num_steps"])))


ARCHITECTURES = {ARCHITECTURE: (_from_config, {"function": (str,), "hidden": (int,),
                                               "features": (int,)})}


def train_ugo(name: str, hidden: int = 32, num_steps: int = 32, fit_steps: int = 2000,
              features: int = 1, seed: int = 0, samples: int = 64):
    """Fit the UGO of ``name``, convert it over ``num_steps`` steps, report its error vs T.

    Returns a :class:`~spikedeploy.models.fit.Trained` whose ``arrays`` hold
    ``inputs`` (T, samples, features): points over the domain, for
    ``spikedeploy verify --input``.
    """
    from collections import OrderedDict

    from .fit import Timer, Trained, base_config

    timer = Timer()
    spec = function(name)
    ugo, losses = fit_ugo(name, hidden=hidden, steps=fit_steps, seed=seed)
    model = nn.Sequential(OrderedDict(ugo=SpikingUGO.from_ugo(ugo, spec.domain, features, num_steps)))
    errors = error_vs_steps(ugo, name, sorted(set(ERROR_STEPS) | {int(num_steps)}))
    at_t = next(row for row in errors if row["steps"] == int(num_steps))
    config = base_config(ARCHITECTURE, num_steps, (features,), READOUT, seed,
                         dataset=f"synthetic:ugo-{name}", function=name, hidden=hidden,
                         features=features, domain=list(spec.domain),
                         max_abs_error=at_t["max_abs_error"], error_vs_steps=errors,
                         training={"fit_steps": fit_steps, "loss_every_100_steps": losses,
                                   **timer.info()})
    return Trained(model, config, {"inputs": grid_inputs(name, samples, num_steps, features)})
