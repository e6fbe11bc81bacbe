"""Reading small settings files (checkpoint configs, energy and chip profiles).

One place turns every way such a file can be wrong -- unreadable, binary,
too big, not JSON/TOML, nested deeply enough to exhaust Python's recursion
(the standard parsers recurse per level) -- into one
:class:`SpikedeployError` naming the file.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import SpikedeployError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Settings files are a few kilobytes; anything this big is not one, and reading
# it whole would be unbounded memory.
MAX_SETTINGS_BYTES = 4 << 20


def read_settings_text(path, what: str) -> str:
    """The text of a small UTF-8 settings file; ``what`` names it in errors."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SETTINGS_BYTES:
            raise SpikedeployError(f"{what} {path}: {size} bytes is too big for a settings file "
                                   f"(at most {MAX_SETTINGS_BYTES})")
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SpikedeployError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise SpikedeployError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpikedeployError(f"{what} {path}: not a text file (not UTF-8)") from None


def parse_json(text: str, where: str):
    try:
        return json.loads(text)
    except ValueError as exc:   # JSONDecodeError
        raise SpikedeployError(f"{where}: not valid JSON ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise SpikedeployError(f"{where}: not valid JSON (nested too deeply)") from None


def parse_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpikedeployError(f"{where}: not valid TOML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise SpikedeployError(f"{where}: not valid TOML (nested too deeply)") from None


def read_settings(path, what: str):
    """A settings file parsed by its suffix: ``.json`` as JSON, anything else as TOML."""
    text = read_settings_text(path, what)
    where = f"{what} {path}"
    return parse_json(text, where) if Path(path).suffix == ".json" else parse_toml(text, where)
