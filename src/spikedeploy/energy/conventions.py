"""Other tools' definitions, computed from the same counts, each labelled.

Energy claims in SNN papers disagree because tools count differently. These
functions reproduce three conventions from spikedeploy's exact per-step
counts, so a report can be compared with a paper or a tool's output:

* **NeuroBench** (``SynapticOperations``, ``ActivationSparsity``, v2.x):
  per forward call (one time step of one batch) and per torch Linear/Conv
  layer, the layer is AC if every input value is in {-1, 0, 1}, else MAC;
  *Effective* = sum over non-zero inputs of the non-zero-weight fan-out (bias
  not counted); *Dense* = every (input, weight) pair of the layer, zero
  inputs and zero weights included, padding excluded, at every step, AC and
  MAC layers alike. Results are per sample (mean over samples). Pooling and
  Scale are not connection layers in NeuroBench: not counted. Here the
  per-call test is made per step over all recorded samples, which is
  NeuroBench's answer when the whole set is one batch.
  ``ActivationSparsity`` = zero outputs / all outputs of every spiking
  population over all steps and samples.
* **sinabs** (``sinabs.hooks`` / ``SNNAnalyzer``, v3.x): per torch Linear/Conv
  layer, synops = sum over input elements of input value x fan-out over all
  synapses (zero weights included; a convolution's borders from a transposed
  convolution of ones), per sample, summed over time steps. Value-weighted:
  a graded input of 0.5 counts half. (sinabs also multiplies the layer after
  an AvgPool by the pooling area; spikedeploy does not apply that correction.)
* **fr x T x FLOPs** (syops-counter, Spikformer, Spike-driven Transformer,
  Spiking Diffusion Models): SOP_l = fr_l x T x FLOPs_l, where fr_l is the
  fraction of non-zero inputs of layer l over all steps and samples and
  FLOPs_l the MACs of one dense evaluation *padded taps included*;
  E = E_MAC x sum of FLOPs over the layers with graded input (the encoding
  layer, counted once, not x T) + E_AC x sum of SOP over the spike-input
  layers.
"""
from __future__ import annotations

from .counts import OperationCounts
from .model import EnergyProfile

NEUROBENCH_LABEL = "NeuroBench SynapticOperations (Effective_ACs / Effective_MACs / Dense, per sample)"
SINABS_LABEL = "sinabs synops (input value x fan-out over all synapses, per sample)"
SYOPS_LABEL = ("fr x T x FLOPs estimate (syops / Spikformer / SDM): E_MAC x FLOPs of graded-input "
               "layers (once) + E_AC x sum of fr x T x FLOPs (padded taps included)")

DEFINITIONS = {
    "neurobench": ("per time step and Linear/Conv layer: AC if every input in {-1,0,1} else MAC; "
                   "Effective = non-zero inputs x non-zero-weight fan-out; Dense = all "
                   "(input, weight) pairs x T (zero weights included, padding excluded); per "
                   "sample; pooling/Scale not counted; bias not counted"),
    "neurobench_activation_sparsity": ("zero outputs / all outputs of every spiking population, "
                                       "over all steps and samples"),
    "sinabs": ("per Linear/Conv layer: sum over steps and inputs of input value x fan-out over "
               "all synapses (zero weights included), per sample; value-weighted"),
    "syops": ("SOP_l = fr_l x T x FLOPs_l (fr_l: fraction of non-zero inputs; FLOPs_l: dense MACs "
              "with padded taps); E = E_MAC x FLOPs(graded-input layers, once) + E_AC x sum SOP"),
}


def neurobench_synops(counts: OperationCounts) -> dict:
    """NeuroBench's SynapticOperations result, and its per-layer parts (per sample)."""
    n = counts.num_samples
    per_layer = {}
    ac_total = mac_total = dense_total = 0
    for name, c in counts.synaptic.items():
        if not c.tool_layer:
            continue
        eff = c.ops["nonzero"]
        ac = int(eff[c.step_binary].sum())
        mac = int(eff[~c.step_binary].sum())
        dense = c.synapses * c.num_steps * n
        ac_total, mac_total, dense_total = ac_total + ac, mac_total + mac, dense_total + dense
        per_layer[name] = {"Effective_ACs": ac / n, "Effective_MACs": mac / n, "Dense": dense / n}
    totals = {"Effective_ACs": ac_total / n, "Effective_MACs": mac_total / n,
              "Dense": dense_total / n}
    return {"label": NEUROBENCH_LABEL, "definition": DEFINITIONS["neurobench"],
            **totals, "per_layer": per_layer}


def neurobench_activation_sparsity(counts: OperationCounts) -> float | None:
    spiking = [c for c in counts.neurons.values() if c.spiking]
    slots = sum(c.neurons for c in spiking) * counts.num_steps * counts.num_samples
    if not slots:
        return None
    return (slots - sum(int(c.spikes.sum()) for c in spiking)) / slots


def sinabs_synops(counts: OperationCounts) -> dict:
    """sinabs' per-layer synops (per sample, summed over steps) and their total."""
    n = counts.num_samples
    per_layer = {name: float(c.value_ops.sum()) / n
                 for name, c in counts.synaptic.items() if c.tool_layer}
    return {"label": SINABS_LABEL, "definition": DEFINITIONS["sinabs"],
            "total": float(sum(per_layer.values())), "per_layer": per_layer}


def syops_estimate(counts: OperationCounts, profile: EnergyProfile) -> dict:
    """The fr x T x FLOPs estimate and its energy, per layer and in all (per inference)."""
    t = counts.num_steps
    per_layer = {}
    energy = 0.0
    for name, c in counts.synaptic.items():
        fr = c.input_rate
        if c.binary:
            sop = fr * t * c.flops
            e = sop * profile.e_ac_pj
            per_layer[name] = {"kind": "AC", "input_rate": fr, "T": t, "flops": c.flops,
                               "sop": sop, "energy_pj": e}
        else:
            e = c.flops * profile.e_mac_pj
            per_layer[name] = {"kind": "MAC", "input_rate": fr, "T": t, "flops": c.flops,
                               "sop": None, "energy_pj": e}
        energy += e
    return {"label": SYOPS_LABEL, "definition": DEFINITIONS["syops"], "profile": profile.name,
            "energy_pj": energy,
            "sop_total": sum(v["sop"] for v in per_layer.values() if v["sop"] is not None),
            "flops_graded": sum(v["flops"] for v in per_layer.values() if v["kind"] == "MAC"),
            "per_layer": per_layer}


def all_conventions(counts: OperationCounts, profile: EnergyProfile) -> dict:
    return {"neurobench": {**neurobench_synops(counts),
                           "ActivationSparsity": neurobench_activation_sparsity(counts)},
            "sinabs": sinabs_synops(counts),
            "syops": syops_estimate(counts, profile)}
