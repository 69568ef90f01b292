"""Spectral and connectivity features (neuroenc.riemann.spectral).

References on the same inputs: scipy.signal.welch / MNE multitaper for band
power, pyRiemann 0.12 ``Coherences`` and ``coherence`` for (imaginary)
coherence, scipy.signal.coherence / csd for a channel pair, and loop-based
implementations written here (scipy.signal.butter + sosfiltfilt + hilbert)
for the phase-locking value and amplitude-envelope correlation.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_braindata
from pyriemann.classification import MDM
from pyriemann.estimation import Coherences
from pyriemann.geometry.covariance import coherence as pyr_coherence
from pyriemann.tangentspace import TangentSpace
from scipy import signal
from sklearn.base import clone
from sklearn.covariance import shrunk_covariance
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from neuroenc import BrainData
from neuroenc.datasets import load_physionet_mi
from neuroenc.errors import DataError, LabelError, NonFiniteError, NotSPDError, ShapeError, UnknownNameError
from neuroenc.riemann import BandPower, Connectivity, band_power, connectivity
from neuroenc.validation import check_spd

SFREQ = 250.0
RTOL = 1e-8


def rel_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def noise():
    """Correlated coloured noise: 4 trials, 5 channels, 1000 samples."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 5, 1000))
    X[:, 1] += 0.6 * X[:, 0] + 0.4 * np.roll(X[:, 0], 2, axis=-1)  # lagged coupling: non-zero imcoh
    X[:, 3] += np.cumsum(rng.standard_normal((4, 1000)), axis=-1) * 0.05  # a slow drift
    return X


def welch_reference(X, sfreq, bands, aggregate="mean", relative=False, **kw):
    freqs, psd = signal.welch(X, fs=sfreq, **kw)
    cols = []
    for lo, hi in bands:
        mask = (freqs >= lo) & (freqs <= hi)
        if relative:
            cols.append(psd[..., mask].sum(-1) / psd.sum(-1))
        elif aggregate == "mean":
            cols.append(psd[..., mask].mean(-1))
        else:
            cols.append(psd[..., mask].sum(-1) * (freqs[1] - freqs[0]))
    return np.stack(cols, axis=-1).reshape(len(X), -1)


# ----------------------------------------------------------------------------
# band power against scipy.signal.welch and MNE


BANDS = [(0.0, 4.0), (8.0, 12.0), (12.0, 30.0), (100.0, 125.0)]  # DC and Nyquist bins included


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"nperseg": 128, "noverlap": 100},
        {"nperseg": 101, "nfft": 256, "detrend": "linear"},
        {"nperseg": 101, "noverlap": 33},  # odd nfft: no Nyquist bin
        {"window": ("tukey", 0.3), "nperseg": 200, "detrend": False},
        {"window": np.hamming(150)},
        {"average": "median"},  # scipy's own path
    ],
)
@pytest.mark.parametrize("aggregate,relative", [("mean", False), ("integral", False), ("mean", True)])
def test_band_power_matches_scipy_welch(noise, kw, aggregate, relative):
    ours = band_power(noise, SFREQ, BANDS, aggregate=aggregate, relative=relative, **kw)
    ref = welch_reference(noise, SFREQ, BANDS, aggregate, relative, **kw)
    assert ours.shape == (4, 5 * len(BANDS))
    assert rel_diff(ours, ref) < 1e-10


def test_band_power_log_and_channel_major_order(noise):
    ours = band_power(noise, SFREQ, [(8, 12), (12, 30)], log=True)
    ref = np.log10(welch_reference(noise, SFREQ, [(8, 12), (12, 30)]))
    assert rel_diff(ours, ref) < 1e-10
    cube = ours.reshape(4, 5, 2)
    single = band_power(noise[:, 2:3], SFREQ, (12, 30), log=True)  # a bare pair is one band
    np.testing.assert_allclose(cube[:, 2, 1], single[:, 0], rtol=1e-12)


def test_band_power_multitaper_matches_mne(noise):
    from mne.time_frequency import psd_array_multitaper

    ours = band_power(noise, SFREQ, [(8, 12), (12, 30)], method="multitaper", bandwidth=4.0)
    psd, freqs = psd_array_multitaper(noise, SFREQ, bandwidth=4.0, verbose="error")
    ref = np.stack([psd[..., (freqs >= lo) & (freqs <= hi)].mean(-1) for lo, hi in [(8, 12), (12, 30)]], -1)
    assert rel_diff(ours, ref.reshape(4, -1)) < 1e-10


