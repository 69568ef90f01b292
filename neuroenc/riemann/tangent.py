"""Tangent space of the SPD manifold: log/exp maps, vectorisation, sklearn transformer.

Tangent vectors are pyRiemann's: the upper triangle (row by row, diagonal
included) of the logarithmic map, off-diagonal entries multiplied by
``sqrt(2)`` so that Euclidean dot products of vectors equal the Frobenius
products of the matrices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

# Public calls run whole with one BLAS thread: after a threaded call, OpenBLAS
# leaves its workers spinning, and they would steal the cores the kernel
# threads run on (small matrices gain nothing from BLAS threads anyway).
from neuroenc._kernels.parallel import single_threaded_blas
from neuroenc.errors import ShapeError
from neuroenc.validation import check_array, check_choice, check_spd

__all__ = ["tangent_space", "untangent_space", "TangentSpace", "TANGENT_METRICS"]

#: Metrics of the logarithmic/exponential maps.
TANGENT_METRICS = ("riemann", "logeuclid", "euclid", "wasserstein")


def _check_map_metric(metric: Any) -> str:
    if not isinstance(metric, str):
        raise ShapeError(f"metric must be a string, one of {TANGENT_METRICS}; got {metric!r}.")
    return check_choice(metric, TANGENT_METRICS, "tangent-space metric")


def _upper(X: np.ndarray) -> np.ndarray:
    n = X.shape[-1]
    rows, cols = np.triu_indices(n)
    coeffs = np.where(rows == cols, 1.0, np.sqrt(2.0))
    return X[..., rows, cols] * coeffs


def _unupper(T: np.ndarray) -> np.ndarray:
    n = _n_from_dim(T.shape[-1])
    rows, cols = np.triu_indices(n)
    coeffs = np.where(rows == cols, 1.0, 1.0 / np.sqrt(2.0))
    X = np.zeros(T.shape[:-1] + (n, n))
    X[..., rows, cols] = T * coeffs
    X[..., cols, rows] = T * coeffs
    return X


def _n_from_dim(dim: int) -> int:
    n = int(round((np.sqrt(1 + 8 * dim) - 1) / 2))
    if n * (n + 1) // 2 != dim:
        raise ShapeError(f"Tangent vectors of length {dim} do not come from square matrices (n (n + 1) / 2).")
    return n


def _eigh(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.linalg.eigh(M)


def _fdd_exp(lw: np.ndarray) -> np.ndarray:
    """First divided differences of exp at ``lw``: ``(e^a - e^b) / (a - b)``, ``e^a`` on ties.

    Written ``e^lo expm1(hi - lo) / (hi - lo)``, accurate however close the
    values are. pyRiemann subtracts ``e^a - e^b`` and switches to the
    derivative within an absolute 1e-12; on well-scaled data both agree to
    rounding.
    """
    lo = np.minimum(lw[:, None], lw[None, :])
    gap = np.abs(lw[:, None] - lw[None, :])
    safe = np.where(gap > 0, gap, 1.0)
    return np.exp(lo) * np.where(gap > 0, np.expm1(gap) / safe, 1.0)


def _fdd_log(w: np.ndarray) -> np.ndarray:
    """First divided differences of log at ``w > 0``: ``(log a - log b) / (a - b)``, ``1 / a`` on ties.

    Written ``log1p((hi - lo) / lo) / (hi - lo)``: relative accuracy at any
    scale. pyRiemann's absolute tie tolerance (1e-12) merges distinct
    eigenvalues of matrices whose entries are that small (EEG covariances in
    V^2), which breaks its log-Euclidean exponential map there.
    """
    lo = np.minimum(w[:, None], w[None, :])
    gap = np.abs(w[:, None] - w[None, :])
    safe = np.where(gap > 0, gap, 1.0)
    return np.where(gap > 0, np.log1p(gap / lo) / safe, 1.0 / lo)


def _log_map_vectors(X: np.ndarray, ref: np.ndarray, metric: str, n_jobs: int | None) -> np.ndarray:
    """Tangent vectors (upper triangles, see :func:`_upper`) of the log maps of the batch ``X`` at ``ref``."""
    from neuroenc._kernels import spd

    if metric == "euclid":
        return _upper(X - ref)
    w, V = _eigh(ref)
    if metric == "riemann":
        return spd.matfunc_upper(X, spd.OP_LOG, F=(V / np.sqrt(w)) @ V.T, n_jobs=n_jobs)
    if metric == "logeuclid":
        # pyRiemann: ddexpm(logm(X) - logm(ref), logm(ref))
        lw = np.log(w)
        Lref = (V * lw) @ V.T
        D = spd.matfunc(X, spd.OP_LOG, n_jobs=n_jobs) - Lref
        return _upper(V @ (_fdd_exp(lw) * (V.T @ D @ V)) @ V.T)
    # wasserstein
    P12 = (V * np.sqrt(w)) @ V.T
    P12inv = (V / np.sqrt(w)) @ V.T
    S = spd.congruence_matfunc(X, P12, spd.OP_SQRT, n_jobs=n_jobs)
    T = P12inv @ S @ P12
    return _upper(T + np.swapaxes(T, -1, -2) - 2.0 * ref)


def _exp_map(S: np.ndarray, ref: np.ndarray, metric: str, n_jobs: int | None) -> np.ndarray:
    from neuroenc._kernels import spd

    if metric == "euclid":
        return S + ref
    w, V = _eigh(ref)
    if metric == "riemann":
        return spd.matfunc(S, spd.OP_EXP, G=(V * np.sqrt(w)) @ V.T, n_jobs=n_jobs)
    if metric == "logeuclid":
        # pyRiemann: expm(logm(ref) + ddlogm(S, ref))
        Lref = (V * np.log(w)) @ V.T
        dd = V @ (_fdd_log(w) * (V.T @ S @ V)) @ V.T
        return spd.matfunc(Lref + dd, spd.OP_EXP, n_jobs=n_jobs)
    # wasserstein
    coef = 1.0 / (w[:, None] + w[None, :])
    R = coef * (V.T @ S @ V)
    return ref + S + V @ (R @ (w[:, None] * R)) @ V.T


def _check_ref(ref: Any, n: int) -> np.ndarray:
    ref = check_spd(ref, "ref", ndim=2)
    if ref.shape != (n, n):
        raise ShapeError(f"ref has shape {ref.shape}; expected ({n}, {n}) like the matrices.")
    return ref


def _tangent_validated(X: np.ndarray, ref: np.ndarray, metric: str, n_jobs: int | None = None) -> np.ndarray:
    flat = X.reshape((-1,) + X.shape[-2:])
    return _log_map_vectors(flat, ref, metric, n_jobs).reshape(X.shape[:-2] + (-1,))


def _untangent_validated(T: np.ndarray, ref: np.ndarray, metric: str, n_jobs: int | None = None) -> np.ndarray:
    S = _unupper(T.reshape(-1, T.shape[-1]))
    n = S.shape[-1]
    return _exp_map(S, ref, metric, n_jobs).reshape(T.shape[:-1] + (n, n))


@single_threaded_blas()
def tangent_space(X: Any, ref: Any, metric: str = "riemann", n_jobs: int | None = None) -> np.ndarray:
    """Tangent vectors of SPD matrices at a reference point.

    Parameters
    ----------
    X : array-like, shape (..., n, n)
        SPD matrices.
    ref : array-like, shape (n, n)
        SPD reference point.
    metric : str
        Logarithmic map: ``"riemann"`` (``logm(ref^{-1/2} X ref^{-1/2})``),
        ``"logeuclid"``, ``"euclid"`` or ``"wasserstein"`` (pyRiemann's
        ``log_map_*``).
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (..., n (n + 1) / 2)
        Upper triangles with ``sqrt(2)``-weighted off-diagonal entries.
    """
    metric = _check_map_metric(metric)
    X = check_spd(X, "X")
    ref = _check_ref(ref, X.shape[-1])
    return _tangent_validated(X, ref, metric, n_jobs)


@single_threaded_blas()
def untangent_space(T: Any, ref: Any, metric: str = "riemann", n_jobs: int | None = None) -> np.ndarray:
    """SPD matrices from tangent vectors at a reference point (inverse of :func:`tangent_space`).

    Parameters
    ----------
    T : array-like, shape (..., n (n + 1) / 2)
        Tangent vectors.
    ref : array-like, shape (n, n)
        SPD reference point.
    metric : str
        Exponential map: ``"riemann"``, ``"logeuclid"``, ``"euclid"`` or
        ``"wasserstein"``.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        The matrices.
    """
    metric = _check_map_metric(metric)
    T = check_array(T, "T", dtype=np.float64)
    if T.ndim < 1:
        raise ShapeError("T must hold tangent vectors (..., n (n + 1) / 2).")
    n = _n_from_dim(T.shape[-1])
    ref = _check_ref(ref, n)
    return _untangent_validated(T, ref, metric, n_jobs)


def split_metric(metric: Any, keys: tuple[str, str]) -> tuple[Any, Any]:
    """pyRiemann's ``check_metric``: a string for every step, or a dict with one entry per step."""
    if isinstance(metric, str):
        return metric, metric
    if isinstance(metric, dict):
        missing = [k for k in keys if k not in metric]
        if missing:
            raise ShapeError(f"metric dict must have the keys {list(keys)}; missing {missing}.")
        return metric[keys[0]], metric[keys[1]]
    raise ShapeError(f"metric must be a string or a dict with keys {list(keys)}; got {metric!r}.")


