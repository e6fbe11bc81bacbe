"""Energy per operation (profiles) and the energy of counted operations.

A profile is data: ``energy/profiles/<name>.toml`` with ``[energy_pj]``
``ac`` and ``mac`` (picojoules per accumulate / multiply-accumulate) and a
``[sources]`` table citing where each number comes from. Adding a profile is
adding a file (or passing a path or an :class:`EnergyProfile`).

The model (the one the SNN literature uses, Horowitz 45 nm numbers):

* **SNN energy** of a synaptic layer = ACs x E_AC + MACs x E_MAC, where ACs
  are the synaptic operations of a layer with spike input and MACs the
  effective MACs of a layer with graded input (see :mod:`.counts`). Neuron
  updates, spike routing and memory traffic are *not* counted.
* **ANN-equivalent energy** = E_MAC x the MACs of one dense forward pass of
  the same network as a non-spiking ANN: every synapse of every synaptic
  layer is one MAC, zero weights included, once per inference (not x T);
  activations and memory not counted. For a Dense layer that is
  in_size x out_size MACs.
* **Ratio** = SNN energy / ANN-equivalent energy, both per inference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpikedeployError
from .counts import OperationCounts, SynapticCounts

PROFILE_DIR = Path(__file__).with_name("profiles")
DEFAULT_PROFILE = "45nm"

SNN_DEFINITION = ("sum over synaptic layers of ACs x E_AC (spike input) + effective MACs x "
                  "E_MAC (graded input); neuron updates and memory not counted")
ANN_DEFINITION = ("ANN equivalent: one dense forward pass per inference (not x T); every "
                  "synapse of every synaptic layer one MAC, zero weights included "
                  "(Dense: in_size x out_size); x E_MAC; activations and memory not counted")


@dataclass(frozen=True)
class EnergyProfile:
    """Energy per operation in picojoules, with the source of each number."""

    name: str
    e_ac_pj: float
    e_mac_pj: float
    description: str = ""
    sources: dict = field(default_factory=dict)

    def __post_init__(self):
        for key in ("e_ac_pj", "e_mac_pj"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not math.isfinite(value) or value < 0:
                raise SpikedeployError(
                    f"energy profile '{self.name}': {key} must be a non-negative number, got {value!r}")

    @classmethod
    def from_dict(cls, data: dict, default_name: str = "") -> "EnergyProfile":
        energy = data.get("energy_pj")
        name = str(data.get("name", default_name))
        if not isinstance(energy, dict) or "ac" not in energy or "mac" not in energy:
            raise SpikedeployError(
                f"energy profile '{name}': needs an [energy_pj] table with 'ac' and 'mac'")
        return cls(name=name, e_ac_pj=energy["ac"], e_mac_pj=energy["mac"],
                   description=str(data.get("description", "")),
                   sources=dict(data.get("sources", {})))

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "energy_pj": {"ac": self.e_ac_pj, "mac": self.e_mac_pj},
                "sources": dict(self.sources)}


def _toml_loads(text: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise SpikedeployError(
                "reading an energy profile needs Python >= 3.11 or the 'tomli' package") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpikedeployError(f"energy profile is not valid TOML: {exc}") from None


def available_profiles() -> list[str]:
    """Names of the packaged profiles."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(profile: "str | Path | EnergyProfile" = DEFAULT_PROFILE) -> EnergyProfile:
    """A packaged profile by name, a ``.toml`` file by path, or an EnergyProfile as is."""
    if isinstance(profile, EnergyProfile):
        return profile
    path = Path(profile)
    if path.suffix != ".toml":
        path = PROFILE_DIR / f"{profile}.toml"
        if not path.is_file():
            raise SpikedeployError(
                f"unknown energy profile {str(profile)!r} (packaged: {', '.join(available_profiles())}; "
                "or give a path to a .toml file)")
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpikedeployError(f"cannot read energy profile {str(path)!r}: {exc.strerror}") from None
    return EnergyProfile.from_dict(_toml_loads(text), default_name=path.stem)


def layer_energy_pj(counts: SynapticCounts, profile: EnergyProfile, variant: str) -> np.ndarray:
    """Energy per step (pJ, total over the batch) of one synaptic layer."""
    return (counts.acs(variant) * profile.e_ac_pj
            + counts.macs(variant) * profile.e_mac_pj).astype(np.float64)


def ann_macs(counts: OperationCounts) -> int:
    """MACs of one dense ANN forward pass: every synapse once (see ANN_DEFINITION)."""
    return int(sum(c.synapses for c in counts.synaptic.values()))


def ann_energy_pj(counts: OperationCounts, profile: EnergyProfile) -> float:
    """ANN-equivalent energy per inference in pJ (see ANN_DEFINITION)."""
    return ann_macs(counts) * profile.e_mac_pj
