"""Versions of spikedeploy and the libraries it runs on (``spikedeploy --version``, reports)."""
from __future__ import annotations

from importlib import metadata

from .. import __version__

# distribution name -> how it is shown
LIBRARIES = {"torch": "torch", "snntorch": "snnTorch", "nir": "nir", "numpy": "numpy",
             "lava-nc": "Lava", "lava-dl": "lava-dl"}


def library_versions() -> dict[str, str]:
    """Installed versions by display name ("not installed" where absent); nothing imported."""
    out = {"spikedeploy": __version__}
    for dist, shown in LIBRARIES.items():
        try:
            out[shown] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[shown] = "not installed"
    return out


def version_text() -> str:
    return "\n".join(f"{name} {version}" for name, version in library_versions().items())
