"""Rank kernels against plain numpy/scipy references: tied ranks, sort order, inversions, Kendall's tau."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau, rankdata

from neuroenc._kernels.ranks import (
    SCALE_RHO_A,
    SCALE_UNIT,
    VARIANT_TAU_A,
    VARIANT_TAU_B,
    average_ranks,
    count_inversions,
    kendall_pairs,
    rank_feature_sets,
    rank_features,
    tie_structure,
)


def ref_ranks(row):
    out = np.full(row.shape, np.nan)
    ok = ~np.isnan(row)
    out[ok] = rankdata(row[ok])
    return out


def ref_tau(x, y, variant):
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 2:
        return np.nan
    if variant == VARIANT_TAU_B:
        return kendalltau(x, y).statistic
    s = np.sum(np.triu(np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :]), 1))
    return s / (n * (n - 1) / 2)


def awkward_rows(seed=0):
    """Rows that stress the bucket sort: ties, clusters, heavy tails, extreme spread, NaN, constants."""
    rng = np.random.default_rng(seed)
    rows = [
        rng.standard_normal(300),
        rng.integers(0, 5, 300).astype(float),  # few levels
        rng.integers(0, 2, 300).astype(float),  # binary model
        np.exp(5 * rng.standard_normal(300)),  # heavy tail: most values in one bucket
        np.r_[rng.standard_normal(290), np.full(10, 1e9)],  # outliers
        np.r_[rng.standard_normal(290) * 1e-300, np.full(10, 1e300)],  # spread overflows
        np.r_[rng.standard_normal(100), np.full(200, 2.0)],  # one big tie
        np.round(rng.standard_normal(300), 1),  # clustered ties
        np.full(300, 3.5),  # constant
        np.full(300, np.nan),  # empty
        -np.arange(300.0),  # reversed
    ]
    X = np.stack(rows)
    X[0, [3, 50, 299]] = np.nan
    X[2, :40] = np.nan
    X[7, 100:110] = np.nan
    return X


def test_average_ranks_match_scipy_rankdata():
    X = awkward_rows()
    R = average_ranks(X)
    for x, r in zip(X, R):
        np.testing.assert_array_equal(r, ref_ranks(x))


@given(st.lists(st.integers(-3, 3) | st.just(99), min_size=1, max_size=40), st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_average_ranks_property(values, seed):
    x = np.array(values, dtype=float)
    x[x == 99] = np.nan
    x = x * np.random.default_rng(seed).uniform(0.5, 2)
    np.testing.assert_array_equal(average_ranks(x[None])[0], ref_ranks(x))


def test_average_ranks_tiny_rows_and_infinities():
    for x in ([1.0], [np.nan], [2.0, 1.0], [1.0, 1.0], [np.nan, 5.0], [1.0, np.inf], [-np.inf, 0.0, np.inf, np.inf]):
        x = np.array(x)
        np.testing.assert_array_equal(average_ranks(x[None])[0], ref_ranks(x))


def test_rank_features_scaling():
    X = awkward_rows(1)
    unit = rank_features(X, SCALE_UNIT)
    rho = rank_features(X, SCALE_RHO_A)
    for x, u, r in zip(X, unit, rho):
        ok = ~np.isnan(x)
        n = ok.sum()
        assert np.all(u[~ok] == 0) and (n < 2 or np.all(r[~ok] == 0))
        if n == 0:
            assert np.all(np.isnan(r))
            continue
        centred = rankdata(x[ok]) - (n + 1) / 2
        norm = np.linalg.norm(centred)
        expected = centred / norm if norm > 0 else np.zeros(n)
        np.testing.assert_allclose(u[ok], expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(r[ok], centred * np.sqrt(12 / (n**3 - n)), rtol=1e-12)
    assert np.all(unit[8] == 0)  # constant row


def test_tie_structure():
    X = awkward_rows(2)
    order, level, n_valid, n_tied = tie_structure(X)
    for x, o, lev, nv, nt in zip(X, order, level, n_valid, n_tied):
        ok = ~np.isnan(x)
        assert nv == ok.sum()
        expected_order = np.flatnonzero(ok)[np.argsort(x[ok], kind="stable")]
        np.testing.assert_array_equal(o[:nv], expected_order)
        assert np.all(o[nv:] == -1)
        expected_level = np.full(x.shape, -1)
        expected_level[ok] = rankdata(x[ok], method="min") - 1
        np.testing.assert_array_equal(lev, expected_level)
        _, counts = np.unique(x[ok], return_counts=True)
        assert nt == int(np.sum(counts * (counts - 1) // 2))


def test_count_inversions_against_brute_force():
    rng = np.random.default_rng(3)
    perms = [rng.permutation(n) for n in (1, 2, 63, 64, 65, 200, 1000)]
    for p in perms:
        got = count_inversions(p[None])[0]
        assert got == int(np.sum(np.triu(p[:, None] > p[None, :], 1)))
    n = 500
    assert count_inversions(np.arange(n)[None])[0] == 0
    assert count_inversions(np.arange(n)[::-1][None])[0] == n * (n - 1) // 2


@pytest.mark.parametrize("variant", [VARIANT_TAU_A, VARIANT_TAU_B])
def test_kendall_pairs_match_references(variant):
    X = awkward_rows(4)
    rng = np.random.default_rng(5)
    Y = np.stack([X[0] + rng.standard_normal(300), np.round(X[1] + rng.standard_normal(300)), X[3][::-1]])
    A = np.concatenate([X, Y])
    B = np.concatenate([Y, X[[1, 2, 6, 7, 8]]])
    ia, ib = (g.ravel() for g in np.meshgrid(np.arange(len(A)), np.arange(len(B)), indexing="ij"))
    got = kendall_pairs(A, B, ia, ib, variant)
    expected = np.array([ref_tau(A[i], B[j], variant) for i, j in zip(ia, ib)])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    assert np.array_equal(np.isnan(got), np.isnan(expected))


def test_kendall_complete_paths():
    """Rows without NaN take the no-histogram path (tied or untied A and B, either way round)."""
    rng = np.random.default_rng(6)
    cont = rng.standard_normal((3, 500))
    tied = rng.integers(0, 4, (3, 500)).astype(float)
    A = np.concatenate([cont, tied])
    ia, ib = (g.ravel() for g in np.meshgrid(np.arange(6), np.arange(6), indexing="ij"))
    for variant in (VARIANT_TAU_A, VARIANT_TAU_B):
        expected = [ref_tau(A[i], A[j], variant) for i, j in zip(ia, ib)]
        np.testing.assert_allclose(kendall_pairs(A, A, ia, ib, variant), expected, rtol=1e-12, atol=1e-14)


def test_threads_change_nothing():
    """Batches large enough to be split over two threads give the one-thread results."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((120, 5000))
    X[::3] = np.round(X[::3], 1)
    X[5, 10:20] = np.nan
    np.testing.assert_array_equal(average_ranks(X, n_jobs=2), average_ranks(X, n_jobs=1))
    np.testing.assert_array_equal(rank_features(X, SCALE_UNIT, 2), rank_features(X, SCALE_UNIT, 1))
    for one, two in zip(tie_structure(X, 1), tie_structure(X, 2)):
        np.testing.assert_array_equal(one, two)
    ia = np.repeat(np.arange(20), 20)
    ib = np.tile(np.arange(20, 40), 20)
    for variant in (VARIANT_TAU_A, VARIANT_TAU_B):
        np.testing.assert_array_equal(kendall_pairs(X, X, ia, ib, variant, 2), kendall_pairs(X, X, ia, ib, variant, 1))


