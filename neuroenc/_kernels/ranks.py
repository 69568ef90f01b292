"""Rank kernels for RDM comparison: tied ranks and Kendall's tau-a / tau-b.

Rows may hold NaN (missing dissimilarities); every kernel ignores them.

Ranking a row (:func:`_row_ranks`)
    Each row is ranked once, without a comparison sort: the defined values
    are counted into as many buckets as values by the monotone map
    ``floor((v - min) * n / (max - min))`` (so every value of a later bucket
    is larger) and scattered bucket by bucket, each entry keeping its place
    (``slot``), from which its rank is gathered at the end. A value's rank is
    then the start of its bucket plus the values of the bucket below it,
    counted by comparing with the 7 places on either side, a fixed stencil
    that vectorises (values outside the bucket are known to be smaller or
    larger, so no bound is needed). Buckets of more than 8 values (clustered
    values), listed while counting, are counted pairwise up to 64 values,
    and larger ones sorted, or skipped when all their values are equal. The
    equal counts are only computed when the smaller counts reveal ties
    (without ties they are a permutation, summing to ``m (m - 1) / 2``).
    Rows of at most 8 distinct values (categorical model RDMs, whose bucket
    counters would all collide) are ranked instead by counting each level in
    branch-free, vectorised loops (:func:`_few_levels`); their rank
    features need not even rank the entries: one value per level, written
    in one pass (:func:`_level_features`). This is ``O(n)`` for
    RDM-like data; it is exact, since only comparisons of the original values
    decide.

:func:`average_ranks`
    ``scipy.stats.rankdata(row[ok], "average")`` per row, NaN kept.
:func:`rank_features`
    Centred ranks, scaled to unit norm (Spearman) or by
    ``sqrt(12 / (n**3 - n))`` (rho-a), 0 at NaN: the dot product of two such
    rows with the same NaN positions is the rank correlation.
:func:`tie_structure`
    Sorted positions (from the ranks, by a counting sort) and tie levels
    (number of smaller values) of each row, and its number of tied pairs.
:func:`kendall_pairs`
    Kendall's tau for a list of (row of A, row of B) pairs, each on the
    positions defined in both rows, in ``O(n)`` per pair plus the count of
    discordant pairs:

    1. the positions, taken in B's sorted order, are distributed by a
       counting sort on A's level, which orders them by (A, B) (when A has
       no ties, A's sorted order is that order already);
    2. along that order each position gets an ordinal ``o``: its B level's
       first slot plus the number of earlier positions on that level, so
       that equal B values are increasing in ``o``. Levels count the smaller
       values, so they are their own first slots when both rows are defined
       at the same positions (no NaN, or a shared bootstrap pattern); other
       pairs histogram their common positions first;
    3. then the discordant pairs ``D`` are the inversions of ``o`` (pairs tied
       in A are sorted by B, pairs tied in B are increasing), counted with
       64-value bit masks: for a position, the earlier ordinals above it are
       those in higher 64-blocks (block counts summed once per chunk of 32
       positions, plus the chunk's own earlier positions) and those in its
       own block (a popcount).

    With ``n0 = m (m - 1) / 2`` pairs of the ``m`` positions, ``n1`` tied in
    A, ``n2`` tied in B and ``n3`` tied in both, ``S = n0 - n1 - n2 + n3 -
    2 D`` (concordant minus discordant) and tau-a = ``S / n0``, tau-b =
    ``S / sqrt((n0 - n1) (n0 - n2))`` (NaN if a row is constant, as
    ``scipy.stats.kendalltau``), both clipped to [-1, 1] like rsatoolbox and
    scipy; NaN for fewer than two common positions.

The serial kernels release the GIL and run over chunks of rows or pairs on
threads (:func:`neuroenc._kernels.parallel.run_chunks`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from neuroenc._kernels.parallel import run_chunks

__all__ = [
    "SCALE_RHO_A",
    "SCALE_UNIT",
    "VARIANT_TAU_A",
    "VARIANT_TAU_B",
    "average_ranks",
    "count_inversions",
    "kendall_pairs",
    "rank_feature_sets",
    "rank_features",
    "tie_structure",
]

VARIANT_TAU_A = 0
VARIANT_TAU_B = 1
#: rank features scaled to unit norm (Spearman).
SCALE_UNIT = 0
#: rank features scaled by sqrt(12 / (n**3 - n)) (rho-a).
SCALE_RHO_A = 1

#: buckets up to this size are resolved by a fixed stencil of comparisons;
#: larger ones are sorted.
_WINDOW = 8
#: buckets per defined value: more buckets would cost more in their running
#: sum than they save in the few buckets that exceed _WINDOW values.
_BUCKETS_PER_VALUE = 1
#: larger buckets than the stencil, up to this size, are counted pairwise; larger ones sorted.
_QUADRATIC = 64
#: rows with at most this many distinct values are ranked by level counts (unrolled by 8 below).
_LEVELS = 8
#: the levels are read from this many first defined entries.
_LEVEL_SAMPLE = 64
#: positions per chunk of the inversion count.
_CHUNK = 32
#: entries ranked per thread at least (about 0.25 ms of work): below that, the
#: hand-off to a second thread costs about what it saves.
_ENTRIES_PER_THREAD = 50_000


@intrinsic
def _popcount(typingctx, x):
    """LLVM's ``ctpop`` on a uint64 (one instruction on x86-64 with POPCNT)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, [args[0]])

    return sig, codegen


