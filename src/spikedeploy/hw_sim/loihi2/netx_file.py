"""lava-dl netx HDF5 files of a Loihi 2 Program (the format Intel's Loihi 2 flow consumes).

Layout, as ``lava.lib.dl.netx.hdf5.Network`` reads it (lava-dl 0.6
``netx/hdf5.py`` and ``utils.py``)::

    layer/0/{type="input", shape}                      shape C,H,W (netx reverses it)
    layer/i/{type="dense"|"dense_rec"|"conv", shape, weight[, weight_rec], [bias], [delay],
             [stride, padding, dilation, groups],         conv only, (y, x) order
             neuron/{type="CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike}}
    layer/i/{type="flatten"}                            before a dense layer after a conv

netx builds a *chain*: every layer is one synapse (Dense, DelayDense or
Conv) ending on one CUBA LIF population, fed by the layer before. Pooling is
a conv layer with its fixed depthwise kernel where a neuron follows it (a
MaxPool of spikes: SumPool -> Threshold); before another synapse it has
been fused into that synapse by the target's passes. Its
neuron takes ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant`` and
``bias_mant = bias`` at ``bias_exp = 6``; conv weights are PyTorch's
(C_out, C_in/groups, kH, kW), flipped and transposed by netx itself; a 2-D
``delay`` is per synapse. The values written are the target's integer
quantisation (:func:`.target.compile_loihi2`), so the file, the stock-process
network and the fixed reference compute the same integers.

Refused (netx's loader cannot build them): several inputs or outputs,
branches, skip and residual connections, a synapse that is not followed by
exactly one population, a recurrent synapse other than a population's own
dense one (``dense_rec``), a convolution with asymmetric padding, a
convolution after a dense layer, a delay on a convolution, a readout other
than the last layer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import UnsupportedError
from ...fileio import in_memory, require_folder, write_bytes
from ...ir.ops import (ConvOp, DelayOp, DenseOp, NeuronOp, OutputOp, Program, ReshapeOp,
                       ScaleOp)
from ...ir import fixed_point as fxp
from ...metadata import NUM_STEPS
from ..lava_builders import GRADED_MESSAGE_BITS
from ..timing import schedule
from .target import Loihi2Program

FORMAT = "netx"
BIAS_EXP = fxp.LOIHI2_FIXED.bias_exp    # netx's neuron bias exponent, fixed at 6
# File attributes (netx reads none of them): how to run the file as spikedeploy does.
LAYERS_ATTR = "spikedeploy.layers"     # JSON list: the op name of every layer ("" for flatten)
INPUT_SCALE_ATTR = "spikedeploy.input_scale"   # integer units per unit of graded input
LATENCY_ATTR = "spikedeploy.latency"   # L: steps the pipeline adds; reset_interval = T + L
RESET_OFFSET_ATTR = "spikedeploy.reset_offset"  # the hdf5.Network reset_offset that resets each
#                                                 layer at its sample's first input
MESSAGE_BITS_ATTR = "spikedeploy.graded_input_message_bits"  # input_message_bits for graded input
NUM_STEPS_ATTR = "spikedeploy.num_steps"   # T of the graph, when it records one


@dataclass
class NetxLayer:
    """One netx layer: a synapse (maybe a recurrent one) and the population it feeds."""
    kind: str                       # "dense" | "dense_rec" | "conv"
    synapse: str
    neuron: str
    recurrent: str | None = None    # the population's own recurrent Dense
    delay: str | None = None        # the NIR Delay before the synapse
    flatten_before: bool = False


@dataclass
class NetxChain:
    input: str
    layers: list[NetxLayer] = field(default_factory=list)
    output: str = ""


def _problem(node: str, field_name: str, reason: str) -> UnsupportedError:
    return UnsupportedError(node, field_name, reason, backend=FORMAT)


def netx_chain(program: Program) -> tuple[NetxChain | None, list[UnsupportedError]]:
    """The program read as netx's chain of layers, or every reason it is not one."""
    if len(program.inputs) != 1 or len(program.outputs) != 1:
        extra = (program.inputs[1:] or program.outputs[1:] or ["<graph>"])[0]
        return None, [_problem(extra, "inputs" if len(program.inputs) != 1 else "outputs",
                               f"{len(program.inputs)} inputs and {len(program.outputs)} "
                               "outputs: a netx network has one of each")]
    chain = NetxChain(program.inputs[0])
    problems: list[UnsupportedError] = []
    current = program.inputs[0]
    while True:
        feedback = program.ops[current].recurrent         # the population's own dense_rec
        nxt = [c for c in program.consumers(current) if c.name not in feedback]
        outputs = [c for c in nxt if isinstance(c, OutputOp)]
        nxt = [c for c in nxt if not isinstance(c, OutputOp)]
        if outputs:
            if nxt:
                problems.append(_problem(current, "outputs", "read out and also feeding further "
                                         "layers: netx's output is its last layer"))
                break
            chain.output = outputs[0].name
            break
        if len(nxt) != 1:
            problems.append(_problem(current, "outputs", f"feeds {len(nxt)} nodes: a netx "
                                     "network is a chain without branches"))
            break
        op = nxt[0]
        delay = None
        if isinstance(op, ReshapeOp):          # netx flattens where a dense layer reads a map
            current = op.name
            continue
        if isinstance(op, DelayOp):
            delay, cons = op.name, program.consumers(op.name)
            if len(cons) != 1:
                problems.append(_problem(op.name, "outputs", "a delay feeding several nodes"))
                break
            op = cons[0]
        if not op.synaptic:
            problems.append(_problem(op.name, "inputs", "a netx layer starts with a synapse"))
            break
        layer, why = _layer(program, op, delay)
        if why:
            problems.append(why)
            break
        conv_before = chain.layers[-1].kind == "conv" if chain.layers \
            else len(program.ops[chain.input].shape) == 3
        if isinstance(op, ConvOp) and chain.layers and not conv_before:
            problems.append(_problem(op.name, "type", "a convolution after a dense layer: netx "
                                     "gives a dense layer no spatial shape"))
            break
        # a dense layer reading a (W, H, C) map needs netx's flatten (C, H, W order: ours)
        layer.flatten_before = layer.kind != "conv" and conv_before
        chain.layers.append(layer)
        current = layer.neuron
    return (None, problems) if problems else (chain, [])


