"""Covariance matrices of epoched signals: plain, delay-embedded (augmented) and per frequency band.

Every function takes epochs ``(n_trials, n_channels, n_times)`` as an array,
a :class:`~neuroenc.BrainData` or an :class:`mne.Epochs`, and returns one
matrix per trial. The estimators are those of pyRiemann 0.12's
:func:`pyriemann.geometry.covariance.covariances` (same definitions, same
numbers to rounding), computed by the compiled kernels of
:mod:`neuroenc._kernels.covariance`:

- ``scm``: sample covariance, centred, normalised by ``n_times``;
- ``cov``: :func:`numpy.cov`, centred, normalised by ``n_times - 1``;
- ``corr``: :func:`numpy.corrcoef`, the correlation matrix;
- ``lwf``: Ledoit-Wolf shrinkage towards ``trace(S) / n_channels * I``
  (:func:`sklearn.covariance.ledoit_wolf`);
- ``oas``: oracle approximating shrinkage (:func:`sklearn.covariance.oas`);
- ``sch``: Schaefer-Strimmer shrinkage towards the diagonal;
- ``shrunk``: fixed shrinkage ``(1 - a) S + a trace(S) / n_channels I`` of the sample
  covariance ``S`` (:func:`sklearn.covariance.shrunk_covariance`; pyRiemann's
  ``Covariances("scm")`` then ``Shrinkage(a)``).

pyRiemann's robust estimators (``hub``, ``stu``, ``tyl``, ``mcd``) are not
provided.

``scm``, ``cov`` and ``corr`` are checked to be positive definite: a trial
with a constant channel, a channel that is a linear combination of others
(duplicated channels, average reference) or fewer samples than channels
raises :class:`~neuroenc.errors.NotSPDError` naming the trial and the
channel, and suggesting a shrinkage estimator (``lwf``/``oas``), which is
positive definite by construction.

The *augmented* covariance (Carrara & Papadopoulo, 2023) is the covariance
of the delay embedding of each trial: ``order`` copies of the channels,
copy ``q`` starting ``q * lag`` samples later, each
``n_times - order * lag`` samples long (exactly MOABB's
``AugmentedDataset``; ``order=1`` keeps the whole trial). Row
``q * n_channels + i`` of the ``(n_channels * order)``-square matrix is
channel ``i`` of copy ``q``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone

from neuroenc._kernels.covariance import (
    STATUS_CONSTANT,
    STATUS_SINGULAR,
    covariance_batch,
    embedded_length,
)
from neuroenc.errors import DataError, LabelError, NotSPDError, ShapeError, UnknownNameError
from neuroenc.validation import check_choice, check_epochs, check_length, check_positive

__all__ = [
    "COVARIANCE_ESTIMATORS",
    "AugmentedCovariances",
    "Covariances",
    "FilterBankCovariances",
    "augmented_covariances",
    "covariances",
    "select_order_lag",
]

#: Covariance estimators (see the module docstring).
COVARIANCE_ESTIMATORS: tuple[str, ...] = ("scm", "cov", "corr", "lwf", "oas", "sch", "shrunk")
#: Estimators that regularise, hence accept rank-deficient data.
_REGULARISED = ("lwf", "oas", "sch", "shrunk")
#: Relative Cholesky pivot below which a covariance counts as rank-deficient
#: (only matrices with a condition number above 1e10 can fall below it).
_RANK_RTOL = 1e-10
_SUGGEST = "use a shrinkage estimator (estimator='lwf' or 'oas')"


# ----------------------------------------------------------------------------
# input and parameter checks


def _unpack(X: Any, name: str = "X") -> tuple[np.ndarray, float | None, list[str] | None]:
    """Epochs as float64 ``(n_trials, n_channels, n_times)``, their sampling rate and channel names."""
    sfreq = None
    ch_names = None
    data = X
    if hasattr(X, "modality") and hasattr(X, "obs") and hasattr(X, "data"):  # BrainData
        sfreq = X.sfreq
        ch_names = [str(c) for c in X.feature_names]
        data = X.data
    elif hasattr(X, "get_data") and hasattr(X, "info") and hasattr(X, "events"):  # mne.Epochs
        sfreq = float(X.info["sfreq"])
        ch_names = list(X.ch_names)
        data = None  # real by construction
    if data is not None and np.iscomplexobj(data):  # check_epochs would drop the imaginary part
        raise ShapeError(f"{name} is complex; only real-valued signals are supported.")
    arr = check_epochs(X, name)
    if arr.shape[1] == 0:
        raise ShapeError(f"{name} has shape {arr.shape}; at least one channel is needed.")
    return arr, sfreq, ch_names


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ShapeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ShapeError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def _check_estimator(estimator: Any, shrinkage: Any) -> tuple[str, float]:
    """Validated estimator name and the coefficient of ``shrunk`` (0 for the others)."""
    if not isinstance(estimator, str):
        raise UnknownNameError(
            f"estimator must be a name, got {estimator!r}; choose one of: "
            + ", ".join(repr(e) for e in COVARIANCE_ESTIMATORS)
            + "."
        )
    check_choice(estimator, COVARIANCE_ESTIMATORS, "covariance estimator")
    if estimator != "shrunk":
        if shrinkage is not None:
            raise DataError(
                f"shrinkage={shrinkage!r} is only used by estimator='shrunk' (lwf, oas and sch estimate "
                f"their own); leave it None for estimator={estimator!r}."
            )
        return estimator, 0.0
    value = 0.1 if shrinkage is None else check_positive(shrinkage, "shrinkage", strict=False)
    if value > 1.0:
        raise ShapeError(f"shrinkage must be in [0, 1], got {shrinkage!r}.")
    return estimator, value


def _check_embedding(order: Any, lag: Any, n_times: int, name: str) -> tuple[int, int, int]:
    """Validated ``order``, ``lag`` and the number of samples per embedded row."""
    order = _check_int(order, "order", 1)
    lag = _check_int(lag, "lag", 1)
    n_out = embedded_length(n_times, order, lag)
    if n_out < 2:
        raise ShapeError(
            f"order={order} and lag={lag} drop order * lag = {order * lag} samples but {name} has {n_times} "
            f"per trial, leaving {max(n_out, 0)}; at least 2 are needed (lower order or lag)."
        )
    return order, lag, n_out


def _row_label(row: int, n_channels: int, order: int, lag: int, ch_names: list[str] | None) -> str:
    channel = row % n_channels
    label = f"channel {channel}"
    if ch_names is not None and len(ch_names) == n_channels:
        label += f" ({ch_names[channel]!r})"
    if order > 1:
        label += f" shifted by {(row // n_channels) * lag} samples (row {row} of the embedding)"
    return label


# ----------------------------------------------------------------------------
# estimation


def _estimate(
    arr: np.ndarray,
    estimator: str,
    shrinkage: float,
    order: int,
    lag: int,
    n_out: int,
    n_jobs: int | None,
    ch_names: list[str] | None,
    name: str,
    context: str = "",
) -> np.ndarray:
    """Run the kernel on validated epochs and turn its per-trial status into errors."""
    n_trials, n_channels, _ = arr.shape
    p = n_channels * order
    check_rank = estimator not in _REGULARISED
    if check_rank and n_out - 1 < p:
        what = f"{n_out} samples per embedded row" if order > 1 else f"{n_out} time samples"
        raise NotSPDError(
            f"{name}[0]{context}: with {what} and {p} {'rows' if order > 1 else 'channels'}, every "
            f"{estimator!r} covariance is singular (rank at most {n_out - 1} < {p}, first: trial 0); "
            f"{_SUGGEST}, or use fewer channels{' or a lower order' if order > 1 else ''}."
        )
    cov, status, where = covariance_batch(
        arr, estimator, order=order, lag=lag, shrinkage=shrinkage, check_rank=check_rank, rtol=_RANK_RTOL, n_jobs=n_jobs
    )
    bad = status != 0
    if not check_rank and estimator != "sch":
        # Constant channels are fine for lwf/oas/shrunk, unless every channel is: the matrix is then 0.
        bad &= np.trace(cov, axis1=1, axis2=2) <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NotSPDError(
                f"{name}[{i}]{context} is constant on every channel, so its covariance is zero "
                f"({int(bad.sum())} such trial(s)); remove it."
            )
        return cov
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        label = _row_label(int(where[i]), n_channels, order, lag, ch_names)
        count = f"{int(bad.sum())} of {n_trials} trial(s) affected"
        if status[i] == STATUS_CONSTANT:
            raise NotSPDError(
                f"{name}[{i}]{context}: {label} is constant, so the {estimator!r} covariance is singular "
                f"({count}); drop that channel or {_SUGGEST}."
            )
        if status[i] == STATUS_SINGULAR:
            raise NotSPDError(
                f"{name}[{i}]{context}: the {estimator!r} covariance is rank-deficient: {label} is a linear "
                f"combination of the {'rows' if order > 1 else 'channels'} before it (duplicated channels or "
                f"a common average reference do this; {count}); {_SUGGEST}, or remove the redundant channel."
            )
    return cov


def covariances(
    X: Any, estimator: str = "scm", shrinkage: float | None = None, n_jobs: int | None = None
) -> np.ndarray:
    """Covariance matrix of every trial.

    Parameters
    ----------
    X : array-like, BrainData or mne.Epochs
        Epochs ``(n_trials, n_channels, n_times)``.
    estimator : {"scm", "cov", "corr", "lwf", "oas", "sch", "shrunk"}
        Estimator (see :mod:`neuroenc.riemann.covariance`); pyRiemann's
        definitions. Note that pyRiemann's function defaults to ``"cov"``
        and its ``Covariances`` transformer to ``"scm"``; both default to
        ``"scm"`` here.
    shrinkage : float in [0, 1], optional
        Coefficient of ``estimator="shrunk"`` (default 0.1); must be None
        for the other estimators.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (n_trials, n_channels, n_channels)
        Symmetric matrices, positive definite for every estimator
        (``scm``/``cov``/``corr`` are checked, the others are by
        construction).

    Raises
    ------
    NonFiniteError
        ``X`` holds NaN or Inf (the message gives the position).
    NotSPDError
        A ``scm``/``cov``/``corr`` covariance is singular: constant or
        linearly dependent channels, or fewer samples than channels. The
        message names the first such trial and channel.
    ShapeError, UnknownNameError, DataError
        Wrong dimensions, unknown estimator, bad ``shrinkage``.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.riemann import covariances
    >>> X = np.random.default_rng(0).standard_normal((10, 4, 200))
    >>> covariances(X, "lwf").shape
    (10, 4, 4)
    """
    estimator, value = _check_estimator(estimator, shrinkage)
    arr, _, ch_names = _unpack(X)
    _, _, n_out = _check_embedding(1, 1, arr.shape[2], "X")
    return _estimate(arr, estimator, value, 1, 1, n_out, n_jobs, ch_names, "X")


def augmented_covariances(
    X: Any,
    order: int = 1,
    lag: int = 1,
    estimator: str = "scm",
    shrinkage: float | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Augmented covariance: the covariance of each trial's delay embedding.

    The embedding (Carrara & Papadopoulo, 2023; MOABB's ``AugmentedDataset``)
    stacks ``order`` copies of the channels, copy ``q`` being
    ``x[:, q * lag : n_times - (order - q) * lag]``, so every copy has
    ``n_times - order * lag`` samples; ``order=1`` keeps the whole trial
    and gives :func:`covariances`. The embedded trial is never built: the
    kernel reads the windows in place.

    Parameters
    ----------
    X : array-like, BrainData or mne.Epochs
        Epochs ``(n_trials, n_channels, n_times)``.
    order : int
        Embedding dimension (number of copies), at least 1.
    lag : int
        Delay between consecutive copies, in samples, at least 1.
    estimator : str
        Covariance estimator of the embedded trials (see :func:`covariances`).
        The matrices are ``order`` times larger, so shrinkage (``"lwf"``,
        ``"oas"``) is usually needed for high orders.
    shrinkage : float, optional
        Coefficient of ``estimator="shrunk"``.
    n_jobs : int or None
        Threads.

    Returns
    -------
    numpy.ndarray, shape (n_trials, n_channels * order, n_channels * order)
        Row/column ``q * n_channels + i`` is channel ``i`` delayed by
        ``q * lag`` samples.

    Raises
    ------
    ShapeError
        ``order * lag`` leaves fewer than 2 samples per trial, or bad
        ``order``/``lag``.
    NotSPDError
        As :func:`covariances`, for the embedded trials (e.g. fewer
        embedded samples than ``n_channels * order`` with ``"scm"``).
    """
    estimator, value = _check_estimator(estimator, shrinkage)
    arr, _, ch_names = _unpack(X)
    order, lag, n_out = _check_embedding(order, lag, arr.shape[2], "X")
    return _estimate(arr, estimator, value, order, lag, n_out, n_jobs, ch_names, "X")


