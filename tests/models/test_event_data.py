"""tonic datasets as frames: files fabricated in the real on-disk formats, binned by hand."""

import numpy as np
import pytest

from spikedeploy.errors import SpikedeployError
from spikedeploy.models.event_data import (DATASETS, EventSplit, FrameOptions, check_files,
                                           spread_indices)

from event_files import bin_by_hand, write_dvsgesture, write_nmnist, write_shd

WRITERS = {"NMNIST": (write_nmnist, (34, 34, 2)), "SHD": (write_shd, (700, 1, 1)),
           "DVSGesture": (write_dvsgesture, (128, 128, 2))}


@pytest.mark.parametrize("name", list(WRITERS))
@pytest.mark.parametrize("downsample", [1, 2])
def test_frames_equal_binning_by_hand(tmp_path, name, downsample):
    writer, (w, h, p) = WRITERS[name]
    written = writer(tmp_path)
    split = EventSplit(f"tonic:{name}", tmp_path, False,
                       FrameOptions(time_bins=7, downsample=downsample))
    assert len(split) == len(written)
    x, labels = split.frames(range(len(split)))
    hand = np.stack([bin_by_hand(ev, 7, w, h, p, downsample) for ev, _ in written], axis=1)
    assert x.shape == (7, len(written)) + split.frame_shape
    assert np.array_equal(x.reshape(hand.shape), hand)
    assert labels.tolist() == [label for _, label in written]


def test_binarise_and_shd_layout(tmp_path):
    written = write_shd(tmp_path, n=3)
    split = EventSplit("tonic:SHD", tmp_path, False, FrameOptions(time_bins=4, binarise=True,
                                                                  downsample=4))
    x, _ = split.frames([0, 1, 2])
    assert x.shape == (4, 3, 175)      # (T, N, channels): 700 / 4
    hand = np.stack([bin_by_hand(ev, 4, 700, 1, 1, 4) for ev, _ in written], axis=1)
    assert hand.max() > 1              # counts, which binarising turns into 0/1
    assert np.array_equal(x, (hand.reshape(x.shape) > 0).astype(float))


@pytest.mark.parametrize("steps", [3, 12])
def test_time_windows_from_the_first_event_cut_or_padded_to_t(tmp_path, steps):
    """Windows of W us from each recording's first event, as many as asked: shorter
    recordings end in empty frames, longer ones are cut (tonic's ToFrame with end_time)."""
    written = write_nmnist(tmp_path, classes=[3, 5])
    window = 40_000
    split = EventSplit("tonic:NMNIST", tmp_path, False, FrameOptions(time_window=window))
    x, _ = split.frames([0, 1], num_steps=steps)
    assert x.shape[0] == steps
    for n, (ev, _) in enumerate(written):
        hand = np.zeros((steps, 2, 34, 34))
        for e in ev:
            b = (e["t"] - ev["t"][0]) // window
            if b < steps:
                hand[b, e["p"], e["y"], e["x"]] += 1
        assert np.array_equal(x[:, n], hand)
    with pytest.raises(SpikedeployError, match="need a number of steps"):
        split.frames([0])


def test_denoise_drops_isolated_events(tmp_path):
    written = write_nmnist(tmp_path, classes=[1], events=60)
    plain = EventSplit("tonic:NMNIST", tmp_path, False, FrameOptions(time_bins=3))
    denoised = EventSplit("tonic:NMNIST", tmp_path, False, FrameOptions(time_bins=3, denoise=1))
    # 60 random events over 34x34 pixels and 0.3 s: none has a neighbour within 1 us
    assert plain.frames([0])[0].sum() == bin_by_hand(written[0][0], 3, 34, 34, 2).sum() > 0
    assert denoised.frames([0])[0].sum() == 0


@pytest.mark.parametrize("name", list(DATASETS))
def test_missing_split_is_one_line_naming_the_files(tmp_path, name):
    with pytest.raises(SpikedeployError) as err:
        check_files(f"tonic:{name}", tmp_path, train=False)
    text = str(err.value)
    assert "\n" not in text and str(tmp_path / name) in text and "never downloads" in text


