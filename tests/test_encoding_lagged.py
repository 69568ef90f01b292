"""Lagged designs and TRFs: parity with MNE's ReceptiveField, segments, sklearn API, grasshopper spikes."""

from __future__ import annotations

import mne
import numpy as np
import pytest
from mne.decoding import ReceptiveField
from mne.decoding.receptive_field import _delay_time_series
from scipy import signal
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline

from neuroenc.encoding.lagged import TRF, LaggedFeatures, _lagged_cross, _lagged_design, _lagged_gram, lag_samples
from neuroenc.errors import DataError, LabelError, NonFiniteError, ShapeError, UnknownNameError
from neuroenc.io import read_spikes
from tests.conftest import make_braindata

RTOL = 1e-8


@pytest.fixture(autouse=True)
def _quiet_mne():
    with mne.utils.use_log_level("error"):  # TimeDelayingRidge logs a progress bar
        yield


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _mne(X: np.ndarray) -> np.ndarray:
    """(epochs, times, channels) -> MNE's (times, epochs, channels)."""
    return X.transpose(1, 0, 2)


@pytest.fixture(scope="module")
def epochs_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 240, 3)) + 0.5
    kernel = rng.standard_normal((2, 3, 13))
    y = np.stack([sum(signal.lfilter(kernel[o, f], 1, x[:, f]) for f in range(3)) for x in X for o in range(2)])
    y = y.reshape(6, 2, 240).transpose(0, 2, 1) + 0.3 * rng.standard_normal((6, 240, 2)) + 1.0
    return X, y


# --------------------------------------------------------------------------- designs


@pytest.mark.parametrize("tmin, tmax", [(-3, 4), (2, 6), (-6, -2), (0, 0), (-2, 0), (0, 3), (-12, 14)])
def test_lagged_gram_and_cross_equal_explicit_design(tmin, tmax):
    # segments shorter than the lags included: nothing may leak across their edges
    rng = np.random.default_rng(1)
    delays = lag_samples(tmin, tmax)
    segs = [rng.standard_normal((n, 3)) for n in (40, 5, 17, 1)]
    ys = [rng.standard_normal((len(s), 2)) for s in segs]
    Z = _lagged_design(segs, delays, "zero")
    np.testing.assert_allclose(_lagged_gram(segs, delays), Z.T @ Z, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_lagged_cross(segs, ys, delays), Z.T @ np.concatenate(ys), rtol=0, atol=1e-12)


def test_lagged_design_matches_mne_delays_per_epoch():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 30, 2)) + 3.0
    for fill, fill_mean in (("zero", False), ("mean", True)):
        ref = _delay_time_series(_mne(X), -0.2, 0.3, 10.0, fill_mean=fill_mean)  # (times, epochs, ch, lags)
        ref = ref.transpose(1, 0, 2, 3).reshape(4 * 30, -1)
        ours = LaggedFeatures(-0.2, 0.3, 10.0, fill=fill).fit_transform(X)
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_lagged_features_layouts_and_names():
    x = np.arange(1.0, 6.0)
    lf = LaggedFeatures(-1, 1).fit(x)
    np.testing.assert_array_equal(lf.delays_, [-1, 0, 1])
    np.testing.assert_array_equal(lf.transform(x)[:, 0], [2, 3, 4, 5, 0])  # x[t + 1]
    # a list of segments equals the segments lagged separately
    segs = [np.arange(4.0)[:, None], np.arange(10.0, 13.0)[:, None]]
    both = LaggedFeatures(0, 2).fit_transform(segs)
    np.testing.assert_array_equal(both[4:], LaggedFeatures(0, 2).fit_transform(segs[1]))
    assert both[4, 1] == 0  # no lag reaches back into the first segment
    assert list(lf.get_feature_names_out(["env"])) == ["env@-1", "env@0", "env@1"]


# --------------------------------------------------------------------------- MNE parity


