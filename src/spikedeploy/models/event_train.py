"""Training the mlp and snn-cnn recipes on a tonic dataset's event frames.

The same models, loss and checkpoint format as on digits (spike-count
cross-entropy, Adam, float32; the test accuracy in float64 with
:func:`~spikedeploy.models.run.run_snntorch`), with the inputs built batch
by batch from the recordings (:class:`~spikedeploy.models.event_data.EventSplit`):
memory holds one batch of frames, never the dataset. The frames are the
input current at every step (no encoder); config.json records the dataset
and its frame options, and the exported graph carries them as metadata.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import SpikedeployError
from ..progress import track
from ..readout import predictions
from .event_data import EventSplit, FrameOptions, spread_indices
from .fit import Timer, Trained, adam_epochs, base_config, run_steps
from .losses import count_loss
from .run import run_snntorch

EVENT_ARCHITECTURES = ("mlp", "snn-cnn")
EVAL_BATCH = 64


def train_on_events(architecture: str, dataset: tuple, hidden: int = 128, channels=(8, 16),
                    num_steps: int | None = None, epochs: int = 4, batch_size: int = 32,
                    lr: float = 2e-3, seed: int = 0, train_subset: int | None = None,
                    shared_neuron_params: bool = False) -> Trained:
    """Train ``architecture`` (mlp or snn-cnn) on ``dataset`` = (name, data dir,
    :class:`FrameOptions`): its training split (``train_subset`` recordings spread over it),
    then score its test split where one is present."""
    name, data_dir, frames = dataset
    if architecture not in EVENT_ARCHITECTURES:
        raise SpikedeployError(f"model {architecture!r} trains on digits only; on "
                               f"{name} train {' or '.join(EVENT_ARCHITECTURES)}")
    frames = frames if isinstance(frames, FrameOptions) else FrameOptions(**frames)
    steps = _steps(frames, num_steps)
    timer = Timer()
    train = EventSplit(name, data_dir, True, frames)
    test = _test_split(name, data_dir, frames)
    classes, shape = train.info.num_classes, train.frame_shape
    torch.manual_seed(seed)
    model, input_shape, extra = _build(architecture, shape, classes, hidden, channels, seed,
                                       shared_neuron_params, name)
    indices = spread_indices(len(train), train_subset)
    if len(indices) == 0:
        raise SpikedeployError(f"{name}: the training split under {data_dir} is empty")

    def batch_loss(batch):
        x, y = train.frames(indices[batch], steps)
        inputs = torch.from_numpy(x.reshape((steps, len(batch)) + input_shape).astype(np.float32))
        return count_loss(run_steps(model, inputs), torch.from_numpy(y))

    losses = adam_epochs(model, len(indices), batch_loss, epochs, batch_size, lr, seed)
    accuracy = None if test is None else _accuracy(model, test, steps, input_shape)
    config = base_config(architecture, steps, input_shape, "spike_count", seed,
                         dataset=name, frames=frames.to_dict(), num_outputs=classes,
                         shared_neuron_params=bool(shared_neuron_params), epochs=epochs,
                         batch_size=batch_size, train_samples=int(len(indices)),
                         epoch_losses=losses, test_accuracy=accuracy,
                         test_samples=None if test is None else len(test), **extra,
                         **timer.info())
    return Trained(model, config)


def _steps(frames: FrameOptions, num_steps: int | None) -> int:
    if frames.time_bins is not None:
        if num_steps is not None and num_steps != frames.time_bins:
            raise SpikedeployError(f"--steps {num_steps} contradicts --time-bins "
                                   f"{frames.time_bins} (the frames are the time steps)")
        return frames.time_bins
    if num_steps is None:
        raise SpikedeployError("training on --time-window frames needs --steps T (a batch "
                               "needs one length; recordings are padded or cut to it)")
    return num_steps


def _test_split(name, data_dir, frames):
    try:
        return EventSplit(name, data_dir, False, frames)
    except SpikedeployError as exc:
        if "no test split" not in str(exc):
            raise
        return None


def _build(architecture, shape, classes, hidden, channels, seed, shared, name):
    if architecture == "mlp":
        from .mlp import build_mlp
        size = int(np.prod(shape))
        model = build_mlp(num_inputs=size, hidden=hidden, num_outputs=classes,
                          shared_neuron_params=shared)
        return model, (size,), {"num_inputs": size, "hidden": int(hidden), "beta": 0.9,
                                "threshold": 1.0, "reset_mechanism": "zero"}
    if len(shape) != 3:
        raise SpikedeployError(f"snn-cnn needs camera frames (C, H, W); {name} frames are "
                               f"{shape}: train mlp")
    if shape[1] % 2 or shape[2] % 2:
        raise SpikedeployError(f"snn-cnn pools by 2: frames {shape} need an even height and "
                               "width (choose another --downsample)")
    from .cnn import build_cnn
    model = build_cnn(channels, classes, shape, seed, shared)
    return model, tuple(shape), {"channels": [int(c) for c in channels]}


def _accuracy(model, split: EventSplit, steps: int, input_shape) -> float:
    """float64 snnTorch accuracy over the whole split, a batch of recordings at a time."""
    correct = 0
    for first in track(range(0, len(split), EVAL_BATCH), "testing", unit="batch"):
        idx = np.arange(first, min(first + EVAL_BATCH, len(split)))
        x, y = split.frames(idx, steps)
        out = run_snntorch(model, x.reshape((steps, len(idx)) + input_shape))["output"]
        correct += int(np.sum(predictions(out, "spike_count") == y))
    return correct / len(split)

