"""Per-neuron decays grouped into populations of one (du, dv) each, where the graph allows.

A stock LIF process holds one du and one dv. A population whose neurons
have k different decays (as the target's 12-bit registers hold them) is
split into k populations, one per decay: each synapse feeding it (a Dense
or Scale of its own) into its rows for that group, and each Dense it feeds
into its columns for that group, all summed into the same consumer. The
split graph computes exactly what the original does (the same sums, the same
neurons), so the target's fixed reference, stock network and records agree;
:func:`merge_group_records` reassembles each population's record.

Refused (with the reason): a recurrent population, one fed through anything
but Dense/Scale synapses of its own, one read out directly or feeding
anything but Dense synapses, and more than :data:`MAX_DECAY_GROUPS` groups
(each group is one Lava process and one neuron configuration on a core).
"""
from __future__ import annotations

import copy

import numpy as np

from ...errors import UnsupportedError
from ...ir import fixed_point as fxp
from ...ir.ops import DenseOp, NeuronOp, Op, Program, ScaleOp
from ...ir.semantics import NeuronParams

MAX_DECAY_GROUPS = 16
DV_MAX = fxp.LOIHI2_FIXED.dv_max


def decay_groups(p: NeuronParams) -> list[np.ndarray]:
    """Indices (flat, C order) of the neurons sharing each (du, dv) register pair, in the
    order each pair first appears."""
    flat = p.flat()
    du = fxp.FIXED_ENCODINGS["decay_u"](flat.du, None).astype(np.int64)
    dv = np.minimum(fxp.FIXED_ENCODINGS["decay_v"](flat.dv, None), DV_MAX).astype(np.int64)
    pairs = du * (DV_MAX + 2) + dv
    _, first, inverse = np.unique(pairs, return_index=True, return_inverse=True)
    order = np.argsort(first)
    return [np.flatnonzero(inverse == g) for g in order]


def _why_not(program: Program, op: NeuronOp, count: int) -> str | None:
    if count > MAX_DECAY_GROUPS:
        return f"more than {MAX_DECAY_GROUPS} groups (each is one stock LIF process)"
    if op.recurrent:
        return "a recurrent population cannot be split (its recurrent synapse would be too)"
    for name in op.inputs:
        src = program.ops[name]
        if not isinstance(src, (DenseOp, ScaleOp)) or len(program.consumers(name)) != 1:
            return f"fed by '{name}', not by Dense/Scale synapses of its own"
    for cons in program.consumers(op.name):
        if not isinstance(cons, DenseOp) or len(cons.inputs) != 1 or cons.recurrent:
            return f"feeds '{cons.name}' ({cons.nir_type}): only Dense synapses split by columns"
    return None


def _subset(p: NeuronParams, idx: np.ndarray) -> NeuronParams:
    flat = p.flat()
    return flat.replace(**{f.name: getattr(flat, f.name)[idx] for f in p.per_neuron_fields()
                           if getattr(flat, f.name) is not None})


def _dense_matrix(op: Op) -> np.ndarray:
    return np.diag(np.asarray(op.scale, np.float64).reshape(-1)) if isinstance(op, ScaleOp) \
        else np.asarray(op.weight, np.float64)


def _split(program: Program, name: str, idx: list[np.ndarray]) -> dict[str, Op]:
    """The program's ops with population ``name`` split into its decay groups."""
    op = program.ops[name]
    parts = [f"{name}_decay{j}" for j in range(len(idx))]
    feeds = {c.name for c in program.consumers(name)}
    ops: dict[str, Op] = {}
    for key, cur in program.ops.items():
        if key in op.inputs:
            w = _dense_matrix(cur)
            for j, ix in enumerate(idx):
                ops[f"{key}_decay{j}"] = DenseOp(f"{key}_decay{j}", (len(ix),), list(cur.inputs),
                                                 nir_type=cur.nir_type, in_shape=cur.in_shape,
                                                 weight=w[ix])
        elif key == name:
            for j, ix in enumerate(idx):
                ops[parts[j]] = NeuronOp(parts[j], (len(ix),), [f"{s}_decay{j}" for s in op.inputs],
                                         nir_type=op.nir_type, in_shape=(len(ix),),
                                         params=_subset(op.params, ix))
        elif key in feeds:
            for j, ix in enumerate(idx):
                ops[f"{key}_decay{j}"] = DenseOp(f"{key}_decay{j}", cur.shape, [parts[j]],
                                                 nir_type=cur.nir_type, in_shape=(len(ix),),
                                                 weight=np.asarray(cur.weight)[:, ix])
        else:
            def expand(names):
                return [i for s in names
                        for i in ([f"{s}_decay{j}" for j in range(len(idx))] if s in feeds else [s])]
            replaced = copy.copy(cur)
            replaced.inputs = expand(cur.inputs)
            replaced.recurrent = set(expand(sorted(cur.recurrent)))
            ops[key] = replaced
    return ops


def split_decay_groups(program: Program
                       ) -> tuple[Program, dict[str, list[tuple[str, np.ndarray]]], list]:
    """(split program, population -> [(group population, its neuron indices)], refusals)."""
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    problems: list[UnsupportedError] = []
    split = copy.deepcopy(program)
    for name, op in program.ops.items():
        if not (isinstance(op, NeuronOp) and op.params.spiking):
            continue
        idx = decay_groups(op.params)
        if len(idx) <= 1:
            continue
        why = _why_not(split, split.ops[name], len(idx))
        if why:
            problems.append(UnsupportedError(
                name, "tau", f"{len(idx)} different (du, dv) decays in one population; a stock "
                f"LIF process holds one, and grouping is not possible here: {why} (train with "
                "--shared-neuron-params)", backend="loihi2"))
            continue
        split.ops = _split(split, name, idx)
        groups[name] = [(f"{name}_decay{j}", ix) for j, ix in enumerate(idx)]
    return split, groups, problems


def merge_group_records(records: dict, groups: dict, sizes: dict[str, int]) -> dict:
    """Records of the split program -> records of the original populations."""
    merged = {k: v for k, v in records.items()
              if not any(k == g for parts in groups.values() for g, _ in parts)}
    for name, parts in groups.items():
        if not all(g in records for g, _ in parts):
            continue
        first = records[parts[0][0]]
        whole = np.zeros(first.shape[:2] + (sizes[name],), first.dtype)
        for g, ix in parts:
            whole[..., ix] = records[g]
        merged[name] = whole
    return merged