def test_kendall_edge_cases():
    const = np.full((1, 10), 2.0)
    x = np.arange(10.0)[None]
    assert kendall_pairs(const, x, [0], [0], VARIANT_TAU_A)[0] == 0.0
    assert np.isnan(kendall_pairs(const, x, [0], [0], VARIANT_TAU_B)[0])  # as scipy
    assert kendall_pairs(x, x, [0], [0], VARIANT_TAU_B)[0] == kendalltau(x[0], x[0]).statistic
    assert kendall_pairs(x, -x, [0], [0], VARIANT_TAU_A)[0] == -1.0
    one = np.array([[1.0, np.nan, np.nan]])
    two = np.array([[np.nan, 1.0, 2.0]])
    assert np.isnan(kendall_pairs(one, two, [0], [0])[0])  # no common position
    with pytest.raises(ValueError, match="differ in length"):
        kendall_pairs(np.zeros((1, 3)), np.zeros((1, 4)), [0], [0])


def level_rows(seed=0):
    """Rows for the few-levels path and its fallbacks: categorical levels, NaN, new levels after the sample."""
    rng = np.random.default_rng(seed)
    late_level = rng.integers(0, 3, 400).astype(float)
    late_level[300] = 7.5  # a level the first 64 entries do not show: back to the bucket sort
    nine_levels = rng.integers(0, 9, 400).astype(float)  # one more than the level table
    with_nan = rng.choice([0.0, 2.0, -1.5], 400)
    with_nan[rng.random(400) < 0.2] = np.nan
    rows = [
        rng.integers(0, 2, 400) * 2.0,  # binary model RDM
        rng.integers(0, 8, 400) - 3.5,  # eight levels, negative values
        nine_levels,
        late_level,
        with_nan,
        np.r_[np.full(399, np.nan), 1.0],
        np.r_[[np.inf, -np.inf], rng.integers(0, 3, 398).astype(float)],
        np.full(400, -0.0),
    ]
    return np.stack(rows)


