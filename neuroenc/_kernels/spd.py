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
_BLOCK = 128
# Tridiagonal problems solved together by the lockstep QL: a multiple of the
# SIMD width times LLVM's interleave count (8 x 4 doubles with AVX-512), below
# which the vectorised loop falls back to its scalar remainder.
_LANES = 32
# Bytes of whitened matrices formed at a time before their tridiagonalisation
# (a part of the L2 cache).
_CONGRUENCE_BYTES = 1 << 18


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
# Eigenvalues: Householder tridiagonalisation + lockstep root-free QL


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def tridiagonalize_kernel(X, D, E2, S, start, stop, slot0):
    """Tridiagonal forms of the symmetric ``X[k]`` (upper triangle read), ``k`` in ``[start, stop)``.

    Problem ``k`` goes to slot ``s = slot0 + k - start``: lane ``s % L`` of
    group ``s // L`` of ``D`` and ``E2`` (diagonal and squared off-diagonal,
    shape ``(groups, n, L)``), at unit scale, with its scale ``max|X[k]|``
    in ``S[s // L, s % L]``.

    Householder reflections ``H = I - tau v v^T`` as LAPACK's ``sytd2``, on
    the full (both triangles) trailing block so that every inner loop runs
    along a contiguous row. The rank-2 update of step ``j`` is fused with the
    matrix-vector product of step ``j + 1`` (one pass over the block per step
    instead of two), four rows at a time (each load of ``w``, ``v`` and of the
    product serves four rows). The matrix is scaled to unit max-norm first so
    that no square below (nor the QL's) can overflow or underflow. A single
    kernel with no callee: numba recompiles a callee's code into every kernel
    calling it.
    """
    n = X.shape[1]
    L = D.shape[2]
    A = np.empty((n, n))
    d = np.empty(n)
    e = np.empty(n)
    vp = np.empty(n)
    wp = np.empty(n)
    vn = np.empty(n)
    p = np.empty(n)
    for k in range(start, stop):
        amax = 0.0
        for r in range(n):
            for c in range(r, n):
                x = X[k, r, c]
                A[r, c] = x
                A[c, r] = x
                amax = max(amax, abs(x))
        inv = 1.0 / amax if amax > 0.0 else 0.0  # a zero matrix stays zero
        for r in range(n):
            for c in range(n):
                A[r, c] *= inv
        e[n - 1] = 0.0
        for c in range(n):
            vp[c] = 0.0  # no update pending before the first pass
            wp[c] = 0.0
        for j in range(n - 2):
            m = n - j - 1  # order of the trailing block
            c1 = j + 1
            if j > 0:  # the pending update of row j (the rows below get it in the pass)
                a0 = vp[0]
                b0 = wp[0]
                for c in range(m + 1):
                    A[j, j + c] -= a0 * wp[c] + b0 * vp[c]
            d[j] = A[j, j]
            alpha = A[j, c1]
            sig = 0.0
            for c in range(c1 + 1, n):
                sig += A[j, c] * A[j, c]
            tau = 0.0
            scal = 0.0
            e[j] = alpha
            if sig != 0.0:
                mu = np.sqrt(alpha * alpha + sig)
                beta = -mu if alpha >= 0 else mu
                scal = 1.0 / (alpha - beta)
                tau = (beta - alpha) / beta
                e[j] = beta
            vn[0] = 1.0
            for c in range(1, m):
                vn[c] = A[j, c1 + c] * scal
            for c in range(m):
                p[c] = 0.0
            # the previous step's w and v start at column j: views from column j + 1
            w1 = wp[1:]
            v1 = vp[1:]
            i = 0
            while i + 4 <= m:
                r0 = A[c1 + i, c1:]
                r1 = A[c1 + i + 1, c1:]
                r2 = A[c1 + i + 2, c1:]
                r3 = A[c1 + i + 3, c1:]
                a0 = v1[i]
                b0 = w1[i]
                a1 = v1[i + 1]
                b1 = w1[i + 1]
                a2 = v1[i + 2]
                b2 = w1[i + 2]
                a3 = v1[i + 3]
                b3 = w1[i + 3]
                t0 = tau * vn[i]
                t1 = tau * vn[i + 1]
                t2 = tau * vn[i + 2]
                t3 = tau * vn[i + 3]
                for c in range(m):
                    wc = w1[c]
                    vc = v1[c]
                    x0 = r0[c] - (a0 * wc + b0 * vc)
                    x1 = r1[c] - (a1 * wc + b1 * vc)
                    x2 = r2[c] - (a2 * wc + b2 * vc)
                    x3 = r3[c] - (a3 * wc + b3 * vc)
                    r0[c] = x0
                    r1[c] = x1
                    r2[c] = x2
                    r3[c] = x3
                    p[c] += (x0 * t0 + x1 * t1) + (x2 * t2 + x3 * t3)
                i += 4
            while i < m:
                r0 = A[c1 + i, c1:]
                a0 = v1[i]
                b0 = w1[i]
                t0 = tau * vn[i]
                for c in range(m):
                    x0 = r0[c] - (a0 * w1[c] + b0 * v1[c])
                    r0[c] = x0
                    p[c] += x0 * t0
                i += 1
            K = 0.0
            for c in range(m):
                K += p[c] * vn[c]
            K *= 0.5 * tau
            for c in range(m):
                wp[c] = p[c] - K * vn[c]
                vp[c] = vn[c]
        if n >= 2:
            j = n - 2
            for r in range(2):  # the last update, on the last 2 x 2 block
                for c in range(2):
                    A[j + r, j + c] -= vp[r] * wp[c] + wp[r] * vp[c]
            d[j] = A[j, j]
            d[j + 1] = A[j + 1, j + 1]
            e[j] = A[j, j + 1]
        else:
            d[0] = A[0, 0]
        s = slot0 + k - start
        g = s // L
        q = s - g * L
        for r in range(n):
            D[g, r, q] = d[r]
            E2[g, r, q] = e[r] * e[r]
        S[g, q] = amax