def _layer(program: Program, op, delay) -> tuple[NetxLayer | None, UnsupportedError | None]:
    cons = program.consumers(op.name)
    if len(cons) != 1 or not isinstance(cons[0], NeuronOp):
        return None, _problem(op.name, "outputs", "a netx layer's synapse feeds its one neuron "
                              "population directly")
    neuron = cons[0]
    if isinstance(op, ConvOp):
        (pt, pb), (pl, pr) = op.padding
        if pt != pb or pl != pr:
            return None, _problem(op.name, "padding", "asymmetric padding: netx's Conv takes "
                                  "one padding per axis")
        if delay:
            return None, _problem(delay, "delay", "a delay before a convolution: netx conv "
                                  "layers have no delays")
    recurrent = [s for s in neuron.inputs if s != op.name]
    if any(s not in neuron.recurrent for s in recurrent):
        return None, _problem(neuron.name, "inputs", "several synapses into one population: a "
                              "netx layer has one (and optionally its own recurrent dense one)")
    kind = "conv" if isinstance(op, ConvOp) else "dense"
    rec = None
    if recurrent:
        r = program.ops[recurrent[0]]
        if (len(recurrent) != 1 or not isinstance(r, (DenseOp, ScaleOp)) or r.inputs != [neuron.name]
                or kind != "dense"):
            return None, _problem(neuron.name, "recurrent", "a recurrent edge other than the "
                                  "population's own dense synapse after a dense layer "
                                  "(netx dense_rec)")
        kind, rec = "dense_rec", r.name
    return NetxLayer(kind, op.name, neuron.name, rec, delay), None


def netx_problems(l2: Loihi2Program) -> list[UnsupportedError]:
    """Why a netx file cannot hold the target's form of a graph (empty: it can)."""
    if l2.groups:
        return [_problem(name, "tau", f"split into {len(parts)} populations by decay for the "
                         "stock processes; a netx layer holds one neuron configuration")
                for name, parts in l2.groups.items()]
    chain, problems = netx_chain(l2.program)
    for layer in chain.layers if chain else []:
        if layer.kind != "conv" and not np.any(l2.fixed.params[layer.synapse].weight):
            problems.append(_problem(layer.synapse, "weight", "all weights quantise to 0: "
                                     "lava-dl's loader scales a dense layer by its largest "
                                     "weight and fails"))
    return problems