@intrinsic
def _int64_as_float64(typingctx, x):
    """The double with the bits of int64 ``x``."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


# ----------------------------------------------------------------------
# ranks
@njit(cache=True, nogil=True, inline="always")
def _nowrap(i):
    """Index ``i`` (not negative) as unsigned: numba then skips its test for negative indices."""
    return np.uint32(i)


@njit(cache=True, nogil=True)
def _rank_workspace(n):
    """Workspaces of :func:`_row_ranks` for rows of length ``n``: ``(ends, vals, slot, less, equal, levels, big)``."""
    ends = np.empty(_BUCKETS_PER_VALUE * n + 1, dtype=np.int32)
    vals = np.empty(n + 2 * _WINDOW)
    slot = np.empty(n, dtype=np.int32)
    less = np.empty(n, dtype=np.int32)
    equal = np.empty(n, dtype=np.int32)
    levels = np.empty(_LEVELS)
    big = np.empty(n // (_WINDOW + 1) + 1, dtype=np.int32)  # (at most this many buckets exceed the stencil)
    return ends, vals, slot, less, equal, levels, big


@njit(cache=True, nogil=True)
def _defined_range(row):
    """``(m, lo, hi)``: number, minimum and maximum of the non-NaN entries.

    The doubles are compared as integer keys that keep their order (the bits
    of a negative double reversed): integer minima and maxima vectorise,
    whereas floating-point ones that skip NaN do not.
    """
    m, key_lo, key_hi = _defined_keys(row)
    magnitude = np.int64(0x7FFFFFFFFFFFFFFF)
    # (the key map is its own inverse)
    lo = _int64_as_float64(key_lo ^ ((key_lo >> 63) & magnitude))
    hi = _int64_as_float64(key_hi ^ ((key_hi >> 63) & magnitude))
    return m, lo, hi


@njit(cache=True, nogil=True)
def _defined_keys(row):
    """Number of the non-NaN entries of ``row``, the least and the largest of their keys.

    (A function of its own: inlined with the inverse key map, the loop does
    not vectorise.)
    """
    bits = row.view(np.int64)
    magnitude = np.int64(0x7FFFFFFFFFFFFFFF)
    key_lo = magnitude  # (above every double's key)
    key_hi = -magnitude - 1
    m = 0
    for i in range(row.shape[0]):
        b = bits[i]
        key = b ^ ((b >> 63) & magnitude)
        v = row[i]
        ok = v == v
        key_lo = min(key_lo, key if ok else magnitude)
        key_hi = max(key_hi, key if ok else -magnitude - 1)
        m += ok
    return m, key_lo, key_hi


@njit(cache=True, nogil=True)
def _row_ranks(row, ends, vals, slot, less, equal, levels, big):
    """Rank the defined entries of ``row``; return how many there are (``m``) and whether ``equal`` is written.

    Defined entry ``i`` of ``row`` has ``less[k]`` defined entries below it
    and ``equal[k]`` equal to it (itself included), ``k = slot[i]``, so its
    average rank is ``less[k] + (equal[k] + 1) / 2``; ``slot`` maps the
    defined entries onto ``0 .. m - 1`` in no particular order and is -1 at
    NaN. ``equal`` is written whenever there are equal entries (otherwise
    it would be all 1). Workspaces from :func:`_rank_workspace`.
    """
    found, m = _few_levels(row, slot, less, equal, levels)
    if found:
        return m, True
    m, lo, hi = _defined_range(row)
    return m, _bucket_ranks(row, m, lo, hi, ends, vals, slot, less, equal, big)


@njit(cache=True, nogil=True)
def _bucket_ranks(row, m, lo, hi, ends, vals, slot, less, equal, big):
    """:func:`_row_ranks` by the bucket sort, for a row of ``m > 0`` defined entries between ``lo`` and ``hi``.

    Returns whether any entries are equal.
    """
    n = row.shape[0]
    n_buckets = _BUCKETS_PER_VALUE * m
    span = hi - lo
    scale = n_buckets / span if span > 0 else 0.0
    if not (scale > 0 and np.isfinite(scale) and np.isfinite(span)):
        n_buckets = 1  # constant row, or extreme spread (infinite values): a single bucket
    top = n_buckets - 1
    ends[: n_buckets + 1] = 0
    # the bucket of each entry (-1 at NaN) is kept in `slot` until the scatter overwrites it
    if n_buckets == 1:
        for i in range(n):
            slot[i] = 0 if row[i] == row[i] else -1  # ((v - lo) * 0 is NaN at an infinite v)
    elif m == n:
        for i in range(n):
            slot[i] = min(np.int32((row[i] - lo) * scale), top)
    else:
        for i in range(n):
            v = row[i]
            slot[i] = min(np.int32((v - lo) * scale), top) if v == v else -1
    # count the entries of each bucket, listing the buckets as they outgrow the stencil
    n_big = 0
    for i in range(n):
        b = _nowrap(slot[i] + 1)
        c = ends[b] + 1
        ends[b] = c
        if c == _WINDOW + 1:
            big[n_big] = b - 1  # (-1: the NaN, counted in ends[0])
            n_big += 1
    ends[0] = 0
    _bucket_starts(ends, n_buckets)
    # scatter the values by bucket (vals is offset by _WINDOW), each entry's
    # place in `slot`: a sequential store, where storing the position at the
    # place would be a random one; afterwards ends[b] is the end of bucket b
    for i in range(n):
        b = _nowrap(slot[i])
        if m == n or slot[i] >= 0:
            k = ends[b]
            ends[b] = k + 1
            slot[i] = k
            vals[_nowrap(_WINDOW + k)] = row[i]
    for k in range(_WINDOW):
        vals[k] = -np.inf
        vals[_WINDOW + m + k] = np.inf
    # Place k: the values before it in other buckets are smaller, those
    # after it larger, so with buckets of at most _WINDOW values
    # #{smaller} = k - #{earlier, not smaller} + #{later, smaller}, all within
    # _WINDOW - 1 places: a fixed stencil, which vectorises.
    shifts = 0
    for k in range(m):
        v = vals[_WINDOW + k]
        shift = 0
        for d in range(1, _WINDOW):
            shift -= vals[_WINDOW + k - d] >= v
            shift += vals[_WINDOW + k + d] < v
        less[k] = k + shift
        shifts += shift
    # Without ties `less` is a permutation of 0 .. m - 1, summing to
    # m (m - 1) / 2 (the shifts to 0); each tie lowers that sum, so the
    # equal counts are only needed then.
    if n_buckets == 1:
        big[0] = 0  # (the stencil's padding could equal an infinite value)
        n_big = 1
    if n_big > 0:
        # the stencil miscounts in these buckets: recount them, and their change to the sum
        shifts += _rank_large_buckets(vals[_WINDOW : _WINDOW + m], ends, big[:n_big], less, equal, False)
    if shifts == 0:
        return False
    for k in range(m):
        v = vals[_WINDOW + k]
        same = 1
        for d in range(1, _WINDOW):
            same += vals[_WINDOW + k - d] == v
            same += vals[_WINDOW + k + d] == v
        equal[k] = same
    if n_big > 0:
        _rank_large_buckets(vals[_WINDOW : _WINDOW + m], ends, big[:n_big], less, equal, True)
    return True


@njit(cache=True, nogil=True)
def _bucket_starts(ends, n_buckets):
    """Turn the counts ``ends[1 : n_buckets + 1]`` into their running sums, the starts of the buckets."""
    acc = 0
    for b in range(1, n_buckets + 1):
        acc += ends[b]
        ends[b] = acc


@njit(cache=True, nogil=True)
def _level_table(row, levels):
    """Whether ``row`` takes at most :data:`_LEVELS` distinct values besides NaN, and how often each.

    Categorical model RDMs take a few values: their ranks then follow from
    the levels and their counts, in branch-free loops (the levels are held
    in registers), instead of a bucket sort whose counters would all
    collide. The levels, written into ``levels`` (NaN after the last one:
    equal to nothing, below nothing), are those of the first
    :data:`_LEVEL_SAMPLE` defined entries; a row with other values is left
    to the bucket sort (continuous rows return after :data:`_LEVELS` + 1
    entries). Returns ``(found, m, counts)``; when found, the number of
    defined entries and the counts of the :data:`_LEVELS` levels (a row
    without defined entries has no level: found).
    """
    n = row.shape[0]
    n_levels = 0
    seen = 0
    for i in range(n):
        v = row[i]
        if v != v:
            continue
        known = False
        for j in range(n_levels):
            if levels[j] == v:
                known = True
                break
        if not known:
            if n_levels == _LEVELS:
                return False, 0, (0, 0, 0, 0, 0, 0, 0, 0)
            levels[n_levels] = v
            n_levels += 1
        seen += 1
        if seen == _LEVEL_SAMPLE:
            break
    levels[n_levels:] = np.nan
    t0, t1, t2, t3, t4, t5, t6, t7 = _unpack_levels(levels)
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = n_nan = 0
    for i in range(n):
        v = row[i]
        n_nan += v != v
        c0 += t0 == v
        c1 += t1 == v
        c2 += t2 == v
        c3 += t3 == v
        c4 += t4 == v
        c5 += t5 == v
        c6 += t6 == v
        c7 += t7 == v
    m = n - n_nan
    # (fewer: values outside the sample's levels)
    return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 == m, m, (c0, c1, c2, c3, c4, c5, c6, c7)


@njit(cache=True, nogil=True, inline="always")
def _unpack_levels(levels):
    return levels[0], levels[1], levels[2], levels[3], levels[4], levels[5], levels[6], levels[7]


@njit(cache=True, nogil=True)
def _few_levels(row, slot, less, equal, levels):
    """Ranks (as :func:`_row_ranks`) of a row of at most :data:`_LEVELS` distinct values.

    Returns ``(found, m)``: False if it has more values, else True and the number of defined entries.
    """
    found, m, counts = _level_table(row, levels)
    if not found:
        return False, m
    t0, t1, t2, t3, t4, t5, t6, t7 = _unpack_levels(levels)
    n = row.shape[0]
    if m == n:  # (a separate loop, which vectorises)
        for i in range(n):
            less[i], equal[i] = _level_counts(row[i], t0, t1, t2, t3, t4, t5, t6, t7, counts)
            slot[i] = i
    else:
        k = 0
        for i in range(n):
            v = row[i]
            if v == v:
                less[k], equal[k] = _level_counts(v, t0, t1, t2, t3, t4, t5, t6, t7, counts)
                slot[i] = k
                k += 1
            else:
                slot[i] = -1
    return True, m


@njit(cache=True, nogil=True)
def _level_features(row, m, scaling, counts, levels, dst):
    """Rank features (see :func:`_row_features`) of a row whose levels and their counts :func:`_level_table` found.

    An entry's feature depends only on its level: one value per level, then
    a single branch-free pass writes the row (0 at NaN, equal to no level).
    """
    t0, t1, t2, t3, t4, t5, t6, t7 = _unpack_levels(levels)
    # centred average rank of each level: less + (equal + 1) / 2 - (m + 1) / 2 (exact in binary)
    feature = np.empty(_LEVELS)
    ss = 0.0
    for j in range(_LEVELS):
        below, same = _level_counts(levels[j], t0, t1, t2, t3, t4, t5, t6, t7, counts)
        centred = below + 0.5 * (same - m)
        feature[j] = centred
        ss += same * (centred * centred)  # (0 for the NaN levels)
    feature *= _feature_factor(scaling, m, ss)
    f0, f1, f2, f3, f4, f5, f6, f7 = _unpack_levels(feature)
    for i in range(row.shape[0]):
        v = row[i]
        f = 0.0
        f = f0 if t0 == v else f
        f = f1 if t1 == v else f
        f = f2 if t2 == v else f
        f = f3 if t3 == v else f
        f = f4 if t4 == v else f
        f = f5 if t5 == v else f
        f = f6 if t6 == v else f
        f = f7 if t7 == v else f
        dst[i] = f


@njit(cache=True, nogil=True, inline="always")
def _feature_factor(scaling, m, ss):
    """Scale of the centred ranks: unit norm from their sum of squares ``ss``, or rho-a's (``m > 1``)."""
    if scaling == SCALE_UNIT:
        # a constant row has ss == 0 exactly: all its centred ranks are 0
        return 1.0 / np.sqrt(ss) if ss > 0 else 0.0
    return np.sqrt(12.0 / (float(m) ** 3 - m))


