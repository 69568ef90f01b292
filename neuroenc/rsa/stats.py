"""Tests on RSA model evaluations: t-tests on bootstrap variances, bootstrap p-values, corrections.

The definitions follow rsatoolbox 0.3.2 (``rsatoolbox.util.inference_util``):

* the bootstrap covariance of the model evaluations (and of the two noise
  ceiling bounds) is multiplied by ``n / (n - 1)``, where ``n`` is the number
  of resampled units (RDMs, conditions, or the smaller of the two when both
  are resampled), to undo the bias of the bootstrap variance of a mean;
* t-tests use ``dof = n - 1`` degrees of freedom: one-sided against 0,
  two-sided against the lower noise ceiling and between models;
* bootstrap tests count the samples on the wrong side, add one and divide by
  the number of samples.

p-values are computed with the survival function of the t distribution
(rsatoolbox uses ``1 - cdf``, which rounds p-values below about 1e-16 to 0;
both agree to 1e-15 in absolute terms).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroenc.errors import ShapeError
from neuroenc.validation import check_array, check_choice

__all__ = [
    "CORRECTIONS",
    "bootstrap_covariance",
    "split_variances",
    "t_test_zero",
    "t_test_ceiling",
    "t_test_pairs",
    "bootstrap_test_zero",
    "bootstrap_test_ceiling",
    "bootstrap_test_pairs",
    "correct_pvalues",
    "pair_index",
]

#: names accepted by :func:`correct_pvalues`.
CORRECTIONS = ("fdr", "bonferroni", "holm", "none")

_EPS = np.finfo(float).eps


def pair_index(n_models: int) -> tuple[np.ndarray, np.ndarray]:
    """Model pairs ``(i, j)``, ``i < j``, in the order of :func:`scipy.spatial.distance.squareform`."""
    return np.triu_indices(n_models, k=1)


def _t_dist():
    from scipy.stats import t

    return t


def bootstrap_covariance(samples: np.ndarray, ceiling_samples: np.ndarray | None = None) -> np.ndarray:
    """Covariance (ddof 1) of the valid bootstrap samples of evaluations and ceiling bounds.

    Parameters
    ----------
    samples : numpy.ndarray, shape (n_bootstrap, n_models)
        Model evaluations per bootstrap sample; rows with NaN (samples that
        could not be evaluated) are left out.
    ceiling_samples : numpy.ndarray, shape (n_bootstrap, 2), optional
        Lower and upper noise ceiling per bootstrap sample; appended as the
        last two variables.

    Returns
    -------
    numpy.ndarray, shape (n_models [+ 2], n_models [+ 2])
    """
    cols = samples if ceiling_samples is None else np.concatenate([samples, ceiling_samples], axis=1)
    ok = ~np.isnan(samples[:, 0])
    if ok.sum() < 2:
        return np.full((cols.shape[1], cols.shape[1]), np.nan)
    return np.atleast_2d(np.cov(cols[ok].T))


def split_variances(
    cov: np.ndarray, n_models: int, n_units: int | None, ceiling_included: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Variances of the evaluations, of their pairwise differences and of their distances to the ceiling.

    Parameters
    ----------
    cov : numpy.ndarray
        Covariance of the evaluations (first ``n_models`` variables), with
        the lower and upper ceiling as two more variables if
        ``ceiling_included``.
    n_models : int
        Number of models.
    n_units : int or None
        Number of resampled units; the variances are multiplied by
        ``n / (n - 1)`` (no correction if None).
    ceiling_included : bool
        Whether ``cov`` holds the ceiling; otherwise the variance of
        ``evaluation - ceiling`` is that of the evaluation (fixed ceiling).

    Returns
    -------
    model_var : numpy.ndarray, shape (n_models,)
    diff_var : numpy.ndarray, shape (n_pairs,)
        For the pairs of :func:`pair_index`.
    ceiling_var : numpy.ndarray, shape (n_models, 2)
        Variance of ``evaluation - lower`` and ``evaluation - upper``.
    """
    m = cov[:n_models, :n_models]
    model_var = np.diag(m).copy()
    i, j = pair_index(n_models)
    diff_var = model_var[i] + model_var[j] - 2 * m[i, j]
    if ceiling_included:
        cross = cov[:n_models, n_models : n_models + 2]
        ceil = np.diag(cov)[n_models : n_models + 2]
        ceiling_var = model_var[:, None] - 2 * cross + ceil[None, :]
    else:
        ceiling_var = np.repeat(model_var[:, None], 2, axis=1)
    if n_units is not None:
        factor = n_units / (n_units - 1) if n_units > 1 else np.nan
        model_var, diff_var, ceiling_var = model_var * factor, diff_var * factor, ceiling_var * factor
    return model_var, diff_var, ceiling_var


