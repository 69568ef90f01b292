"""fMRI design matrices: stimulus features convolved with a haemodynamic response.

:func:`hrf_design` follows nilearn's ``compute_regressor``
(``nilearn.glm.first_level.hemodynamic_models``): events become a boxcar on
a grid ``oversampling`` times finer than the TR, which is convolved with
nilearn's Glover or SPM HRF (or shifted boxcars for a finite impulse
response) and linearly interpolated at the frame times. The result equals
nilearn's regressor column by column; here all features are convolved at
once (FFT along time), so hundreds of feature columns cost little more than
one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroenc.errors import LabelError, ShapeError
from neuroenc.validation import check_array, check_choice, check_length, check_positive

__all__ = ["HRF_MODELS", "hrf_design", "indicator_matrix"]

#: Response models of :func:`hrf_design`.
HRF_MODELS = ("glover", "spm", "fir")


def indicator_matrix(labels: Any, conditions: Any = None, exclude: Any = ()) -> tuple[np.ndarray, list]:
    """One 0/1 column per condition, marking the samples with that label.

    Parameters
    ----------
    labels : array-like, shape (n_samples,)
        Condition of each frame (e.g. Haxby's per-volume categories) or
        event code of each frame (0 for none).
    conditions : sequence, optional
        Conditions to encode, in column order (default: the sorted distinct labels).
    exclude : sequence
        Labels given no column (e.g. ``"rest"`` or 0), when ``conditions`` is None.

    Returns
    -------
    matrix : numpy.ndarray, shape (n_samples, n_conditions)
    conditions : list
        The condition of each column.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise LabelError(f"labels must be a non-empty 1-D array, got shape {arr.shape}.")
    if conditions is None:
        excluded = set(np.atleast_1d(np.asarray(exclude, dtype=arr.dtype)).tolist()) if len(exclude) else set()
        conditions = [c for c in np.unique(arr).tolist() if c not in excluded]
    conditions = list(conditions)
    missing = [c for c in conditions if not (arr == c).any()]
    if missing:
        raise LabelError(f"Conditions {missing} never occur in labels.")
    if not conditions:
        raise LabelError("No condition left to encode.")
    return np.stack([(arr == c).astype(np.float64) for c in conditions], axis=1), conditions


def _kernels(model: str, tr: float, oversampling: int, fir_delays: np.ndarray) -> list[np.ndarray]:
    """HRF samples on the fine grid (one per FIR delay)."""
    if model == "fir":
        box = np.full(oversampling, 1.0 / oversampling)
        return [np.concatenate([np.zeros(int(d) * oversampling), box]) for d in fir_delays]
    from nilearn.glm.first_level.hemodynamic_models import glover_hrf, spm_hrf

    return [(glover_hrf if model == "glover" else spm_hrf)(tr, oversampling)]


def _fine_grid(frame_times: np.ndarray, oversampling: int, min_onset: float) -> np.ndarray:
    """nilearn's oversampled time grid, from ``min_onset`` before the first frame."""
    n = frame_times.size
    lo, hi = float(frame_times.min()), float(frame_times.max())
    end = hi * (1 + 1.0 / (n - 1))
    n_fine = (n - 1) / (hi - lo) * (end - lo - min_onset) * oversampling + 1
    return np.linspace(lo + min_onset, end, int(np.rint(n_fine)))


def _boxcars(grid: np.ndarray, onsets: np.ndarray, durations: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
    """Events as boxcars on ``grid``: (n_fine, n_features)."""
    last = grid.size - 1
    start = np.minimum(np.searchsorted(grid, onsets), last)
    stop = np.minimum(np.searchsorted(grid, onsets + durations), last)
    # a zero-duration event still lasts one fine step
    stop = np.where((stop == start) & (stop < last), stop + 1, stop)
    steps = np.zeros((grid.size, amplitudes.shape[1]))
    np.add.at(steps, start, amplitudes)
    np.add.at(steps, stop, -amplitudes)
    return np.cumsum(steps, axis=0)


def _interpolate(values: np.ndarray, grid: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of every column of ``values`` (sampled on ``grid``) at ``times``."""
    i = np.clip(np.searchsorted(grid, times, side="right") - 1, 0, grid.size - 2)
    w = ((times - grid[i]) / (grid[i + 1] - grid[i]))[:, None]
    return values[i] * (1.0 - w) + values[i + 1] * w


def _design_one_run(
    frame_times: np.ndarray,
    onsets: np.ndarray,
    durations: np.ndarray,
    amplitudes: np.ndarray,
    model: str,
    fir_delays: np.ndarray,
    oversampling: int,
    min_onset: float,
) -> np.ndarray:
    from scipy.signal import fftconvolve

    tr = float(np.min(np.diff(frame_times)))  # nilearn's: the shortest frame interval
    grid = _fine_grid(frame_times, oversampling, min_onset)
    fine = _boxcars(grid, onsets, durations, amplitudes)
    columns = []
    for h in _kernels(model, tr, oversampling, fir_delays):
        conv = fftconvolve(fine, h[:, None], axes=0)[: grid.size]
        if model == "fir" and oversampling > 1:
            # nilearn aligns the FIR boxcars on the end of each frame
            conv, g = conv[oversampling - 1 :], grid[: 1 - oversampling]
        else:
            g = grid
        columns.append(_interpolate(conv, g, frame_times))
    # (n_frames, n_kernels, n_features) -> feature-major columns: f0_d0, f0_d1, ..., f1_d0, ...
    return np.stack(columns, axis=1).transpose(0, 2, 1).reshape(frame_times.size, -1)


def hrf_design(
    features: Any,
    frame_times: Any = None,
    *,
    tr: float,
    onsets: Any = None,
    durations: Any = None,
    model: str = "glover",
    fir_delays: Any = (0,),
    oversampling: int = 50,
    min_onset: float = -24.0,
    runs: Any = None,
) -> np.ndarray:
    """Features convolved with an HRF (or expanded on an FIR basis), sampled at the frames.

    Two inputs are accepted:

    - features sampled at the frames (``onsets=None``): ``features`` is
      ``(n_frames, n_features)``, one row per volume (condition indicators
      from :func:`indicator_matrix`, stimulus descriptors resampled to the
      TR); row ``t`` is an event at frame ``t`` lasting one TR;
    - events: ``onsets`` (seconds) with ``durations`` and ``features`` of
      shape ``(n_events, n_features)`` (amplitudes; None for all ones), and
      the frames given by ``frame_times``.

    Parameters
    ----------
    features : array-like or None
        See above.
    frame_times : array-like or int, optional
        Acquisition time of each frame in seconds, or the number of frames
        (times ``0, tr, 2 tr, ...``). Default with frame-sampled features:
        ``arange(n_frames) * tr``.
    tr : float
        Repetition time in seconds.
    onsets, durations : array-like, shape (n_events,), optional
        Event timing in seconds (durations default to 0: impulses).
    model : {"glover", "spm", "fir"}
        nilearn's Glover or SPM HRF, or a finite impulse response basis.
    fir_delays : sequence of int
        FIR delays in frames (``model="fir"``): one column per feature and delay.
    oversampling : int
        Fine-grid steps per TR for the convolution (nilearn's default 50).
    min_onset : float
        Start of the fine grid relative to the first frame (seconds, nilearn's -24).
    runs : array-like, shape (n_frames,), optional
        Run of each frame (frame-sampled features only): each run is
        convolved on its own, so responses do not spill across runs.

    Returns
    -------
    numpy.ndarray, shape (n_frames, n_features * n_basis)
        ``n_basis`` is ``len(fir_delays)`` for FIR and 1 otherwise; columns
        are feature-major (feature 0 at every delay, then feature 1, ...).
    """
    model = check_choice(model, HRF_MODELS, "HRF model")
    tr = check_positive(tr, "tr")
    if isinstance(oversampling, bool) or not isinstance(oversampling, (int, np.integer)) or oversampling < 1:
        raise ShapeError(f"oversampling must be a positive integer, got {oversampling!r}.")
    delays = check_array(fir_delays, "fir_delays", ndim=1)
    if model == "fir" and (delays.size == 0 or (delays < 0).any() or (delays != np.round(delays)).any()):
        raise ShapeError(f"fir_delays must be non-negative integers (frames), got {fir_delays!r}.")
    min_onset = float(min_onset)

    if onsets is None:
        X = check_array(features, "features", ndim=(1, 2), dtype=np.float64)
        X = X[:, None] if X.ndim == 1 else X
        n = X.shape[0]
        if frame_times is not None:
            raise ShapeError("frame_times is for event input; frame-sampled features use arange(n_frames) * tr.")
        run_labels = np.zeros(n, dtype=int) if runs is None else np.asarray(runs)
        check_length(n, run_labels, "runs", of="frames")
        out = np.empty((n, X.shape[1] * (delays.size if model == "fir" else 1)))
        for r in np.unique(run_labels):
            idx = np.flatnonzero(run_labels == r)
            if idx.size < 2:
                raise ShapeError(f"Run {r!r} has {idx.size} frame; at least 2 are needed.")
            times = np.arange(idx.size) * tr
            durations_ = np.full(idx.size, tr)
            out[idx] = _design_one_run(times, times, durations_, X[idx], model, delays, oversampling, min_onset)
        return out

    if runs is not None:
        raise ShapeError("runs applies to frame-sampled features; build event designs run by run.")
    if frame_times is None:
        raise ShapeError("Event input needs frame_times (the frame times in seconds, or the number of frames).")
    on = check_array(onsets, "onsets", ndim=1, dtype=np.float64)
    dur = np.zeros_like(on) if durations is None else check_array(durations, "durations", ndim=(0, 1), dtype=np.float64)
    dur = np.broadcast_to(dur, on.shape) if dur.ndim == 0 else dur
    check_length(on.size, dur, "durations", of="onsets")
    if (dur < 0).any():
        raise ShapeError("durations must be non-negative.")
    if features is None:
        amps = np.ones((on.size, 1))
    else:
        amps = check_array(features, "features", ndim=(1, 2), dtype=np.float64)
        amps = amps[:, None] if amps.ndim == 1 else amps
        check_length(on.size, amps, "features", of="onsets")
    if np.ndim(frame_times) == 0:
        n_frames = int(frame_times)
        times = np.arange(n_frames) * tr
    else:
        times = check_array(frame_times, "frame_times", ndim=1, dtype=np.float64)
    if times.size < 2 or (np.diff(times) <= 0).any():
        raise ShapeError("frame_times must hold at least 2 increasing times.")
    return _design_one_run(times, on, dur, amps, model, delays, oversampling, min_onset)
