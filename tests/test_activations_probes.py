"""k-sparse probes: unit scores against scipy/scikit-learn, planted units, no leakage, estimator API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn.base import clone
from sklearn.feature_selection import f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroenc.activations import probes
from neuroenc.activations.probes import SparseProbe, probe_layers, unit_scores
from neuroenc.errors import LabelError, NonFiniteError, ShapeError, UnknownNameError


@pytest.fixture(scope="module")
def planted():
    """100 stimuli, 300 noise units; unit 17 carries the binary label."""
    rng = np.random.default_rng(3)
    y = np.repeat(["cat", "dog"], 50)
    X = rng.standard_normal((100, 300))
    X[:, 17] += 2.0 * (y == "dog")
    return X, y


@pytest.fixture(scope="module")
def haxby_betas(haxby_dir):
    from neuroenc.datasets.local import load_haxby

    bold = load_haxby(mode="betas", data_dir=haxby_dir.parent)
    return np.asarray(bold.data, dtype=np.float64), bold.obs["condition"].to_numpy(), bold.obs["run"].to_numpy()


# --------------------------------------------------------------------------- unit scores


def test_t_scores_equal_scipy(planted):
    X, y = planted
    ref = scipy.stats.ttest_ind(X[y == "dog"], X[y == "cat"], equal_var=False).statistic
    np.testing.assert_allclose(unit_scores(X, y, "t"), np.abs(ref), rtol=1e-10)
    diff = np.abs(X[y == "dog"].mean(axis=0) - X[y == "cat"].mean(axis=0))
    np.testing.assert_allclose(unit_scores(X, y, "mean_diff"), diff, rtol=1e-12)


def test_multiclass_scores():
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], [20, 25, 15])
    X = rng.standard_normal((60, 40))
    X[y == 2, 5] += 2
    np.testing.assert_allclose(unit_scores(X, y, "f"), f_classif(X, y)[0], rtol=1e-10)
    one_vs_rest = [np.abs(scipy.stats.ttest_ind(X[y == c], X[y != c], equal_var=False).statistic) for c in range(3)]
    np.testing.assert_allclose(unit_scores(X, y, "t"), np.max(one_vs_rest, axis=0), rtol=1e-10)
    diffs = [np.abs(X[y == c].mean(axis=0) - X[y != c].mean(axis=0)) for c in range(3)]
    np.testing.assert_allclose(unit_scores(X, y, "mean_diff"), np.max(diffs, axis=0), rtol=1e-12)
    for selector in probes.SELECTORS:
        assert np.argmax(unit_scores(X, y, selector)) == 5, selector


def test_l1_scores_follow_the_lasso_path(planted):
    from sklearn.linear_model import lars_path

    X, y = planted
    scores = unit_scores(X, y, "l1")
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    target = np.where(y == "dog", 1.0, -1.0)
    _, active, coefs = lars_path(Z, target - target.mean(), method="lasso", max_iter=8)
    first_entries = []
    for step in range(1, coefs.shape[1]):
        new = [j for j in np.flatnonzero(coefs[:, step]) if j not in first_entries]
        first_entries += new
    assert first_entries[0] == 17
    np.testing.assert_array_equal(np.argsort(-scores, kind="stable")[: len(first_entries)], first_entries)
    assert (scores >= 0).all() and np.count_nonzero(scores) >= 8
    short = unit_scores(X, y, "l1", max_units=3)  # a shorter path ranks the same first units
    np.testing.assert_array_equal(np.argsort(-short, kind="stable")[:3], first_entries[:3])
    assert np.count_nonzero(short) < np.count_nonzero(scores)


def test_constant_units_never_win():
    y = np.repeat([0, 1], 10)
    X = np.column_stack([np.ones(20), np.r_[np.zeros(10), np.ones(10)] + np.linspace(0, 0.1, 20), np.arange(20.0)])
    for selector in probes.SELECTORS:
        scores = unit_scores(X, y, selector)
        assert np.isfinite(scores).all() and scores[0] == scores.min(), selector


# --------------------------------------------------------------------------- planted unit, leakage


@pytest.mark.parametrize("selector", probes.SELECTORS)
def test_sparse_probe_finds_the_planted_unit(planted, selector):
    X, y = planted
    probe = SparseProbe(k=1, selector=selector).fit(X, y)
    np.testing.assert_array_equal(probe.units_, [17])
    assert probe.coef_.shape == (1, 1) and probe.coef_[0, 0] > 0
    assert cross_val_score(SparseProbe(k=1, selector=selector), X, y, cv=5).mean() > 0.75  # chance is 0.5


def test_probe_layers_equals_cross_val_score(planted):
    X, y = planted
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    table = probe_layers({"a": X, "b": X[:, 10:60]}, y, k=(1, 3, None), cv=cv, selector="f")
    assert list(table["layer"]) == ["a"] * 3 + ["b"] * 3
    assert list(table["k"]) == [1, 3, 300, 1, 3, 50]
    for row in table.itertuples():
        data = X if row.layer == "a" else X[:, 10:60]
        k = None if row.k == row.n_units else row.k
        ref = cross_val_score(SparseProbe(k, selector="f"), data, y, cv=cv)
        np.testing.assert_allclose(row.fold_scores, ref, rtol=1e-12)
        assert row.score == pytest.approx(ref.mean()) and row.score_std == pytest.approx(ref.std())
        for (train, _), units in zip(cv.split(data, y), row.units):
            assert units == tuple(SparseProbe(k, selector="f").fit(data[train], y[train]).units_)
    # every fold of layer "a" picks the planted unit first, and layer "b" has it at position 7
    assert all(units[0] == 17 for units in table["units"][0])
    assert all(units[0] == 7 for units in table["units"][3])


def test_dense_probe_is_standardised_logistic_regression(planted):
    X, y = planted
    X = X[:, :40]
    probe = SparseProbe(k=None).fit(X, y)
    ref = make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cholesky", max_iter=1000)).fit(X, y)
    np.testing.assert_allclose(probe.predict_proba(X), ref.predict_proba(X), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(probe.units_, np.arange(40))
    assert probe.unit_scores_ is None


def test_noise_labels_stay_at_chance_with_selection():
    """Selection inside the training folds keeps pure noise at chance; selecting on all data does not."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((60, 2000))
    inside, outside = [], []
    for seed in range(4):
        y = np.random.default_rng(seed).permutation(np.repeat([0, 1], 30))
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        table = probe_layers(X, y, k=(1, 4, 16), cv=cv)
        inside.append(table["score"].to_numpy())
        leaky_units = np.argsort(-unit_scores(X, y, "t"))[:16]  # double dipping
        outside.append(cross_val_score(LogisticRegression(), X[:, leaky_units], y, cv=cv).mean())
    assert abs(np.mean(inside) - 0.5) < 0.08
    assert np.mean(outside) > 0.75


