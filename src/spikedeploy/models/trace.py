"""Recording what a torch module really computes over time steps.

The exporter needs the model's graph as its ``forward`` runs it -- which
layers it calls, in which order, on which values, and which values a step
reads from the step before -- not the order its attributes were defined in.
:func:`trace_module` runs the model once on a small random input and records:

* every call of a *leaf* module (the caller says which modules are leaves:
  layers with a NIR conversion) with the values it read and the tensors it
  returned; what happens inside a leaf is not recorded;
* every torch function or tensor method the model's own code applies to a
  recorded value (``+``, ``view``, ``flatten``, ``torch.stack`` ...), with
  the source line that called it (a ``torch.overrides.TorchFunctionMode``).

A value is (source, port, call): the ``call``-th output number ``port`` of a
leaf module or an op, or the model's input. Three ways of running a model
over time are recognised (:data:`STYLES`):

* ``step``: one call is one time step (an ``nn.Sequential`` of layers and
  ``init_hidden=True`` neurons): it is called T times with (N, ...) inputs;
* ``sequence``: ``forward`` takes the whole (T, N, ...) sequence and loops
  over ``x[t]`` itself (snnTorch tutorials 7, the NIR paper's braille RNN);
* ``repeat``: ``forward`` takes one (N, ...) input and loops over its own
  number of steps, feeding the same input at every step (snnTorch tutorial 5).

A node (leaf or op) that runs once per step gets one call per step (call k
is step k); one that runs once per forward is static (computed from the
static input only, so the same at every step).
"""
from __future__ import annotations

import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import SpikedeployError, UnsupportedError, first_line
from .naming import module_names
from .neurons import reset_state

STYLES = ("step", "sequence", "repeat")
INPUT = "input"
_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.abspath(__file__)


@dataclass(frozen=True)
class Value:
    """A recorded tensor: output ``port`` of the ``call``-th run of ``source``.

    ``source`` is a node name (leaf module or op) or ``"input"``; for the input,
    ``call`` is the step of a per-step input and -1 for a static one.
    """
    source: str
    port: int = 0
    call: int = -1


@dataclass
class Const:
    """A tensor or number the model made itself (not derived from the input)."""
    value: object

    @property
    def is_zero(self) -> bool:
        if isinstance(self.value, torch.Tensor):
            return bool(self.value.numel() == 0 or not torch.any(self.value != 0))
        return self.value == 0


@dataclass
class Call:
    """One run of a node: a leaf module or a tensor op."""
    node: str
    index: int                     # the index-th run of this node
    args: list                     # Value | Const | list of them (torch.stack) | None
    kwargs: dict
    outputs: list[tuple]           # shape of each tensor output (batch included)
    arg_shapes: list = field(default_factory=list)   # shape of each tensor positional argument
    module: nn.Module | None = None
    func: str = ""                 # op name, e.g. "add", "view", "__getitem__"
    where: str = ""                # source line of an op call, "file.py:12"
    step: int | None = None        # set for step-style traces (the step being run)


@dataclass
class ModuleTrace:
    style: str
    num_steps: int
    calls: list[Call] = field(default_factory=list)
    returned: list = field(default_factory=list)   # per step (step style) or once: Value | Const
    input_shape: tuple = ()


class _Recorder(TorchFunctionMode):
    def __init__(self, state: "_State"):
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.state.depth == 0:
            self.state.record_op(func, args, kwargs, out)
        return out


