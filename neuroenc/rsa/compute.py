"""Representational dissimilarity matrices (RDMs) from brain responses.

:func:`compute_rdm` turns observations (trials, volumes, GLM estimates) into
an :class:`~neuroenc.rsa.rdms.RDMs`: one RDM for data without a time axis,
one per time point or sliding window for time-resolved data. Numbers equal
rsatoolbox 0.3.2's ``calc_rdm`` / ``calc_rdm_movie`` (see the method table
of :func:`compute_rdm` for the name mapping).

Two lower-level functions serve code that computes many RDMs at once, such
as a searchlight:

- :func:`condition_means` averages observations per condition (and per
  cross-validation fold) in one pass over the data;
- :func:`rdm_vectors` computes the dissimilarity vectors of a batch of
  pattern sets (e.g. the spheres of a searchlight, gathered from the
  condition means of the whole brain) in one kernel call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from neuroenc.errors import DataError, LabelError, ShapeError
from neuroenc.rsa.noise import NOISE_METHODS, cholesky_factor, cov_from_unbalanced, observations
from neuroenc.rsa.rdms import RDMs
from neuroenc.validation import check_array, check_choice, check_length, check_names, check_positive

if TYPE_CHECKING:  # pragma: no cover
    from neuroenc.braindata import BrainData

__all__ = [
    "METHODS",
    "CROSS_VALIDATED_METHODS",
    "ConditionMeans",
    "compute_rdm",
    "condition_means",
    "rdm_vectors",
]

#: dissimilarity measures understood by :func:`compute_rdm` and :func:`rdm_vectors`
METHODS = ("euclidean", "sqeuclidean", "correlation", "cosine", "mahalanobis", "crossnobis", "poisson", "poisson_cv")
#: methods that need per-fold condition means
CROSS_VALIDATED_METHODS = ("crossnobis", "poisson_cv")
_NOISE_USERS = ("mahalanobis", "crossnobis")
#: BrainData ``obs`` columns copied into the RDM metadata when constant
_DESCRIPTOR_COLUMNS = ("subject", "session", "task", "roi")


class ConditionMeans(NamedTuple):
    """Per-fold condition means returned by :func:`condition_means`."""

    #: (n_folds, n_conditions, ...) mean of the observations of each cell
    means: np.ndarray
    #: (n_folds, n_conditions) number of observations of each cell
    counts: np.ndarray
    #: condition labels, sorted (the order of the RDM rows)
    conditions: np.ndarray
    #: fold labels, sorted; None when no folds were given (one fold)
    folds: np.ndarray | None


# ----------------------------------------------------------------------
# grouping
def _codes(labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        values, inverse = np.unique(labels, return_inverse=True)
    except TypeError as exc:
        raise LabelError(f"{what} labels cannot be sorted (mixed types?): {exc}") from exc
    return values, inverse.reshape(-1)


def _cell_counts(cond_idx: np.ndarray, fold_idx: np.ndarray, n_cond: int, n_folds: int) -> np.ndarray:
    return np.bincount(fold_idx * n_cond + cond_idx, minlength=n_folds * n_cond).reshape(n_folds, n_cond)


def _check_cells(counts: np.ndarray, conditions: np.ndarray, folds: np.ndarray | None) -> None:
    empty = np.argwhere(counts == 0)
    if empty.size:
        k, c = empty[0]
        raise LabelError(
            f"Condition {_plain(conditions[c])!r} has no observation in fold {_plain(folds[k])!r} ({len(empty)} empty "
            "(fold, condition) cell(s)); every condition must occur in every fold."
        )


def _group_means(
    X: np.ndarray, cond_idx: np.ndarray, fold_idx: np.ndarray, counts: np.ndarray, n_jobs: int | None
) -> np.ndarray:
    from neuroenc._kernels.rdm import group_sums

    n_folds, n_cond = counts.shape
    sums = group_sums(X.reshape(X.shape[0], -1), fold_idx * n_cond + cond_idx, n_folds * n_cond, n_jobs)
    means = sums / counts.reshape(-1, 1)
    return means.reshape((n_folds, n_cond) + X.shape[1:])


def _fold_labels(data: Any, folds: Any, n_obs: int) -> np.ndarray | None:
    if folds is None:
        return None
    if isinstance(folds, str):
        if not hasattr(data, "obs"):
            raise LabelError(f"folds={folds!r} names a column, but the data are an array, not a BrainData.")
        check_names([folds], data.obs.columns, "obs column")
        folds = data.obs[folds].to_numpy()
    labels = np.asarray(folds)
    if labels.ndim != 1:
        raise LabelError(f"folds must be one label per observation; got shape {labels.shape}.")
    check_length(n_obs, labels, "folds")
    return labels


def condition_means(
    data: BrainData | np.ndarray, conditions: Any = None, folds: Any = None, *, n_jobs: int | None = None
) -> ConditionMeans:
    """Average observations per condition, optionally per cross-validation fold.

    Parameters
    ----------
    data : BrainData or array-like, shape (n_obs, ...)
        Observations; any trailing shape (features, features x times).
    conditions : str or sequence, optional
        Condition of each observation; for a BrainData, None uses its
        ``condition`` column and a string names another ``obs`` column.
    folds : str or sequence, optional
        Fold (e.g. run) of each observation, or an ``obs`` column name; None
        averages over all observations (one fold).
    n_jobs : int or None
        Threads.

    Returns
    -------
    ConditionMeans
        ``means`` (n_folds, n_conditions, ...), ``counts`` (n_folds,
        n_conditions), sorted ``conditions`` and ``folds`` labels. The
        ``means`` of a searchlight's spheres are ``means[..., sphere]``, and
        ``means``/``counts`` are the inputs of :func:`rdm_vectors` for
        cross-validated methods.

    Raises
    ------
    LabelError
        Mismatched label lengths, or a condition missing from a fold.
    """
    X, labels = observations(data, conditions)
    fold_labels = _fold_labels(data, folds, X.shape[0])
    cond_values, cond_idx = _codes(labels, "condition")
    if fold_labels is None:
        fold_values, fold_idx = None, np.zeros_like(cond_idx)
    else:
        fold_values, fold_idx = _codes(fold_labels, "fold")
    n_folds = 1 if fold_values is None else len(fold_values)
    counts = _cell_counts(cond_idx, fold_idx, len(cond_values), n_folds)
    _check_cells(counts, cond_values, fold_values)
    return ConditionMeans(_group_means(X, cond_idx, fold_idx, counts, n_jobs), counts, cond_values, fold_values)


# ----------------------------------------------------------------------
# noise models
class _Noise:
    """How a noise model enters the products ``A B^T``.

    A precision ``P`` multiplies one side (``B = M P^T``, so that
    ``A B^T = M P M^T`` exactly as rsatoolbox computes it); a covariance
    ``C = L L^T`` whitens both sides (``M L^{-T}``), which never forms the
    inverse; per-fold precisions are handled by :func:`_crossnobis_per_fold`.
    """

    def __init__(
        self,
        precision: np.ndarray | None = None,
        chol: np.ndarray | None = None,
        inv_std: np.ndarray | None = None,
        per_fold: np.ndarray | None = None,
    ) -> None:
        self.precision = precision
        self.chol = chol
        self.inv_std = inv_std
        self.per_fold = per_fold

    def sides(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(left, right)`` for rows (n_sets, n_rows, n_features); right None means right = left."""
        n_feat = rows.shape[-1]
        if self.precision is not None:
            P = self.precision
            if P.ndim == 2:  # one product for every set
                right = (rows.reshape(-1, n_feat) @ P.T).reshape(rows.shape)
            else:
                right = np.matmul(rows, P.transpose(0, 2, 1))
            return rows, right
        if self.chol is not None:
            from scipy.linalg import solve_triangular

            flat = solve_triangular(self.chol, rows.reshape(-1, n_feat).T, lower=True, check_finite=False)
            return np.ascontiguousarray(flat.T).reshape(rows.shape), None
        if self.inv_std is not None:
            return rows * self.inv_std, None
        return rows, None


