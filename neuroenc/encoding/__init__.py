"""Encoding models: per-target ridge, banded ridge, time-lagged models, HRF designs, scoring.

Selected regularisation and predictions match himalaya 0.4.11, scikit-learn and
MNE where they overlap. Names are imported on first use.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS: dict[str, str] = {}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.encoding", _EXPORTS, globals())