def test_tonic_is_never_asked_to_download(tmp_path, monkeypatch):
    """A split with fewer files than tonic's own completeness check wants still reads, and
    tonic's download is never reached."""
    import tonic.download_utils as du
    monkeypatch.setattr(du, "download_url", lambda *a, **k: pytest.fail("download attempted"))
    write_nmnist(tmp_path, classes=[0])
    assert len(EventSplit("tonic:NMNIST", tmp_path, False, FrameOptions(time_bins=2))) == 1


def _corrupt_nmnist(root):
    write_nmnist(root, classes=[0])
    (root / "NMNIST" / "Test" / "0" / "00000.bin").write_bytes(b"\x01\x02\x03\x04\x05\x06\x07")


def _corrupt_shd(root):
    (root / "SHD").mkdir()
    (root / "SHD" / "shd_test.h5").write_text("not hdf5")


def _shd_without_labels(root):
    import h5py
    write_shd(root, n=2)
    with h5py.File(root / "SHD" / "shd_test.h5", "a") as f:
        del f["labels"]


def _corrupt_dvs(root):
    write_dvsgesture(root, users=("user01_led",), classes=(2,))
    (root / "DVSGesture" / "ibmGestureTest" / "user01_led" / "2.npy").write_bytes(b"junk")


def _out_of_sensor(root):
    write_nmnist(root, classes=[0])
    raw = bytearray((root / "NMNIST" / "Test" / "0" / "00000.bin").read_bytes())
    raw[0] = 200                        # x beyond the 34-pixel sensor
    (root / "NMNIST" / "Test" / "0" / "00000.bin").write_bytes(bytes(raw))


def _just_off_sensor(root):
    """One pixel past the edge: with --downsample 3 tonic would bin it into the last pixel."""
    write_nmnist(root, classes=[0])
    raw = bytearray((root / "NMNIST" / "Test" / "0" / "00000.bin").read_bytes())
    raw[0] = 35
    (root / "NMNIST" / "Test" / "0" / "00000.bin").write_bytes(bytes(raw))


def _negative_dvs(root):
    write_dvsgesture(root, users=("user01_led",), classes=(2,))
    path = root / "DVSGesture" / "ibmGestureTest" / "user01_led" / "2.npy"
    events = np.load(path)
    events[0, 1] = -3
    np.save(path, events)


def _dvs_folder_without_lighting(root):
    write_dvsgesture(root, users=("user01_led",), classes=(2,))
    (root / "DVSGesture" / "ibmGestureTest" / "user03").mkdir()


@pytest.mark.parametrize("make,name,expect", [
    (_corrupt_nmnist, "NMNIST", "00000.bin"), (_corrupt_shd, "SHD", "not a readable HDF5"),
    (_shd_without_labels, "SHD", "no labels"), (_corrupt_dvs, "DVSGesture", "2.npy"),
    (_out_of_sensor, "NMNIST", "event x 200 is off the NMNIST sensor (0..33)"),
    (_just_off_sensor, "NMNIST", "event x 35 is off the NMNIST sensor"),
    (_negative_dvs, "DVSGesture", "event y -3 is off"),
    (_dvs_folder_without_lighting, "DVSGesture", "user03: not a DVS Gesture recording folder")])
def test_corrupt_files_are_one_line(tmp_path, make, name, expect):
    make(tmp_path)
    with pytest.raises(SpikedeployError) as err:
        split = EventSplit(f"tonic:{name}", tmp_path, False, FrameOptions(time_bins=3,
                                                                          downsample=3))
        split.frames(range(len(split)))
    assert "\n" not in str(err.value) and expect in str(err.value), err.value


def test_spread_indices_cover_every_class_listing():
    assert spread_indices(10, 3).tolist() == [0, 4, 9]
    assert spread_indices(5, None).tolist() == list(range(5))
    assert spread_indices(5, 9).tolist() == list(range(5))
    assert len(spread_indices(1000, 999)) == 999


@pytest.mark.parametrize("options,expect", [
    (FrameOptions(), "--time-bins"), (FrameOptions(time_bins=0), "--time-bins"),
    (FrameOptions(time_bins=3, time_window=5.0), "one of them"),
    (FrameOptions(time_bins=3, downsample=0), "--downsample"),
    (FrameOptions(time_bins=3, denoise=float("nan")), "--denoise")])
def test_bad_frame_options(options, expect):
    with pytest.raises(SpikedeployError, match=expect):
        options.validate()