# ----------------------------------------------------------------------------
# transformers


class _StatelessTransformer(TransformerMixin, BaseEstimator):
    """Trial-wise transformer: nothing is learned, ``fit`` returns ``self``."""

    def fit(self, X: Any, y: Any = None) -> _StatelessTransformer:
        """Do nothing (the transform is trial-wise); present for the scikit-learn API.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Epochs ``(n_trials, n_channels, n_times)``.
        y : ignored

        Returns
        -------
        self
        """
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True


class Covariances(_StatelessTransformer):
    """Covariance matrices of epochs: a scikit-learn transformer over :func:`covariances`.

    Drop-in for ``pyriemann.estimation.Covariances`` (same estimators and
    numbers) ahead of a Riemannian classifier.

    Parameters
    ----------
    estimator : str
        Covariance estimator (see :func:`covariances`), default ``"scm"``.
    shrinkage : float, optional
        Coefficient of ``estimator="shrunk"``.
    n_jobs : int or None
        Threads.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.riemann import Covariances
    >>> X = np.random.default_rng(0).standard_normal((6, 3, 100))
    >>> Covariances("oas").fit_transform(X).shape
    (6, 3, 3)
    """

    def __init__(self, estimator: str = "scm", shrinkage: float | None = None, n_jobs: int | None = None) -> None:
        self.estimator = estimator
        self.shrinkage = shrinkage
        self.n_jobs = n_jobs

    def transform(self, X: Any) -> np.ndarray:
        """Covariance of each trial.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Epochs ``(n_trials, n_channels, n_times)``.

        Returns
        -------
        numpy.ndarray, shape (n_trials, n_channels, n_channels)
            Covariance matrices.
        """
        return covariances(X, self.estimator, self.shrinkage, self.n_jobs)


