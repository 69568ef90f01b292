"""Distances between SPD matrices, one pair at a time or all pairs.

Definitions are pyRiemann 0.12's (``distance_riemann``, ``distance_logeuclid``,
...), computed in compiled kernels split over threads:

- ``riemann``, ``logdet`` and ``wasserstein`` are sums over the eigenvalues
  of the congruence ``L^{-1} A L^{-T}`` (``B = L L^T``; ``L^T A L`` for
  Wasserstein): one Cholesky factor per matrix, then one eigenvalue problem
  per pair (:func:`neuroenc._kernels.spd.pair_spectral_sum`). The log-det
  divergence ``log det((A + B) / 2) - log det(A B) / 2`` is evaluated as
  ``sum log((1 + x) / (2 sqrt x))`` over those eigenvalues, which stays
  accurate on ill-conditioned matrices where pyRiemann's
  ``slogdet(A @ B)`` loses digits (1e-8 relative on EEG covariances).
- ``logeuclid``, ``euclid`` and ``harmonic`` are Frobenius distances between
  ``log(X)``, ``X`` or ``X^{-1}``: one matrix function per matrix, written
  as its upper triangle with ``sqrt(2)``-weighted off-diagonal entries (half
  the length, same dot products), then a Gram matrix (one BLAS product, or
  half of one through ``syrk`` for all pairs of one set) with the pairs that
  cancel recomputed directly; ``kullback_sym`` likewise from traces
  ``<A, B^{-1}>``.

For :func:`pairwise_distance` with ``Y`` None only the upper triangle is
computed, and the pairs are dealt to the threads in equal contiguous shares,
so that they finish together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Public calls run whole with one BLAS thread: after a threaded call, OpenBLAS
# leaves its workers spinning, and they would steal the cores the kernel
# threads run on (small matrices gain nothing from BLAS threads anyway).
from neuroenc._kernels.parallel import single_threaded_blas
from neuroenc.errors import ShapeError
from neuroenc.validation import check_choice, check_spd

__all__ = ["distance", "pairwise_distance", "DISTANCE_METRICS"]

#: Metrics accepted by :func:`distance` and :func:`pairwise_distance`.
DISTANCE_METRICS = ("riemann", "logeuclid", "euclid", "logdet", "wasserstein", "kullback_sym", "harmonic")

# kullback_sym is a divergence: "squared" squares it instead of the other way round
_RETURNS_SQUARED = {"riemann", "logeuclid", "euclid", "logdet", "wasserstein", "harmonic"}


def _check_metric(metric: Any) -> str:
    if not isinstance(metric, str):
        raise ShapeError(f"metric must be a string, one of {DISTANCE_METRICS}; got {metric!r}.")
    return check_choice(metric, DISTANCE_METRICS, "distance metric")


def _chol(X: np.ndarray) -> np.ndarray:
    return np.linalg.cholesky(X)


def _inv_chol(X: np.ndarray) -> np.ndarray:
    """``L^{-1}`` for the lower Cholesky factors ``L`` of the batch ``X``."""
    L = _chol(X)
    return np.linalg.solve(L, np.broadcast_to(np.eye(X.shape[-1]), X.shape))


def _trace(X: np.ndarray) -> np.ndarray:
    return np.trace(X, axis1=-2, axis2=-1)


def _features(X: np.ndarray, metric: str, n_jobs: int | None) -> np.ndarray:
    """Rows whose Euclidean distances are the metric: ``log(X)``, ``X`` or ``X^{-1}`` half-vectorised (``_vec``)."""
    from neuroenc._kernels import spd

    if metric == "logeuclid":
        return spd.matfunc_upper(X, spd.OP_LOG, n_jobs=n_jobs)
    if metric == "harmonic":
        return _vec(spd.spd_inv(X, n_jobs=n_jobs))
    return _vec(X)


def _pair_values(
    A: np.ndarray, B: np.ndarray, ia: np.ndarray, ib: np.ndarray, metric: str, n_jobs: int | None
) -> np.ndarray:
    """Squared distance (or divergence for kullback_sym) between ``A[ia[k]]`` and ``B[ib[k]]``.

    ``A`` and ``B`` are validated batches ``(n_a, n, n)`` and ``(n_b, n, n)``.
    """
    from neuroenc._kernels import spd

    n = A.shape[-1]
    if metric in ("riemann", "logdet", "wasserstein"):
        # sums over the eigenvalues of one congruence per pair: by L_B^{-1} (B = L_B L_B^T) of A
        # for riemann and logdet, by L_B^T for Wasserstein (eig(B^{1/2} A B^{1/2}) = eig(L_B^T A L_B));
        # the factored set is the smaller one (the congruence costs the same either way)
        if len(B) > len(A):
            A, B, ia, ib = B, A, ib, ia
        kind = {"riemann": spd.SUM_LOG2, "logdet": spd.SUM_LOGDET, "wasserstein": spd.SUM_SQRT}[metric]
        F = _inv_chol(B) if metric != "wasserstein" else np.swapaxes(_chol(B), -1, -2)
        # pairs sharing a factor run in turn: it stays in cache
        order = None if np.all(ib[1:] >= ib[:-1]) else np.argsort(ib, kind="stable")
        if order is not None:
            ia, ib = ia[order], ib[order]
        values = spd.pair_spectral_sum(F, A, ib, ia, kind, n_jobs)
        if metric == "logdet":
            # sum log((1 + x) / (2 sqrt x)) stays accurate when A and B are ill-conditioned
            # alike, where log det((A + B) / 2) - ... cancels
            values = np.clip(values, 0.0, None)
        elif metric == "wasserstein":
            values = np.clip(_trace(A)[ia] + _trace(B)[ib] - 2.0 * values, 0.0, None)
        if order is not None:
            values[order] = values.copy()
        return values
    if metric == "kullback_sym":
        Ai = spd.spd_inv(A, n_jobs=n_jobs)
        Bi = spd.spd_inv(B, n_jobs=n_jobs)
        t1 = np.einsum("kij,kij->k", Bi[ib], A[ia])
        t2 = np.einsum("kij,kij->k", Ai[ia], B[ib])
        return 0.5 * (t1 + t2) - n
    FA = _features(A, metric, n_jobs)
    FB = _features(B, metric, n_jobs)
    diff = FA[ia] - FB[ib]
    return np.einsum("ki,ki->k", diff, diff)


def _finish(values: np.ndarray, metric: str, squared: bool) -> np.ndarray:
    if metric in _RETURNS_SQUARED:
        return values if squared else np.sqrt(values)
    return values**2 if squared else values


@single_threaded_blas()
def distance(A: Any, B: Any, metric: str = "riemann", squared: bool = False, n_jobs: int | None = None) -> Any:
    """Distance between SPD matrices according to a metric.

    Parameters
    ----------
    A, B : array-like, shape (..., n, n)
        SPD matrices; their batch shapes are broadcast together (e.g. a
        batch ``(n_matrices, n, n)`` against one matrix ``(n, n)``).
    metric : str
        One of :data:`DISTANCE_METRICS`: ``"riemann"`` (affine-invariant),
        ``"logeuclid"``, ``"euclid"``, ``"logdet"``, ``"wasserstein"``,
        ``"kullback_sym"`` (symmetrised Kullback-Leibler divergence; not a
        squared quantity, so ``squared=True`` squares it as pyRiemann does),
        ``"harmonic"``.
    squared : bool
        Return squared distances.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    float or numpy.ndarray, shape (...)
        Distances, with the broadcast batch shape (a float for two single
        matrices). pyRiemann's ``distance`` returns ``(n_matrices, 1)`` for a
        batch against one matrix; here the shape is ``(n_matrices,)``.
    """
    metric = _check_metric(metric)
    A = check_spd(A, "A")
    B = check_spd(B, "B")
    if A.shape[-1] != B.shape[-1]:
        raise ShapeError(f"A holds {A.shape[-1]} x {A.shape[-1]} matrices but B holds {B.shape[-1]} x {B.shape[-1]}.")
    try:
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    except ValueError:
        raise ShapeError(f"Batch shapes of A {A.shape[:-2]} and B {B.shape[:-2]} cannot be broadcast.") from None
    n = A.shape[-1]
    Af = A.reshape(-1, n, n)
    Bf = B.reshape(-1, n, n)
    ia = np.broadcast_to(np.arange(len(Af)).reshape(A.shape[:-2]), batch).ravel()
    ib = np.broadcast_to(np.arange(len(Bf)).reshape(B.shape[:-2]), batch).ravel()
    values = _finish(_pair_values(Af, Bf, ia, ib, metric, n_jobs), metric, squared).reshape(batch)
    return float(values) if values.ndim == 0 else values


def _vec(X: np.ndarray) -> np.ndarray:
    """Upper triangles weighted so that dot products equal Frobenius products."""
    n = X.shape[-1]
    rows, cols = np.triu_indices(n)
    weights = np.where(rows == cols, 1.0, np.sqrt(2.0))
    return X[:, rows, cols] * weights


def _products(A: np.ndarray, B: np.ndarray, n_jobs: int | None) -> np.ndarray:
    """``A @ B.T`` with the rows of ``A`` split over threads (numpy releases the GIL; one BLAS thread each)."""
    from neuroenc._kernels.parallel import run_chunks

    out = np.empty((len(A), len(B)))
    run_chunks(lambda a, b: np.matmul(A[a:b], B.T, out=out[a:b]), len(A), n_jobs, min_chunk=64)
    return out


def _self_sqdist(v: np.ndarray, nx: np.ndarray, n_jobs: int | None) -> np.ndarray:
    """Squared distances between all pairs of rows of ``v`` (``nx`` their squared norms), exactly symmetric.

    Half the work of the full product: the rows are cut into one block per
    thread, the diagonal blocks are symmetric rank-k updates (numpy calls
    BLAS ``syrk`` for ``B @ B.T``), the blocks above them products, dealt to
    the threads in equal shares of work (a product costs two rank-k
    updates); each thread finishes its blocks (and their mirror images below
    the diagonal) while they are in cache.
    """
    from neuroenc._kernels.parallel import effective_n_jobs, run_chunks

    N = len(v)
    n_blocks = max(1, min(effective_n_jobs(n_jobs), N // 64))
    edges = [round(i * N / n_blocks) for i in range(n_blocks + 1)]
    blocks = [(edges[i], edges[i + 1], edges[j], edges[j + 1]) for i in range(n_blocks) for j in range(i, n_blocks)]
    shares: list[list[tuple[int, int, int, int]]] = [[] for _ in range(n_blocks)]
    load = [0.0] * n_blocks
    for blk in sorted(blocks, key=lambda t: t[0] == t[2]):  # greedy, the products first
        k = load.index(min(load))
        shares[k].append(blk)
        load[k] += 1.0 if blk[0] == blk[2] else 2.0
    out = np.empty((N, N))

    def job(start: int, stop: int) -> None:
        for share in shares[start:stop]:
            for a0, a1, b0, b1 in share:
                blk = out[a0:a1, b0:b1]
                np.matmul(v[a0:a1], v[b0:b1].T, out=blk)
                _finish_sqdist(blk, v[a0:a1], v[b0:b1], nx[a0:a1], nx[b0:b1])
                if a0 == b0:  # exactly symmetric (numpy's syrk result is, but this does not rely on it)
                    blk += blk.T
                    blk *= 0.5
                else:
                    out[b0:b1, a0:a1] = blk.T

    run_chunks(job, n_blocks, n_jobs)
    return out


def _finish_sqdist(G: np.ndarray, vx: np.ndarray, vy: np.ndarray, nx: np.ndarray, ny: np.ndarray) -> None:
    """Turn the products ``G = vx @ vy.T`` into squared distances ``|x|^2 + |y|^2 - 2 x.y``, in place.

    Pairs whose distance is small next to the norms, where that formula
    cancels, are recomputed directly.
    """
    norms = np.add.outer(nx, ny)
    G *= -2.0
    G += norms
    np.maximum(G, 0.0, out=G)
    norms *= 1e-4
    suspect = np.argwhere(G < norms)
    if len(suspect):
        diff = vx[suspect[:, 0]] - vy[suspect[:, 1]]
        G[suspect[:, 0], suspect[:, 1]] = np.einsum("ij,ij->i", diff, diff)


def _gram_sqdist(vx: np.ndarray, vy: np.ndarray | None, n_jobs: int | None = None) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``vx`` and ``vy`` (None: ``vx``, symmetric result).

    ``|x|^2 + |y|^2 - 2 x.y`` through one matrix product (half of one for
    ``vy`` None), see :func:`_finish_sqdist`.
    """
    nx = np.einsum("ij,ij->i", vx, vx)
    if vy is None:
        d2 = _self_sqdist(vx, nx, n_jobs)
        np.fill_diagonal(d2, 0.0)
        return d2
    ny = np.einsum("ij,ij->i", vy, vy)
    d2 = _products(vx, vy, n_jobs)
    _finish_sqdist(d2, vx, vy, nx, ny)
    return d2


