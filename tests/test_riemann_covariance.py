"""Covariance estimation (neuroenc.riemann.covariance): parity with pyRiemann 0.12, MOABB and MNE."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest
from moabb.pipelines.features import AugmentedDataset
from pyriemann.classification import MDM
from pyriemann.estimation import Covariances as PyrCovariances
from pyriemann.estimation import Shrinkage as PyrShrinkage
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.pipeline import make_pipeline

import neuroenc
from neuroenc.datasets.local import load_physionet_mi
from neuroenc.errors import DataError, LabelError, NonFiniteError, NotSPDError, ShapeError, UnknownNameError
from neuroenc.riemann import (
    COVARIANCE_ESTIMATORS,
    AugmentedCovariances,
    Covariances,
    FilterBankCovariances,
    augmented_covariances,
    covariances,
    select_order_lag,
)

SHARED = ["scm", "cov", "corr", "lwf", "oas", "sch"]  # estimators pyRiemann has under the same name


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def braindata(X: np.ndarray, sfreq: float = 100.0) -> neuroenc.BrainData:
    obs = pd.DataFrame({"condition": np.where(np.arange(len(X)) % 2, "a", "b")})
    return neuroenc.BrainData(X, obs, "eeg", features=[f"E{i}" for i in range(X.shape[1])], sfreq=sfreq)


@pytest.fixture(scope="module")
def physionet(eegbci_dir, data_dir) -> neuroenc.BrainData:
    return load_physionet_mi(subject=1, task="imagery_lr", data_dir=data_dir)


@pytest.fixture(scope="module")
def random_epochs() -> np.ndarray:
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((7, 7))
    X = np.einsum("ij,njt->nit", mixing, rng.standard_normal((30, 7, 250)))
    return X + 5.0 * rng.standard_normal((30, 7, 1))  # channel offsets, as in unfiltered EEG


# --------------------------------------------------------------------------
# parity with pyRiemann
# --------------------------------------------------------------------------
def test_estimator_names():
    assert set(SHARED) < set(COVARIANCE_ESTIMATORS)
    assert "shrunk" in COVARIANCE_ESTIMATORS


@pytest.mark.parametrize("estimator", SHARED)
def test_parity_with_pyriemann_random(random_epochs, estimator):
    ours = covariances(random_epochs, estimator)
    ref = PyrCovariances(estimator).transform(random_epochs)
    assert rel(ours, ref) < 1e-8
    assert rel(Covariances(estimator).fit_transform(random_epochs), ref) < 1e-8


@pytest.mark.parametrize("n_channels", [1, 2, 5])
@pytest.mark.parametrize("estimator", SHARED)
def test_parity_with_pyriemann_small(n_channels, estimator):
    X = np.random.default_rng(n_channels).standard_normal((4, n_channels, 40))
    assert rel(covariances(X, estimator), PyrCovariances(estimator).transform(X)) < 1e-8


@pytest.mark.parametrize("shrinkage", [0.0, 0.1, 0.7, 1.0])
def test_fixed_shrinkage_equals_pyriemann_shrinkage(random_epochs, shrinkage):
    ref = PyrShrinkage(shrinkage).transform(PyrCovariances("scm").transform(random_epochs))
    assert rel(covariances(random_epochs, "shrunk", shrinkage=shrinkage), ref) < 1e-8
    default = PyrShrinkage().transform(PyrCovariances("scm").transform(random_epochs))
    assert rel(covariances(random_epochs, "shrunk"), default) < 1e-8


@pytest.mark.parametrize("estimator", SHARED)
def test_parity_with_pyriemann_physionet(physionet, estimator):
    X = physionet.data
    assert X.shape == (45, 64, 641)
    assert rel(covariances(physionet, estimator), PyrCovariances(estimator).transform(X)) < 1e-8


def test_mdm_predictions_equal_on_physionet(physionet):
    X, y = physionet.data, physionet.obs["condition"].to_numpy()
    train, test = np.arange(45) % 3 != 0, np.arange(45) % 3 == 0
    ours, ref = covariances(physionet, "oas"), PyrCovariances("oas").transform(X)
    pred = MDM().fit(ours[train], y[train]).predict(ours[test])
    assert np.array_equal(pred, MDM().fit(ref[train], y[train]).predict(ref[test]))
    dist = MDM().fit(ours[train], y[train]).transform(ours[test])
    assert rel(dist, MDM().fit(ref[train], y[train]).transform(ref[test])) < 1e-6
    # the same through pipelines of the transformers, on 16 sensorimotor channels (faster Riemannian means)
    X16, cv = X[:, :16], StratifiedKFold(3)
    pipe_ours = cross_val_predict(make_pipeline(Covariances("lwf"), MDM()), X16, y, cv=cv)
    pipe_ref = cross_val_predict(make_pipeline(PyrCovariances("lwf"), MDM()), X16, y, cv=cv)
    assert np.array_equal(pipe_ours, pipe_ref)


# --------------------------------------------------------------------------
# input types
# --------------------------------------------------------------------------
def test_braindata_and_epochs_equal_array(random_epochs):
    bd = braindata(random_epochs)
    epochs = bd.to_mne()
    assert isinstance(epochs, mne.BaseEpochs)
    ref = covariances(random_epochs, "lwf")
    assert np.array_equal(covariances(bd, "lwf"), ref)
    assert rel(covariances(epochs, "lwf"), ref) < 1e-12
    aug = augmented_covariances(random_epochs, 3, 2, "oas")
    assert np.array_equal(AugmentedCovariances(3, 2, "oas").transform(bd), aug)
    assert rel(augmented_covariances(epochs, 3, 2, "oas"), aug) < 1e-12


def test_float32_and_int_input(random_epochs):
    X32 = random_epochs.astype(np.float32)
    assert rel(covariances(X32), covariances(X32.astype(np.float64))) < 1e-14
    Xi = np.round(random_epochs * 10).astype(np.int64)
    assert rel(covariances(Xi), PyrCovariances("scm").transform(Xi.astype(float))) < 1e-12


# --------------------------------------------------------------------------
# augmented covariance
# --------------------------------------------------------------------------
def delay_embed(X: np.ndarray, order: int, lag: int) -> np.ndarray:
    """Copy q = samples q*lag .. n_times - (order - q)*lag, stacked along channels."""
    if order == 1:
        return X
    n_times = X.shape[2]
    return np.concatenate([X[:, :, q * lag : n_times - (order - q) * lag] for q in range(order)], axis=1)


@pytest.mark.parametrize("order, lag", [(2, 1), (3, 5), (4, 2)])
def test_augmented_equals_explicit_embedding_and_moabb(random_epochs, order, lag):
    X = random_epochs
    n_channels = X.shape[1]
    ours = augmented_covariances(X, order, lag, "scm")
    assert ours.shape == (len(X), n_channels * order, n_channels * order)
    assert np.linalg.eigvalsh(ours).min() > 0
    emb = delay_embed(X, order, lag)
    ref = np.array([np.cov(e, bias=True) for e in emb])
    assert rel(ours, ref) < 1e-10
    moabb = AugmentedDataset(order=order, lag=lag).fit(X, None).transform(X)
    assert np.array_equal(moabb, emb)
    for estimator in ("scm", "lwf", "oas"):
        expected = PyrCovariances(estimator).transform(moabb)
        assert rel(augmented_covariances(X, order, lag, estimator), expected) < 1e-8
        assert rel(AugmentedCovariances(order, lag, estimator).fit_transform(X), expected) < 1e-8


def test_augmented_block_structure(random_epochs):
    # The (0, 0) block is the covariance of the first n_times - order*lag samples.
    X = random_epochs
    order, lag = 3, 4
    C = augmented_covariances(X, order, lag)
    n = X.shape[2] - order * lag
    assert rel(C[:, :7, :7], covariances(X[:, :, :n])) < 1e-12
    assert rel(C[:, 7:14, 7:14], covariances(X[:, :, lag : lag + n])) < 1e-12


@pytest.mark.parametrize("lag", [1, 7])
def test_order_one_is_plain_covariance(random_epochs, lag):
    for estimator in ("scm", "oas"):
        assert np.array_equal(
            augmented_covariances(random_epochs, 1, lag, estimator), covariances(random_epochs, estimator)
        )


def test_augmented_physionet_parity_with_moabb(physionet):
    X = physionet.data[:10, :16]
    expected = PyrCovariances("lwf").transform(AugmentedDataset(order=4, lag=2).transform(X))
    assert rel(augmented_covariances(X, 4, 2, "lwf"), expected) < 1e-8


def test_order_lag_errors(random_epochs):
    with pytest.raises(ShapeError, match="order=10 and lag=30.*250"):
        augmented_covariances(random_epochs, 10, 30)
    with pytest.raises(ShapeError, match="order must be at least 1"):
        augmented_covariances(random_epochs, 0, 1)
    with pytest.raises(ShapeError, match="lag must be an integer"):
        augmented_covariances(random_epochs, 2, 1.5)
    # enough samples for the embedding but not for an unregularised 7*40-square covariance
    with pytest.raises(NotSPDError, match="rank at most .*lwf"):
        augmented_covariances(random_epochs, 40, 5, "scm")
    assert augmented_covariances(random_epochs[:2], 40, 5, "oas").shape == (2, 280, 280)


# --------------------------------------------------------------------------
# filter bank
# --------------------------------------------------------------------------
def test_filter_bank_equals_mne_then_covariances(random_epochs):
    X = random_epochs
    bands = ((4.0, 8.0), (8.0, 13.0), (13.0, 30.0))
    fb = FilterBankCovariances(bands=bands, estimator="oas", sfreq=100.0)
    out = fb.fit_transform(X)
    assert out.shape == (len(X), 3, 7, 7)
    for b, (lo, hi) in enumerate(bands):
        filtered = mne.filter.filter_data(X, 100.0, lo, hi, verbose="error")
        assert rel(out[:, b], PyrCovariances("oas").transform(filtered)) < 1e-8
    # sampling rate from a BrainData; filter options reach MNE
    iir = {"method": "iir"}
    out_bd = FilterBankCovariances(bands=[(8, 12)], filter_kwargs=iir).transform(braindata(X))
    filtered = mne.filter.filter_data(X, 100.0, 8, 12, method="iir", verbose="error")
    assert rel(out_bd[:, 0], covariances(filtered)) < 1e-12


def test_filter_bank_errors(random_epochs):
    with pytest.raises(ShapeError, match="sfreq is needed"):
        FilterBankCovariances().transform(random_epochs)
    with pytest.raises(LabelError, match="sampled at 100"):
        FilterBankCovariances(sfreq=250.0).transform(braindata(random_epochs))
    with pytest.raises(ShapeError, match="Nyquist"):
        FilterBankCovariances(bands=[(8, 60)], sfreq=100.0).transform(random_epochs)
    with pytest.raises(ShapeError, match="below h_freq"):
        FilterBankCovariances(bands=[(12, 8)], sfreq=100.0).transform(random_epochs)
    with pytest.raises(DataError, match="may not set 'l_freq'"):
        FilterBankCovariances(sfreq=100.0, filter_kwargs={"l_freq": 1}).transform(random_epochs)


# --------------------------------------------------------------------------
# scikit-learn API
# --------------------------------------------------------------------------
def test_sklearn_api(random_epochs):
    for est in (
        Covariances("oas", n_jobs=1),
        AugmentedCovariances(order=2, lag=3, estimator="lwf"),
        FilterBankCovariances(bands=[(8, 12)], sfreq=100.0),
    ):
        params = est.get_params()
        twin = clone(est)
        assert twin.get_params() == params and twin is not est
        assert est.fit(random_epochs) is est
    est = Covariances().set_params(estimator="corr")
    assert est.estimator == "corr"
    assert np.allclose(np.diagonal(est.transform(random_epochs), axis1=1, axis2=2), 1.0)


def test_pipeline_and_grid_search(random_epochs):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 4, 120))
    y = np.repeat([0, 1], 20)
    X[y == 1, 1] += 0.8 * X[y == 1, 0]  # class 1: channels 0 and 1 correlate
    pipe = make_pipeline(AugmentedCovariances(estimator="oas"), MDM())
    grid = GridSearchCV(pipe, {"augmentedcovariances__order": [1, 2], "augmentedcovariances__lag": [1, 3]}, cv=3)
    grid.fit(X, y)
    assert grid.best_score_ > 0.9
    assert cross_val_score(make_pipeline(Covariances("scm"), MDM()), X, y, cv=3).mean() > 0.9


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
def test_rank_deficient_trial_is_named(random_epochs):
    X = random_epochs.copy()
    X[3, 5] = X[3, 2]  # duplicated channel in trial 3
    for estimator in ("scm", "cov", "corr"):
        with pytest.raises(NotSPDError, match=r"X\[3\].*channel 5.*linear combination.*'lwf' or 'oas'"):
            covariances(X, estimator)
    for estimator in ("lwf", "oas", "sch", "shrunk"):
        assert np.linalg.eigvalsh(covariances(X, estimator)[3]).min() > 0
    bd = braindata(X)
    with pytest.raises(NotSPDError, match=r"X\[3\]: .*channel 5 \('E5'\)"):
        covariances(bd)
    with pytest.raises(NotSPDError, match=r"X\[3\]: .*channel 5 shifted by 0 samples \(row 5 of the embedding\)"):
        augmented_covariances(X, 2, 3)


def test_average_reference_is_rank_deficient(random_epochs):
    X = random_epochs - random_epochs.mean(axis=1, keepdims=True)
    with pytest.raises(NotSPDError, match=r"X\[0\].*channel 6.*30 of 30 trial"):
        covariances(X)


def test_constant_channel_is_named(random_epochs):
    X = random_epochs.copy()
    X[4, 1] = 2.5
    with pytest.raises(NotSPDError, match=r"X\[4\]: channel 1 is constant.*'lwf' or 'oas'"):
        covariances(X)
    with pytest.raises(NotSPDError, match=r"X\[4\]: channel 1 is constant"):
        covariances(X, "sch")  # its target is the diagonal
    assert np.linalg.eigvalsh(covariances(X, "lwf")[4]).min() > 0
    X[6] = 1.0
    with pytest.raises(NotSPDError, match=r"X\[6\] is constant on every channel"):
        covariances(X, "oas")


def test_fewer_samples_than_channels(random_epochs):
    X = random_epochs[:, :, :6]
    with pytest.raises(NotSPDError, match=r"X\[0\].*6 time samples and 7 channels.*'lwf' or 'oas'"):
        covariances(X)
    assert np.linalg.eigvalsh(covariances(X, "lwf")).min() > 0
    assert rel(covariances(X, "oas"), PyrCovariances("oas").transform(X)) < 1e-8


def test_nonfinite_position(random_epochs):
    X = random_epochs.copy()
    X[2, 3, 17] = np.nan
    with pytest.raises(NonFiniteError, match=r"NaN at index \(2, 3, 17\)"):
        covariances(X)
    X[2, 3, 17] = np.inf
    with pytest.raises(NonFiniteError, match=r"Inf at index \(2, 3, 17\)"):
        augmented_covariances(X, 2, 2, "lwf")


def test_bad_shapes_and_names(random_epochs):
    with pytest.raises(ShapeError, match="2 dimension"):
        covariances(random_epochs[0])
    with pytest.raises(ShapeError, match="complex"):
        covariances(random_epochs * (1 + 1j))
    with pytest.raises(ShapeError, match="at least one channel"):
        covariances(np.zeros((3, 0, 10)))
    with pytest.raises(ShapeError, match="leaving 1"):
        covariances(random_epochs[:, :, :1], "lwf")
    with pytest.raises(UnknownNameError, match="'scm', 'cov', 'corr', 'lwf', 'oas', 'sch', 'shrunk'"):
        covariances(random_epochs, "ledoit")
    with pytest.raises(UnknownNameError, match="choose one of"):
        Covariances("mcd").fit_transform(random_epochs)
    with pytest.raises(UnknownNameError, match="must be a name"):
        covariances(random_epochs, np.cov)
    with pytest.raises(DataError, match="only used by estimator='shrunk'"):
        covariances(random_epochs, "lwf", shrinkage=0.2)
    with pytest.raises(ShapeError, match=r"\[0, 1\]"):
        covariances(random_epochs, "shrunk", shrinkage=1.5)


# --------------------------------------------------------------------------
# order/lag selection
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lagged_classes() -> tuple[np.ndarray, np.ndarray]:
    """Class information only in a 3-sample lagged correlation: invisible to the plain covariance."""
    rng = np.random.default_rng(2)
    n_trials, n_times = 60, 203
    y = np.repeat([0, 1], n_trials // 2)
    src = rng.standard_normal((n_trials, n_times + 3))
    sign = np.where(y == 0, 1.0, -1.0)[:, None]
    X = np.stack([src[:, 3:], sign * src[:, :-3] + 0.5 * rng.standard_normal((n_trials, n_times))], axis=1)
    X = np.concatenate([X, rng.standard_normal((n_trials, 1, n_times))], axis=1)
    return X, y


def test_select_order_lag_finds_the_lag(lagged_classes):
    X, y = lagged_classes
    best, table = select_order_lag(X, y, orders=(1, 2, 3), lags=(1, 2, 3), cv=3)
    assert list(table.columns) == ["order", "lag", "n_samples", "score_mean", "score_std", "scores", "note"]
    assert len(table) == 1 + 2 * 3  # order 1 once
    assert table.loc[table.order == 1, "score_mean"].iloc[0] < 0.8
    best_row = table[(table.order == best[0]) & (table.lag == best[1])].iloc[0]
    assert best_row.score_mean == table.score_mean.max() > 0.95
    assert (best[0] - 1) * best[1] >= 3 and 3 % best[1] == 0  # the embedding spans the 3-sample lag


def test_select_order_lag_with_pyriemann_classifier(lagged_classes):
    X, y = lagged_classes
    best, table = select_order_lag(X, y, orders=(1, 2), lags=(3,), cv=3, classifier=MDM(), estimator="lwf")
    cv = StratifiedKFold(3)
    manual = cross_val_score(MDM(), PyrCovariances("lwf").transform(AugmentedDataset(2, 3).transform(X)), y, cv=cv)
    row = table[(table.order == 2) & (table.lag == 3)].iloc[0]
    assert np.allclose(row.scores, manual)
    assert best == (2, 3)


def test_select_order_lag_skips_infeasible_pairs(lagged_classes):
    X, y = lagged_classes
    best, table = select_order_lag(X[:, :, :40], y, orders=(1, 12), lags=(1, 4), cv=3, estimator="scm")
    notes = dict(zip(zip(table.order, table.lag), table.note))
    assert "leaves 0 of 40 samples" in notes[(12, 4)]
    assert "singular 'scm'" in notes[(12, 1)]
    assert best == (1, 1)
    with pytest.raises(ShapeError, match="No \\(order, lag\\) pair"):
        select_order_lag(X[:, :, :40], y, orders=(12,), lags=(4,), cv=3)


def test_select_order_lag_label_column_and_errors(lagged_classes):
    X, y = lagged_classes
    bd = braindata(X)
    bd.obs["label"] = y
    best, _ = select_order_lag(bd, "label", orders=(2,), lags=(3,), cv=3)
    assert best == (2, 3)
    with pytest.raises(LabelError, match="not a column"):
        select_order_lag(bd, "nope", orders=(2,), lags=(3,))
    with pytest.raises(LabelError, match="y has 59 entries"):
        select_order_lag(X, y[:-1], orders=(2,), lags=(3,))