def test_few_level_rows_match_scipy():
    X = level_rows()
    for x, r in zip(X, average_ranks(X)):
        np.testing.assert_array_equal(r, ref_ranks(x))
    order, level, n_valid, _ = tie_structure(X)
    for x, o, lev, nv in zip(X, order, level, n_valid):
        ok = ~np.isnan(x)
        np.testing.assert_array_equal(o[:nv], np.flatnonzero(ok)[np.argsort(x[ok], kind="stable")])
        np.testing.assert_array_equal(lev[ok], rankdata(x[ok], method="min") - 1)


def test_clustered_buckets_and_tie_detection_match_scipy():
    """Buckets just above the stencil (counted pairwise), rare ties among distinct values, tiny rows."""
    rng = np.random.default_rng(5)
    clustered = np.r_[rng.uniform(0, 1, 500), 0.5 + 1e-6 * rng.standard_normal(30)]  # one bucket of ~30
    one_tie = rng.standard_normal(530)
    one_tie[7] = one_tie[400]
    X = np.stack([clustered, one_tie, np.r_[clustered[:-1], clustered[3]]])
    for x, r in zip(X, average_ranks(X)):
        np.testing.assert_array_equal(r, ref_ranks(x))
    for x in (
        [3.0, 1.0, 2.0],
        [1.0, 1.0, 2.0],
        [2.0, 2.0, 2.0],
        [np.nan, 2.0, 1.0],
        [5.0],
        [0.0, 0.0],
        [1e300, -1e300, 0],
    ):
        x = np.array(x, dtype=float)
        np.testing.assert_array_equal(average_ranks(x[None])[0], ref_ranks(x))
        if np.sum(~np.isnan(x)) >= 2:
            centred = rankdata(x[~np.isnan(x)]) - (np.sum(~np.isnan(x)) + 1) / 2
            n = centred.size
            np.testing.assert_allclose(
                rank_features(x[None], SCALE_RHO_A)[0][~np.isnan(x)], centred * np.sqrt(12 / (n**3 - n))
            )


@given(st.lists(st.sampled_from([0.0, 1.0, 2.5, -3.0, np.nan]), min_size=1, max_size=200))
@settings(max_examples=60, deadline=None)
def test_few_levels_property(values):
    x = np.array(values)
    np.testing.assert_array_equal(average_ranks(x[None])[0], ref_ranks(x))


def test_rank_feature_sets_batch_equals_each_set():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((9, 45))
    A[2, [3, 8]] = np.nan
    B = rng.integers(0, 3, (4, 45)).astype(float)
    out = [np.empty_like(A), np.empty_like(B)]
    feats, counts = rank_feature_sets([A, B], SCALE_UNIT, 2, out=out)
    assert feats[0] is out[0] and feats[1] is out[1]
    np.testing.assert_array_equal(feats[0], rank_features(A, SCALE_UNIT, 1))
    np.testing.assert_array_equal(feats[1], rank_features(B, SCALE_UNIT, 1))
    np.testing.assert_array_equal(counts[0], (~np.isnan(A)).sum(axis=1))
    np.testing.assert_array_equal(counts[1], np.full(4, 45))
    with pytest.raises(ValueError, match="out arrays"):
        rank_feature_sets([A], SCALE_UNIT, 1, out=[np.empty((9, 44))])


