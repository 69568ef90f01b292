"""Means of SPD matrices according to a metric.

The definitions are pyRiemann 0.12's ``mean_*`` functions. The Riemannian
(Karcher) mean is the same fixed point as pyRiemann's ``mean_riemann``,
reached with fewer passes over the data (each pass is one eigendecomposition
per matrix, the whole cost):

- it starts from the geodesic midpoint of the arithmetic and harmonic means,
  which for covariance matrices is typically 40x closer to the Karcher mean
  than the arithmetic mean pyRiemann starts from;
- the iterate is kept as a factor ``M = C C^T`` updated by
  ``C <- C exp(alpha J / 2)``: no square roots of ``M`` are needed, and in
  these coordinates successive gradients ``J`` are directly comparable, which
  gives the step size ``alpha`` of Barzilai and Borwein
  (``<s, s> / <s, y>`` with ``s`` the last step and ``y`` the change of
  gradient) instead of pyRiemann's decaying one.

The stopping rule is pyRiemann's (``||J||_F <= tol``, then one last update).
The log-det and Wasserstein means are fixed-point iterations whose result
depends on where they stop; they follow pyRiemann's iterations exactly so
that their results match it.
"""

from __future__ import annotations

import numbers
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# Public calls run whole with one BLAS thread: after a threaded call, OpenBLAS
# leaves its workers spinning, and they would steal the cores the kernel
# threads run on (small matrices gain nothing from BLAS threads anyway).
from neuroenc._kernels.parallel import single_threaded_blas
from neuroenc.errors import ShapeError
from neuroenc.validation import check_array, check_choice, check_spd

__all__ = ["mean", "MEAN_METRICS", "ConvergenceWarning"]

#: Metrics accepted by :func:`mean`.
MEAN_METRICS = ("riemann", "logeuclid", "euclid", "logdet", "wasserstein", "harmonic", "kullback_sym")

# pyRiemann's defaults (its ``10e-9`` is 1e-8)
_DEFAULT_TOL = {"riemann": 1e-8, "logdet": 1e-4, "wasserstein": 1e-8}


class ConvergenceWarning(UserWarning):
    """An iterative mean stopped at ``maxiter`` before reaching ``tol``."""


def _warn_not_converged(message: str) -> None:
    """Warn at the first frame outside neuroenc and contextlib (the decorators add frames)."""
    import contextlib
    import sys

    skip = (str(Path(__file__).parents[1]), contextlib.__file__)
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, ConvergenceWarning, stacklevel=level)


def check_weights(sample_weight: Any, n_matrices: int) -> np.ndarray:
    """Non-negative weights with a positive sum, normalised to sum to 1 (None: equal weights)."""
    if sample_weight is None:
        return np.full(n_matrices, 1.0 / n_matrices)
    w = check_array(sample_weight, "sample_weight", ndim=1, dtype=np.float64)
    if w.shape[0] != n_matrices:
        raise ShapeError(f"sample_weight has {w.shape[0]} entries but there are {n_matrices} matrices.")
    if (w < 0).any():
        i = int(np.flatnonzero(w < 0)[0])
        raise ShapeError(f"sample_weight[{i}] is negative ({w[i]:.3g}); weights must be >= 0.")
    total = w.sum()
    if total <= 0:
        raise ShapeError("sample_weight sums to 0; at least one weight must be positive.")
    return w / total


def _sym(M: np.ndarray) -> np.ndarray:
    return 0.5 * (M + M.T)


def _eig_apply(M: np.ndarray, fn) -> np.ndarray:
    w, V = np.linalg.eigh(M)
    return (V * fn(w)) @ V.T


