"""Noise covariance and precision estimates for multivariate noise normalisation.

The Mahalanobis and crossnobis dissimilarities of :mod:`neuroenc.rsa.compute`
weight feature differences by a noise precision (inverse covariance). These
functions estimate it from residuals (e.g. of a first-level GLM) or from the
spread of repeated measurements around their condition means, with the
estimators of rsatoolbox 0.3.2 (same names, same numbers):

==================  ==============================================================
method              estimate of the covariance of residuals ``X`` (n x p, demeaned)
==================  ==============================================================
``full``            sample covariance ``X^T X / dof``
``diag``            its diagonal (univariate noise normalisation)
``shrinkage_eye``   Ledoit-Wolf shrinkage towards a multiple of the identity:
                    ``(b2/d2) m I + (1 - b2/d2) S`` with ``S = X^T X / n``,
                    ``m = tr(S)/p``, ``d2 = ||S - m I||_F^2``,
                    ``b2 = min(d2, sum_r ||x_r x_r^T - S||_F^2 / n^2)``, then
                    scaled by ``n / dof``
``shrinkage_diag``  Schaefer-Strimmer shrinkage of ``S = X^T X / dof`` towards its
                    diagonal: off-diagonal entries times ``1 - lambda``, with
                    ``lambda`` estimated from the variance of the sample
                    correlations (clipped to [0, 1]); the default
==================  ==============================================================

``dof`` defaults to ``n - 1`` for residuals. The shrinkage intensities need
sums over all feature pairs of ``x_ri^2 x_rj^2``, which equal sums over rows of
squared row norms, so every estimator costs one product ``X^T X`` rather
than rsatoolbox's loop of ``n`` outer products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroenc.errors import DataError, LabelError, NotSPDError, ShapeError
from neuroenc.validation import check_array, check_choice, check_length, check_names, check_positive

if TYPE_CHECKING:  # pragma: no cover
    from neuroenc.braindata import BrainData

__all__ = [
    "NOISE_METHODS",
    "cov_from_residuals",
    "prec_from_residuals",
    "cov_from_measurements",
    "prec_from_measurements",
    "cov_from_unbalanced",
    "prec_from_unbalanced",
]

#: covariance estimators, as named by rsatoolbox
NOISE_METHODS = ("shrinkage_diag", "shrinkage_eye", "diag", "full")


# ----------------------------------------------------------------------
# estimators on demeaned residuals, batched: X (n_sets, n, p), dof (n_sets,)
def _gram(X: np.ndarray) -> np.ndarray:
    if X.shape[0] == 1:  # numpy turns ``a.T @ a`` into one syrk
        x = X[0]
        return (x.T @ x)[None]
    return np.matmul(X.transpose(0, 2, 1), X)


def _diagonal(M: np.ndarray) -> np.ndarray:
    return np.diagonal(M, axis1=-2, axis2=-1)


def _check_variances(var: np.ndarray) -> None:
    bad = np.argwhere(~(var > 0))
    if bad.size:
        where = "" if var.shape[0] == 1 else f" of set {int(bad[0, 0])}"
        raise DataError(
            f"Feature {int(bad[0, 1])}{where} has zero variance in the residuals; drop constant features before "
            "noise estimation."
        )


def _shrinkage_eye(X: np.ndarray, G: np.ndarray, dof: np.ndarray) -> np.ndarray:
    n, p = X.shape[1:]
    s = G / n
    # sum_ij of sum_r (x_ri x_rj)^2 is sum_r ||x_r||^4: no p x p matrix of squares needed
    row_sq = np.einsum("snp,snp->sn", X, X)
    b2 = (np.einsum("sn,sn->s", row_sq, row_sq) / n - np.einsum("sij,sij->s", s, s)) / n
    diag = _diagonal(s)
    m = diag.sum(-1) / p
    d2 = np.einsum("sij,sij->s", s, s) - np.einsum("si,si->s", diag, diag) + ((diag - m[:, None]) ** 2).sum(-1)
    b2 = np.minimum(d2, b2)
    # d2 = 0 means S is already a multiple of the identity (e.g. one feature): nothing to shrink
    safe = np.where(d2 > 0, d2, 1.0)
    weight = np.where(d2 > 0, b2 / safe, 0.0)
    out = s * ((d2 - b2) / safe * (d2 > 0) + (d2 <= 0))[:, None, None]
    idx = np.arange(p)
    out[:, idx, idx] += (weight * m)[:, None]
    return out * (n / dof)[:, None, None]


def _shrinkage_diag(X: np.ndarray, G: np.ndarray, dof: np.ndarray) -> np.ndarray:
    n, p = X.shape[1:]
    s = G / dof[:, None, None]
    var = _diagonal(s).copy()
    _check_variances(var)
    std = np.sqrt(var)
    s_mean = G / std[:, :, None] / std[:, None, :] / (n - 1)
    s_mean_diag = _diagonal(s_mean)
    r2_off = np.einsum("sij,sij->s", s_mean, s_mean) - np.einsum("si,si->s", s_mean_diag, s_mean_diag)
    # sum over i != j of sum_r x_ri^2 x_rj^2 / (var_i var_j), from row sums of y = x^2 / var
    y = X * X / var[:, None, :]
    row = y.sum(-1)
    s2_off = (np.einsum("sn,sn->s", row, row) - np.einsum("snp,snp->s", y, y)) / (n - 1)
    var_hat = n / dof**2 * (s2_off - r2_off)
    with np.errstate(divide="ignore", invalid="ignore"):
        lamb = np.clip(var_hat / r2_off, 0.0, 1.0)
    # uncorrelated residuals (no off-diagonal mass) or a single feature: the target is S itself
    lamb = np.where(r2_off > 0, lamb, 1.0)
    out = s * (1.0 - lamb)[:, None, None]
    idx = np.arange(p)
    out[:, idx, idx] = var
    return out


def _covariance_batch(X: np.ndarray, dof: np.ndarray, method: str) -> np.ndarray:
    """Covariance estimate of each set of demeaned residuals ``X`` (n_sets, n, p)."""
    if method == "diag":
        var = np.einsum("snp,snp->sp", X, X) / dof[:, None]
        _check_variances(var)
        out = np.zeros(var.shape + (var.shape[-1],))
        idx = np.arange(var.shape[-1])
        out[:, idx, idx] = var
        return out
    G = _gram(X)
    if method == "full":
        return G / dof[:, None, None]
    if method == "shrinkage_eye":
        return _shrinkage_eye(X, G, dof)
    return _shrinkage_diag(X, G, dof)


def cholesky_factor(cov: np.ndarray, what: str = "noise covariance") -> np.ndarray:
    """Lower Cholesky factors of ``(..., p, p)`` covariances; :class:`NotSPDError` names a singular one."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        flat = cov.reshape((-1,) + cov.shape[-2:])
        for i, c in enumerate(flat):
            try:
                np.linalg.cholesky(c)
            except np.linalg.LinAlgError:
                where = "" if cov.ndim == 2 else f" {i}"
                raise NotSPDError(
                    f"The {what}{where} is singular (not positive definite): fewer residuals than features or "
                    "collinear features; use a shrinkage method ('shrinkage_diag' or 'shrinkage_eye') or 'diag'."
                ) from None
        raise  # pragma: no cover


