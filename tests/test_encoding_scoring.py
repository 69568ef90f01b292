"""Per-target scores, cross-validated predictions, noise ceilings and permutation tests."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut
from sklearn.model_selection import cross_val_predict as sk_cross_val_predict

from neuroenc.encoding.ridge import RidgeCV
from neuroenc.encoding.scoring import (
    cross_val_predict,
    noise_ceiling,
    normalize_by_ceiling,
    permutation_test,
    r2_score_split,
    score_targets,
    split_half_reliability,
)
from neuroenc.errors import NonFiniteError, ShapeError, UnknownNameError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from himalaya.scoring import r2_score_split as himalaya_r2_split


def pair(n=60, t=7, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((n, t)) + 1.0
    return Y, 0.6 * Y + rng.standard_normal((n, t))


def test_score_targets_matches_sklearn_and_scipy():
    Y, P = pair()
    np.testing.assert_allclose(score_targets(Y, P, "r2"), r2_score(Y, P, multioutput="raw_values"), rtol=1e-12)
    expected = [pearsonr(Y[:, t], P[:, t])[0] for t in range(Y.shape[1])]
    np.testing.assert_allclose(score_targets(Y, P), expected, rtol=1e-12)
    assert isinstance(score_targets(Y[:, 0], P[:, 0]), float)
    # constant targets or predictions score 0, not NaN
    P[:, 0] = 3.0
    Y[:, 1] = 2.0
    scores = score_targets(Y, P)
    assert scores[0] == 0 and scores[1] == 0 and np.isfinite(score_targets(Y, P, "r2")).all()


def test_r2_score_split_matches_himalaya():
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((50, 6))
    parts = np.stack([0.5 * Y + rng.standard_normal((50, 6)), 0.2 * Y + rng.standard_normal((50, 6))])
    Yc, pc = Y - Y.mean(0), parts - parts.mean(1, keepdims=True)
    np.testing.assert_allclose(r2_score_split(Y, parts), himalaya_r2_split(Yc, pc), rtol=1e-12)
    np.testing.assert_allclose(r2_score_split(Y, parts).sum(0), score_targets(Yc, pc.sum(0), "r2"), rtol=1e-10)


def test_cross_val_predict_matches_sklearn_and_passes_groups():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((72, 6))
    Y = X @ rng.standard_normal((6, 5)) + rng.standard_normal((72, 5))
    model = RidgeCV(np.logspace(-2, 3, 6))
    ours = cross_val_predict(model, X, Y, cv=KFold(4))
    np.testing.assert_allclose(ours, sk_cross_val_predict(model, X, Y, cv=KFold(4)), rtol=1e-12)
    # groups reach the inner fit: the inner selection is then leave-one-run-out
    runs = np.repeat(np.arange(6), 12)
    outer = list(GroupKFold(3).split(X, Y, runs))
    grouped = cross_val_predict(model, X, Y, cv=outer, groups=runs)
    manual = np.empty_like(Y)
    for train, test in outer:
        inner = RidgeCV(np.logspace(-2, 3, 6), cv=LeaveOneGroupOut()).fit(X[train], Y[train], groups=runs[train])
        manual[test] = inner.predict(X[test])
    np.testing.assert_allclose(grouped, manual, rtol=1e-12)
    np.testing.assert_allclose(cross_val_predict(model, X, Y, cv=3, groups=runs), grouped, rtol=1e-12)
    with pytest.raises(ShapeError, match="explicit folds"):
        cross_val_predict(model, X, Y, cv=None)
    with pytest.raises(ShapeError, match="overlap"):
        cross_val_predict(model, X, Y, cv=[(np.arange(40), np.arange(30, 72)), (np.arange(30), np.arange(30, 72))])


def repeated_responses(n_rep=8, n=400, signal=1.0, noise=2.0, t=5, seed=3):
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal((n, t)) * signal
    return truth, truth[None] + rng.standard_normal((n_rep, n, t)) * noise


def test_split_half_reliability_recovers_the_theoretical_value():
    _, R = repeated_responses()
    rho = split_half_reliability(R, n_splits=50)
    # reliability of the mean of k repeats: s^2 / (s^2 + noise^2 / k)
    np.testing.assert_allclose(rho, 1.0 / (1.0 + 4.0 / 8), atol=0.06)
    # two repetitions: Spearman-Brown of their correlation
    two = R[:2, :, 0]
    r = pearsonr(two[0], two[1])[0]
    np.testing.assert_allclose(split_half_reliability(two), [2 * r / (1 + r)], rtol=1e-12)


def test_noise_ceiling_bounds_a_perfect_model():
    truth, R = repeated_responses()
    mean = R.mean(0)
    ceiling = noise_ceiling(R, "pearson")
    perfect = score_targets(mean, truth)
    np.testing.assert_allclose(perfect, ceiling, atol=0.05)
    np.testing.assert_allclose(noise_ceiling(R, "r2"), ceiling**2, rtol=1e-12)
    normalised = normalize_by_ceiling(perfect, ceiling)
    np.testing.assert_allclose(normalised, 1.0, atol=0.07)
    assert np.isnan(normalize_by_ceiling([0.3, 0.2], [0.5, 0.0])[1])


def test_permutation_test_null_and_max_statistic():
    rng = np.random.default_rng(4)
    Y = rng.standard_normal((80, 6))
    P = 0.5 * rng.standard_normal((80, 6))
    P[:, 0] += 0.8 * Y[:, 0]  # one real effect
    for metric in ("pearson", "r2"):
        res = permutation_test(Y, P, metric, n_permutations=200, random_state=7)
        np.testing.assert_allclose(res.scores, score_targets(Y, P, metric), rtol=1e-12)
        # replay the permutations: the null maxima are those of the plain metric
        replay = np.random.default_rng(7)
        expect = [score_targets(Y, P[replay.permutation(80)], metric).max() for _ in range(200)]
        np.testing.assert_allclose(res.null_max, expect, rtol=1e-10, atol=1e-12)
        assert res.p_values_fwe[0] == pytest.approx(1 / 201)
        assert (res.p_values_fwe[1:] > 0.05).all()
        assert (res.p_values_fwe >= res.p_values).all()


def test_block_permutation_moves_whole_blocks():
    rng = np.random.default_rng(5)
    Y, P = rng.standard_normal((40, 2)), rng.standard_normal((40, 2))
    res = permutation_test(Y, P, n_permutations=20, block_size=10, random_state=0)
    replay = np.random.default_rng(0)
    order = replay.permutation(4)
    perm = np.concatenate([np.arange(10 * i, 10 * i + 10) for i in order])
    assert res.null_max[0] == pytest.approx(score_targets(Y, P[perm]).max())


def test_bad_input():
    Y, P = pair()
    with pytest.raises(ShapeError, match="shape"):
        score_targets(Y, P[:, :3])
    with pytest.raises(UnknownNameError):
        score_targets(Y, P, "spearman")
    bad = P.copy()
    bad[4, 2] = np.inf
    with pytest.raises(NonFiniteError):
        score_targets(Y, bad)
    with pytest.raises(ShapeError, match="repetition"):
        split_half_reliability(Y[None])
    with pytest.raises(ShapeError):
        permutation_test(Y, P, n_permutations=0)
    with pytest.raises(ShapeError, match="block_size"):
        permutation_test(Y, P, block_size=59)
    with pytest.raises(ShapeError):
        r2_score_split(Y, P)
