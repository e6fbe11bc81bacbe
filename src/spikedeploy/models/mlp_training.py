"""Training the reference MLP on digits with surrogate gradients.

Loss: cross-entropy of the output spike counts summed over the T steps (the
counts are the logits), the same quantity the readout uses. Optimiser: Adam.
Training runs in float32; accuracy is measured in float64, as every later
stage simulates the exported graph in float64.

Readout (everywhere in spikedeploy): class = argmax over output neurons of
the spike count over T steps, ties to the lowest index (``np.argmax``).

Deterministic given the seed: weights come from ``torch.manual_seed(seed)``,
batch order and training spikes from numpy's generator seeded with
``seed``; the test set is encoded with :func:`~spikedeploy.models.data.encode`
and the same seed, exactly as the other stages encode it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import SpikedeployError
from ..metadata import DEFAULT_DT, ENCODINGS
from ..progress import track
from ..readout import predictions
from .data import DigitsSplit, direct_encode, encode, load_digits_split, rate_encode
from .mlp import build_mlp
from .neurons import reset_state
from .run import run_snntorch


@dataclass
class TrainConfig:
    hidden: int = 128
    num_steps: int = 25
    encoding: str = "rate"
    beta: float = 0.9
    threshold: float = 1.0
    learn_beta: bool = False
    learn_threshold: bool = False
    shared_neuron_params: bool = False   # one beta and threshold per layer (Loihi's LIF)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 5e-3
    seed: int = 0
    dt: float = DEFAULT_DT
    train_subset: int | None = None   # use only the first n training samples (quick tests)

    def validate(self) -> None:
        if self.encoding not in ENCODINGS:
            raise SpikedeployError(f"unknown encoding {self.encoding!r}; choose one of {', '.join(ENCODINGS)}")
        for key in ("hidden", "num_steps", "epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise SpikedeployError(f"{key} must be a positive integer, got {getattr(self, key)}")
        if not (self.lr > 0 and self.dt > 0):
            raise SpikedeployError("lr and dt must be positive")


@dataclass
class TrainResult:
    model: nn.Sequential
    config: TrainConfig
    test_accuracy: float
    epoch_losses: list[float] = field(default_factory=list)   # mean training loss per epoch
    seconds: float = 0.0       # wall clock, data loading and evaluation included
    cpu_seconds: float = 0.0   # process CPU time (all threads): insensitive to other load


def evaluate(model: nn.Sequential, x: np.ndarray, y: np.ndarray, num_steps: int,
             encoding: str, seed: int) -> float:
    """Float64 snnTorch accuracy on images ``x`` (N, 64) with labels ``y``."""
    inputs = encode(x, num_steps, encoding, seed)
    output = run_snntorch(model, inputs)["output"]
    return float(np.mean(predictions(output, "spike_count") == np.asarray(y)))


def _batch_inputs(x: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
    if config.encoding == "rate":  # fresh spikes every batch and epoch
        inputs = rate_encode(x, config.num_steps, rng)
    else:
        inputs = direct_encode(x, config.num_steps)
    return torch.from_numpy(inputs.astype(np.float32))


def _forward_counts(model: nn.Sequential, inputs: torch.Tensor) -> torch.Tensor:
    """Output spike counts (N, classes) summed over the T steps of ``inputs``."""
    reset_state(model)
    counts = 0
    for t in range(inputs.shape[0]):
        counts = counts + model(inputs[t])
    return counts


def train(config: TrainConfig | None = None, data: DigitsSplit | None = None) -> TrainResult:
    """Train the MLP of :func:`~spikedeploy.models.mlp.build_mlp` on digits."""
    config = config or TrainConfig()
    config.validate()
    start, cpu_start = time.perf_counter(), time.process_time()
    data = data or load_digits_split(config.seed)
    x_train, y_train = data.x_train, data.y_train
    if config.train_subset is not None:
        x_train, y_train = x_train[:config.train_subset], y_train[:config.train_subset]

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_mlp(hidden=config.hidden, beta=config.beta, threshold=config.threshold,
                      learn_beta=config.learn_beta, learn_threshold=config.learn_threshold,
                      shared_neuron_params=config.shared_neuron_params)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_fn = nn.CrossEntropyLoss()
    labels = torch.from_numpy(y_train)

    epoch_losses = []
    model.train()
    for _ in track(range(config.epochs), "training", unit="epoch"):
        order = rng.permutation(len(x_train))
        losses = []
        for first in range(0, len(order), config.batch_size):
            idx = order[first:first + config.batch_size]
            counts = _forward_counts(model, _batch_inputs(x_train[idx], config, rng))
            loss = loss_fn(counts, labels[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))

    accuracy = evaluate(model, data.x_test, data.y_test, config.num_steps, config.encoding, config.seed)
    return TrainResult(model, config, accuracy, epoch_losses, time.perf_counter() - start,
                       time.process_time() - cpu_start)
