"""Make lava-dl's netx importable without OpenCV and torchvision.

``import lava.lib.dl.netx`` imports ``lava.lib.dl.slayer``, whose package
``__init__`` imports ``slayer.object_detection``; that module (and only it)
imports ``cv2`` and ``torchvision``. Neither installs here beside torch
2.13 CPU (PyPI's torchvision does not import with it; opencv>=4.11 pulls
numpy 2, which Lava cannot run with). netx itself never uses object
detection, so an empty module stands in for it before the import: the same
kind of import-time shim as :mod:`.lava_py311`, never an edit of
site-packages. ``import_netx`` returns lava-dl's real ``netx.hdf5`` module.
"""
from __future__ import annotations

import sys
import types

from . import lava_py311  # noqa: F401  (Lava's own Python 3.11 fix comes first)

_STUBBED = "lava.lib.dl.slayer.object_detection"


def install() -> None:
    """Put the empty object-detection module in place, unless the real one loaded."""
    if _STUBBED not in sys.modules:
        stub = types.ModuleType(_STUBBED)
        stub.__doc__ = "spikedeploy stub: slayer's object detection needs cv2/torchvision"
        sys.modules[_STUBBED] = stub


def import_netx():
    """lava-dl's ``lava.lib.dl.netx.hdf5`` module (the shim installed first)."""
    install()
    from lava.lib.dl.netx import hdf5
    return hdf5