def _inverse(cov: np.ndarray) -> np.ndarray:
    cholesky_factor(cov)  # a clear error for singular estimates
    return np.linalg.inv(cov)


# ----------------------------------------------------------------------
# input handling
def _dof_array(dof: Any, n_sets: int, default: float) -> np.ndarray:
    if dof is None:
        return np.full(n_sets, float(default))
    if np.ndim(dof) == 0:
        return np.full(n_sets, check_positive(dof, "dof"))
    values = list(dof)
    check_length(n_sets, values, "dof", of="sets of residuals")
    return np.array([check_positive(v, "dof") for v in values])


def _residual_array(residuals: Any, name: str = "residuals") -> np.ndarray:
    X = check_array(residuals, name, ndim=(2, 3), dtype=np.float64)
    if X.shape[-2] < 2:
        raise ShapeError(f"{name} has {X.shape[-2]} row(s); at least 2 are needed to estimate a covariance.")
    if X.shape[-1] < 1:
        raise ShapeError(f"{name} has no features.")
    return X


def _estimate_from_residuals(X: np.ndarray, dof: Any, method: str) -> np.ndarray:
    """rsatoolbox's ``cov_from_residuals`` on one (n, p) or a batch (n_sets, n, p) of residuals."""
    batch = X if X.ndim == 3 else X[None]
    batch = batch - batch.mean(axis=1, keepdims=True)
    cov = _covariance_batch(batch, _dof_array(dof, batch.shape[0], batch.shape[1] - 1), method)
    return cov if X.ndim == 3 else cov[0]