@single_threaded_blas()
def pairwise_distance(
    X: Any, Y: Any = None, metric: str = "riemann", squared: bool = False, n_jobs: int | None = None
) -> np.ndarray:
    """Matrix of distances between the SPD matrices of ``X`` and ``Y``.

    Parameters
    ----------
    X : array-like, shape (n_x, n, n)
        SPD matrices.
    Y : array-like, shape (n_y, n, n), optional
        SPD matrices; None means ``X`` (then only one triangle is computed,
        the result is exactly symmetric with a zero diagonal).
    metric : str
        One of :data:`DISTANCE_METRICS` (see :func:`distance`).
    squared : bool
        Return squared distances.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (n_x, n_y)
        ``D[i, j] = distance(X[i], Y[j])``.
    """
    from neuroenc._kernels import spd

    metric = _check_metric(metric)
    X = check_spd(X, "X", ndim=3)
    n_x, n, _ = X.shape
    if Y is not None:
        Y = check_spd(Y, "Y", ndim=3)
        if Y.shape[-1] != n:
            raise ShapeError(f"X holds {n} x {n} matrices but Y holds {Y.shape[-1]} x {Y.shape[-1]}.")

    if metric in ("logeuclid", "euclid", "harmonic"):
        FY = None if Y is None else _features(Y, metric, n_jobs)
        return _finish(_gram_sqdist(_features(X, metric, n_jobs), FY, n_jobs), metric, squared)
    if metric == "kullback_sym":
        Yv = X if Y is None else Y
        Xi = spd.spd_inv(X, n_jobs=n_jobs)
        Yi = Xi if Y is None else spd.spd_inv(Y, n_jobs=n_jobs)
        t = _products(_vec(X), _vec(Yi), n_jobs) + _products(_vec(Xi), _vec(Yv), n_jobs)
        d = 0.5 * t - n
        if Y is None:
            d = 0.5 * (d + d.T)
            np.fill_diagonal(d, 0.0)
        return _finish(d, metric, squared)

    if Y is None:
        ia, ib = np.triu_indices(n_x, 1)
        # (ib, ia): the factored matrix (second index) is the slow-varying one
        values = _pair_values(X, X, ib, ia, metric, n_jobs)
        out = np.zeros((n_x, n_x))
        out[ia, ib] = values
        out[ib, ia] = values
    else:
        ia, ib = (g.ravel() for g in np.meshgrid(np.arange(n_x), np.arange(len(Y)), indexing="ij"))
        out = _pair_values(X, Y, ia, ib, metric, n_jobs).reshape(n_x, len(Y))
    return _finish(out, metric, squared)
