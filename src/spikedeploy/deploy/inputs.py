"""Input data for a graph: digits test samples encoded as the graph says, a tonic dataset's
event frames, or a user's .npy."""
from __future__ import annotations

import sys

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SpikedeployError
from ..limits import check_memory
from ..ir.ops import Program
from ..metadata import (DATASET, DEFAULT_ENCODING, DEFAULT_NUM_STEPS, DEFAULT_SEED, ENCODING,
                        FRAMES, NUM_STEPS, SEED, metadata_value)

if TYPE_CHECKING:      # the models package imports torch: loaded only for a dataset run
    from ..models.event_data import FrameOptions


@dataclass
class InputBatch:
    x: np.ndarray                 # (T, N, *input_shape)
    labels: np.ndarray | None
    input_scale: float            # integer units per unit of x in fixed precision
    source: str
    origin: dict = field(default_factory=dict)   # dataset, split, frames: what reports record

    def shard(self, start: int, stop: int) -> "InputBatch":
        """Samples ``start:stop`` (the same input scale: quantisation is the whole run's)."""
        return InputBatch(self.x[:, start:stop],
                          None if self.labels is None else self.labels[start:stop],
                          self.input_scale, f"{self.source}, samples {start}..{stop - 1}",
                          self.origin)


@dataclass(frozen=True)
class DatasetRequest:
    """--dataset tonic:NAME with --data-dir and how its events become frames."""

    name: str
    data_dir: str | None
    frames: "FrameOptions"


def integer_scale(x: np.ndarray) -> float:
    """Fixed-point scale of graded inputs: exact for spikes and k/2^b levels, else 8-bit."""
    if np.all((x == 0) | (x == 1)):
        return 1.0
    for bits in range(0, 9):
        scaled = x * (1 << bits)
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-9):
            return float(1 << bits)
    peak = float(np.abs(x).max()) or 1.0
    return 255.0 / peak


def resolve_inputs(program: Program, samples: int | None, input_path: str | None,
                   labels_path: str | None, steps: int | None, seed: int | None,
                   default_samples: int, dataset: DatasetRequest | None = None) -> InputBatch:
    if steps is not None and steps <= 0:
        raise SpikedeployError(f"--steps must be positive, got {steps}")
    if seed is not None and seed < 0:
        raise SpikedeployError(f"--seed must be >= 0, got {seed}")
    if labels_path is not None and input_path is None:
        raise SpikedeployError("--labels goes with --input (the digits bring their own labels)")
    if input_path is not None:
        batch = _user_inputs(program, input_path, labels_path)
        if steps is not None and steps != batch.x.shape[0]:
            raise SpikedeployError(f"--steps {steps} contradicts {input_path}, which holds "
                                   f"{batch.x.shape[0]} steps")
        return batch
    if dataset is not None:
        if samples is not None and samples <= 0:
            raise SpikedeployError("--samples must be positive")
        return dataset_inputs(program, dataset, samples, steps, default_samples)
    from ..models.data import encode, load_digits_split   # digits: the built-in dataset
    op = program.ops[program.inputs[0]]
    trained_on = str(program.meta(DATASET, "digits"))
    if trained_on.startswith("tonic:"):
        raise SpikedeployError(f"this graph was trained on {trained_on}: pass --dataset "
                               f"{trained_on} --data-dir DIR (or --input X.npy)")
    if op.size != 64:
        raise SpikedeployError(
            f"the built-in digits inputs have 64 values, this graph's input has shape {op.shape}: "
            "pass --input X.npy")
    n = default_samples if samples is None else samples
    if n <= 0:
        raise SpikedeployError("--samples must be positive")
    encoding = program.meta(ENCODING, DEFAULT_ENCODING)
    num_steps = steps or int(program.meta(NUM_STEPS, DEFAULT_NUM_STEPS))
    seed = int(program.meta(SEED, DEFAULT_SEED)) if seed is None else seed
    split = load_digits_split(seed=int(program.meta(SEED, DEFAULT_SEED)))
    if n > len(split.x_test):
        print(f"spikedeploy: warning: --samples {n}: the digits test split has "
              f"{len(split.x_test)} samples; running all {len(split.x_test)}", file=sys.stderr)
    x_test, y_test = split.x_test[:n], split.y_test[:n]
    x = encode(x_test, num_steps, encoding, seed=seed)   # as the trainer encodes its test set
    scale = digits_input_scale(encoding)
    return InputBatch(x.reshape((num_steps, len(x_test)) + tuple(op.shape)), y_test, scale,
                      f"digits test split, {len(x_test)} samples, {encoding} encoding, T={num_steps}",
                      {"dataset": "digits", "split": "test", "samples": len(x_test),
                       "encoding": encoding, "steps": num_steps, "seed": seed})


