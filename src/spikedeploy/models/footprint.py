"""Memory a training run needs, estimated before anything is built.

* A training run's options are sized from the recipes' layer shapes: the
  parameters with their gradients and two Adam moments, and the neuron
  states autograd keeps per step for the largest batch a recipe runs.
  Deliberately generous: it exists to refuse absurd sizes in one line,
  not to predict the peak.

What cannot be sized beforehand (a checkpoint's model rebuilt from its
config.json) runs under :func:`spikedeploy.limits.bounded_allocation`.
"""
from __future__ import annotations

from ..limits import check_memory

FLOAT_BYTES = 4                 # models train and load in float32
LARGEST_BATCH = 360             # the digits test split, scored in one batch
TENSORS_PER_NEURON_STEP = 4     # membrane, spike, surrogate input, gradient
TENSORS_PER_PARAMETER = 4       # weight, gradient, Adam's two moments
INPUTS, CLASSES = 64, 10        # 8x8 digits, 10 classes


def _defaults(options: dict) -> tuple[int, int, int, int]:
    hidden = int(options.get("hidden") or 128)
    bits = int(options.get("bits") or 3)
    steps = int(options.get("num_steps") or (2 ** bits - 1 if "bits" in options else 32))
    channels = int(options.get("channels") or 16)
    blocks = int(options.get("blocks") or 2)
    return hidden, steps, channels, blocks


def _inputs(options: dict) -> tuple[int, int, int]:
    """(values per step's input, classes, largest batch): digits, or a dataset's frames."""
    if options.get("dataset") is None:
        return INPUTS, CLASSES, LARGEST_BATCH
    from .event_data import dataset_info, frame_shape
    name, _, frames = options["dataset"]
    info = dataset_info(name)
    size = 1
    for s in frame_shape(info, frames):
        size *= int(s)
    return size, info.num_classes, max(64, int(options.get("batch_size") or 32))


def training_bytes(recipe: str, options: dict) -> float:
    """A generous estimate of the memory ``train --model recipe`` needs with ``options``."""
    hidden, steps, channels, blocks = _defaults(options)
    inputs, classes, batch = _inputs(options)
    if options.get("dataset") is not None and options["dataset"][2].time_bins:
        steps = int(options["dataset"][2].time_bins)
    if recipe in ("sdm-cnn", "sdm-denoiser", "snn-cnn"):
        maps = inputs                       # feature maps as large as the input, padded
        neurons = channels * maps * (2 * blocks + 2)
        params = (2 * blocks + 1) * channels * channels * 9 + channels * maps * classes
    else:                                   # MLP-like, recurrent: an all-to-all hidden layer
        neurons = 2 * hidden + inputs + classes
        params = inputs * hidden + hidden * hidden + hidden * classes
    return FLOAT_BYTES * (TENSORS_PER_PARAMETER * params +
                          TENSORS_PER_NEURON_STEP * batch * steps * neurons)


def check_training(recipe: str, options: dict) -> None:
    check_memory(f"training {recipe} with these sizes", training_bytes(recipe, options))
