"""Kernels for SPD geometry: matrix functions, spectra of congruences, pair distances.

Every kernel is serial over a slice ``[start, stop)`` of its batch and is
run by :func:`neuroenc._kernels.parallel.run_chunks`; the numpy-level
wrappers at the bottom of this module allocate outputs and do the chunking.
None of them validates its input: the public functions of
:mod:`neuroenc.riemann` do that (with :func:`neuroenc.validation.check_spd`)
before calling them.

Two families:

- *Matrix functions* ``V f(w) V^T`` go through LAPACK's ``syevd`` (numba's
  ``np.linalg.eigh``), which is as fast as anything at these sizes when the
  eigenvectors are needed.
- *Spectral sums* ``sum_k g(lambda_k)`` of a congruence ``F Y F^T`` (the
  Riemannian, log-det and Wasserstein distances) need eigenvalues only.
  They use a Householder tridiagonalisation written here (about 1.5x faster
  than LAPACK's ``sytrd`` on 64 x 64: the rank-2 update of each step is
  fused with the matrix-vector product of the next) followed by LAPACK's
  root-free QL/QR ``sterf`` on the tridiagonal forms. A problem ``sterf``
  does not solve (never seen) is recomputed by numpy in the wrapper.
"""

from __future__ import annotations

import llvmlite.binding as _llvm
import numpy as np
from numba import njit, types
from numba.extending import get_cython_function_address

from neuroenc._kernels.parallel import run_chunks

__all__ = [
    "OP_SQRT",
    "OP_INVSQRT",
    "OP_LOG",
    "OP_EXP",
    "OP_POW",
    "OP_INV",
    "SUM_LOG2",
    "SUM_SQRT",
    "SUM_LOGDET",
    "matfunc",
    "congruence_matfunc",
    "weighted_matfunc_sum",
    "eigvalsh",
    "pair_spectral_sum",
    "spd_inv",
]

OP_SQRT = 0
OP_INVSQRT = 1
OP_LOG = 2
OP_EXP = 3
OP_POW = 4
OP_INV = 5

SUM_LOG2 = 0  # sum of log(lambda)^2: squared affine-invariant distance
SUM_SQRT = 1  # sum of sqrt(max(lambda, 0)): trace of the square root (Wasserstein)
SUM_LOGDET = 2  # sum of log((1 + lambda) / (2 sqrt(lambda))): squared log-det distance

# Pairs/matrices are tridiagonalised in blocks of this many, then their
# eigenvalues computed: two small kernels (each quick to compile) called in
# turn from the worker thread, with the block's tridiagonal forms in cache.
_BLOCK = 64


# ---------------------------------------------------------------------------
# Matrix functions through eigh


@njit(cache=True, nogil=True, error_model="numpy")
def _apply_op(w, op, p):
    f = np.empty_like(w)
    for k in range(w.shape[0]):
        x = w[k]
        if op == OP_SQRT:
            f[k] = np.sqrt(x)
        elif op == OP_INVSQRT:
            f[k] = 1.0 / np.sqrt(x)
        elif op == OP_LOG:
            f[k] = np.log(x)
        elif op == OP_EXP:
            f[k] = np.exp(x)
        elif op == OP_POW:
            f[k] = x**p
        else:
            f[k] = 1.0 / x
    return f


@njit(cache=True, nogil=True, error_model="numpy")
def _eig_function(A, op, p, Vf, out):
    """``out = V f(w) V^T`` for the symmetric matrix ``A``; ``Vf`` is scratch."""
    w, V = np.linalg.eigh(A)
    f = _apply_op(w, op, p)
    n = A.shape[0]
    for a in range(n):
        for b in range(n):
            Vf[a, b] = V[a, b] * f[b]
    np.dot(Vf, V.T, out)