def dataset_inputs(program: Program, request: DatasetRequest, samples: int | None,
                   steps: int | None, default_samples: int = 100) -> InputBatch:
    """The test split of a tonic dataset as frames: ``samples`` (default ``default_samples``)
    recordings spread evenly over the split (its files are listed class by class), time bins
    or windows as requested."""
    from ..models.event_data import EventSplit, spread_indices
    frames = request.frames
    if frames.time_bins is not None and steps is not None and steps != frames.time_bins:
        raise SpikedeployError(f"--steps {steps} contradicts --time-bins {frames.time_bins} "
                               "(the frames are the time steps)")
    trained_on = str(program.meta(DATASET, "digits"))
    if trained_on.startswith("tonic:") and trained_on != request.name:
        raise SpikedeployError(f"this graph was trained on {trained_on}, not {request.name}")
    # time windows: as many as the graph's T (what it was trained on) unless --steps
    num_steps = frames.time_bins or steps or program.meta(NUM_STEPS)
    if num_steps is None:
        raise SpikedeployError("--time-window needs --steps T (the graph records no T)")
    num_steps = int(num_steps)
    split = EventSplit(request.name, request.data_dir, False, frames)
    op = program.ops[program.inputs[0]]
    if int(np.prod(split.frame_shape)) != op.size:
        raise SpikedeployError(
            f"{request.name} frames are {split.frame_shape} ({frames.describe()}), the graph's "
            f"input is {op.shape}: train the graph on these frames (or change --downsample)")
    indices = spread_indices(len(split), default_samples if samples is None else samples)
    if len(indices) == 0:
        raise SpikedeployError(f"{request.name}: the test split under {request.data_dir} is empty")
    if samples is not None and samples > len(indices):
        print(f"spikedeploy: warning: --samples {samples}: the {request.name} test split has "
              f"{len(indices)} samples; running all {len(indices)}", file=sys.stderr)
    check_run_size(program, len(indices), num_steps)      # before any frame is built
    x, labels = split.frames(indices, num_steps)
    classes = program.ops[program.outputs[0]].size
    if labels.max(initial=0) >= classes:
        raise SpikedeployError(f"{request.name} has {split.info.num_classes} classes, the "
                               f"graph's output {classes} values")
    x = x.reshape((x.shape[0], x.shape[1]) + tuple(op.shape))
    origin = {"dataset": request.name, "split": "test", "samples": len(indices),
              "data_dir": str(Path(request.data_dir).resolve()), "frames": frames.to_dict(),
              "steps": int(x.shape[0])}
    return InputBatch(x, labels, integer_scale(x),
                      f"{split.describe()}, {len(indices)} samples, T={x.shape[0]}", origin)


# Per recorded value: the float64 record and about as much again while it is computed.
BYTES_PER_RECORDED_VALUE = 16


def check_run_memory(program: Program, samples: int | None, input_path: str | None,
                     steps: int | None, default_samples: int) -> None:
    """Refuse a run whose inputs and records (every op x samples x steps) exceed the memory
    limit, before any input is built or read into memory."""
    if input_path is not None:
        try:
            shape = np.load(input_path, mmap_mode="r", allow_pickle=False).shape
        except Exception:            # noqa: BLE001 - load_npy reports a bad file in one line
            return
        if len(shape) < 2:
            return
        num_steps, n = int(shape[0]), int(shape[1])
    else:
        n = default_samples if samples is None else samples
        num_steps = steps or int(program.meta(NUM_STEPS, DEFAULT_NUM_STEPS))
    if n <= 0 or num_steps <= 0:
        return                       # refused with its own message where the inputs are made
    check_run_size(program, n, num_steps)


def check_run_size(program: Program, samples: int, num_steps: int) -> None:
    """Refuse a run whose inputs and records (every op x samples x steps) exceed the memory
    limit."""
    values = sum(op.size for op in program.ops.values())
    check_memory(f"a run of {samples} samples x {num_steps} steps over {values} values per "
                 "step", float(samples) * num_steps * values * BYTES_PER_RECORDED_VALUE)


def _class_labels(labels: np.ndarray, path: str, program: Program) -> np.ndarray:
    """Labels must be class indices of the graph's output."""
    classes = program.ops[program.outputs[0]].size
    if not np.issubdtype(labels.dtype, np.number) or np.issubdtype(labels.dtype,
                                                                    np.complexfloating):
        raise SpikedeployError(f"{path}: labels must be class numbers, got {labels.dtype}")
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
        raise SpikedeployError(f"{path}: labels must be whole class numbers")
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= classes:
        raise SpikedeployError(f"{path}: labels must be in 0..{classes - 1} (the output has "
                               f"{classes} values), got {labels.min():g}..{labels.max():g}")
    return labels.astype(np.int64)


