"""Bootstrap evaluation of RDM models: model scores and noise ceiling per resampled data set.

A bootstrap sample draws condition ``i`` ``c_i`` times and RDM ``s`` ``u_s``
times. The resampled RDM vectors hold the original dissimilarity ``d_ij``
``c_i c_j`` times (pairs between copies of one condition are undefined and
left out), so every statistic the comparison needs is a weighted statistic of
the original vectors with pair weights ``w_ij = c_i c_j``:

* Pearson and cosine: weighted means and inner products;
* average ranks with ties in the resampled vector: walking the vector in
  sorted order, a tie group of total weight ``W`` after ``cum`` entries gets
  the rank ``cum + (W + 1) / 2``;
* Spearman: Pearson of these ranks; rho-a: ``12 sum w r_a r_b / (n^3 - n)``
  with centred ranks and ``n = sum w``.

Only pairs of drawn conditions (``w > 0``) are kept in the per-sample
buffers ("active" pairs, about 40 % of them for a bootstrap over conditions).

Per sample, :func:`_bootstrap_kernel` computes

1. features of every model and sampled RDM: the centred (Pearson, rank
   methods) weighted vectors scaled to unit weighted norm (rho-a:
   ``sqrt(12 / (n^3 - n))``), 0 for a constant vector; a similarity is then
   the weighted dot product of two feature vectors;
2. the mean score of each model over the resampled RDMs (``u``-weighted);
3. the noise ceiling: the pooled RDM of all resampled RDMs and, per drawn
   RDM group, that of the other groups, compared with each RDM of the group
   (lower bound) and the pool of all (upper bound), averaged over groups.
   Pools are sums of per-RDM ranks (rank methods) or features (Pearson,
   cosine: z-scores up to a common factor); their positive scale does not
   change any similarity, so the leave-one-group-out pool is just
   ``total - group`` without the division. For rank methods these sums are
   exact (integer weights times half-integer ranks), so their ties are
   those of rsatoolbox's averaged ranks.

The kernel is serial over a chunk ``[start, stop)`` of samples;
:func:`bootstrap_evaluate` runs chunks on threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neuroenc._kernels.parallel import run_chunks

__all__ = ["METHOD_CODES", "bootstrap_evaluate"]

#: method name -> code understood by the kernel.
METHOD_CODES = {"pearson": 0, "cosine": 1, "spearman": 2, "rho_a": 3}
_PEARSON, _COSINE, _SPEARMAN, _RHO_A = range(4)

_FAST = {"reassoc", "contract"}
_RADIX_BITS = 11
_RADIX = 1 << _RADIX_BITS
_RADIX_MASK = _RADIX - 1


@njit(cache=True, nogil=True)
def _static_ranks(x, order, w, pos, out):
    """Average ranks of ``x`` in the vector where entry ``p`` occurs ``w[p]`` times, at ``out[pos[p]]``.

    ``order`` sorts ``x``; entries with ``pos[p] < 0`` (weight 0) are skipped.
    """
    n = x.shape[0]
    cum = 0.0
    i = 0
    while i < n:
        v = x[order[i]]
        j = i
        weight = 0.0
        while j < n and x[order[j]] == v:
            weight += w[order[j]]
            j += 1
        rank = cum + (weight + 1.0) / 2.0
        for t in range(i, j):
            q = pos[order[t]]
            if q >= 0:
                out[q] = rank
        cum += weight
        i = j


@njit(cache=True, nogil=True)
def _radix_order(keys, n, order, buf, hist):
    """Ascending order of the non-negative integer ``keys[:n]`` (LSD radix sort, stable).

    Returns the array (``order`` or ``buf``) holding the permutation.
    """
    top = 0
    for i in range(n):
        if keys[i] > top:
            top = keys[i]
        order[i] = i
    src, dst = order, buf
    shift = 0
    while True:
        hist[:] = 0
        for i in range(n):
            hist[((keys[src[i]] >> shift) & _RADIX_MASK) + 1] += 1
        for d in range(_RADIX):
            hist[d + 1] += hist[d]
        for i in range(n):
            d = (keys[src[i]] >> shift) & _RADIX_MASK
            dst[hist[d]] = src[i]
            hist[d] += 1
        src, dst = dst, src
        shift += _RADIX_BITS
        if (top >> shift) == 0:
            return src


@njit(cache=True, nogil=True)
def _pool_ranks(y, wa, na, keys, order, buf, hist, out):
    """Average ranks of the active entries ``y[:na]`` (sums of half-integer ranks) with weights ``wa``.

    ``2 y`` is an exact integer, so the entries are sorted by radix on it and
    ties are exact equalities (as those of rsatoolbox's float means).
    """
    for j in range(na):
        keys[j] = np.int64(2.0 * y[j])
    perm = _radix_order(keys, na, order, buf, hist)
    cum = 0.0
    i = 0
    while i < na:
        v = keys[perm[i]]
        j = i
        weight = 0.0
        while j < na and keys[perm[j]] == v:
            weight += wa[perm[j]]
            j += 1
        rank = cum + (weight + 1.0) / 2.0
        for t in range(i, j):
            out[perm[t]] = rank
        cum += weight
        i = j


@njit(cache=True, nogil=True, fastmath=_FAST)
def _features(v, wa, na, n_w, method, out):
    """Weighted features of ``v[:na]`` (values or ranks) into ``out[:na]``: dot products are similarities."""
    lo = v[0]
    hi = v[0]
    for j in range(na):
        if v[j] < lo:
            lo = v[j]
        if v[j] > hi:
            hi = v[j]
    if method == _COSINE:
        mean = 0.0
    elif method == _PEARSON:
        acc = 0.0
        for j in range(na):
            acc += wa[j] * v[j]
        mean = acc / n_w
    else:  # the weighted mean of average ranks is exactly (n + 1) / 2
        mean = (n_w + 1.0) / 2.0
    if method != _COSINE and hi <= lo:  # constant: similarity 0, as rsatoolbox
        for j in range(na):
            out[j] = 0.0
        return
    if method == _RHO_A:
        scale = np.sqrt(12.0 / (n_w * n_w * n_w - n_w))
    else:
        ss = 0.0
        for j in range(na):
            d = v[j] - mean
            ss += wa[j] * d * d
        scale = 1.0 / np.sqrt(ss) if ss > 0 else 0.0
    for j in range(na):
        out[j] = (v[j] - mean) * scale


@njit(cache=True, nogil=True, fastmath=_FAST)
def _wdot(a, b, wa, na):
    acc = 0.0
    for j in range(na):
        acc += wa[j] * a[j] * b[j]
    return acc


@njit(cache=True, nogil=True)
def _bootstrap_kernel(
    method,
    M,
    D,
    m_order,
    d_order,
    rows,
    cols,
    cond_counts,
    rdm_counts,
    valid,
    group_ptr,
    group_members,
    scores,
    ceilings,
    start,
    stop,
):
    """Scores ``(n_models,)`` and ceiling ``(lower, upper)`` of samples ``start .. stop - 1``."""
    n_models, n_pairs = M.shape
    n_rdms = D.shape[0]
    n_groups = group_ptr.shape[0] - 1
    ranked = method == _SPEARMAN or method == _RHO_A
    w = np.empty(n_pairs)
    pos = np.empty(n_pairs, dtype=np.int64)
    wa = np.empty(n_pairs)
    va = np.empty(n_pairs)
    m_feat = np.empty((n_models, n_pairs))
    d_feat = np.empty((n_rdms, n_pairs))
    d_pool = np.empty((n_rdms, n_pairs))  # what is summed into pools: ranks or features
    total = np.empty(n_pairs)
    pool = np.empty(n_pairs)
    pool_r = np.empty(n_pairs)
    pool_feat = np.empty(n_pairs)
    keys = np.empty(n_pairs, dtype=np.int64)
    order = np.empty(n_pairs, dtype=np.int64)
    buf = np.empty(n_pairs, dtype=np.int64)
    hist = np.empty(_RADIX + 1, dtype=np.int64)
    for b in range(start, stop):
        if not valid[b]:
            for k in range(n_models):
                scores[b, k] = np.nan
            ceilings[b, 0] = np.nan
            ceilings[b, 1] = np.nan
            continue
        counts = cond_counts[b]
        u = rdm_counts[b]
        na = 0
        n_w = 0.0
        for p in range(n_pairs):
            wp = float(counts[rows[p]] * counts[cols[p]])
            w[p] = wp
            if wp > 0:
                pos[p] = na
                wa[na] = wp
                na += 1
                n_w += wp
            else:
                pos[p] = -1
        # features of the models and the sampled RDMs
        for k in range(n_models):
            if ranked:
                _static_ranks(M[k], m_order[k], w, pos, va)
            else:
                for p in range(n_pairs):
                    if pos[p] >= 0:
                        va[pos[p]] = M[k, p]
            _features(va, wa, na, n_w, method, m_feat[k])
        u_total = 0.0
        for s in range(n_rdms):
            if u[s] == 0:
                continue
            u_total += u[s]
            if ranked:
                _static_ranks(D[s], d_order[s], w, pos, d_pool[s])
                _features(d_pool[s], wa, na, n_w, method, d_feat[s])
            else:
                for p in range(n_pairs):
                    if pos[p] >= 0:
                        va[pos[p]] = D[s, p]
                _features(va, wa, na, n_w, method, d_feat[s])
                for j in range(na):
                    d_pool[s, j] = d_feat[s, j]
        for k in range(n_models):
            acc = 0.0
            for s in range(n_rdms):
                if u[s] > 0:
                    acc += u[s] * _wdot(m_feat[k], d_feat[s], wa, na)
            scores[b, k] = acc / u_total
        # noise ceiling
        for j in range(na):
            total[j] = 0.0
        for s in range(n_rdms):
            if u[s] > 0:
                for j in range(na):
                    total[j] += u[s] * d_pool[s, j]
        n_drawn = 0
        for g in range(n_groups):
            if u[group_members[group_ptr[g]]] > 0:
                n_drawn += 1
        if ranked:
            _pool_ranks(total, wa, na, keys, order, buf, hist, pool_r)
            _features(pool_r, wa, na, n_w, method, pool_feat)
        else:
            _features(total, wa, na, n_w, method, pool_feat)
        lower = 0.0
        upper = 0.0
        for g in range(n_groups):
            first, last = group_ptr[g], group_ptr[g + 1]
            if u[group_members[first]] == 0:
                continue
            up = 0.0
            for t in range(first, last):
                up += _wdot(pool_feat, d_feat[group_members[t]], wa, na)
            upper += up / (last - first)
            if n_drawn == 1:  # one group: rsatoolbox compares it with its own pool
                lower += up / (last - first)
                continue
            for j in range(na):
                pool[j] = total[j]
            for t in range(first, last):
                s = group_members[t]
                for j in range(na):
                    pool[j] -= u[s] * d_pool[s, j]
            if ranked:
                _pool_ranks(pool, wa, na, keys, order, buf, hist, pool_r)
                _features(pool_r, wa, na, n_w, method, pool)
            else:
                _features(pool, wa, na, n_w, method, pool_r)
                for j in range(na):
                    pool[j] = pool_r[j]
            lo = 0.0
            for t in range(first, last):
                lo += _wdot(pool, d_feat[group_members[t]], wa, na)
            lower += lo / (last - first)
        ceilings[b, 0] = lower / n_drawn
        ceilings[b, 1] = upper / n_drawn


def bootstrap_evaluate(
    method: str,
    models: np.ndarray,
    data: np.ndarray,
    cond_counts: np.ndarray,
    rdm_counts: np.ndarray,
    groups: np.ndarray,
    valid: np.ndarray,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean model scores and noise ceilings of bootstrap samples.

    Parameters
    ----------
    method : {"pearson", "cosine", "spearman", "rho_a"}
        Comparison method.
    models : numpy.ndarray, shape (n_models, n_pairs)
        Model RDM vectors (finite).
    data : numpy.ndarray, shape (n_rdms, n_pairs)
        Data RDM vectors (finite).
    cond_counts : numpy.ndarray of int, shape (n_bootstrap, n_conditions)
        Times each condition is drawn in each sample (all ones: no
        resampling of conditions).
    rdm_counts : numpy.ndarray of int, shape (n_bootstrap, n_rdms)
        Times each RDM is drawn (all RDMs of a group share their count).
    groups : numpy.ndarray of int, shape (n_rdms,)
        Group (subject) of each RDM, ``0 .. n_groups - 1``.
    valid : numpy.ndarray of bool, shape (n_bootstrap,)
        Samples to evaluate; the others are NaN.
    n_jobs : int or None
        Threads (None: all cores).

    Returns
    -------
    scores : numpy.ndarray, shape (n_bootstrap, n_models)
    ceilings : numpy.ndarray, shape (n_bootstrap, 2)
        Lower and upper noise ceiling.
    """
    code = METHOD_CODES[method]
    M = np.ascontiguousarray(models, dtype=np.float64)
    D = np.ascontiguousarray(data, dtype=np.float64)
    n_cond = cond_counts.shape[1]
    rows, cols = (a.astype(np.int64) for a in np.triu_indices(n_cond, k=1))
    ranked = code in (_SPEARMAN, _RHO_A)
    # stable sorts make tie groups contiguous; the order within a group does not matter
    m_order = np.argsort(M, axis=1, kind="stable") if ranked else np.zeros((1, 1), dtype=np.int64)
    d_order = np.argsort(D, axis=1, kind="stable") if ranked else np.zeros((1, 1), dtype=np.int64)
    members = np.argsort(groups, kind="stable").astype(np.int64)
    group_ptr = np.concatenate([[0], np.cumsum(np.bincount(groups))]).astype(np.int64)
    cond_counts = np.ascontiguousarray(cond_counts, dtype=np.int64)
    rdm_counts = np.ascontiguousarray(rdm_counts, dtype=np.int64)
    valid = np.ascontiguousarray(valid, dtype=np.bool_)
    n_boot = cond_counts.shape[0]
    scores = np.empty((n_boot, M.shape[0]))
    ceilings = np.empty((n_boot, 2))

    def kernel(a: int, b: int) -> None:
        _bootstrap_kernel(
            code, M, D, m_order, d_order, rows, cols, cond_counts, rdm_counts, valid,
            group_ptr, members, scores, ceilings, a, b,
        )  # fmt: skip

    run_chunks(kernel, n_boot, n_jobs, min_chunk=8)
    return scores, ceilings