def assert_ranked_like_scipy(x):
    """Average ranks, tie levels and both feature scalings of one row against scipy."""
    X = x[None]
    np.testing.assert_array_equal(average_ranks(X)[0], ref_ranks(x))
    ok = ~np.isnan(x)
    _, level, n_valid, n_tied = tie_structure(X)
    expected_level = np.full(x.shape, -1)
    expected_level[ok] = rankdata(x[ok], method="min") - 1
    np.testing.assert_array_equal(level[0], expected_level)
    _, counts = np.unique(x[ok], return_counts=True)
    assert n_valid[0] == ok.sum() and n_tied[0] == int(np.sum(counts * (counts - 1) // 2))
    n = ok.sum()
    if n >= 2:
        centred = rankdata(x[ok]) - (n + 1) / 2
        norm = np.linalg.norm(centred)
        unit = rank_features(X, SCALE_UNIT)[0]
        np.testing.assert_allclose(unit[ok], centred / norm if norm > 0 else 0.0, rtol=1e-12, atol=1e-15)
        assert np.all(unit[~ok] == 0)
        np.testing.assert_allclose(rank_features(X, SCALE_RHO_A)[0][ok], centred * np.sqrt(12 / (n**3 - n)))


def test_bucket_sort_with_infinities_and_signed_zeros():
    """Rows of many distinct values (the bucket sort) whose spread is infinite, or with -0.0 == 0.0."""
    rng = np.random.default_rng(11)
    base = rng.standard_normal(200)
    for extra in ([np.inf], [-np.inf], [np.inf, -np.inf, np.inf], [np.inf, np.nan, -np.inf]):
        assert_ranked_like_scipy(np.r_[base, extra])
    zeros = np.r_[base, np.zeros(5), -np.zeros(5)]
    assert_ranked_like_scipy(zeros)
    assert_ranked_like_scipy(np.r_[np.linspace(-1, 1, 50), -0.0, 0.0])


def test_many_buckets_larger_than_the_stencil():
    """Clusters of 9 to 12 close values fill many buckets past the stencil, with and without NaN and ties."""
    rng = np.random.default_rng(12)
    centres = rng.permutation(60).astype(float)
    clusters = np.concatenate([c + 1e-9 * rng.random(rng.integers(9, 13)) for c in centres])
    assert_ranked_like_scipy(clusters)
    tied = clusters.copy()
    pick = np.arange(0, tied.size - 1, 7)
    tied[pick] = tied[pick + 1]  # ties inside the large buckets
    assert_ranked_like_scipy(tied)
    with_nan = np.r_[clusters, np.full(40, np.nan)]  # (the NaN outnumber the stencil too)
    assert_ranked_like_scipy(rng.permutation(with_nan))
    # every bucket of exactly nine values: as many large buckets as there can be
    nines = np.repeat(np.arange(40.0), 9) + 1e-9 * np.tile(np.arange(9), 40)
    assert_ranked_like_scipy(rng.permutation(nines))
    assert_ranked_like_scipy(rng.permutation(np.r_[nines, np.full(9, np.nan)]))


@given(
    st.lists(
        st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0, 1.5, np.nan]),
        min_size=1,
        max_size=80,
    )
)
@settings(max_examples=80, deadline=None)
def test_average_ranks_property_any_floats(values):
    assert_ranked_like_scipy(np.array(values, dtype=float))


def ref_features(x, scaling):
    """Rank features by their definition from ``scipy.stats.rankdata``: centred ranks are exact in binary."""
    ok = ~np.isnan(x)
    n = int(ok.sum())
    if scaling == SCALE_RHO_A and n < 2:
        return np.full(x.shape, np.nan)
    centred = rankdata(x[ok]) - (n + 1) / 2
    if scaling == SCALE_UNIT:
        ss = np.sum(centred**2)
        factor = 1.0 / np.sqrt(ss) if ss > 0 else 0.0
    else:
        factor = np.sqrt(12.0 / (float(n) ** 3 - n))
    out = np.zeros(x.shape)
    out[ok] = centred * factor
    return out