def digits_input_scale(encoding: str | None) -> float:
    """Fixed-point scale of the digits inputs: pixels are k/16 with direct encoding, spikes
    with rate encoding."""
    return 16.0 if encoding == "direct" else 1.0


def graph_input_scale(metadata: dict | None) -> float:
    """The fixed-point scale of a graph's own inputs: event counts (a graph trained on a tonic
    dataset) are whole numbers; digits follow the encoding metadata."""
    if str(metadata_value(metadata or {}, DATASET) or "").startswith("tonic:"):
        return 1.0
    return digits_input_scale(metadata_value(metadata or {}, ENCODING))


def load_npy(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise SpikedeployError(f"{path}: no such file")
    try:
        array = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SpikedeployError(f"{path}: not a readable .npy {what} file ({exc})")
    if not isinstance(array, np.ndarray):        # an .npz archive holds several arrays
        array.close()
        raise SpikedeployError(f"{path}: an .npz archive, not one .npy {what} array (save the "
                               "array with numpy.save)")
    return array


def _user_inputs(program: Program, input_path: str, labels_path: str | None) -> InputBatch:
    x = load_npy(input_path, "input")
    op = program.ops[program.inputs[0]]
    if x.ndim < 3 or int(np.prod(x.shape[2:])) != op.size:
        raise SpikedeployError(
            f"{input_path}: expected time-major (T, N, *{op.shape}), got shape {x.shape}")
    if (not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating)
            or not np.all(np.isfinite(x))):
        raise SpikedeployError(f"{input_path}: inputs must be finite real numbers")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise SpikedeployError(f"{input_path}: no {'time steps' if x.shape[0] == 0 else 'samples'}"
                               f" (shape {x.shape})")
    x = x.astype(np.float64)
    labels = None
    if labels_path is not None:
        labels = load_npy(labels_path, "labels").reshape(-1)
        if labels.shape[0] != x.shape[1]:
            raise SpikedeployError(
                f"{labels_path}: {labels.shape[0]} labels for {x.shape[1]} samples")
        labels = _class_labels(labels, labels_path, program)
    return InputBatch(x, labels, integer_scale(x), f"{input_path}, {x.shape[1]} samples",
                      {"dataset": "file", "input": str(input_path), "samples": int(x.shape[1]),
                       "steps": int(x.shape[0])})


DATASET_FLAGS = ("time_bins", "time_window", "downsample", "denoise", "binarise")


def dataset_request(args, metadata: dict | None = None) -> DatasetRequest | None:
    """The --dataset options of a command (None for the built-in digits); frame options
    without a tonic dataset are refused, not ignored. A graph trained on the same dataset
    (``metadata``) supplies the frame options not given, as it was trained on them."""
    name = getattr(args, "dataset", None) or "digits"
    given = [f"--{flag.replace('_', '-')}" for flag in DATASET_FLAGS
             if getattr(args, flag, None) not in (None, False)]
    if name == "digits":
        if given or getattr(args, "data_dir", None):
            raise SpikedeployError(f"{', '.join(given + (['--data-dir'] if args.data_dir else []))}"
                                   ": go with --dataset tonic:NAME")
        return None
    if getattr(args, "input", None) is not None:
        raise SpikedeployError("--input and --dataset: give one source of inputs")
    if getattr(args, "labels", None) is not None:
        raise SpikedeployError("--labels goes with --input (a dataset brings its own labels)")
    from ..models.event_data import FrameOptions, dataset_info
    dataset_info(name)
    given = {"time_bins": args.time_bins, "time_window": args.time_window,
             "downsample": args.downsample, "denoise": args.denoise, "binarise": args.binarise}
    trained = _trained_frames(metadata, name)
    if args.time_bins is not None or args.time_window is not None:
        trained.pop("time_bins", None), trained.pop("time_window", None)
    options = {k: v if v is not None else trained.get(k) for k, v in given.items()}
    frames = FrameOptions(options["time_bins"], options["time_window"],
                          1 if options["downsample"] is None else options["downsample"],
                          options["denoise"] or None,      # --denoise 0: none
                          bool(options["binarise"]))
    frames.validate()
    return DatasetRequest(name, args.data_dir, frames)


def _trained_frames(metadata: dict | None, name: str) -> dict:
    """The frame options a graph trained on dataset ``name`` records (empty otherwise)."""
    import json
    if metadata_value(metadata or {}, DATASET) != name:
        return {}
    try:
        frames = json.loads(str(metadata_value(metadata, FRAMES)))
    except (TypeError, ValueError):
        return {}
    return {k: frames.get(k) for k in DATASET_FLAGS} if isinstance(frames, dict) else {}