@njit(cache=True, nogil=True, inline="always")
def _level_counts(v, t0, t1, t2, t3, t4, t5, t6, t7, counts):
    """Entries below ``v`` and equal to it, from the levels ``t`` and their ``counts``."""
    c0, c1, c2, c3, c4, c5, c6, c7 = counts
    below = (t0 < v) * c0 + (t1 < v) * c1 + (t2 < v) * c2 + (t3 < v) * c3
    below += (t4 < v) * c4 + (t5 < v) * c5 + (t6 < v) * c6 + (t7 < v) * c7
    same = (t0 == v) * c0 + (t1 == v) * c1 + (t2 == v) * c2 + (t3 == v) * c3
    same += (t4 == v) * c4 + (t5 == v) * c5 + (t6 == v) * c6 + (t7 == v) * c7
    return below, same


@njit(cache=True, nogil=True)
def _rank_large_buckets(vals, ends, buckets, less, equal, with_equal):
    """Exact counts ``less`` (and ``equal`` if ``with_equal``) for the entries of the given buckets.

    Those larger than the stencil, or the single bucket. Buckets of up to
    :data:`_QUADRATIC` values are counted pairwise; larger ones are sorted
    (their places left as they are), unless all their values are equal.
    ``ends`` holds the ends of the buckets (a bucket -1 is skipped). Returns
    by how much the sum of ``less`` changed.
    """
    change = 0
    for b in buckets:
        if b < 0:
            continue
        start = ends[b - 1] if b > 0 else 0
        stop = ends[b]
        size = stop - start
        if size <= _QUADRATIC:
            for t in range(start, stop):
                v = vals[t]
                below = 0
                for u in range(start, stop):
                    below += vals[u] < v
                change += start + below - less[t]
                less[t] = start + below
                if with_equal:
                    same = 0
                    for u in range(start, stop):
                        same += vals[u] == v
                    equal[t] = same
        elif _all_equal(vals[start:stop]):
            for t in range(start, stop):
                change += start - less[t]
                less[t] = start
                equal[t] = size
        else:
            seg = vals[start:stop]
            perm = np.argsort(seg, kind="mergesort")
            i = 0
            while i < size:
                j = i + 1
                while j < size and seg[perm[j]] == seg[perm[i]]:
                    j += 1
                for t in range(i, j):
                    change += start + i - less[start + perm[t]]
                    less[start + perm[t]] = start + i
                    equal[start + perm[t]] = j - i
                i = j
    return change