# BLAS dgemm from scipy's Cython BLAS (the library numba's np.dot calls),
# registered as a named symbol so that the kernel calling it can be cached on
# disk; an external call also costs next to nothing to compile, where np.dot
# adds a few tenths of a second to every kernel using it.
_llvm.add_symbol("neuroenc_dgemm", get_cython_function_address("scipy.linalg.cython_blas", "dgemm"))
# the 13 arguments of dgemm, all by reference (Fortran)
_dgemm = types.ExternalFunction("neuroenc_dgemm", types.void(*[types.voidptr] * 13))


@njit(cache=True, nogil=True, error_model="numpy")
def congruence_kernel(F, Y, fi, yi, out, Z, blas_args, start, stop):
    """``out[k - start] = F[fi[k]] Y[yi[k]] F[fi[k]]^T`` for ``k`` in ``[start, stop)`` (``Y`` symmetric).

    ``Z`` is ``(n, n)`` scratch; ``blas_args`` is :data:`_BLAS_ARGS` (a typed
    array literal would cost a tenth of a second of compilation).
    """
    trans = blas_args[0:].ctypes  # "N"
    trans_t = blas_args[1:].ctypes  # "T"
    dims = blas_args[4:].ctypes  # n, as int32, set by the caller
    one = blas_args[8:].ctypes  # 1.0 and 0.0 as float64
    zero = blas_args[16:].ctypes
    for k in range(start, stop):
        f = F[fi[k]].ctypes
        # Fortran sees the transposes of these row-major arrays: Z^T = Y^T F^T, then out^T = F Z^T
        _dgemm(trans, trans, dims, dims, dims, one, Y[yi[k]].ctypes, dims, f, dims, zero, Z.ctypes, dims)
        _dgemm(trans_t, trans, dims, dims, dims, one, f, dims, Z.ctypes, dims, zero, out[k - start].ctypes, dims)


def _blas_args(n: int) -> np.ndarray:
    """Bytes of the constant dgemm arguments of :func:`congruence_kernel`: "NT", n (int32), 1.0, 0.0."""
    return np.frombuffer(b"NT\0\0" + np.int32(n).tobytes() + np.array([1.0, 0.0]).tobytes(), np.uint8).copy()


_EPS2 = np.finfo(np.float64).eps ** 2