class _State:
    def __init__(self, names: dict[int, str], is_leaf: Callable[[nn.Module], bool]):
        self.names, self.is_leaf = names, is_leaf
        self.values: dict[int, object] = {}      # id(tensor) -> Value
        self.keep: list = []                     # tensors kept alive: ids stay unique
        self.calls: list[Call] = []
        self.counts: dict[str, int] = {}
        self.depth = 0
        self.running: list = []                  # (module, args) of the leaves being run
        self.step: int | None = None
        self.sequence_input: int | None = None   # id of a (T, N, ...) input sliced per step
        self.probe_input: int | None = None      # id of the input whose indexing is watched
        self.input_indexed = False

    # -- values ---------------------------------------------------------------------
    def value_of(self, obj):
        if isinstance(obj, torch.Tensor):
            return self.values.get(id(obj), Const(obj))
        if isinstance(obj, (list, tuple)) and obj and all(isinstance(o, torch.Tensor) for o in obj):
            return [self.value_of(o) for o in obj]
        return Const(obj) if isinstance(obj, (int, float, bool)) else None

    def assign(self, tensor, value: Value) -> None:
        self.values[id(tensor)] = value
        self.keep.append(tensor)

    def next_index(self, node: str) -> int:
        index = self.counts.get(node, 0)
        self.counts[node] = index + 1
        return index

    # -- leaf modules ---------------------------------------------------------------
    def module_call(self, module, args, kwargs, out) -> None:
        name = self.names.get(id(module), type(module).__name__.lower())
        if self.sequence_input is not None and any(
                isinstance(a, torch.Tensor) and id(a) == self.sequence_input
                for a in _flat(list(args) + list(kwargs.values()))):
            raise SpikedeployError(f"'{name}' is applied to the whole input sequence at once; "
                                   "apply it to each step's input x[t] inside the time loop")
        index = self.next_index(name)
        outputs = out if isinstance(out, tuple) else (out,)
        self.calls.append(Call(name, index, [self.value_of(a) for a in args],
                               {k: self.value_of(v) for k, v in kwargs.items()},
                               _shapes(outputs), _shapes(args), module=module, step=self.step))
        for port, tensor in enumerate(outputs):
            if isinstance(tensor, torch.Tensor):
                self.assign(tensor, Value(name, port, index))

    # -- tensor ops -------------------------------------------------------------------
    def record_op(self, func, args, kwargs, out) -> None:
        name = getattr(func, "__name__", str(func))
        if name in ("__get__", "size", "dim", "numel", "__len__", "__format__", "__repr__",
                    "__bool__", "item", "tolist", "__iter__"):
            return
        tensors = [a for a in _flat(args) + _flat(list(kwargs.values()))
                   if isinstance(a, torch.Tensor) and id(a) in self.values]
        if not tensors:
            return                              # the model's own constants (zeros, weights)
        if self.sequence_input is not None and any(id(t) == self.sequence_input for t in tensors):
            self._slice_input(name, args, out)
            return
        if self.probe_input is not None and any(id(t) == self.probe_input for t in tensors) \
                and _step_taken(name, args) is not None:
            self.input_indexed = True
        where, offset = _call_site(with_offset=True)
        node = f"{name.strip('_')}@{where}+{offset}"     # one node per call in the source
        index = self.next_index(node)
        results = out if isinstance(out, (tuple, list)) else (out,)
        self.calls.append(Call(node, index, [self.value_of(a) for a in args],
                               {k: self.value_of(v) for k, v in kwargs.items()},
                               _shapes(results), _shapes(args), func=name, where=where,
                               step=self.step))
        for port, tensor in enumerate(results):
            if isinstance(tensor, torch.Tensor):
                self.assign(tensor, Value(node, port, index))

    def _slice_input(self, name, args, out) -> None:
        """x[t] or iteration over a (T, N, ...) input: the per-step input of step t."""
        taken = _step_taken(name, args)
        if taken == "every":
            for t, tensor in enumerate(out):
                self.assign(tensor, Value(INPUT, 0, t))
            self.input_indexed = True
            return
        rest = args[1][1:] if taken is not None and isinstance(args[1], tuple) else ()
        if taken is not None and all(r == slice(None) or r is Ellipsis for r in rest):
            self.assign(out, Value(INPUT, 0, taken % int(args[0].shape[0])))
            self.input_indexed = True
            return
        raise SpikedeployError(f"{_call_site()}: forward applies {name.strip('_')} to the whole "
                               "input sequence; index it per time step (x[t]) and apply layers "
                               "to each step's input")


def _step_taken(name: str, args):
    """Which steps of its first argument (axis 0) an op takes: "every" for iteration
    (unbind(0)), t for x[t] (or x[t, ...]), None for anything else."""
    if name == "unbind":
        return "every" if len(args) < 2 or args[1] == 0 else None
    if name == "__getitem__" and len(args) > 1:
        index = args[1]
        first = index[0] if isinstance(index, tuple) and index else index
        if isinstance(first, int) and not isinstance(first, bool):
            return first
    return None


