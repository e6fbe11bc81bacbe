"""Operation counts and energy estimates from recorded activity.

``energy_report(result)`` counts, per layer of a simulated run, input events,
synaptic operations (AC) or MACs and output spikes, prices them with an
energy profile (default 45 nm, Horowitz ISSCC 2014) and compares them with
the equivalent ANN. Modules: ``fanout`` (per-op-type fan-out registry),
``counts`` (counting), ``model`` (profiles and energy), ``report`` (table,
JSON, CSV).
"""
from .counts import NeuronCounts, OperationCounts, SynapticCounts, count_operations
from .fanout import FANOUT, VARIANTS, FanOut, fanout
from .model import EnergyProfile, available_profiles, load_profile
from .report import EnergyReport, energy_report

__all__ = ["energy_report", "EnergyReport", "count_operations", "OperationCounts",
           "SynapticCounts", "NeuronCounts", "FANOUT", "FanOut", "fanout", "VARIANTS",
           "EnergyProfile", "load_profile", "available_profiles"]
