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
    "n_pairs": "rdms",
    "n_conditions_from_pairs": "rdms",
    "compute_rdm": "compute",
    "condition_means": "compute",
    "rdm_vectors": "compute",
    "ConditionMeans": "compute",
    "CROSS_VALIDATED_METHODS": "compute",
    "NOISE_METHODS": "noise",
    "cov_from_residuals": "noise",
    "prec_from_residuals": "noise",
    "cov_from_measurements": "noise",
    "prec_from_measurements": "noise",
    "cov_from_unbalanced": "noise",
    "prec_from_unbalanced": "noise",
    "compare": "comparisons",
    "compare_vectors": "comparisons",
    "product_features": "comparisons",
    "canonical_method": "comparisons",
    "evaluate": "inference",
    "bootstrap_indices": "inference",
    "BootstrapIndices": "inference",
    "permutation_test": "inference",
    "noise_ceiling": "ceiling",
    "NoiseCeiling": "ceiling",
    "pool_rdms": "ceiling",
    "normalize_scores": "ceiling",
    "WeightedModel": "models",
    "fit_weighted": "models",
    "crossvalidate": "models",
    "condition_folds": "models",
    "model_vectors": "models",
    "RSAResult": "results",
    "PermutationResult": "results",
    "correct_pvalues": "stats",
    "CORRECTIONS": "stats",
    "geotopological": "topology",
    "geodesic": "topology",
    "geotopological_thresholds": "topology",
    "searchlight": "searchlights",
    "volume_searchlight": "searchlights",
    "sensor_searchlight": "searchlights",
    "SearchlightResult": "searchlights",
    "Neighbourhoods": "neighbourhoods",
    "VolumeNeighbourhoods": "neighbourhoods",
    "SensorTimeNeighbourhoods": "neighbourhoods",
    "adjacency_from_info": "neighbourhoods",
    "sphere_offsets": "neighbourhoods",
}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.rsa", _EXPORTS, globals())
