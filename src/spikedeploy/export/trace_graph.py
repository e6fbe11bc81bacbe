"""A traced model (:mod:`spikedeploy.models.trace`) -> the nodes and edges of its NIR graph.

One time step of the model becomes the graph: every layer the model calls
is one node (its converter's), values a step reads from the step before
become recurrent edges, and the tensor operations of the model's own code
that have a NIR meaning become NIR structure:

* ``a + b`` (a sum of currents): two edges into the consumer (NIR sums fan-in);
  ``a - b`` the same with ``b`` through a ``nir.Scale(-1)``;
* ``x * c``, ``x / c``, ``-x`` for a constant ``c`` (a number or a tensor the
  model holds): ``nir.Scale``;
* ``view``/``reshape``/``flatten`` keeping the batch: ``nir.Flatten`` when
  it flattens, else nothing (NIR's layout is C order either way, and every
  consumer reads its own shape);
* ``.to()``, ``.float()``, ``.detach()``, ``.clone()``, ``.contiguous()``: nothing;
* ``torch.stack`` of a layer's per-step outputs: the graph's output.

Layers defined but not used, or whose results do not reach the output, are
left out. Anything else on the path to the output is refused naming the
operation and its source line. A neuron's state (``mem``, ``syn``, ``spk``
passed back into the same neuron) is its own business; passing anything
else as a state, or using a state as a layer's input, is refused.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import nir
import numpy as np
import snntorch as snn
import torch
from torch import nn

from ..errors import SpikedeployError
from ..graph_order import depth_first_order
from ..models.neurons import is_neuron
from ..models.trace import INPUT, Call, Const, ModuleTrace, Value
from .layers import BATCHNORMS, INPUT as BLOCK_INPUT, Block, convert_block, convert_with_batchnorm, \
    maxpool_of_spikes
from .neuron_nodes import float64

SUM_OPS = {"add", "add_", "__add__", "__radd__", "__iadd__"}
SUB_OPS = {"sub", "sub_", "__sub__", "__isub__"}
SCALE_OPS = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "div", "div_", "__truediv__",
             "__itruediv__", "neg", "__neg__", "true_divide"}
RESHAPE_OPS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "view_as", "reshape_as"}
IDENTITY_OPS = {"to", "float", "double", "detach", "clone", "contiguous", "type_as", "type"}
OUTPUT_OPS = {"stack", "cat"}
# snnTorch neurons: names of their outputs, in order (a state argument must be the same
# neuron's output of the same name from the previous step)
STATE_PORTS = {snn.Leaky: ("spk", "mem"), snn.Synaptic: ("spk", "syn", "mem"),
               snn.RLeaky: ("spk", "mem"), snn.RSynaptic: ("spk", "syn", "mem")}


@dataclass(frozen=True)
class Source:
    """Where a value comes from: output ``port`` of node ``node``, ``delay`` steps ago."""
    node: str
    port: int = 0
    delay: int = 0


@dataclass
class TracedGraph:
    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)       # (src, dst)
    delayed: set = field(default_factory=set)       # edges that read the previous step
    output_shape: tuple = ()                        # one step of the model's first output
    readout: str | None = None                      # "last_step" if the model returns only it


def _short(where: str) -> str:
    return where.replace(".py:", "_").replace(".", "_").replace(":", "_")


class _Builder:
    def __init__(self, trace: ModuleTrace, dt: float):
        self.trace, self.dt = trace, dt
        self.by_node: dict[str, list[Call]] = {}
        for call in trace.calls:
            self.by_node.setdefault(call.node, []).append(call)
        self.static = self._static_nodes()
        self.rep = 1 if trace.num_steps > 1 else 0          # the step the graph is read from
        self.graph = TracedGraph()
        self.names: dict[str, str] = {INPUT: "input"}       # trace node -> NIR node name
        self.converted: dict[str, list[Source]] = {}         # trace node -> its output sources
        self.used_names: set = {"input", "output"}

    # -- which run of a node is which step ---------------------------------------------
    def _static_nodes(self) -> set:
        """Nodes computed once (from the static input only); checks every layer runs once per
        step (``Call.step``: the step of a run, None when static)."""
        static = set()
        for node, calls in self.by_node.items():
            if all(c.step is None for c in calls):
                static.add(node)
                continue
            if calls[0].module is None:
                continue                       # ops: one node per occurrence within a step
            steps = [c.step for c in calls]
            if len(set(steps)) != len(steps) or len(steps) != self.trace.num_steps:
                raise SpikedeployError(f"'{_display(node)}' runs {len(steps)} times in "
                                       f"{self.trace.num_steps} time steps; a NIR node is one "
                                       "layer applied once per step")
        return static

    def call_at(self, node: str, step: int) -> Call:
        calls = self.by_node[node]
        if node in self.static:
            return calls[0]
        for call in calls:
            if call.step == step:
                return call
        raise SpikedeployError(f"'{_display(node)}' does not run at step {step}")

    def call_of(self, value: Value) -> Call:
        for call in self.by_node[value.source]:
            if call.index == value.call:
                return call
        raise SpikedeployError(f"no record of '{_display(value.source)}' run {value.call}")

    # -- values -> sources -------------------------------------------------------------
    def sources(self, value, step: int, where: str) -> list[Source]:
        """The node outputs a value read at ``step`` is the sum of (dissolving sums, casts and
        non-flattening reshapes), with the steps each lags."""
        if isinstance(value, Const):
            if value.is_zero:
                return []
            raise SpikedeployError(f"{where}: a constant tensor enters the computation (a "
                                   "constant input current); give the layer a bias instead")
        if not isinstance(value, Value):
            raise SpikedeployError(f"{where}: unsupported argument {value!r}")
        if value.source == INPUT:
            delay = 0 if value.call < 0 else step - value.call
            return [Source(INPUT, 0, self._delay(delay, where))]
        node = value.source
        call = self.call_of(value)
        made = call.step
        delay = 0 if made is None else self._delay(step - made, where)
        if delay and node in self.static:
            delay = 0
        return [Source(s.node, s.port, self._delay(s.delay + delay, where))
                for s in self.node_output(node, call, value.port)]

    @staticmethod
    def _delay(delay: int, where: str) -> int:
        if delay not in (0, 1):
            raise SpikedeployError(f"{where}: reads a value from {delay} steps back; a NIR "
                                   "edge reads the same step or (closing a cycle) the previous one")
        return delay

    def node_output(self, node: str, call: Call, port: int) -> list[Source]:
        """The sources standing for output ``port`` of ``node`` (converting it if needed)."""
        if call.module is not None:
            if port != 0:
                raise SpikedeployError(f"'{_display(node)}': its output {port} "
                                       f"({_port_name(call.module, port)}) is used as a layer's "
                                       "input or the model's output; a NIR neuron node outputs "
                                       "spikes only: use the spikes")
            self.convert_module(node)
            return self.converted[node]
        return self.convert_op(node, port)

    # -- leaf modules ------------------------------------------------------------------
    def convert_module(self, node: str) -> None:
        if node in self.names or node in self.converted:
            return
        call = self.call_at(node, self.rep)
        module = call.module
        where = f"'{_display(node)}'"
        data, state = _split_args(module, call)
        self._check_state(node, module, state)
        if data is None:
            raise SpikedeployError(f"{where} is called without an input tensor")
        step = self.rep if node not in self.static else 0
        in_shape = _in_shape(call)
        if not isinstance(module, (nn.MaxPool2d, *BATCHNORMS)):
            # built before its inputs are resolved, so a loop back into it finds it
            name = self._name(node)
            self.names[node] = name
            block = convert_block(name, module, in_shape, self.dt)
            self._add_nodes(node, block)
            self.converted[node] = [Source(o) for o in block.outputs if o != BLOCK_INPUT]
            self._wire(node, block, self.sources(data, step, where))
            return
        inputs = self.sources(data, step, where)     # what feeds it decides how it converts
        producer = self._foldable(inputs) if isinstance(module, BATCHNORMS) else None
        if producer is not None:      # BatchNorm right after a Conv/Linear: folded into it
            name = self.names[producer]
            p_call = self.call_at(producer, self.rep)
            block = convert_with_batchnorm(name, p_call.module, module, _in_shape(p_call), self.dt)
            self.graph.nodes[name] = block.nodes[name]
            self.converted[node] = [Source(name)]
            return
        name = self._name(node)
        self.names[node] = name
        if isinstance(module, nn.MaxPool2d) and self._binary(inputs):
            block = maxpool_of_spikes(name, module, in_shape)
        else:
            block = convert_block(name, module, in_shape, self.dt)
        self._add_nodes(node, block)
        self._wire(node, block, inputs)

    def _foldable(self, inputs: list[Source]) -> str | None:
        """The Conv2d/Conv1d/Linear a BatchNorm reads, if that is all the BatchNorm reads and the
        BatchNorm all that reads it (then the BatchNorm folds into its weights)."""
        if len(inputs) != 1 or inputs[0].delay:
            return None
        producer = self._producer_module(inputs[0].node)
        if producer is None or not isinstance(self.by_node[producer][0].module,
                                              (nn.Conv2d, nn.Conv1d, nn.Linear)):
            return None
        consumers = {c.node for c in self.trace.calls if c.node != producer and
                     any(isinstance(v, Value) and v.source == producer for v in _values(c))}
        return producer if len(consumers) == 1 else None

    def _producer_module(self, nir_name: str) -> str | None:
        for node, name in self.names.items():
            if name == nir_name and node in self.by_node and self.by_node[node][0].module is not None:
                return node
        return None

    def _binary(self, inputs: list[Source]) -> bool:
        """Whether the values are spikes of 0/1: one source, a spiking non-graded neuron."""
        if len(inputs) != 1:
            return False
        node = next((n for n, name in self.names.items() if name == inputs[0].node), None)
        module = self.by_node[node][0].module if node in self.by_node else None
        if module is None or not is_neuron(module) or not getattr(module, "spiking", True):
            return False
        factor = getattr(module, "graded_spikes_factor", None)
        return factor is None or bool(np.all(float64(factor) == 1.0))

    def _check_state(self, node, module, state: dict) -> None:
        """A neuron's state arguments: zero at step 0, its own outputs of the step before."""
        ports = STATE_PORTS.get(type(module))
        for arg, value in state.items():
            if value is None:
                continue
            if ports is None:
                raise SpikedeployError(f"'{_display(node)}' is called with a second argument "
                                       f"'{arg}'; only snnTorch neurons take a state")
            for call in self.by_node[node]:
                got = _bound_state(module, call).get(arg)
                if got is None:
                    continue
                step = call.step
                if isinstance(got, Const) and got.is_zero and (step == 0 or step is None):
                    continue
                want = Value(node, ports.index(arg) if arg in ports else -1,
                             -1 if step is None else call.index - 1)
                if not (isinstance(got, Value) and got.source == node and got.port == want.port
                        and got.call == want.call):
                    raise SpikedeployError(
                        f"'{_display(node)}' at step {step} gets '{arg}' that is not its own "
                        f"'{arg}' of the step before" + (" (a non-zero initial state)" if step == 0
                                                         else ""))

    def _add_nodes(self, node: str, block: Block) -> None:
        for nir_name, nir_node in block.nodes.items():
            if nir_name in self.graph.nodes or nir_name in ("input", "output"):
                raise SpikedeployError(f"layer '{_display(node)}' produces node '{nir_name}', which "
                                       "exists already; name the layers explicitly")
            self.graph.nodes[nir_name] = nir_node
            self.used_names.add(nir_name)

    def _wire(self, node: str, block: Block, inputs: list[Source]) -> None:
        """The block's edges (those from its input, from ``inputs``) and its outputs."""
        for a, b in block.edges:
            if a == BLOCK_INPUT:
                self._connect(inputs, b)
            else:
                self.graph.edges.append((a, b))
        outs = []
        for out in block.outputs:
            outs += inputs if out == BLOCK_INPUT else [Source(out)]
        self.converted[node] = outs

    def _connect(self, inputs: list[Source], dst: str) -> None:
        for src in inputs:
            edge = (src.node, dst)
            self.graph.edges.append(edge)
            if src.delay:
                self.graph.delayed.add(edge)

    def _name(self, node: str) -> str:
        call = self.by_node[node][0]
        base = node if call.module is not None else f"{_op_kind(call.func)}_{_short(call.where)}"
        return self._unique(base)

    # -- tensor ops ------------------------------------------------------------------------
    def convert_op(self, node: str, port: int) -> list[Source]:
        if node in self.converted:
            return self.converted[node]
        call = self.call_at(node, self.rep)
        step = self.rep if node not in self.static else 0
        func, where = call.func, call.where
        if func in SUM_OPS or func in SUB_OPS:
            a, b = (call.args + [call.kwargs.get("other")])[:2]
            alpha = call.kwargs.get("alpha")
            if isinstance(alpha, Const) and alpha.value != 1:
                raise SpikedeployError(f"{where}: {func} with alpha != 1")
            out = self.sources(a, step, where)
            rest = self.sources(b, step, where)
            if func in SUB_OPS:
                rest = self._scaled(rest, -1.0, call, "neg")
            out = out + rest
        elif func in SCALE_OPS:
            out = self._scale_op(call, step)
        elif func in IDENTITY_OPS:
            out = self.sources(call.args[0], step, where)
        elif func in RESHAPE_OPS:
            out = self._reshape(call, step)
        else:
            raise SpikedeployError(f"{where}: torch.{func.strip('_')} on layer outputs has no NIR "
                                   "equivalent (NIR sums weighted inputs: +, -, scaling by "
                                   "constants and reshapes are what a graph can express)")
        self.converted[node] = out
        return out

    def _scale_op(self, call: Call, step) -> list[Source]:
        func, where = call.func, call.where
        tracked = [(i, a) for i, a in enumerate(call.args) if isinstance(a, Value)]
        if len(tracked) != 1:
            raise SpikedeployError(f"{where}: {func.strip('_')} of two layer outputs (a product of "
                                   "activations) has no NIR equivalent")
        index, value = tracked[0]
        if func in ("neg", "__neg__"):
            factor = -1.0
        else:
            other = call.args[1 - index] if len(call.args) > 1 else call.kwargs.get("other")
            factor = other.value if isinstance(other, Const) else None
            if factor is None:
                raise SpikedeployError(f"{where}: {func.strip('_')} by a non-constant")
            if torch.is_tensor(factor):
                factor = factor.detach().double().numpy()
            factor = np.asarray(factor, np.float64)
            if "div" in func:
                if index != 0:
                    raise SpikedeployError(f"{where}: dividing by a layer's output has no NIR "
                                           "equivalent")
                factor = 1.0 / factor
        return self._scaled(self.sources(value, step, where), factor, call, "scale")

    def _scaled(self, inputs: list[Source], factor, call: Call, kind) -> list[Source]:
        shape = tuple(call.outputs[0][1:])
        factor = np.asarray(factor, np.float64)
        extra = factor.ndim - len(shape)
        if extra > 0:                 # leading (batch) dimensions of the factor must be 1
            if int(np.prod(factor.shape[:extra])) != 1:
                raise SpikedeployError(f"{call.where}: the factor varies over the batch")
            factor = factor.reshape(factor.shape[extra:])
        try:
            scale = np.broadcast_to(factor, shape).copy()
        except ValueError:
            raise SpikedeployError(f"{call.where}: the factor of shape {factor.shape} does not fit "
                                   f"the per-sample shape {shape}")
        name = self._unique(f"{kind}_{_short(call.where)}")
        self.graph.nodes[name] = nir.Scale(scale=scale)
        self._connect(inputs, name)
        return [Source(name)]

    def _reshape(self, call: Call, step) -> list[Source]:
        where = call.where
        inputs = self.sources(call.args[0], step, where)
        in_shape, out_shape = call.arg_shapes[0], call.outputs[0]
        if not in_shape or not out_shape or in_shape[0] != out_shape[0]:
            raise SpikedeployError(f"{where}: {call.func} moves the batch dimension "
                                   f"({tuple(in_shape or ())} -> {tuple(out_shape or ())}); NIR "
                                   "shapes exclude the batch")
        in_shape, out_shape = tuple(in_shape[1:]), tuple(out_shape[1:])
        if len(out_shape) != 1 or len(in_shape) == 1:
            return inputs                      # the flat C-order data is unchanged
        name = self._unique(f"flatten_{_short(where)}")
        self.graph.nodes[name] = nir.Flatten(input_type={"input": np.array(in_shape)},
                                             start_dim=0, end_dim=len(in_shape) - 1)
        self._connect(inputs, name)
        return [Source(name)]

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.used_names:
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    # -- the output -------------------------------------------------------------------------
    def output_sources(self) -> list[Source]:
        returned = self.trace.returned
        if self.trace.style == "step":
            value = returned[self.rep] if len(returned) > self.rep else returned[-1]
            self.graph.output_shape = self._shape_of(value)
            return self._checked_output(self.sources(value, self.rep, "the model's output"))
        value = returned[0]
        if isinstance(value, Value) and value.source != INPUT:
            call = self.call_of(value)
            if call.func in OUTPUT_OPS and call.module is None:
                self.graph.output_shape = tuple(call.outputs[0][2:])
                return self._stacked(call)
            if call.step == self.trace.num_steps - 1:
                self.graph.readout = "last_step"
                self.graph.output_shape = self._shape_of(value)
                sources = self.sources(value, self.trace.num_steps - 1, "the model's output")
                return self._checked_output(sources)
        raise SpikedeployError("the model's first output is not a layer's output at every step "
                               "(return torch.stack of the per-step spikes, or the last step's)")

    def _stacked(self, call: Call) -> list[Source]:
        if call.func == "cat":
            raise SpikedeployError(f"{call.where}: torch.cat of the steps: use torch.stack")
        items = call.args[0] if call.args and isinstance(call.args[0], list) else None
        dim = call.kwargs.get("dim", call.args[1] if len(call.args) > 1 else Const(0))
        if items is None or not isinstance(dim, Const) or dim.value != 0 or \
                len(items) != self.trace.num_steps:
            raise SpikedeployError(f"{call.where}: the model's output must stack one value per "
                                   "time step along dim 0")
        sources = [self.sources(v, t, "the model's output") for t, v in enumerate(items)]
        if any(s != sources[self.rep] for s in sources[1:]):
            raise SpikedeployError(f"{call.where}: the stacked outputs come from different layers "
                                   "at different steps")
        return self._checked_output(sources[self.rep])

    def _shape_of(self, value) -> tuple:
        if not isinstance(value, Value) or value.source == INPUT:
            return tuple(self.trace.input_shape)
        shape = self.call_of(value).outputs[value.port]
        return tuple(shape[1:]) if shape else ()

    @staticmethod
    def _checked_output(sources: list[Source]) -> list[Source]:
        if any(s.delay for s in sources):
            raise SpikedeployError("the model's output is a value of the previous step")
        if not sources:
            raise SpikedeployError("the model's output does not depend on its input")
        return sources


