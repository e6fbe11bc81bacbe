"""The deploy layer's calls into the model stage: training to a checkpoint, snnTorch runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..models import TrainConfig, load_checkpoint, run_snntorch, save_checkpoint, train, training_config


def train_and_save(out, hidden: int = 128, num_steps: int = 25, encoding: str = "rate",
                   epochs: int | None = None, seed: int = 0, progress=print) -> dict:
    """Train the digits MLP and write its checkpoint; returns the checkpoint's config."""
    config = TrainConfig(hidden=hidden, num_steps=num_steps, encoding=encoding, seed=seed,
                         **({} if epochs is None else {"epochs": epochs}))
    progress(f"hidden={config.hidden}, T={config.num_steps}, {config.encoding} encoding, "
             f"{config.epochs} epochs, seed {config.seed}")
    result = train(config)
    cfg = training_config(result)
    save_checkpoint(Path(out), result.model, cfg)
    progress(f"trained in {result.seconds:.1f} s; losses per epoch "
             + ", ".join(f"{loss:.3f}" for loss in result.epoch_losses))
    return cfg


def checkpoint_records(checkpoint, x: np.ndarray) -> dict[str, np.ndarray]:
    """Spikes of every layer of the checkpoint's snnTorch model (float64), flat per sample."""
    spikes = run_snntorch(load_checkpoint(checkpoint).model, x)
    return {name: s.reshape(s.shape[0], s.shape[1], -1) for name, s in spikes.items()}