# --- writing ------------------------------------------------------------------------------

def _dense_weight(l2: Loihi2Program, name: str) -> np.ndarray:
    op = l2.program.ops[name]
    mant = l2.fixed.params[name].weight.astype(np.int64)
    if isinstance(op, ScaleOp):
        return np.diag(mant.reshape(-1))
    return mant


def _neuron_group(group, p) -> None:
    group["type"] = np.bytes_("CUBA")
    group["iDecay"] = np.int64(np.ravel(p.du)[0] + 1)       # netx: du = iDecay - 1
    group["vDecay"] = np.int64(np.ravel(p.dv)[0])
    group["vThMant"] = np.int64(np.ravel(p.v_th)[0])
    group["refDelay"] = np.int64(1)
    group["gradedSpike"] = np.bool_(False)


def _bias(op: NeuronOp, p, conv: bool) -> np.ndarray | None:
    mant = np.asarray(p.bias, np.int64) >> BIAS_EXP           # netx: bias_mant at exponent 6
    if not mant.any():
        return None
    if conv:                                                # a conv layer's neurons are (W, H, C)
        return mant.reshape(op.shape).transpose(2, 1, 0)
    return mant.reshape(-1)


def write_netx(l2: Loihi2Program, path) -> Path:
    """Write the target's form of a Program as a netx file (atomically)."""
    problems = netx_problems(l2)
    if problems:
        raise problems[0]
    chain, _ = netx_chain(l2.program)
    import h5py
    path = require_folder(path)
    program = l2.program

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            layers = f.create_group("layer")
            index = 0

            def new(kind: str):
                nonlocal index
                group = layers.create_group(str(index))
                group["type"] = np.bytes_(kind)
                index += 1
                return group

            inp = new("input")
            inp["shape"] = np.asarray(program.ops[chain.input].shape, np.int64)
            names = [chain.input]
            for layer in chain.layers:
                if layer.flatten_before:
                    new("flatten")
                    names.append("")
                syn, neuron = program.ops[layer.synapse], program.ops[layer.neuron]
                group = new(layer.kind)
                group["shape"] = np.asarray(neuron.shape, np.int64)
                if isinstance(syn, ConvOp):
                    group["weight"] = l2.fixed.params[syn.name].weight.astype(np.int64)
                    group["stride"] = np.asarray(syn.stride, np.int64)
                    group["padding"] = np.asarray([syn.padding[0][0], syn.padding[1][0]], np.int64)
                    group["dilation"] = np.asarray(syn.dilation, np.int64)
                    group["groups"] = np.int64(syn.groups)
                else:
                    weight = _dense_weight(l2, syn.name)
                    group["weight"] = weight
                    if layer.recurrent:
                        group["weight_rec"] = _dense_weight(l2, layer.recurrent)
                    if layer.delay:
                        steps = np.asarray(program.ops[layer.delay].steps, np.int64).reshape(-1)
                        group["delay"] = np.broadcast_to(steps[None, :], weight.shape).copy()
                p = l2.fixed.params[neuron.name]
                bias = _bias(neuron, p, layer.kind == "conv")
                if bias is not None:
                    group["bias"] = bias
                _neuron_group(group.create_group("neuron"), p)
                names.append(neuron.name)
            f.attrs[LAYERS_ATTR] = json.dumps(names)
            f.attrs[INPUT_SCALE_ATTR] = float(l2.fixed.input_scale)
            f.attrs[LATENCY_ATTR] = int(schedule(program).window(0))
            f.attrs[RESET_OFFSET_ATTR] = 1
            f.attrs[MESSAGE_BITS_ATTR] = GRADED_MESSAGE_BITS
            steps = program.meta(NUM_STEPS)
            if steps is not None:
                f.attrs[NUM_STEPS_ATTR] = int(steps)

    return write_bytes(path, in_memory(write))