def _shapes(items) -> list:
    return [tuple(o.shape) if isinstance(o, torch.Tensor) else None for o in items]


def _flat(items) -> list:
    out = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(_flat(item))
        else:
            out.append(item)
    return out


def _call_site(with_offset: bool = False):
    """file:line of the innermost frame outside torch and this module (the model's code);
    with ``with_offset``, also the bytecode offset (two calls on one line differ)."""
    frame = inspect.currentframe()
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename != _HERE and not filename.startswith(_TORCH_DIR):
            where = f"{os.path.basename(filename)}:{frame.f_lineno}"
            return (where, frame.f_lasti) if with_offset else where
        frame = frame.f_back
    return ("?", 0) if with_offset else "?"


def _hooks(model: nn.Module, state: _State) -> list:
    handles = []

    def pre(module, args, kwargs):
        state.depth += 1
        state.running.append((module, args))

    def post(module, args, kwargs, out):
        state.depth -= 1
        state.running.pop()
        if state.depth == 0:
            state.module_call(module, args, kwargs, out)

    for module in model.modules():
        if module is not model and state.is_leaf(module):
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(module.register_forward_hook(post, with_kwargs=True))
    return handles


@contextmanager
def _recording(model: nn.Module, state: _State):
    """Record into ``state`` while the body runs the model; the model's neuron states are
    reset before and after, and the hooks removed whatever happens."""
    reset_state(model)
    handles = _hooks(model, state)
    try:
        with _Recorder(state):
            yield
    finally:
        for handle in handles:
            handle.remove()
        reset_state(model)


def first_tensor(out):
    """A module's first output (the first tensor of nested tuples/lists; None if empty)."""
    while isinstance(out, (tuple, list)):
        if not out:
            return None
        out = out[0]
    return out


def _failed_layer(state: _State, exc: Exception, explain) -> Exception | None:
    """A one-line error for an exception raised while the model ran, naming the innermost
    layer that was running (``explain(name, module, in_shape, exc)`` may say why); None
    when no layer was running."""
    if not state.running:
        return None
    module, args = state.running[-1]
    name = state.names.get(id(module), type(module).__name__.lower())
    shape = tuple(args[0].shape[1:]) if args and isinstance(args[0], torch.Tensor) else ()
    explained = explain(name, module, shape, exc) if explain is not None else None
    if explained is not None:
        return explained
    text = first_line(exc, type(exc).__name__)
    return UnsupportedError(name, "forward", f"{type(module).__name__} fails on its input of "
                            f"shape {shape}: {text}")


@torch.no_grad()
def trace_module(model: nn.Module, input_shape: tuple, num_steps: int, style: str | None = None,
                 is_leaf: Callable[[nn.Module], bool] = lambda m: not list(m.children()),
                 batch: int = 2, seed: int = 0, explain=None) -> ModuleTrace:
    """Run ``model`` on a random input and record its computation (see module docstring).

    ``style`` None detects it: an ``nn.Sequential`` is ``step``; another module is
    probed with one (N, ...) input: if it indexes the input per step it is
    ``sequence``, if it calls its layers several times it is ``repeat``,
    else ``step``. ``num_steps``: steps traced for ``step`` and ``sequence``
    (a ``repeat`` model runs its own number of steps). An error raised inside
    a layer names that layer (``explain(name, module, in_shape, exc)``, if
    given, may return the error to raise instead).
    """
    if style is not None and style not in STYLES:
        raise SpikedeployError(f"unknown forward style {style!r} ({'|'.join(STYLES)})")
    names = module_names(model)
    generator = torch.Generator().manual_seed(seed)
    dtype = model_dtype(model)

    def sample(*shape):
        return (torch.rand(shape, generator=generator) < 0.5).to(dtype)

    if style is None:
        style = "step" if isinstance(model, nn.Sequential) else _detect(model, input_shape, names,
                                                                       is_leaf, sample, batch)
    state = _State(names, is_leaf)
    was_training = model.training
    model.eval()
    returned = []
    try:
        with _recording(model, state):
            if style == "step":
                for t in range(num_steps):
                    state.step = t
                    x = sample(batch, *input_shape)
                    state.assign(x, Value(INPUT, 0, t))
                    returned.append(state.value_of(first_tensor(model(x))))
                state.step = None
            else:
                shape = (batch, *input_shape) if style == "repeat" else \
                    (num_steps, batch, *input_shape)
                x = sample(*shape)
                state.assign(x, Value(INPUT, 0, -1))
                if style == "sequence":
                    state.sequence_input = id(x)
                returned.append(state.value_of(first_tensor(model(x))))
                if style == "sequence" and not state.input_indexed:
                    raise SpikedeployError("forward never indexes its input per time step (x[t]): "
                                           "it is not a sequence model (try --forward step)")
    except Exception as exc:   # noqa: BLE001 - the user's model failed on a valid input
        named = _failed_layer(state, exc, explain)
        if named is not None:
            raise named from None
        if isinstance(exc, SpikedeployError):
            raise
        text = first_line(exc)
        raise SpikedeployError(f"running the model ({style} style, input {tuple(input_shape)}) "
                               f"failed: {type(exc).__name__}: {text}") from None
    finally:
        model.train(was_training)
    if style == "repeat":
        counts = [state.counts[c.node] for c in state.calls if c.module is not None]
        num_steps = max(counts, default=1)
    calls, returned = _per_step_ops(state.calls, returned, style, num_steps)
    return ModuleTrace(style, num_steps, calls, returned, tuple(input_shape))


