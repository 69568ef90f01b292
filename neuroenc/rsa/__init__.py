"""Representational similarity analysis: RDMs, comparisons, inference, tRSA, searchlights.

Numbers match rsatoolbox 0.3.2 where the two overlap. Names are imported on
first use so that ``import neuroenc.rsa`` stays cheap.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS = {
    "RDMs": "rdms",
    "to_vectors": "rdms",
    "to_matrices": "rdms",
}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.rsa", _EXPORTS, globals())