@pytest.mark.parametrize("estimator", [10.0, 0.0, Ridge(alpha=10.0), Ridge(alpha=3.0, fit_intercept=False)])
def test_trf_coefficients_equal_mne(epochs_data, estimator):
    X, y = epochs_data
    rf = ReceptiveField(-0.05, 0.1, 100.0, estimator=estimator).fit(_mne(X), _mne(y))
    trf = TRF(-0.05, 0.1, 100.0, estimator=estimator).fit(X, y)
    assert trf.coef_.shape == (2, 3, 16)
    assert _rel(trf.coef_, rf.coef_) < RTOL
    valid = rf.valid_samples_
    ref_pred = _mne(rf.predict(_mne(X)))
    assert _rel(trf.predict(X)[:, valid], ref_pred[:, valid]) < RTOL
    rf.scoring = trf.scoring = "r2"
    np.testing.assert_allclose(trf.score(X, y, multioutput="raw_values"), rf.score(_mne(X), _mne(y)), rtol=1e-10)
    rf.scoring = trf.scoring = "corrcoef"
    np.testing.assert_allclose(trf.score(X, y, multioutput="raw_values"), rf.score(_mne(X), _mne(y)), rtol=1e-10)


def test_trf_continuous_single_target_equals_mne(epochs_data):
    X, y = epochs_data[0][0], epochs_data[1][0, :, 0]
    rf = ReceptiveField(0.0, 0.2, 100.0, estimator=1.0).fit(X, y)
    trf = TRF(0.0, 0.2, 100.0, estimator=1.0).fit(X, y)
    assert _rel(trf.coef_[0], rf.coef_) < RTOL
    assert trf.predict(X).shape == (240,)


def test_backward_model_is_mne_with_negated_lags(epochs_data):
    # reconstruct the stimulus from the responses in [t + 0, t + 0.12 s]
    X, y = epochs_data
    rf = ReceptiveField(-0.12, 0.0, 100.0, estimator=5.0).fit(_mne(y), _mne(X))
    trf = TRF(0.0, 0.12, 100.0, estimator=5.0, direction="backward").fit(y, X)
    assert _rel(trf.coef_, rf.coef_[..., ::-1]) < RTOL
    np.testing.assert_array_equal(trf.delays_, -lag_samples(0.0, 0.12, 100.0))
    np.testing.assert_allclose(trf.lags_, np.arange(13) / 100.0)
    rf.scoring = "corrcoef"
    np.testing.assert_allclose(trf.score(y, X, multioutput="raw_values"), rf.score(_mne(y), _mne(X)), rtol=1e-10)


def test_ragged_segments_equal_explicit_ridge():
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((n, 2)) for n in (50, 31, 77)]
    ys = [rng.standard_normal(len(x)) for x in xs]
    trf = TRF(-2, 3, estimator=4.0).fit(xs, ys)
    Z = _lagged_design([x - np.concatenate(xs).mean(0) for x in xs], lag_samples(-2, 3), "zero")
    yc = np.concatenate(ys) - np.concatenate(ys).mean()
    ref = np.linalg.solve(Z.T @ Z + 4.0 * np.eye(12), Z.T @ yc).reshape(2, 6)
    assert _rel(trf.coef_[0], ref) < RTOL
    pred = trf.predict(xs)
    assert isinstance(pred, list) and [len(p) for p in pred] == [50, 31, 77]


def test_braindata_input_is_transposed_epochs(epochs_data):
    X, y = epochs_data
    bd = make_braindata(n_obs=6, n_features=2, n_times=240)
    bd.data[:] = y.transpose(0, 2, 1)
    a = TRF(-0.05, 0.1, 100.0, estimator=2.0).fit(X, bd)
    b = TRF(-0.05, 0.1, 100.0, estimator=2.0).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-12)


# --------------------------------------------------------------------------- scikit-learn API


def test_trf_in_gridsearch_and_cross_val(epochs_data):
    X, y = epochs_data
    search = GridSearchCV(TRF(-0.05, 0.1, 100.0), {"estimator": [0.1, 10.0, 1e5]}, cv=KFold(3)).fit(X, y)
    assert search.best_params_["estimator"] in (0.1, 10.0)
    scores = cross_val_score(TRF(-0.05, 0.1, 100.0, estimator=Ridge(1.0)), X, y, cv=KFold(3))
    assert scores.shape == (3,) and np.all(scores > 0.3)
    inner = GridSearchCV(TRF(-0.05, 0.1, 100.0, estimator=Ridge()), {"estimator__alpha": [1.0, 1e6]}, cv=3).fit(X, y)
    assert inner.best_params_ == {"estimator__alpha": 1.0}