def _in_shape(call: Call) -> tuple:
    """The per-sample shape of a call's first (data) argument."""
    shape = call.arg_shapes[0] if call.arg_shapes else None
    return tuple(int(s) for s in shape[1:]) if shape else ()


def _display(node: str) -> str:
    """A node's name for messages: a layer's name, or an op's name and source line."""
    if "@" not in node:
        return node
    func, _, rest = node.partition("@")
    return f"{func} at {rest.split('+')[0]}"


def _op_kind(func: str) -> str:
    return func.strip("_") or "op"


def _values(call: Call) -> list:
    out = []
    for v in list(call.args) + list(call.kwargs.values()):
        out.extend(v if isinstance(v, list) else [v])
    return out


def _port_name(module, port: int) -> str:
    ports = STATE_PORTS.get(type(module))
    return ports[port] if ports and port < len(ports) else f"output {port}"


def _bound_state(module, call: Call) -> dict:
    """The state arguments of a neuron call by parameter name (input excluded)."""
    try:
        params = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        params = []
    named = dict(zip(params, call.args))
    named.update(call.kwargs)
    first = params[0] if params else None
    return {k: v for k, v in named.items() if k != first}


def _split_args(module, call: Call):
    """(data input, state arguments) of a leaf call."""
    data = call.args[0] if call.args else next(iter(call.kwargs.values()), None)
    return data, _bound_state(module, call)