@njit(cache=True, nogil=True)
def _all_equal(seg):
    for t in range(1, seg.shape[0]):
        if seg[t] != seg[0]:
            return False
    return True


@njit(cache=True, nogil=True)
def _average_ranks_kernel(X, out, start, stop):
    n = X.shape[1]
    ends, vals, slot, less, equal, levels, big = _rank_workspace(n)
    for r in range(start, stop):
        m, tied = _row_ranks(X[r], ends, vals, slot, less, equal, levels, big)
        for i in range(n):
            k = slot[i]
            if k < 0:
                out[r, i] = np.nan
            elif tied:
                out[r, i] = less[k] + 0.5 * (equal[k] + 1)
            else:
                out[r, i] = less[k] + 1


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"}, inline="always")
def _row_features(row, scaling, dst, ends, vals, slot, less, equal, levels, big):
    """Rank features of ``row`` (see :func:`rank_features`) into ``dst``; returns the defined entries."""
    n = row.shape[0]
    # (as _row_ranks, but a row of few levels skips the ranks of its entries)
    found, m, counts = _level_table(row, levels)
    if not found:
        m, lo, hi = _defined_range(row)
    if scaling == SCALE_RHO_A and m < 2:
        dst[:] = np.nan
        return m
    if found:
        _level_features(row, m, scaling, counts, levels, dst)
        return m
    tied = _bucket_ranks(row, m, lo, hi, ends, vals, slot, less, equal, big)
    ss = 0.0
    if scaling == SCALE_UNIT:
        if tied:
            # centred ranks less + (equal + 1) / 2 - (m + 1) / 2 (exact in binary)
            for k in range(m):
                c = less[k] + 0.5 * (equal[k] - m)
                ss += c * c
        else:
            ss = (float(m) ** 3 - m) / 12.0  # the sum of squares of 0 .. m - 1 centred
    factor = _feature_factor(scaling, m, ss)
    # centred ranks less + (equal + 1) / 2 - (m + 1) / 2, gathered from the
    # places (scattering from them would store at random); without ties
    # only `less` is read
    if not tied:
        centre = 0.5 * (1 - m)
        if m == n:
            for i in range(n):
                dst[i] = (less[_nowrap(slot[i])] + centre) * factor
        else:
            for i in range(n):
                k = slot[i]
                dst[i] = (less[k] + centre) * factor if k >= 0 else 0.0
    elif m == n:
        for i in range(n):
            k = _nowrap(slot[i])
            dst[i] = (less[k] + 0.5 * (equal[k] - m)) * factor
    else:
        for i in range(n):
            k = slot[i]
            dst[i] = (less[k] + 0.5 * (equal[k] - m)) * factor if k >= 0 else 0.0
    return m


