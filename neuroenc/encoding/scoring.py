"""Scores of encoding models: per-target accuracy, cross-validated predictions,
noise ceilings, variance partitioning and permutation tests.

Every function works per target (voxel, channel, neuron): the columns of
``(n_samples, n_targets)`` arrays.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from neuroenc.encoding.ridge import _check_groups, resolve_splits
from neuroenc.errors import ShapeError
from neuroenc.validation import check_array, check_choice

__all__ = [
    "METRICS",
    "score_targets",
    "r2_score_split",
    "cross_val_predict",
    "split_half_reliability",
    "noise_ceiling",
    "normalize_by_ceiling",
    "PermutationResult",
    "permutation_test",
]

#: Per-target metrics of :func:`score_targets`.
METRICS = ("pearson", "r2")


def _pair(Y_true: Any, Y_pred: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both as float64 (n_samples, n_targets) of equal shape; whether they were 1-D."""
    yt = check_array(Y_true, "Y_true", ndim=(1, 2), dtype=np.float64)
    yp = check_array(Y_pred, "Y_pred", ndim=(1, 2), dtype=np.float64)
    if yt.shape != yp.shape:
        raise ShapeError(f"Y_true has shape {yt.shape} but Y_pred has shape {yp.shape}.")
    if yt.shape[0] < 2:
        raise ShapeError(f"At least 2 samples are needed to score, got {yt.shape[0]}.")
    ravel = yt.ndim == 1
    return (yt[:, None], yp[:, None], True) if ravel else (yt, yp, False)


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise correlation; 0 where either column is constant."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    num = np.einsum("ij,ij->j", a, b)
    den = np.sqrt(np.einsum("ij,ij->j", a, a) * np.einsum("ij,ij->j", b, b))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _r2(yt: np.ndarray, yp: np.ndarray) -> np.ndarray:
    """Column-wise R²; 0 for a constant target (himalaya's convention)."""
    sse = ((yt - yp) ** 2).sum(0)
    sst = ((yt - yt.mean(0)) ** 2).sum(0)
    return 1.0 - np.divide(sse, sst, out=np.ones_like(sse), where=sst > 0)


_METRIC_FUNCS = {"pearson": _pearson, "r2": _r2}


def score_targets(Y_true: Any, Y_pred: Any, metric: str = "pearson") -> np.ndarray:
    """Score of the predictions of every target.

    Parameters
    ----------
    Y_true, Y_pred : array-like, shape (n_samples, n_targets) or (n_samples,)
        Measured and predicted responses (held-out data).
    metric : {"pearson", "r2"}
        Pearson correlation, or coefficient of determination (scikit-learn's
        ``r2_score(..., multioutput="raw_values")``). Constant targets score 0.

    Returns
    -------
    numpy.ndarray, shape (n_targets,), or float for 1-D input
    """
    func = _METRIC_FUNCS[check_choice(metric, METRICS, "metric")]
    yt, yp, ravel = _pair(Y_true, Y_pred)
    out = func(yt, yp)
    return float(out[0]) if ravel else out


def r2_score_split(Y_true: Any, Y_pred_split: Any) -> np.ndarray:
    """Each feature space's share of the R² of a joint model (product measure).

    With band predictions ``P_i`` summing to the joint prediction, band
    ``i`` gets ``sum_samples(2 y P_i - P_i * sum_j P_j) / sum_samples(y^2)``,
    after centring ``y`` and every ``P_i`` on their means; the shares add up
    to the joint R². This is himalaya's ``r2_score_split`` (which expects
    centred inputs).

    Parameters
    ----------
    Y_true : array-like, shape (n_samples, n_targets)
    Y_pred_split : array-like, shape (n_bands, n_samples, n_targets)
        Predictions of each band (e.g. ``BandedRidgeCV.predict(X, split=True)``).

    Returns
    -------
    numpy.ndarray, shape (n_bands, n_targets)
    """
    yt = check_array(Y_true, "Y_true", ndim=2, dtype=np.float64)
    parts = check_array(Y_pred_split, "Y_pred_split", ndim=3, dtype=np.float64)
    if parts.shape[1:] != yt.shape:
        raise ShapeError(f"Y_pred_split has shape {parts.shape}; expected (n_bands, {yt.shape[0]}, {yt.shape[1]}).")
    yt = yt - yt.mean(0)
    parts = parts - parts.mean(1, keepdims=True)
    total = parts.sum(0)
    sst = (yt**2).sum(0)
    shares = np.einsum("bij,ij->bj", parts, 2 * yt - total)
    return np.divide(shares, sst, out=np.zeros_like(shares), where=sst > 0)


