"""Neuromorphic datasets through tonic: N-MNIST, SHD and DVS Gesture as event frames.

A dataset is read from its files in tonic's own layout under ``--data-dir``
(``DIR/<ClassName>/...``, what ``tonic.datasets.X(save_to=DIR)`` writes) and
turned into frames by tonic's own transforms: ``Denoise(filter_time)``, then
``Downsample(spatial_factor=1/K)``, then ``ToFrame`` with ``n_time_bins`` (or
``time_window``). Frames are event counts per (bin, polarity, pixel) -- graded
inputs -- or 0/1 with ``binarise``; the layout is the one input files use,
(T, N, C, H, W) for cameras (C = polarity) and (T, N, channels) for SHD.

Nothing is ever downloaded: the files tonic reads are checked here before a
tonic dataset is built (its constructors download whatever they miss), and a
missing one is one line saying what is expected where. The tonic classes are
used with their download replaced by that refusal and their file-count check
(e.g. N-MNIST wants all 10,000 test files) by ours, so a partial copy of a
dataset reads too; the archives (.zip, .tar.gz) are not needed, only what
they extract to.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import SpikedeployError, first_line

TONIC_PREFIX = "tonic:"
INSTALL_HINT = "pip install 'spikedeploy[datasets]'"


@dataclass(frozen=True)
class EventDataset:
    """What spikedeploy knows of one tonic dataset."""

    tonic_class: str
    num_classes: int
    sensor_size: tuple            # tonic's (W, H, P)
    split_files: dict             # train (bool) -> path under DIR/<tonic_class>
    file_kind: str                # what one sample file is, for messages

    def channels_only(self) -> bool:
        """Audio-like sensors (H = P = 1): frames are (channels,) per step."""
        return self.sensor_size[1] == 1 and self.sensor_size[2] == 1


DATASETS: dict[str, EventDataset] = {
    "NMNIST": EventDataset("NMNIST", 10, (34, 34, 2), {True: "Train/<digit>/*.bin",
                                                      False: "Test/<digit>/*.bin"},
                           "N-MNIST .bin event file"),
    "SHD": EventDataset("SHD", 20, (700, 1, 1), {True: "shd_train.h5", False: "shd_test.h5"},
                        "SHD .h5 file"),
    "DVSGesture": EventDataset("DVSGesture", 11, (128, 128, 2),
                               {True: "ibmGestureTrain/user<NN>_<lighting>/<class>.npy",
                                False: "ibmGestureTest/user<NN>_<lighting>/<class>.npy"},
                               "DVS Gesture .npy event file"),
}
DATASET_CHOICES = ("digits",) + tuple(TONIC_PREFIX + name for name in DATASETS)


@dataclass(frozen=True)
class FrameOptions:
    """How events become frames (every report records these)."""

    time_bins: int | None = None        # T frames per recording (tonic ToFrame n_time_bins)
    time_window: float | None = None    # or frames of this many microseconds (time_window)
    downsample: int = 1                 # spatial factor 1/K (tonic Downsample)
    denoise: float | None = None        # tonic Denoise filter_time, microseconds
    binarise: bool = False              # 0/1 frames instead of event counts

    def validate(self) -> None:
        if (self.time_bins is None) == (self.time_window is None):
            raise SpikedeployError("event datasets need --time-bins T or --time-window US "
                                   "(one of them)")
        if self.time_bins is not None and self.time_bins < 1:
            raise SpikedeployError(f"--time-bins must be positive, got {self.time_bins}")
        for name, value in (("--time-window", self.time_window), ("--denoise", self.denoise)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise SpikedeployError(f"{name} must be a positive number of microseconds, "
                                       f"got {value}")
        if self.downsample < 1:
            raise SpikedeployError(f"--downsample must be a positive integer, got "
                                   f"{self.downsample}")

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        binning = (f"{self.time_bins} time bins" if self.time_bins is not None
                   else f"{self.time_window:g} us windows")
        parts = [binning] + ([f"denoise {self.denoise:g} us"] if self.denoise else []) + \
            ([f"downsample 1/{self.downsample}"] if self.downsample > 1 else []) + \
            ["binarised" if self.binarise else "event counts"]
        return ", ".join(parts)


def dataset_info(name: str) -> EventDataset:
    """The dataset named ``tonic:NAME`` (one line naming the choices otherwise)."""
    key = name[len(TONIC_PREFIX):] if name.startswith(TONIC_PREFIX) else None
    if key not in DATASETS:
        raise SpikedeployError(f"unknown dataset {name!r} (choose {', '.join(DATASET_CHOICES)})")
    return DATASETS[key]


def frame_shape(info: EventDataset, frames: FrameOptions) -> tuple:
    """One step's frame without the batch: (P, H, W), or (channels,) for audio sensors."""
    w, h, p = _downsampled_sensor(info, frames.downsample)
    return (w,) if info.channels_only() else (p, h, w)


