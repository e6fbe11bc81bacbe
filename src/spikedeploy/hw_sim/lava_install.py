"""Whether Lava is usable here, and how to install it (``spikedeploy install-lava``).

Lava cannot be a normal dependency: lava-nc 0.10 declares Python < 3.11 and pins
old torch/numpy. It is installed without its declared dependencies, plus the
ones it really needs, exactly as the Makefile does. Detection reads package
metadata and module specs only (importing Lava takes seconds), so ``check``
stays fast; a Lava that is present but broken is reported by the run itself.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib import metadata

LAVA_PACKAGES = ("lava-nc==0.10.0", "lava-dl==0.6.0")
# What Lava 0.10 and lava-dl 0.6 import at run time that spikedeploy does not need itself.
LAVA_NEEDS = ("networkx<=2.8.7", "asteval<0.10")
INSTALL_HINT = "run `spikedeploy install-lava` (installs lava-nc 0.10 and lava-dl 0.6 here)"


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def lava_problem(netx: bool = False) -> str | None:
    """None when Lava (and lava-dl for netx) is installed; else one line saying what to run."""
    missing = []
    if importlib.util.find_spec("lava") is None or _installed("lava-nc") is None:
        missing.append("Lava (lava-nc)")
    if netx and _installed("lava-dl") is None:
        missing.append("lava-dl")
    for need in ("networkx", "asteval"):
        if _installed(need) is None:
            missing.append(f"{need} (a Lava dependency)")
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed: {INSTALL_HINT}"


def install_commands(python: str = sys.executable, quiet: bool = False) -> list[list[str]]:
    pip = [python, "-m", "pip", "install"] + (["--quiet"] if quiet else [])
    return [pip + list(LAVA_NEEDS),
            pip + ["--no-deps", "--ignore-requires-python", *LAVA_PACKAGES]]


def install_lava(say=print, quiet: bool = False) -> int:
    """Install Lava into this Python environment; returns pip's exit code."""
    for command in install_commands(quiet=quiet):
        say("running: " + " ".join(command))
        code = subprocess.call(command)
        if code:
            return code
    return 0
