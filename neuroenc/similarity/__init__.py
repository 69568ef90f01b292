"""Representation similarity metrics between brain data and network activations.

CKA, shape metrics, CCA, mutual nearest neighbours, Ollivier-Ricci curvature,
many-by-many comparisons and layer-to-brain scoring. Names are imported on
first use so that ``import neuroenc.similarity`` stays cheap.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS = {
    "cka": "kernel_alignment",
    "gram": "kernel_alignment",
    "centered_gram": "kernel_alignment",
    "shape_distance": "shape",
    "permutation_distance": "shape",
    "stochastic_shape_distance": "shape",
    "svcca": "cca",
    "pwcca": "cca",
    "canonical_correlations": "cca",
    "mutual_knn": "knn",
    "nearest_neighbours": "knn",
    "pairwise": "all_pairs",
    "rsa_similarity": "all_pairs",
    "METRICS": "all_pairs",
    "knn_graph": "curvature",
    "ollivier_ricci": "curvature",
    "ricci_flow": "curvature",
    "ricci_communities": "curvature",
    "compare_communities": "curvature",
    "curvature_distribution_distance": "curvature",
    "RicciCurvature": "curvature",
    "RicciFlow": "curvature",
    "RicciCommunities": "curvature",
    "CommunityComparison": "curvature",
    "score_layers": "layer_scores",
    "LayerScores": "layer_scores",
}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.similarity", _EXPORTS, globals())