def test_band_power_sees_a_known_oscillation():
    t = np.arange(2000) / SFREQ
    rng = np.random.default_rng(1)
    X = 0.1 * rng.standard_normal((3, 2, t.size))
    X[:, 0] += np.sin(2 * np.pi * 10 * t)  # 10 Hz on channel 0, 20 Hz on channel 1
    X[:, 1] += np.sin(2 * np.pi * 20 * t)
    rel = band_power(X, SFREQ, {"alpha": (8, 12), "beta": (18, 22)}, relative=True).reshape(3, 2, 2)
    assert (rel[:, 0, 0] > 0.9).all() and (rel[:, 1, 1] > 0.9).all()
    assert (rel[:, 0, 1] < 0.05).all() and (rel[:, 1, 0] < 0.05).all()
    # The integral of the PSD over a band holding the whole tone is its power, 1/2.
    power = band_power(X, SFREQ, (5, 15), aggregate="integral")[:, 0]
    np.testing.assert_allclose(power, 0.5, rtol=0.05)


# ----------------------------------------------------------------------------
# coherence and imaginary coherence against pyRiemann and scipy


@pytest.mark.parametrize("window,overlap", [(128, 0.75), (64, 0.5), (256, 0.875)])
def test_coh_matches_pyriemann_coherences(noise, window, overlap):
    kw = {"window": np.hanning(window), "noverlap": window - int((1 - overlap) * window), "detrend": False}
    ref = Coherences(window=window, overlap=overlap, fmin=8, fmax=30, fs=SFREQ).transform(noise)
    per_bin = connectivity(noise, SFREQ, "coh", 8, 30, average=False, **kw)
    assert rel_diff(per_bin, ref) < RTOL
    assert rel_diff(connectivity(noise, SFREQ, "coh", 8, 30, **kw), ref.mean(-1)) < RTOL


def test_imcoh_squared_is_pyriemann_imaginary_coherence(noise):
    kw = {"window": np.hanning(100), "noverlap": 50, "detrend": False}
    ref, _ = pyr_coherence(noise, window=100, overlap=0.5, fmin=4, fmax=40, fs=SFREQ, coh="imaginary")
    ours = connectivity(noise, SFREQ, "imcoh", 4, 40, average=False, **kw)
    assert rel_diff(ours**2, ref) < RTOL
    # Signed: antisymmetric, zero diagonal, with the sign of Im(csd(x_i, x_j)).
    np.testing.assert_array_equal(ours, -ours.transpose(0, 2, 1, 3))
    assert (np.diagonal(ours, axis1=1, axis2=2) == 0).all()
    freqs, csd = signal.csd(noise[:, 0], noise[:, 1], fs=SFREQ, window=np.hanning(100), noverlap=50, detrend=False)
    band = (freqs >= 4) & (freqs <= 40)
    np.testing.assert_array_equal(np.sign(ours[:, 0, 1]), np.sign(csd.imag[:, band]))


@pytest.mark.parametrize(
    "kw",
    [
        {"nperseg": 128, "noverlap": 96},  # the defaults of connectivity
        {"nperseg": 100, "noverlap": 60, "nfft": 256, "detrend": "linear"},
        {"nperseg": 128, "noverlap": 64, "window": "hamming", "detrend": False},
    ],
)
def test_coh_pair_matches_scipy_coherence(noise, kw):
    ours = connectivity(noise, SFREQ, "coh", 8, 30, average=False, **kw)
    if kw["noverlap"] == 96:
        np.testing.assert_array_equal(connectivity(noise, SFREQ, "coh", 8, 30, average=False), ours)
    for i, j in [(0, 1), (2, 4)]:
        freqs, ref = signal.coherence(noise[:, i], noise[:, j], fs=SFREQ, **kw)
        band = (freqs >= 8) & (freqs <= 30)
        assert rel_diff(ours[:, i, j], ref[:, band]) < RTOL
        assert rel_diff(ours[:, j, i], ref[:, band]) < RTOL


# ----------------------------------------------------------------------------
# PLV and envelope correlation against a straightforward implementation


