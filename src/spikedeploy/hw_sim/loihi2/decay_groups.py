"""Per-neuron decays grouped into populations of one (du, dv) each, where the graph allows.

A stock LIF process holds one du and one dv. A population whose neurons
have k different decays (as the target's 12-bit registers hold them) is
split into k populations, one per decay: each synapse feeding it (a Dense
or Scale of its own; a convolution when the decays are per channel) into
its rows (output channels) for that group, and each synapse it feeds (a
Dense, maybe after a Flatten; a convolution) into its columns (input
channels) for that group, all summed into the same consumer. The split graph
computes exactly what the original does (the same sums, the same neurons),
so the target's fixed reference, stock network and records agree;
:func:`merge_group_records` reassembles each population's record.

Refused (with the reason): a recurrent population, one fed or read through
anything else (or through a synapse shared with other nodes), decays that
differ within a channel of a convolution, grouped convolutions, one read out
directly, and more than :data:`MAX_DECAY_GROUPS` groups (each group is one
Lava process and one neuron configuration on a core).
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np

from ...errors import UnsupportedError
from ...ir import fixed_point as fxp
from ...ir.ops import ConvOp, DenseOp, NeuronOp, Op, Program, ReshapeOp, ScaleOp
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


def _channels(op: NeuronOp, idx: list[np.ndarray]) -> list[np.ndarray] | None:
    """Each group's channels when every group is whole channels of a (C, H, W) population."""
    if len(op.shape) != 3:
        return None
    per_channel = int(np.prod(op.shape[1:]))
    chans = [np.unique(ix // per_channel) for ix in idx]
    return chans if all(len(ix) == len(c) * per_channel for ix, c in zip(idx, chans)) else None


def _reader(program: Program, cons: Op) -> Op:
    """The synapse reading a population directly or through one Flatten."""
    if isinstance(cons, ReshapeOp) and len(program.consumers(cons.name)) == 1:
        return program.consumers(cons.name)[0]
    return cons


def _why_not(program: Program, op: NeuronOp, idx: list[np.ndarray]) -> str | None:
    if len(idx) > MAX_DECAY_GROUPS:
        return f"more than {MAX_DECAY_GROUPS} groups (each is one stock LIF process)"
    if op.recurrent:
        return "a recurrent population cannot be split (its recurrent synapse would be too)"
    chans = _channels(op, idx)
    for name in op.inputs:
        src = program.ops[name]
        if len(program.consumers(name)) != 1:
            return f"fed by '{name}', which also feeds other nodes"
        if isinstance(src, ConvOp):
            if chans is None:
                return f"fed by convolution '{name}' with decays that differ within a channel"
            if src.groups != 1:
                return f"fed by grouped convolution '{name}' (split by output channels only " \
                       "when groups = 1)"
        elif not isinstance(src, (DenseOp, ScaleOp)):
            return f"fed by '{name}' ({src.nir_type}), not by synapses of its own"
    for cons in program.consumers(op.name):
        reader = _reader(program, cons)
        if reader is not cons and not isinstance(reader, DenseOp):
            return f"feeds '{cons.name}' ({cons.nir_type}) not followed by a Dense synapse"
        if reader.recurrent or len(reader.inputs) != 1:
            return f"feeds '{reader.name}', which sums other inputs or reads a step late"
        if isinstance(reader, ConvOp):
            if chans is None or reader.groups != 1:
                return f"feeds convolution '{reader.name}' (split by input channels only for " \
                       "whole channels and groups = 1)"
        elif not isinstance(reader, DenseOp):
            return f"feeds '{reader.name}' ({reader.nir_type}): only Dense and Conv synapses " \
                   "split by their inputs"
    return None


def _subset(p: NeuronParams, idx: np.ndarray) -> NeuronParams:
    flat = p.flat()
    return flat.replace(**{f.name: getattr(flat, f.name)[idx] for f in p.per_neuron_fields()
                           if getattr(flat, f.name) is not None})


def _dense_matrix(op: Op) -> np.ndarray:
    return np.diag(np.asarray(op.scale, np.float64).reshape(-1)) if isinstance(op, ScaleOp) \
        else np.asarray(op.weight, np.float64)


def _rows(op: Op, name: str, ix: np.ndarray, chans, shape: tuple) -> Op:
    """The part of synapse ``op`` that feeds one group (its output rows / channels)."""
    if isinstance(op, ConvOp):
        return dataclasses.replace(op, name=name, shape=shape, weight=op.weight[chans],
                                   _cache={})
    return DenseOp(name, shape, list(op.inputs), nir_type=op.nir_type, in_shape=op.in_shape,
                   weight=_dense_matrix(op)[ix])


def _columns(op: Op, name: str, source: str, ix: np.ndarray, chans, in_shape: tuple) -> Op:
    """The part of synapse ``op`` that reads one group (its input columns / channels)."""
    if isinstance(op, ConvOp):
        return dataclasses.replace(op, name=name, inputs=[source], in_shape=in_shape,
                                   weight=op.weight[:, chans], _cache={})
    return DenseOp(name, op.shape, [source], nir_type=op.nir_type, in_shape=(len(ix),),
                   weight=np.asarray(op.weight)[:, ix])


def _split(program: Program, name: str, idx: list[np.ndarray]) -> dict[str, Op]:
    """The program's ops with population ``name`` split into its decay groups."""
    op = program.ops[name]
    chans = _channels(op, idx) or [None] * len(idx)
    shapes = [(len(c),) + tuple(op.shape[1:]) if c is not None else (len(ix),)
              for ix, c in zip(idx, chans)]
    parts = [f"{name}_decay{j}" for j in range(len(idx))]
    direct = {c.name for c in program.consumers(name)}
    flattens = {c for c in direct if isinstance(program.ops[c], ReshapeOp)}
    readers = {_reader(program, program.ops[c]).name for c in direct}
    ops: dict[str, Op] = {}

    def expand(names):
        return [i for s in names
                for i in ([f"{s}_decay{j}" for j in range(len(idx))] if s in readers else [s])]

    for key, cur in program.ops.items():
        if key in op.inputs:
            for j, ix in enumerate(idx):
                ops[f"{key}_decay{j}"] = _rows(cur, f"{key}_decay{j}", ix, chans[j], shapes[j])
        elif key == name:
            for j, ix in enumerate(idx):
                ops[parts[j]] = NeuronOp(parts[j], shapes[j], [f"{s}_decay{j}" for s in op.inputs],
                                         nir_type=op.nir_type, in_shape=shapes[j],
                                         params=_subset(op.params, ix))
        elif key in flattens:
            continue                     # a Dense reads a group's flat vector directly
        elif key in readers:
            for j, ix in enumerate(idx):
                ops[f"{key}_decay{j}"] = _columns(cur, f"{key}_decay{j}", parts[j], ix, chans[j],
                                                  shapes[j])
        else:
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
        why = _why_not(split, split.ops[name], idx)
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
