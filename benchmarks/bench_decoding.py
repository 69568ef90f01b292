"""Time-resolved decoding and TRF benchmarks: neuroenc against MNE 1.13 in the same run.

Run: ``python benchmarks/bench_decoding.py`` (``--quick``: one repeat, fewer cases).

Decoding data: PhysioNet S001, executed and imagined left/right fist (runs 3,
4, 7, 8, 11, 12: 90 epochs), 64 channels, 1-20 Hz, resampled to 50 Hz,
-0.5 to 3.48 s: 200 time points. Both libraries score 5 stratified folds
(``cross_val_time_score`` against ``cross_val_multiscore``, the same splits)
and the scores are checked to be equal. TRF data: white-noise features
(16 "spectrogram bands", or 64 channels for the backward model) and
responses made of random kernels plus noise, 64 Hz, lags -0.1 to 0.4 s
(33 lags), 10 epochs of 60 s.

Both libraries run with one BLAS thread (``threadpoolctl``): the problems
are small, and on a shared 2-core machine OpenBLAS threads slow MNE's
per-time-point fits down by an order of magnitude, which would flatter
neuroenc (it limits BLAS to one thread itself).
"""

from __future__ import annotations

import sys
import warnings
from functools import partial
from pathlib import Path

import mne
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402
from mne.decoding import (  # noqa: E402
    GeneralizingEstimator,
    ReceptiveField,
    SlidingEstimator,
    cross_val_multiscore,
)
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from neuroenc.datapath import data_path  # noqa: E402
from neuroenc.decoding.time_resolved import GeneralizingDecoder, SlidingDecoder, cross_val_time_score  # noqa: E402
from neuroenc.encoding.lagged import TRF  # noqa: E402
from neuroenc.io import read_eeg  # noqa: E402

QUICK = "--quick" in sys.argv
REPEAT = 1 if QUICK else 3
CV = StratifiedKFold(5, shuffle=True, random_state=0)


def physionet_epochs() -> tuple[np.ndarray, np.ndarray]:
    runs = [3, 4, 7, 8, 11, 12]
    folder = data_path("eegbci", "S001")
    epochs = read_eeg(
        [folder / f"S001R{r:02d}.edf" for r in runs],
        {"left": "T1", "right": "T2"},
        tmin=-0.5,
        tmax=3.5,
        l_freq=1.0,
        h_freq=20.0,
        resample=50.0,
        runs=runs,
    )
    return epochs.data[:, :, :200], epochs.conditions


def decoding_rows(X: np.ndarray, y: np.ndarray) -> list[tuple[str, float, float, str]]:
    # name: (estimator, scoring, repeats); the logistic regressions take minutes: timed once
    classifiers = {
        "LDA (svd)": (LinearDiscriminantAnalysis(), "accuracy", REPEAT),
        "LDA (lsqr, Ledoit-Wolf)": (LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"), "roc_auc", REPEAT),
        "scaler + logistic regression": (make_pipeline(StandardScaler(), LogisticRegression()), "roc_auc", 1),
    }
    if QUICK:
        classifiers.pop("LDA (lsqr, Ledoit-Wolf)")
    rows = []
    pairs = [
        ("generalizing", GeneralizingDecoder, GeneralizingEstimator),
        ("sliding", SlidingDecoder, SlidingEstimator),
    ]
    for kind, ours_cls, ref_cls in pairs:
        for name, (est, scoring, repeat) in classifiers.items():
            ours = partial(cross_val_time_score, ours_cls(est, scoring=scoring), X, y, cv=CV)
            ref = partial(cross_val_multiscore, ref_cls(est, scoring=scoring, verbose=False), X, y, cv=CV)
            diff = np.abs(ours() - ref()).max()
            assert diff < 1e-9, f"{kind} {name}: scores differ by {diff}"
            t_ours = median_time(ours, repeat=repeat, warmup=0)
            t_ref = median_time(ref, repeat=repeat, warmup=0)
            rows.append((f"{kind} {X.shape[2]} t, {name}", t_ours, t_ref, f"MNE {ref_cls.__name__}"))
    return rows


def trf_data(n_in: int, n_out: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((10, 64 * 60, n_in))
    kernels = rng.standard_normal((n_in, n_out, 20)) / np.sqrt(n_in * 20)
    y = np.zeros((10, 64 * 60, n_out))
    for f in range(n_in):
        for k in range(20):
            y[:, k:] += X[:, : X.shape[1] - k, f, None] * kernels[f, :, k]
    return X, y + rng.standard_normal(y.shape)


def fit_trf(X: np.ndarray, y: np.ndarray, est) -> np.ndarray:
    return TRF(-0.1, 0.4, 64.0, estimator=est).fit(X, y).coef_


def fit_receptive_field(X: np.ndarray, y: np.ndarray, est) -> np.ndarray:
    rf = ReceptiveField(-0.1, 0.4, 64.0, estimator=est)
    return rf.fit(X.transpose(1, 0, 2), y.transpose(1, 0, 2)).coef_  # MNE: times, epochs, channels


def trf_rows() -> list[tuple[str, float, float, str]]:
    cases = [("forward 16 -> 64, alpha", 16, 64, 100.0), ("backward 64 -> 1, alpha", 1, 64, 100.0)]
    if not QUICK:
        cases.append(("forward 16 -> 64, sklearn Ridge", 16, 64, Ridge(alpha=100.0)))
    rows = []
    for name, n_stim, n_brain, est in cases:
        stim, brain = trf_data(n_stim, n_brain)
        X, y = (stim, brain) if name.startswith("forward") else (brain, stim)
        ours = partial(fit_trf, X, y, est)
        ref = partial(fit_receptive_field, X, y, est)
        with mne.utils.use_log_level("error"):
            a, b = ours(), ref()
            assert np.abs(a.reshape(b.shape) - b).max() < 1e-8 * np.abs(b).max(), name
            t_ours = median_time(ours, repeat=REPEAT, warmup=0)
            t_ref = median_time(ref, repeat=REPEAT, warmup=0)
        rows.append((f"TRF {name}", t_ours, t_ref, "MNE ReceptiveField"))
    return rows


def main() -> None:
    warnings.simplefilter("ignore", category=UserWarning)
    with threadpool_limits(1):
        X, y = physionet_epochs()
        print(f"decoding data: {X.shape[0]} epochs x {X.shape[1]} channels x {X.shape[2]} times, 5 folds")
        rows = decoding_rows(X, y)
        rows += trf_rows()
    print_table(rows)


if __name__ == "__main__":
    main()