class AugmentedCovariances(_StatelessTransformer):
    """Augmented (delay-embedded) covariance matrices: a transformer over :func:`augmented_covariances`.

    ``AugmentedCovariances(order, lag, est)`` equals MOABB's
    ``AugmentedDataset(order, lag)`` followed by pyRiemann's
    ``Covariances(est)``, without building the embedded signals.

    Parameters
    ----------
    order : int
        Embedding dimension, at least 1 (1: plain covariance).
    lag : int
        Delay between copies in samples, at least 1.
    estimator : str
        Covariance estimator (see :func:`covariances`), default ``"scm"``.
    shrinkage : float, optional
        Coefficient of ``estimator="shrunk"``.
    n_jobs : int or None
        Threads.

    See Also
    --------
    select_order_lag : cross-validated choice of ``order`` and ``lag``.
    """

    def __init__(
        self,
        order: int = 1,
        lag: int = 1,
        estimator: str = "scm",
        shrinkage: float | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.order = order
        self.lag = lag
        self.estimator = estimator
        self.shrinkage = shrinkage
        self.n_jobs = n_jobs

    def transform(self, X: Any) -> np.ndarray:
        """Augmented covariance of each trial.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Epochs ``(n_trials, n_channels, n_times)``.

        Returns
        -------
        numpy.ndarray, shape (n_trials, n_channels * order, n_channels * order)
            Covariances of the embedded trials.
        """
        return augmented_covariances(X, self.order, self.lag, self.estimator, self.shrinkage, self.n_jobs)


def _check_bands(bands: Any, sfreq: float) -> list[tuple[float | None, float | None]]:
    if isinstance(bands, (str, bytes)) or not isinstance(bands, Sequence) or len(bands) == 0:
        raise ShapeError(f"bands must be a non-empty sequence of (l_freq, h_freq) pairs, got {bands!r}.")
    nyquist = sfreq / 2.0
    checked = []
    for k, band in enumerate(bands):
        if isinstance(band, (str, bytes)) or not isinstance(band, Sequence) or len(band) != 2:
            raise ShapeError(f"bands[{k}] must be a (l_freq, h_freq) pair, got {band!r}.")
        lo, hi = (None if f is None else check_positive(f, f"bands[{k}] frequency") for f in band)
        if lo is None and hi is None:
            raise ShapeError(f"bands[{k}] is (None, None); give at least one edge.")
        if lo is not None and hi is not None and lo >= hi:
            raise ShapeError(f"bands[{k}] = {band!r}: l_freq must be below h_freq.")
        if (hi is not None and hi >= nyquist) or (lo is not None and lo >= nyquist):
            raise ShapeError(
                f"bands[{k}] = {band!r} reaches the Nyquist frequency {nyquist:g} Hz of data sampled at {sfreq:g} Hz."
            )
        checked.append((lo, hi))
    return checked


def _band_name(lo: float | None, hi: float | None) -> str:
    if lo is None:
        return f"below {hi:g} Hz"
    if hi is None:
        return f"above {lo:g} Hz"
    return f"{lo:g}-{hi:g} Hz"


class FilterBankCovariances(_StatelessTransformer):
    """One covariance matrix per trial and frequency band.

    Each band is band-pass filtered with :func:`mne.filter.filter_data`
    (zero-phase FIR by default; ``filter_kwargs`` go to it), then its
    covariances are estimated as in :func:`covariances`.

    Parameters
    ----------
    bands : sequence of (l_freq, h_freq)
        Pass bands in Hz; ``None`` for one edge gives a low- or high-pass.
    estimator : str
        Covariance estimator (see :func:`covariances`), default ``"scm"``.
    sfreq : float, optional
        Sampling rate in Hz. None takes it from a BrainData or mne.Epochs;
        plain arrays need it.
    shrinkage : float, optional
        Coefficient of ``estimator="shrunk"``.
    filter_kwargs : dict, optional
        Extra arguments of :func:`mne.filter.filter_data` (e.g.
        ``{"method": "iir"}``, ``{"l_trans_bandwidth": 1.0}``).
    n_jobs : int or None
        Threads of the covariance kernels (filtering runs in this process).

    Notes
    -----
    The output of :meth:`transform` has shape
    ``(n_trials, n_bands, n_channels, n_channels)``, bands in the order
    given; ``X.reshape(-1, c, c)`` or a per-band classifier can follow.
    """

    def __init__(
        self,
        bands: Sequence[tuple[float | None, float | None]] = ((8.0, 12.0), (12.0, 30.0)),
        estimator: str = "scm",
        sfreq: float | None = None,
        shrinkage: float | None = None,
        filter_kwargs: dict | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.bands = bands
        self.estimator = estimator
        self.sfreq = sfreq
        self.shrinkage = shrinkage
        self.filter_kwargs = filter_kwargs
        self.n_jobs = n_jobs

    def transform(self, X: Any) -> np.ndarray:
        """Filter each band and estimate its covariances.

        Parameters
        ----------
        X : array-like, BrainData or mne.Epochs
            Epochs ``(n_trials, n_channels, n_times)``.

        Returns
        -------
        numpy.ndarray, shape (n_trials, n_bands, n_channels, n_channels)
            Covariance of every trial in every band.
        """
        import mne

        estimator, value = _check_estimator(self.estimator, self.shrinkage)
        arr, data_sfreq, ch_names = _unpack(X)
        if self.sfreq is not None:
            sfreq = check_positive(self.sfreq, "sfreq")
            if data_sfreq is not None and not np.isclose(sfreq, data_sfreq, rtol=1e-9, atol=0.0):
                raise LabelError(
                    f"sfreq={sfreq:g} Hz was given but X is sampled at {data_sfreq:g} Hz; "
                    "leave sfreq=None to use the data's own rate."
                )
        elif data_sfreq is None:
            raise ShapeError("sfreq is needed: X is a plain array, which carries no sampling rate.")
        else:
            sfreq = float(data_sfreq)
        bands = _check_bands(self.bands, sfreq)
        _, _, n_out = _check_embedding(1, 1, arr.shape[2], "X")
        kwargs = dict(self.filter_kwargs or {})
        for reserved in ("data", "sfreq", "l_freq", "h_freq", "copy"):
            if reserved in kwargs:
                raise DataError(f"filter_kwargs may not set {reserved!r}; it is set by FilterBankCovariances.")
        kwargs.setdefault("verbose", "error")
        n_trials, n_channels, _ = arr.shape
        out = np.empty((n_trials, len(bands), n_channels, n_channels))
        for b, (lo, hi) in enumerate(bands):
            filtered = mne.filter.filter_data(arr, sfreq, lo, hi, copy=True, **kwargs)
            context = f" ({_band_name(lo, hi)} band)"
            out[:, b] = _estimate(filtered, estimator, value, 1, 1, n_out, self.n_jobs, ch_names, "X", context)
        return out


# ----------------------------------------------------------------------------
# order and lag selection


class _LogEuclideanVectors(TransformerMixin, BaseEstimator):
    """Upper triangle of ``logm(C)`` with off-diagonal terms times sqrt(2).

    The tangent space at the identity (log-Euclidean metric): a light,
    pyRiemann-free default feature map for :func:`select_order_lag`.
    """

    def fit(self, X: Any, y: Any = None) -> _LogEuclideanVectors:
        return self

    def transform(self, X: Any) -> np.ndarray:
        C = np.asarray(X, dtype=np.float64)
        w, V = np.linalg.eigh(C)
        if (w <= 0).any():
            raise NotSPDError("select_order_lag: a covariance is not positive definite; use estimator='lwf' or 'oas'.")
        logs = (V * np.log(w)[:, None, :]) @ V.transpose(0, 2, 1)
        n = C.shape[-1]
        rows, cols = np.triu_indices(n)
        weights = np.where(rows == cols, 1.0, np.sqrt(2.0))
        return logs[:, rows, cols] * weights


def _default_classifier() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(_LogEuclideanVectors(), StandardScaler(), LogisticRegression(max_iter=1000))


def select_order_lag(
    X: Any,
    y: Any,
    orders: Sequence[int] = (1, 2, 3, 4, 5, 6),
    lags: Sequence[int] = (1, 2, 3, 4, 5, 6),
    cv: Any = 5,
    classifier: Any = None,
    estimator: str = "oas",
    shrinkage: float | None = None,
    scoring: Any = None,
    groups: Any = None,
    n_jobs: int | None = None,
) -> tuple[tuple[int, int], pd.DataFrame]:
    """Choose the embedding ``order`` and ``lag`` of augmented covariances by cross-validation.

    For every pair the augmented covariances of all trials are computed
    once (the transform is trial-wise, so this equals refitting it in each
    fold), then ``classifier`` is cross-validated on them with the same
    folds for every pair.

    Parameters
    ----------
    X : array-like, BrainData or mne.Epochs
        Epochs ``(n_trials, n_channels, n_times)``.
    y : array-like or str
        Labels, one per trial, or the name of a column of a BrainData's ``obs``.
    orders, lags : sequence of int
        Candidate values (each at least 1). Order 1 does not depend on the
        lag; it is evaluated once, with the smallest lag. Pairs leaving
        fewer than 2 samples, or (with an unregularised estimator) too few
        samples for the embedded channels, are skipped and marked in the
        table.
    cv : int or cross-validation splitter
        As in scikit-learn (an int gives stratified K-fold for classifiers).
    classifier : estimator, optional
        Classifier of covariance matrices, e.g. ``pyriemann.classification.MDM()``
        or a tangent-space pipeline. Default: log-Euclidean tangent vectors
        (upper triangle of the matrix logarithm), standardised, then
        logistic regression.
    estimator : str
        Covariance estimator (default ``"oas"``: augmented matrices are
        large, shrinkage keeps them well conditioned).
    shrinkage : float, optional
        Coefficient of ``estimator="shrunk"``.
    scoring : str or callable, optional
        scikit-learn scoring (default: the classifier's ``score``, accuracy).
    groups : array-like, optional
        Groups for group-aware splitters.
    n_jobs : int or None
        Threads of the covariance kernels.

    Returns
    -------
    best : (int, int)
        ``(order, lag)`` with the highest mean score; ties go to the lower
        order, then the lower lag.
    table : pandas.DataFrame
        One row per pair: ``order``, ``lag``, ``n_samples`` (per embedded
        row), ``score_mean``, ``score_std``, ``scores`` (per fold) and
        ``note`` (why a pair was skipped; empty otherwise).

    Notes
    -----
    The best score is optimistic (it is the maximum over the grid); for an
    unbiased estimate nest this selection in an outer cross-validation,
    e.g. a :class:`~sklearn.model_selection.GridSearchCV` over
    ``AugmentedCovariances`` parameters inside ``cross_val_score``.
    """
    from sklearn.model_selection import check_cv, cross_val_score

    estimator, value = _check_estimator(estimator, shrinkage)
    if isinstance(y, str):
        if not hasattr(X, "obs"):
            raise LabelError(f"y={y!r} names an obs column, but X is not a BrainData.")
        if y not in X.obs.columns:
            raise LabelError(f"y={y!r} is not a column of X.obs; available: {', '.join(map(repr, X.obs.columns))}.")
        y = X.obs[y].to_numpy()
    arr, _, ch_names = _unpack(X)
    y = np.asarray(y)
    if y.ndim != 1:
        raise LabelError(f"y must be one label per trial (1-D), got shape {y.shape}.")
    check_length(arr.shape[0], y, "y", of="trials")
    orders = sorted({_check_int(o, "orders entry", 1) for o in np.atleast_1d(orders).tolist()})
    lags = sorted({_check_int(g, "lags entry", 1) for g in np.atleast_1d(lags).tolist()})
    if not orders or not lags:
        raise ShapeError("orders and lags must each hold at least one value.")
    clf = _default_classifier() if classifier is None else classifier
    splitter = check_cv(cv, y, classifier=True)
    folds = list(splitter.split(np.zeros((arr.shape[0], 1)), y, groups))

    n_channels, n_times = arr.shape[1], arr.shape[2]
    rows = []
    best, best_score = None, -np.inf
    for order in orders:
        # lag is irrelevant for order 1: evaluate it once, with the smallest lag
        for lag in lags[:1] if order == 1 else lags:
            n_out = embedded_length(n_times, order, lag)
            row = {"order": order, "lag": lag, "n_samples": max(n_out, 0), "score_mean": np.nan}
            row.update(score_std=np.nan, scores=None, note="")
            if n_out < 2:
                row["note"] = f"order * lag = {order * lag} leaves {max(n_out, 0)} of {n_times} samples"
            elif estimator not in _REGULARISED and n_out - 1 < n_channels * order:
                row["note"] = f"{n_out} samples for {n_channels * order} embedded channels: singular {estimator!r}"
            else:
                covs = _estimate(arr, estimator, value, order, lag, n_out, n_jobs, ch_names, "X")
                scores = cross_val_score(clone(clf), covs, y, cv=folds, scoring=scoring)
                row.update(score_mean=float(scores.mean()), score_std=float(scores.std()), scores=scores.tolist())
                if row["score_mean"] > best_score:
                    best, best_score = (order, lag), row["score_mean"]
            rows.append(row)
    table = pd.DataFrame(rows, columns=["order", "lag", "n_samples", "score_mean", "score_std", "scores", "note"])
    if best is None:
        raise ShapeError(
            f"No (order, lag) pair is usable with {n_times} samples per trial and estimator={estimator!r}; "
            "use smaller orders and lags."
        )
    return best, table
