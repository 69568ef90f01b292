"""RidgeCV: parity with scikit-learn (Ridge, RidgeCV leave-one-out) and himalaya (K-fold RidgeCV)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.linear_model import RidgeCV as SkRidgeCV
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroenc.encoding import _solvers
from neuroenc.encoding.ridge import RidgeCV
from neuroenc.errors import LabelError, NonFiniteError, ShapeError, UnknownNameError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV

ALPHAS = np.logspace(-2, 4, 13)


def make_data(n=90, p=12, t=25, offset=3.0, seed=0):
    """Targets with a range of signal-to-noise ratios, so that the selected alphas differ."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + offset
    W = rng.standard_normal((p, t)) * np.linspace(0.02, 1.0, t)
    Y = X @ W + rng.standard_normal((n, t)) * 2 + offset
    return X, Y


def rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max()


def ridge_predictions(X, Y, alphas, fit_intercept, X_test=None):
    X_test = X if X_test is None else X_test
    return np.stack(
        [Ridge(a, fit_intercept=fit_intercept).fit(X, Y[:, t]).predict(X_test) for t, a in enumerate(alphas)], axis=1
    )


@pytest.mark.parametrize("shape", [(90, 12), (30, 50)], ids=["long", "wide"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_loo_matches_sklearn_ridgecv(shape, fit_intercept):
    X, Y = make_data(*shape)
    ours = RidgeCV(ALPHAS, fit_intercept=fit_intercept).fit(X, Y)
    ref = SkRidgeCV(ALPHAS, alpha_per_target=True, fit_intercept=fit_intercept).fit(X, Y)
    assert len(np.unique(ours.alpha_)) > 2  # the comparison exercises several alphas
    np.testing.assert_array_equal(ours.alpha_, ref.alpha_)
    assert rel(ours.coef_, ref.coef_) < 1e-8
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-8, atol=1e-8 * np.abs(Y).max())
    np.testing.assert_allclose(ours.cv_scores_, ref.best_score_, rtol=1e-6)


@pytest.mark.parametrize("shape", [(90, 12), (40, 60)], ids=["long", "wide"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_kfold_matches_himalaya_ridgecv(shape, fit_intercept):
    X, Y = make_data(*shape)
    ours = RidgeCV(ALPHAS, cv=KFold(5), fit_intercept=fit_intercept).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = HimalayaRidgeCV(ALPHAS, cv=KFold(5), fit_intercept=fit_intercept).fit(X, Y)
    assert len(np.unique(ours.alpha_)) > 2
    np.testing.assert_allclose(ours.alpha_, ref.best_alphas_, rtol=1e-10)
    assert rel(ours.coef_, ref.coef_.T) < 1e-8
    # himalaya adds 1e-10 * log(alpha) to its scores to break ties toward large alphas
    np.testing.assert_allclose(ours.cv_scores_, ref.cv_scores_ - 1e-10 * np.log(ref.best_alphas_), rtol=1e-8)
    # an int cv is KFold without shuffling, as in himalaya
    np.testing.assert_array_equal(RidgeCV(ALPHAS, cv=5, fit_intercept=fit_intercept).fit(X, Y).alpha_, ours.alpha_)


@pytest.mark.parametrize("cv", [None, 4])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_predictions_equal_sklearn_ridge_at_selected_alpha(cv, fit_intercept):
    X, Y = make_data()
    X_test, _ = make_data(n=20, seed=1)
    model = RidgeCV(ALPHAS, cv=cv, fit_intercept=fit_intercept).fit(X, Y)
    ref = ridge_predictions(X, Y, model.alpha_, fit_intercept, X_test)
    assert rel(model.predict(X_test), ref) < 1e-8


def test_kfold_scores_equal_brute_force_for_every_scoring():
    X, Y = make_data(n=60, t=8)
    splits = list(KFold(3).split(X))
    for scoring in _solvers.SCORINGS:
        scores = _solvers.kfold_scores(X, Y, ALPHAS, splits, scoring=scoring)
        brute = np.zeros_like(scores)
        for train, val in splits:
            for i, a in enumerate(ALPHAS):
                pred = Ridge(a).fit(X[train], Y[train]).predict(X[val])
                if scoring == "neg_mean_squared_error":
                    brute[i] += -((Y[val] - pred) ** 2).mean(0)
                elif scoring == "r2":
                    brute[i] += 1 - ((Y[val] - pred) ** 2).sum(0) / ((Y[val] - Y[val].mean(0)) ** 2).sum(0)
                else:
                    brute[i] += [np.corrcoef(Y[val][:, t], pred[:, t])[0, 1] for t in range(Y.shape[1])]
        np.testing.assert_allclose(scores, brute / len(splits), rtol=1e-9, atol=1e-12)
        model = RidgeCV(ALPHAS, cv=splits, scoring=scoring).fit(X, Y)
        np.testing.assert_array_equal(model.alpha_, ALPHAS[np.argmax(brute, axis=0)])


def test_loo_scores_equal_brute_force_for_r2_and_pearson():
    X, Y = make_data(n=25, t=4)
    for scoring in ("r2", "pearson"):
        scores = _solvers.loo_scores(X, Y, ALPHAS[::4], scoring=scoring)
        for i, a in enumerate(ALPHAS[::4]):
            pred = np.stack(
                [Ridge(a).fit(np.delete(X, j, 0), np.delete(Y, j, 0)).predict(X[j : j + 1])[0] for j in range(25)]
            )
            if scoring == "r2":
                expect = 1 - ((Y - pred) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
            else:
                expect = [np.corrcoef(Y[:, t], pred[:, t])[0, 1] for t in range(4)]
            np.testing.assert_allclose(scores[i], expect, rtol=1e-9)


def test_shared_alpha_matches_sklearn():
    X, Y = make_data()
    ours = RidgeCV(ALPHAS, alpha_per_target=False).fit(X, Y)
    ref = SkRidgeCV(ALPHAS).fit(X, Y)
    assert np.all(ours.alpha_ == ref.alpha_)
    assert rel(ours.coef_, ref.coef_) < 1e-8


def test_float32_selects_like_float64_and_keeps_dtype():
    X, Y = make_data(n=200, p=20, t=40)
    m64 = RidgeCV(ALPHAS, cv=5).fit(X, Y)
    m32 = RidgeCV(ALPHAS, cv=5, dtype="float32").fit(X, Y)
    assert m32.coef_.dtype == np.float32 and m32.predict(X).dtype == np.float32
    assert np.mean(m32.alpha_ == m64.alpha_) >= 0.95
    same = m32.alpha_ == m64.alpha_
    assert rel(m32.coef_[same], m64.coef_[same]) < 1e-4
    # float32 input keeps float32 by default
    assert RidgeCV(ALPHAS, cv=5).fit(X.astype(np.float32), Y.astype(np.float32)).coef_.dtype == np.float32


def test_target_batches_do_not_change_results():
    X, Y = make_data(t=23)
    for cv in (None, 5):
        whole = RidgeCV(ALPHAS, cv=cv).fit(X, Y)
        batched = RidgeCV(ALPHAS, cv=cv, n_targets_batch=4).fit(X, Y)
        np.testing.assert_array_equal(whole.alpha_, batched.alpha_)
        np.testing.assert_allclose(whole.coef_, batched.coef_, rtol=1e-12, atol=1e-14)


def test_groups_make_group_folds():
    X, Y = make_data(n=96)
    runs = np.repeat(np.arange(6), 16)
    by_int = RidgeCV(ALPHAS, cv=3).fit(X, Y, groups=runs)
    explicit = RidgeCV(ALPHAS, cv=list(GroupKFold(3).split(X, Y, runs))).fit(X, Y)
    np.testing.assert_array_equal(by_int.alpha_scores_, explicit.alpha_scores_)
    logo = RidgeCV(ALPHAS).fit(X, Y, groups=runs)
    ref = RidgeCV(ALPHAS, cv=LeaveOneGroupOut()).fit(X, Y, groups=runs)
    np.testing.assert_array_equal(logo.alpha_scores_, ref.alpha_scores_)
    # no fold mixes runs: the scores differ from plain (sample) leave-one-out
    assert not np.allclose(logo.alpha_scores_, RidgeCV(ALPHAS).fit(X, Y).alpha_scores_)


def test_single_alpha_is_plain_ridge_without_cv():
    X, Y = make_data()
    model = RidgeCV([3.0], cv=5).fit(X, Y)
    assert np.all(model.alpha_ == 3.0) and np.isnan(model.cv_scores_).all()
    assert rel(model.predict(X), ridge_predictions(X, Y, [3.0] * Y.shape[1], True)) < 1e-8


def test_one_dimensional_target():
    X, Y = make_data()
    model = RidgeCV(ALPHAS, cv=5).fit(X, Y[:, 3])
    full = RidgeCV(ALPHAS, cv=5).fit(X, Y)
    assert model.coef_.shape == (X.shape[1],) and isinstance(model.alpha_, float)
    assert model.alpha_ == full.alpha_[3]
    np.testing.assert_allclose(model.predict(X), full.predict(X)[:, 3], rtol=1e-10)


def test_torch_backend_matches_numpy():
    pytest.importorskip("torch")
    X, Y = make_data()
    for cv in (None, 5):
        ref = RidgeCV(ALPHAS, cv=cv).fit(X, Y)
        ours = RidgeCV(ALPHAS, cv=cv, backend="torch").fit(X, Y)
        np.testing.assert_array_equal(ours.alpha_, ref.alpha_)
        np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.alpha_scores_, ref.alpha_scores_, rtol=1e-10)


def test_haxby_block_design_encoding_by_run(haxby_dir):
    from scipy.signal import detrend

    from neuroenc.datasets.local import load_haxby
    from neuroenc.encoding.hrf import hrf_design, indicator_matrix
    from neuroenc.encoding.scoring import cross_val_predict, score_targets

    bold = load_haxby(mode="volumes", data_dir=haxby_dir.parent)
    runs = bold.obs["run"].to_numpy()
    indicators, conditions = indicator_matrix(bold.obs["condition"].to_numpy(), exclude=["rest"])
    assert len(conditions) == 8
    X = hrf_design(indicators, tr=2.5, model="glover", runs=runs)
    Y = np.asarray(bold.data, dtype=np.float64).copy()
    for r in np.unique(runs):
        Y[runs == r] = detrend(Y[runs == r], axis=0)
    pred = cross_val_predict(RidgeCV(np.logspace(-1, 4, 11)), X, Y, cv=6, groups=runs)
    r = score_targets(Y, pred, "pearson")
    assert r.shape == (530,)
    # ventral temporal voxels follow the category blocks of held-out runs
    assert np.median(r) > 0.02 and r.max() > 0.4 and np.mean(r > 0.1) > 0.2
    # the selected alphas of the last fold equal scikit-learn's per-target leave-one-out choice
    train = runs < 10
    ours = RidgeCV(np.logspace(-1, 4, 11)).fit(X[train], Y[train])
    ref = SkRidgeCV(np.logspace(-1, 4, 11), alpha_per_target=True).fit(X[train], Y[train])
    np.testing.assert_array_equal(ours.alpha_, ref.alpha_)


# ------------------------------------------------------------------ scikit-learn API


@parametrize_with_checks([RidgeCV(), RidgeCV(cv=3), RidgeCV(alphas=[1.0])])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (dict(alphas=[]), ShapeError),
        (dict(alphas=[1.0, -1.0]), ShapeError),
        (dict(alphas=[1.0, np.nan]), NonFiniteError),
        (dict(scoring="accuracy"), UnknownNameError),
        (dict(backend="jax"), UnknownNameError),
        (dict(dtype="float16"), UnknownNameError),
        (dict(cv=1), ShapeError),
        (dict(cv="kfold"), UnknownNameError),
        (dict(cv=[(np.arange(10), np.array([], dtype=int))]), LabelError),
        (dict(cv=[(np.arange(10), np.arange(90, 95))]), LabelError),
        (dict(n_targets_batch=0), ShapeError),
    ],
)
def test_bad_parameters_raise_before_work(kwargs, error):
    X, Y = make_data(n=40)
    params = dict(alphas=ALPHAS) | kwargs
    with pytest.raises(error):
        RidgeCV(**params).fit(X, Y)


def test_bad_data_raise():
    X, Y = make_data(n=40)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(NonFiniteError, match="index"):
        RidgeCV().fit(bad, Y)
    with pytest.raises(LabelError):
        RidgeCV().fit(X, Y[:-1])
    with pytest.raises(LabelError):
        RidgeCV(cv=3).fit(X, Y, groups=np.arange(5))
    with pytest.raises(ShapeError, match="complex"):
        RidgeCV().fit(X + 1j, Y)
    with pytest.raises(ShapeError, match="Reshape"):
        RidgeCV().fit(X[:, 0], Y)
    model = RidgeCV().fit(X, Y)
    with pytest.raises(ShapeError, match="features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError):  # groups cannot fill 5 folds from 2 runs
        RidgeCV(cv=5).fit(X, Y, groups=np.repeat([0, 1], 20))
