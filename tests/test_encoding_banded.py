"""BandedRidgeCV: parity with himalaya's GroupRidgeCV for the same band-weight candidates."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.model_selection import KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroenc.encoding.banded import BandedRidgeCV, band_weight_candidates
from neuroenc.encoding.ridge import RidgeCV
from neuroenc.errors import ShapeError, UnknownNameError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from himalaya.kernel_ridge import generate_dirichlet_samples
    from himalaya.ridge import GroupRidgeCV
    from himalaya.scoring import r2_score_split as himalaya_r2_split

ALPHAS = np.logspace(-2, 4, 9)


def two_bands(n=120, seed=0):
    """Targets driven by band 0, band 1 or both, in varying proportions."""
    weights = np.random.default_rng(100)
    W1, W2 = weights.standard_normal((8, 16)), weights.standard_normal((24, 16))
    rng = np.random.default_rng(seed)
    X1, X2 = rng.standard_normal((n, 8)), rng.standard_normal((n, 24))
    mix = np.linspace(0, 1, 16)
    Y = (X1 @ W1) * mix + (X2 @ W2) * 0.4 * (1 - mix)
    return X1, X2, Y + rng.standard_normal((n, 16)) + 2.0


def himalaya_gammas(n_iter=12, seed=0):
    gammas = generate_dirichlet_samples(n_iter, 2, concentration=[0.1, 1.0], random_state=seed)
    gammas[0] = 0.5
    return gammas


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_matches_himalaya_group_ridge_cv(fit_intercept):
    X1, X2, Y = two_bands()
    if not fit_intercept:
        X1, X2, Y = X1 - X1.mean(0), X2 - X2.mean(0), Y - Y.mean(0)
    gammas = himalaya_gammas()
    ours = BandedRidgeCV(alphas=ALPHAS, n_iter=gammas, cv=KFold(5), fit_intercept=fit_intercept).fit([X1, X2], Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = dict(n_iter=gammas, alphas=ALPHAS, progress_bar=False)
        ref = GroupRidgeCV(groups="input", solver_params=params, cv=KFold(5), fit_intercept=fit_intercept)
        ref.fit([X1, X2], Y)
    # the search is exercised: several candidates win some targets
    assert len({tuple(w) for w in ours.band_weights_.T}) > 2
    np.testing.assert_allclose(ours.deltas_, ref.deltas_, rtol=1e-10)
    np.testing.assert_allclose(ours.coef_, ref.coef_.T, rtol=1e-8, atol=1e-10 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(ours.alpha_, ref.best_alphas_, rtol=1e-10)
    # himalaya's candidate scores carry its 1e-10 * log(alpha) tie-breaking slope
    slope = 1e-10 * np.log(ALPHAS)
    np.testing.assert_allclose(ours.candidate_scores_, ref.cv_scores_, atol=np.abs(slope).max() + 1e-12)
    Xt1, Xt2, _ = two_bands(n=30, seed=1)
    np.testing.assert_allclose(ours.predict([Xt1, Xt2]), ref.predict([Xt1, Xt2]), rtol=1e-8, atol=1e-9)
    if not fit_intercept:
        np.testing.assert_allclose(ours.predict([Xt1, Xt2], split=True), ref.predict([Xt1, Xt2], split=True), atol=1e-9)


def test_split_predictions_and_variance_partitioning():
    X1, X2, Y = two_bands()
    model = BandedRidgeCV(alphas=ALPHAS, n_iter=himalaya_gammas(), cv=5).fit([X1, X2], Y)
    Xt1, Xt2, Yt = two_bands(n=60, seed=3)
    parts = model.predict([Xt1, Xt2], split=True)
    assert parts.shape == (2, 60, 16)
    np.testing.assert_allclose(parts.sum(0) + model.intercept_, model.predict([Xt1, Xt2]), rtol=1e-10)
    shares = model.score([Xt1, Xt2], Yt, split=True)
    Yc = Yt - Yt.mean(0)
    np.testing.assert_allclose(shares, himalaya_r2_split(Yc, parts - parts.mean(1, keepdims=True)), rtol=1e-10)
    # shares add up to each target's R2 of the joint prediction
    pred = model.predict([Xt1, Xt2])
    r2 = 1 - ((Yt - pred) ** 2).sum(0) / (Yc**2).sum(0)
    np.testing.assert_allclose(shares.sum(0), r2 + ((pred - Yt).mean(0) ** 2) * 60 / (Yc**2).sum(0), rtol=1e-8)
    # band 0 explains the targets that mix it in most (last columns)
    assert shares[0, -1] > shares[1, -1] and shares[1, 0] > shares[0, 0]


def test_one_array_with_band_sizes_equals_list_input():
    X1, X2, Y = two_bands()
    gammas = himalaya_gammas()
    listed = BandedRidgeCV(alphas=ALPHAS, n_iter=gammas).fit([X1, X2], Y)
    sized = BandedRidgeCV(bands=[8, 24], alphas=ALPHAS, n_iter=gammas).fit(np.hstack([X1, X2]), Y)
    np.testing.assert_array_equal(listed.deltas_, sized.deltas_)
    np.testing.assert_allclose(listed.coef_, sized.coef_, rtol=1e-12)


def test_single_band_is_ridge_cv():
    X1, _, Y = two_bands()
    banded = BandedRidgeCV(alphas=ALPHAS, cv=5).fit(X1, Y)
    ridge = RidgeCV(ALPHAS, cv=5).fit(X1, Y)
    assert banded.band_weight_candidates_.shape == (1, 1)
    np.testing.assert_array_equal(banded.alpha_, ridge.alpha_)
    np.testing.assert_allclose(banded.coef_, ridge.coef_, rtol=1e-12)


def test_leave_one_out_search_equals_ridge_cv_per_candidate():
    X1, X2, Y = two_bands(n=60)
    gammas = himalaya_gammas(4)
    model = BandedRidgeCV(alphas=ALPHAS, n_iter=gammas, cv=None).fit([X1, X2], Y)
    for i, g in enumerate(gammas):
        scaled = np.hstack([X1 * np.sqrt(g[0]), X2 * np.sqrt(g[1])])
        np.testing.assert_allclose(model.candidate_scores_[i], RidgeCV(ALPHAS).fit(scaled, Y).cv_scores_, rtol=1e-10)


def test_random_candidates():
    gammas = band_weight_candidates(30, 3, concentration=[0.1, 1.0, np.inf], random_state=0)
    assert gammas.shape == (30, 3)
    np.testing.assert_allclose(gammas.sum(1), 1.0)
    np.testing.assert_allclose(gammas[0], 1 / 3)
    np.testing.assert_allclose(gammas[2::3], 1 / 3)  # infinite concentration: equal weights
    np.testing.assert_array_equal(gammas, band_weight_candidates(30, 3, [0.1, 1.0, np.inf], random_state=0))
    X1, X2, Y = two_bands()
    a = BandedRidgeCV(alphas=ALPHAS, n_iter=6, random_state=3).fit([X1, X2], Y)
    b = BandedRidgeCV(alphas=ALPHAS, n_iter=6, random_state=3).fit([X1, X2], Y)
    np.testing.assert_array_equal(a.band_weights_, b.band_weights_)
    np.testing.assert_allclose(a.band_alphas_, a.alpha_ / a.band_weights_)


@parametrize_with_checks([BandedRidgeCV(cv=3)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_bad_input():
    X1, X2, Y = two_bands(n=40)
    with pytest.raises(ShapeError, match="add up"):
        BandedRidgeCV(bands=[8, 20]).fit(np.hstack([X1, X2]), Y)
    with pytest.raises(ShapeError, match="different numbers of samples"):
        BandedRidgeCV().fit([X1, X2[:-1]], Y)
    with pytest.raises(ShapeError, match="columns"):
        BandedRidgeCV(n_iter=np.ones((3, 3)) / 3).fit([X1, X2], Y)
    with pytest.raises(ShapeError, match="non-negative"):
        BandedRidgeCV(n_iter=np.array([[1.5, -0.5]])).fit([X1, X2], Y)
    with pytest.raises(ShapeError):
        BandedRidgeCV(n_iter=0).fit([X1, X2], Y)
    with pytest.raises(ShapeError):
        band_weight_candidates(3, 2, concentration=[0.0])
    with pytest.raises(UnknownNameError):
        BandedRidgeCV(scoring="mae").fit([X1, X2], Y)
    model = BandedRidgeCV(alphas=ALPHAS, n_iter=2).fit([X1, X2], Y)
    with pytest.raises(ShapeError, match="bands"):
        model.predict([X2, X1])
    with pytest.raises(ShapeError):
        model.predict([])
