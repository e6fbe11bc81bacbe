"""Run a netx file with lava-dl's own loader, under ``Loihi2SimCfg(select_tag='fixed_pt')``.

Imported in the Lava worker. ``netx.hdf5.Network`` builds the stock
processes from the file; netx resets layer i every ``reset_interval`` steps
at offset ``reset_offset + 1 + i``, which with ``reset_offset = 1`` is the
step a sample's first input reaches it (layer i sits i + 1 synaptic hops
from the input). Samples run back to back in windows of T + L steps (plus
the room NIR Delays need), and each layer's spikes are read at its latency,
as for our own processes; synapses that could carry one sample into the
next are cleared from the host (:func:`.stock.synapses_to_clear`).
"""
from __future__ import annotations

import json

import numpy as np

from ...compat.netx import import_netx
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.source import RingBuffer as SourceBuffer

from ...ir.ops import DelayOp, Program
from ..lava_builders import GRADED_MESSAGE_BITS, binary_input, input_stream
from ..lava_compiler import Recorders, align_windows, run_windows
from ..timing import schedule
from .netx_file import LAYERS_ATTR
from .stock import synapses_to_clear


def _flat(port):
    """A netx port as our flat C-order vector (a conv layer's is (W, H, C))."""
    if len(port.shape) != 3:
        return port
    return port.transpose((2, 1, 0)).reshape((int(np.prod(port.shape)),))


def run_netx(path, program: Program, data: dict, fixed, record: list[str]) -> tuple[dict, int]:
    import h5py
    hdf5 = import_netx()
    with h5py.File(path, "r") as f:
        names = [n for n in json.loads(f.attrs[LAYERS_ATTR]) if n]
    (inp,) = program.inputs
    x = data[inp]
    num_steps, n = x.shape[:2]
    sched = schedule(program)
    window = sched.window(num_steps)
    binary = binary_input(x, fixed.scales[inp])
    net = hdf5.Network(net_config=str(path), reset_interval=window, reset_offset=1,
                       input_message_bits=0 if binary else GRADED_MESSAGE_BITS)
    source = SourceBuffer(data=input_stream(x, window, fixed.scales[inp]))
    in_shape = program.ops[inp].shape
    port = source.s_out
    if len(net.inp.shape) == 3:           # a conv first layer reads (W, H, C)
        port = port.reshape(tuple(in_shape)).transpose((2, 1, 0))
    port.connect(net.inp)
    outputs = {name: _flat(layer.out) for layer, name in zip(net.layers, names[1:])}
    # netx blocks: ``synapse`` (Dense or, with delays, DelayDense) and, for dense_rec, the
    # population's recurrent ``synapse_rec``
    by_neuron = dict(zip(names[1:], net.layers))
    buffers = {}
    for syn, pos in synapses_to_clear(program).items():
        (neuron,) = [c.name for c in program.consumers(syn)]
        block = by_neuron[neuron]
        recurrent = syn in program.ops[neuron].recurrent
        buffers[(block.synapse_rec if recurrent else block.synapse).a_buff] = pos
    with Recorders(outputs, n * window) as recorders:
        try:
            run_windows(net, Loihi2SimCfg(select_tag="fixed_pt"), n, window, buffers)
        finally:
            net.stop()
        raw = recorders.read()
    layers = align_windows(raw, sched.latency, n, window, num_steps, "fixed")
    records = {}
    for name in record:
        op = program.ops[name]
        if isinstance(op, DelayOp):
            continue
        if name == inp:
            records[name] = np.round(x * fixed.scales[inp]).astype(np.int64)
            continue
        src = program.through_copies(name)        # Flatten/Output: their layer's spikes
        if src.name in layers:
            records[name] = layers[src.name]
    return records, sched.total_latency
