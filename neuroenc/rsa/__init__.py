"""Representational similarity analysis: RDMs, comparisons, inference, tRSA, searchlights.

Numbers match rsatoolbox 0.3.2 where the two overlap. Names are imported on
first use so that ``import neuroenc.rsa`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RDMs": "rdms",
    "to_vectors": "rdms",
    "to_matrices": "rdms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'neuroenc.rsa' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"neuroenc.rsa.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