@njit(cache=True, nogil=True)
def _rank_features_kernel(X, scaling, out, n_valid, start, stop):
    n = X.shape[1]
    ends, vals, slot, less, equal, levels, big = _rank_workspace(n)
    for r in range(start, stop):
        n_valid[r] = _row_features(X[r], scaling, out[r], ends, vals, slot, less, equal, levels, big)


@njit(cache=True, nogil=True)
def _tie_structure_kernel(X, order, level, n_valid, n_tied, start, stop):
    n = X.shape[1]
    ends, vals, slot, less, equal, levels, big = _rank_workspace(n)
    seen = np.zeros(n, dtype=np.int32)
    for r in range(start, stop):
        m, tied = _row_ranks(X[r], ends, vals, slot, less, equal, levels, big)
        n_valid[r] = m
        lev = level[r]
        for i in range(n):
            k = slot[i]
            lev[i] = less[k] if k >= 0 else -1
        twice_tied = 0
        if tied:
            for k in range(m):
                twice_tied += equal[k] - 1  # a group of e entries contributes e (e - 1)
        n_tied[r] = twice_tied // 2
        # positions by ascending value, ties by position: slot = level + earlier equal entries
        for i in range(n):
            x = lev[i]
            if x >= 0:
                order[r, x + seen[x]] = i
                seen[x] += 1
        for k in range(m):
            seen[less[k]] = 0
        for k in range(m, n):
            order[r, k] = -1


