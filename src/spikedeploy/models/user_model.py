"""A user's own model: ``path/to/net.py:NAME`` and a state_dict file, loaded safely.

``NAME`` is an ``nn.Module`` subclass constructible without arguments, or a
function with no arguments returning a module. The Python file is the
user's code and runs (it defines the model); the weights never do: a
``.pt``/``.pth`` file is read with ``torch.load(weights_only=True)`` (a file
that needs pickle -- a whole pickled model -- is refused, never unpickled),
a ``.safetensors`` file with safetensors. Every failure is one line naming
the file (and line, for errors in the user's code).
"""
from __future__ import annotations

import hashlib
import importlib.util
import pickle
import sys
import traceback
from pathlib import Path

import torch
from torch import nn

from ..errors import SpikedeployError, first_line
from .checkpoint import check_state

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")   # common checkpoint layouts


INIT_SEED = 0        # torch's seed while the user's model is built


def load_user_model(spec: str, weights: str | None = None) -> nn.Module:
    """The module ``spec`` ("file.py:NAME") names, in eval mode, with ``weights`` loaded.

    The module is built with torch seeded to ``INIT_SEED`` (the caller's random
    state is left as it was), so without ``weights`` every load gives the same
    initial weights."""
    path, _, name = str(spec).rpartition(":")
    if not path or not name:
        raise SpikedeployError(f"--model {spec!r}: expected path/to/file.py:NAME")
    source = _import_file(Path(path))
    if not hasattr(source, name):
        defined = sorted(k for k, v in vars(source).items() if not k.startswith("_") and (
            (isinstance(v, type) and issubclass(v, nn.Module)) or
            (callable(v) and getattr(v, "__module__", None) == source.__name__)))
        raise SpikedeployError(f"{path}: defines no {name!r}" +
                               (f" (it defines {', '.join(defined)})" if defined else ""))
    factory = getattr(source, name)
    try:
        # seeded, so that without --weights export and verify build the same initial weights
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            model = factory()
    except TypeError as exc:
        raise SpikedeployError(f"{path}: {name}() cannot be called without arguments ({exc})")
    except Exception as exc:   # noqa: BLE001 - the user's constructor failed
        raise SpikedeployError(_located(exc, Path(path), f"building {name}()")) from None
    if not isinstance(model, nn.Module):
        raise SpikedeployError(f"{path}: {name}() returned a {type(model).__name__}, not an "
                               "nn.Module")
    if weights is not None:
        load_weights(model, weights)
    return model.eval()


def _import_file(path: Path):
    if not path.is_file():
        raise SpikedeployError(f"{path}: no such file")
    if path.suffix != ".py":
        raise SpikedeployError(f"{path}: expected a Python file (.py)")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"spikedeploy_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module            # classes defined there can find their module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise SpikedeployError(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    except BaseException as exc:   # noqa: BLE001 - any error in the user's file, one line
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise SpikedeployError(_located(exc, path, "importing it")) from None
    return module


def _located(exc: BaseException, path: Path, doing: str) -> str:
    """'file.py:LINE: Error: message' at the deepest frame of the user's file."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    text = first_line(exc)
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {type(exc).__name__} while {doing}" + (f": {text}" if text else "")


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """The tensors of a state_dict file (.pt/.pth/.bin via weights-only torch.load, or
    .safetensors); a dict holding the state_dict under a usual key is accepted."""
    path = Path(path)
    if not path.is_file():
        raise SpikedeployError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise SpikedeployError(f"{path}: corrupt or truncated safetensors file "
                                   f"({first_line(exc, type(exc).__name__)})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SpikedeployError(f"{path}: needs pickle to load (it holds Python objects, e.g. a "
                               "whole model saved with torch.save(model)); refused, it is never "
                               "unpickled: save model.state_dict() instead") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise SpikedeployError(f"{path}: not a readable torch state_dict file "
                               f"({first_line(exc, type(exc).__name__)})") from None
    if isinstance(state, dict) and not _tensors(state):
        for key in STATE_DICT_KEYS:
            if isinstance(state.get(key), dict) and _tensors(state[key]):
                return dict(state[key])
    if not isinstance(state, dict) or not _tensors(state):
        raise SpikedeployError(f"{path}: holds a {type(state).__name__}, not a state_dict (a "
                               "dict of tensor names to tensors)")
    return dict(state)


def _tensors(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in d.items())


def load_weights(model: nn.Module, path) -> None:
    """Load a state_dict file into ``model``; missing or unexpected keys, or a shape that
    does not fit, is a one-line error naming them."""
    state = read_state_dict(path)
    expected = model.state_dict()
    check_state(expected, state, path, "the model")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