def _downsampled_sensor(info: EventDataset, factor: int) -> tuple:
    w, h, p = info.sensor_size
    return (math.ceil(w / factor), math.ceil(h / factor) if h > 1 else 1, p)


# ---------------------------------------------------------------- files, checked first

def _root(info: EventDataset, data_dir) -> Path:
    if data_dir is None:
        raise SpikedeployError(f"{TONIC_PREFIX}{info.tonic_class} needs --data-dir DIR (the "
                               f"save_to folder tonic reads: DIR/{info.tonic_class}/...)")
    return Path(data_dir).expanduser() / info.tonic_class


def check_files(name: str, data_dir, train: bool) -> Path:
    """The folder tonic will read, after checking that the split's files are there in
    tonic's layout; one line naming what is expected where otherwise."""
    info = dataset_info(name)
    root = _root(info, data_dir)
    split = "training" if train else "test"
    expected = root / info.split_files[train]
    missing = SpikedeployError(f"{name}: no {split} split at {expected} (tonic's layout under "
                               f"--data-dir; spikedeploy never downloads: fetch the dataset "
                               f"with tonic where there is internet and copy {root})")
    if info.tonic_class == "SHD":
        if not expected.is_file():
            raise missing
        _check_shd_file(expected)
    elif info.tonic_class == "NMNIST":
        folder = expected.parents[1]
        if not any(folder.glob("[0-9]/*.bin")):
            raise missing
    else:
        folder = expected.parents[1]
        if not any(folder.glob("user*_*/*.npy")):
            raise missing
        for sub in folder.iterdir():      # tonic parses user<NN>_<lighting> from every folder
            if sub.is_dir() and not re.fullmatch(r"user\d+_.+", sub.name):
                raise SpikedeployError(f"{sub}: not a DVS Gesture recording folder "
                                       "(user<NN>_<lighting>)")
    return root.parent


SHD_DATASETS = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")


def _check_shd_file(path: Path) -> None:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            absent = [k for k in SHD_DATASETS if k not in f]
            if absent:
                raise SpikedeployError(f"{path}: not an SHD file (no {', '.join(absent)})")
            n = len(f["labels"])
            if len(f["spikes/times"]) != n or len(f["spikes/units"]) != n:
                raise SpikedeployError(f"{path}: {len(f['spikes/times'])} spike trains for "
                                       f"{n} labels")
    except OSError as exc:
        raise SpikedeployError(f"{path}: not a readable HDF5 file ({first_line(exc)})") from None


# ---------------------------------------------------------------- tonic, never downloading

def _tonic():
    try:
        import tonic
    except ImportError:
        raise SpikedeployError(f"event datasets need tonic: {INSTALL_HINT}") from None
    return tonic


def _guarded_class(tonic, info: EventDataset):
    """tonic's dataset class with its download replaced by a refusal and its file-count
    check by :func:`check_files` (the same name: tonic derives the folder from it)."""
    base = getattr(tonic.datasets, info.tonic_class)

    def download(self):
        raise SpikedeployError(f"tonic wanted to download {info.tonic_class}: spikedeploy "
                               "never downloads")

    return type(info.tonic_class, (base,), {"download": download,
                                            "_check_exists": lambda self: True})