def reference_plv_envelope(X, sfreq, fmin, fmax, order=4):
    """Pair-by-pair PLV and envelope correlation, one channel at a time."""
    sos = signal.butter(order, [fmin, fmax], btype="bandpass", fs=sfreq, output="sos")
    n_trials, n_ch, _ = X.shape
    plv = np.empty((n_trials, n_ch, n_ch))
    env = np.empty((n_trials, n_ch, n_ch))
    for t in range(n_trials):
        analytic = [signal.hilbert(signal.sosfiltfilt(sos, X[t, c])) for c in range(n_ch)]
        for i in range(n_ch):
            for j in range(n_ch):
                dphi = np.angle(analytic[i]) - np.angle(analytic[j])
                plv[t, i, j] = np.abs(np.mean(np.exp(1j * dphi)))
                env[t, i, j] = np.corrcoef(np.abs(analytic[i]), np.abs(analytic[j]))[0, 1]
    return plv, env


@pytest.mark.parametrize("band,order", [((8.0, 30.0), 4), ((4.0, 8.0), 2)])
def test_plv_and_envelope_corr_match_reference(noise, band, order):
    plv_ref, env_ref = reference_plv_envelope(noise, SFREQ, *band, order=order)
    plv = connectivity(noise, SFREQ, "plv", *band, filter_order=order)
    env = connectivity(noise, SFREQ, "envelope_corr", *band, filter_order=order)
    assert rel_diff(plv, plv_ref) < 1e-10
    assert rel_diff(env, env_ref) < 1e-10


# ----------------------------------------------------------------------------
# synthetic signals with known coupling