@njit(cache=True, nogil=True, error_model="numpy")
def tridiagonal_eigvals_kernel(D, E2, info):
    """Eigenvalues of groups of ``L`` symmetric tridiagonal problems, in place in ``D`` (unordered).

    ``D[g, :, q]`` is the diagonal of problem ``q`` of group ``g`` (shape
    ``(groups, n, L)``) and ``E2[g, :-1, q]`` the squares of its
    off-diagonal. ``E2`` is destroyed; ``info[g]`` is non-zero where the group
    did not converge.

    The root-free QL of Pal, Walker and Kahan (LAPACK's ``sterf``) run on the
    ``L`` problems of a group in lockstep: every operation is a loop over the
    lanes, which LLVM turns into SIMD, where LAPACK's loop waits on one
    division after another. All lanes sweep the same window ``[l, n)``: a
    lane whose top off-diagonal is already negligible is swept with its own
    top eigenvalue as shift, which leaves that eigenvalue in place, and a
    negligible off-diagonal inside the window is crossed like an exact split
    (the rotation there is the identity to working precision). Interior
    splits are therefore not exploited: about 30 % more sweeps than one
    problem at a time for 32 lanes, on steps ~8x cheaper.
    """
    G, n, L = D.shape
    st = np.empty((5, L))
    sig = st[0]
    cs = st[1]
    sn = st[2]
    gam = st[3]
    pa = st[4]
    maxit = 30 * n
    for g in range(G):
        d = D[g]
        e = E2[g]
        info[g] = 0
        lo = 0
        jtot = 0
        while lo < n - 1:
            el = e[lo]
            dl = d[lo]
            dl1 = d[lo + 1]
            dlast = d[n - 1]
            # convergence at the top, and the shift: the eigenvalue of the leading
            # 2 x 2 closer to d[lo] (d[lo] itself where converged)
            nconv = 0
            for q in range(L):
                pl = dl[q]
                ev = el[q]
                conv = ev <= _EPS2 * abs(pl * dl1[q])
                nconv += conv
                rte = np.sqrt(ev)
                t = (dl1[q] - pl) / (2.0 * rte)
                r = np.sqrt(t * t + 1.0)
                shift = pl - rte / (t + (r if t >= 0 else -r))
                shift = pl if conv else shift
                sig[q] = shift
                el[q] = 0.0 if conv else ev
                gm = dlast[q] - shift
                gam[q] = gm
                pa[q] = gm * gm
                cs[q] = 1.0
                sn[q] = 0.0
            if nconv == L:
                lo += 1
                continue
            if jtot == maxit:
                info[g] = 1
                break
            jtot += 1
            for i in range(n - 2, lo - 1, -1):
                ei = e[i]
                ei1 = e[i + 1]
                di = d[i]
                di1 = d[i + 1]
                for q in range(L):
                    bb = ei[q]
                    pp = pa[q]
                    r = pp + bb
                    ei1[q] = sn[q] * r  # e[n - 1] (unused) on the first step
                    oldc = cs[q]
                    ok = r != 0.0  # r = 0 only across an exact split: identity rotation
                    rinv = 1.0 / (r if ok else 1.0)
                    c = pp * rinv if ok else 1.0
                    s = bb * rinv
                    oldgam = gam[q]
                    alpha = di[q]
                    gm = c * (alpha - sig[q]) - s * oldgam
                    di1[q] = oldgam + (alpha - gm)
                    nz = c != 0.0
                    pa[q] = (gm * gm if nz else oldc * bb) / (c if nz else 1.0)
                    cs[q] = c
                    sn[q] = s
                    gam[q] = gm
            for q in range(L):
                el[q] = sn[q] * pa[q]
                dl[q] = sig[q] + gam[q]


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


