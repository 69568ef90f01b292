"""Kernels for SPD geometry: matrix functions, spectra of congruences, pair distances.

Every kernel is serial over a slice of its batch and is run by
:func:`neuroenc._kernels.parallel.run_chunks`; the numpy-level wrappers at
the bottom of this module allocate outputs and do the chunking. None of them
validates its input: the public functions of :mod:`neuroenc.riemann` do that
(with :func:`neuroenc.validation.check_spd`) before calling them.

Eigenproblems are tridiagonalised, then groups of tridiagonal problems are
solved in lockstep, every scalar operation a loop over the problems of the
group, which LLVM turns into SIMD:

- *Spectral sums* ``sum_k g(lambda_k)`` of a congruence ``F Y F^T`` (the
  Riemannian, log-det and Wasserstein distances) need eigenvalues only: a
  Householder tridiagonalisation written here (about 1.5x faster than
  LAPACK's ``sytrd`` on 64 x 64: the rank-2 update of each step is fused
  with the matrix-vector product of the next), then the root-free QL of
  Pal, Walker and Kahan (LAPACK's ``sterf``).
- *Matrix functions* ``V f(w) V^T`` need the eigenvectors: LAPACK's
  ``sytrd`` and ``orgtr`` give the tridiagonal form and ``Q^T`` (the kernel
  above would compile for over a second more), the eigenvalues are computed
  as above, then an implicit QL with those eigenvalues as shifts (one sweep
  per eigenvalue, mostly) rotates the rows of ``Q^T`` into the
  eigenvectors; the product is one BLAS call per matrix. The whole costs
  about 0.6x of LAPACK's ``syevd`` alone on 64 x 64 (numpy's ``eigh``, whose
  divide and conquer spends most of its time in small-matrix overheads).
  Ill-conditioned matrices go to ``syevd`` (see :data:`_CONDITION_LIMIT`).

A problem the QL does not solve within its budget (never seen) is
recomputed by numpy in the wrapper.
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
    "matfunc_upper",
    "congruence_matfunc",
    "congruence_upper",
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
# Problems of a matrix-function group: the lockstep loops over the group (in
# both QLs) only run as SIMD from 32 problems on (see _LANES), and a problem's
# rotations are applied to its own 32 KB of eigenvectors (at 64 x 64) at a time.
_EIG_LANES = 32
# Matrices of a larger condition number (ratio of extreme eigenvalues) get
# their matrix functions from LAPACK's syevd, as numpy and pyRiemann. Both
# solvers are backward stable, but a small eigenvalue is only determined to
# eps ||X||, and different roundings move f(lambda_min) by about
# eps cond(X) relative (e.g. 3e-8 for powm(X, -1.5) at cond 1e8): above
# this limit, only the same algorithm agrees with pyRiemann to 1e-8.
_CONDITION_LIMIT = 1e6


# ---------------------------------------------------------------------------
# Inverses


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
    """Bytes of the constant BLAS/LAPACK arguments of the kernels: "NT", n (int32), 1.0, 0.0, "L"."""
    head = b"NT\0\0" + np.int32(n).tobytes() + np.array([1.0, 0.0]).tobytes()
    return np.frombuffer(head + b"L\0\0\0\0\0\0\0", np.uint8).copy()


# LAPACK's tridiagonalisation and the accumulation of its reflectors, from
# scipy's Cython LAPACK as dgemm above: the eigenvector path calls them rather
# than tridiagonalize_kernel, whose compilation (over a second, paid again
# with the reflectors kept) would put the first call of a matrix function
# above three seconds; they take about 75 us on 64 x 64 against 55 us.
_llvm.add_symbol("neuroenc_dsytrd", get_cython_function_address("scipy.linalg.cython_lapack", "dsytrd"))
_llvm.add_symbol("neuroenc_dorgtr", get_cython_function_address("scipy.linalg.cython_lapack", "dorgtr"))
_dsytrd = types.ExternalFunction("neuroenc_dsytrd", types.void(*[types.voidptr] * 10))
_dorgtr = types.ExternalFunction("neuroenc_dorgtr", types.void(*[types.voidptr] * 8))


@njit(cache=True, nogil=True, error_model="numpy")
def householder_kernel(X, F, start, stop, D, E, S, QT, blas_args, lapack_ints, vectors, work, Z):
    """Tridiagonal forms and ``Q^T`` of ``X[k]`` (``F X[k] F^T`` if ``F`` is not empty), ``k`` in ``[start, stop)``.

    Problem ``q = k - start`` is scaled by a power of two to a max-norm in
    ``[1, 2)`` (the scale in ``S[q]``), and its diagonal and off-diagonal go
    to ``D[:, q]`` and ``E[:, q]`` (``E[n - 1, q] = 0``); rows ``q (n + 1)``
    to ``q (n + 1) + n`` of ``QT`` receive ``Q^T`` with ``Q^T X Q``
    tridiagonal. LAPACK's ``dsytrd`` and ``dorgtr`` on the lower triangle of
    ``X[k]`` laid out as numpy's ``eigh`` does: the tridiagonal form is the
    one of ``eigh`` (``syevd``), up to the exact scaling. ``lapack_ints`` is
    ``[n, lwork, info]`` (int32) with ``work`` of ``lwork`` doubles,
    ``vectors`` ``(3, n)`` and ``Z`` ``(n, n)`` scratch.
    """
    n = X.shape[1]
    trans = blas_args[0:].ctypes  # "N"
    trans_t = blas_args[1:].ctypes  # "T"
    lower = blas_args[24:].ctypes  # "L"
    dims = blas_args[4:].ctypes
    one = blas_args[8:].ctypes
    zero = blas_args[16:].ctypes
    nn = lapack_ints[0:].ctypes
    lwork = lapack_ints[1:].ctypes
    info = lapack_ints[2:].ctypes
    d = vectors[0]
    e = vectors[1]
    tau = vectors[2]
    for k in range(start, stop):
        q = k - start
        B = QT[q * (n + 1) : q * (n + 1) + n]
        if F.shape[0] > 0:  # Z = F X F^T as congruence_kernel (B as scratch)
            _dgemm(trans, trans, dims, dims, dims, one, X[k].ctypes, dims, F.ctypes, dims, zero, B.ctypes, dims)
            _dgemm(trans_t, trans, dims, dims, dims, one, F.ctypes, dims, B.ctypes, dims, zero, Z.ctypes, dims)
        A = Z if F.shape[0] > 0 else X[k]
        amax = 0.0
        for r in range(n):
            for c in range(n):
                amax = max(amax, abs(A[r, c]))
        scale = 2.0 ** np.floor(np.log2(amax)) if amax > 0.0 else 1.0  # exact: no rounding
        inv = 1.0 / scale
        S[q] = scale
        # Fortran reads the transpose of the row-major B: A itself, as numpy hands it to LAPACK
        for r in range(n):
            for c in range(n):
                B[r, c] = A[c, r] * inv
        _dsytrd(lower, nn, B.ctypes, nn, d.ctypes, e.ctypes, tau.ctypes, work.ctypes, lwork, info)
        _dorgtr(lower, nn, B.ctypes, nn, tau.ctypes, work.ctypes, lwork, info)
        # Fortran's Q is this row-major block's Q^T
        for r in range(n):
            D[r, q] = d[r]
            E[r, q] = e[r] if r < n - 1 else 0.0


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
# Eigenvectors: implicit QL with known eigenvalues as shifts


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def ql_vectors_kernel(D, E, lam, QT, cond_limit, failed, iwork, fwork):
    """Eigenvalues and eigenvectors of ``L`` symmetric tridiagonal problems, in place.

    ``D[:, q]`` and ``E[:-1, q]`` are the diagonal and off-diagonal of problem
    ``q`` (shape ``(n, L)``) at unit scale, and rows ``q (n + 1)`` to
    ``q (n + 1) + n`` of ``QT`` hold ``Q^T`` of its tridiagonalisation (see
    :func:`householder_kernel`). On return ``D[:, q]`` holds the eigenvalues
    and those rows of ``QT`` the eigenvectors (as rows, in the same order).
    ``lam[:, q]`` are the eigenvalues (any order, e.g. from
    :func:`tridiagonal_eigvals_kernel`), used as shifts. ``failed[q]`` is 1
    where the QL did not converge, or was not run because
    ``max |lam| > cond_limit min |lam|`` (left to LAPACK, see
    :data:`_CONDITION_LIMIT`). ``iwork`` and ``fwork`` are scratch of shapes
    ``(3, L)`` (int64) and ``(2 n + 4, L)``.

    The implicit QL of ``tql2`` (Wilkinson, EISPACK): each sweep chases a
    bulge from the bottom of the unreduced block ``[top, m]`` at the top to
    ``top``. The shift is the known eigenvalue nearest to the Wilkinson shift,
    which deflates ``top`` in one sweep mostly (1.3 sweeps per eigenvalue
    against 2.1), up to rounding that can need a second; after two sweeps
    without deflation the Wilkinson shift itself is used. Each lockstep
    sweep advances every unconverged problem by one sweep of its own block
    (a problem takes no part in the steps outside its block), and the
    rotations of the sweep are then applied to each problem's rows of
    ``QT``, skipping the steps it took no part in. No allocation and no
    numpy call but ``sqrt``: each costs compilation time.
    """
    n, L = D.shape
    stride = n + 1
    eps = 2.220446049250313e-16
    lo = iwork[0]
    hi = iwork[1]
    tries = iwork[2]  # sweeps since the last deflation
    sv = fwork[0]
    cv = fwork[1]
    pv = fwork[2]
    gv = fwork[3]
    cos = fwork[4 : 4 + n]
    sin = fwork[4 + n : 4 + 2 * n]
    for q in range(L):
        small = np.inf
        large = 0.0
        for k in range(n):
            x = abs(lam[k, q])
            small = x if x < small else small
            large = x if x > large else large
        failed[q] = large > cond_limit * small
        lo[q] = n if failed[q] else 0  # n: not run
        tries[q] = 0
    for it in range(30 * n + 1):
        imax = -1
        imin = n
        for q in range(L):
            # the block [top, m]: top past the deflated top, m at the first negligible e below
            top = lo[q]
            while top < n - 1 and abs(E[top, q]) <= eps * (abs(D[top, q]) + abs(D[top + 1, q])):
                E[top, q] = 0.0
                top += 1
                tries[q] = 0
            lo[q] = top
            hi[q] = -1
            if top >= n - 1:
                continue
            m = top + 1
            while m < n - 1 and abs(E[m, q]) > eps * (abs(D[m, q]) + abs(D[m + 1, q])):
                m += 1
            # Wilkinson shift of the top 2 x 2, then the known eigenvalue nearest to it
            el = E[top, q]
            g = (D[top + 1, q] - D[top, q]) / (2.0 * el)
            r = np.sqrt(g * g + 1.0) if abs(g) < 1e150 else abs(g)
            shift = D[top, q] - el / (g + (r if g >= 0 else -r))
            if tries[q] < 2:
                gap = np.inf
                best = shift
                for k in range(n):
                    dist = abs(lam[k, q] - shift)
                    if dist < gap:
                        gap = dist
                        best = lam[k, q]
                shift = best
            sv[q] = 1.0  # the state at the start of the sweep (the bottom of the block)
            cv[q] = 1.0
            pv[q] = 0.0
            gv[q] = D[m, q] - shift
            imax = max(imax, m - 1)
            imin = min(imin, top)
            tries[q] += 1
            hi[q] = m
        if imax < 0 or it == 30 * n:
            break
        for i in range(imax, imin - 1, -1):
            Ei = E[i]
            Ei1 = E[i + 1]
            Di = D[i]
            Di1 = D[i + 1]
            ci = cos[i]
            si = sin[i]
            # each problem in its block: the loop vectorises with no other branch than the selects
            for q in range(L):
                active = i < hi[q] and i >= lo[q]
                s = sv[q]
                c = cv[q]
                pp = pv[q]
                g = gv[q]
                f = s * Ei[q]
                b = c * Ei[q]
                r = np.sqrt(f * f + g * g)  # |f|, |g| <= ||T|| ~ 1 at unit scale: no overflow
                ok = r != 0.0
                rinv = 1.0 / (r if ok else 1.0)
                sn = f * rinv if ok else 0.0
                cn = g * rinv if ok else 1.0
                gg = Di1[q] - pp
                r2 = (Di[q] - gg) * sn + 2.0 * cn * b
                pn = sn * r2
                Di1[q] = gg + pn if active else Di1[q]
                Ei1[q] = r if active else Ei1[q]
                sv[q] = sn if active else s
                cv[q] = cn if active else c
                pv[q] = pn if active else pp
                gv[q] = cn * r2 - b if active else g
                ci[q] = cn
                si[q] = sn
        for q in range(L):
            m = hi[q]
            if m < 0:
                continue
            top = lo[q]
            D[top, q] -= pv[q]
            E[top, q] = gv[q]
            E[m, q] = 0.0
            base = q * stride
            for i in range(m - 1, top - 1, -1):
                c = cos[i, q]
                s = sin[i, q]
                z0 = QT[base + i]
                z1 = QT[base + i + 1]
                for k in range(n):
                    a = z0[k]
                    b = z1[k]
                    z1[k] = s * a + c * b
                    z0[k] = c * a - s * b
    for q in range(L):
        failed[q] |= lo[q] < n - 1


# ---------------------------------------------------------------------------
# numpy-level wrappers


_NO_VECTOR = np.empty(0)
_NO_MATRIX = np.empty((0, 0))
_NO_BATCH = np.empty((0, 0, 0))


def _c(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X, dtype=np.float64)


def _spectral_functions(
    X: np.ndarray,
    op: int,
    p: float,
    F: np.ndarray | None,
    G: np.ndarray | None,
    n_jobs: int | None,
    *,
    out: np.ndarray = _NO_BATCH,
    outv: np.ndarray = _NO_MATRIX,
    weights: np.ndarray | None = None,
) -> np.ndarray | None:
    """``f(F X[i] F^T)`` (then ``G . G^T``) of a batch into ``out`` and/or ``outv``; the weighted sum if ``weights``.

    The batch is cut into groups of :data:`_EIG_LANES` matrices whatever the
    number of threads (the lockstep eigenvalue QL makes a problem's last bits
    depend on its group), and the groups dealt to the threads. Per group:
    congruence (BLAS) and tridiagonalisation with ``Q^T`` (LAPACK),
    eigenvalues, then the QL with eigenvectors and ``V f(w) V^T`` (BLAS) into
    the outputs.
    """
    X = _c(X)
    N = len(X)
    n = X.shape[-1]
    if N == 0:
        return np.zeros((n, n)) if weights is not None else None
    Fm = _NO_MATRIX if F is None else _c(F)
    w = _NO_VECTOR if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    lanes = _EIG_LANES
    n_groups = -(-N // lanes)
    # exp: an error eps max|lambda| on each eigenvalue is relative eps on exp(lambda)
    cond_limit = np.inf if op == OP_EXP else _CONDITION_LIMIT
    blas_args = _blas_args(n)
    lwork = 64 * max(n, 1)  # ample: sytrd blocks as in numpy's syevd (same tridiagonal form)
    failed_all = np.zeros(N, dtype=bool)
    parts: list[tuple[int, np.ndarray]] = []

    upper = _upper_indices(n) if outv.shape[0] else None

    def job(g0: int, g1: int) -> None:
        D = np.empty((1, n, lanes))
        E = np.empty((1, n, lanes))
        lam = np.empty((1, n, lanes))
        E2 = np.empty((1, n, lanes))
        S = np.empty(lanes)
        info = np.zeros(1, np.int32)
        QT = np.empty((lanes * (n + 1), n))
        VT = QT.reshape(lanes, n + 1, n)[:, :n]  # eigenvectors as rows, one n x n block per problem
        failed = np.zeros(lanes, np.uint8)
        iwork = np.empty((3, lanes), np.int64)
        fwork = np.empty((2 * n + 4, lanes))
        Y = np.empty((lanes, n, n))
        R = np.empty((lanes, n, n))
        lapack_ints = np.array([n, lwork, 0], np.int32)
        lapack_work = np.empty(lwork)
        vectors = np.empty((3, n))
        acc = np.zeros((n, n)) if weights is not None else None
        for g in range(g0, g1):
            s0 = g * lanes
            s1 = min(s0 + lanes, N)
            m = s1 - s0
            D[:] = 0.0  # lanes past the batch stay empty
            E[:] = 0.0
            householder_kernel(X, Fm, s0, s1, D[0], E[0], S, QT, blas_args, lapack_ints, vectors, lapack_work, R[0])
            lam[:] = D
            np.multiply(E, E, out=E2)
            tridiagonal_eigvals_kernel(lam, E2, info)  # the shifts; a failure here only slows the QL
            ql_vectors_kernel(D[0], E[0], lam[0], QT, cond_limit, failed, iwork, fwork)
            bad = failed[:m] != 0
            if bad.any():
                _lapack_eigenvectors(D[0], E[0], VT, bad, iwork[0, :m] == n)
            failed_all[s0:s1] = bad
            # V f(w) V^T by BLAS (numpy releases the GIL)
            with np.errstate(all="ignore"):
                values = _scalar_function(D[0, :, :m] * S[:m], op, p)
            np.multiply(VT[:m], values.T[:, :, None], out=Y[:m])
            Rg = out[s0:s1] if out.shape[0] else R[:m]
            np.matmul(VT[:m].transpose(0, 2, 1), Y[:m], out=Rg)
            if bad.any():  # recomputed by the fallback; no garbage into the sums meanwhile
                Rg[bad] = 0.0
            if upper is not None:
                np.take(Rg.reshape(m, -1), upper[0], axis=1, out=outv[s0:s1])
                outv[s0:s1] *= upper[1]
            if acc is not None:
                acc += np.tensordot(w[s0:s1], Rg, axes=1)
        parts.append((g0, acc))

    run_chunks(job, n_groups, n_jobs)
    parts.sort(key=lambda item: item[0])  # fixed summation order: deterministic result
    total = None
    if weights is not None:
        total = np.zeros((n, n))
        for _, acc in parts:
            total += acc
    bad = np.flatnonzero(failed_all)
    if bad.size:  # the QL or stedc did not converge (never seen): numpy
        Wb = X[bad] if F is None else Fm @ X[bad] @ Fm.T
        ev, V = np.linalg.eigh(Wb)
        R = (V * _scalar_function(ev, op, p)[:, None, :]) @ np.swapaxes(V, -1, -2)
        if out.shape[0]:
            out[bad] = R
        if outv.shape[0]:
            outv[bad] = _upper_weighted(R)
        if total is not None:
            total += np.tensordot(w[bad], R, axes=1)
    if G is not None:
        out[:] = G @ out @ G.T
    return total


def _lapack_eigenvectors(D: np.ndarray, E: np.ndarray, VT: np.ndarray, bad: np.ndarray, not_run: np.ndarray) -> None:
    """Eigenproblems of a group the QL left to LAPACK (``not_run``: over the condition limit), in place.

    The divide and conquer ``stedc`` of numpy's ``eigh``, on the same
    tridiagonal form: the eigenvalues are numpy's (exactly scaled), which is
    what matters on ill-conditioned matrices. Solved problems are cleared
    from ``bad``; the others are left to :func:`numpy.linalg.eigh`.
    """
    from scipy.linalg.lapack import dstevd

    n = D.shape[0]
    for q in np.flatnonzero(bad & not_run):
        w, Z, info = dstevd(D[:, q], E[: max(n - 1, 1), q], compute_v=1)
        if info == 0:
            D[:, q] = w
            VT[q] = Z.T @ VT[q]
            bad[q] = False


def _scalar_function(w: np.ndarray, op: int, p: float) -> np.ndarray:
    """``f(w)`` selected by ``op`` (see :data:`OP_SQRT`), for the LAPACK fallback."""
    funcs = {OP_SQRT: np.sqrt, OP_INVSQRT: lambda x: 1.0 / np.sqrt(x), OP_LOG: np.log, OP_EXP: np.exp}
    if op == OP_POW:
        return w**p
    return funcs.get(op, lambda x: 1.0 / x)(w)


def _upper_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the upper triangle of ``n x n`` matrices (row by row) and their weights (1, ``sqrt(2)``)."""
    rows, cols = np.triu_indices(n)
    return rows * n + cols, np.where(rows == cols, 1.0, np.sqrt(2.0))