# ----------------------------------------------------------------------
# Kendall
@njit(cache=True, nogil=True)
def _count_inversions(o, m, mask, block_count, greater, chunk_block):
    """Pairs ``i < j`` with ``o[i] > o[j]`` for distinct ``o[:m]`` in ``[0, m)``.

    Workspaces: ``mask``, ``block_count``, ``greater`` of length ``ceil(m / 64)``;
    ``chunk_block`` of length :data:`_CHUNK`.
    """
    n_blocks = (m + 63) >> 6
    for b in range(n_blocks):
        mask[b] = 0
        block_count[b] = 0
    inv = 0
    one = np.uint64(1)
    for cs in range(0, m, _CHUNK):
        ce = min(cs + _CHUNK, m)
        acc = 0
        for b in range(n_blocks - 1, -1, -1):
            greater[b] = acc
            acc += block_count[b]
        for pos in range(cs, ce):
            v = o[pos]
            b = v >> 6
            bit = np.uint64(v & 63)
            # earlier ordinals in higher blocks (earlier chunks), in the same block (any chunk)
            c = greater[b] + np.int64(_popcount((mask[b] >> bit) >> one))
            # earlier positions of this chunk in higher blocks
            bb = np.int32(b)
            s = np.int32(0)
            for k in range(pos - cs):
                s += np.int32(chunk_block[k] > bb)
            inv += c + s
            chunk_block[pos - cs] = bb
            mask[b] |= one << bit
            block_count[b] += 1
    return inv


@njit(cache=True, nogil=True)
def _tied_pairs(hist, n_levels):
    total = 0
    for v in range(n_levels):
        c = hist[v]
        total += c * (c - 1) // 2
    return total


@njit(cache=True, nogil=True)
def _same_defined_positions(level_a, level_b):
    for t in range(level_a.shape[0]):
        if (level_a[t] < 0) != (level_b[t] < 0):
            return False
    return True


@njit(cache=True, nogil=True)
def _ordinals_shared_mask(m, order_a, level_a, tied_a, order_b, level_b, tied_b, seq, o, cursor):
    """Ordinals of a pair of rows defined at the same ``m`` positions; returns the joint ties ``n3``.

    Each row's levels and tie counts then hold for the pair, and a level is
    also the first slot of its group: no histogram is needed. ``cursor``
    (n, zero) is left zero.
    """
    if tied_a == 0:
        for s in range(m):
            seq[s] = order_a[s]  # A's order is the (A, B) order
    else:
        for k in range(m):
            t = order_b[k]
            x = level_a[t]
            seq[x + cursor[x]] = t
            cursor[x] += 1
        for k in range(m):
            cursor[level_a[order_a[k]]] = 0
    if tied_b == 0:
        for s in range(m):
            o[s] = level_b[seq[s]]
        return 0
    n3 = 0
    run = 0
    px = -1
    py = -1
    for s in range(m):
        t = seq[s]
        y = level_b[t]
        o[s] = y + cursor[y]
        cursor[y] += 1
        if tied_a > 0:
            x = level_a[t]
            if x == px and y == py:
                run += 1
            else:
                n3 += run * (run + 1) // 2
                run = 0
                px = x
                py = y
    n3 += run * (run + 1) // 2
    for k in range(m):
        cursor[level_b[order_b[k]]] = 0
    return n3


@njit(cache=True, nogil=True)
def _ordinals_masked(level_a, n_valid_a, order_b, level_b, n_valid_b, seq, o, hx, hy):
    """Ordinals of a pair on the positions defined in both rows; returns ``(m, n1, n2, n3)``.

    ``hx`` and ``hy`` (n + 1, zero) are histograms of the levels over those
    positions, turned into first slots; they are left zero.
    """
    kx = n_valid_a  # levels are below the number of defined entries
    ky = n_valid_b
    m = 0
    for k in range(n_valid_b):
        t = order_b[k]
        x = level_a[t]
        if x >= 0:
            hx[x] += 1
            hy[level_b[t]] += 1
            m += 1
    n1 = _tied_pairs(hx, kx)
    n2 = _tied_pairs(hy, ky)
    acc = 0
    for v in range(kx):
        c = hx[v]
        hx[v] = acc
        acc += c
    acc = 0
    for v in range(ky):
        c = hy[v]
        hy[v] = acc
        acc += c
    # counting sort by A level of the positions in B order: sorted by (A, B)
    for k in range(n_valid_b):
        t = order_b[k]
        x = level_a[t]
        if x >= 0:
            seq[hx[x]] = t
            hx[x] += 1
    n3 = 0
    run = 0
    px = -1
    py = -1
    for s in range(m):
        t = seq[s]
        x = level_a[t]
        y = level_b[t]
        o[s] = hy[y]
        hy[y] += 1
        if x == px and y == py:
            run += 1
        else:
            n3 += run * (run + 1) // 2
            run = 0
            px = x
            py = y
    n3 += run * (run + 1) // 2
    for v in range(kx):
        hx[v] = 0
    for v in range(ky):
        hy[v] = 0
    return m, n1, n2, n3


