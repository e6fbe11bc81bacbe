"""Make lava-nc 0.10.0 importable on Python 3.11.

Python 3.11 rejects dataclass fields whose default is a mutable (unhashable)
instance; ``lava/magma/compiler/var_model.py`` declares
``x: ByteEncoder = ByteEncoder()``, so every ``lava.proc`` import fails. This
module installs an import hook that, when (and only when) that one module is
imported, compiles its source with those defaults rewritten to
``field(default_factory=ByteEncoder)``. Site-packages is never edited and no
Lava code is copied.

Importing Lava's runtime also forces multiprocessing's start method to 'fork'
for the whole process; see :func:`import_lava`.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys

_TARGET = "lava.magma.compiler.var_model"
_MUTABLE_DEFAULT = re.compile(r":\s*ByteEncoder\s*=\s*ByteEncoder\(\)")


class _VarModelLoader(importlib.machinery.SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):  # noqa: D401
        source = data.decode("utf-8") if isinstance(data, bytes) else data
        source = _MUTABLE_DEFAULT.sub(
            ": ByteEncoder = __import__('dataclasses').field("
            "default_factory=ByteEncoder)", source)
        source += "\n_SPIKEDEPLOY_PATCHED = True\n"
        return compile(source, path, "exec", dont_inherit=True, optimize=_optimize)

    def get_code(self, fullname):
        # Bypass the bytecode cache: cached .pyc holds the unpatched module.
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                spec.loader = _VarModelLoader(fullname, spec.origin)
                return spec
        return None


def install() -> None:
    """Install the hook (idempotent). Must run before Lava is imported."""
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())
    loaded = sys.modules.get(_TARGET)
    if loaded is not None and not hasattr(loaded, "_SPIKEDEPLOY_PATCHED"):
        raise ImportError(
            f"{_TARGET} was imported before spikedeploy's Python 3.11 fix; "
            "import spikedeploy.hw_sim before lava")


install()
