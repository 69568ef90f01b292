"""Spectral and connectivity features: neuroenc against scipy and pyRiemann in the same run.

Run: ``python benchmarks/bench_spectral.py``. Data: 200 trials x 22 channels x 1000
samples of coloured noise at 250 Hz (a BCI-competition-sized motor-imagery set).
Prints medians and ratios (reference time / neuroenc time; above 1 means neuroenc
is faster) and the largest relative difference between the two results.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from pyriemann.estimation import Coherences
from scipy import signal

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

from neuroenc.riemann import BandPower, Connectivity  # noqa: E402

SFREQ = 250.0
BANDS = [(8.0, 12.0), (12.0, 30.0)]
REPEAT = 5


def make_data(n_trials: int = 200, n_channels: int = 22, n_times: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_trials, n_channels, n_times))
    mixing = np.eye(n_channels) + 0.3 * rng.standard_normal((n_channels, n_channels))
    return signal.lfilter([1.0], [1.0, -0.9], mixing @ X, axis=-1)  # correlated, 1/f-like spectra


def scipy_band_power_loop(X: np.ndarray, relative: bool = False) -> np.ndarray:
    """The straightforward way: one scipy.signal.welch call and band means per trial."""
    rows = []
    for trial in X:
        freqs, psd = signal.welch(trial, fs=SFREQ, nperseg=256)
        cols = []
        for lo, hi in BANDS:
            band = psd[:, (freqs >= lo) & (freqs <= hi)]
            cols.append(band.sum(-1) / psd.sum(-1) if relative else band.mean(-1))
        rows.append(np.stack(cols, axis=-1).ravel())
    return np.array(rows)


def scipy_plv_envelope_loop(X: np.ndarray, method: str) -> np.ndarray:
    """Band-pass and Hilbert per trial, then one channel pair at a time."""
    sos = signal.butter(4, [8.0, 30.0], btype="bandpass", fs=SFREQ, output="sos")
    n_trials, n_ch, _ = X.shape
    out = np.ones((n_trials, n_ch, n_ch))
    for t in range(n_trials):
        analytic = signal.hilbert(signal.sosfiltfilt(sos, X[t], axis=-1), axis=-1)
        phase, amp = np.angle(analytic), np.abs(analytic)
        for i in range(n_ch):
            for j in range(i + 1, n_ch):
                if method == "plv":
                    value = np.abs(np.mean(np.exp(1j * (phase[i] - phase[j]))))
                else:
                    value = np.corrcoef(amp[i], amp[j])[0, 1]
                out[t, i, j] = out[t, j, i] = value
    return out


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def main() -> None:
    X = make_data()
    rows = []
    parity = []

    bp = BandPower(SFREQ, BANDS).fit(X)
    ours = median_time(lambda: bp.transform(X), REPEAT)
    ref = median_time(lambda: scipy_band_power_loop(X), REPEAT)
    parity.append(("BandPower (mean PSD)", rel_diff(bp.transform(X), scipy_band_power_loop(X))))
    rows.append(("BandPower mu/beta: 200x22x1000", ours, ref, "scipy.signal.welch loop over trials"))
    vec = median_time(lambda: signal.welch(X, fs=SFREQ, nperseg=256), REPEAT)
    rows.append(("BandPower mu/beta (vs one vectorised welch)", ours, vec, "scipy.signal.welch on all trials"))

    bp_rel = BandPower(SFREQ, BANDS, relative=True).fit(X)
    ours = median_time(lambda: bp_rel.transform(X), REPEAT)
    ref = median_time(lambda: scipy_band_power_loop(X, relative=True), REPEAT)
    parity.append(("BandPower (relative)", rel_diff(bp_rel.transform(X), scipy_band_power_loop(X, True))))
    rows.append(("BandPower relative (scipy welch path)", ours, ref, "scipy.signal.welch loop over trials"))

    # Same segments and taper as pyRiemann: symmetric Hann, 75 % overlap, no detrending.
    same = {"window": np.hanning(128), "noverlap": 96, "detrend": False, "regularization": None}
    for method, coh in [("coh", "ordinary"), ("imcoh", "imaginary")]:
        conn = Connectivity(SFREQ, method=method, fmin=8.0, fmax=30.0, **same).fit(X)
        pyr = Coherences(window=128, overlap=0.75, fmin=8.0, fmax=30.0, fs=SFREQ, coh=coh)
        ours = median_time(lambda conn=conn: conn.transform(X), REPEAT)
        ref = median_time(lambda pyr=pyr: pyr.transform(X).mean(-1), REPEAT)
        rows.append((f"Connectivity({method}) 8-30 Hz, 200x22x1000", ours, ref, f"pyRiemann Coherences({coh})"))
    ours_coh = Connectivity(SFREQ, method="coh", **same).fit_transform(X)
    ref_coh = Coherences(window=128, overlap=0.75, fmin=8.0, fmax=30.0, fs=SFREQ).transform(X).mean(-1)
    parity.append(("Connectivity(coh) vs Coherences", rel_diff(ours_coh, ref_coh)))

    conn = Connectivity(SFREQ, method="coh").fit(X)
    ours = median_time(lambda: conn.transform(X), REPEAT)
    rows.append(("Connectivity(coh) defaults + shrinkage", ours, None, "-"))

    for method in ("plv", "envelope_corr"):
        conn = Connectivity(SFREQ, method=method, regularization=None).fit(X)
        ours = median_time(lambda conn=conn: conn.transform(X), REPEAT)
        ref = median_time(lambda method=method: scipy_plv_envelope_loop(X, method), 3, warmup=0)
        diff = rel_diff(conn.transform(X), scipy_plv_envelope_loop(X, method))
        parity.append((f"Connectivity({method}) vs loop", diff))
        rows.append((f"Connectivity({method}) 8-30 Hz", ours, ref, "scipy filter+hilbert, loop over pairs"))

    print_table(rows)
    print()
    for name, diff in parity:
        print(f"max relative difference, {name}: {diff:.2e}")


if __name__ == "__main__":
    main()
