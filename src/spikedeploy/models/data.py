"""The digits data set and the spike encoders every stage shares.

Data: scikit-learn's bundled 8x8 digits (1797 images, 10 classes; no
download), pixels scaled from 0..16 to [0, 1], split 80/20 stratified with a
fixed seed.

Encoders turn images x of shape (N, 64) into time-major inputs (T, N, 64):

* ``rate``:   x_t[n, i] = 1 if U < x[n, i] else 0, with U ~ Uniform[0, 1)
              drawn independently per step, sample and pixel (Bernoulli
              spikes with p = pixel value).
* ``direct``: x_t[n, i] = x[n, i] at every step (the analog value is the
              input current).

:func:`encode` is the one entry point the other stages call. It is
deterministic: the same (x, num_steps, encoding, seed) gives the same array
on every machine (numpy's PCG64 generator, independent of torch).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpikedeployError
from ..metadata import ENCODINGS

NUM_PIXELS = 64
NUM_CLASSES = 10
PIXEL_MAX = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """Images as float64 (N, 64) in [0, 1] and labels as int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(seed: int = 0, test_size: float = 0.2) -> DigitsSplit:
    """The digits data set, split by ``seed`` (stratified, so every class is in both)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / PIXEL_MAX).astype(np.float64)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    return DigitsSplit(x_train, y_train, x_test, y_test)


def rate_encode(x: np.ndarray, num_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli spikes with p = x, shape (T, N, features), float64 0/1."""
    x = np.asarray(x, dtype=np.float64)
    draws = rng.random((num_steps,) + x.shape)
    return (draws < x).astype(np.float64)


def direct_encode(x: np.ndarray, num_steps: int) -> np.ndarray:
    """The analog input repeated at every step, shape (T, N, features), float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.broadcast_to(x, (num_steps,) + x.shape).copy()


def encode(x: np.ndarray, num_steps: int, encoding: str = "rate", seed: int = 0) -> np.ndarray:
    """Encode images (N, features) as float64 inputs (T, N, features); deterministic in ``seed``."""
    if encoding not in ENCODINGS:
        raise SpikedeployError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    if int(num_steps) < 1:
        raise SpikedeployError(f"num_steps must be a positive integer, got {num_steps}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise SpikedeployError(f"expected images of shape (N, features), got {x.shape}")
    if encoding == "rate":
        return rate_encode(x, int(num_steps), np.random.default_rng(seed))
    return direct_encode(x, int(num_steps))
