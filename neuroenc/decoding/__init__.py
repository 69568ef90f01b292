"""Decoding models: time-resolved (sliding, generalizing) and retrieval-style decoding.

Scores match MNE's SlidingEstimator / GeneralizingEstimator with the same folds.
Names are imported on first use.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS = {
    "SlidingDecoder": "time_resolved",
    "GeneralizingDecoder": "time_resolved",
    "cross_val_time_score": "time_resolved",
    "RetrievalDecoder": "retrieval",
    "retrieval_scores": "retrieval",
    "similarity": "retrieval",
}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.decoding", _EXPORTS, globals())