@njit(cache=True, nogil=True, error_model="numpy")
def matfunc_kernel(X, F, FT, G, GT, op, p, out, start, stop):
    """``out[i] = G f(F X[i] F^T) G^T`` for ``i`` in ``[start, stop)``.

    ``F`` and ``G`` are single matrices and ``FT``, ``GT`` their transposes
    (C-contiguous, so that every product has the same layouts); a 0 x 0
    ``F`` or ``G`` means the identity.
    """
    n = X.shape[1]
    Z = np.empty((n, n))
    W = np.empty((n, n))
    R = np.empty((n, n))
    for i in range(start, stop):
        if F.shape[0] > 0:
            np.dot(F, X[i], Z)
            np.dot(Z, FT, W)
            _eig_function(W, op, p, Z, R)
        else:
            _eig_function(X[i], op, p, Z, R)
        if G.shape[0] > 0:
            np.dot(G, R, Z)
            np.dot(Z, GT, out[i])
        else:
            for a in range(n):
                for b in range(n):
                    out[i, a, b] = R[a, b]


@njit(cache=True, nogil=True, error_model="numpy")
def weighted_matfunc_sum_kernel(X, F, FT, weights, op, p, acc, store, start, stop):
    """``acc += sum_i weights[i] f(F X[i] F^T)`` over ``[start, stop)`` (0 x 0 ``F``: identity).

    If ``store`` is not empty, ``store[i] = f(F X[i] F^T)`` as well (also for zero weights).
    """
    n = X.shape[1]
    Z = np.empty((n, n))
    W = np.empty((n, n))
    R = np.empty((n, n))
    keep = store.shape[0] > 0
    for i in range(start, stop):
        wi = weights[i]
        if wi == 0.0 and not keep:
            continue
        if F.shape[0] > 0:
            np.dot(F, X[i], Z)
            np.dot(Z, FT, W)
            _eig_function(W, op, p, Z, R)
        else:
            _eig_function(X[i], op, p, Z, R)
        for a in range(n):
            for b in range(n):
                acc[a, b] += wi * R[a, b]
        if keep:
            for a in range(n):
                for b in range(n):
                    store[i, a, b] = R[a, b]


@njit(cache=True, nogil=True, error_model="numpy")
def spd_inv_kernel(X, out, start, stop):
    """Inverse of SPD matrices through their Cholesky factor ``L``: ``L^{-T} L^{-1}`` (symmetric)."""
    n = X.shape[1]
    Li = np.empty((n, n))
    for i in range(start, stop):
        L = np.linalg.cholesky(X[i])
        # forward substitution for the lower-triangular L^{-1}, column by column
        for j in range(n):
            for r in range(n):
                Li[r, j] = 0.0
            Li[j, j] = 1.0 / L[j, j]
            for r in range(j + 1, n):
                s = 0.0
                for k in range(j, r):
                    s += L[r, k] * Li[k, j]
                Li[r, j] = -s / L[r, r]
        # out = Li^T Li, accumulated row by row of Li (Li[k] is zero left of k)
        o = out[i]
        for a in range(n):
            for b in range(n):
                o[a, b] = 0.0
        for k in range(n):
            for a in range(k + 1):
                lka = Li[k, a]
                for b in range(k + 1):
                    o[a, b] += lka * Li[k, b]