def assert_same_bits(got, expected):
    """Equal doubles, signs of zeros included (NaN: any NaN)."""
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.int64), expected[~nan].view(np.int64))


def level_row(rng, levels, n=500, nan_fraction=0.0):
    """A row of the given levels, each present among the first 64 entries (the level table's sample)."""
    levels = np.asarray(levels, dtype=float)
    x = rng.choice(levels, n)
    x[rng.random(n) < nan_fraction] = np.nan
    x[: levels.size] = levels
    return np.r_[rng.permutation(x[:64]), x[64:]]


@pytest.mark.parametrize("scaling", [SCALE_UNIT, SCALE_RHO_A])
@pytest.mark.parametrize("n_levels", range(1, 9))
def test_level_features_match_scipy_exactly(n_levels, scaling):
    """Rows of 1 to 8 levels (features written per level), with and without NaN, bit for bit."""
    rng = np.random.default_rng(n_levels)
    levels = rng.permutation(rng.standard_normal(n_levels) * 3)
    X = np.array([level_row(rng, levels), level_row(rng, levels, nan_fraction=0.3)])
    feats, counts = rank_feature_sets([X], scaling)
    for x, f in zip(X, feats[0]):
        assert_same_bits(f, ref_features(x, scaling))
    np.testing.assert_array_equal(counts[0], (~np.isnan(X)).sum(axis=1))


@pytest.mark.parametrize("scaling", [SCALE_UNIT, SCALE_RHO_A])
def test_level_features_edge_rows(scaling):
    """Constant rows, rows of fewer than two defined entries, signed zeros and infinite levels."""
    rng = np.random.default_rng(21)
    rows = [
        np.full(100, 2.5),
        np.r_[np.full(60, -1.0), np.full(40, np.nan)],
        np.full(100, np.nan),
        np.r_[np.full(99, np.nan), 4.0],
        np.r_[3.0, np.full(99, np.nan)],
        level_row(rng, [0.0, -0.0, 1.0], 100),
        level_row(rng, [-np.inf, np.inf, 0.0, -2.0], 100, nan_fraction=0.1),
        level_row(rng, [np.inf, -0.0, 0.0, 1e308, -1e-308, -np.inf, 5.0, 6.0], 100, nan_fraction=0.1),
        np.array([np.inf, -np.inf]),
        np.array([-0.0, 0.0]),
        np.array([1.0, np.nan]),
    ]
    for x in rows:
        x = np.asarray(x, dtype=float)
        got = rank_features(x[None], scaling)[0]
        assert_same_bits(got, ref_features(x, scaling))
        n = np.sum(~np.isnan(x))
        if scaling == SCALE_RHO_A and n < 2:
            assert np.all(np.isnan(got))
        elif scaling == SCALE_UNIT and np.unique(x[~np.isnan(x)]).size < 2:
            assert np.all(got == 0)  # constant (or nearly empty) rows


@pytest.mark.parametrize("scaling", [SCALE_UNIT, SCALE_RHO_A])
def test_level_features_equal_the_ranked_path(scaling):
    """A level first seen after the sample sends the row to the bucket sort; seen early, to the level table.

    The same values in another order: the features follow the entries, bit for bit.
    """
    rng = np.random.default_rng(22)
    for n_levels in (1, 4, 7):
        x = level_row(rng, rng.standard_normal(n_levels), 300, nan_fraction=0.1)
        x[200] = 0.25  # a new level after the first 64 entries: ranked entry by entry
        perm = np.r_[200, np.arange(200), np.arange(201, 300)]  # it comes first: the level table
        ranked = rank_features(x[None], scaling)[0]
        per_level = rank_features(x[perm][None], scaling)[0]
        assert_same_bits(per_level, ranked[perm])
        assert_same_bits(ranked, ref_features(x, scaling))
        ranks = average_ranks(x[None])[0]
        np.testing.assert_array_equal(average_ranks(x[perm][None])[0], ranks[perm])


@given(
    st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, np.inf, -np.inf, np.nan]), min_size=1, max_size=120),
    st.sampled_from([SCALE_UNIT, SCALE_RHO_A]),
)
@settings(max_examples=60, deadline=None)
def test_level_features_property(values, scaling):
    x = np.array(values)
    assert_same_bits(rank_features(x[None], scaling)[0], ref_features(x, scaling))