def _mean_euclid(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.tensordot(w, X, axes=([0], [0]))


def _mean_harmonic(X: np.ndarray, w: np.ndarray, n_jobs: int | None) -> np.ndarray:
    from neuroenc._kernels.spd import spd_inv

    return spd_inv(_mean_euclid(spd_inv(X, n_jobs=n_jobs), w)[None])[0]


def _weighted_inverse_sum(X: np.ndarray, w: np.ndarray, n_jobs: int | None) -> np.ndarray:
    """``sum_i w_i X_i^{-1}`` by numpy's LAPACK inverse on a chunk per thread (numpy releases the GIL).

    For the starting point of the Karcher iteration, where the kernel of
    :func:`_mean_harmonic` would add its compilation to the first call.
    """
    from neuroenc._kernels.parallel import run_chunks

    parts: list[tuple[int, np.ndarray]] = []
    run_chunks(lambda a, b: parts.append((a, np.tensordot(w[a:b], np.linalg.inv(X[a:b]), axes=1))), len(X), n_jobs)
    return sum(part for _, part in sorted(parts, key=lambda item: item[0]))


def _geodesic_midpoint(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A^{1/2} (A^{-1/2} B A^{-1/2})^{1/2} A^{1/2}``: the Riemannian midpoint of A and B."""
    wa, Va = np.linalg.eigh(A)
    A12 = (Va * np.sqrt(wa)) @ Va.T
    Am12 = (Va / np.sqrt(wa)) @ Va.T
    return _sym(A12 @ _eig_apply(_sym(Am12 @ B @ Am12), np.sqrt) @ A12)


def _mean_logeuclid(X: np.ndarray, w: np.ndarray, n_jobs: int | None) -> np.ndarray:
    from neuroenc._kernels.spd import OP_LOG, weighted_matfunc_sum

    return _eig_apply(_sym(weighted_matfunc_sum(X, w, OP_LOG, n_jobs=n_jobs)), np.exp)


def _karcher(
    X: np.ndarray,
    w: np.ndarray,
    tol: float,
    maxiter: int,
    init: np.ndarray | None,
    n_jobs: int | None,
    logs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Karcher iteration; returns ``(C_last, C_end, step)``.

    ``C_end C_end^T`` is the mean (after the final update
    ``C_end = C_last exp(step / 2)``); ``C_last C_last^T`` the last iterate
    at which the gradient was computed (its norm is at most ``tol``). If
    ``logs`` is given it receives ``log(C_last^{-1} X_i C_last^{-T})`` (see
    :func:`riemann_tangent_at_mean`).
    """
    from neuroenc._kernels.spd import OP_LOG, weighted_matfunc_sum

    if init is None:
        M0 = _geodesic_midpoint(_mean_euclid(X, w), np.linalg.inv(_weighted_inverse_sum(X, w, n_jobs)))
    else:
        M0 = init
    C = np.linalg.cholesky(M0)
    Ci = np.linalg.inv(C)
    alpha = 1.0
    prev_step = prev_J = None
    prev_crit = np.inf
    for _ in range(maxiter):
        # gradient in the coordinates of C: mean of log(C^{-1} X_i C^{-T})
        J = _sym(weighted_matfunc_sum(X, w, OP_LOG, F=Ci, n_jobs=n_jobs, store=logs))
        crit = float(np.linalg.norm(J))
        if prev_J is not None:
            if crit > prev_crit:
                alpha = 0.5 * alpha  # the last step overshot: be careful
            else:
                s_y = float(np.vdot(prev_step, prev_J - J))
                if s_y > 0:
                    alpha = min(max(float(np.vdot(prev_step, prev_step)) / s_y, 0.05), 20.0)
                else:
                    alpha = 1.0
        step = alpha * J
        d, U = np.linalg.eigh(step)
        C_last = C
        C = C @ ((U * np.exp(0.5 * d)) @ U.T)
        Ci = ((U * np.exp(-0.5 * d)) @ U.T) @ Ci
        prev_step, prev_J, prev_crit = step, J, crit
        if crit <= tol:
            break
    else:
        _warn_not_converged(
            f"The Riemannian mean did not converge in {maxiter} iteration(s) "
            f"(||gradient|| = {crit:.3g} > tol = {tol:g})."
        )
    return C_last, C, step


def _mean_riemann(
    X: np.ndarray, w: np.ndarray, tol: float, maxiter: int, init: np.ndarray | None, n_jobs: int | None
) -> np.ndarray:
    C = _karcher(X, w, tol, maxiter, init, n_jobs)[1]
    return _sym(C @ C.T)


def riemann_tangent_at_mean(
    X: np.ndarray, w: np.ndarray, n_jobs: int | None = None, tol: float = 1e-8, maxiter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Riemannian mean ``M`` and the tangent vectors of ``log(M^{-1/2} X_i M^{-1/2})``, without a pass of their own.

    The last pass of the Karcher iteration computed ``L_i = log(W_i)``,
    ``W_i = C^{-1} X_i C^{-T}`` at the last iterate ``C C^T``; the mean is
    then ``M = C' C'^T`` with ``C' = C E``, ``E = exp(S / 2)`` for the final
    step ``S`` (norm at most ``tol`` up to the step size). Since
    ``M^{-1/2} X M^{-1/2} = R E^{-1} W E^{-1} R^T`` with the rotation
    ``R = M^{-1/2} C'``, the log maps are ``R (L_i - S) R^T`` to first order
    in ``S``: the error is ``|S|`` times the deviation of
    ``(a + b) (log a - log b) / (2 (a - b))`` from 1 over pairs of
    eigenvalues of ``W_i``, about 1e-9 here, against ``|S|`` (1e-8) if the
    last iterate itself were used as the reference. This saves the separate
    log-map pass of :class:`~neuroenc.riemann.TangentSpace` on its training
    data.

    Returns
    -------
    M : numpy.ndarray, shape (n, n)
        The mean (as :func:`mean` returns it).
    vectors : numpy.ndarray, shape (n_matrices, n (n + 1) / 2)
        Tangent vectors at ``M`` (upper triangles of the symmetrised log
        maps, off-diagonal entries times ``sqrt(2)``).
    """
    from neuroenc._kernels.spd import congruence_upper

    logs = np.empty_like(X)
    _, C, step = _karcher(X, w, tol, maxiter, None, n_jobs, logs=logs)
    M = _sym(C @ C.T)
    wm, Vm = np.linalg.eigh(M)
    R = ((Vm / np.sqrt(wm)) @ Vm.T) @ C
    return M, congruence_upper(logs, R, _sym(R @ step @ R.T), n_jobs=n_jobs)


def _mean_logdet(
    X: np.ndarray, w: np.ndarray, tol: float, maxiter: int, init: np.ndarray | None, n_jobs: int | None
) -> np.ndarray:
    from neuroenc._kernels.spd import spd_inv

    M = _mean_euclid(X, w) if init is None else init
    for _ in range(maxiter):
        J = _mean_euclid(spd_inv(0.5 * X + 0.5 * M, n_jobs=n_jobs), w)
        M_new = spd_inv(J[None])[0]
        crit = float(np.linalg.norm(M_new - M))
        M = M_new
        if crit <= tol:
            break
    else:
        _warn_not_converged(
            f"The log-det mean did not converge in {maxiter} iteration(s) (step {crit:.3g} > tol = {tol:g})."
        )
    return M


def _mean_wasserstein(
    X: np.ndarray, w: np.ndarray, tol: float, maxiter: int, init: np.ndarray | None, n_jobs: int | None
) -> np.ndarray:
    from neuroenc._kernels.spd import OP_SQRT, weighted_matfunc_sum

    M = _mean_euclid(X, w) if init is None else init
    for _ in range(maxiter):
        wm, Vm = np.linalg.eigh(M)
        M12 = (Vm * np.sqrt(wm)) @ Vm.T
        Mm12 = (Vm / np.sqrt(wm)) @ Vm.T
        # the log map is linear in sqrtm(M^{1/2} X_i M^{1/2}): average that first
        S = weighted_matfunc_sum(X, w, OP_SQRT, F=M12, n_jobs=n_jobs)
        T = Mm12 @ S @ M12
        J = T + T.T - 2.0 * M
        # exponential map of J at M
        Vh = Vm.T
        coef = 1.0 / (wm[:, None] + wm[None, :])
        Jr = coef * (Vh @ J @ Vm)
        M = M + J + Vm @ (Jr @ (wm[:, None] * Jr)) @ Vh
        crit = float(np.linalg.norm(J))
        if crit <= tol:
            break
    else:
        _warn_not_converged(
            f"The Wasserstein mean did not converge in {maxiter} iteration(s) (||J|| = {crit:.3g} > tol = {tol:g})."
        )
    return M


def _mean_validated(
    X: np.ndarray,
    metric: str,
    w: np.ndarray,
    tol: float | None = None,
    maxiter: int = 50,
    init: np.ndarray | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Mean of a validated batch ``(n_matrices, n, n)`` with normalised weights."""
    if tol is None:
        tol = _DEFAULT_TOL.get(metric, 0.0)
    if metric == "euclid":
        return _mean_euclid(X, w)
    if metric == "logeuclid":
        return _mean_logeuclid(X, w, n_jobs)
    if metric == "harmonic":
        return _mean_harmonic(X, w, n_jobs)
    if metric == "kullback_sym":
        return _geodesic_midpoint(_mean_euclid(X, w), _mean_harmonic(X, w, n_jobs))
    if metric == "riemann":
        return _mean_riemann(X, w, tol, maxiter, init, n_jobs)
    if metric == "logdet":
        return _mean_logdet(X, w, tol, maxiter, init, n_jobs)
    return _mean_wasserstein(X, w, tol, maxiter, init, n_jobs)


def check_mean_metric(metric: Any) -> str:
    """Return ``metric`` if it is one of :data:`MEAN_METRICS`, else raise."""
    if not isinstance(metric, str):
        raise ShapeError(f"metric must be a string, one of {MEAN_METRICS}; got {metric!r}.")
    return check_choice(metric, MEAN_METRICS, "mean metric")


@single_threaded_blas()
def mean(
    X: Any,
    metric: str = "riemann",
    sample_weight: Any = None,
    tol: float | None = None,
    maxiter: int = 50,
    init: Any = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Weighted mean of SPD matrices according to a metric.

    Parameters
    ----------
    X : array-like, shape (n_matrices, n, n)
        SPD matrices.
    metric : str
        One of :data:`MEAN_METRICS`: ``"riemann"`` (Karcher mean of the
        affine-invariant metric), ``"logeuclid"``, ``"euclid"``, ``"logdet"``,
        ``"wasserstein"``, ``"harmonic"``, ``"kullback_sym"``.
    sample_weight : array-like, shape (n_matrices,), optional
        Non-negative weights, normalised to sum to 1; None: equal weights.
    tol : float, optional
        Stopping tolerance of the iterative means (riemann: Frobenius norm of
        the gradient, default 1e-8; logdet: norm of the step, default 1e-4;
        wasserstein: norm of the gradient, default 1e-8, as pyRiemann).
    maxiter : int
        Maximum number of iterations; reaching it emits a
        :class:`ConvergenceWarning`.
    init : array-like, shape (n, n), optional
        SPD starting point of the iterative means. The default is pyRiemann's
        (the arithmetic mean) for logdet and wasserstein, and the geodesic
        midpoint of the arithmetic and harmonic means for riemann, which
        converges to the same point in fewer iterations.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (n, n)
        The mean.
    """
    metric = check_mean_metric(metric)
    X = check_spd(X, "X", ndim=3)
    w = check_weights(sample_weight, X.shape[0])
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
            raise ShapeError(f"tol must be a non-negative number, got {tol!r}.")
        tol = float(tol)
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 1:
        raise ShapeError(f"maxiter must be a positive integer, got {maxiter!r}.")
    if init is not None:
        init = check_spd(init, "init", ndim=2)
        if init.shape != X.shape[1:]:
            raise ShapeError(f"init has shape {init.shape}; expected {X.shape[1:]}.")
    return _mean_validated(X, metric, w, tol, int(maxiter), init, n_jobs)