def observations(data: Any, conditions: Any, name: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """``(values, condition labels)`` of a :class:`BrainData` or of an array with labels.

    ``conditions`` is, for a BrainData, None (its ``condition`` column), the
    name of an ``obs`` column or a sequence of labels; for an array, a
    sequence of labels (one per row).
    """
    if hasattr(data, "obs") and hasattr(data, "modality") and hasattr(data, "data"):
        if conditions is None:
            conditions = "condition"
        if isinstance(conditions, str):
            check_names([conditions], data.obs.columns, "obs column")
            conditions = data.obs[conditions].to_numpy()
        values = data.data
    else:
        if conditions is None:
            raise LabelError(f"{name} is an array: pass the condition label of each row as conditions.")
        if isinstance(conditions, str):
            raise LabelError(f"conditions={conditions!r} names a column, but {name} is an array, not a BrainData.")
        values = data
    X = check_array(values, name, ndim=(2, 3), dtype=np.float64)
    labels = np.asarray(conditions)
    if labels.ndim != 1:
        raise LabelError(f"conditions must be one label per observation; got shape {labels.shape}.")
    check_length(X.shape[0], labels, "conditions")
    return X, labels


def _residuals_about_means(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Observations minus their condition mean, and the number of conditions."""
    from neuroenc._kernels.rdm import group_sums

    values, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(values))
    flat = X.reshape(X.shape[0], -1)
    means = group_sums(flat, inverse, len(values)) / counts[:, None]
    return (flat - means[inverse]).reshape(X.shape), len(values)


# ----------------------------------------------------------------------
# public estimators
def cov_from_residuals(
    residuals: np.ndarray | Sequence[np.ndarray], dof: Any = None, method: str = "shrinkage_diag"
) -> np.ndarray | list[np.ndarray]:
    """Noise covariance over features from residuals (rsatoolbox's ``cov_from_residuals``).

    Parameters
    ----------
    residuals : array-like, shape (n_residuals, n_features) or (n_sets, n_residuals, n_features), or list
        Residuals (e.g. of a GLM). Columns are demeaned first. A 3-D array
        is a batch of independent sets (e.g. searchlight spheres) estimated
        in one vectorised pass; a list of 2-D arrays (e.g. one per run, with
        different lengths) gives a list.
    dof : int, sequence of int or None
        Degrees of freedom; default ``n_residuals - 1``. Correct it for the
        number of regressors of a GLM. A sequence gives one per set.
    method : {"shrinkage_diag", "shrinkage_eye", "diag", "full"}
        Estimator (see the module docstring).

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        ``(n_features, n_features)``, ``(n_sets, n_features, n_features)``,
        or a list for a list input.
    """
    method = check_choice(method, NOISE_METHODS, "noise estimation method")
    if isinstance(residuals, (list, tuple)):
        dofs = [dof] * len(residuals) if dof is None or np.ndim(dof) == 0 else list(dof)
        check_length(len(residuals), dofs, "dof", of="residual arrays")
        return [
            _estimate_from_residuals(_residual_array(r, f"residuals[{i}]"), d, method)
            for i, (r, d) in enumerate(zip(residuals, dofs))
        ]
    return _estimate_from_residuals(_residual_array(residuals), dof, method)


def prec_from_residuals(
    residuals: np.ndarray | Sequence[np.ndarray], dof: Any = None, method: str = "shrinkage_diag"
) -> np.ndarray | list[np.ndarray]:
    """Noise precision (inverse of :func:`cov_from_residuals`), rsatoolbox's ``prec_from_residuals``.

    Parameters and return shapes are those of :func:`cov_from_residuals`.
    A singular estimate (e.g. ``"full"`` with fewer residuals than
    features) raises :class:`~neuroenc.errors.NotSPDError`.
    """
    cov = cov_from_residuals(residuals, dof, method)
    if isinstance(cov, list):
        return [_inverse(c) for c in cov]
    return _inverse(cov)


def cov_from_measurements(
    data: BrainData | np.ndarray, conditions: Any = None, dof: Any = None, method: str = "shrinkage_diag"
) -> np.ndarray:
    """Noise covariance from repeated measurements of each condition (rsatoolbox's ``cov_from_measurements``).

    Every observation minus the mean of its condition is a residual. The
    design must be balanced (the same number of repetitions per condition);
    use :func:`cov_from_unbalanced` otherwise.

    Parameters
    ----------
    data : BrainData or array-like, shape (n_obs, n_features)
        Measurements.
    conditions : str or sequence, optional
        Condition of each observation (for a BrainData: None for its
        ``condition`` column, or another ``obs`` column name).
    dof : int, optional
        Degrees of freedom. The default is rsatoolbox's,
        ``(n_conditions - 1) * n_repetitions``; the residual degrees of
        freedom proper are ``n_conditions * (n_repetitions - 1)``, which
        :func:`cov_from_unbalanced` uses.
    method : {"shrinkage_diag", "shrinkage_eye", "diag", "full"}
        Estimator.

    Returns
    -------
    numpy.ndarray, shape (n_features, n_features)
    """
    method = check_choice(method, NOISE_METHODS, "noise estimation method")
    X, labels = observations(data, conditions)
    if X.ndim != 2:
        raise ShapeError("cov_from_measurements needs (n_obs, n_features) data without a time axis.")
    values, counts = np.unique(labels, return_counts=True)
    if np.any(counts != counts[0]):
        raise LabelError(
            f"Conditions have unequal numbers of observations ({counts.min()} to {counts.max()}); "
            "use cov_from_unbalanced."
        )
    if counts[0] < 2:
        raise ShapeError("Each condition needs at least 2 observations to estimate the noise.")
    residuals, n_cond = _residuals_about_means(X, labels)
    default = (n_cond - 1) * counts[0]
    if default == 0 and dof is None:
        raise ShapeError("With a single condition rsatoolbox's default dof is 0; pass dof explicitly.")
    return _covariance_batch(residuals[None], _dof_array(dof, 1, default), method)[0]


def prec_from_measurements(
    data: BrainData | np.ndarray, conditions: Any = None, dof: Any = None, method: str = "shrinkage_diag"
) -> np.ndarray:
    """Inverse of :func:`cov_from_measurements` (rsatoolbox's ``prec_from_measurements``)."""
    return _inverse(cov_from_measurements(data, conditions, dof, method))


def cov_from_unbalanced(
    data: BrainData | np.ndarray, conditions: Any = None, dof: Any = None, method: str = "shrinkage_diag"
) -> np.ndarray:
    """Noise covariance from measurements with any number of repetitions per condition.

    rsatoolbox's ``cov_from_unbalanced``: residuals are observations minus
    their condition mean, ``dof`` defaults to ``n_obs - n_conditions``.
    Data with a time axis (n_obs, n_features, n_times) give one covariance
    pooled over time points (residuals about the condition mean at each time;
    ``dof = (n_obs - n_conditions) * n_times``), the noise model used for
    time-resolved crossnobis RDMs.

    Parameters
    ----------
    data : BrainData or array-like, shape (n_obs, n_features) or (n_obs, n_features, n_times)
        Measurements.
    conditions : str or sequence, optional
        Condition of each observation (see :func:`cov_from_measurements`).
    dof : int, optional
        Degrees of freedom.
    method : {"shrinkage_diag", "shrinkage_eye", "diag", "full"}
        Estimator.

    Returns
    -------
    numpy.ndarray, shape (n_features, n_features)
    """
    method = check_choice(method, NOISE_METHODS, "noise estimation method")
    X, labels = observations(data, conditions)
    residuals, n_cond = _residuals_about_means(X, labels)
    n_times = 1 if X.ndim == 2 else X.shape[2]
    if X.ndim == 3:
        residuals = residuals.transpose(0, 2, 1).reshape(-1, X.shape[1])
    default = (X.shape[0] - n_cond) * n_times
    if default <= 0 and dof is None:
        raise ShapeError("Every condition has a single observation: there are no residuals to estimate noise from.")
    residuals = residuals - residuals.mean(axis=0, keepdims=True)
    return _covariance_batch(residuals[None], _dof_array(dof, 1, default), method)[0]


def prec_from_unbalanced(
    data: BrainData | np.ndarray, conditions: Any = None, dof: Any = None, method: str = "shrinkage_diag"
) -> np.ndarray:
    """Inverse of :func:`cov_from_unbalanced` (rsatoolbox's ``prec_from_unbalanced``)."""
    return _inverse(cov_from_unbalanced(data, conditions, dof, method))