def cross_val_predict(estimator: Any, X: Any, Y: Any, *, cv: Any = 5, groups: Any = None) -> np.ndarray:
    """Held-out predictions of every sample, each from a model fit without its fold.

    Parameters
    ----------
    estimator : estimator
        Cloned and fit per fold (e.g. :class:`~neuroenc.encoding.RidgeCV`,
        which then selects its alphas inside the training folds). If its
        ``fit`` takes ``groups``, it receives the training samples' groups.
    X : array-like, shape (n_samples, n_features)
    Y : array-like, shape (n_samples, n_targets) or (n_samples,)
    cv : int, splitter or iterable of (train, test)
        Outer splits (int: ``KFold``, or ``GroupKFold`` with ``groups``;
        ``"loo"``/None with ``groups``: leave one group out). Test folds
        must not overlap.
    groups : array-like, shape (n_samples,), optional
        Run or session of each sample.

    Returns
    -------
    numpy.ndarray, shape of ``Y``
        Predictions; samples in no test fold are NaN.
    """
    Xa = check_array(X, "X", ndim=2)
    Ya = check_array(Y, "Y", ndim=(1, 2))
    if Ya.shape[0] != Xa.shape[0]:
        raise ShapeError(f"Y has {Ya.shape[0]} samples but X has {Xa.shape[0]}.")
    g = _check_groups(groups, Xa.shape[0])
    splits = resolve_splits(cv, Xa.shape[0], g)
    if splits is None:
        raise ShapeError("cross_val_predict needs explicit folds: give cv as an int, a splitter or groups.")
    seen = np.zeros(Xa.shape[0], dtype=int)
    for _, test in splits:
        seen[test] += 1
    if (seen > 1).any():
        raise ShapeError(f"Test folds overlap (sample {int(np.argmax(seen > 1))} is in several).")
    takes_groups = g is not None and "groups" in inspect.signature(estimator.fit).parameters
    out = np.full(Ya.shape, np.nan)
    for train, test in splits:
        model = clone(estimator)
        extra = {"groups": g[train]} if takes_groups else {}
        model.fit(Xa[train], Ya[train], **extra)
        out[test] = model.predict(Xa[test])
    return out


def _repeats(Y_repeats: Any) -> np.ndarray:
    R = check_array(Y_repeats, "Y_repeats", ndim=(2, 3), dtype=np.float64)
    if R.ndim == 2:
        R = R[:, :, None]
    if R.shape[0] < 2:
        raise ShapeError(f"Y_repeats has {R.shape[0]} repetition(s); at least 2 are needed.")
    if R.shape[1] < 3:
        raise ShapeError(f"Y_repeats has {R.shape[1]} stimuli/samples; at least 3 are needed to correlate.")
    return R


def split_half_reliability(Y_repeats: Any, n_splits: int = 100, random_state: Any = 0) -> np.ndarray:
    """Spearman-Brown corrected split-half reliability of every target.

    The repetitions are split at random into two halves (⌊n/2⌋ and ⌈n/2⌉),
    each half is averaged, the two averages are correlated per target, the
    correlations are averaged over splits, and the mean ``r`` is corrected to
    the full number of repetitions by Spearman-Brown, ``2 r / (1 + r)``.

    Parameters
    ----------
    Y_repeats : array-like, shape (n_repeats, n_samples, n_targets) or (n_repeats, n_samples)
        Responses to repeated presentations of the same stimuli/time course.
    n_splits : int
        Random splits averaged (with 2 repetitions there is only one).
    random_state : int, numpy.random.Generator or None
        Seed of the splits.

    Returns
    -------
    numpy.ndarray, shape (n_targets,)
        Reliability of the average over all repetitions (at most 1; negative
        when the halves anticorrelate).
    """
    R = _repeats(Y_repeats)
    n_rep = R.shape[0]
    n_splits = 1 if n_rep == 2 else int(n_splits)
    if n_splits < 1:
        raise ShapeError(f"n_splits must be at least 1, got {n_splits}.")
    rng = np.random.default_rng(random_state)
    r = np.zeros(R.shape[2])
    for _ in range(n_splits):
        perm = rng.permutation(n_rep)
        half = n_rep // 2
        r += _pearson(R[perm[:half]].mean(0), R[perm[half:]].mean(0))
    r /= n_splits
    return 2 * r / (1 + r)


def noise_ceiling(Y_repeats: Any, metric: str = "pearson", n_splits: int = 100, random_state: Any = 0) -> np.ndarray:
    """Best score a model can reach on the average response, given the noise.

    With ``rho`` the Spearman-Brown split-half reliability
    (:func:`split_half_reliability`) of the response averaged over
    repetitions, a noise-free prediction correlates at most ``sqrt(rho)``
    with that average (``metric="pearson"``) and explains at most ``rho`` of
    its variance (``metric="r2"``). Negative reliabilities give a ceiling of 0.

    Parameters
    ----------
    Y_repeats : array-like, shape (n_repeats, n_samples, n_targets)
    metric : {"pearson", "r2"}
    n_splits, random_state
        As in :func:`split_half_reliability`.

    Returns
    -------
    numpy.ndarray, shape (n_targets,)
    """
    check_choice(metric, METRICS, "metric")
    rho = np.clip(split_half_reliability(Y_repeats, n_splits, random_state), 0.0, 1.0)
    return np.sqrt(rho) if metric == "pearson" else rho


