"""Decoding models: time-resolved (sliding, generalizing) and retrieval-style decoding.

Scores match MNE's SlidingEstimator / GeneralizingEstimator with the same folds.
Names are imported on first use.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS: dict[str, str] = {}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.decoding", _EXPORTS, globals())