def _precision_array(noise: Any, n_features: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    P = check_array(noise, "noise precision", ndim=(2, 2 + len(batch)) if batch else 2, dtype=np.float64)
    allowed = [(n_features, n_features)] + ([batch + (n_features, n_features)] if batch else [])
    if P.shape not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ShapeError(f"The noise precision has shape {P.shape}; expected {expected}.")
    return P


def _per_fold_precisions(noise: Any, n_features: int, n_folds: int) -> np.ndarray:
    P = check_array(np.asarray(noise) if not isinstance(noise, np.ndarray) else noise, "noise", ndim=3)
    if P.shape != (n_folds, n_features, n_features):
        raise ShapeError(
            f"Per-fold noise precisions have shape {P.shape}; expected ({n_folds}, {n_features}, {n_features}) "
            "(one precision per fold)."
        )
    return P.astype(np.float64, copy=False)


# ----------------------------------------------------------------------
# dissimilarities of prepared pattern sets
def _training_means(m: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Leave-one-fold-out means: for fold k, the mean of the observations of all other folds.

    rsatoolbox averages the training observations, so a fold weighs by its
    number of observations: ``(sum_l n_l m_l - n_k m_k) / (N - n_k)``.
    """
    w = counts.astype(np.float64)
    totals = np.einsum("kc,skcf->scf", w, m)
    return (totals[:, None] - w[None, :, :, None] * m) / (w.sum(0) - w)[None, :, :, None]


def _crossnobis_symmetric(m: np.ndarray, n: np.ndarray, n_jobs: int | None) -> np.ndarray:
    """Crossnobis of whitened fold means when every condition has ``n[k]`` observations in fold k.

    With ``u = sum_l n_l m_l``, ``a_k = 1 / (N - n_k)`` and training means
    ``a_k (u - n_k m_k)``, the summed fold products are
    ``u v^T - sum_k a_k n_k m_k m_k^T`` with ``v = sum_k a_k m_k`` (the
    ``S S^T - sum_k M_k M_k^T`` of equal folds): one symmetric product over
    all folds (half the work of the leave-one-out products) and one product
    of a single fold's size.
    """
    from neuroenc._kernels.rdm import DIFFERENCE, pair_dissimilarities

    n_folds, n_feat = m.shape[1], m.shape[-1]
    n = n.astype(np.float64)
    a = 1.0 / (n.sum() - n)
    scale = 1.0 / (n_folds * n_feat)
    u = np.einsum("k,skcf->scf", n, m)
    if np.all(n == n[0]):  # v = (a / n) u: symmetric
        first = pair_dissimilarities(u, None, DIFFERENCE, scale * a[0] / n[0], n_jobs)
    else:
        first = pair_dissimilarities(u, np.einsum("k,skcf->scf", a, m), DIFFERENCE, scale, n_jobs)
    within = pair_dissimilarities(m * np.sqrt(a * n)[None, :, None, None], None, DIFFERENCE, scale, n_jobs)
    return first - within


def _normalised_rows(x: np.ndarray, centre: bool, strict: bool, conditions: Any) -> np.ndarray:
    if centre:
        x = x - x.mean(axis=-1, keepdims=True)
    norms = np.sqrt(np.einsum("...f,...f->...", x, x))
    if strict and np.any(norms == 0):
        s, c = np.argwhere(norms == 0)[0]
        what = "constant" if centre else "all zero"
        raise DataError(
            f"The pattern of condition {_label(conditions, c)!r}{_at_set(s, x.shape[0])} is {what}; "
            "its correlation/cosine distance is undefined."
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / norms[..., None]


def _rates(x: np.ndarray, prior_lambda: float, prior_weight: float, conditions: Any) -> np.ndarray:
    """rsatoolbox's prior-regularised Poisson rates ``(x + lambda w) / (1 + w)``; they must be positive."""
    rates = (x + prior_lambda * prior_weight) / (1.0 + prior_weight)
    if np.any(rates <= 0):
        pos = np.argwhere(rates <= 0)[0]
        raise DataError(
            f"Poisson dissimilarities need non-negative counts: the mean of condition "
            f"{_label(conditions, pos[-2])!r} is {x[tuple(pos)]:.4g} at feature {pos[-1]}."
        )
    return rates


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for messages: 'face', 3, not np.str_('face'))."""
    return value.item() if isinstance(value, np.generic) else value


def _label(conditions: Any, i: int) -> Any:
    return _plain(conditions[i]) if conditions is not None else int(i)


def _at_set(s: int, n_sets: int) -> str:
    return f" at time index {s}" if n_sets > 1 else ""


def _crossnobis_per_fold(m: np.ndarray, precisions: np.ndarray, n_jobs: int | None) -> np.ndarray:
    """rsatoolbox's crossnobis with one precision per fold.

    Every pair of folds (i < j) contributes ``d(M_i P_ij M_j^T)`` with
    ``P_ij = ((P_i^-1 + P_j^-1) / 2)^-1``, the precision of the noise of a
    difference between the two folds; the RDM is their average.
    """
    from neuroenc._kernels.rdm import DIFFERENCE, pairs_from_products

    n_sets, n_folds, n_cond, n_feat = m.shape
    variances = np.linalg.inv(precisions)
    products = np.zeros((n_sets, n_cond, n_cond))
    n_fold_pairs = 0
    for i in range(n_folds):
        for j in range(i + 1, n_folds):
            P = np.linalg.inv((variances[i] + variances[j]) / 2)
            products += np.matmul(m[:, i] @ P, m[:, j].transpose(0, 2, 1))
            n_fold_pairs += 1
    return pairs_from_products(products, DIFFERENCE, 1.0 / (n_fold_pairs * n_feat), n_jobs=n_jobs)


def _dissimilarities(
    patterns: np.ndarray,
    method: str,
    *,
    counts: np.ndarray | None,
    noise: _Noise,
    prior_lambda: float,
    prior_weight: float,
    strict: bool,
    conditions: Any,
    n_jobs: int | None,
) -> np.ndarray:
    """Vectors (n_sets, n_pairs) from prepared patterns.

    ``patterns`` is (n_sets, n_cond, n_feat), or (n_sets, n_folds, n_cond,
    n_feat) for cross-validated methods.
    """
    from neuroenc._kernels.rdm import DIFFERENCE, ONE_MINUS, pair_dissimilarities

    n_feat = patterns.shape[-1]
    if method in ("euclidean", "sqeuclidean", "mahalanobis"):
        left, right = noise.sides(patterns)
        out = pair_dissimilarities(left, right, DIFFERENCE, 1.0 / n_feat, n_jobs)
        if method == "euclidean":
            np.sqrt(np.maximum(out, 0.0, out=out), out=out)
        return out
    if method in ("correlation", "cosine"):
        rows = _normalised_rows(patterns, method == "correlation", strict, conditions)
        return pair_dissimilarities(rows, None, ONE_MINUS, 1.0, n_jobs)
    if method == "poisson":
        rates = _rates(patterns, prior_lambda, prior_weight, conditions)
        return pair_dissimilarities(rates, np.log(rates), DIFFERENCE, 1.0 / n_feat, n_jobs)

    n_sets, n_folds, n_cond, _ = patterns.shape
    if counts is None:
        counts = np.ones((n_folds, n_cond), dtype=np.int64)
    scale = 1.0 / (n_folds * n_feat)
    if method == "poisson_cv":
        train = _rates(_training_means(patterns, counts), prior_lambda, prior_weight, conditions)
        test = np.log(_rates(patterns, prior_lambda, prior_weight, conditions))
        return pair_dissimilarities(train, test, DIFFERENCE, scale, n_jobs)
    # crossnobis
    if noise.per_fold is not None:
        return _crossnobis_per_fold(patterns, noise.per_fold, n_jobs)
    left, right = noise.sides(patterns.reshape(n_sets, n_folds * n_cond, n_feat))
    left = left.reshape(patterns.shape)
    if right is None and np.all(counts == counts[:, :1]):
        return _crossnobis_symmetric(left, counts[:, 0], n_jobs)
    right = left if right is None else right.reshape(patterns.shape)
    train = _training_means(left, counts)
    return pair_dissimilarities(train, right, DIFFERENCE, scale, n_jobs)


def _check_prior(prior_lambda: float, prior_weight: float) -> tuple[float, float]:
    return check_positive(prior_lambda, "prior_lambda"), check_positive(prior_weight, "prior_weight", strict=False)


def rdm_vectors(
    patterns: Any,
    method: str,
    *,
    counts: Any = None,
    precision: Any = None,
    fold_precisions: Any = None,
    remove_mean: bool = False,
    prior_lambda: float = 1.0,
    prior_weight: float = 0.1,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Dissimilarity vectors of one or many sets of condition patterns, in one kernel call.

    The array-level engine under :func:`compute_rdm`, for code that computes
    many RDMs at once (a searchlight: one set per sphere; time points;
    bootstrap samples). Compute the condition means once with
    :func:`condition_means`, gather the sets (e.g. ``means[..., sphere]``,
    stacked), and pass them here. Sets must have equal sizes; group spheres
    of different sizes.

    Parameters
    ----------
    patterns : array-like
        ``(..., n_conditions, n_features)`` condition means, or, for the
        cross-validated methods ``crossnobis`` and ``poisson_cv``,
        ``(..., n_folds, n_conditions, n_features)`` per-fold means. Leading
        dimensions are a batch of independent sets.
    method : str
        One of :data:`METHODS` (see :func:`compute_rdm` for definitions).
    counts : array-like of int, shape (n_folds, n_conditions), optional
        Observations behind each per-fold mean (``ConditionMeans.counts``);
        training means weigh folds by them, as rsatoolbox does. Default: all
        equal.
    precision : array-like, optional
        Noise precision for ``mahalanobis``/``crossnobis``: ``(n_features,
        n_features)`` for every set, or ``(..., n_features, n_features)``
        with the batch dimensions of ``patterns`` (one per sphere). None
        means the identity.
    fold_precisions : array-like, shape (n_folds, n_features, n_features), optional
        One precision per fold for ``crossnobis`` (rsatoolbox's list of
        noises: averages over fold pairs, see :func:`compute_rdm`).
    remove_mean : bool
        Subtract each pattern's mean over features first (not allowed for
        the Poisson methods; no effect on ``correlation``).
    prior_lambda, prior_weight : float
        Prior of the Poisson methods.
    n_jobs : int or None
        Threads.

    Returns
    -------
    numpy.ndarray, shape (..., n_conditions * (n_conditions - 1) / 2)
        Upper triangles, row-major (:func:`scipy.spatial.distance.squareform`
        order). A set whose pattern has zero norm gives NaN for its
        correlation/cosine pairs (instead of an error, so that one
        degenerate sphere does not stop a searchlight).
    """
    method = check_choice(method, METHODS, "RDM method")
    cv = method in CROSS_VALIDATED_METHODS
    n_core = 3 if cv else 2
    X = check_array(patterns, "patterns", dtype=np.float64)
    if X.ndim < n_core:
        shape = "(..., n_folds, n_conditions, n_features)" if cv else "(..., n_conditions, n_features)"
        raise ShapeError(f"patterns has shape {X.shape}; {method} needs {shape}.")
    batch, core = X.shape[:-n_core], X.shape[-n_core:]
    n_cond, n_feat = core[-2:]
    if n_cond < 2:
        raise ShapeError(f"patterns has {n_cond} condition(s); an RDM needs at least 2.")
    X = X.reshape((-1,) + core)
    prior_lambda, prior_weight = _check_prior(prior_lambda, prior_weight)
    noise = _Noise()
    if precision is not None or fold_precisions is not None:
        if method not in _NOISE_USERS:
            raise DataError(f"A noise precision is only used by {_NOISE_USERS}, not by {method!r}.")
        if precision is not None and fold_precisions is not None:
            raise DataError("Pass either precision or fold_precisions, not both.")
    if precision is not None:
        P = _precision_array(precision, n_feat, batch)
        noise = _Noise(precision=P if P.ndim == 2 else P.reshape((-1, n_feat, n_feat)))
    if fold_precisions is not None:
        if method != "crossnobis":
            raise DataError("fold_precisions is only used by crossnobis.")
        noise = _Noise(per_fold=_per_fold_precisions(fold_precisions, n_feat, core[0]))
    if cv:
        counts = _fold_counts(counts, core[:2])
        if core[0] < 2:
            raise ShapeError(f"{method} needs at least 2 folds; patterns have {core[0]}.")
    elif counts is not None:
        raise DataError(f"counts is only used by the cross-validated methods {CROSS_VALIDATED_METHODS}.")
    _check_remove_mean(remove_mean, method)
    X = _remove_mean(X, remove_mean)
    out = _dissimilarities(
        X,
        method,
        counts=counts,
        noise=noise,
        prior_lambda=prior_lambda,
        prior_weight=prior_weight,
        strict=False,
        conditions=None,
        n_jobs=n_jobs,
    )
    return out.reshape(batch + (out.shape[-1],))


def _fold_counts(counts: Any, shape: tuple[int, int]) -> np.ndarray:
    if counts is None:
        return np.ones(shape, dtype=np.int64)
    c = check_array(counts, "counts", ndim=2, dtype=np.float64)
    if c.shape != shape:
        raise ShapeError(f"counts has shape {c.shape}; expected (n_folds, n_conditions) = {shape}.")
    if np.any(c < 1) or np.any(c != np.round(c)):
        raise DataError("counts must be positive integers (observations behind each per-fold mean).")
    return c.astype(np.int64)


def _check_remove_mean(remove_mean: bool, method: str) -> None:
    if remove_mean and method in ("poisson", "poisson_cv"):
        raise DataError("remove_mean would make Poisson rates negative; it is not available for Poisson methods.")


def _remove_mean(X: np.ndarray, remove_mean: bool) -> np.ndarray:
    return X - X.mean(axis=-1, keepdims=True) if remove_mean else X


# ----------------------------------------------------------------------
# the user-facing entry point
def _default_folds(cond_idx: np.ndarray, n_cond: int) -> np.ndarray:
    """rsatoolbox's default split: the k-th observation of every condition forms fold k."""
    counts = np.bincount(cond_idx, minlength=n_cond)
    if np.any(counts != counts[0]):
        raise LabelError(
            "Cross-validation needs folds (e.g. runs): pass folds=..., or give every condition the same number "
            f"of observations to split them by repetition (counts range from {counts.min()} to {counts.max()})."
        )
    order = np.argsort(cond_idx, kind="stable")
    rank = np.empty_like(cond_idx)
    rank[order] = np.arange(len(cond_idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    return rank


def _window_means(x: np.ndarray, times: np.ndarray, window: int | None, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ``x`` (..., n_times) over windows of ``window`` samples every ``step`` samples."""
    if window is None and step == 1:
        return x, times
    from numpy.lib.stride_tricks import sliding_window_view

    window = 1 if window is None else window
    starts = slice(None, None, step)
    return (
        sliding_window_view(x, window, axis=-1)[..., starts, :].mean(axis=-1),
        sliding_window_view(times, window)[starts].mean(axis=-1),
    )


def _check_window(window: Any, step: Any, n_times: int | None) -> tuple[int | None, int]:
    if n_times is None:
        if window is not None or step != 1:
            raise ShapeError("window and step apply to data with a time axis (n_obs, n_features, n_times).")
        return None, 1
    if window is not None:
        if not isinstance(window, (int, np.integer)) or not 1 <= window <= n_times:
            raise ShapeError(f"window must be an integer number of samples in [1, {n_times}], got {window!r}.")
        window = int(window)
    if not isinstance(step, (int, np.integer)) or step < 1:
        raise ShapeError(f"step must be a positive integer number of samples, got {step!r}.")
    return window, int(step)


def _descriptors(data: Any) -> dict:
    if not hasattr(data, "obs"):
        return {}
    out = {}
    for col in _DESCRIPTOR_COLUMNS:
        if col in data.obs.columns and data.obs[col].nunique(dropna=False) == 1:
            out[col] = data.obs[col].iloc[0]
    return out


def _noise_model(
    noise: Any, method: str, X: np.ndarray, labels: np.ndarray, n_folds: int | None
) -> tuple[_Noise, str | None]:
    """The noise model and a description for the metadata."""
    if noise is None:
        return _Noise(), None
    if method not in _NOISE_USERS:
        raise DataError(f"noise is only used by {_NOISE_USERS}, not by {method!r}.")
    n_feat = X.shape[1]
    if isinstance(noise, str):
        check_choice(noise, NOISE_METHODS, "noise estimation method")
        cov = cov_from_unbalanced(X, labels, method=noise)
        if noise == "diag":
            return _Noise(inv_std=1.0 / np.sqrt(np.diagonal(cov))), noise
        return _Noise(chol=cholesky_factor(cov)), noise
    if isinstance(noise, (list, tuple)) or np.ndim(noise) == 3:
        if method != "crossnobis":
            raise DataError("A list of per-fold noise precisions is only used by crossnobis.")
        return _Noise(per_fold=_per_fold_precisions(noise, n_feat, n_folds)), "per-fold precision"
    return _Noise(precision=_precision_array(noise, n_feat)), "precision"


def compute_rdm(
    data: BrainData | np.ndarray,
    method: str,
    *,
    conditions: Any = None,
    folds: Any = None,
    noise: Any = None,
    times: Any = None,
    window: int | None = None,
    step: int = 1,
    remove_mean: bool = False,
    prior_lambda: float = 1.0,
    prior_weight: float = 0.1,
    metadata: dict | None = None,
    n_jobs: int | None = None,
) -> RDMs:
    """Representational dissimilarity matrices of brain responses.

    Observations of the same condition are averaged (within each fold for
    the cross-validated methods); the RDM rows follow the sorted condition
    labels, as in rsatoolbox. Data with a time axis give one RDM per time
    point (or per window), all computed in one batched kernel call.

    Methods (``m_i``: mean pattern of condition *i* over *p* features;
    ``P``: noise precision; every squared measure is divided by *p*, as in
    rsatoolbox):

    ===============  ===============================================  =====================================
    method           dissimilarity of conditions *i*, *j*             rsatoolbox 0.3.2 ``calc_rdm`` method
    ===============  ===============================================  =====================================
    ``sqeuclidean``  ``||m_i - m_j||^2 / p``                          ``'euclidean'`` (identical numbers)
    ``euclidean``    ``sqrt(||m_i - m_j||^2 / p)``                    square root of ``'euclidean'``
    ``correlation``  ``1 - pearson(m_i, m_j)``                        ``'correlation'``
    ``cosine``       ``1 - m_i.m_j / (||m_i|| ||m_j||)``              (none; scipy's ``'cosine'``)
    ``mahalanobis``  ``(m_i - m_j) P (m_i - m_j)^T / p``              ``'mahalanobis'`` (squared)
    ``crossnobis``   mean over folds k of                             ``'crossnobis'``
                     ``(a_ki - a_kj) P (m_ki - m_kj)^T / p``
    ``poisson``      ``(r_i - r_j).(log r_i - log r_j) / p``          ``'poisson'``
    ``poisson_cv``   mean over folds k of                             ``'poisson_cv'`` (see below)
                     ``(ra_ki - ra_kj).(log r_ki - log r_kj) / p``
    ===============  ===============================================  =====================================

    For crossnobis, ``m_k`` are the means of fold *k* and ``a_k`` the means of
    all other folds' observations (leave-one-fold-out); the average over
    folds is an unbiased estimate of the squared Mahalanobis distance, so it
    can be negative. Poisson rates are ``r = (m + prior_lambda *
    prior_weight) / (1 + prior_weight)`` (a symmetrised KL divergence for
    spike counts); ``ra_k`` are the rates of the training means ``a_k``.
    rsatoolbox 0.3.2's ``poisson_cv`` returns only the term of its last fold
    (a loop overwrites the others); ``poisson_cv`` here averages all folds,
    each term equal to rsatoolbox's result when that fold is last. ``mahalanobis`` without noise is ``sqeuclidean``.

    Parameters
    ----------
    data : BrainData or array-like
        Observations, (n_obs, n_features) or (n_obs, n_features, n_times).
    method : str
        One of :data:`METHODS` (table above).
    conditions : str or sequence, optional
        Condition of each observation. For a BrainData, None uses its
        ``condition`` column and a string names another ``obs`` column. For
        an array, None makes every observation its own condition.
    folds : str or sequence, optional
        Cross-validation fold of each observation (``crossnobis``,
        ``poisson_cv``), or an ``obs`` column name. Default: the ``run``
        column of a BrainData if present, otherwise rsatoolbox's split by
        repetition (the k-th observation of each condition in fold k, which
        needs equal counts). Ignored by the other methods.
    noise : None, str, array-like or list of array-like
        Noise model of ``mahalanobis`` and ``crossnobis``: None (identity);
        a precision matrix (n_features, n_features), e.g. from
        :func:`~neuroenc.rsa.noise.prec_from_residuals`; a list (or
        (n_folds, n_features, n_features) array) of per-fold precisions for
        crossnobis, averaged over fold pairs with the pooled precision
        ``((P_i^-1 + P_j^-1) / 2)^-1`` as rsatoolbox does (costs a matrix
        inverse per fold pair); or an estimator name (``"shrinkage_diag"``,
        ``"shrinkage_eye"``, ``"diag"``, ``"full"``) to estimate the
        covariance from the residuals of the observations about their
        condition means (:func:`~neuroenc.rsa.noise.cov_from_unbalanced`,
        pooled over time points for time-resolved data) and whiten with its
        Cholesky factor (multivariate noise normalisation).
    times : array-like, optional
        Time of each sample for array data with a time axis (default: the
        sample indices); a BrainData uses its own ``times``.
    window : int, optional
        Average the data over windows of this many samples before computing
        the RDMs (rsatoolbox's ``calc_rdm_movie`` bins); the ``time`` of a
        window is the mean of its sample times.
    step : int
        Samples between the starts of consecutive windows (1: sliding).
    remove_mean : bool
        Subtract each pattern's mean over features (rsatoolbox's
        ``remove_mean``; not for the Poisson methods).
    prior_lambda, prior_weight : float
        Prior of the Poisson methods.
    metadata : dict, optional
        Extra RDM metadata (e.g. ``{"subject": "s01", "roi": "VT"}``).
    n_jobs : int or None
        Threads of the compiled kernels (None: all cores).

    Returns
    -------
    RDMs
        Conditions sorted; metadata ``method``, ``time`` (time-resolved
        data), the constant ``subject``/``session``/``task``/``roi`` columns
        of a BrainData's ``obs``, a ``noise`` description when one is used,
        and ``metadata``.

    Raises
    ------
    UnknownNameError
        Unknown method or noise estimator (the message lists the choices).
    NonFiniteError, ShapeError, LabelError, DataError
        NaN/Inf input, wrong shapes, labels of the wrong length, a
        cross-validated method with fewer than 2 folds or a condition missing
        from a fold, a constant pattern for correlation/cosine, negative
        counts for Poisson methods.
    """
    method = check_choice(method, METHODS, "RDM method")
    cv = method in CROSS_VALIDATED_METHODS
    is_braindata = hasattr(data, "obs") and hasattr(data, "modality")
    if is_braindata:
        if times is not None:
            raise ShapeError("A BrainData carries its own times; times= is for array data.")
        X, labels = observations(data, conditions)
        times = data.times
    else:
        if conditions is None:  # rsatoolbox without a descriptor: one condition per observation
            conditions = np.arange(len(data)) if hasattr(data, "__len__") else None
        X, labels = observations(data, conditions)
    n_times = X.shape[2] if X.ndim == 3 else None
    if n_times is not None:
        times = np.arange(n_times, dtype=np.float64) if times is None else check_array(times, "times", ndim=1)
        check_length(n_times, times, "times", of="time samples in data")
    window, step = _check_window(window, step, n_times)
    prior_lambda, prior_weight = _check_prior(prior_lambda, prior_weight)
    cond_values, cond_idx = _codes(labels, "condition")
    if len(cond_values) < 2:
        raise ShapeError(f"An RDM needs at least 2 conditions; the data have {len(cond_values)}.")

    fold_values, fold_idx = None, np.zeros_like(cond_idx)
    if cv:
        if folds is None and is_braindata and "run" in data.obs.columns:
            folds = "run"
        fold_labels = _fold_labels(data, folds, X.shape[0])
        if fold_labels is None:
            fold_labels = _default_folds(cond_idx, len(cond_values))
        fold_values, fold_idx = _codes(fold_labels, "fold")
        if len(fold_values) < 2:
            raise LabelError(
                f"{method} is cross-validated and needs observations from at least 2 folds (e.g. runs); "
                f"all observations are in fold {_plain(fold_values[0])!r}."
            )
    n_folds = 1 if fold_values is None else len(fold_values)
    counts = _cell_counts(cond_idx, fold_idx, len(cond_values), n_folds)
    _check_cells(counts, cond_values, fold_values)
    noise_model, noise_desc = _noise_model(noise, method, X, labels, n_folds)
    _check_remove_mean(remove_mean, method)
    meta = {"method": method, **_descriptors(data)}

    means = _group_means(X, cond_idx, fold_idx, counts, n_jobs)  # (n_folds, n_cond, n_feat[, n_times])
    if n_times is None:
        patterns = means[None]
    else:
        means, times_out = _window_means(means, np.asarray(times, dtype=np.float64), window, step)
        patterns = np.ascontiguousarray(np.moveaxis(means, -1, 0))
        meta["time"] = times_out
    if not cv:
        patterns = patterns[:, 0]
    patterns = _remove_mean(patterns, remove_mean)
    vectors = _dissimilarities(
        patterns,
        method,
        counts=counts if cv else None,
        noise=noise_model,
        prior_lambda=prior_lambda,
        prior_weight=prior_weight,
        strict=True,
        conditions=cond_values,
        n_jobs=n_jobs,
    )
    if noise_desc is not None:
        meta["noise"] = noise_desc
    meta.update(metadata or {})
    return RDMs(vectors, cond_values, method, meta)
