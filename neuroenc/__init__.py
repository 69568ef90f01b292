"""neuroenc: compare brain responses with the activations of artificial neural networks.

The top-level namespace is kept light so that ``import neuroenc`` is fast:
subpackages (``neuroenc.io`` and the analysis packages) are imported on
first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from neuroenc._version import __version__
from neuroenc.braindata import BrainData, concatenate

__all__ = ["__version__", "BrainData", "Activations", "concatenate", "io", "errors", "validation"]

_SUBMODULES = {"io", "errors", "validation", "cli", "datapath"}


def __getattr__(name: str) -> Any:
    if name == "Activations":
        from neuroenc.activationdata import Activations

        return Activations
    if name in _SUBMODULES:
        return importlib.import_module(f"neuroenc.{name}")
    raise AttributeError(f"module 'neuroenc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | {"Activations"})