# ---------------------------------------------------------------------------
# Eigenvalues: Householder tridiagonalisation + interleaved root-free QL


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _tridiagonalize(A, d, e, vp, wp, vn):
    """Reduce the symmetric ``A`` (destroyed) to tridiagonal form ``(d, e)``.

    Householder reflections ``H = I - tau v v^T`` as LAPACK's ``sytd2``, on
    the full (both triangles) trailing block so that every inner loop runs
    along a contiguous row. The rank-2 update of step ``k`` is fused with the
    matrix-vector product of step ``k + 1`` (one pass over the block per
    step instead of two). Row ``k`` doubles as scratch once it is consumed.
    """
    n = A.shape[0]
    if n == 1:
        d[0] = A[0, 0]
        return
    # unit max-norm: the squared norms below cannot overflow or underflow
    amax = 0.0
    for r in range(n):
        for c in range(n):
            amax = max(amax, abs(A[r, c]))
    if amax == 0.0:
        for k in range(n):
            d[k] = 0.0
            e[k] = 0.0
        return
    inv = 1.0 / amax
    for r in range(n):
        for c in range(n):
            A[r, c] *= inv
    pending = False
    for k in range(n - 2):
        m = n - k - 1
        if pending:
            a0 = vp[0]
            b0 = wp[0]
            for j in range(m + 1):
                A[k, k + j] -= a0 * wp[j] + b0 * vp[j]
        alpha = A[k, k + 1]
        sig = 0.0
        for j in range(k + 2, n):
            sig += A[k, j] * A[k, j]
        d[k] = A[k, k]
        tau = 0.0
        if sig == 0.0:
            e[k] = alpha
            for j in range(m):
                vn[j] = 0.0
        else:
            mu = np.sqrt(alpha * alpha + sig)
            beta = -mu if alpha >= 0 else mu
            scal = 1.0 / (alpha - beta)
            tau = (beta - alpha) / beta
            e[k] = beta
            vn[0] = 1.0
            for j in range(1, m):
                vn[j] = A[k, k + 1 + j] * scal
        p = A[k, k + 1 :]
        for j in range(m):
            p[j] = 0.0
        if pending:
            for i in range(m):
                row = k + 1 + i
                a = vp[i + 1]
                b = wp[i + 1]
                t = tau * vn[i]
                for j in range(m):
                    x = A[row, k + 1 + j] - (a * wp[j + 1] + b * vp[j + 1])
                    A[row, k + 1 + j] = x
                    p[j] += x * t
        else:
            for i in range(m):
                row = k + 1 + i
                t = tau * vn[i]
                for j in range(m):
                    p[j] += A[row, k + 1 + j] * t
        K = 0.0
        for j in range(m):
            K += p[j] * vn[j]
        K *= 0.5 * tau
        for j in range(m):
            wp[j] = p[j] - K * vn[j]
            vp[j] = vn[j]
        pending = True
    k = n - 2
    if pending:
        for i in range(2):
            for j in range(2):
                A[k + i, k + j] -= vp[i] * wp[j] + wp[i] * vp[j]
    d[n - 2] = A[n - 2, n - 2]
    d[n - 1] = A[n - 1, n - 1]
    e[n - 2] = A[n - 2, n - 1]
    for k in range(n):
        d[k] *= amax
    for k in range(n - 1):
        e[k] *= amax


# LAPACK's dsterf (root-free Pal-Walker-Kahan QL/QR, eigenvalues of a symmetric
# tridiagonal matrix) from scipy's Cython LAPACK. Registered as a named symbol
# rather than called through a ctypes pointer so that the kernels using it can
# be cached on disk; an external call also costs nothing to compile, where a
# QL solver written here made the kernels take seconds to compile.
_llvm.add_symbol("neuroenc_dsterf", get_cython_function_address("scipy.linalg.cython_lapack", "dsterf"))
_INT_PTR = types.CPointer(types.int32)
_DBL_PTR = types.CPointer(types.float64)
_dsterf = types.ExternalFunction("neuroenc_dsterf", types.void(_INT_PTR, _DBL_PTR, _DBL_PTR, _INT_PTR))


@njit(cache=True, nogil=True, error_model="numpy")
def tridiagonalize_kernel(X, D, E, start, stop):
    """Tridiagonal forms ``(D[k - start], E[k - start])`` of ``X[k]`` (upper triangle read)."""
    n = X.shape[1]
    A = np.empty((n, n))
    vp = np.empty(n)
    wp = np.empty(n)
    vn = np.empty(n)
    for k in range(start, stop):
        for a in range(n):
            for b in range(a, n):
                A[a, b] = X[k, a, b]
                A[b, a] = X[k, a, b]
        _tridiagonalize(A, D[k - start], E[k - start], vp, wp, vn)