def _per_step_ops(calls: list[Call], returned: list, style: str, num_steps: int):
    """Name each op by its source position *and* its occurrence within its step.

    A line of the model may run several times per step (``total = total + y``
    in a loop over branches): each occurrence is its own node, ``site#j``,
    whose call index is its step (0 when static). The step of an op is the
    latest step of its arguments (the step being run, for step-style traces).
    Layers are nodes as they are: their k-th call is step k, or static if
    called once.
    """
    module_counts: dict[str, int] = {}
    for call in calls:
        if call.module is not None:
            module_counts[call.node] = module_counts.get(call.node, 0) + 1
    renamed: dict[tuple, Value] = {}
    steps: dict[tuple, int | None] = {}

    def step_of(value):
        if isinstance(value, list):
            found = [s for s in (step_of(v) for v in value) if s is not None]
            return max(found, default=None)
        if not isinstance(value, Value):
            return None
        if value.source == INPUT:
            return None if value.call < 0 else value.call
        return steps.get((value.source, value.call))

    def rename(value):
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, Value) and (value.source, value.call) in renamed:
            new = renamed[(value.source, value.call)]
            return Value(new.source, value.port, new.call)
        return value

    occurrences: dict[tuple, int] = {}
    for call in calls:
        call.args = [rename(a) for a in call.args]
        call.kwargs = {k: rename(v) for k, v in call.kwargs.items()}
        if call.module is not None:
            static = style != "step" and module_counts[call.node] == 1 and num_steps > 1
            call.step = None if static else (call.step if style == "step" else call.index)
            steps[(call.node, call.index)] = call.step
            continue
        step = call.step if style == "step" else step_of(call.args + list(call.kwargs.values()))
        j = occurrences.get((call.node, step), 0)
        occurrences[(call.node, step)] = j + 1
        old = (call.node, call.index)
        call.node, call.index, call.step = f"{call.node}#{j}", 0 if step is None else step, step
        renamed[old] = Value(call.node, 0, call.index)
        steps[(call.node, call.index)] = step
    return calls, [rename(r) for r in returned]


def _detect(model, input_shape, names, is_leaf, sample, batch) -> str:
    """Probe with one (N, ...) input: sequence if it indexes it per step, repeat if it calls
    its layers several times, step otherwise."""
    state = _State(names, is_leaf)
    x = sample(batch, *input_shape)
    state.assign(x, Value(INPUT, 0, -1))
    state.probe_input = id(x)
    error = None
    try:
        with _recording(model, state):
            model(x)
    except Exception as exc:   # noqa: BLE001 - e.g. a sequence model given one step
        error = exc
    if state.input_indexed:
        return "sequence"
    if error is not None:
        return "sequence"       # a per-step input did not fit: try the sequence form
    layer_calls = [c.node for c in state.calls if c.module is not None]
    return "repeat" if len(layer_calls) != len(set(layer_calls)) else "step"


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter or buffer (else torch's default)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()
