"""Small datasets fabricated in tonic's real on-disk formats (nothing is downloaded).

Each writer returns the events it wrote per sample as a structured array with
fields x, y, t (microseconds, what tonic hands its transforms) and p, so a test
can bin them by hand.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

EVENT = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def _events(rng, n, width, height, polarities, t_max):
    t = np.sort(rng.choice(np.arange(1, t_max), size=n, replace=False))
    return np.array(list(zip(rng.integers(0, width, n), rng.integers(0, height, n), t,
                             rng.integers(0, polarities, n))), dtype=EVENT)


def write_nmnist(root, samples_per_class=1, classes=range(10), train=False, seed=0,
                 events=60) -> list:
    """``root/NMNIST/{Train,Test}/<digit>/<id>.bin``: 40-bit records (x, y, p|t[22:16],
    t[15:8], t[7:0]), as the original N-MNIST files. Samples in tonic's order (digit
    folders, then file names)."""
    rng = np.random.default_rng(seed)
    written = []
    for digit in classes:
        folder = Path(root) / "NMNIST" / ("Train" if train else "Test") / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(samples_per_class):
            ev = _events(rng, events, 34, 34, 2, 300_000)
            raw = np.zeros((len(ev), 5), np.uint8)
            raw[:, 0], raw[:, 1] = ev["x"], ev["y"]
            raw[:, 2] = (ev["p"] << 7) | ((ev["t"] >> 16) & 0x7F)
            raw[:, 3], raw[:, 4] = (ev["t"] >> 8) & 0xFF, ev["t"] & 0xFF
            (folder / f"{k:05d}.bin").write_bytes(raw.tobytes())
            written.append((ev, digit))
    return written


def write_shd(root, n=6, train=False, seed=0, events=80, classes=20) -> list:
    """``root/SHD/shd_{train,test}.h5`` with spikes/times (seconds, float), spikes/units,
    labels and extra/keys, extra/speaker, as the Heidelberg files."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "SHD"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    vlen_f = h5py.vlen_dtype(np.float32)
    vlen_u = h5py.vlen_dtype(np.uint16)
    with h5py.File(folder / f"shd_{'train' if train else 'test'}.h5", "w") as f:
        times = f.create_dataset("spikes/times", (n,), dtype=vlen_f)
        units = f.create_dataset("spikes/units", (n,), dtype=vlen_u)
        labels = np.arange(n) % classes
        for i in range(n):
            # times on a 1 ms grid: seconds * 1e6 is then exact in float32 -> microseconds
            ms = np.sort(rng.choice(np.arange(1, 900), size=events, replace=False))
            u = rng.integers(0, 700, events)
            times[i] = (ms / 1000.0).astype(np.float32)
            units[i] = u.astype(np.uint16)
            t = (times[i].astype(np.float64) * 1e6).astype(np.int64)
            ev = np.zeros(events, EVENT)
            ev["x"], ev["t"] = u, t
            written.append((ev, int(labels[i])))
        f["labels"] = labels.astype(np.uint16)
        f["extra/keys"] = np.array([f"word{k}".encode() for k in range(classes)])
        f["extra/speaker"] = np.zeros(n, np.uint16)
    return written


def write_dvsgesture(root, users=("user01_fluorescent", "user02_led"), classes=(0, 3, 10),
                     train=False, seed=0, events=120) -> list:
    """``root/DVSGesture/ibmGesture{Train,Test}/<user>_<lighting>/<class>.npy``: (n, 4)
    arrays of x, y, p, t in milliseconds, as tonic's preprocessed DVS Gesture. Samples in
    path order."""
    rng = np.random.default_rng(seed)
    written = []
    for user in users:
        folder = Path(root) / "DVSGesture" / ("ibmGestureTrain" if train else "ibmGestureTest") \
            / user
        folder.mkdir(parents=True, exist_ok=True)
        for c in classes:
            ev = _events(rng, events, 128, 128, 2, 2000)     # t in ms here
            arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.float64)
            np.save(folder / f"{c}.npy", arr)
            ev = ev.copy()
            ev["t"] *= 1000
            written.append((str(folder / f"{c}.npy"), ev, c))
    written.sort(key=lambda item: item[0])
    return [(ev, c) for _, ev, c in written]


def bin_by_hand(ev, time_bins, width, height, polarities, downsample=1):
    """tonic's ToFrame(n_time_bins) spelled out: windows of (t_last - t_first) // T
    microseconds from the first event; the remainder after T windows is dropped."""
    w, h = -(-width // downsample), -(-height // downsample)
    frames = np.zeros((time_bins, polarities, h, w))
    window = (ev["t"][-1] - ev["t"][0]) // time_bins
    for e in ev:
        b = (e["t"] - ev["t"][0]) // window
        if b < time_bins:
            frames[b, e["p"] if polarities > 1 else 0, e["y"] // downsample,
                   e["x"] // downsample] += 1
    return frames
