"""Covariance kernels: centred, optionally delay-embedded, sample covariances and their shrinkage.

Three serial kernels (``scm``/``cov``/``corr``; ``lwf``/``oas``/``shrunk``;
``sch``), so that a first call compiles only what it uses. For each trial
they

1. read every row once (sum, sum of squares, constancy);
2. form the Gram matrix of the rows with a 4 x 4 register-blocked numba
   kernel that computes only the lower triangle (half the work of
   ``X @ X.T``, and about twice as fast as OpenBLAS ``dsyrk`` at these
   sizes). When no row has a mean larger than 10 standard deviations, the
   raw rows are used and the means removed afterwards (``C = G / n - m m^T``,
   which then loses at most about two digits to cancellation); otherwise the
   rows are first centred into a thread-local buffer;
3. derive the estimator from that covariance: Ledoit-Wolf needs
   ``sum((Y**2) @ (Y**2).T)``, which equals ``sum_t (sum_i y_it**2)**2``
   (one O(n_channels * n_times) pass over the centred rows ``Y`` while they
   are in cache, not a second product), OAS only the covariance,
   Schaefer-Strimmer the same sum weighted by the inverse variances;
4. for ``scm``/``cov``/``corr``, optionally check that the covariance is
   numerically positive definite with a Cholesky factorisation whose
   relative pivots ``L_kk**2 / C_kk`` (one minus the R^2 of row k on the rows
   before it) must stay above ``rtol``; since that ratio is at least
   ``1 / cond(C)``, a well-conditioned matrix is never flagged.

Rows of a delay-embedded trial are windows of the trial: row
``q * n_channels + i`` is channel ``i`` from sample ``q * lag`` on, so the
embedded trial is never materialised.

Compile time: the helpers are inlined at numba-IR level (``inline="always"``)
except the Gram kernel, whose copy would cost more than its separate
compilation; about 2 s per kernel with a fresh cache. The kernels use
``fastmath={"reassoc", "contract"}`` so that LLVM vectorises the reductions
(NaN/Inf semantics are kept).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neuroenc._kernels.blocks import add_dots_4x4
from neuroenc._kernels.parallel import run_chunks

__all__ = [
    "ESTIMATOR_CODES",
    "STATUS_CONSTANT",
    "STATUS_OK",
    "STATUS_SINGULAR",
    "covariance_batch",
    "embedded_length",
]

#: estimator name -> code understood by the kernel.
ESTIMATOR_CODES = {"scm": 0, "cov": 1, "corr": 2, "lwf": 3, "oas": 4, "sch": 5, "shrunk": 6}
_SCM, _COV, _CORR, _LWF, _OAS, _SCH, _SHRUNK = range(7)

STATUS_OK = 0
#: a row of the (embedded) trial is constant; ``where`` holds the row.
STATUS_CONSTANT = 1
#: the covariance is not numerically positive definite; ``where`` holds the
#: first row that is (numerically) a linear combination of the rows before it.
STATUS_SINGULAR = 2

#: rows whose squared mean exceeds this multiple of their variance are centred
#: before the product instead of after it (bounds the cancellation).
_CENTRE_RATIO = 100.0

_FAST = {"reassoc", "contract"}


def embedded_length(n_times: int, order: int, lag: int) -> int:
    """Samples per row of the delay embedding (MOABB's ``AugmentedDataset``).

    ``order=1`` keeps the trial whole; otherwise copy ``q`` is
    ``x[:, q * lag : n_times - (order - q) * lag]``, i.e.
    ``n_times - order * lag`` samples.
    """
    return n_times if order == 1 else n_times - order * lag


@njit(cache=True, nogil=True, fastmath=_FAST)
def _gram_lower(flat, offsets, n, C, block):
    """``C[a, b] = rows[a] @ rows[b]`` for ``a >= b``, rows ``flat[offsets[a]:offsets[a] + n]``.

    4 x 4 register blocks (16 products per 8 loads), vectorised along the
    rows; the 4 x 4 diagonal blocks are filled whole. Past the last row the
    block repeats it (one code path for any size; the extra results are not
    stored). Rows are taken as 1-D views so that the inner loop indexes from
    0: numba then emits no negative-index wraparound and LLVM vectorises it.
    ``block`` is a 4 x 4 scratch array.
    """
    p = offsets.shape[0]
    last = p - 1
    for a in range(0, p, 4):
        o0 = offsets[a]
        o1 = offsets[min(a + 1, last)]
        o2 = offsets[min(a + 2, last)]
        o3 = offsets[min(a + 3, last)]
        x0 = flat[o0 : o0 + n]
        x1 = flat[o1 : o1 + n]
        x2 = flat[o2 : o2 + n]
        x3 = flat[o3 : o3 + n]
        for b in range(0, a + 1, 4):
            o0 = offsets[b]
            o1 = offsets[min(b + 1, last)]
            o2 = offsets[min(b + 2, last)]
            o3 = offsets[min(b + 3, last)]
            y0 = flat[o0 : o0 + n]
            y1 = flat[o1 : o1 + n]
            y2 = flat[o2 : o2 + n]
            y3 = flat[o3 : o3 + n]
            block[:, :] = 0.0
            add_dots_4x4(x0, x1, x2, x3, y0, y1, y2, y3, n, block)
            for i in range(min(4, p - a)):
                for j in range(min(4, p - b)):
                    C[a + i, b + j] = block[i, j]


@njit(inline="always")
def _row_moments(row):
    """Sum, sum of squares and sum of absolute deviations from the first value."""
    total = 0.0
    squares = 0.0
    dev = 0.0
    first = row[0]
    for k in range(row.shape[0]):
        v = row[k]
        total += v
        squares += v * v
        dev += abs(v - first)
    return total, squares, dev


@njit(inline="always")
def _weighted_fourth_moments(flat, offsets, n, means, weights, acc):
    """``sum_t (sum_i w_i y_it**2)**2`` and ``sum_i w_i**2 sum_t y_it**4`` with ``y = x - mean``."""
    for k in range(n):
        acc[k] = 0.0
    diag = 0.0
    for i in range(offsets.shape[0]):
        row = flat[offsets[i] : offsets[i] + n]
        m = means[i]
        w = weights[i]
        row4 = 0.0
        for k in range(n):
            d = row[k] - m
            v = d * d
            acc[k] += w * v
            row4 += v * v
        diag += w * w * row4
    total = 0.0
    for k in range(n):
        total += acc[k] * acc[k]
    return total, diag


@njit(inline="always")
def _cholesky_pivot_check(C, work, rtol):
    """First row whose Cholesky pivot ``L_kk**2`` is below ``rtol * C_kk`` (-1 if none).

    Row-oriented (inner products of contiguous row prefixes) on the lower
    triangle of ``work``, a copy of ``C``.
    """
    p = C.shape[0]
    for i in range(p):
        for j in range(i + 1):
            work[i, j] = C[i, j]
    for j in range(p):
        s = work[j, j]
        for k in range(j):
            s -= work[j, k] * work[j, k]
        if not s > rtol * C[j, j]:
            return j
        d = np.sqrt(s)
        work[j, j] = d
        for i in range(j + 1, p):
            s = work[i, j]
            for k in range(j):
                s -= work[i, k] * work[j, k]
            work[i, j] = s / d
    return -1


@njit(inline="always")
def _shrink_to_identity(C, shrinkage, mu):
    p = C.shape[0]
    for a in range(p):
        for b in range(p):
            C[a, b] *= 1.0 - shrinkage
        C[a, a] += shrinkage * mu


@njit(inline="always")
def _schaefer_strimmer(C, flat, offsets, n, means, inv_var, acc):
    """Schaefer & Strimmer (2005) shrinkage towards the diagonal, in place (pyRiemann's ``sch``).

    With ``v_i = C_ii`` (biased variances) and ``rho_ij = C_ij / sqrt(v_i v_j)``:
    ``sum_{i!=j} Var(r_ij) = n / (n-1)**3 * (sum_{i!=j} Q_ij / (v_i v_j) - n sum_{i!=j} rho_ij**2)``
    where ``Q = (Y**2) @ (Y**2).T`` for the centred rows ``Y``, whose weighted
    sum is ``sum_t (sum_i y_it**2 / v_i)**2``.
    """
    p = C.shape[0]
    for a in range(p):
        inv_var[a] = 1.0 / C[a, a]
    rho2 = 0.0
    for a in range(p):
        for b in range(p):
            if a != b:
                rho2 += C[a, b] * C[a, b] * inv_var[a] * inv_var[b]
    q_all, q_diag = _weighted_fourth_moments(flat, offsets, n, means, inv_var, acc)
    var_sum = n / (n - 1.0) ** 3 * ((q_all - q_diag) - n * rho2)
    r2_sum = (n / (n - 1.0)) ** 2 * rho2
    gamma = 0.0 if r2_sum == 0 else var_sum / r2_sum
    gamma = min(max(gamma, 0.0), 1.0)
    scale = n / (n - 1.0)
    for a in range(p):
        for b in range(p):
            if a != b:
                C[a, b] *= (1.0 - gamma) * scale
        C[a, a] *= scale


@njit(inline="always")
def _trial_covariance(flat, raw_offsets, buf, buf_offsets, n_out, means, shift, block, C):
    """Sample covariance (1/n, centred) of the rows of one trial into ``C``; first constant row or -1.

    ``means`` receives the row means; ``shift`` and ``block`` are scratch.
    """
    p = raw_offsets.shape[0]
    inv_n = 1.0 / n_out
    constant = -1
    centre_first = False
    for r in range(p):
        total, squares, dev = _row_moments(flat[raw_offsets[r] : raw_offsets[r] + n_out])
        m = total * inv_n
        means[r] = m
        shift[r] = m
        if dev == 0.0 and constant < 0:
            constant = r
        if m * m > _CENTRE_RATIO * (squares * inv_n - m * m):
            centre_first = True
    src, src_offsets = flat, raw_offsets
    if centre_first:
        for r in range(p):
            row = flat[raw_offsets[r] : raw_offsets[r] + n_out]
            dst = buf[buf_offsets[r] : buf_offsets[r] + n_out]
            m = means[r]
            for k in range(n_out):
                dst[k] = row[k] - m
            shift[r] = 0.0  # already removed
        src, src_offsets = buf, buf_offsets
    _gram_lower(src, src_offsets, n_out, C, block)
    for a in range(p):
        for b in range(a + 1):
            C[a, b] = C[a, b] * inv_n - shift[a] * shift[b]
    for a in range(p):
        for b in range(a + 1, p):
            C[a, b] = C[b, a]
    return constant


@njit(inline="always")
def _finish_unshrunk(C, estimator, n_out, scratch):
    """``scm`` (nothing to do), ``cov`` (n / (n - 1)) or ``corr`` (as numpy.corrcoef)."""
    p = C.shape[0]
    if estimator == _COV:
        scale = n_out / (n_out - 1.0)
        for a in range(p):
            for b in range(p):
                C[a, b] *= scale
    elif estimator == _CORR:
        for a in range(p):
            scratch[a] = np.sqrt(C[a, a])
        for a in range(p):
            for b in range(a + 1):  # lower triangle, then mirror: exactly symmetric
                v = C[a, b] / scratch[a] / scratch[b]
                C[a, b] = min(max(v, -1.0), 1.0)
                C[b, a] = C[a, b]


@njit(inline="always")
def _finish_shrunk(C, estimator, shrinkage, flat, raw_offsets, n_out, means, ones, acc):
    """``lwf``, ``oas`` or ``shrunk`` from the sample covariance, in place."""
    p = C.shape[0]
    trace = 0.0
    for a in range(p):
        trace += C[a, a]
    mu = trace / p
    if estimator == _SHRUNK:
        _shrink_to_identity(C, shrinkage, mu)
        return
    if p == 1:  # scikit-learn: one feature, no shrinkage
        return
    sq = 0.0
    for a in range(p):
        for b in range(p):
            sq += C[a, b] * C[a, b]
    if estimator == _LWF:
        # scikit-learn's ledoit_wolf_shrinkage with S = C and n = n_out samples
        beta_sum, _ = _weighted_fourth_moments(flat, raw_offsets, n_out, means, ones, acc)
        beta = (beta_sum / n_out - sq) / (p * n_out)
        delta = (sq - 2.0 * mu * trace + p * mu * mu) / p
        beta = min(beta, delta)
        shrink = 0.0 if beta == 0 else beta / delta
    else:
        # scikit-learn's oas (Chen et al. 2010, eq. 23 without the 2/p factors)
        alpha = sq / (p * p)
        num = alpha + mu * mu
        den = (n_out + 1.0) * (alpha - mu * mu / p)
        shrink = 1.0 if den == 0 else min(num / den, 1.0)
    _shrink_to_identity(C, shrink, mu)


@njit(cache=True, nogil=True, fastmath=_FAST)
def unshrunk_kernel(X, order, lag, n_out, estimator, check_rank, rtol, out, status, where, start, stop):
    """``scm``/``cov``/``corr`` of trials ``start:stop`` of ``X`` (C-contiguous float64) into ``out``.

    ``status[t]``/``where[t]`` receive :data:`STATUS_CONSTANT` or
    :data:`STATUS_SINGULAR` and the row concerned.
    """
    n_channels, n_times = X.shape[1], X.shape[2]
    p = n_channels * order
    raw_offsets = np.empty(p, dtype=np.int64)  # start of embedded row r in the flattened trial
    buf_offsets = np.empty(p, dtype=np.int64)  # and in the centring buffer
    for r in range(p):
        raw_offsets[r] = (r % n_channels) * n_times + (r // n_channels) * lag
        buf_offsets[r] = r * n_out
    buf = np.empty(p * n_out)
    means = np.empty(p)
    shift = np.empty(p)
    block = np.empty((4, 4))
    scratch = np.empty(p)
    work = np.empty((p, p))
    for t in range(start, stop):
        flat = X[t].reshape(n_channels * n_times)
        C = out[t]
        constant = _trial_covariance(flat, raw_offsets, buf, buf_offsets, n_out, means, shift, block, C)
        status[t], where[t] = STATUS_OK, -1
        if constant >= 0:
            status[t], where[t] = STATUS_CONSTANT, constant
            continue
        _finish_unshrunk(C, estimator, n_out, scratch)
        if check_rank:
            bad = _cholesky_pivot_check(C, work, rtol)
            if bad >= 0:
                status[t], where[t] = STATUS_SINGULAR, bad


@njit(cache=True, nogil=True, fastmath=_FAST)
def shrunk_kernel(X, order, lag, n_out, estimator, shrinkage, out, status, where, start, stop):
    """``lwf``/``oas``/``shrunk`` of trials ``start:stop`` of ``X`` into ``out``.

    Constant rows are reported in ``status``/``where`` but the trial is still
    estimated (the identity target keeps it positive definite).
    """
    n_channels, n_times = X.shape[1], X.shape[2]
    p = n_channels * order
    raw_offsets = np.empty(p, dtype=np.int64)  # start of embedded row r in the flattened trial
    buf_offsets = np.empty(p, dtype=np.int64)  # and in the centring buffer
    for r in range(p):
        raw_offsets[r] = (r % n_channels) * n_times + (r // n_channels) * lag
        buf_offsets[r] = r * n_out
    buf = np.empty(p * n_out)
    acc = np.empty(n_out)
    means = np.empty(p)
    shift = np.empty(p)
    block = np.empty((4, 4))
    ones = np.ones(p)
    for t in range(start, stop):
        flat = X[t].reshape(n_channels * n_times)
        C = out[t]
        constant = _trial_covariance(flat, raw_offsets, buf, buf_offsets, n_out, means, shift, block, C)
        status[t], where[t] = STATUS_OK, -1
        if constant >= 0:
            status[t], where[t] = STATUS_CONSTANT, constant
        _finish_shrunk(C, estimator, shrinkage, flat, raw_offsets, n_out, means, ones, acc)


@njit(cache=True, nogil=True, fastmath=_FAST)
def sch_kernel(X, order, lag, n_out, out, status, where, start, stop):
    """Schaefer-Strimmer ``sch`` of trials ``start:stop`` of ``X`` into ``out``.

    Its target is the diagonal, so constant rows are fatal: such trials are
    reported in ``status``/``where`` and left as sample covariances.
    """
    n_channels, n_times = X.shape[1], X.shape[2]
    p = n_channels * order
    raw_offsets = np.empty(p, dtype=np.int64)
    buf_offsets = np.empty(p, dtype=np.int64)
    for r in range(p):
        raw_offsets[r] = (r % n_channels) * n_times + (r // n_channels) * lag
        buf_offsets[r] = r * n_out
    buf = np.empty(p * n_out)
    acc = np.empty(n_out)
    means = np.empty(p)
    shift = np.empty(p)
    block = np.empty((4, 4))
    scratch = np.empty(p)
    for t in range(start, stop):
        flat = X[t].reshape(n_channels * n_times)
        C = out[t]
        constant = _trial_covariance(flat, raw_offsets, buf, buf_offsets, n_out, means, shift, block, C)
        status[t], where[t] = STATUS_OK, -1
        if constant >= 0:
            status[t], where[t] = STATUS_CONSTANT, constant
            continue
        _schaefer_strimmer(C, flat, raw_offsets, n_out, means, scratch, acc)


def covariance_batch(
    X: np.ndarray,
    estimator: str = "scm",
    *,
    order: int = 1,
    lag: int = 1,
    shrinkage: float = 0.1,
    check_rank: bool = True,
    rtol: float = 1e-10,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariance of every trial of a batch (input already validated).

    Parameters
    ----------
    X : numpy.ndarray, shape (n_trials, n_channels, n_times)
        Finite signals (converted to C-ordered float64 if needed), at least
        2 samples per (embedded) row.
    estimator : {"scm", "cov", "corr", "lwf", "oas", "sch", "shrunk"}
        Estimator (see :data:`ESTIMATOR_CODES`).
    order, lag : int
        Delay embedding (see :func:`embedded_length`); ``order=1`` is the
        plain covariance.
    shrinkage : float
        Coefficient of the ``"shrunk"`` estimator.
    check_rank : bool
        Flag covariances that are not numerically positive definite.
    rtol : float
        Relative Cholesky pivot below which a covariance is flagged.
    n_jobs : int or None
        Threads.

    Returns
    -------
    cov : numpy.ndarray, shape (n_trials, p, p)
        Covariances, ``p = n_channels * order``.
    status : numpy.ndarray of int8, shape (n_trials,)
        :data:`STATUS_OK`, :data:`STATUS_CONSTANT` or :data:`STATUS_SINGULAR`.
    where : numpy.ndarray of int64, shape (n_trials,)
        Row of the (embedded) trial the status refers to, -1 if OK.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n_trials, n_channels, n_times = X.shape
    n_out = embedded_length(n_times, order, lag)
    if n_out < 2:
        raise ValueError(f"order={order} and lag={lag} leave {n_out} of {n_times} samples; at least 2 are needed.")
    p = n_channels * order
    code = ESTIMATOR_CODES[estimator]
    out = np.empty((n_trials, p, p))
    status = np.zeros(n_trials, dtype=np.int8)
    where = np.full(n_trials, -1, dtype=np.int64)

    if code <= _CORR:

        def kernel(start: int, stop: int) -> None:
            unshrunk_kernel(X, order, lag, n_out, code, bool(check_rank), float(rtol), out, status, where, start, stop)

    elif code == _SCH:

        def kernel(start: int, stop: int) -> None:
            sch_kernel(X, order, lag, n_out, out, status, where, start, stop)

    else:

        def kernel(start: int, stop: int) -> None:
            shrunk_kernel(X, order, lag, n_out, code, float(shrinkage), out, status, where, start, stop)

    run_chunks(kernel, n_trials, n_jobs, min_chunk=4)
    return out, status, where