@njit(cache=True, nogil=True)
def _kendall_kernel(
    order_a, level_a, n_valid_a, tied_a, order_b, level_b, n_valid_b, tied_b, rows_a, rows_b, variant, out, start, stop
):
    n = level_a.shape[1]
    hx = np.zeros(n + 1, dtype=np.int64)
    hy = np.zeros(n + 1, dtype=np.int64)
    cursor = np.zeros(n, dtype=np.int32)
    seq = np.empty(n, dtype=np.int32)
    o = np.empty(n, dtype=np.int64)
    n_blocks = (n + 63) >> 6
    mask = np.zeros(n_blocks, dtype=np.uint64)
    block_count = np.zeros(n_blocks, dtype=np.int64)
    greater = np.zeros(n_blocks, dtype=np.int64)
    chunk_block = np.zeros(_CHUNK, dtype=np.int32)
    for q in range(start, stop):
        ra = rows_a[q]
        rb = rows_b[q]
        nv = n_valid_a[ra]
        if nv == n_valid_b[rb] and (nv == n or _same_defined_positions(level_a[ra], level_b[rb])):
            m = nv
            n1 = tied_a[ra]
            n2 = tied_b[rb]
            # tau is symmetric: order by the row with fewer ties (no counting sort if it has none)
            if n1 <= n2:
                n3 = _ordinals_shared_mask(
                    m, order_a[ra], level_a[ra], n1, order_b[rb], level_b[rb], n2, seq, o, cursor
                )
            else:
                n3 = _ordinals_shared_mask(
                    m, order_b[rb], level_b[rb], n2, order_a[ra], level_a[ra], n1, seq, o, cursor
                )
        else:
            m, n1, n2, n3 = _ordinals_masked(
                level_a[ra], n_valid_a[ra], order_b[rb], level_b[rb], n_valid_b[rb], seq, o, hx, hy
            )
        if m < 2:
            out[q] = np.nan
            continue
        dis = _count_inversions(o, m, mask, block_count, greater, chunk_block)
        n0 = m * (m - 1) // 2
        s_cd = float(n0 - n1 - n2 + n3 - 2 * dis)
        if variant == VARIANT_TAU_A:
            tau = s_cd / n0
        elif n1 == n0 or n2 == n0:
            out[q] = np.nan
            continue
        else:
            tau = s_cd / np.sqrt(float(n0 - n1)) / np.sqrt(float(n0 - n2))
        out[q] = min(1.0, max(-1.0, tau))


@njit(cache=True, nogil=True)
def _inversions_kernel(perms, out, start, stop):
    n = perms.shape[1]
    n_blocks = (n + 63) >> 6
    mask = np.zeros(n_blocks, dtype=np.uint64)
    block_count = np.zeros(n_blocks, dtype=np.int64)
    greater = np.zeros(n_blocks, dtype=np.int64)
    chunk_block = np.zeros(_CHUNK, dtype=np.int32)
    for r in range(start, stop):
        out[r] = _count_inversions(perms[r], n, mask, block_count, greater, chunk_block)