def build_graph(trace: ModuleTrace, dt: float) -> TracedGraph:
    """The NIR nodes and edges (Input and Output nodes named "input" and "output" are the
    caller's) of a traced model."""
    b = _Builder(trace, dt)
    b._connect(b.output_sources(), "output")
    _place_delays(b.graph, dt)
    # nodes were converted from the output back; list them in execution order
    order, _, unreached = depth_first_order(["input", *b.graph.nodes, "output"],
                                            b.graph.edges, ["input"])
    b.graph.nodes = {n: b.graph.nodes[n] for n in order + unreached if n in b.graph.nodes}
    return b.graph


# Nodes a one-step delay may move across: stateless, and not recorded by any comparison.
SHIFTABLE = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.Scale, nir.SumPool2d,
             nir.AvgPool2d, nir.Flatten)


def _place_delays(g: TracedGraph, dt: float) -> None:
    """Make the edges NIR's ordering reads from the previous step the ones the model does.

    NIR's rule (:mod:`spikedeploy.graph_order`): the depth-first back edge of
    a cycle reads the previous step. A delayed edge in no cycle becomes a NIR
    Delay node of one step. In a cycle, the search may pick another edge
    than the model's; that is the same computation when only stateless
    synapses (weights, pooling, Flatten) with no other reader lie between
    the two edges (a delay commutes with them), and is refused otherwise.
    """
    for edge in sorted(g.delayed):
        src, dst = edge
        others = [e for e in g.edges if e != edge]
        if not _reaches(others, dst, src):
            name = f"{src}_delay_{dst}"
            g.nodes[name] = nir.Delay(delay=np.full(_node_size(g.nodes.get(src)), dt))
            g.edges.remove(edge)
            g.edges += [(src, name), (name, dst)]
            g.delayed.discard(edge)
    nodes = ["input"] + list(g.nodes) + ["output"]
    _, back, _ = depth_first_order(nodes, g.edges, ["input"])
    for edge in g.delayed - back:
        cycle = _cycle_nodes(g.edges, edge)
        chosen = [e for e in back if e[0] in cycle and e[1] in cycle]
        if len(chosen) == 1 and _shiftable(g, edge, chosen[0], cycle):
            continue
        raise SpikedeployError(f"the loop {edge[0]} -> {edge[1]} reads the previous step there, "
                               "but NIR's ordering would delay another edge of it; restructure "
                               "the loop (e.g. feed the previous step's spikes into a synapse "
                               "that only the neuron reads)")


