"""Sliding and generalizing decoders: parity with MNE, batched fits, inputs, real EEG."""

from __future__ import annotations

import warnings

import mne
import numpy as np
import pytest
from mne.decoding import GeneralizingEstimator, SlidingEstimator, cross_val_multiscore
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.metrics import make_scorer, matthews_corrcoef
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from threadpoolctl import threadpool_limits

from neuroenc.decoding import time_resolved
from neuroenc.decoding.time_resolved import (
    GeneralizingDecoder,
    SlidingDecoder,
    _batched_fit,
    cross_val_time_score,
)
from neuroenc.errors import LabelError, NonFiniteError, ShapeError, UnknownNameError
from tests.conftest import make_braindata

CV = KFold(4, shuffle=True, random_state=0)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # tiny per-time-point problems: BLAS threads only fight each other (and slow MNE's references)
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 6, 12))
    y = np.tile(["left", "right"], 24)
    X[y == "right", :2, 5:] += 0.8
    y3 = np.tile([1, 2, 3], 16)
    X[y3 == 3, 2, 3:] += 0.8
    target = X[:, 0, :].mean(axis=1) + 0.3 * rng.standard_normal(48)
    return X, y, y3, target


def _mne_scores(decoder_cls, est, scoring, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_val_multiscore(decoder_cls(est, scoring=scoring, verbose=False), X, y, cv=CV)


# --------------------------------------------------------------------------- parity with MNE

CLASSIFICATION = [
    (LDA(), None, "y"),
    (LDA(), "roc_auc", "y"),
    (LDA(), "balanced_accuracy", "y3"),
    (LDA(solver="lsqr", shrinkage="auto"), "roc_auc", "y"),
    (LDA(solver="lsqr", shrinkage=0.2), None, "y3"),
    (make_pipeline(StandardScaler(), LogisticRegression()), "roc_auc", "y"),
    (LogisticRegression(), None, "y3"),
    (RidgeClassifier(alpha=2.0), None, "y3"),
    (SVC(), "accuracy", "y"),  # non-linear: per-time-point predictions
]
#: scorers without a batched formula: scored pair by pair on the batched predictions (slow in both)
PER_PAIR = [
    (LDA(), "f1_macro", "y3"),
    (LDA(), make_scorer(matthews_corrcoef), "y"),
    (make_pipeline(StandardScaler(), LDA()), "neg_log_loss", "y"),  # predict_proba
]


PAIRS = [(SlidingDecoder, SlidingEstimator), (GeneralizingDecoder, GeneralizingEstimator)]


@pytest.mark.parametrize("est, scoring, labels", CLASSIFICATION, ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_classification_scores_equal_mne(data, est, scoring, labels, ours, theirs):
    X, y, y3, _ = data
    yy = y if labels == "y" else y3
    got = cross_val_time_score(ours(est, scoring=scoring), X, yy, cv=CV)
    want = _mne_scores(theirs, est, scoring, X, yy)
    assert got.shape == want.shape == ((4, 12) if ours is SlidingDecoder else (4, 12, 12))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("est, scoring, labels", PER_PAIR, ids=lambda v: str(v)[:30])
def test_per_pair_scorers_equal_mne(data, est, scoring, labels):
    X, y, y3, _ = data
    yy = y if labels == "y" else y3
    X = X[:, :, ::2]  # 6 x 6 pairs
    got = cross_val_time_score(GeneralizingDecoder(est, scoring=scoring), X, yy, cv=CV)
    np.testing.assert_allclose(got, _mne_scores(GeneralizingEstimator, est, scoring, X, yy), rtol=1e-10)


@pytest.mark.parametrize(
    "est, scoring, ours, theirs",
    [
        (Ridge(alpha=2.0), None, GeneralizingDecoder, GeneralizingEstimator),
        (make_pipeline(StandardScaler(), Ridge()), "neg_mean_squared_error", *PAIRS[1]),
        (Ridge(alpha=2.0), "neg_mean_absolute_error", SlidingDecoder, SlidingEstimator),
        (Ridge(alpha=2.0), "explained_variance", SlidingDecoder, SlidingEstimator),  # per time point
    ],
    ids=lambda v: str(v)[:30],
)
def test_regression_scores_equal_mne(data, est, scoring, ours, theirs):
    X, _, _, target = data
    got = cross_val_time_score(ours(est, scoring=scoring), X, target, cv=CV)
    np.testing.assert_allclose(got, _mne_scores(theirs, est, scoring, X, target), rtol=1e-10)


def test_predictions_equal_mne(data):
    X, y, y3, _ = data
    est = make_pipeline(StandardScaler(), LogisticRegression())
    for labels in (y, y3):
        ours = GeneralizingDecoder(est).fit(X[:30], labels[:30])
        ref = GeneralizingEstimator(est, verbose=False).fit(X[:30], labels[:30])
        np.testing.assert_array_equal(ours.predict(X[30:]), ref.predict(X[30:]))
        np.testing.assert_allclose(ours.predict_proba(X[30:]), ref.predict_proba(X[30:]), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.decision_function(X[30:]), ref.decision_function(X[30:]), rtol=1e-9)
        sl = SlidingDecoder(LDA()).fit(X[:30], labels[:30])
        ref = SlidingEstimator(LDA(), verbose=False).fit(X[:30], labels[:30])
        np.testing.assert_array_equal(sl.predict(X[30:]), ref.predict(X[30:]))
        np.testing.assert_allclose(sl.predict_proba(X[30:]), ref.predict_proba(X[30:]), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- batched fits


def _per_time(est, X, y):
    fitted = [type(est)(**est.get_params()).fit(X[:, :, t], y) for t in range(X.shape[2])]
    coef = np.stack([np.atleast_2d(f.coef_) for f in fitted])
    return coef, np.stack([np.broadcast_to(f.intercept_, coef.shape[1:2]) for f in fitted])


@pytest.mark.parametrize(
    "est, labels",
    [
        (LDA(), "y"),
        (LDA(), "y3"),
        (LDA(tol=0.5), "y3"),  # truncates components
        (LDA(solver="lsqr"), "y3"),
        (LDA(solver="lsqr", shrinkage="auto"), "y"),
        (LDA(solver="lsqr", shrinkage=0.7), "y3"),
        (RidgeClassifier(alpha=3.0), "y"),
        (RidgeClassifier(fit_intercept=False), "y3"),
        (Ridge(alpha=0.5), "target"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_batched_fit_equals_scikit_learn(data, est, labels):
    X, y, y3, target = data
    yy = {"y": y, "y3": y3, "target": target}[labels]
    stack = _batched_fit(est, np.ascontiguousarray(X.transpose(2, 0, 1)), yy)
    coef, icpt = _per_time(est, X, yy)
    np.testing.assert_allclose(stack.coef, coef, rtol=1e-8, atol=1e-10 * np.abs(coef).max())
    np.testing.assert_allclose(stack.intercept, icpt, rtol=1e-8, atol=1e-10 * np.abs(icpt).max())


def test_lda_batched_fit_on_rank_deficient_data(data):
    # average reference (rank n_channels - 1), a constant channel and fewer epochs than channels
    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 8, 5))
    y = np.tile([0, 1, 2], 10)
    for case in (X - X.mean(axis=1, keepdims=True), np.concatenate([X, np.ones((30, 1, 5))], axis=1), X[:6]):
        yy = y[: len(case)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coef, icpt = _per_time(LDA(), case, yy)
        stack = _batched_fit(LDA(), np.ascontiguousarray(case.transpose(2, 0, 1)), yy)
        np.testing.assert_allclose(stack.coef, coef, rtol=1e-8, atol=1e-9 * np.abs(coef).max())
        np.testing.assert_allclose(stack.intercept, icpt, rtol=1e-8, atol=1e-9 * np.abs(icpt).max())


def test_scaler_pipeline_folds_into_coefficients(data):
    X, y, _, _ = data
    est = make_pipeline(StandardScaler(), LinearSVC())
    dec = SlidingDecoder(est).fit(X, y)
    assert dec.estimators_ is not None and dec.coef_.shape == (12, 1, 6)
    for t in (0, 7):
        np.testing.assert_allclose(dec.decision_function(X)[:, t], dec.estimators_[t].decision_function(X[:, :, t]))
    batched = SlidingDecoder(make_pipeline(StandardScaler(), LDA())).fit(X, y)
    assert batched.estimators_ is None
    ref = make_pipeline(StandardScaler(), LDA()).fit(X[:, :, 4], y)
    np.testing.assert_allclose(batched.decision_function(X)[:, 4], ref.decision_function(X[:, :, 4]), rtol=1e-9)


def test_generalizing_blocks_give_the_same_scores(data, monkeypatch):
    X, y, _, _ = data
    whole = GeneralizingDecoder(LDA(), scoring="roc_auc").fit(X, y)
    expected = whole.score(X, y)
    monkeypatch.setattr(time_resolved, "_BLOCK_BYTES", 1)  # one training time per block
    np.testing.assert_array_equal(whole.score(X, y), expected)
    np.testing.assert_array_equal(whole._train_blocks(X)[1], slice(1, 2))


def test_generalizing_to_other_test_lengths(data):
    X, y, _, _ = data
    dec = GeneralizingDecoder(LDA()).fit(X, y)
    assert dec.score(X[:, :, :5], y).shape == (12, 5)
    with pytest.raises(ShapeError, match="time point"):
        SlidingDecoder(LDA()).fit(X, y).score(X[:, :, :5], y)


# --------------------------------------------------------------------------- inputs


def test_braindata_and_mne_epochs_inputs(data):
    X, y, _, _ = data
    bd = make_braindata(n_obs=48, n_features=6, n_times=12, n_runs=4)
    bd.data[:] = X
    bd.obs["condition"] = y
    by_run = cross_val_time_score(SlidingDecoder(LDA()), bd, groups="run", cv=LeaveOneGroupOut())
    ref = cross_val_time_score(SlidingDecoder(LDA()), X, y, groups=bd.obs["run"], cv=LeaveOneGroupOut())
    assert by_run.shape == (4, 12)
    np.testing.assert_array_equal(by_run, ref)
    epochs = bd.to_mne()
    codes = epochs.events[:, 2]
    got = cross_val_time_score(GeneralizingDecoder(LDA()), epochs, cv=CV)
    want = cross_val_time_score(GeneralizingDecoder(LDA()), X, codes, cv=CV)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert SlidingDecoder(LDA()).fit(bd).score(bd).shape == (12,)


def test_group_kfold_keeps_groups_apart(data):
    X, y, _, _ = data
    groups = np.repeat(np.arange(6), 8)
    scores = cross_val_time_score(SlidingDecoder(LDA()), X, y, groups=groups, cv=GroupKFold(3))
    assert scores.shape == (3, 12)


def test_custom_scorer_uses_fitted_estimators(data):
    X, y, _, _ = data

    def first_class_rate(est, Xt, yt):
        return float(np.mean(est.predict(Xt) == "left"))

    sliding = SlidingDecoder(LDA(), scoring=first_class_rate).fit(X, y)
    ref = SlidingEstimator(LDA(), scoring=first_class_rate, verbose=False).fit(X, y)
    np.testing.assert_allclose(sliding.score(X, y), ref.score(X, y))
    # MNE 1.13's GeneralizingEstimator swaps such a scorer for accuracy; compare with the definition
    dec = GeneralizingDecoder(LDA(), scoring=first_class_rate).fit(X, y)
    assert dec.estimators_ is not None
    want = [[first_class_rate(dec.estimators_[t], X[:, :, u], y) for u in range(12)] for t in range(12)]
    np.testing.assert_allclose(dec.score(X, y), want)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def physionet_lr(eegbci_dir):
    from neuroenc.io import read_eeg

    runs = [3, 4, 7, 8, 11, 12]  # executed and imagined left/right fist
    return read_eeg(
        [eegbci_dir / f"S001R{r:02d}.edf" for r in runs],
        {"left": "T1", "right": "T2"},
        tmin=-0.2,
        tmax=0.8,
        baseline=(None, 0.0),
        resample=40.0,
        runs=runs,
    )


def test_physionet_target_side_decoding_equals_mne(physionet_lr):
    # the target appears left or right on the screen: a lateralised visual response
    cv = LeaveOneGroupOut()
    est = LDA(solver="lsqr", shrinkage="auto")
    ours = cross_val_time_score(SlidingDecoder(est, scoring="roc_auc"), physionet_lr, groups="run", cv=cv)
    times = physionet_lr.times
    window = (times >= 0.1) & (times <= 0.5)  # time points are independent: MNE on a window is enough
    X, y, runs = physionet_lr.data[..., window], physionet_lr.conditions, physionet_lr.obs["run"].to_numpy()
    ref = cross_val_multiscore(SlidingEstimator(est, scoring="roc_auc", verbose=False), X, y, groups=runs, cv=cv)
    np.testing.assert_allclose(ours[:, window], ref, rtol=1e-10)
    auc = ours.mean(axis=0)
    assert auc[(times >= 0.2) & (times <= 0.45)].max() > 0.9  # 0.98 at 0.3 s
    assert auc[times < 0].mean() < 0.65  # baseline: chance


def test_eeglab_recording_as_mne_epochs_equals_mne(mne_formats_dir):
    from scipy.io import loadmat

    path = mne_formats_dir / "EEGLAB" / "test_raw.set"
    raw = mne.io.read_raw_eeglab(path, preload=True, verbose="error")
    # 80 'square' stimuli at position 1 or 2; the position is only in the EEGLAB event table
    table = loadmat(path, squeeze_me=True, struct_as_record=False)["EEG"].event
    squares = [(int(round(e.latency)) - 1, int(e.position)) for e in table if e.type == "square"]
    events = np.array([[s, 0, p] for s, p in squares])
    epochs = mne.Epochs(raw, events, tmin=-0.1, tmax=0.5, baseline=None, decim=4, preload=True, verbose="error")
    assert len(epochs) == 80 and set(epochs.events[:, 2]) == {1, 2}
    ours = cross_val_time_score(GeneralizingDecoder(LDA(), scoring="roc_auc"), epochs, cv=CV)
    ref = _mne_scores(GeneralizingEstimator, LDA(), "roc_auc", epochs.get_data(), epochs.events[:, 2])
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise(data):
    X, y, _, _ = data
    with pytest.raises(ShapeError, match="dimension"):
        SlidingDecoder(LDA()).fit(X[:, :, 0], y)
    with pytest.raises(LabelError, match="48 epochs"):
        SlidingDecoder(LDA()).fit(X, y[:-1])
    with pytest.raises(LabelError, match="y is required"):
        SlidingDecoder(LDA()).fit(X)
    bad = X.copy()
    bad[3, 2, 1] = np.inf
    with pytest.raises(NonFiniteError, match="Inf"):
        GeneralizingDecoder(LDA()).fit(bad, y)
    with pytest.raises(TypeError, match="estimator"):
        SlidingDecoder("lda").fit(X, y)
    with pytest.raises(ValueError, match="scoring|scorer"):
        SlidingDecoder(LDA(), scoring="not_a_metric").fit(X, y)
    dec = SlidingDecoder(LDA()).fit(X, y)
    with pytest.raises(ShapeError, match="channel"):
        dec.predict(X[:, :3])
    with pytest.raises(LabelError, match="BrainData"):
        cross_val_time_score(dec, X, y, groups="run")
    bd = make_braindata(n_obs=48, n_features=6, n_times=12)
    with pytest.raises(UnknownNameError, match="session"):
        cross_val_time_score(dec, bd, groups="session")
    with pytest.raises(TypeError, match="decoder"):
        cross_val_time_score(LDA(), X, y)
    with pytest.raises(AttributeError, match="predict_proba"):
        SlidingDecoder(RidgeClassifier()).fit(X, y).predict_proba(X)