class EventSplit:
    """One split of a tonic dataset as frames: ``len()``, ``labels`` and ``frames(indices)``."""

    def __init__(self, name: str, data_dir, train: bool, frames: FrameOptions):
        frames.validate()
        self.name, self.train, self.options = name, train, frames
        self.info = dataset_info(name)
        if frames.denoise and self.info.channels_only():
            raise SpikedeployError(f"--denoise: tonic's Denoise filters pixel neighbourhoods "
                                   f"(x and y); {name} events have channels only")
        save_to = check_files(name, data_dir, train)
        tonic = _tonic()
        cls = _guarded_class(tonic, self.info)
        try:
            self.dataset = cls(str(save_to), train=train)
        except SpikedeployError:
            raise
        except Exception as exc:      # noqa: BLE001 - tonic's own reading of a bad file
            raise SpikedeployError(f"{name}: tonic could not read {save_to / self.info.tonic_class}"
                                   f" ({type(exc).__name__}: {first_line(exc)})") from None
        self.paths = self._sorted_samples()
        self._tonic = tonic
        self.transform = self._transform(tonic)
        self.frame_shape = frame_shape(self.info, frames)
        self.file = save_to / self.info.tonic_class / self.info.split_files[train]

    def _sorted_samples(self) -> list:
        """File-per-sample datasets in path order (DVS Gesture's listing follows the file
        system's), so a sample's index is the same on every machine."""
        data = getattr(self.dataset, "data", None)
        if not data:
            return []
        order = sorted(range(len(data)), key=lambda i: str(data[i]))
        for attr in ("data", "targets", "users", "lighting"):
            values = getattr(self.dataset, attr, None)
            if isinstance(values, list) and len(values) == len(order):
                setattr(self.dataset, attr, [values[i] for i in order])
        return [str(p) for p in self.dataset.data]

    def _transform(self, tonic):
        t = tonic.transforms
        steps = []
        if self.options.denoise:
            steps.append(t.Denoise(filter_time=self.options.denoise))
        k = self.options.downsample
        if k > 1:
            steps.append(t.Downsample(spatial_factor=1.0 / k))
        return t.Compose(steps)

    def _to_frame(self, events, num_steps: int):
        """tonic's ToFrame: T bins of the recording, or ``num_steps`` windows of
        ``time_window`` from its first event (``end_time`` bounds what is built)."""
        to_frame = self._tonic.transforms.ToFrame
        sensor = _downsampled_sensor(self.info, self.options.downsample)
        if self.options.time_bins is not None:
            return to_frame(sensor_size=sensor, n_time_bins=self.options.time_bins)(events)
        window = self.options.time_window
        end = float(events["t"][0]) + num_steps * window
        frames = to_frame(sensor_size=sensor, time_window=window, include_incomplete=True,
                          end_time=end)(events)
        return frames[:num_steps]

    def __len__(self) -> int:
        return len(self.dataset)

    def _where(self, index: int) -> str:
        if self.paths:
            return self.paths[index]
        return f"{self.file} sample {index}"

    def sample(self, index: int, num_steps: int | None = None) -> tuple[np.ndarray, int]:
        """(frames (T, *frame_shape) float64, label) of one recording: T = the time bins, or
        ``num_steps`` time windows (recordings shorter than that end in empty frames)."""
        if self.options.time_bins is None and num_steps is None:
            raise SpikedeployError("--time-window frames need a number of steps (--steps T)")
        steps = self.options.time_bins or num_steps
        try:
            events, label = self.dataset[int(index)]
        except SpikedeployError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: one line
            raise SpikedeployError(f"{self._where(index)}: not a readable {self.info.file_kind} "
                                   f"({type(exc).__name__}: {first_line(exc)})") from None
        self._check_sensor(events, index)
        label = int(np.asarray(label).reshape(-1)[0])
        if not 0 <= label < self.info.num_classes:
            raise SpikedeployError(f"{self._where(index)}: label {label} outside "
                                   f"0..{self.info.num_classes - 1}")
        frames = np.zeros((steps,) + self.frame_shape)
        try:
            events = self.transform(events)
            if len(events):             # else empty frames (tonic's binning needs an event)
                made = self._to_frame(events, steps)
                made = np.asarray(made, dtype=np.float64).reshape((-1,) + self.frame_shape)
                frames[:min(steps, len(made))] = made[:steps]
        except Exception as exc:  # noqa: BLE001 - tonic failing on these events: one line
            raise SpikedeployError(f"{self._where(index)}: tonic could not make frames of its "
                                   f"events ({type(exc).__name__}: {first_line(exc)})") from None
        if self.options.binarise:
            frames = (frames > 0).astype(np.float64)
        return frames, label

    def _check_sensor(self, events, index: int) -> None:
        """Events on the sensor only: tonic would silently bin a coordinate just past the
        edge into the last (downsampled) pixel, and wrap a negative one."""
        w, h, _ = self.info.sensor_size
        for axis, size in (("x", w), ("y", h)):
            if axis in events.dtype.names and len(events):
                low, high = int(events[axis].min()), int(events[axis].max())
                if low < 0 or high >= size:
                    raise SpikedeployError(f"{self._where(index)}: event {axis} "
                                           f"{low if low < 0 else high} is off the "
                                           f"{self.info.tonic_class} sensor (0..{size - 1})")

    def frames(self, indices, num_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frames (T, n, *frame_shape) float64 and labels (n,) of ``indices``; T = the time
        bins, or ``num_steps`` windows."""
        steps = self.options.time_bins or num_steps
        x = np.zeros((steps or 1, len(indices)) + self.frame_shape)
        labels = np.zeros(len(indices), dtype=np.int64)
        for n, i in enumerate(indices):
            x[:, n], labels[n] = self.sample(i, num_steps)
        return x, labels

    def describe(self) -> str:
        return (f"{self.name} {'training' if self.train else 'test'} split, "
                f"{self.options.describe()}")


def spread_indices(total: int, count: int | None) -> np.ndarray:
    """``count`` indices spread evenly over ``total`` samples (all when None or >= total): the
    files are listed class by class, so the first N would be one class."""
    if count is None or count >= total:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, count).round().astype(np.int64))
