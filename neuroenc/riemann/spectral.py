"""Spectral and connectivity features of epoched signals.

Two families of features, each as a plain function and a thin scikit-learn
transformer over it, so that comparing spectral power with functional
connectivity (as BCI feature studies such as HappyFeat do) is one pipeline
step swapped for another:

- :func:`band_power` / :class:`BandPower`: power spectral density per channel
  (:func:`scipy.signal.welch`, or MNE's multitaper estimate), reduced to one
  value per channel and frequency band; a ``(n_trials, n_channels * n_bands)``
  feature matrix for any vector classifier.
- :func:`connectivity` / :class:`Connectivity`: one ``(n_channels, n_channels)``
  matrix per trial: magnitude-squared coherence, imaginary coherence,
  phase-locking value or amplitude-envelope correlation. After SPD
  regularisation the symmetric ones feed the Riemannian classifiers of
  :mod:`neuroenc.riemann` or pyRiemann (MDM, tangent space).

*Frequency bands* are closed intervals ``[fmin, fmax]``: a bin at exactly
``fmin`` or ``fmax`` belongs to the band, so adjacent bands such as
``(8, 12)`` and ``(12, 30)`` share the 12 Hz bin when there is one.

*Cross-spectra* are computed per trial from ``nperseg``-sample segments
``noverlap`` samples apart: each segment is detrended and tapered, Fourier
transformed (length ``nfft``) and ``S_ij(f) = mean over segments of
conj(X_i(f)) X_j(f)`` (the convention of :func:`scipy.signal.csd` and of
pyRiemann's ``cross_spectrum``). Only the bins inside ``[fmin, fmax]`` are
computed, as one real matrix product per chunk of trials in which the taper,
the detrending and the DFT are a single precomputed matrix; absolute Welch
band power takes the same route and equals :func:`scipy.signal.welch` at
those bins (relative power, median averaging and callable detrends call
scipy itself).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neuroenc.errors import DataError, LabelError, NonFiniteError, NotSPDError, ShapeError
from neuroenc.validation import check_choice, check_epochs, check_positive, check_spd

__all__ = [
    "PSD_METHODS",
    "CONNECTIVITY_METHODS",
    "REGULARIZATIONS",
    "band_power",
    "BandPower",
    "connectivity",
    "Connectivity",
]

#: PSD estimators of :func:`band_power` and the keyword arguments each accepts.
PSD_METHODS: dict[str, tuple[str, ...]] = {
    "welch": ("window", "nperseg", "noverlap", "nfft", "detrend", "average"),
    "multitaper": ("bandwidth", "adaptive", "low_bias", "normalization", "remove_dc", "max_iter"),
}
#: Connectivity measures of :func:`connectivity`.
CONNECTIVITY_METHODS: tuple[str, ...] = ("coh", "imcoh", "plv", "envelope_corr")
#: Ways of making connectivity matrices SPD (None leaves them as estimated).
REGULARIZATIONS: tuple[str | None, ...] = (None, "shrinkage", "loading")

_SPECTRAL = ("coh", "imcoh")  # from windowed cross-spectra; plv and envelope_corr from band-passed data
_CHUNK_BYTES = 1 << 25  # about 32 MB of temporaries per chunk of trials


# ----------------------------------------------------------------------------
# input and parameter checks


def _unpack(X: Any, sfreq: float | None, name: str = "X") -> tuple[np.ndarray, float, list[str] | None]:
    """Epochs as float64 ``(n_trials, n_channels, n_times)``, their sampling rate and channel names."""
    data_sfreq = None
    ch_names = None
    if hasattr(X, "modality") and hasattr(X, "obs") and hasattr(X, "data"):  # BrainData
        data_sfreq = X.sfreq
        ch_names = list(X.feature_names)
    elif hasattr(X, "get_data") and hasattr(X, "info") and hasattr(X, "events"):  # mne.Epochs
        data_sfreq = float(X.info["sfreq"])
        ch_names = list(X.ch_names)
    arr = check_epochs(X, name)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeError(f"{name} has shape {arr.shape}; at least one trial and one channel are needed.")
    if sfreq is not None:
        sfreq = check_positive(sfreq, "sfreq")
        if data_sfreq is not None and not np.isclose(sfreq, data_sfreq, rtol=1e-9, atol=0.0):
            raise LabelError(
                f"sfreq={sfreq:g} Hz was given but {name} is sampled at {data_sfreq:g} Hz; "
                "leave sfreq=None to use the data's own rate."
            )
    elif data_sfreq is None:
        raise ShapeError(f"sfreq is needed: {name} is a plain array, which carries no sampling rate.")
    else:
        sfreq = float(data_sfreq)
    return arr, float(sfreq), ch_names


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ShapeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ShapeError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def _check_band(fmin: Any, fmax: Any, sfreq: float, what: str, *, open_interval: bool) -> tuple[float, float]:
    """Validate one band; ``open_interval`` demands ``0 < fmin`` and ``fmax < sfreq / 2`` (band-pass filters)."""
    try:
        lo, hi = float(fmin), float(fmax)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{what}: fmin and fmax must be numbers, got {fmin!r} and {fmax!r}.") from exc
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ShapeError(f"{what}: fmin and fmax must be finite, got {lo:g} and {hi:g} Hz.")
    if lo >= hi:
        raise ShapeError(f"{what}: fmin ({lo:g} Hz) must be below fmax ({hi:g} Hz).")
    nyquist = sfreq / 2.0
    if open_interval:
        inside = 0.0 < lo and hi < nyquist
        interval = f"(0, {nyquist:g}) Hz, open at both ends (band-pass filter)"
    else:
        inside = 0.0 <= lo and hi <= nyquist
        interval = f"[0, {nyquist:g}] Hz"
    if not inside:
        raise ShapeError(
            f"{what} = ({lo:g}, {hi:g}) Hz lies outside {interval}; the Nyquist frequency of "
            f"data sampled at {sfreq:g} Hz is {nyquist:g} Hz."
        )
    return lo, hi


def _check_bands(bands: Any, sfreq: float) -> tuple[np.ndarray, list[str]]:
    """Bands as a ``(n_bands, 2)`` array and their names (the keys of a mapping, else ``"8-12Hz"``)."""
    names = None
    if isinstance(bands, Mapping):
        names = [str(k) for k in bands]
        bands = list(bands.values())
    try:
        arr = np.asarray(bands, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"bands must be (fmin, fmax) pairs, got {bands!r}.") from exc
    if arr.ndim == 1 and arr.shape[0] == 2:  # one band given as a bare pair
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise ShapeError(f"bands must be a non-empty sequence of (fmin, fmax) pairs; got shape {arr.shape}.")
    for i, (lo, hi) in enumerate(arr):
        label = f"bands[{names[i]!r}]" if names else f"bands[{i}]"
        _check_band(lo, hi, sfreq, label, open_interval=False)
    if names is None:
        names = [f"{lo:g}-{hi:g}Hz" for lo, hi in arr]
    return arr, names


def _check_window(window: Any, nperseg: int | None, n_times: int, name: str) -> tuple[np.ndarray, int]:
    """Taper values and segment length; an array window sets ``nperseg``."""
    if isinstance(window, (np.ndarray, list)):
        win = np.asarray(window, dtype=float)
        if win.ndim != 1 or win.size < 2:
            raise ShapeError(f"window must be a 1-D array of at least 2 values, got shape {win.shape}.")
        if nperseg is not None and nperseg != win.size:
            raise ShapeError(f"nperseg={nperseg} differs from the length of the window array ({win.size}).")
        nperseg = win.size
    else:
        win = None
    if nperseg is None:
        raise ShapeError("nperseg must be given (an integer number of samples).")
    nperseg = _check_int(nperseg, "nperseg", 2)
    if nperseg > n_times:
        raise ShapeError(
            f"{name} has {n_times} time samples, fewer than the {nperseg}-sample window (nperseg); "
            "use longer epochs or a smaller nperseg."
        )
    if win is None:
        try:
            win = signal.get_window(window, nperseg)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"window {window!r} is not a scipy.signal.get_window window: {exc}") from exc
    return np.asarray(win, dtype=float), nperseg


def _check_overlap(noverlap: int | None, nperseg: int, default: int) -> int:
    if noverlap is None:
        return default
    noverlap = _check_int(noverlap, "noverlap", 0)
    if noverlap >= nperseg:
        raise ShapeError(f"noverlap ({noverlap}) must be smaller than nperseg ({nperseg}).")
    return noverlap


def _check_nfft(nfft: int | None, nperseg: int) -> int:
    if nfft is None:
        return nperseg
    nfft = _check_int(nfft, "nfft", 2)
    if nfft < nperseg:
        raise ShapeError(f"nfft ({nfft}) must be at least nperseg ({nperseg}).")
    return nfft


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_not_flat(arr: np.ndarray, name: str, why: str) -> None:
    flat = arr.max(axis=-1) == arr.min(axis=-1)
    if flat.any():
        t, c = _first_index(flat)
        raise DataError(
            f"{name}[{t}, {c}] (trial {t}, channel {c}) is constant; {why}. "
            f"{int(flat.sum())} constant trial/channel pair(s) in total; drop or interpolate those channels."
        )


def _trial_chunks(n_trials: int, bytes_per_trial: int) -> list[slice]:
    step = max(1, _CHUNK_BYTES // max(1, bytes_per_trial))
    return [slice(i, min(i + step, n_trials)) for i in range(0, n_trials, step)]


# ----------------------------------------------------------------------------
# band power


def _psd_setup(method: str, psd_params: dict, sfreq: float, n_times: int, name: str) -> tuple[dict, np.ndarray]:
    """Validated keyword arguments of the PSD estimator and the frequencies it will return."""
    allowed = PSD_METHODS[method]
    unknown = sorted(set(psd_params) - set(allowed))
    if unknown:
        raise DataError(
            f"Unknown {method} parameter(s): {', '.join(unknown)}; accepted: {', '.join(allowed)} "
            "(sfreq and the frequency axis are set by band_power)."
        )
    params = dict(psd_params)
    if method == "welch":
        nperseg = params.get("nperseg")
        window = params.get("window", "hann")
        if nperseg is None and not isinstance(window, (np.ndarray, list)):
            nperseg = min(256, n_times)  # scipy's default, shortened for short epochs
        _, nperseg = _check_window(window, nperseg, n_times, name)
        params["nperseg"] = nperseg
        params["noverlap"] = _check_overlap(params.get("noverlap"), nperseg, nperseg // 2)
        params["nfft"] = _check_nfft(params.get("nfft"), nperseg)
        if "average" in params:
            check_choice(params["average"], ("mean", "median"), "Welch average")
        if isinstance(params.get("detrend"), str):
            check_choice(params["detrend"], ("constant", "linear"), "detrend")
        freqs = np.fft.rfftfreq(params["nfft"], 1.0 / sfreq)
    else:
        if n_times < 2:
            raise ShapeError(f"{name} has {n_times} time sample(s); the multitaper PSD needs at least 2.")
        freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    return params, freqs


def _band_masks(freqs: np.ndarray, bands: np.ndarray, names: list[str], detail: str) -> list[np.ndarray]:
    masks = []
    for (lo, hi), label in zip(bands, names):
        mask = (freqs >= lo) & (freqs <= hi)
        if not mask.any():
            step = freqs[1] - freqs[0] if freqs.size > 1 else float("nan")
            raise ShapeError(
                f"Band {label} ({lo:g}-{hi:g} Hz) contains no frequency bin of the PSD (bins every "
                f"{step:g} Hz, {detail}); widen the band, or use longer epochs or a larger nperseg/nfft."
            )
        masks.append(mask)
    return masks


def _psd(arr: np.ndarray, sfreq: float, method: str, params: dict) -> tuple[np.ndarray, np.ndarray]:
    if method == "welch":
        freqs, psd = signal.welch(arr, fs=sfreq, axis=-1, **params)
        return psd, freqs
    from mne.time_frequency import psd_array_multitaper

    psd, freqs = psd_array_multitaper(arr, sfreq, verbose="error", **params)
    return psd, freqs


def _fast_welch_setup(
    method: str,
    params: dict,
    relative: bool,
    freqs: np.ndarray,
    masks: list[np.ndarray],
    sfreq: float,
    n_times: int,
) -> dict | None:
    """Plan of the band-limited Welch estimate, or None where scipy.signal.welch itself is needed.

    Absolute power with mean averaging and a standard detrend needs only the
    bins inside the bands; relative power needs every bin and median averaging
    or a callable detrend are scipy's own, so those go to scipy.
    """
    detrend = params.get("detrend", "constant")
    if method != "welch" or relative or params.get("average", "mean") != "mean":
        return None
    if not (detrend is False or (isinstance(detrend, str) and detrend in ("constant", "linear"))):
        return None
    nperseg, nfft = params["nperseg"], params["nfft"]
    win, _ = _check_window(params.get("window", "hann"), nperseg, n_times, "X")
    bins = np.flatnonzero(np.any(masks, axis=0))
    # scipy's one-sided density: |DFT|**2 / (sfreq * sum(win**2)), doubled except at DC and Nyquist.
    scale = np.full(bins.size, 2.0 / (sfreq * np.sum(win**2)))
    scale[(bins == 0) | ((nfft % 2 == 0) & (bins == nfft // 2))] /= 2.0
    return {
        "basis": _dft_matrix(win, nfft, bins, detrend),
        "bins": bins,
        "scale": scale,
        "nperseg": nperseg,
        "step": nperseg - params["noverlap"],
    }


def _fast_welch(arr: np.ndarray, plan: dict) -> np.ndarray:
    """Welch PSD ``(n_trials, n_channels, n_bins)`` at the planned bins, equal to scipy.signal.welch there."""
    segments = sliding_window_view(arr, plan["nperseg"], axis=-1)[..., :: plan["step"], :]
    coefs = segments @ plan["basis"]
    n_bins = plan["bins"].size
    power = coefs[..., :n_bins] ** 2 + coefs[..., n_bins:] ** 2
    return power.mean(axis=-2) * plan["scale"]


def band_power(
    X: Any,
    sfreq: float | None = None,
    bands: Any = ((8.0, 12.0), (12.0, 30.0)),
    method: str = "welch",
    *,
    relative: bool = False,
    log: bool = False,
    aggregate: str = "mean",
    **psd_params: Any,
) -> np.ndarray:
    """Spectral power of each channel in each frequency band.

    The PSD of each trial and channel is :func:`scipy.signal.welch` (one-sided,
    ``scaling="density"``, V**2/Hz for signals in V) or, with
    ``method="multitaper"``, :func:`mne.time_frequency.psd_array_multitaper`,
    called with the given parameters and otherwise their own defaults. Each
    band then keeps the PSD bins ``f`` with ``fmin <= f <= fmax``.

    Parameters
    ----------
    X : array-like, BrainData or mne.Epochs
        Epochs ``(n_trials, n_channels, n_times)``.
    sfreq : float, optional
        Sampling frequency in Hz; taken from a BrainData or mne.Epochs when
        None, and must agree with theirs when given.
    bands : sequence of (fmin, fmax) or mapping name -> (fmin, fmax)
        Frequency bands in Hz, each within ``[0, sfreq / 2]`` and containing
        at least one PSD bin. A bare pair is one band.
    method : {"welch", "multitaper"}
        PSD estimator.
    relative : bool
        Divide the power in each band (sum of its bins) by the total power of
        the channel (sum of all bins from 0 Hz to Nyquist); ``aggregate`` then
        does not matter.
    log : bool
        Return ``log10`` of the features (zero power is an error).
    aggregate : {"mean", "integral"}
        Mean PSD over the band's bins (V**2/Hz), or its integral, the sum of
        the bins times the bin width (V**2, the band's power).
    **psd_params
        For ``"welch"``: ``window`` (default ``"hann"``), ``nperseg`` (default
        ``min(256, n_times)``), ``noverlap`` (default ``nperseg // 2``),
        ``nfft``, ``detrend`` (default ``"constant"``), ``average``. For
        ``"multitaper"``: ``bandwidth``, ``adaptive``, ``low_bias``,
        ``normalization``, ``remove_dc``, ``max_iter``.

    Returns
    -------
    numpy.ndarray, shape (n_trials, n_channels * n_bands)
        Channel-major: column ``c * n_bands + b`` holds channel ``c`` in band
        ``b`` (a reshape of ``(n_trials, n_channels, n_bands)``).

    Raises
    ------
    ShapeError
        Bands outside ``[0, sfreq / 2]``, ``fmin >= fmax``, a band without
        bins, epochs shorter than ``nperseg``.
    UnknownNameError
        Unknown ``method`` or ``aggregate`` (the message lists the choices).
    NonFiniteError, DataError
        NaN/Inf in ``X``; with ``log`` or ``relative``, a channel without power.
    """
    arr, sfreq, _ = _unpack(X, sfreq)
    return _band_power(arr, sfreq, bands, method, relative, log, aggregate, psd_params)


def _band_power(
    arr: np.ndarray,
    sfreq: float,
    bands: Any,
    method: str,
    relative: bool,
    log: bool,
    aggregate: str,
    psd_params: dict,
) -> np.ndarray:
    method = check_choice(method, PSD_METHODS, "PSD method")
    aggregate = check_choice(aggregate, ("mean", "integral"), "aggregate")
    bands_arr, names = _check_bands(bands, sfreq)
    params, freqs = _psd_setup(method, psd_params, sfreq, arr.shape[2], "X")
    detail = f"nfft={params['nfft']}" if method == "welch" else f"{arr.shape[2]} samples"
    masks = _band_masks(freqs, bands_arr, names, detail)
    df = freqs[1] - freqs[0]
    if relative or log:
        _check_not_flat(arr, "X", "its power is zero, so relative or log power is undefined")

    n_trials, n_channels, n_times = arr.shape
    feats = np.empty((n_trials, n_channels, len(masks)))
    fast = _fast_welch_setup(method, params, relative, freqs, masks, sfreq, n_times)
    if fast is not None:
        # Only the bins of the bands, each as a column pair of one precomputed DFT matrix.
        masks = [mask[fast["bins"]] for mask in masks]
        freqs = freqs[fast["bins"]]
    for chunk in _trial_chunks(n_trials, n_channels * n_times * 8 * 4):
        if fast is None:
            psd, psd_freqs = _psd(arr[chunk], sfreq, method, params)
            if psd_freqs.shape != freqs.shape or not np.array_equal(psd_freqs, freqs):
                masks = _band_masks(psd_freqs, bands_arr, names, detail)  # trust the estimator's own grid
        else:
            psd = _fast_welch(arr[chunk], fast)
        total = psd.sum(axis=-1) if relative else None
        for b, mask in enumerate(masks):
            band = psd[..., mask]
            if relative:
                feats[chunk, :, b] = band.sum(axis=-1) / total
            elif aggregate == "mean":
                feats[chunk, :, b] = band.mean(axis=-1)
            else:
                feats[chunk, :, b] = band.sum(axis=-1) * (sfreq / params["nfft"] if method == "welch" else df)
    if log:
        zero = feats <= 0
        if zero.any():
            t, c, b = _first_index(zero)
            raise DataError(f"Trial {t}, channel {c} has no power in band {names[b]}; log power is undefined.")
        np.log10(feats, out=feats)
    if not np.isfinite(feats).all():
        t, c, b = _first_index(~np.isfinite(feats))
        raise NonFiniteError(f"Band power of trial {t}, channel {c}, band {names[b]} is not finite.")
    return feats.reshape(n_trials, -1)


class BandPower(TransformerMixin, BaseEstimator):
    """Band-power features: a scikit-learn transformer over :func:`band_power`.

    Parameters
    ----------
    sfreq : float, optional
        Sampling frequency in Hz. None takes it from a BrainData or
        mne.Epochs passed to ``fit``; plain arrays then need it.
    bands : sequence of (fmin, fmax) or mapping name -> (fmin, fmax)
        Frequency bands in Hz (default mu 8-12 and beta 12-30).
    method : {"welch", "multitaper"}
        PSD estimator (:func:`scipy.signal.welch` or MNE's multitaper).
    relative, log : bool
        Relative power (fraction of the channel's total) and/or ``log10``.
    aggregate : {"mean", "integral"}
        Mean PSD over the band, or its integral.
    psd_params : dict, optional
        Keyword arguments of the PSD estimator (see :func:`band_power`),
        e.g. ``{"nperseg": 128}``.

    Attributes
    ----------
    sfreq_ : float
        Sampling frequency used.
    n_channels_ : int
        Number of channels seen in ``fit``.
    ch_names_ : list of str
        Channel names (from a BrainData or mne.Epochs, else ``ch0``, ``ch1``...).
    band_names_ : list of str
        Band names (mapping keys, else ``"8-12Hz"``...).

    Notes
    -----
    The output is ``(n_trials, n_channels * n_bands)``, channel-major (see
    :meth:`get_feature_names_out`). The transformer holds no learned state:
    ``fit`` only validates the parameters and records the sampling rate.
    """

    def __init__(
        self,
        sfreq: float | None = None,
        bands: Any = ((8.0, 12.0), (12.0, 30.0)),
        method: str = "welch",
        relative: bool = False,
        log: bool = False,
        aggregate: str = "mean",
        psd_params: dict | None = None,
    ) -> None:
        self.sfreq = sfreq
        self.bands = bands
        self.method = method
        self.relative = relative
        self.log = log
        self.aggregate = aggregate
        self.psd_params = psd_params

    def fit(self, X: Any, y: Any = None) -> BandPower:
        """Validate the parameters against ``X`` and record its sampling rate.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Epochs ``(n_trials, n_channels, n_times)``.
        y : ignored

        Returns
        -------
        BandPower
            ``self``.
        """
        arr, sfreq, ch_names = _unpack(X, self.sfreq)
        check_choice(self.method, PSD_METHODS, "PSD method")
        check_choice(self.aggregate, ("mean", "integral"), "aggregate")
        bands, names = _check_bands(self.bands, sfreq)
        params, freqs = _psd_setup(self.method, dict(self.psd_params or {}), sfreq, arr.shape[2], "X")
        detail = f"nfft={params['nfft']}" if self.method == "welch" else f"{arr.shape[2]} samples"
        _band_masks(freqs, bands, names, detail)
        self.sfreq_ = sfreq
        self.n_channels_ = arr.shape[1]
        self.ch_names_ = ch_names if ch_names is not None else [f"ch{i}" for i in range(arr.shape[1])]
        self.band_names_ = names
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Band-power features of each trial.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Epochs with the channels seen in ``fit``.

        Returns
        -------
        numpy.ndarray, shape (n_trials, n_channels * n_bands)
            Channel-major features.
        """
        check_is_fitted(self, "sfreq_")
        arr, sfreq, _ = _unpack(X, self.sfreq_)
        _check_channels(arr, self.n_channels_)
        return _band_power(
            arr, sfreq, self.bands, self.method, self.relative, self.log, self.aggregate, dict(self.psd_params or {})
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``"<channel>_<band>"`` of the output columns, channel-major.

        Parameters
        ----------
        input_features : ignored
            Present for scikit-learn compatibility; the channel names come from ``fit``.

        Returns
        -------
        numpy.ndarray of str
        """
        check_is_fitted(self, "sfreq_")
        return np.array([f"{ch}_{band}" for ch in self.ch_names_ for band in self.band_names_], dtype=object)


def _check_channels(arr: np.ndarray, n_channels: int) -> None:
    if arr.shape[1] != n_channels:
        raise ShapeError(f"X has {arr.shape[1]} channels but the transformer was fitted on {n_channels}.")


# ----------------------------------------------------------------------------
# connectivity


def _dft_matrix(win: np.ndarray, nfft: int, bins: np.ndarray, detrend: Any) -> np.ndarray:
    """Real matrix ``(nperseg, 2 * n_bins)`` mapping a raw segment to [Re, Im] of its detrended, tapered DFT."""
    n = np.arange(win.size)
    # Reduce k * n modulo nfft in integers so that the phase is exact for long windows.
    phase = 2.0 * np.pi * ((np.outer(n, bins) % nfft) / nfft)
    basis = np.concatenate([win[:, None] * np.cos(phase), -win[:, None] * np.sin(phase)], axis=1)
    if detrend in ("constant", "linear"):
        # Detrending projects each segment off span{1} (or span{1, t}); the projector is symmetric,
        # so it can be applied to the DFT basis once instead of to every segment.
        trend = np.ones((win.size, 1)) if detrend == "constant" else np.stack([np.ones(win.size), n], axis=1)
        q, _ = np.linalg.qr(trend)
        basis = basis - q @ (q.T @ basis)
    return basis


def _spectral_setup(
    n_times: int,
    sfreq: float,
    fmin: float,
    fmax: float,
    nperseg: Any,
    noverlap: Any,
    nfft: Any,
    window: Any,
    detrend: Any,
    name: str,
) -> dict:
    if nperseg is None and not isinstance(window, (np.ndarray, list)):
        nperseg = 128  # pyRiemann's default window length
    win, nperseg = _check_window(window, nperseg, n_times, name)
    noverlap = _check_overlap(noverlap, nperseg, (3 * nperseg) // 4)
    nfft = _check_nfft(nfft, nperseg)
    if detrend is not None and detrend is not False:
        check_choice(detrend, ("constant", "linear", False, None), "detrend")
    step = nperseg - noverlap
    n_windows = (n_times - nperseg) // step + 1
    if n_windows < 2:
        raise ShapeError(
            f"{name} has {n_times} time samples: room for {n_windows} window of {nperseg} samples "
            f"(step {step}); coherence needs at least 2 (from one window it is 1 everywhere). "
            "Use longer epochs, a smaller nperseg or a larger noverlap."
        )
    # Same grid as pyRiemann's cross_spectrum: bin k at k * sfreq / nfft.
    all_freqs = np.arange(nfft // 2 + 1) * float(sfreq / nfft)
    bins = np.flatnonzero((all_freqs >= fmin) & (all_freqs <= fmax))
    if bins.size == 0:
        raise ShapeError(
            f"No frequency bin between fmin={fmin:g} and fmax={fmax:g} Hz (bins every {sfreq / nfft:g} Hz "
            f"with nfft={nfft}); widen the band or increase nperseg/nfft."
        )
    return {
        "basis": _dft_matrix(win, nfft, bins, detrend),
        "starts": np.arange(n_windows) * step,
        "nperseg": nperseg,
        "freqs": all_freqs[bins],
    }


def _coherency(arr: np.ndarray, setup: dict, method: str, average: bool) -> np.ndarray:
    """Per-bin (or band-averaged) coherence or imaginary coherence, ``(n_trials, n_ch, n_ch[, n_freqs])``."""
    n_trials, n_ch, _ = arr.shape
    basis, starts, nperseg = setup["basis"], setup["starts"], setup["nperseg"]
    n_win, n_freqs = starts.size, basis.shape[1] // 2
    out_shape = (n_trials, n_ch, n_ch) if average else (n_trials, n_ch, n_ch, n_freqs)
    out = np.empty(out_shape)
    step = int(starts[1] - starts[0])
    diag = np.arange(n_ch)
    for chunk in _trial_chunks(n_trials, n_ch * n_win * max(nperseg, 2 * n_freqs) * 8 * 2):
        segments = sliding_window_view(arr[chunk], nperseg, axis=-1)[..., ::step, :]  # (c, n_ch, n_win, nperseg)
        coefs = segments @ basis  # (c, n_ch, n_win, 2 * n_freqs)
        parts = np.ascontiguousarray(coefs.transpose(0, 3, 1, 2))  # (c, 2 * n_freqs, n_ch, n_win)
        re_part, im_part = parts[:, :n_freqs], parts[:, n_freqs:]
        # S_ij = sum_w conj(X_i) X_j (the 1/n_win and PSD scalings cancel in coherence), in real
        # products, which BLAS runs much faster than batched complex ones:
        # Re S = R R^T + I I^T and Im S = R I^T - I R^T.
        cross_re = re_part @ re_part.transpose(0, 1, 3, 2) + im_part @ im_part.transpose(0, 1, 3, 2)
        mixed = re_part @ im_part.transpose(0, 1, 3, 2)
        cross_im = mixed - mixed.transpose(0, 1, 3, 2)
        power = cross_re[..., diag, diag]  # (c, n_freqs, n_ch)
        if not (power > 0).all():
            t, f, c = _first_index(~(power > 0))
            raise DataError(
                f"Trial {chunk.start + t}, channel {c} has no power at {setup['freqs'][f]:g} Hz; "
                "coherence is undefined there."
            )
        if method == "coh":
            vals = (cross_re**2 + cross_im**2) / (power[..., :, None] * power[..., None, :])
            vals = (vals + vals.transpose(0, 1, 3, 2)) / 2  # exact symmetry despite rounding in the products
            vals[..., diag, diag] = 1.0
        else:
            norm = np.sqrt(power)
            vals = cross_im / (norm[..., :, None] * norm[..., None, :])
            vals[..., diag, diag] = 0.0
        if average:
            out[chunk] = vals.mean(axis=1)
        else:
            out[chunk] = vals.transpose(0, 2, 3, 1)
    return out


def _filter_setup(n_times: int, sfreq: float, fmin: float, fmax: float, order: Any, name: str) -> np.ndarray:
    order = _check_int(order, "filter_order", 1)
    sos = signal.butter(order, [fmin, fmax], btype="bandpass", fs=sfreq, output="sos")
    # sosfiltfilt pads each end by 3 * (number of taps); the epoch must be longer than that.
    ntaps = 2 * sos.shape[0] + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    if n_times <= 3 * ntaps:
        raise ShapeError(
            f"{name} has {n_times} time samples; the zero-phase order-{order} band-pass filter needs more "
            f"than {3 * ntaps}. Use longer epochs or a lower filter_order."
        )
    return sos


def _filtered(arr: np.ndarray, sos: np.ndarray, method: str) -> np.ndarray:
    """PLV or amplitude-envelope correlation, ``(n_trials, n_ch, n_ch)``."""
    n_trials, n_ch, n_times = arr.shape
    out = np.empty((n_trials, n_ch, n_ch))
    diag = np.arange(n_ch)
    for chunk in _trial_chunks(n_trials, n_ch * n_times * 16 * 4):
        analytic = signal.hilbert(signal.sosfiltfilt(sos, arr[chunk], axis=-1), axis=-1)
        amp = np.abs(analytic)
        if method == "plv":
            if not (amp > 0).all():
                t, c, s = _first_index(~(amp > 0))
                raise DataError(
                    f"Trial {chunk.start + t}, channel {c} has zero amplitude at sample {s} after band-pass "
                    "filtering; its phase, hence the PLV, is undefined."
                )
            re_part, im_part = analytic.real / amp, analytic.imag / amp
            # |mean_t exp(i (phi_i - phi_j))| for all pairs at once, from the Gram matrix of the unit
            # phasors u: Re(u u^H) = R R^T + I I^T, Im(u u^H) = I R^T - R I^T (real BLAS products).
            gram_re = re_part @ re_part.transpose(0, 2, 1) + im_part @ im_part.transpose(0, 2, 1)
            mixed = im_part @ re_part.transpose(0, 2, 1)
            vals = np.hypot(gram_re, mixed - mixed.transpose(0, 2, 1)) / n_times
            vals = (vals + vals.transpose(0, 2, 1)) / 2
        else:
            centred = amp - amp.mean(axis=-1, keepdims=True)
            gram = centred @ centred.transpose(0, 2, 1)
            scale = np.sqrt(gram[:, diag, diag])
            if not (scale > 0).all():
                t, c = _first_index(~(scale > 0))
                raise DataError(
                    f"Trial {chunk.start + t}, channel {c} has a constant amplitude envelope after band-pass "
                    "filtering; its correlation is undefined."
                )
            vals = gram / (scale[:, :, None] * scale[:, None, :])
            vals = (vals + vals.transpose(0, 2, 1)) / 2
        vals[:, diag, diag] = 1.0
        out[chunk] = vals
    return out


def _check_regularization(regularization: Any, reg: Any, method: str, average: bool) -> float:
    regularization = check_choice(regularization, REGULARIZATIONS, "regularization")
    if regularization is None:
        return 0.0
    if method == "imcoh":
        raise DataError(
            "Imaginary-coherence matrices are antisymmetric with a zero diagonal, so no regularisation "
            f"makes them SPD; pass regularization=None (got {regularization!r}) and vectorise them, "
            "or use method='coh'."
        )
    if not average:
        raise DataError("regularization applies to band-averaged matrices; pass average=True or regularization=None.")
    value = check_positive(reg, "reg")
    if regularization == "shrinkage" and value > 1:
        raise ShapeError(f"reg is the shrinkage intensity and must lie in (0, 1], got {reg!r}.")
    return value


def _regularize(mats: np.ndarray, regularization: str | None, reg: float, method: str) -> np.ndarray:
    if regularization is None:
        return mats
    n = mats.shape[-1]
    mu = np.trace(mats, axis1=-2, axis2=-1) / n  # 1 for unit-diagonal matrices
    eye = np.eye(n)
    if regularization == "shrinkage":
        out = (1.0 - reg) * mats + reg * mu[:, None, None] * eye
    else:
        # The smallest diagonal load that lifts the smallest eigenvalue to reg * mean eigenvalue;
        # matrices already that well conditioned are left unchanged.
        low = np.linalg.eigvalsh(mats)[:, 0]
        load = np.maximum(reg * mu - low, 0.0)
        out = mats + load[:, None, None] * eye
    try:
        return check_spd(out, f"regularised {method} matrices")
    except NotSPDError as exc:
        raise NotSPDError(
            f"{exc} {method} matrices need not be positive semi-definite, so shrinkage with reg={reg:g} was not "
            "enough; use regularization='loading' or a larger reg."
        ) from None


def connectivity(
    X: Any,
    sfreq: float | None = None,
    method: str = "coh",
    fmin: float = 8.0,
    fmax: float = 30.0,
    *,
    nperseg: int | None = None,
    noverlap: int | None = None,
    nfft: int | None = None,
    window: Any = "hann",
    detrend: Any = "constant",
    filter_order: int = 4,
    average: bool = True,
    regularization: str | None = None,
    reg: float = 0.1,
) -> np.ndarray:
    """Functional-connectivity matrix of each trial in one frequency band.

    Parameters
    ----------
    X : array-like, BrainData or mne.Epochs
        Epochs ``(n_trials, n_channels, n_times)``.
    sfreq : float, optional
        Sampling frequency in Hz (taken from a BrainData or mne.Epochs when
        None; must agree with theirs when given).
    method : {"coh", "imcoh", "plv", "envelope_corr"}
        Measure:

        * ``"coh"``: magnitude-squared coherence ``|S_ij|**2 / (S_ii S_jj)``
          per bin, the same numbers as pyRiemann's
          ``coherence(..., coh="ordinary")`` and, for a pair of channels,
          :func:`scipy.signal.coherence`, given the same segments and taper.
        * ``"imcoh"``: imaginary part of coherency,
          ``Im(S_ij) / sqrt(S_ii S_jj)``, signed (Nolte et al., 2004); its
          square is pyRiemann's ``coh="imaginary"``. With ``S_ij = E[conj(X_i)
          X_j]``, a channel ``j`` lagging channel ``i`` by a phase in (0, pi)
          gives ``imcoh[i, j] < 0`` and ``imcoh[j, i] > 0``.
        * ``"plv"``: phase-locking value ``|mean_t exp(i (phi_i - phi_j))|``
          from the analytic signal (:func:`scipy.signal.hilbert`) of the
          band-passed data (zero-phase Butterworth band-pass of order
          ``filter_order``, :func:`scipy.signal.sosfiltfilt`), over the whole
          epoch (edge samples included).
        * ``"envelope_corr"``: Pearson correlation over time of the Hilbert
          amplitude envelopes ``|analytic|`` of the same band-passed data.
    fmin, fmax : float
        Band in Hz. Spectral methods average the bins ``k * sfreq / nfft`` in
        ``[fmin, fmax]`` (needs ``0 <= fmin < fmax <= sfreq / 2`` and at
        least one bin); filter methods need ``0 < fmin < fmax < sfreq / 2``.
    nperseg : int, optional
        Segment length in samples (coh, imcoh): default the length of an
        array ``window``, else 128 (pyRiemann's default).
    noverlap : int, optional
        Overlap of consecutive segments; default ``3 * nperseg // 4`` (75 %,
        as pyRiemann). At least two segments must fit in an epoch.
    nfft : int, optional
        FFT length (zero-padding), default ``nperseg``.
    window : str, tuple or array
        Taper: a :func:`scipy.signal.get_window` spec (``"hann"`` is the
        periodic Hann window of scipy) or the window values. pyRiemann uses
        the symmetric ``numpy.hanning(nperseg)``.
    detrend : {"constant", "linear", False}
        Detrending of each segment, as in :func:`scipy.signal.csd`;
        pyRiemann does none (False).
    filter_order : int
        Butterworth order of the band-pass filter (plv, envelope_corr).
    average : bool
        Average the per-bin matrices over the band (coh, imcoh). False returns
        ``(n_trials, n_channels, n_channels, n_freqs)``, pyRiemann's layout.
    regularization : {None, "shrinkage", "loading"}
        Make the matrices SPD: ``"shrinkage"`` returns
        ``(1 - reg) C + reg * trace(C) / n * I`` (as
        :func:`sklearn.covariance.shrunk_covariance`); ``"loading"`` adds the
        smallest ``eps * I`` that lifts the smallest eigenvalue to
        ``reg * trace(C) / n``. Not available for ``"imcoh"``.
    reg : float
        Shrinkage intensity in (0, 1], or the eigenvalue floor of ``"loading"``
        relative to the mean eigenvalue.

    Returns
    -------
    numpy.ndarray, shape (n_trials, n_channels, n_channels)
        Symmetric with unit diagonal for coh, plv and envelope_corr;
        antisymmetric with zero diagonal for imcoh. With ``average=False``,
        ``(n_trials, n_channels, n_channels, n_freqs)``.

    Raises
    ------
    ShapeError
        Band outside the allowed interval, ``fmin >= fmax``, no bin in the
        band, epochs too short for two segments or for the filter padding.
    UnknownNameError
        Unknown ``method``, ``regularization`` or ``detrend`` (the message
        lists the choices).
    NonFiniteError, DataError, NotSPDError
        NaN/Inf in ``X``; a constant channel; shrinkage not enough (plv).

    Notes
    -----
    Positive (semi-)definiteness before regularisation: coherence matrices
    are averages of Hadamard products of Hermitian PSD coherency matrices,
    and envelope correlations are correlation matrices, so both are PSD
    (positive definite given enough segments or samples); either
    regularisation makes them SPD. PLV matrices are element-wise moduli of a
    PSD matrix and need not be PSD for 4 channels or more: shrinkage usually
    suffices, ``"loading"`` always does. Imaginary coherence is never SPD.
    """
    arr, sfreq, _ = _unpack(X, sfreq)
    spec = _connectivity_setup(
        arr.shape[2], sfreq, method, fmin, fmax, nperseg, noverlap, nfft, window, detrend, filter_order, average
    )
    reg = _check_regularization(regularization, reg, method, average)
    return _connectivity(arr, spec, method, average, regularization, reg)


def _connectivity_setup(
    n_times: int,
    sfreq: float,
    method: str,
    fmin: float,
    fmax: float,
    nperseg: Any,
    noverlap: Any,
    nfft: Any,
    window: Any,
    detrend: Any,
    filter_order: Any,
    average: bool,
) -> dict | np.ndarray:
    method = check_choice(method, CONNECTIVITY_METHODS, "connectivity method")
    if method in _SPECTRAL:
        lo, hi = _check_band(fmin, fmax, sfreq, "(fmin, fmax)", open_interval=False)
        return _spectral_setup(n_times, sfreq, lo, hi, nperseg, noverlap, nfft, window, detrend, "X")
    if not average:
        raise DataError(f"average=False gives per-frequency matrices, which only coh and imcoh have, not {method!r}.")
    lo, hi = _check_band(fmin, fmax, sfreq, "(fmin, fmax)", open_interval=True)
    return _filter_setup(n_times, sfreq, lo, hi, filter_order, "X")


def _connectivity(
    arr: np.ndarray, spec: dict | np.ndarray, method: str, average: bool, regularization: str | None, reg: float
) -> np.ndarray:
    _check_not_flat(arr, "X", f"{method} is undefined for a channel without signal")
    if method in _SPECTRAL:
        mats = _coherency(arr, spec, method, average)
    else:
        mats = _filtered(arr, spec, method)
    return _regularize(mats, regularization, reg, method)


class Connectivity(TransformerMixin, BaseEstimator):
    """Connectivity matrices: a scikit-learn transformer over :func:`connectivity`.

    Parameters
    ----------
    sfreq : float, optional
        Sampling frequency in Hz. None takes it from a BrainData or
        mne.Epochs passed to ``fit``; plain arrays then need it.
    method : {"coh", "imcoh", "plv", "envelope_corr"}
        Measure (see :func:`connectivity`).
    fmin, fmax : float
        Band in Hz.
    regularization : {"shrinkage", "loading", None}
        SPD regularisation (see :func:`connectivity`); must be None for
        ``"imcoh"``.
    reg : float
        Its intensity.
    nperseg, noverlap, nfft, window, detrend
        Segments of the cross-spectra (coh, imcoh).
    filter_order : int
        Butterworth order of the band-pass (plv, envelope_corr).

    Attributes
    ----------
    sfreq_ : float
        Sampling frequency used.
    n_channels_ : int
        Number of channels seen in ``fit``.
    ch_names_ : list of str
        Channel names (from a BrainData or mne.Epochs, else ``ch0``...).
    freqs_ : numpy.ndarray or None
        Frequency bins averaged (coh, imcoh; for epochs as long as those
        seen in ``fit``); None for plv and envelope_corr.

    Notes
    -----
    Outputs ``(n_trials, n_channels, n_channels)``: with the default
    shrinkage, SPD matrices for coh and envelope_corr (always) and plv
    (almost always; ``regularization="loading"`` guarantees it), ready for
    :class:`pyriemann.classification.MDM` or tangent-space pipelines. imcoh
    gives antisymmetric matrices with ``regularization=None`` only; vectorise
    their upper triangle for a vector classifier.
    """

    def __init__(
        self,
        sfreq: float | None = None,
        method: str = "coh",
        fmin: float = 8.0,
        fmax: float = 30.0,
        regularization: str | None = "shrinkage",
        reg: float = 0.1,
        nperseg: int | None = None,
        noverlap: int | None = None,
        nfft: int | None = None,
        window: Any = "hann",
        detrend: Any = "constant",
        filter_order: int = 4,
    ) -> None:
        self.sfreq = sfreq
        self.method = method
        self.fmin = fmin
        self.fmax = fmax
        self.regularization = regularization
        self.reg = reg
        self.nperseg = nperseg
        self.noverlap = noverlap
        self.nfft = nfft
        self.window = window
        self.detrend = detrend
        self.filter_order = filter_order

    def _setup(self, n_times: int, sfreq: float) -> dict | np.ndarray:
        spec = _connectivity_setup(
            n_times,
            sfreq,
            self.method,
            self.fmin,
            self.fmax,
            self.nperseg,
            self.noverlap,
            self.nfft,
            self.window,
            self.detrend,
            self.filter_order,
            True,
        )
        _check_regularization(self.regularization, self.reg, self.method, True)
        return spec

    def fit(self, X: Any, y: Any = None) -> Connectivity:
        """Validate the parameters against ``X`` and record its sampling rate.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Epochs ``(n_trials, n_channels, n_times)``.
        y : ignored

        Returns
        -------
        Connectivity
            ``self``.
        """
        arr, sfreq, ch_names = _unpack(X, self.sfreq)
        spec = self._setup(arr.shape[2], sfreq)
        self.sfreq_ = sfreq
        self.n_channels_ = arr.shape[1]
        self.ch_names_ = ch_names if ch_names is not None else [f"ch{i}" for i in range(arr.shape[1])]
        self.freqs_ = spec["freqs"] if isinstance(spec, dict) else None
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Connectivity matrix of each trial.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Epochs with the channels seen in ``fit``.

        Returns
        -------
        numpy.ndarray, shape (n_trials, n_channels, n_channels)
        """
        check_is_fitted(self, "sfreq_")
        arr, sfreq, _ = _unpack(X, self.sfreq_)
        _check_channels(arr, self.n_channels_)
        spec = self._setup(arr.shape[2], sfreq)
        reg = _check_regularization(self.regularization, self.reg, self.method, True)
        return _connectivity(arr, spec, self.method, True, self.regularization, reg)