def _shiftable(g: TracedGraph, delayed: tuple, back: tuple, cycle: set) -> bool:
    """Whether the nodes between the model's delayed edge and NIR's back edge are all
    synapses read only along the loop (moving the delay across them changes nothing)."""
    same = [e for e in g.edges if e not in (delayed, back) and e[0] in cycle and e[1] in cycle]
    path = _path(same, delayed[1], back[0]) or _path(same, back[1], delayed[0])
    if path is None:
        return False
    readers = {n: [b for a, b in g.edges if a == n] for n in path}
    return all(isinstance(g.nodes.get(n), SHIFTABLE) and len(readers[n]) == 1 for n in path)


def _path(edges, start, goal) -> list | None:
    """A shortest path start -> goal along ``edges`` (its nodes, both ends included), or None."""
    succ: dict = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    parent, todo = {start: None}, [start]
    while todo:
        node = todo.pop(0)
        if node == goal:
            out = []
            while node is not None:
                out.append(node)
                node = parent[node]
            return out[::-1]
        for nxt in succ.get(node, []):
            if nxt not in parent:
                parent[nxt] = node
                todo.append(nxt)
    return None


def _reaches(edges, start, goal) -> bool:
    return _path(edges, start, goal) is not None


def _cycle_nodes(edges, edge) -> set:
    src, dst = edge
    forward = {n for n in _all_nodes(edges) if _reaches(edges, dst, n)}
    backward = {n for n in _all_nodes(edges) if _reaches(edges, n, src)}
    return forward & backward


def _all_nodes(edges) -> set:
    return {n for e in edges for n in e}


def _node_size(node) -> int:
    out = getattr(node, "output_type", None) or {}
    shape = next(iter(out.values()), None)
    if shape is not None:
        return int(np.prod(np.atleast_1d(shape)))
    for key in ("v_threshold", "tau", "r", "scale", "threshold"):
        value = getattr(node, key, None)
        if value is not None:
            return int(np.size(value))
    raise SpikedeployError("cannot size a delay for a non-recurrent previous-step edge")
