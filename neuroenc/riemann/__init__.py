"""Riemannian geometry for covariance matrices: estimation, SPD geometry, classifiers.

Numerically identical to pyRiemann 0.12 where they overlap, with the hot
paths (covariance estimation, distances, matrix functions) in the compiled
kernels of :mod:`neuroenc._kernels`. Names are imported on first use so
that ``import neuroenc.riemann`` stays cheap.
"""

from __future__ import annotations

from neuroenc._lazy import lazy_exports

_EXPORTS = {
    # covariance estimation
    "covariances": "covariance",
    "Covariances": "covariance",
    "AugmentedCovariances": "covariance",
    "FilterBankCovariances": "covariance",
    "augmented_covariances": "covariance",
    "select_order_lag": "covariance",
    "COVARIANCE_ESTIMATORS": "covariance",
    # spectral and connectivity features
    "BandPower": "spectral",
    "Connectivity": "spectral",
    "band_power": "spectral",
    "connectivity": "spectral",
    # SPD geometry
    "sqrtm": "matfuncs",
    "invsqrtm": "matfuncs",
    "logm": "matfuncs",
    "expm": "matfuncs",
    "powm": "matfuncs",
    "distance": "distances",
    "pairwise_distance": "distances",
    "DISTANCE_METRICS": "distances",
    "mean": "means",
    "MEAN_METRICS": "means",
    "tangent_space": "tangent",
    "untangent_space": "tangent",
    "TangentSpace": "tangent",
    # classifiers
    "MDM": "classification",
    "FgMDM": "classification",
    "TSClassifier": "classification",
    "FGDA": "classification",
}

__all__, __getattr__, __dir__ = lazy_exports("neuroenc.riemann", _EXPORTS, globals())
