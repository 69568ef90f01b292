"""Time-lagged linear models of continuous signals: temporal response functions (TRFs).

:class:`LaggedFeatures` turns a signal ``x`` (n_times, n_features) into its
lagged design: column ``(f, k)`` holds ``x_f[t - d_k]`` for the delays
``d_k`` (in samples) from ``round(tmin * sfreq)`` to ``round(tmax * sfreq)``,
so that a positive lag looks into the past of the input (MNE's
``ReceptiveField`` convention). :class:`TRF` fits a linear map from the
lagged input to the output and returns the coefficients as a
``(n_targets, n_features, n_lags)`` array.

Data may be one continuous recording, epochs ``(n_epochs, n_times,
n_features)`` or a list of segments of different lengths; lags never reach
across a segment boundary (samples outside a segment count as zero, or as
the mean with ``fill="mean"``).

With a float ``estimator`` (the ridge penalty) the TRF is solved from the
lagged auto- and cross-covariances, never building the lagged design: the
Gram matrix of the zero-filled design is block Toeplitz up to the rows that
hang over the segment edges, so it costs ``n_lags`` products of
``(n_features x n_times) @ (n_times x n_features)`` plus an edge correction
of ``O(n_lags**2 n_features**2)`` per segment. This is the model of MNE's
``TimeDelayingRidge`` (``edge_correction=True``); any scikit-learn regressor
instead is fitted on the explicit design, as MNE's ``ReceptiveField`` does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone, is_regressor
from sklearn.utils.validation import check_is_fitted

from neuroenc.errors import DataError, LabelError, ShapeError
from neuroenc.validation import check_array, check_choice, check_epochs, check_positive

__all__ = ["LaggedFeatures", "TRF", "lag_samples"]

_FILLS = ("zero", "mean")
_DIRECTIONS = ("forward", "backward")
_SCORINGS = ("corrcoef", "r2")
_MULTIOUTPUT = ("uniform_average", "raw_values")


def lag_samples(tmin: float, tmax: float, sfreq: float = 1.0) -> np.ndarray:
    """Integer delays from ``round(tmin * sfreq)`` to ``round(tmax * sfreq)``, inclusive.

    Parameters
    ----------
    tmin, tmax : float
        First and last lag in seconds (in samples if ``sfreq`` is 1).
    sfreq : float
        Sampling frequency in Hz.

    Returns
    -------
    numpy.ndarray of int, shape (n_lags,)
        The delays in samples, ascending (MNE's ``_times_to_delays``).
    """
    sfreq = check_positive(sfreq, "sfreq")
    for name, value in (("tmin", tmin), ("tmax", tmax)):
        if not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
            raise ShapeError(f"{name} must be a finite number of seconds, got {value!r}.")
    if tmin > tmax:
        raise ShapeError(f"tmin ({tmin}) must be at most tmax ({tmax}).")
    return np.arange(int(np.round(tmin * sfreq)), int(np.round(tmax * sfreq)) + 1)


# --------------------------------------------------------------------------- segments


@dataclass
class _Segments:
    """Continuous data as a list of (n_i, n_channels) float arrays, and how to give it back."""

    arrays: list[np.ndarray]
    layout: str  # "continuous" (one 2-D array), "epochs" (a 3-D array) or "list"
    squeezed: bool  # the channel axis was absent (1-D signals)

    @property
    def lengths(self) -> list[int]:
        return [len(a) for a in self.arrays]

    @property
    def n_channels(self) -> int:
        return self.arrays[0].shape[1]

    def stacked(self) -> np.ndarray:
        return self.arrays[0] if len(self.arrays) == 1 else np.concatenate(self.arrays, axis=0)

    def like(self, stacked: np.ndarray, squeeze: bool) -> Any:
        """Rows ``stacked`` (n_total, n_out) in this layout."""
        if squeeze:
            stacked = stacked[:, 0]
        bounds = np.cumsum([0] + self.lengths)
        parts = [stacked[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        if self.layout == "continuous":
            return parts[0]
        if self.layout == "epochs":
            return np.stack(parts)
        return parts


def _is_mne_raw(X: Any) -> bool:
    return hasattr(X, "get_data") and hasattr(X, "info") and hasattr(X, "annotations") and not hasattr(X, "events")


def _as_segments(X: Any, name: str, like: _Segments | None = None) -> _Segments:
    """Validate continuous data (see :class:`TRF`) and split it into segments.

    ``like``: the segments ``X`` must match (same number and lengths), for ``y``.
    """
    if (hasattr(X, "modality") and hasattr(X, "obs")) or (hasattr(X, "events") and hasattr(X, "get_data")):
        # BrainData / mne.Epochs hold (epochs, channels, times); a TRF wants times before channels.
        arrays = list(check_epochs(X, name).transpose(0, 2, 1))
        seg = _Segments(arrays, "epochs", False)
    elif _is_mne_raw(X):
        seg = _Segments([check_array(X.get_data().T, name, ndim=2, dtype=np.float64)], "continuous", False)
    elif isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ShapeError(f"{name} is an empty list; give at least one segment.")
        arrays = [check_array(s, f"{name}[{i}]", ndim=(1, 2), dtype=np.float64) for i, s in enumerate(X)]
        squeezed = arrays[0].ndim == 1
        if any((a.ndim == 1) != squeezed for a in arrays):
            raise ShapeError(f"The segments of {name} mix 1-D and 2-D arrays; give all of them the same shape.")
        seg = _Segments([a[:, None] if squeezed else a for a in arrays], "list", squeezed)
    else:
        arr = check_array(X, name, ndim=(1, 2, 3), dtype=np.float64)
        if arr.ndim == 3:
            seg = _Segments(list(arr), "epochs", False)
        else:
            seg = _Segments([arr[:, None] if arr.ndim == 1 else arr], "continuous", arr.ndim == 1)
    if like is None:
        widths = {a.shape[1] for a in seg.arrays}
        if len(widths) > 1:
            raise ShapeError(f"The segments of {name} have different numbers of channels: {sorted(widths)}.")
        if seg.arrays[0].shape[1] == 0:
            raise ShapeError(f"{name} has no channel.")
        return seg
    # y: epochs (n_epochs, n_times) and continuous (n_times,) carry one target.
    if like.layout == "epochs" and seg.layout == "continuous" and not seg.squeezed:
        seg = _Segments([row[:, None] for row in seg.arrays[0]], "epochs", True)
    if len(seg.arrays) != len(like.arrays):
        raise LabelError(f"{name} has {len(seg.arrays)} segment(s) but X has {len(like.arrays)}.")
    for i, (a, b) in enumerate(zip(seg.arrays, like.arrays)):
        if len(a) != len(b):
            raise LabelError(f"Segment {i} of {name} has {len(a)} samples but that of X has {len(b)}.")
    widths = {a.shape[1] for a in seg.arrays}
    if len(widths) > 1:
        raise ShapeError(f"The segments of {name} have different numbers of channels: {sorted(widths)}.")
    return seg


def _concat_with_gaps(arrays: list[np.ndarray], gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Segments laid end to end with ``gap`` zero rows between them, and their start rows.

    A lag of at most ``gap`` samples then never mixes two segments, so the
    lagged products of all segments are single matrix products.
    """
    starts = np.cumsum([0] + [len(a) + gap for a in arrays[:-1]])
    out = np.zeros((starts[-1] + len(arrays[-1]), arrays[0].shape[1]))
    for s, a in zip(starts, arrays):
        out[s : s + len(a)] = a
    return out, starts


def _shift_pairs(n: int, d: int) -> tuple[slice, slice]:
    """Slices (rows of the lagged copy, rows of the source) for ``z[t] = x[t - d]``."""
    d = max(-n, min(n, d))  # a lag longer than the signal leaves nothing
    if d >= 0:
        return slice(d, n), slice(0, n - d)
    return slice(0, n + d), slice(-d, n)


# --------------------------------------------------------------------------- designs


def _lagged_design(arrays: list[np.ndarray], delays: np.ndarray, fill: str) -> np.ndarray:
    """Stacked lagged design (n_total, n_channels * n_lags), column ``c * n_lags + k``.

    ``fill="mean"`` follows MNE's ``_delay_time_series(fill_mean=True)``: the
    valid part of each lagged copy of a segment is shifted to the grand mean
    of its channel, which also fills the samples outside the segment.
    """
    n_ch, n_lags = arrays[0].shape[1], len(delays)
    total = sum(len(a) for a in arrays)
    out = np.zeros((total, n_ch, n_lags))
    grand = np.concatenate(arrays).mean(axis=0) if fill == "mean" else None
    if grand is not None:
        out[:] = grand[:, None]
    row = 0
    for a in arrays:
        n = len(a)
        for k, d in enumerate(delays):
            dst, src = _shift_pairs(n, int(d))
            part = a[src]
            if len(part) == 0:
                continue
            block = out[row + dst.start : row + dst.stop, :, k]
            block[:] = part if grand is None else part - part.mean(axis=0) + grand
        row += n
    return out.reshape(total, n_ch * n_lags)


def _valid_rows(lengths: list[int], delays: np.ndarray) -> np.ndarray:
    """Stacked row indices whose every lag falls inside their segment."""
    lo, hi = max(int(delays[-1]), 0), min(int(delays[0]), 0)
    rows, start = [], 0
    for n in lengths:
        rows.append(np.arange(start + lo, start + n + hi))
        start += n
    return np.concatenate(rows) if rows else np.zeros(0, int)


def _lagged_gram(arrays: list[np.ndarray], delays: np.ndarray) -> np.ndarray:
    """``Z.T @ Z`` of the zero-filled lagged design ``Z`` of all segments.

    ``delays`` must be consecutive and ascending. Over an infinite time axis
    block ``(i, j)`` would be the lag-``(i - j)`` covariance ``C_{i-j}``; the
    design only has the rows ``t`` inside each segment, so the contributions
    of the rows ``t < 0`` (when ``delays[0] < 0``) and ``t >= n`` (when
    ``delays[-1] > 0``) are subtracted (:func:`_subtract_edge`).
    """
    n_ch, n_lags = arrays[0].shape[1], len(delays)
    gap = max(n_lags, abs(int(delays[0])), abs(int(delays[-1])))
    x, _ = _concat_with_gaps(arrays, gap)
    gram = np.zeros((n_ch, n_lags, n_ch, n_lags))
    n = len(x)
    for m in range(min(n_lags, n)):
        cov = x[: n - m].T @ x[m:]  # C_m[f, g] = sum_u x_f[u] x_g[u + m]
        i = np.arange(m, n_lags)
        gram[:, i, :, i - m] = cov
        if m:
            gram[:, i - m, :, i] = cov.T
    smin, smax = int(delays[0]), int(delays[-1])
    if smin < 0:
        _subtract_edge(gram, [a[:-smin] for a in arrays], -smin, reverse=False)
    if smax > 0:
        _subtract_edge(gram, [a[::-1][:smax] for a in arrays], smax, reverse=True)
    return gram.reshape(n_ch * n_lags, n_ch * n_lags)


def _subtract_edge(gram: np.ndarray, heads: list[np.ndarray], h: int, *, reverse: bool) -> None:
    """Remove the ``h`` rows before each segment from ``gram`` (F, L, F, L), in place.

    With ``t' = t - delays[0]`` in ``[0, h)``, the block of those rows is
    ``H_ij = sum_{t' >= max(i, j)} x[t' - i] (x) x[t' - j]``; along a diagonal
    ``i - j = m`` it is a suffix sum:
    ``H_{m+k, k} = sum_{q >= k} x[h-1-m-q] (x) x[h-1-q]``. The rows after each
    segment are the rows before the time-reversed segment with the lags
    reversed (``reverse=True``: ``heads`` holds the reversed segment ends).
    """
    n_ch, n_lags = gram.shape[0], gram.shape[1]
    padded = np.zeros((len(heads), h, n_ch))
    for s, head in enumerate(heads):
        padded[s, : len(head)] = head
    for m in range(min(n_lags, h)):
        q = np.arange(h - m)
        left = padded[:, h - 1 - m - q].transpose(1, 2, 0)  # (q, F, segments)
        right = padded[:, h - 1 - q].transpose(1, 0, 2)  # (q, segments, F)
        terms = left @ right
        suffix = np.cumsum(terms[::-1], axis=0)[::-1]
        k = np.arange(min(n_lags, h) - m)
        i, j = m + k, k
        if reverse:
            i, j = n_lags - 1 - i, n_lags - 1 - j
        gram[:, i, :, j] -= suffix[: len(k)]
        if m:
            gram[:, j, :, i] -= suffix[: len(k)].transpose(0, 2, 1)


def _lagged_cross(x_arrays: list[np.ndarray], y_arrays: list[np.ndarray], delays: np.ndarray) -> np.ndarray:
    """``Z.T @ Y`` (n_channels * n_lags, n_targets) of the zero-filled lagged design."""
    gap = max(abs(int(delays[0])), abs(int(delays[-1])))
    x, _ = _concat_with_gaps(x_arrays, gap)
    y, _ = _concat_with_gaps(y_arrays, gap)
    n = len(x)
    out = np.zeros((x.shape[1], len(delays), y.shape[1]))
    for k, d in enumerate(delays):
        dst, src = _shift_pairs(n, int(d))
        out[:, k] = x[src].T @ y[dst]
    return out.reshape(-1, y.shape[1])


def _lagged_predict(arrays: list[np.ndarray], delays: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Stacked ``sum_k x[t - d_k] @ coef[:, :, k].T`` (zero-filled), shape (n_total, n_targets)."""
    gap = max(abs(int(delays[0])), abs(int(delays[-1])))
    x, starts = _concat_with_gaps(arrays, gap)
    n = len(x)
    out = np.zeros((n, coef.shape[0]))
    for k, d in enumerate(delays):
        dst, src = _shift_pairs(n, int(d))
        out[dst] += x[src] @ coef[:, :, k].T
    return np.concatenate([out[s : s + len(a)] for s, a in zip(starts, arrays)])


def _ridge_solve(gram: np.ndarray, cross: np.ndarray, alpha: float) -> np.ndarray:
    """``(gram + alpha I)^-1 cross``; least squares if the system is singular (as MNE)."""
    mat = gram + alpha * np.eye(len(gram))
    try:
        return scipy.linalg.solve(mat, cross, assume_a="pos", overwrite_a=False)
    except np.linalg.LinAlgError:
        warnings.warn("Singular lagged covariance; using the least-squares solution.", stacklevel=3)
        return scipy.linalg.lstsq(mat, cross, lapack_driver="gelsy")[0]


# --------------------------------------------------------------------------- estimators


def _check_fill(fill: Any) -> str:
    return check_choice(fill, _FILLS, "fill")


class LaggedFeatures(TransformerMixin, BaseEstimator):
    """Time-lagged copies of continuous signals, as a scikit-learn transformer.

    Column ``f * n_lags + k`` of the output is channel ``f`` delayed by
    ``delays_[k]`` samples: ``x_f[t - delays_[k]]`` (a positive lag looks
    into the past). Lags never cross a segment boundary.

    Parameters
    ----------
    tmin, tmax : float
        First and last lag in seconds (in samples with ``sfreq=1``).
    sfreq : float
        Sampling frequency in Hz.
    fill : {"zero", "mean"}
        Value of the samples outside a segment: zero, or (MNE's
        ``ReceptiveField`` convention for models with an intercept) the
        grand mean of the channel, the valid part of each lagged copy of a
        segment being shifted to that mean.

    Attributes
    ----------
    delays_ : numpy.ndarray of int, shape (n_lags,)
        Delays in samples.
    lags_ : numpy.ndarray, shape (n_lags,)
        Delays in seconds.
    n_features_in_ : int
        Number of channels of the input.

    Notes
    -----
    The input is one recording ``(n_times, n_channels)`` (or ``(n_times,)``),
    epochs ``(n_epochs, n_times, n_channels)`` or a list of segments
    ``(n_times_i, n_channels)``; the output stacks the segments' rows, so in a
    :class:`~sklearn.pipeline.Pipeline` it pairs with a target of the same
    rows only for a single recording. For epochs or segments use :class:`TRF`,
    which stacks the targets as well.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.encoding import LaggedFeatures
    >>> LaggedFeatures(0, 2).fit_transform(np.arange(1.0, 5.0))
    array([[1., 0., 0.],
           [2., 1., 0.],
           [3., 2., 1.],
           [4., 3., 2.]])
    """

    def __init__(self, tmin: float, tmax: float, sfreq: float = 1.0, fill: str = "zero") -> None:
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.fill = fill

    def fit(self, X: Any, y: Any = None) -> LaggedFeatures:
        """Check the parameters and record the number of channels.

        Parameters
        ----------
        X : array-like or list of array-like
            Signals (see Notes).
        y : ignored

        Returns
        -------
        LaggedFeatures
            The fitted transformer.
        """
        _check_fill(self.fill)
        self.delays_ = lag_samples(self.tmin, self.tmax, self.sfreq)
        self.lags_ = self.delays_ / float(self.sfreq)
        self.n_features_in_ = _as_segments(X, "X").n_channels
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Lagged design of ``X``.

        Parameters
        ----------
        X : array-like or list of array-like
            Signals with the channels seen in :meth:`fit`.

        Returns
        -------
        numpy.ndarray, shape (n_total_times, n_channels * n_lags)
            Rows of all segments, in order.
        """
        check_is_fitted(self, "delays_")
        seg = _as_segments(X, "X")
        if seg.n_channels != self.n_features_in_:
            raise ShapeError(f"X has {seg.n_channels} channel(s); the transformer was fitted on {self.n_features_in_}.")
        return _lagged_design(seg.arrays, self.delays_, _check_fill(self.fill))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``"<channel>@<lag in s>"`` of the output columns.

        Parameters
        ----------
        input_features : sequence of str, optional
            Channel names (default ``x0, x1, ...``).

        Returns
        -------
        numpy.ndarray of str
        """
        check_is_fitted(self, "delays_")
        names = [f"x{i}" for i in range(self.n_features_in_)] if input_features is None else list(input_features)
        if len(names) != self.n_features_in_:
            raise LabelError(f"{len(names)} input feature name(s) for {self.n_features_in_} channel(s).")
        return np.array([f"{n}@{lag:g}" for n in names for lag in self.lags_], dtype=object)


class TRF(RegressorMixin, BaseEstimator):
    """Temporal response function: a linear model of time-lagged inputs.

    A forward (encoding) model predicts each output channel ``o`` (e.g. EEG)
    from the lagged inputs (e.g. a stimulus envelope):
    ``y_o[t] = b_o + sum_{f, k} coef_[o, f, k] x_f[t - lag_k]``. A backward
    (decoding) model reconstructs the stimulus from the brain signals in the
    window ``[t + tmin, t + tmax]`` after it (the mTRF toolbox's convention:
    give the same ``tmin, tmax`` as for the forward model).

    Parameters
    ----------
    tmin, tmax : float
        First and last lag of the response after the stimulus, in seconds
        (in samples with ``sfreq=1``).
    sfreq : float
        Sampling frequency of ``X`` and ``y`` in Hz.
    estimator : float, None or scikit-learn regressor
        A float is the ridge penalty ``alpha``, solved exactly from the
        lagged covariances (MNE's ``TimeDelayingRidge``); None means
        ``alpha = 0``. A regressor (e.g. ``Ridge``,
        :class:`neuroenc.encoding.RidgeCV`) is cloned and fitted on the
        explicit lagged design; it must expose ``coef_``.
    fit_intercept : bool or None
        Remove the means before fitting (float ``estimator``). For a
        regressor, None follows ``estimator.fit_intercept`` and a bool must
        agree with it; the lagged design is then filled with the channel
        means (``fill="mean"`` of :class:`LaggedFeatures`), as MNE does.
    direction : {"forward", "backward"}
        ``"forward"``: ``X`` is the stimulus and ``y`` the brain response;
        ``"backward"``: ``X`` is the brain response and ``y`` the stimulus,
        the model using ``X`` from ``t + tmin`` to ``t + tmax``.
    scoring : {"corrcoef", "r2"}
        Score of :meth:`score`: Pearson correlation or coefficient of
        determination, per output, on the samples whose every lag lies
        inside the segment.

    Attributes
    ----------
    coef_ : numpy.ndarray, shape (n_targets, n_features, n_lags)
        Weights; ``coef_[:, :, k]`` belongs to lag ``lags_[k]``.
    intercept_ : numpy.ndarray, shape (n_targets,)
        Intercepts.
    lags_ : numpy.ndarray, shape (n_lags,)
        Lags of the response after the stimulus, in seconds, ascending.
    delays_ : numpy.ndarray of int, shape (n_lags,)
        Sample delays applied to ``X`` for each lag (``-lags`` for a backward model).
    estimator_ : object or None
        The fitted regressor (None for a float ``estimator``).
    n_features_in_ : int
        Number of input channels.

    Notes
    -----
    ``X`` and ``y`` are one recording ``(n_times, n_channels)``, epochs
    ``(n_epochs, n_times, n_channels)`` (scikit-learn's cross-validation then
    splits whole epochs), a list of segments ``(n_times_i, n_channels)`` of any
    lengths, a :class:`neuroenc.BrainData` with a time axis or an
    :class:`mne.Epochs` (both transposed to epochs-times-channels), or an MNE
    Raw. A 1-D ``y`` (or ``(n_epochs, n_times)`` with epochs) is one output;
    predictions then have the same shape. Lags never cross a segment boundary.

    With a float ``estimator`` the coefficients equal MNE's
    ``ReceptiveField(estimator=alpha)`` and with a regressor those of
    ``ReceptiveField(estimator=regressor)``, for the same data (MNE orders
    its axes times-epochs-channels).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.encoding import TRF
    >>> rng = np.random.default_rng(0)
    >>> stim = rng.standard_normal((20, 200, 1))  # 20 epochs of 2 s at 100 Hz
    >>> kernel = np.exp(-np.arange(10) / 3.0)
    >>> eeg = np.stack([np.convolve(s[:, 0], kernel)[:200] for s in stim])
    >>> trf = TRF(0.0, 0.15, sfreq=100.0, estimator=1.0).fit(stim, eeg)
    >>> trf.coef_.shape
    (1, 1, 16)
    >>> bool(np.allclose(trf.coef_[0, 0, :10], kernel, atol=0.01))
    True
    """

    def __init__(
        self,
        tmin: float,
        tmax: float,
        sfreq: float = 1.0,
        estimator: float | Any = None,
        fit_intercept: bool | None = None,
        direction: str = "forward",
        scoring: str = "corrcoef",
    ) -> None:
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.estimator = estimator
        self.fit_intercept = fit_intercept
        self.direction = direction
        self.scoring = scoring

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> tuple[float | None, bool]:
        """(alpha or None for a regressor, fit_intercept)."""
        check_choice(self.direction, _DIRECTIONS, "direction")
        check_choice(self.scoring, _SCORINGS, "scoring")
        est = self.estimator
        if est is None or (isinstance(est, (int, float, np.integer, np.floating)) and not isinstance(est, bool)):
            alpha = check_positive(0.0 if est is None else est, "estimator (ridge alpha)", strict=False)
            return alpha, True if self.fit_intercept is None else bool(self.fit_intercept)
        if not (hasattr(est, "fit") and hasattr(est, "predict") and is_regressor(est)):
            raise TypeError(f"estimator must be a float (ridge alpha), None or a scikit-learn regressor, got {est!r}.")
        own = getattr(est, "fit_intercept", True)
        if self.fit_intercept is not None and bool(self.fit_intercept) != bool(own):
            raise DataError(
                f"fit_intercept={self.fit_intercept} disagrees with estimator.fit_intercept={own}; "
                "set them equal or leave fit_intercept=None."
            )
        return None, bool(own)

    def _design_delays(self) -> np.ndarray:
        """Ascending sample delays applied to ``X`` (backward: ``-lags`` reversed)."""
        lags = lag_samples(self.tmin, self.tmax, self.sfreq)
        return lags if self.direction == "forward" else -lags[::-1]

    def _oriented(self, coef: np.ndarray) -> np.ndarray:
        """Weights on the design delays -> weights ordered by ``lags_``."""
        return coef if self.direction == "forward" else coef[:, :, ::-1]

    def _check_X(self, X: Any) -> _Segments:
        seg = _as_segments(X, "X")
        if seg.n_channels != self.n_features_in_:
            raise ShapeError(f"X has {seg.n_channels} channel(s); the TRF was fitted on {self.n_features_in_}.")
        return seg

    # ------------------------------------------------------------------ API
    def fit(self, X: Any, y: Any) -> TRF:
        """Fit the lagged model.

        Parameters
        ----------
        X : array-like, list of array-like, BrainData, mne.Epochs or mne.io.Raw
            Inputs (see Notes).
        y : same kinds as ``X``
            Outputs, with the same segments as ``X``.

        Returns
        -------
        TRF
            The fitted model.
        """
        alpha, fit_intercept = self._check_params()
        xs = _as_segments(X, "X")
        ys = _as_segments(y, "y", like=xs)
        delays = self._design_delays()
        if sum(xs.lengths) < 2:
            raise ShapeError("X has fewer than 2 samples in total; a TRF needs more.")
        self.n_features_in_ = xs.n_channels
        self._y_squeezed = ys.squeezed
        n_ch, n_out = xs.n_channels, ys.n_channels
        if alpha is not None:
            x_arrays, y_arrays = xs.arrays, ys.arrays
            x_mean, y_mean = np.zeros(n_ch), np.zeros(n_out)
            if fit_intercept:
                x_mean, y_mean = xs.stacked().mean(axis=0), ys.stacked().mean(axis=0)
                x_arrays = [a - x_mean for a in x_arrays]
                y_arrays = [a - y_mean for a in y_arrays]
            gram = _lagged_gram(x_arrays, delays)
            cross = _lagged_cross(x_arrays, y_arrays, delays)
            coef = _ridge_solve(gram, cross, alpha).T.reshape(n_out, n_ch, len(delays))
            self.estimator_ = None
            self._x_mean, self._y_mean = x_mean, y_mean
            self.intercept_ = y_mean - np.einsum("ofk,f->o", coef, x_mean)
        else:
            design = _lagged_design(xs.arrays, delays, "mean" if fit_intercept else "zero")
            target = ys.stacked()
            self.estimator_ = clone(self.estimator).fit(design, target[:, 0] if ys.squeezed else target)
            raw = getattr(self.estimator_, "coef_", None)
            if raw is None:
                raise TypeError(f"{type(self.estimator_).__name__} has no coef_; a TRF needs a linear regressor.")
            coef = np.asarray(raw, dtype=np.float64).reshape(n_out, n_ch, len(delays))
            self.intercept_ = np.broadcast_to(
                np.asarray(getattr(self.estimator_, "intercept_", 0.0), dtype=np.float64), (n_out,)
            ).copy()
        self.delays_ = delays if self.direction == "forward" else delays[::-1]
        self.lags_ = lag_samples(self.tmin, self.tmax, self.sfreq) / float(self.sfreq)
        self.coef_ = self._oriented(coef)
        self._fit_intercept = fit_intercept
        return self

    def _predict_stacked(self, xs: _Segments) -> np.ndarray:
        delays = self._design_delays()
        if self.estimator_ is None:
            arrays = [a - self._x_mean for a in xs.arrays]
            return _lagged_predict(arrays, delays, self._oriented(self.coef_)) + self._y_mean
        design = _lagged_design(xs.arrays, delays, "mean" if self._fit_intercept else "zero")
        pred = np.asarray(self.estimator_.predict(design), dtype=np.float64)
        return pred.reshape(len(design), -1)

    def predict(self, X: Any) -> Any:
        """Predicted outputs.

        Parameters
        ----------
        X : array-like, list of array-like, BrainData, mne.Epochs or mne.io.Raw
            Inputs with the channels seen in :meth:`fit`.

        Returns
        -------
        numpy.ndarray or list of numpy.ndarray
            Same layout as ``X`` (``(n_times, n_targets)``, epochs or a list),
            without the target axis if ``y`` had none in :meth:`fit`. The first
            and last samples of each segment, whose lags fall partly outside
            it, assume zeros (float ``estimator``) or channel means there.
        """
        check_is_fitted(self, "coef_")
        xs = self._check_X(X)
        return xs.like(self._predict_stacked(xs), self._y_squeezed)

    def score(self, X: Any, y: Any, multioutput: str = "uniform_average") -> float | np.ndarray:
        """Correlation or R² of the predictions on the samples whose lags lie inside their segment.

        Parameters
        ----------
        X : array-like, list of array-like, BrainData, mne.Epochs or mne.io.Raw
            Inputs.
        y : same kinds as ``X``
            True outputs.
        multioutput : {"uniform_average", "raw_values"}
            Average over outputs (a float, for ``GridSearchCV``) or one score per output.

        Returns
        -------
        float or numpy.ndarray, shape (n_targets,)
        """
        check_is_fitted(self, "coef_")
        check_choice(multioutput, _MULTIOUTPUT, "multioutput")
        xs = self._check_X(X)
        ys = _as_segments(y, "y", like=xs)
        if ys.n_channels != self.coef_.shape[0]:
            raise ShapeError(f"y has {ys.n_channels} output(s); the TRF predicts {self.coef_.shape[0]}.")
        rows = _valid_rows(xs.lengths, self._design_delays())
        if len(rows) < 2:
            raise ShapeError("Fewer than 2 samples have all their lags inside a segment; segments are too short.")
        pred = self._predict_stacked(xs)[rows]
        true = ys.stacked()[rows]
        scores = _corrcoef(true, pred) if self.scoring == "corrcoef" else _r2(true, pred)
        return float(scores.mean()) if multioutput == "uniform_average" else scores


def _corrcoef(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns (0 where a column is constant)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denom = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / denom
    return np.where(denom > 0, r, 0.0)


def _r2(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column (scikit-learn's ``r2_score(..., "raw_values")``)."""
    from sklearn.metrics import r2_score

    return np.atleast_1d(r2_score(true, pred, multioutput="raw_values"))