def _upper_weighted(R: np.ndarray) -> np.ndarray:
    idx, weights = _upper_indices(R.shape[-1])
    return R.reshape(R.shape[:-2] + (-1,))[..., idx] * weights


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
    out = np.empty(X.shape)
    _spectral_functions(X, op, float(p), F, G, n_jobs, out=out)
    return out


def matfunc_upper(
    X: np.ndarray, op: int, p: float = 1.0, F: np.ndarray | None = None, n_jobs: int | None = None
) -> np.ndarray:
    """Upper triangles (row by row, off-diagonal entries times ``sqrt(2)``) of ``f(F X[i] F^T)``.

    Dot products of these rows are the Frobenius products of the matrices
    (tangent vectors, log-Euclidean features).
    """
    c = X.shape[-1]
    outv = np.empty((len(X), c * (c + 1) // 2))
    _spectral_functions(X, op, float(p), F, None, n_jobs, outv=outv)
    return outv


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
    keep = _NO_BATCH if store is None else store
    return _spectral_functions(X, op, float(p), F, None, n_jobs, out=keep, weights=weights)


def congruence_upper(Y: np.ndarray, F: np.ndarray, shift: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """Upper triangles (``sqrt(2)``-weighted, as :func:`matfunc_upper`) of ``F Y[i] F^T - shift``, symmetrised.

    ``shift`` is a symmetric ``(n, n)`` matrix: ``F (Y[i] - S) F^T`` is this
    with ``shift = F S F^T``. BLAS products by numpy (which releases the GIL)
    on chunks of the batch, one per thread.
    """
    N, n, _ = Y.shape
    idx, weights = _upper_indices(n)
    outv = np.empty((N, len(idx)))
    FT = np.ascontiguousarray(F.T)

    def job(a: int, b: int) -> None:
        for s0 in range(a, b, 64):
            s1 = min(s0 + 64, b)
            W = F @ Y[s0:s1] @ FT
            W += np.swapaxes(W, -1, -2)
            W *= 0.5
            W -= shift
            np.take(W.reshape(s1 - s0, -1), idx, axis=1, out=outv[s0:s1])
            outv[s0:s1] *= weights

    run_chunks(job, N, n_jobs)
    return outv


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
        def tridiagonalize(D: np.ndarray, E2: np.ndarray, S: np.ndarray) -> None:
            tridiagonalize_kernel(flat, D, E2, S, s0, s1, 0)

        lam, bad = _block_eigenvalues(tridiagonalize, s1 - s0, n)
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
