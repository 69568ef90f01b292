"""Linear and k-sparse probes: which few units of a layer decode a label.

Following Gurnee et al. (2023, "Finding neurons in a haystack: case studies
with sparse probing"), a k-sparse probe ranks the units by a cheap
univariate score computed on the training stimuli only, keeps the ``k`` best
and fits an L2-regularised logistic regression on those ``k`` standardised
units. Because the ranking is part of :meth:`SparseProbe.fit`, cross-validating
the estimator redoes the selection inside every training fold: the held-out
stimuli never influence which units are chosen (no double dipping).

:func:`probe_layers` cross-validates probes of several sizes on every layer
of an :class:`~neuroenc.activationdata.Activations` container, ranking the
units once per fold and layer for all sizes, and reports the chosen units of
every fold.

Unit scores (:func:`unit_scores`, larger is more informative):

* ``"t"``: absolute Welch t statistic between the two classes; with more
  classes, the largest over the one-vs-rest contrasts;
* ``"mean_diff"``: absolute difference of the class means (one-vs-rest maximum
  with more classes), the score used by Gurnee et al.;
* ``"f"``: one-way ANOVA F statistic (:func:`sklearn.feature_selection.f_classif`);
* ``"l1"``: order of entry into the lasso path (LARS) of a least-squares
  regression of the +-1 class indicator on the standardised units (earliest
  entry over the one-vs-rest problems with more classes); units entering
  first score highest, units that never enter score 0;
* or a callable ``score(X, y) -> (n_units,)`` array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from neuroenc.activations.statistics import (
    _check_k,
    _class_codes,
    _group_moments,
    _Layers,
    _unit_matrix,
    _welch_t,
)
from neuroenc.errors import LabelError, ShapeError
from neuroenc.validation import check_array, check_choice, check_estimator_features, check_length, check_positive

__all__ = ["SELECTORS", "SparseProbe", "probe_layers", "unit_scores"]

#: names of the built-in unit scores.
SELECTORS = ("t", "mean_diff", "f", "l1")

#: widest probe fitted with Newton-Cholesky steps (lbfgs beyond).
_NEWTON_MAX_UNITS = 256


# --------------------------------------------------------------------------- unit scores


def _one_vs_rest(codes: np.ndarray, n_classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(class, rest) masks: one pair for two classes, one per class otherwise."""
    if n_classes == 2:
        return [(codes == 1, codes == 0)]
    return [(codes == c, codes != c) for c in range(n_classes)]