@njit(cache=True, nogil=True, error_model="numpy")
def pair_tridiagonalize_kernel(F, FT, Y, fi, yi, D, E, start, stop):
    """Tridiagonal forms of ``F[fi[k]] Y[yi[k]] F[fi[k]]^T`` into ``(D[k - start], E[k - start])``."""
    n = Y.shape[1]
    Z = np.empty((n, n))
    A = np.empty((n, n))
    vp = np.empty(n)
    wp = np.empty(n)
    vn = np.empty(n)
    for k in range(start, stop):
        np.dot(F[fi[k]], Y[yi[k]], Z)
        np.dot(Z, FT[fi[k]], A)
        _tridiagonalize(A, D[k - start], E[k - start], vp, wp, vn)


@njit(cache=True, nogil=True, error_model="numpy")
def tridiagonal_eigvals_kernel(D, E, info):
    """Eigenvalues (ascending) of the tridiagonal problems ``(D[k], E[k, :-1])``, in place in ``D``.

    ``E`` is destroyed; ``info[k]`` is LAPACK's status (non-zero: no convergence).
    """
    n = np.empty(1, np.int32)
    n[0] = D.shape[1]
    for k in range(D.shape[0]):
        _dsterf(n.ctypes, D[k].ctypes, E[k].ctypes, info[k:].ctypes)


@njit(cache=True, nogil=True, error_model="numpy")
def spectral_sum_kernel(D, info, kind, out):
    """``out[k] = sum_j g(D[k, j])`` (NaN where ``info[k] != 0``); ``g`` as in :func:`pair_spectral_sum`."""
    for k in range(D.shape[0]):
        if info[k] != 0:
            out[k] = np.nan
            continue
        total = 0.0
        for j in range(D.shape[1]):
            x = D[k, j]
            if kind == SUM_LOG2:
                lx = np.log(x)
                total += lx * lx
            elif kind == SUM_SQRT:
                total += np.sqrt(max(x, 0.0))
            else:
                # log((1 + x) / 2) - log(x) / 2, without cancellation near x = 1
                total += np.log1p(0.5 * (x - 1.0)) - 0.5 * np.log(x)
        out[k] = total


# ---------------------------------------------------------------------------
# numpy-level wrappers


_NO_MATRIX = np.empty((0, 0))
_NO_BATCH = np.empty((0, 0, 0))


def _c(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X, dtype=np.float64)