def _block_eigenvalues(tridiagonalize, count: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``(count, n)`` (unordered) of ``count`` problems, and which did not converge.

    ``tridiagonalize(D, E2, S)`` fills the lanes with :func:`tridiagonalize_kernel`; lanes
    past ``count`` stay zero.
    """
    lanes = min(_LANES, count)
    groups = -(-count // lanes)
    D = np.zeros((groups, n, lanes))
    E2 = np.zeros((groups, n, lanes))
    S = np.zeros((groups, 1, lanes))
    info = np.zeros(groups, np.int32)
    tridiagonalize(D, E2, S[:, 0])
    tridiagonal_eigvals_kernel(D, E2, info)
    D *= S  # the forms were at unit scale
    lam = D.transpose(0, 2, 1).reshape(groups * lanes, n)[:count]
    return lam, np.repeat(info != 0, lanes)[:count]


def _run_blocks(block_job, n_items: int, n_jobs: int | None) -> None:
    """``block_job(s0, s1)`` on the blocks ``[s0, s1)`` of ``_BLOCK`` items, split over threads.

    Blocks start at multiples of ``_BLOCK`` whatever the number of threads:
    the lockstep QL makes a problem's last bits depend on the other problems
    of its group, and the groups must not change with ``n_jobs``.
    """

    def job(a: int, b: int) -> None:
        for blk in range(a, b):
            block_job(blk * _BLOCK, min((blk + 1) * _BLOCK, n_items))

    run_chunks(job, -(-n_items // _BLOCK), n_jobs)


def eigvalsh(X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """Ascending eigenvalues of the symmetric matrices ``X`` (upper triangle read)."""
    X = _c(X)
    flat = X.reshape((-1,) + X.shape[-2:])
    n = flat.shape[-1]
    out = np.empty(flat.shape[:2])
    failed = np.zeros(len(flat), dtype=bool)

    def block(s0: int, s1: int) -> None:
        lam, bad = _block_eigenvalues(lambda D, E2, S: tridiagonalize_kernel(flat, D, E2, S, s0, s1, 0), s1 - s0, n)
        out[s0:s1] = np.sort(lam, axis=-1)
        failed[s0:s1] = bad

    _run_blocks(block, len(flat), n_jobs)
    failed = np.flatnonzero(failed)
    if failed.size:  # the QL did not converge (never seen): full LAPACK instead
        out[failed] = np.linalg.eigvalsh(flat[failed], UPLO="U")
    return out.reshape(X.shape[:-1])


def _spectral_sum(lam: np.ndarray, kind: int) -> np.ndarray:
    """``sum_j g(lam[k, j])`` for every row ``k``; ``g`` selected by ``kind`` (see :data:`SUM_LOG2`)."""
    if kind == SUM_LOG2:
        log = np.log(lam)
        return np.einsum("ij,ij->i", log, log)
    if kind == SUM_SQRT:
        return np.sqrt(np.maximum(lam, 0.0)).sum(axis=-1)
    # log((1 + x) / 2) - log(x) / 2, without cancellation near x = 1
    return (np.log1p(0.5 * (lam - 1.0)) - 0.5 * np.log(lam)).sum(axis=-1)


def pair_spectral_sum(
    F: np.ndarray,
    Y: np.ndarray,
    fi: np.ndarray,
    yi: np.ndarray,
    kind: int,
    n_jobs: int | None = None,
) -> np.ndarray:
    """``sum_j g(lambda_j(F[fi[k]] Y[yi[k]] F[fi[k]]^T))`` for every pair ``k``; see :data:`SUM_LOG2`."""
    F = _c(F)
    Y = _c(Y)
    fi = np.ascontiguousarray(fi, dtype=np.int64)
    yi = np.ascontiguousarray(yi, dtype=np.int64)
    out = np.empty(len(fi))
    n = Y.shape[-1]

    # whitened matrices are formed a few at a time, to be tridiagonalised while in cache
    sub = max(1, min(_BLOCK, _CONGRUENCE_BYTES // (8 * n * n)))

    blas_args = _blas_args(n)

    def tridiagonalize(s0: int, s1: int, D: np.ndarray, E2: np.ndarray, S: np.ndarray) -> None:
        W = np.empty((min(sub, s1 - s0), n, n))
        Z = np.empty((n, n))
        for a in range(s0, s1, sub):
            b = min(a + sub, s1)
            congruence_kernel(F, Y, fi, yi, W, Z, blas_args, a, b)
            tridiagonalize_kernel(W, D, E2, S, 0, b - a, a - s0)

    def block(s0: int, s1: int) -> None:
        lam, bad = _block_eigenvalues(lambda D, E2, S: tridiagonalize(s0, s1, D, E2, S), s1 - s0, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            sums = _spectral_sum(lam, kind)
        sums[bad] = np.nan
        out[s0:s1] = sums

    _run_blocks(block, len(fi), n_jobs)
    failed = np.flatnonzero(np.isnan(out))
    if failed.size:  # QL budget exhausted (or NaN input): LAPACK instead
        f = F[fi[failed]]
        lam = np.linalg.eigvalsh(f @ Y[yi[failed]] @ np.swapaxes(f, -1, -2))
        out[failed] = _spectral_sum(lam, kind)
    return out
