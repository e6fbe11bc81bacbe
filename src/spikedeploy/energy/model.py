"""Energy per operation (hardware profiles) and the energy of counted operations.

A profile is data: ``energy/profiles/<name>.toml`` (or a user's ``.toml`` /
``.json`` file, ``--profile my.toml``) with the energy of each operation in
picojoules and a ``[sources]`` table citing where each number comes from::

    name = "45nm"
    description = "..."
    [energy_pj]
    ac = 0.9                       # required: one accumulate (synaptic op, spike input)
    mac = 4.6                      # required: one multiply-accumulate (graded input)
    bias_add = 0.9                 # optional: one bias addition (default: = ac)
    neuron_update_active = 0.0     # optional: per active neuron update (default 0)
    neuron_update_inactive = 0.0   # optional: per inactive neuron update (default 0)
    spike = 0.0                    # optional: per output spike sent (default 0)
    [memory_pj]                    # optional; used only with the memory term on
    weight_read = 10.0             # one weight read per synaptic op / MAC
    neuron_state = 20.0            # one state read + write per neuron update
    [sources]
    ac = "..."                     # one entry per number above

A missing required field, a non-numeric, negative or non-finite value or an
unknown field is rejected with a message naming the file and the field.

The model. Per layer and per time step (totals over the batch; per
inference = / N), with the counts of :mod:`.counts` and variant "nonzero" or
"all" of the synaptic operations:

* **synaptic** = ACs x ac + effective MACs x mac;
* **bias** = bias additions x bias_add;
* **neuron** = active updates x neuron_update_active + inactive updates x
  neuron_update_inactive (0 unless the profile gives them, e.g. Loihi);
* **spike** = output spikes x spike;
* **memory** (off by default, labelled): synaptic ops x weight_read + neuron
  updates x neuron_state.

**SNN energy** is their sum. **ANN-equivalent energy** prices the same graph
run as a non-spiking ANN at every time step: every synapse of every synaptic
layer one MAC at every step (synapses x T MACs, zero weights included, only
real connections, so a convolution's padding is not counted), plus the same
bias additions (every biased neuron, every step), plus, with the memory
term, one weight read per MAC; activations, neuron dynamics and spikes are
not counted. The one-pass figure (not x T) is reported beside it, labelled.
**Ratio** = SNN energy / ANN-equivalent energy, per inference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpikedeployError
from ..settings_files import read_settings
from .counts import NeuronCounts, OperationCounts, SynapticCounts

PROFILE_DIR = Path(__file__).with_name("profiles")
DEFAULT_PROFILE = "45nm"
COMPONENTS = ("synaptic", "bias", "neuron", "spike", "memory")

SNN_DEFINITION = ("SNN energy: sum over layers and time steps of synaptic (ACs x E_AC for spike "
                  "input + effective MACs x E_MAC for graded input) + bias additions x E_bias "
                  "+ neuron updates (active x E_active + inactive x E_inactive) + output spikes "
                  "x E_spike [+ memory: synaptic ops x E_weight_read + neuron updates x "
                  "E_state, only when enabled]; terms the profile does not price are 0")
ANN_DEFINITION = ("ANN equivalent: the same graph as a non-spiking ANN evaluated at every time "
                  "step: every synapse of every synaptic layer one MAC per step (synapses x T, "
                  "zero weights included, padding excluded) x E_MAC + the same bias additions "
                  "x E_bias [+ one weight read per MAC, only when the memory term is enabled]; "
                  "activations, neuron dynamics and spikes not counted")
ANN_PER_PASS_DEFINITION = ("ANN equivalent, one pass: as the ANN equivalent but evaluated once "
                           "per inference (not x T), for comparison with single-pass ANNs")

# field name in the file -> (attribute, required, default)
_ENERGY_FIELDS = {
    "ac": ("e_ac_pj", True),
    "mac": ("e_mac_pj", True),
    "bias_add": ("e_bias_pj", False),
    "neuron_update_active": ("e_neuron_active_pj", False),
    "neuron_update_inactive": ("e_neuron_inactive_pj", False),
    "spike": ("e_spike_pj", False),
}
_MEMORY_FIELDS = {
    "weight_read": "e_weight_read_pj",
    "neuron_state": "e_state_pj",
}
_TOP_LEVEL = ("name", "description", "energy_pj", "memory_pj", "sources", "notes")


@dataclass(frozen=True)
class EnergyProfile:
    """Energy per operation in picojoules, with the source of each number.

    Optional figures: ``e_bias_pj`` None means "same as E_AC"; neuron and spike
    figures default to 0 (not modelled); memory figures None mean the profile
    has no memory term (enabling it then fails with a clear message).
    """

    name: str
    e_ac_pj: float
    e_mac_pj: float
    description: str = ""
    sources: dict = field(default_factory=dict)
    e_bias_pj: float | None = None
    e_neuron_active_pj: float = 0.0
    e_neuron_inactive_pj: float = 0.0
    e_spike_pj: float = 0.0
    e_weight_read_pj: float | None = None
    e_state_pj: float | None = None
    notes: str = ""

    def __post_init__(self):
        for key in ("e_ac_pj", "e_mac_pj", "e_bias_pj", "e_neuron_active_pj",
                    "e_neuron_inactive_pj", "e_spike_pj", "e_weight_read_pj", "e_state_pj"):
            value = getattr(self, key)
            if value is None and key not in ("e_ac_pj", "e_mac_pj"):
                continue
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise SpikedeployError(
                    f"energy profile '{self.name}': {key} must be a non-negative number, got {value!r}")

    @property
    def bias_pj(self) -> float:
        return self.e_ac_pj if self.e_bias_pj is None else self.e_bias_pj

    @property
    def has_memory(self) -> bool:
        return self.e_weight_read_pj is not None and self.e_state_pj is not None

    def prices(self, memory: bool = False) -> dict:
        """Every price the model uses, by the file's field name (memory ones only if on)."""
        p = {"ac": self.e_ac_pj, "mac": self.e_mac_pj, "bias_add": self.bias_pj,
             "neuron_update_active": self.e_neuron_active_pj,
             "neuron_update_inactive": self.e_neuron_inactive_pj, "spike": self.e_spike_pj}
        if memory:
            p.update(weight_read=self.e_weight_read_pj, neuron_state=self.e_state_pj)
        return p

    def source(self, key: str) -> str:
        if key in self.sources:
            return str(self.sources[key])
        if key == "bias_add" and self.e_bias_pj is None:
            return "not given: E_AC (one addition)"
        if key in ("neuron_update_active", "neuron_update_inactive", "spike") and \
                getattr(self, _ENERGY_FIELDS[key][0]) == 0:
            return "not given: not modelled by this profile (0)"
        return "no source given"

    @classmethod
    def from_dict(cls, data: dict, default_name: str = "", origin: str = "") -> "EnergyProfile":
        name = str(data.get("name", default_name)) if isinstance(data, dict) else default_name
        where = f"energy profile '{name}'" + (f" ({origin})" if origin else "")
        if not isinstance(data, dict):
            raise SpikedeployError(f"{where}: expected a table of fields")
        unknown = sorted(set(data) - set(_TOP_LEVEL))
        if unknown:
            raise SpikedeployError(f"{where}: unknown field {unknown[0]!r} "
                                   f"(allowed: {', '.join(_TOP_LEVEL)})")
        energy = data.get("energy_pj")
        if not isinstance(energy, dict):
            raise SpikedeployError(f"{where}: needs an [energy_pj] table with 'ac' and 'mac' "
                                   "(picojoules per operation)")
        kwargs = {}
        for key in energy:
            if key not in _ENERGY_FIELDS:
                raise SpikedeployError(f"{where}: unknown field {key!r} in [energy_pj] "
                                       f"(allowed: {', '.join(_ENERGY_FIELDS)})")
        for key, (attr, required) in _ENERGY_FIELDS.items():
            if key not in energy:
                if required:
                    raise SpikedeployError(f"{where}: missing field {key!r} in [energy_pj] "
                                           "(picojoules per operation)")
                continue
            kwargs[attr] = _number(energy[key], where, f"{key!r} in [energy_pj]")
        memory = data.get("memory_pj")
        if memory is not None:
            if not isinstance(memory, dict):
                raise SpikedeployError(f"{where}: [memory_pj] must be a table")
            for key in memory:
                if key not in _MEMORY_FIELDS:
                    raise SpikedeployError(f"{where}: unknown field {key!r} in [memory_pj] "
                                           f"(allowed: {', '.join(_MEMORY_FIELDS)})")
            for key, attr in _MEMORY_FIELDS.items():
                if key not in memory:
                    raise SpikedeployError(f"{where}: missing field {key!r} in [memory_pj]")
                kwargs[attr] = _number(memory[key], where, f"{key!r} in [memory_pj]")
        sources = data.get("sources", {})
        if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
            raise SpikedeployError(f"{where}: [sources] must map field names to strings")
        return cls(name=name, description=str(data.get("description", "")),
                   sources=dict(sources), notes=str(data.get("notes", "")), **kwargs)

    def to_dict(self) -> dict:
        energy = {"ac": self.e_ac_pj, "mac": self.e_mac_pj, "bias_add": self.bias_pj,
                  "neuron_update_active": self.e_neuron_active_pj,
                  "neuron_update_inactive": self.e_neuron_inactive_pj, "spike": self.e_spike_pj}
        out = {"name": self.name, "description": self.description, "energy_pj": energy,
               "memory_pj": ({"weight_read": self.e_weight_read_pj,
                              "neuron_state": self.e_state_pj} if self.has_memory else None),
               "sources": {k: self.source(k) for k in list(energy) + (
                   list(_MEMORY_FIELDS) if self.has_memory else [])}}
        if self.notes:
            out["notes"] = self.notes
        return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value, where: str, what: str) -> float:
    if not _is_number(value):
        kind = type(value).__name__
        raise SpikedeployError(f"{where}: field {what} must be a number of picojoules, "
                               f"got {value!r} ({kind})")
    if not math.isfinite(value) or value < 0:
        raise SpikedeployError(f"{where}: field {what} must be a finite non-negative number "
                               f"of picojoules, got {value!r}")
    return float(value)