def normalize_by_ceiling(scores: Any, ceiling: Any) -> np.ndarray:
    """Scores divided by the noise ceiling; NaN where the ceiling is 0.

    Parameters
    ----------
    scores : array-like, shape (n_targets,)
    ceiling : array-like, shape (n_targets,)
        From :func:`noise_ceiling` with the same metric.

    Returns
    -------
    numpy.ndarray, shape (n_targets,)
    """
    s = check_array(scores, "scores", ndim=(0, 1), dtype=np.float64)
    c = check_array(ceiling, "ceiling", ndim=(0, 1), dtype=np.float64)
    if s.shape != c.shape:
        raise ShapeError(f"scores has shape {s.shape} but ceiling has shape {c.shape}.")
    return np.divide(s, c, out=np.full(np.shape(s), np.nan), where=c > 0)


@dataclass
class PermutationResult:
    """Output of :func:`permutation_test`.

    Attributes
    ----------
    scores : numpy.ndarray, shape (n_targets,)
        Observed score per target.
    p_values : numpy.ndarray, shape (n_targets,)
        Uncorrected one-sided p-values, ``(1 + #{null >= observed}) / (1 + n_permutations)``.
    p_values_fwe : numpy.ndarray, shape (n_targets,)
        Family-wise corrected p-values from the null distribution of the
        maximum over targets.
    null_max : numpy.ndarray, shape (n_permutations,)
        Maximum score over targets of each permutation.
    """

    scores: np.ndarray
    p_values: np.ndarray
    p_values_fwe: np.ndarray
    null_max: np.ndarray


def _block_permutation(rng: np.random.Generator, n: int, block_size: int) -> np.ndarray:
    starts = np.arange(0, n, block_size)
    order = rng.permutation(len(starts))
    return np.concatenate([np.arange(starts[i], min(starts[i] + block_size, n)) for i in order])


def permutation_test(
    Y_true: Any,
    Y_pred: Any,
    metric: str = "pearson",
    *,
    n_permutations: int = 1000,
    block_size: int = 1,
    random_state: Any = 0,
) -> PermutationResult:
    """Permutation test of every target's score, with max-statistic correction.

    The samples of ``Y_pred`` are permuted, the same permutation for all
    targets (which keeps their dependence, as the maximum statistic needs).
    For time series, ``block_size`` permutes blocks of consecutive samples
    instead, preserving autocorrelation within blocks.

    Parameters
    ----------
    Y_true, Y_pred : array-like, shape (n_samples, n_targets)
        Held-out responses and predictions.
    metric : {"pearson", "r2"}
    n_permutations : int
    block_size : int
        Samples per permuted block (1: plain permutation).
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    PermutationResult
    """
    func = _METRIC_FUNCS[check_choice(metric, METRICS, "metric")]
    yt, yp, _ = _pair(Y_true, Y_pred)
    n = yt.shape[0]
    if int(n_permutations) < 1:
        raise ShapeError(f"n_permutations must be at least 1, got {n_permutations}.")
    if int(block_size) < 1 or int(block_size) > n // 2:
        raise ShapeError(f"block_size must be between 1 and n_samples / 2 = {n // 2}, got {block_size}.")
    observed = func(yt, yp)
    # Permuting rows keeps column means and norms: only the cross product
    # of true and predicted values changes, one pass per permutation.
    if metric == "pearson":
        a = yt - yt.mean(0)
        b = yp - yp.mean(0)
        norm = np.sqrt(np.einsum("ij,ij->j", a, a) * np.einsum("ij,ij->j", b, b))
        scale, offset = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0), 0.0
    else:
        a, b = yt, yp
        sst = ((yt - yt.mean(0)) ** 2).sum(0)
        inv = np.divide(1.0, sst, out=np.zeros_like(sst), where=sst > 0)
        # R² = 1 - (|y|² - 2 y.p + |p|²) / sst
        scale = 2.0 * inv
        offset = 1.0 - (np.einsum("ij,ij->j", yt, yt) + np.einsum("ij,ij->j", yp, yp)) * inv
        offset = np.where(sst > 0, offset, 0.0)
    rng = np.random.default_rng(random_state)
    exceed = np.zeros(yt.shape[1])
    null_max = np.empty(int(n_permutations))
    for k in range(int(n_permutations)):
        perm = rng.permutation(n) if block_size == 1 else _block_permutation(rng, n, int(block_size))
        null = np.einsum("ij,ij->j", a, b[perm]) * scale + offset
        exceed += null >= observed
        null_max[k] = null.max()
    p = (1.0 + exceed) / (1.0 + n_permutations)
    p_fwe = (1.0 + (null_max[None, :] >= observed[:, None]).sum(1)) / (1.0 + n_permutations)
    return PermutationResult(observed, p, p_fwe, null_max)
