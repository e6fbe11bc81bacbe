"""Every ``spikedeploy.*`` NIR metadata key, readout name and run default, in one place.

NIR files carry no time step, encoding, readout or reset mode, so spikedeploy
writes them as metadata (README: "NIR metadata spikedeploy reads and
writes"). Every stage reads the keys from here, so a key is spelled once.
"""
from __future__ import annotations

import numpy as np

# --- graph-level keys --------------------------------------------------------
DT = "spikedeploy.dt"                          # float: seconds per step
NUM_STEPS = "spikedeploy.num_steps"            # int: T used in training
ENCODING = "spikedeploy.encoding"              # "rate" | "direct"
READOUT = "spikedeploy.readout"                # one of READOUTS
DATASET = "spikedeploy.dataset"                # "digits" | "tonic:NMNIST" | ...
FRAMES = "spikedeploy.frames"                  # JSON: the event frames it was trained on
                                               # (time_bins, time_window, downsample, ...)
SEED = "spikedeploy.seed"                      # int: data split / encoding seed
THRESHOLD_SCALE = "spikedeploy.threshold_scale"   # float: threshold guidance gamma
STRICT_NIR = "spikedeploy.strict_nir"          # 1: initial voltages as plain NIR nodes
ARCHITECTURE = "spikedeploy.architecture"      # the checkpoint's architecture
SNNTORCH_ACCURACY = "spikedeploy.snntorch_accuracy"   # float64 snnTorch test accuracy
EXPORTER = "spikedeploy.exporter"              # "spikedeploy <version>, snntorch <version>"
CONVENTION = "spikedeploy.convention"          # the convention a foreign graph was read under
CONVENTION_REASON = "spikedeploy.convention_reason"   # why it was chosen (auto or given)
WRITTEN_FOR = "spikedeploy.written_for"        # the tool a file's form was written for

# --- neuron-node keys ----------------------------------------------------------
RESET_MODE = "spikedeploy.reset_mode"          # one of RESET_MODES
RESET_DELAY = "spikedeploy.reset_delay"        # 0 | 1: a voltage still above threshold is reset
                                               # in the next step (snnTorch's reset_delay)
RESET_IN_STEP = "spikedeploy.reset_in_step"    # 1 | 0: a spike resets in its own step (NIR)
SPIKE_VALUE = "spikedeploy.spike_value"        # value of an emitted spike per neuron (graded)
FIRE_AT_THRESHOLD = "spikedeploy.fire_at_threshold"   # 0 | 1: fire on v >= v_th (sinabs,
                                               # Rockpool) instead of v > v_th (NIR, snnTorch)
SPIKES_PER_STEP = "spikedeploy.spikes_per_step"   # one of SPIKE_COUNTS: "multi" emits
                                               # floor(v / v_th) spikes in one step
V_INIT = "spikedeploy.v_init"                  # initial membrane voltage per neuron
TSM_GAIN = "spikedeploy.tsm_gain"              # TSM input gain p[t], shape (T,)

# --- values and defaults ---------------------------------------------------------
READOUTS = ("spike_count", "mean", "last_step")   # rules in spikedeploy.readout
DEFAULT_READOUT = "spike_count"
ENCODINGS = ("rate", "direct")
DEFAULT_ENCODING = "rate"
RESET_MODES = ("zero", "subtract", "none")
SPIKE_COUNTS = ("one", "multi")
FOR_TOOLS = ("nir", "snntorch", "norse", "sinabs")   # export/convert --for (ir.tool_forms)
# --convention choices (rules in spikedeploy.ir.conventions)
CONVENTION_CHOICES = ("auto", "nir", "snntorch", "sinabs", "sinabs-single", "sinabs-import",
                      "norse", "rockpool", "lava-dl")
DEFAULT_RESET_MODE = "zero"
DEFAULT_DT = 1e-4          # seconds per step; snnTorch's exporter and the NIR paper use it
DEFAULT_NUM_STEPS = 25     # the reference MLP's T
DEFAULT_SEED = 0


def metadata_value(meta: dict | None, key: str, default=None):
    """A metadata entry as a plain Python value (h5py gives bytes and 0-d arrays)."""
    if not meta or key not in meta:
        return default
    value = meta[key]
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode()
    return value


# --- run metadata: what a graph may say about how it is run ---------------------------

def _positive_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and bool(np.isfinite(value)) and value > 0)


def _count(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


RUN_METADATA_RULES = {
    NUM_STEPS: (lambda v: _count(v, 1), "must be a positive whole number of steps"),
    SEED: (lambda v: _count(v, 0), "must be a whole number >= 0"),
    ENCODING: (lambda v: v in ENCODINGS, f"must be one of {', '.join(ENCODINGS)}"),
    READOUT: (lambda v: v in READOUTS, f"must be one of {', '.join(READOUTS)}"),
    THRESHOLD_SCALE: (_positive_number, "must be a positive number"),
}


def run_metadata_problems(meta: dict | None) -> list[tuple[str, str]]:
    """(key, reason) for every graph-level metadata value that cannot be run as written
    (the time step is validated where it is read, ``ir.load.graph_dt``)."""
    problems = []
    for key, (valid, rule) in RUN_METADATA_RULES.items():
        value = metadata_value(meta, key)
        if value is None:
            continue
        if isinstance(value, float) and key in (NUM_STEPS, SEED) and value.is_integer():
            value = int(value)               # an integral float written by another tool
        if not valid(value):
            problems.append((key, f"{value!r} {rule}"))
    return problems