def available_profiles() -> list[str]:
    """Names of the packaged profiles."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(profile: "str | Path | EnergyProfile" = DEFAULT_PROFILE) -> EnergyProfile:
    """A packaged profile by name, a ``.toml``/``.json`` file by path, or an EnergyProfile as is."""
    if isinstance(profile, EnergyProfile):
        return profile
    path = Path(profile)
    if path.suffix not in (".toml", ".json"):
        path = PROFILE_DIR / f"{profile}.toml"
        if not path.is_file():
            raise SpikedeployError(
                f"unknown energy profile {str(profile)!r} (packaged: {', '.join(available_profiles())}; "
                "or give a path to a .toml or .json file)")
    data = read_settings(path, "energy profile")
    return EnergyProfile.from_dict(data, default_name=path.stem, origin=str(path))


def check_memory(profile: EnergyProfile, memory: bool) -> None:
    if memory and not profile.has_memory:
        raise SpikedeployError(
            f"energy profile '{profile.name}' has no [memory_pj] table (weight_read, "
            "neuron_state): the memory-access term cannot be priced with it")


def _zeros(t: int) -> np.ndarray:
    return np.zeros(t, dtype=np.float64)


def synaptic_energy(c: SynapticCounts, p: EnergyProfile, variant: str,
                    memory: bool = False) -> dict[str, np.ndarray]:
    """Energy per step (pJ, total over the batch) of one synaptic layer, by component."""
    t = c.num_steps
    e = {k: _zeros(t) for k in COMPONENTS}
    e["synaptic"] = (c.acs(variant) * p.e_ac_pj + c.macs(variant) * p.e_mac_pj).astype(np.float64)
    e["bias"] = c.bias_adds * p.bias_pj
    if memory:
        check_memory(p, memory)
        e["memory"] = c.ops[variant] * p.e_weight_read_pj
    return e


def neuron_energy(c: NeuronCounts, p: EnergyProfile, memory: bool = False) -> dict[str, np.ndarray]:
    """Energy per step (pJ, total over the batch) of one neuron population, by component."""
    t = c.num_steps
    e = {k: _zeros(t) for k in COMPONENTS}
    e["neuron"] = c.active * p.e_neuron_active_pj + c.inactive * p.e_neuron_inactive_pj
    e["bias"] = c.bias_adds * p.bias_pj
    if c.spikes is not None:
        e["spike"] = c.spikes * p.e_spike_pj
    if memory:
        check_memory(p, memory)
        e["memory"] = c.updates * p.e_state_pj
    return {k: np.asarray(v, np.float64) for k, v in e.items()}


def ann_macs(counts: OperationCounts) -> int:
    """MACs of one dense ANN forward pass: every synapse once (not x T)."""
    return int(sum(c.synapses for c in counts.synaptic.values()))


def bias_adds_per_inference(counts: OperationCounts) -> float:
    """Bias additions per inference (the same in the SNN and its ANN equivalent)."""
    total = sum(int(c.bias_adds.sum()) for c in counts.synaptic.values()) + \
        sum(int(c.bias_adds.sum()) for c in counts.neurons.values())
    return total / counts.num_samples


def ann_energy(counts: OperationCounts, profile: EnergyProfile, memory: bool = False,
               per_pass: bool = False) -> dict[str, float]:
    """ANN-equivalent energy per inference in pJ by component (see ANN_DEFINITION)."""
    steps = 1 if per_pass else counts.num_steps
    macs = ann_macs(counts) * steps
    bias = bias_adds_per_inference(counts) / (counts.num_steps if per_pass else 1)
    e = dict.fromkeys(COMPONENTS, 0.0)
    e["synaptic"] = macs * profile.e_mac_pj
    e["bias"] = bias * profile.bias_pj
    if memory:
        check_memory(profile, memory)
        e["memory"] = macs * profile.e_weight_read_pj
    return e


def ann_energy_pj(counts: OperationCounts, profile: EnergyProfile, memory: bool = False) -> float:
    """ANN-equivalent energy per inference in pJ (every synapse a MAC at every step)."""
    return float(sum(ann_energy(counts, profile, memory).values()))