# ----------------------------------------------------------------------
# numpy wrappers
def _rows_per_thread(X: np.ndarray) -> int:
    return max(1, _ENTRIES_PER_THREAD // max(1, X.shape[1]))


def _rows(X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows, got shape {X.shape}")
    return X


def average_ranks(X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """Tie-averaged 1-based ranks of each row of ``X`` (2-D), as ``scipy.stats.rankdata``; NaN stays NaN."""
    X = _rows(X)
    out = np.empty_like(X)
    run_chunks(lambda a, b: _average_ranks_kernel(X, out, a, b), X.shape[0], n_jobs, _rows_per_thread(X))
    return out


def rank_features(X: np.ndarray, scaling: int = SCALE_UNIT, n_jobs: int | None = None) -> np.ndarray:
    """Centred average ranks of each row, 0 at NaN, scaled by :data:`SCALE_UNIT` or :data:`SCALE_RHO_A`.

    ``SCALE_UNIT``: unit norm (a constant row is all 0). ``SCALE_RHO_A``:
    times ``sqrt(12 / (n**3 - n))`` with ``n`` the row's defined entries
    (all NaN when ``n < 2``).
    """
    return rank_feature_sets([X], scaling, n_jobs)[0][0]


def rank_feature_sets(
    arrays: Sequence[np.ndarray],
    scaling: int = SCALE_UNIT,
    n_jobs: int | None = None,
    out: Sequence[np.ndarray] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """:func:`rank_features` of several 2-D arrays, their rows shared out over the threads in one batch.

    Returns the features (written into ``out``, C-contiguous float64 arrays
    of the same shapes, when given) and, per array, the number of defined
    entries of each row.
    """
    Xs = [_rows(X) for X in arrays]
    outs = [np.empty_like(X) for X in Xs] if out is None else list(out)
    for X, o in zip(Xs, outs):
        if o.shape != X.shape or o.dtype != np.float64 or not o.flags.c_contiguous:
            raise ValueError(f"out arrays must be C-contiguous float64 of shape {X.shape}")
    counts = [np.empty(X.shape[0], dtype=np.int64) for X in Xs]
    offsets = np.cumsum([0] + [X.shape[0] for X in Xs])
    scaling = int(scaling)

    def kernel(start: int, stop: int) -> None:
        for X, o, c, first in zip(Xs, outs, counts, offsets[:-1]):
            a = max(start - first, 0)
            b = min(stop - first, X.shape[0])
            if b > a:
                _rank_features_kernel(X, scaling, o, c, a, b)

    n_cols = max((X.shape[1] for X in Xs), default=1)
    run_chunks(kernel, int(offsets[-1]), n_jobs, max(1, _ENTRIES_PER_THREAD // max(1, n_cols)))
    return outs, counts


def tie_structure(X: np.ndarray, n_jobs: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sorted positions and tie levels of each row of ``X`` (2-D).

    Returns
    -------
    order : numpy.ndarray of int32, shape (n_rows, n)
        Positions of the defined entries by ascending value (ties by position), then -1.
    level : numpy.ndarray of int32, shape (n_rows, n)
        Number of defined entries smaller than each entry (equal values share
        it; ``rankdata(method="min") - 1``), -1 at NaN.
    n_valid : numpy.ndarray of int64, shape (n_rows,)
        Defined entries per row.
    n_tied : numpy.ndarray of int64, shape (n_rows,)
        Pairs of defined entries with equal values.
    """
    X = _rows(X)
    order = np.empty(X.shape, dtype=np.int32)
    level = np.empty(X.shape, dtype=np.int32)
    n_valid = np.empty(X.shape[0], dtype=np.int64)
    n_tied = np.empty(X.shape[0], dtype=np.int64)

    def kernel(a: int, b: int) -> None:
        _tie_structure_kernel(X, order, level, n_valid, n_tied, a, b)

    run_chunks(kernel, X.shape[0], n_jobs, _rows_per_thread(X))
    return order, level, n_valid, n_tied


def count_inversions(perms: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """Inversions (pairs ``i < j`` with ``o[i] > o[j]``) of each row of ``perms``, a permutation of ``0 .. n - 1``."""
    perms = np.ascontiguousarray(perms, dtype=np.int64)
    out = np.empty(perms.shape[0], dtype=np.int64)
    run_chunks(lambda a, b: _inversions_kernel(perms, out, a, b), perms.shape[0], n_jobs, min_chunk=8)
    return out


def kendall_pairs(
    A: np.ndarray,
    B: np.ndarray,
    rows_a: np.ndarray,
    rows_b: np.ndarray,
    variant: int = VARIANT_TAU_A,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Kendall's tau between rows ``A[rows_a[q]]`` and ``B[rows_b[q]]`` for every ``q``.

    Parameters
    ----------
    A, B : numpy.ndarray, shape (n_rows_a, n), (n_rows_b, n)
        Rows to compare; positions that are NaN in either row of a pair are dropped.
    rows_a, rows_b : numpy.ndarray of int
        The pairs, same length.
    variant : int
        :data:`VARIANT_TAU_A` or :data:`VARIANT_TAU_B`.
    n_jobs : int or None
        Threads.

    Returns
    -------
    numpy.ndarray, shape (n_pairs,)
        Tau of each pair.
    """
    A, B = _rows(A), _rows(B)
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"rows of A and B differ in length ({A.shape[1]} and {B.shape[1]})")
    order_a, level_a, n_valid_a, tied_a = tie_structure(A, n_jobs)
    order_b, level_b, n_valid_b, tied_b = tie_structure(B, n_jobs)
    rows_a = np.ascontiguousarray(rows_a, dtype=np.int64)
    rows_b = np.ascontiguousarray(rows_b, dtype=np.int64)
    out = np.empty(rows_a.shape[0])

    def kernel(a: int, b: int) -> None:
        _kendall_kernel(
            order_a,
            level_a,
            n_valid_a,
            tied_a,
            order_b,
            level_b,
            n_valid_b,
            tied_b,
            rows_a,
            rows_b,
            int(variant),
            out,
            a,
            b,
        )

    # a pair costs about as much as ranking 4 rows
    run_chunks(kernel, rows_a.shape[0], n_jobs, max(1, _rows_per_thread(A) // 4))
    return out
