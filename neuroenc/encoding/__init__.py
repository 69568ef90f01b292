"""Encoding models: per-target ridge, banded ridge, time-lagged models, HRF designs, scoring.

Selected regularisation and predictions match himalaya 0.4.11, scikit-learn and
MNE where they overlap. Names are imported on first use.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS = {
    "RidgeCV": "ridge",
    "BandedRidgeCV": "banded",
    "band_weight_candidates": "banded",
    "METRICS": "scoring",
    "score_targets": "scoring",
    "r2_score_split": "scoring",
    "cross_val_predict": "scoring",
    "split_half_reliability": "scoring",
    "noise_ceiling": "scoring",
    "normalize_by_ceiling": "scoring",
    "PermutationResult": "scoring",
    "permutation_test": "scoring",
    "HRF_MODELS": "hrf",
    "hrf_design": "hrf",
    "indicator_matrix": "hrf",
    "LaggedFeatures": "lagged",
    "TRF": "lagged",
    "lag_samples": "lagged",
}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.encoding", _EXPORTS, globals())