def coupled_signals(n_trials=4, seconds=20.0, lag=np.pi / 3, seed=0):
    """Channels 0 and 1 share a 10 Hz oscillation, 1 lagging 0 by ``lag``; 2 and 3 are independent noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SFREQ)) / SFREQ
    X = rng.standard_normal((n_trials, 4, t.size))
    X[:, :2] *= 0.1
    phase0 = rng.uniform(0, 2 * np.pi, (n_trials, 1))
    X[:, 0] += np.cos(2 * np.pi * 10 * t + phase0)
    X[:, 1] += np.cos(2 * np.pi * 10 * t + phase0 - lag)
    return X


@pytest.mark.parametrize("lag", [np.pi / 3, np.pi / 2, -np.pi / 4])
def test_known_phase_lag(lag):
    X = coupled_signals(lag=lag)
    kw = {"nperseg": 250}
    coh = connectivity(X, SFREQ, "coh", 9, 11, **kw)
    imcoh = connectivity(X, SFREQ, "imcoh", 9, 11, **kw)
    plv = connectivity(X, SFREQ, "plv", 9, 11)
    assert (coh[:, 0, 1] > 0.95).all() and (plv[:, 0, 1] > 0.95).all()
    # S_01 = E[conj(X_0) X_1] ~ exp(-i lag): channel 1 lagging gives imcoh[0, 1] = -sin(lag).
    np.testing.assert_allclose(imcoh[:, 0, 1], -np.sin(lag), atol=0.03)
    np.testing.assert_allclose(imcoh[:, 1, 0], np.sin(lag), atol=0.03)


def test_independent_noise_is_near_zero():
    X = coupled_signals(seconds=30.0)
    for method, bound in [("coh", 0.05), ("imcoh", 0.1), ("plv", 0.1), ("envelope_corr", 0.1)]:
        mats = connectivity(X, SFREQ, method, 8, 30, nperseg=250)
        assert np.abs(mats[:, 2, 3]).mean() < bound, method
        assert np.abs(mats[:, 0, 2]).mean() < bound, method


def test_envelope_corr_of_shared_amplitude_modulation():
    rng = np.random.default_rng(3)
    t = np.arange(5000) / SFREQ
    envelope = 1 + 0.8 * np.sin(2 * np.pi * 0.5 * t)
    X = 0.05 * rng.standard_normal((3, 3, t.size))
    X[:, 0] += envelope * np.cos(2 * np.pi * 12 * t)
    X[:, 1] += envelope * np.cos(2 * np.pi * 14 * t + 1.0)  # other frequency, same envelope
    X[:, 2] += (1 + 0.8 * np.cos(2 * np.pi * 0.37 * t)) * np.cos(2 * np.pi * 13 * t)
    env = connectivity(X, SFREQ, "envelope_corr", 8, 20)
    assert (env[:, 0, 1] > 0.9).all()
    assert (np.abs(env[:, 0, 2]) < 0.3).all()


# ----------------------------------------------------------------------------
# SPD regularisation


@pytest.mark.parametrize("method", ["coh", "plv", "envelope_corr"])
def test_regularised_matrices_are_spd(noise, method):
    raw = connectivity(noise, SFREQ, method, 8, 30)
    np.testing.assert_array_equal(raw, raw.transpose(0, 2, 1))
    np.testing.assert_array_equal(np.diagonal(raw, axis1=1, axis2=2), 1.0)
    shrunk = connectivity(noise, SFREQ, method, 8, 30, regularization="shrinkage", reg=0.2)
    check_spd(shrunk)
    assert rel_diff(shrunk, shrunk_covariance(raw, 0.2)) < 1e-12
    loaded = connectivity(noise, SFREQ, method, 8, 30, regularization="loading", reg=0.2)
    check_spd(loaded)
    raw_low = np.linalg.eigvalsh(raw)[:, 0]
    low = np.linalg.eigvalsh(loaded)[:, 0]
    # Mean eigenvalue is 1 (unit diagonal): the floor is reg, and matrices above it are untouched.
    np.testing.assert_allclose(low, np.maximum(raw_low, 0.2), atol=1e-12)
    assert Connectivity(SFREQ, method=method).fit_transform(noise).shape == (4, 5, 5)


def test_imcoh_is_not_spd_and_refuses_regularisation(noise):
    imcoh = Connectivity(SFREQ, method="imcoh", regularization=None).fit_transform(noise)
    with pytest.raises(NotSPDError):
        check_spd(imcoh)
    with pytest.raises(DataError, match="antisymmetric"):
        Connectivity(SFREQ, method="imcoh").fit(noise)


def test_chunking_does_not_change_results(noise, monkeypatch):
    from neuroenc.riemann import spectral

    whole = {m: connectivity(noise, SFREQ, m, 8, 30) for m in ("coh", "imcoh", "plv", "envelope_corr")}
    per_bin = connectivity(noise, SFREQ, "imcoh", 8, 30, average=False)
    powers = [band_power(noise, SFREQ, BANDS), band_power(noise, SFREQ, BANDS, relative=True)]
    monkeypatch.setattr(spectral, "_CHUNK_BYTES", 1)  # one trial per chunk
    for method, mats in whole.items():
        np.testing.assert_allclose(connectivity(noise, SFREQ, method, 8, 30), mats, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(connectivity(noise, SFREQ, "imcoh", 8, 30, average=False), per_bin, atol=1e-15)
    np.testing.assert_allclose(band_power(noise, SFREQ, BANDS), powers[0], rtol=1e-12)
    np.testing.assert_allclose(band_power(noise, SFREQ, BANDS, relative=True), powers[1], rtol=1e-12)
    flat = noise.copy()
    flat[3, 2] = 0.0
    with pytest.raises(DataError, match=r"X\[3, 2\]"):
        connectivity(flat, SFREQ, "plv")


# ----------------------------------------------------------------------------
# input types and errors


def test_braindata_and_epochs_inputs():
    bd = make_braindata(n_obs=6, n_features=4, n_times=400)  # sfreq 100 Hz
    epochs = bd.to_mne()
    ref = band_power(bd.data, 100.0, [(8, 12), (12, 30)])
    np.testing.assert_array_equal(band_power(bd), ref)
    np.testing.assert_array_equal(band_power(epochs), ref)
    np.testing.assert_array_equal(BandPower().fit_transform(bd), ref)
    conn = connectivity(bd.data, 100.0, "coh", 8, 30)
    np.testing.assert_array_equal(connectivity(bd), conn)
    np.testing.assert_array_equal(connectivity(epochs, 100.0), conn)
    est = BandPower().fit(epochs)
    assert est.sfreq_ == 100.0
    assert list(est.get_feature_names_out()[:3]) == ["ch0_8-12Hz", "ch0_12-30Hz", "ch1_8-12Hz"]
    np.testing.assert_array_equal(est.transform(bd.data), ref)  # a fitted rate serves plain arrays
    with pytest.raises(LabelError, match="160 Hz was given but X is sampled at 100 Hz"):
        band_power(epochs, 160.0)
    with pytest.raises(LabelError):
        Connectivity(sfreq=200.0).fit(bd)
    with pytest.raises(LabelError):
        est.transform(BrainData(bd.data, bd.obs, "eeg", sfreq=200.0))


def test_errors(noise):
    with pytest.raises(ShapeError, match="sfreq is needed"):
        band_power(noise)
    with pytest.raises(ShapeError, match=r"bands\[1\] = \(12, 200\) Hz lies outside \[0, 125\] Hz"):
        band_power(noise, SFREQ, [(8, 12), (12, 200)])
    with pytest.raises(ShapeError, match="must be below fmax"):
        band_power(noise, SFREQ, [(12, 8)])
    with pytest.raises(ShapeError, match="must be below fmax"):
        connectivity(noise, SFREQ, "coh", 30, 30)
    with pytest.raises(ShapeError, match="open at both ends"):
        connectivity(noise, SFREQ, "plv", 0, 30)
    with pytest.raises(UnknownNameError, match="'coh', 'imcoh', 'plv', 'envelope_corr'"):
        connectivity(noise, SFREQ, "pli")
    with pytest.raises(UnknownNameError, match="'welch', 'multitaper'"):
        band_power(noise, SFREQ, method="burg")
    with pytest.raises(DataError, match="Unknown welch parameter"):
        band_power(noise, SFREQ, scaling="spectrum")
    with pytest.raises(ShapeError, match="fewer than the 2000-sample window"):
        band_power(noise, SFREQ, nperseg=2000)
    with pytest.raises(ShapeError, match="contains no frequency bin"):
        band_power(noise[..., :20], SFREQ, [(10, 11)])
    with pytest.raises(ShapeError, match="coherence needs at least 2"):
        connectivity(noise[..., :150], SFREQ, "coh")
    with pytest.raises(ShapeError, match="band-pass filter needs more than"):
        connectivity(noise[..., :25], SFREQ, "plv", 8, 30)
    with pytest.raises(DataError, match="only coh and imcoh"):
        connectivity(noise, SFREQ, "plv", average=False)
    bad = noise.copy()
    bad[2, 3, 17] = np.nan
    with pytest.raises(NonFiniteError, match=r"\(2, 3, 17\)"):
        band_power(bad, SFREQ)
    with pytest.raises(NonFiniteError, match=r"\(2, 3, 17\)"):
        Connectivity(SFREQ).fit(bad)
    flat = noise.copy()
    flat[1, 4] = 3.0
    with pytest.raises(DataError, match=r"X\[1, 4\].*constant"):
        connectivity(flat, SFREQ, "coh")
    with pytest.raises(DataError, match="constant"):
        band_power(flat, SFREQ, log=True)
    assert np.isfinite(band_power(flat, SFREQ)).all()  # absolute power of a flat channel is 0
    est = Connectivity(SFREQ).fit(noise)
    with pytest.raises(ShapeError, match="fitted on 5"):
        est.transform(noise[:, :3])
    with pytest.raises(NotFittedError):
        BandPower(SFREQ).transform(noise)
    with pytest.raises(ShapeError, match="shrinkage intensity"):
        Connectivity(SFREQ, reg=1.5).fit(noise)
    with pytest.raises(UnknownNameError, match="regularization"):
        Connectivity(SFREQ, regularization="ledoit").fit(noise)


# ----------------------------------------------------------------------------
# scikit-learn API


def test_sklearn_api(noise):
    est = Connectivity(SFREQ, method="plv", fmin=4.0, fmax=8.0, reg=0.3)
    params = est.get_params()
    assert params["method"] == "plv" and params["reg"] == 0.3 and params["sfreq"] == SFREQ
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    twin.set_params(method="coh", fmax=12.0)
    assert twin.method == "coh" and est.method == "plv"
    np.testing.assert_array_equal(
        est.fit_transform(noise), connectivity(noise, SFREQ, "plv", 4, 8, regularization="shrinkage", reg=0.3)
    )
    bp = BandPower(SFREQ, bands={"mu": (8, 12)}, psd_params={"nperseg": 128}, log=True)
    assert clone(bp).get_params()["psd_params"] == {"nperseg": 128}
    np.testing.assert_array_equal(bp.fit_transform(noise), band_power(noise, SFREQ, (8, 12), log=True, nperseg=128))
    assert bp.get_feature_names_out()[0] == "ch0_mu"


def test_grid_search_over_methods_and_bands():
    rng = np.random.default_rng(5)
    n_trials, t = 24, np.arange(500) / SFREQ
    X = rng.standard_normal((n_trials, 4, t.size))
    y = np.arange(n_trials) % 2
    phase = rng.uniform(0, 2 * np.pi, (n_trials, 1))
    # Class 1: channels 0 and 1 share a 10 Hz rhythm; class 0: channel 0 alone has it.
    X[:, 0] += 2 * np.cos(2 * np.pi * 10 * t + phase)
    X[y == 1, 1] += 2 * np.cos(2 * np.pi * 10 * t + phase[y == 1] - 0.5)
    pipe = Pipeline([("conn", Connectivity(SFREQ)), ("ts", TangentSpace()), ("clf", LogisticRegression())])
    grid = GridSearchCV(pipe, {"conn__method": ["coh", "plv"], "conn__fmin": [8.0, 20.0], "conn__fmax": [40.0]}, cv=3)
    grid.fit(X, y)
    assert grid.best_params_["conn__fmin"] == 8.0  # the coupling is at 10 Hz
    assert grid.best_score_ > 0.9
    swap = clone(pipe).set_params(conn=BandPower(SFREQ, log=True), ts=StandardScaler())
    scores = cross_val_score(swap, X, y, cv=3)
    assert np.isfinite(scores).all()


# ----------------------------------------------------------------------------
# real data: PhysioNet motor imagery, subject 1


@pytest.fixture(scope="module")
def physionet(data_dir, eegbci_dir):
    return load_physionet_mi(subject=1, task="imagery_lr", data_dir=data_dir)


def test_physionet_features(physionet):
    bp = BandPower(bands={"mu": (8, 12), "beta": (12, 30)}, log=True).fit(physionet)
    feats = bp.transform(physionet)
    assert bp.sfreq_ == 160.0 and feats.shape == (45, 64 * 2) and np.isfinite(feats).all()
    assert bp.get_feature_names_out()[:2].tolist() == ["Fc5._mu", "Fc5._beta"]
    coh = Connectivity(method="coh").fit(physionet)
    mats = coh.transform(physionet)
    assert mats.shape == (45, 64, 64) and np.isfinite(mats).all()
    np.testing.assert_allclose(coh.freqs_, np.arange(7, 25) * 1.25)  # 8.75 ... 30 Hz
    check_spd(mats)
    # PLV matrices of real EEG are not always PSD: shrinkage by 1 % is too little here,
    # diagonal loading always works.
    plv_raw = connectivity(physionet, method="plv")
    assert np.linalg.eigvalsh(plv_raw)[:, 0].min() < -0.01
    with pytest.raises(NotSPDError, match="regularization='loading'"):
        connectivity(physionet, method="plv", regularization="shrinkage", reg=0.01)
    check_spd(connectivity(physionet, method="plv", regularization="loading", reg=0.01))


def test_physionet_pipeline_swap(physionet):
    """The PSD-versus-connectivity comparison is one pipeline swap (21 sensorimotor channels)."""
    motor = physionet.pick_features(list(range(21)))  # FC, C and CP rows
    X, y = motor.data, motor.conditions
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    pipelines = {
        "BandPower + LogisticRegression": Pipeline(
            [("features", BandPower(160.0, log=True)), ("scale", StandardScaler()), ("clf", LogisticRegression())]
        ),
        "Connectivity(coh) + MDM": Pipeline([("features", Connectivity(160.0, method="coh")), ("clf", MDM())]),
        "Connectivity(plv) + tangent space": Pipeline(
            [("features", Connectivity(160.0, method="plv")), ("ts", TangentSpace()), ("clf", LogisticRegression())]
        ),
    }
    for name, pipe in pipelines.items():
        scores = cross_val_score(pipe, X, y, cv=cv)
        print(f"{name}: accuracy {scores.mean():.3f} ({np.round(scores, 3).tolist()})")
        assert scores.shape == (5,) and np.isfinite(scores).all()
        assert ((scores >= 0) & (scores <= 1)).all()