def test_lagged_features_in_pipeline_equal_trf(epochs_data):
    X, y = epochs_data[0][0], epochs_data[1][0]
    pipe = make_pipeline(LaggedFeatures(-0.05, 0.1, 100.0, fill="mean"), Ridge(2.0)).fit(X, y)
    trf = TRF(-0.05, 0.1, 100.0, estimator=Ridge(2.0)).fit(X, y)
    np.testing.assert_allclose(pipe[-1].coef_.reshape(trf.coef_.shape), trf.coef_, rtol=1e-12)
    search = GridSearchCV(pipe, {"laggedfeatures__tmax": [0.0, 0.1]}, cv=KFold(3)).fit(X, y)
    assert search.best_params_["laggedfeatures__tmax"] == 0.1


def test_trf_with_neuroenc_ridgecv(epochs_data):
    from neuroenc.encoding.ridge import RidgeCV

    X, y = epochs_data
    trf = TRF(-0.05, 0.1, 100.0, estimator=RidgeCV(alphas=[1.0, 100.0])).fit(X, y)
    assert trf.coef_.shape == (2, 3, 16) and trf.estimator_.alpha_.shape == (2,)


# --------------------------------------------------------------------------- real data


def test_grasshopper_spikes_from_stimulus_envelope(nitime_dir):
    stim = np.loadtxt(nitime_dir / "grasshopper_stimulus1.txt")[:, 1]  # 20 kHz amplitude envelope
    env = signal.decimate(stim, 20, ftype="fir", zero_phase=True)  # -> 1 kHz
    spikes = np.loadtxt(nitime_dir / "grasshopper_spike_times1.txt")
    binned = read_spikes(spikes, np.arange(10) * 1e6, [f"s{i}" for i in range(10)], 0.0, 1.0, 1e-3, time_unit="us")
    X, y = env.reshape(10, 1000, 1), binned.data[:, 0, :]  # ten 1-s segments, 1-ms bins
    scores = cross_val_score(TRF(-0.005, 0.03, 1000.0, estimator=10.0), X, y, cv=KFold(5))
    assert scores.min() > 0.25  # held-out correlation of every fold (about 0.35)
    trf = TRF(-0.005, 0.03, 1000.0, estimator=10.0).fit(X, y)
    peak = trf.lags_[np.argmax(trf.coef_[0, 0])]
    assert 0.002 <= peak <= 0.01  # receptor latency of a few ms, never acausal


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_before_work():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((100, 2)), rng.standard_normal(100)
    with pytest.raises(ShapeError, match="tmin"):
        TRF(0.3, 0.1, 100.0).fit(X, y)
    with pytest.raises(ShapeError, match="sfreq"):
        TRF(0.0, 0.1, -1.0).fit(X, y)
    with pytest.raises(UnknownNameError, match="direction"):
        TRF(0.0, 0.1, 100.0, direction="sideways").fit(X, y)
    with pytest.raises(UnknownNameError, match="scoring"):
        TRF(0.0, 0.1, 100.0, scoring="mse").fit(X, y)
    with pytest.raises(UnknownNameError, match="fill"):
        LaggedFeatures(0, 1, fill="nan").fit(X)
    with pytest.raises(TypeError, match="regressor"):
        TRF(0.0, 0.1, 100.0, estimator="ridge").fit(X, y)
    with pytest.raises(DataError, match="fit_intercept"):
        TRF(0.0, 0.1, 100.0, estimator=Ridge(fit_intercept=False), fit_intercept=True).fit(X, y)
    with pytest.raises(ShapeError, match="alpha"):
        TRF(0.0, 0.1, 100.0, estimator=-1.0).fit(X, y)
    with pytest.raises(LabelError, match="samples"):
        TRF(0.0, 0.1, 100.0).fit(X, y[:-1])
    with pytest.raises(LabelError, match="segment"):
        TRF(0.0, 0.1, 100.0).fit([X, X], [y])
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(NonFiniteError, match="NaN"):
        TRF(0.0, 0.1, 100.0).fit(bad, y)
    with pytest.raises(ShapeError, match="channels"):
        TRF(0.0, 0.1, 100.0).fit([X, X[:, :1]], [y, y])
    trf = TRF(0.0, 0.1, 100.0, estimator=1.0).fit(X, y)
    with pytest.raises(ShapeError, match="channel"):
        trf.predict(X[:, :1])
    with pytest.raises(ShapeError, match="too short"):
        trf.score(X[:5], y[:5])