class TangentSpace(TransformerMixin, BaseEstimator):
    """Project SPD matrices to the tangent space at their mean (scikit-learn transformer).

    Parameters
    ----------
    metric : str or dict
        Metric of the reference mean and of the logarithmic map, or a dict
        ``{"mean": ..., "map": ...}`` as in pyRiemann.
    tsupdate : bool
        If True, :meth:`transform` recomputes the reference as the mean of
        the data it is given (unsupervised adaptation), as pyRiemann.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Attributes
    ----------
    reference_ : numpy.ndarray, shape (n, n)
        The reference point: the mean of the training matrices. With the
        Riemannian metric, ``fit_transform`` takes the tangent vectors from
        the last pass of the Karcher mean (corrected to first order for its
        final step, see :func:`neuroenc.riemann.means.riemann_tangent_at_mean`)
        instead of a pass of its own.
    n_features_in_ : int
        Number of channels ``n`` of the matrices seen in :meth:`fit`.

    Notes
    -----
    pyRiemann's ``transform`` on an unfitted transformer silently uses the
    identity as reference; this one raises ``NotFittedError``.
    """

    def __init__(self, metric: str | dict = "riemann", tsupdate: bool = False, n_jobs: int | None = None) -> None:
        self.metric = metric
        self.tsupdate = tsupdate
        self.n_jobs = n_jobs

    def _metrics(self) -> tuple[str, str]:
        from neuroenc.riemann.means import check_mean_metric

        mean_metric, map_metric = split_metric(self.metric, ("mean", "map"))
        return check_mean_metric(mean_metric), _check_map_metric(map_metric)

    def _reference(self, X: np.ndarray, sample_weight: Any, mean_metric: str) -> np.ndarray:
        from neuroenc.riemann.means import _mean_validated, check_weights

        w = check_weights(sample_weight, len(X))
        return _mean_validated(X, mean_metric, w, n_jobs=self.n_jobs)

    def _reference_and_vectors(
        self, X: np.ndarray, sample_weight: Any, mean_metric: str, map_metric: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reference point of ``X`` and the tangent vectors of ``X`` at it."""
        from neuroenc.riemann.means import check_weights, riemann_tangent_at_mean

        if mean_metric == "riemann" and map_metric == "riemann":
            # the last pass of the Karcher mean has computed the log maps already
            return riemann_tangent_at_mean(X, check_weights(sample_weight, len(X)), self.n_jobs)
        ref = self._reference(X, sample_weight, mean_metric)
        return ref, _tangent_validated(X, ref, map_metric, self.n_jobs)

    @single_threaded_blas()
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> TangentSpace:
        """Compute the reference point: the mean of ``X``.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.
        y : ignored
            Accepted for pipeline compatibility.
        sample_weight : array-like, shape (n_matrices,), optional
            Weights of the mean.

        Returns
        -------
        TangentSpace
            The fitted transformer.
        """
        mean_metric, _ = self._metrics()
        X = check_spd(X, "X", ndim=3)
        self.reference_ = self._reference(X, sample_weight, mean_metric)
        self.n_features_in_ = X.shape[-1]
        return self

    def _check_X(self, X: Any) -> np.ndarray:
        X = check_spd(X, "X", ndim=3)
        if X.shape[-1] != self.reference_.shape[0]:
            raise ShapeError(
                f"X holds {X.shape[-1]} x {X.shape[-1]} matrices but the transformer was fitted on "
                f"{self.reference_.shape[0]} x {self.reference_.shape[0]}."
            )
        return X

    @single_threaded_blas()
    def transform(self, X: Any) -> np.ndarray:
        """Tangent vectors of ``X`` at the reference point.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n (n + 1) / 2)
            Tangent vectors.
        """
        check_is_fitted(self, "reference_")
        mean_metric, map_metric = self._metrics()
        X = self._check_X(X)
        if self.tsupdate:
            return self._reference_and_vectors(X, None, mean_metric, map_metric)[1]
        return _tangent_validated(X, self.reference_, map_metric, self.n_jobs)

    @single_threaded_blas()
    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit to ``X`` and return its tangent vectors (one validation of ``X``).

        Parameters
        ----------
        X : array-like, shape (n_matrices, n, n)
            SPD matrices.
        y : ignored
            Accepted for pipeline compatibility.
        sample_weight : array-like, shape (n_matrices,), optional
            Weights of the mean.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n (n + 1) / 2)
            Tangent vectors.
        """
        mean_metric, map_metric = self._metrics()
        X = check_spd(X, "X", ndim=3)
        self.reference_, T = self._reference_and_vectors(X, sample_weight, mean_metric, map_metric)
        self.n_features_in_ = X.shape[-1]
        return T

    @single_threaded_blas()
    def inverse_transform(self, X: Any) -> np.ndarray:
        """SPD matrices from tangent vectors at the reference point.

        Parameters
        ----------
        X : array-like, shape (n_matrices, n (n + 1) / 2)
            Tangent vectors.

        Returns
        -------
        numpy.ndarray, shape (n_matrices, n, n)
            The matrices.
        """
        check_is_fitted(self, "reference_")
        _, map_metric = self._metrics()
        T = check_array(X, "X", ndim=2, dtype=np.float64)
        n = self.reference_.shape[0]
        if T.shape[1] != n * (n + 1) // 2:
            raise ShapeError(f"X has {T.shape[1]} features; the reference ({n} x {n}) needs {n * (n + 1) // 2}.")
        return _untangent_validated(T, self.reference_, map_metric, self.n_jobs)
