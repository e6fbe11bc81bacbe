"""Operation counts and energy estimates from recorded activity.

``energy_report(result)`` counts, per layer and per time step of a simulated
run, input events, synaptic operations (AC) or MACs, bias additions, neuron
updates and output spikes, prices them with a hardware profile (default
45 nm, Horowitz ISSCC 2014; also 45nm-fp16, 45nm-int8, loihi, or a user's
TOML/JSON file), compares them with the equivalent ANN and with other tools'
definitions (NeuroBench, sinabs, fr x T x FLOPs). Modules: ``fanout``
(per-op-type fan-out registry), ``counts`` (counting), ``model`` (profiles and
energy), ``conventions`` (other tools' definitions), ``report`` (table, JSON,
CSV), ``html_report`` (self-contained HTML with inline SVG plots).
"""
from .conventions import (neurobench_activation_sparsity, neurobench_synops, sinabs_synops,
                          syops_estimate)
from .counts import NeuronCounts, OperationCounts, SynapticCounts, count_operations
from .fanout import FANOUT, VARIANTS, FanOut, fanout
from .model import EnergyProfile, available_profiles, load_profile
from .report import EnergyReport, energy_report

__all__ = ["energy_report", "EnergyReport", "count_operations", "OperationCounts",
           "SynapticCounts", "NeuronCounts", "FANOUT", "FanOut", "fanout", "VARIANTS",
           "EnergyProfile", "load_profile", "available_profiles", "neurobench_synops",
           "neurobench_activation_sparsity", "sinabs_synops", "syops_estimate"]