def test_haxby_face_house_with_few_voxels(haxby_betas):
    X, labels, runs = haxby_betas
    keep = np.isin(labels, ["face", "house"])
    table = probe_layers(
        {"vt": X[keep]}, labels[keep], k=(1, 2, 8), cv=LeaveOneGroupOut(), groups=runs[keep], selector="t"
    )
    assert (table["score"] > 0.9).all()
    assert all(len(units) == 12 for units in table["units"])  # one entry per held-out run
    # the selection is stable across folds: few distinct winners, a shared core of 8-voxel sets
    assert len({units[0] for units in table["units"][0]}) <= 3
    assert len(set.intersection(*(set(units) for units in table["units"][2]))) >= 5
    # 8 categories: a few voxels already decode far above chance (1/8)
    multi = probe_layers(X, labels, k=8, cv=LeaveOneGroupOut(), groups=runs, scoring="balanced_accuracy")
    assert multi["score"][0] > 0.25


# --------------------------------------------------------------------------- estimator API


@parametrize_with_checks(
    [SparseProbe(), SparseProbe(k=None), SparseProbe(k=2, selector="l1")],
    expected_failed_checks=lambda est: (
        {"check_classifiers_train": "one unit cannot separate the 3 blobs of this check"} if est.k == 1 else {}
    ),
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_estimator_api(planted):
    X, y = planted
    probe = SparseProbe(k=2, selector="mean_diff", C=0.5)
    assert probe.get_params() == {"k": 2, "selector": "mean_diff", "C": 0.5, "max_iter": 1000}
    assert clone(probe).get_params() == probe.get_params()
    search = GridSearchCV(SparseProbe(), {"k": [1, 4, 16]}, cv=3).fit(X, y)
    assert search.best_params_["k"] in (1, 4, 16)
    fitted = SparseProbe(k=3, selector=lambda X, y: X.var(axis=0)).fit(X, y)
    np.testing.assert_array_equal(fitted.units_, np.argsort(-X.var(axis=0))[:3])
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(axis=1)])
    frame = pd.DataFrame(X, columns=[f"u{i}" for i in range(X.shape[1])])
    assert list(SparseProbe(k=1).fit(frame, y).feature_names_in_[:2]) == ["u0", "u1"]


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def no_work(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("work started before the input was validated")

    monkeypatch.setattr(probes, "_scores", boom)
    monkeypatch.setattr(SparseProbe, "_fit_units", boom)


def test_bad_inputs_raise_before_work(planted, no_work):
    X, y = planted
    with pytest.raises(ShapeError, match=r"k=301 is out of range.*n_features=300"):
        SparseProbe(k=301).fit(X, y)
    with pytest.raises(ShapeError, match="positive integer"):
        SparseProbe(k=0.5).fit(X, y)
    with pytest.raises(ShapeError, match=r"k=64 is out of range.*layer 'small'"):
        probe_layers({"big": X, "small": X[:, :50]}, y, k=(1, 64))
    with pytest.raises(ShapeError, match="empty"):
        probe_layers(X, y, k=())
    with pytest.raises(ShapeError, match="max_units=0 is out of range"):
        unit_scores(X, y, "l1", max_units=0)
    with pytest.raises(UnknownNameError, match="selector"):
        SparseProbe(selector="anova").fit(X, y)
    with pytest.raises(UnknownNameError, match="selector"):
        probe_layers(X, y, selector="anova")
    with pytest.raises(UnknownNameError, match="scoring"):
        probe_layers(X, y, scoring="accuracyy")
    with pytest.raises(ShapeError, match="C must be"):
        SparseProbe(C=-1).fit(X, y)
    with pytest.raises(LabelError, match="99 entries but there are 100 stimuli"):
        probe_layers(X, y[:-1])
    with pytest.raises(LabelError, match="only 1 class"):
        probe_layers(X, np.zeros(100))
    with pytest.raises(LabelError, match="only 1 class"):
        SparseProbe().fit(X, np.zeros(100))
    with pytest.raises(ValueError, match="Unknown label type"):
        SparseProbe().fit(X, np.linspace(0, 1, 100))
    with pytest.raises(LabelError, match="groups has 3 entries"):
        probe_layers(X, y, groups=[1, 2, 3])
    bad = X.copy()
    bad[5, 9] = np.inf
    with pytest.raises(NonFiniteError, match="Inf at index \\(5, 9\\)"):
        probe_layers({"ok": X, "bad": bad}, y)
    with pytest.raises(NonFiniteError):
        SparseProbe().fit(bad, y)
    with pytest.raises(NonFiniteError):
        unit_scores(X, np.where(np.arange(100) < 50, 0.0, np.nan))


def test_selector_returning_wrong_shape(planted):
    X, y = planted
    with pytest.raises(ShapeError, match="returned 3 scores for 300 units"):
        SparseProbe(selector=lambda X, y: np.ones(3)).fit(X, y)