def _t_scores(M: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    best = np.zeros(M.shape[1])
    for a, b in _one_vs_rest(codes, n_classes):
        t = np.abs(_welch_t(M, a, b)[0])
        np.fmax(best, t, out=best)  # fmax ignores NaN (units without variance in a class)
    return best


def _mean_diff_scores(M: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    best = np.zeros(M.shape[1])
    for a, b in _one_vs_rest(codes, n_classes):
        diff = np.abs(M[a].mean(axis=0, dtype=np.float64) - M[b].mean(axis=0, dtype=np.float64))
        np.maximum(best, diff, out=best)
    return best


def _f_scores(M: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    n = M.shape[0]
    grand = M.mean(axis=0, dtype=np.float64)
    between = np.zeros(M.shape[1])
    within = np.zeros(M.shape[1])
    for c in range(n_classes):
        n_c, mean, var = _group_moments(M, codes == c)
        between += n_c * (mean - grand) ** 2
        if n_c > 1:
            within += (n_c - 1) * var
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (between / (n_classes - 1)) / (within / (n - n_classes))
    return np.nan_to_num(f, nan=0.0)


def _lasso_positions(Z: np.ndarray, target: np.ndarray, max_steps: int) -> np.ndarray:
    """Rank (0 = first) of each column's entry into the lasso path; inf for columns that never enter."""
    from sklearn.linear_model import lars_path

    _, _, coefs = lars_path(Z, target - target.mean(), method="lasso", max_iter=max_steps)
    nonzero = coefs != 0
    entered = np.flatnonzero(nonzero.any(axis=1))
    step = nonzero[entered].argmax(axis=1)
    size = np.abs(coefs[entered, step])
    order = entered[np.lexsort((-size, step))]  # by entry step, then by coefficient size
    positions = np.full(Z.shape[1], np.inf)
    positions[order] = np.arange(len(order))
    return positions


def _l1_scores(M: np.ndarray, codes: np.ndarray, n_classes: int, limit: int) -> np.ndarray:
    mean = M.mean(axis=0, dtype=np.float64)
    sd = M.std(axis=0, dtype=np.float64)
    Z = (np.asarray(M, dtype=np.float64) - mean) / np.where(sd > 0, sd, 1.0)
    # Lasso steps can also drop a unit; some spare steps still leave ``limit`` entries.
    max_steps = 2 * limit + 10
    first = np.full(M.shape[1], np.inf)
    for a, _ in _one_vs_rest(codes, n_classes):
        np.minimum(first, _lasso_positions(Z, np.where(a, 1.0, -1.0), max_steps), out=first)
    scores = np.zeros(M.shape[1])
    entered = np.isfinite(first)
    scores[entered] = M.shape[1] - first[entered]
    return scores


def _scores(M: np.ndarray, y: np.ndarray, codes: np.ndarray, n_classes: int, selector: Any, limit: int) -> np.ndarray:
    """Unit scores of the validated matrix ``M``; ``limit`` bounds how many units must be ranked (l1)."""
    if callable(selector):
        scores = np.asarray(selector(M, y), dtype=np.float64).ravel()
        if scores.shape != (M.shape[1],):
            raise ShapeError(f"The selector returned {scores.size} scores for {M.shape[1]} units.")
        return np.nan_to_num(scores, nan=-np.inf)
    if selector == "t":
        return _t_scores(M, codes, n_classes)
    if selector == "mean_diff":
        return _mean_diff_scores(M, codes, n_classes)
    if selector == "f":
        return _f_scores(M, codes, n_classes)
    return _l1_scores(M, codes, n_classes, limit)


def _check_selector(selector: Any) -> Any:
    return selector if callable(selector) else check_choice(selector, SELECTORS, "selector")


def _top_units(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best units, best first; ties keep the lower index first."""
    return np.argsort(-scores, kind="stable")[:k]


def unit_scores(X: Any, y: Any, selector: str | Callable = "t", *, max_units: int | None = None) -> np.ndarray:
    """Score every unit by how well it separates the classes (larger is better).

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units, ...)
        Activations of one layer (flattened after the stimulus axis).
    y : array-like, shape (n_stimuli,)
        Class of each stimulus (at least two classes).
    selector : {"t", "mean_diff", "f", "l1"} or callable
        See the module documentation.
    max_units : int, optional
        For ``"l1"``: follow the lasso path only until about this many units
        have entered (the others score 0); default the whole path, whose cost
        grows with ``min(n_stimuli, n_units)`` steps.

    Returns
    -------
    numpy.ndarray, shape (n_units,)
    """
    selector = _check_selector(selector)
    M = _unit_matrix(X)
    limit = M.shape[1] if max_units is None else _check_k(max_units, M.shape[1], name="max_units")
    classes, codes = _class_codes(y, M.shape[0], "y")
    return _scores(M, np.asarray(y), codes, len(classes), selector, limit)


# --------------------------------------------------------------------------- estimator


def _targets(y: Any, n_samples: int, name: str = "y", of: str = "samples") -> np.ndarray:
    """Class labels of a classifier: 1-D, one per sample, classification targets, two classes or more."""
    if y is None:
        if name == "y":
            raise LabelError("This estimator requires y to be passed, but the target y is None.")
        raise LabelError(f"{name} are required: one class label per stimulus.")
    y = np.asarray(y)
    if y.ndim != 1:
        y = column_or_1d(y, warn=True)  # a column vector is raveled with a DataConversionWarning
    check_length(n_samples, y, name, of=of)
    if y.dtype.kind in "fc":
        check_array(y, name)
    check_classification_targets(y)
    return y


class SparseProbe(ClassifierMixin, BaseEstimator):
    """Logistic-regression probe on the ``k`` units that best separate the classes in the training data.

    Parameters
    ----------
    k : int or None
        Number of units kept, ``1 <= k <= n_units``; None keeps every unit
        (a dense linear probe).
    selector : {"t", "mean_diff", "f", "l1"} or callable
        Unit score used for the ranking, computed on the training stimuli
        only (see :func:`unit_scores`).
    C : float
        Inverse L2 regularisation of the logistic regression.
    max_iter : int
        Iterations of the logistic regression solver (Newton-Cholesky for
        up to 256 units, lbfgs for more).

    Attributes
    ----------
    units_ : numpy.ndarray, shape (k,)
        Chosen units (indices into the flattened units), best score first.
    unit_scores_ : numpy.ndarray, shape (n_units,) or None
        Scores of every unit on the training data (None when ``k`` keeps every unit).
    mean_, scale_ : numpy.ndarray, shape (k,)
        Standardisation of the chosen units (training mean and standard deviation).
    estimator_ : sklearn.linear_model.LogisticRegression
        Logistic regression on the standardised chosen units.
    classes_ : numpy.ndarray
        Class labels.
    coef_, intercept_ : numpy.ndarray
        Of ``estimator_`` (weights of the standardised chosen units).
    n_iter_ : numpy.ndarray
        Solver iterations of ``estimator_``.
    n_features_in_ : int
        Number of units seen in :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.activations.probes import SparseProbe
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> X = rng.standard_normal((100, 200))
    >>> X[:, 17] += 2 * y  # one informative unit
    >>> SparseProbe(k=1).fit(X, y).units_
    array([17])
    """

    def __init__(self, k: int | None = 1, *, selector: str | Callable = "t", C: float = 1.0, max_iter: int = 1000):
        self.k = k
        self.selector = selector
        self.C = C
        self.max_iter = max_iter

    def _check_params(self, n_units: int) -> int:
        """Validated ``k`` (None -> all units) for ``n_units`` units."""
        _check_selector(self.selector)
        check_positive(self.C, "C")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ShapeError(f"max_iter must be a positive integer, got {self.max_iter!r}.")
        return n_units if self.k is None else _check_k(self.k, n_units, f" (n_features={n_units})")

    def fit(self, X: Any, y: Any) -> SparseProbe:
        """Rank the units on ``(X, y)``, keep the ``k`` best and fit the logistic regression.

        Parameters
        ----------
        X : array-like, shape (n_stimuli, n_units)
            Activations.
        y : array-like, shape (n_stimuli,)
            Class labels (at least two classes).

        Returns
        -------
        SparseProbe
            The fitted probe.
        """
        X = check_estimator_features(self, X, reset=True)
        y = _targets(y, X.shape[0])
        k = self._check_params(X.shape[1])
        classes, codes = _class_codes(y, X.shape[0], "y")
        if k == X.shape[1]:
            return self._fit_units(X, y, np.arange(k), None)
        scores = _scores(X, y, codes, len(classes), self.selector, k)
        return self._fit_units(X, y, _top_units(scores, k), scores)

    def _fit_units(self, X: np.ndarray, y: np.ndarray, units: np.ndarray, scores: np.ndarray | None) -> SparseProbe:
        """Fit the logistic regression on the chosen ``units`` of validated ``X``."""
        from sklearn.linear_model import LogisticRegression

        Z = np.asarray(X[:, units], dtype=np.float64)
        self.mean_ = Z.mean(axis=0)
        sd = Z.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        # Newton steps with the exact Hessian converge in a few cheap iterations
        # for the few units of a sparse probe; wide dense probes need lbfgs.
        solver = "newton-cholesky" if len(units) <= _NEWTON_MAX_UNITS else "lbfgs"
        self.estimator_ = LogisticRegression(C=float(self.C), max_iter=int(self.max_iter), solver=solver)
        self.estimator_.fit((Z - self.mean_) / self.scale_, y)
        self.units_ = np.asarray(units)
        self.unit_scores_ = scores
        self.n_features_in_ = X.shape[1]
        self.classes_ = self.estimator_.classes_
        self.coef_ = self.estimator_.coef_
        self.intercept_ = self.estimator_.intercept_
        self.n_iter_ = self.estimator_.n_iter_
        return self

    def _standardised(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = check_estimator_features(self, X, reset=False)
        return (np.asarray(X[:, self.units_], dtype=np.float64) - self.mean_) / self.scale_

    def decision_function(self, X: Any) -> np.ndarray:
        """Decision values of the logistic regression, shape (n_stimuli,) or (n_stimuli, n_classes)."""
        Z = self._standardised(X)
        return self.estimator_.decision_function(Z)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_stimuli, n_classes), columns in the order of ``classes_``."""
        Z = self._standardised(X)
        return self.estimator_.predict_proba(Z)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        Z = self._standardised(X)
        return self.estimator_.predict_log_proba(Z)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class of each stimulus."""
        Z = self._standardised(X)
        return self.estimator_.predict(Z)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


# --------------------------------------------------------------------------- per layer


def _check_ks(ks: Any, layers: _Layers) -> list[int | None]:
    """The probe sizes, each valid for every layer (None = all units)."""
    ks = [ks] if ks is None or np.ndim(ks) == 0 else list(ks)
    if not ks:
        raise ShapeError("k is empty; give at least one probe size.")
    return [None if k is None else layers.check_k(k) for k in ks]


def _scorer(scoring: Any) -> Callable:
    from sklearn.metrics import get_scorer, get_scorer_names

    if callable(scoring):
        return scoring
    return get_scorer(check_choice(scoring, get_scorer_names(), "scoring"))


def probe_layers(
    acts: Any,
    labels: Any,
    k: int | None | Sequence[int | None] = (1, 2, 4, 8, 16),
    *,
    cv: Any = 5,
    groups: Any = None,
    selector: str | Callable = "t",
    C: float = 1.0,
    max_iter: int = 1000,
    scoring: str | Callable = "accuracy",
    layers: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """Cross-validated k-sparse (and dense) logistic probes of every layer.

    In each training fold the units are ranked once (by ``selector``, on the
    training stimuli only), the probe of each size ``k`` is fitted on the
    ``k`` best, and it is scored on the held-out stimuli. The scores equal
    those of ``cross_val_score(SparseProbe(k, ...), X, labels, cv=...)``.

    Parameters
    ----------
    acts : Activations, mapping or array-like
        Several layers, or one layer ``(n_stimuli, n_units, ...)`` (named ``"X"``).
    labels : array-like, shape (n_stimuli,)
        Class of each stimulus (at least two classes).
    k : int, None or sequence of them
        Probe sizes; each must lie in ``[1, n_units]`` for every layer;
        None is the dense probe on every unit.
    cv : int, cross-validation splitter or iterable of (train, test)
        As in scikit-learn (an int gives unshuffled stratified folds).
    groups : array-like, shape (n_stimuli,), optional
        Groups for group-aware splitters (e.g. runs or image sets).
    selector : {"t", "mean_diff", "f", "l1"} or callable
        Unit score, see :func:`unit_scores`.
    C, max_iter
        Of the logistic regression (see :class:`SparseProbe`).
    scoring : str or callable
        A scikit-learn scorer name or ``scorer(estimator, X, y)``.
    layers : str or sequence of str, optional
        Layers to probe (default all).

    Returns
    -------
    pandas.DataFrame
        One row per layer and size: ``layer``, ``k`` (units used),
        ``n_units`` (of the layer), ``score`` (mean over folds),
        ``score_std``, ``fold_scores`` (tuple, one per fold) and ``units``
        (tuple with the chosen units of each fold, best first).
    """
    from sklearn.model_selection import check_cv

    chosen = _Layers(acts, layers)
    n_stimuli = chosen.n_stimuli
    y = _targets(labels, n_stimuli, "labels", "stimuli")
    _class_codes(y, n_stimuli)
    ks = _check_ks(k, chosen)
    probe = SparseProbe(selector=selector, C=C, max_iter=max_iter)
    probe._check_params(1)
    score_fn = _scorer(scoring)
    if groups is not None:
        groups = np.asarray(groups)
        check_length(n_stimuli, groups, "groups", of="stimuli")
    splits = list(check_cv(cv, y, classifier=True).split(np.zeros((n_stimuli, 1)), y, groups))

    rows = []
    for name, M in chosen:
        sizes = [M.shape[1] if kk is None else int(kk) for kk in ks]
        ranked = max((s for s in sizes if s < M.shape[1]), default=0)
        scores = {s: [] for s in sizes}
        units = {s: [] for s in sizes}
        for train, test in splits:
            Xtr, ytr = M[train], y[train]
            order = np.arange(M.shape[1])
            unit_score = None
            if ranked:
                fold_classes, fold_codes = _class_codes(ytr, len(train), "labels of a training fold")
                unit_score = _scores(Xtr, ytr, fold_codes, len(fold_classes), selector, ranked)
                order = _top_units(unit_score, ranked)
            for s in sizes:
                chosen = np.arange(s) if s == M.shape[1] else order[:s]
                fitted = probe._fit_units(Xtr, ytr, chosen, unit_score)
                scores[s].append(float(score_fn(fitted, M[test], y[test])))
                units[s].append(tuple(int(u) for u in chosen))
        for s in sizes:
            rows.append(
                {
                    "layer": name,
                    "k": s,
                    "n_units": M.shape[1],
                    "score": float(np.mean(scores[s])),
                    "score_std": float(np.std(scores[s])),
                    "fold_scores": tuple(scores[s]),
                    "units": tuple(units[s]),
                }
            )
    return pd.DataFrame(rows)
