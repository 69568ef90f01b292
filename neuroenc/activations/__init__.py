"""Activations of artificial networks: extraction, reductions, statistics, probes.

torch is imported only by the extraction functions, on first use. Names are
imported on first use so that ``import neuroenc.activations`` stays cheap.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS = {
    "extract_activations": "extract",
    "list_layers": "extract",
    "REDUCERS": "reduce",
    "Reducer": "reduce",
    "Flatten": "reduce",
    "SpatialMean": "reduce",
    "SparseRandomProjection": "reduce",
    "PCA": "reduce",
    "FunctionReducer": "reduce",
    "make_reducer": "reduce",
    "activation_statistics": "statistics",
    "fraction_nonzero": "statistics",
    "top_k_mass": "statistics",
    "dead_units": "statistics",
    "massive_activations": "statistics",
    "MassiveActivations": "statistics",
    "participation_ratio": "statistics",
    "effective_rank": "statistics",
    "neural_collapse": "statistics",
    "NeuralCollapse": "statistics",
    "unit_selectivity": "statistics",
    "SparseProbe": "probes",
    "probe_layers": "probes",
    "unit_scores": "probes",
}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.activations", _EXPORTS, globals())