def _with_transpose(F: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if F is None:
        return _NO_MATRIX, _NO_MATRIX
    return _c(F), _c(np.swapaxes(F, -1, -2))


def matfunc(
    X: np.ndarray,
    op: int,
    p: float = 1.0,
    F: np.ndarray | None = None,
    G: np.ndarray | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """``G f(F X[i] F^T) G^T`` for a batch ``X`` of shape ``(n, c, c)``.

    ``f`` is selected by ``op`` (one of the ``OP_*`` constants, ``p`` the
    power of ``OP_POW``); ``F``/``G`` default to the identity.
    """
    X = _c(X)
    out = np.empty_like(X)
    Fm, FTm = _with_transpose(F)
    Gm, GTm = _with_transpose(G)
    run_chunks(lambda a, b: matfunc_kernel(X, Fm, FTm, Gm, GTm, op, float(p), out, a, b), len(X), n_jobs)
    return out


def congruence_matfunc(X: np.ndarray, F: np.ndarray, op: int, p: float = 1.0, n_jobs: int | None = None) -> np.ndarray:
    """``f(F X[i] F^T)`` for each matrix of the batch ``X``."""
    return matfunc(X, op, p, F=F, n_jobs=n_jobs)


def weighted_matfunc_sum(
    X: np.ndarray,
    weights: np.ndarray,
    op: int,
    p: float = 1.0,
    F: np.ndarray | None = None,
    n_jobs: int | None = None,
    store: np.ndarray | None = None,
) -> np.ndarray:
    """``sum_i weights[i] f(F X[i] F^T)`` (``F`` defaults to the identity).

    ``store``, a C-contiguous float64 array shaped like ``X``, receives every
    ``f(F X[i] F^T)`` on the way (the tangent vectors of the last Karcher pass).
    """
    X = _c(X)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    Fm, FTm = _with_transpose(F)
    n = X.shape[-1]
    keep = _NO_BATCH if store is None else store
    parts: list[tuple[int, np.ndarray]] = []

    def job(a: int, b: int) -> None:
        acc = np.zeros((n, n))
        weighted_matfunc_sum_kernel(X, Fm, FTm, weights, op, float(p), acc, keep, a, b)
        parts.append((a, acc))  # list.append is atomic under the GIL

    run_chunks(job, len(X), n_jobs)
    parts.sort(key=lambda item: item[0])  # fixed summation order: deterministic result
    total = np.zeros((n, n))
    for _, acc in parts:
        total += acc
    return total


def spd_inv(X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """Inverses of the SPD matrices of the batch ``X`` (exactly symmetric)."""
    X = _c(X)
    out = np.empty_like(X)
    run_chunks(lambda a, b: spd_inv_kernel(X, out, a, b), len(X), n_jobs)
    return out


def eigvalsh(X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """Ascending eigenvalues of the symmetric matrices ``X`` (upper triangle read)."""
    X = _c(X)
    flat = X.reshape((-1,) + X.shape[-2:])
    n = flat.shape[-1]
    out = np.empty(flat.shape[:2])
    info = np.zeros(len(flat), np.int32)

    def job(a: int, b: int) -> None:
        for s0 in range(a, b, _BLOCK):
            s1 = min(s0 + _BLOCK, b)
            E = np.empty((s1 - s0, n))
            tridiagonalize_kernel(flat, out[s0:s1], E, s0, s1)
            tridiagonal_eigvals_kernel(out[s0:s1], E, info[s0:s1])

    run_chunks(job, len(flat), n_jobs, min_chunk=_BLOCK // 4)
    failed = np.flatnonzero(info)
    if failed.size:  # dsterf did not converge (never seen): full LAPACK instead
        out[failed] = np.linalg.eigvalsh(flat[failed], UPLO="U")
    return out.reshape(X.shape[:-1])


def pair_spectral_sum(
    F: np.ndarray,
    Y: np.ndarray,
    fi: np.ndarray,
    yi: np.ndarray,
    kind: int,
    n_jobs: int | None = None,
) -> np.ndarray:
    """``sum_j g(lambda_j(F[fi[k]] Y[yi[k]] F[fi[k]]^T))`` for every pair ``k``; see :data:`SUM_LOG2`."""
    F, FT = _with_transpose(F)
    Y = _c(Y)
    fi = np.ascontiguousarray(fi, dtype=np.int64)
    yi = np.ascontiguousarray(yi, dtype=np.int64)
    out = np.empty(len(fi))
    n = Y.shape[-1]

    def job(a: int, b: int) -> None:
        for s0 in range(a, b, _BLOCK):
            s1 = min(s0 + _BLOCK, b)
            D = np.empty((s1 - s0, n))
            E = np.empty((s1 - s0, n))
            info = np.zeros(s1 - s0, np.int32)
            pair_tridiagonalize_kernel(F, FT, Y, fi, yi, D, E, s0, s1)
            tridiagonal_eigvals_kernel(D, E, info)
            spectral_sum_kernel(D, info, kind, out[s0:s1])

    run_chunks(job, len(fi), n_jobs, min_chunk=_BLOCK // 4)
    failed = np.flatnonzero(np.isnan(out))
    if failed.size:  # QL budget exhausted (or NaN input): LAPACK instead
        f = F[fi[failed]]
        lam = np.linalg.eigvalsh(f @ Y[yi[failed]] @ np.swapaxes(f, -1, -2))
        if kind == SUM_LOG2:
            out[failed] = (np.log(lam) ** 2).sum(axis=-1)
        elif kind == SUM_SQRT:
            out[failed] = np.sqrt(np.maximum(lam, 0.0)).sum(axis=-1)
        else:
            out[failed] = (np.log1p(0.5 * (lam - 1.0)) - 0.5 * np.log(lam)).sum(axis=-1)
    return out