def t_test_zero(means: np.ndarray, variances: np.ndarray, dof: int) -> np.ndarray:
    """One-sided p-values of ``mean > 0`` (t-test with the given variances of the means)."""
    t = means / np.sqrt(np.maximum(variances, _EPS))
    return _t_dist().sf(t, dof)


def t_test_ceiling(means: np.ndarray, variances: np.ndarray, ceiling: float, dof: int) -> np.ndarray:
    """Two-sided p-values of ``mean != ceiling`` (``variances`` of ``mean - ceiling``)."""
    t = (means - ceiling) / np.sqrt(np.maximum(variances, _EPS))
    return 2 * _t_dist().sf(np.abs(t), dof)


def t_test_pairs(means: np.ndarray, diff_variances: np.ndarray, dof: int) -> np.ndarray:
    """Two-sided p-values of the pairwise differences, for the pairs of :func:`pair_index`."""
    i, j = pair_index(len(means))
    t = (means[i] - means[j]) / np.sqrt(np.maximum(diff_variances, _EPS))
    return 2 * _t_dist().sf(np.abs(t), dof)


def bootstrap_test_zero(samples: np.ndarray) -> np.ndarray:
    """One-sided bootstrap p-values of ``evaluation > 0``: ``(#{sample <= 0} + 1) / n_bootstrap``."""
    return ((samples <= 0).sum(axis=0) + 1) / samples.shape[0]


def bootstrap_test_ceiling(samples: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """One-sided bootstrap p-values of ``evaluation < lower ceiling`` (same counting as above).

    ``lower`` holds the lower noise ceiling of each bootstrap sample.
    """
    return (((lower[:, None] - samples) <= 0).sum(axis=0) + 1) / samples.shape[0]


def bootstrap_test_pairs(samples: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-values of the pairwise differences (pairs of :func:`pair_index`).

    For each pair, the proportion of samples in which model i scores below
    model j (ties left out) gives ``p = 2 min(prop, 1 - prop)``, shrunk towards
    ``1 / n`` as ``(n - 1) / n * p + 1 / n``.
    """
    n = samples.shape[0]
    i, j = pair_index(samples.shape[1])
    a, b = samples[:, i], samples[:, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        prop = (a < b).sum(axis=0) / (n - (a == b).sum(axis=0))
    p = 2 * np.minimum(prop, 1 - prop)
    return (n - 1) / n * p + 1 / n


def correct_pvalues(pvalues: Any, method: str = "fdr") -> np.ndarray:
    """Adjust p-values for multiple comparisons.

    Parameters
    ----------
    pvalues : array-like
        p-values of one family of tests (any shape; NaN entries are left out
        of the family and stay NaN).
    method : {"fdr", "bonferroni", "holm", "none"}
        ``"fdr"``: Benjamini-Hochberg adjusted p-values (reject at level q
        where the adjusted value is <= q; same values as
        :func:`scipy.stats.false_discovery_control`); ``"bonferroni"``:
        ``min(1, m p)``; ``"holm"``: Holm's step-down adjusted p-values;
        ``"none"``: unchanged.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape as ``pvalues``.
    """
    check_choice(method, CORRECTIONS, "multiple-comparison correction")
    p = check_array(pvalues, "pvalues", ndim=None, allow_nonfinite=True, min_rows=0).astype(float)
    if np.isinf(p).any() or (p[~np.isnan(p)] < 0).any() or (p[~np.isnan(p)] > 1).any():
        raise ShapeError("pvalues must lie in [0, 1] (NaN allowed).")
    out = p.copy()
    ok = ~np.isnan(p)
    vals = p[ok]
    m = vals.size
    if m == 0 or method == "none":
        return out
    if method == "bonferroni":
        adj = np.minimum(vals * m, 1.0)
    elif method == "holm":
        order = np.argsort(vals, kind="stable")
        steps = vals[order] * (m - np.arange(m))
        adj = np.empty(m)
        adj[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    else:  # Benjamini-Hochberg step-up
        order = np.argsort(vals, kind="stable")
        scaled = vals[order] * m / np.arange(1, m + 1)
        adj = np.empty(m)
        adj[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out[ok] = adj
    return out
