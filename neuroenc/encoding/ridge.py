"""Ridge regression with one regularisation per target, chosen by cross-validation.

:class:`RidgeCV` is a scikit-learn estimator over the solvers of
:mod:`neuroenc.encoding._solvers`. For the same splits it selects the same
alphas as himalaya 0.4.11's ``RidgeCV`` (K-fold, mean squared error averaged
over splits) and as scikit-learn's ``RidgeCV(alpha_per_target=True)``
(efficient leave-one-out), and its coefficients are scikit-learn ``Ridge``'s
at the selected alphas, intercept included.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from neuroenc.encoding import _solvers
from neuroenc.errors import LabelError, ShapeError
from neuroenc.validation import (
    check_array,
    check_choice,
    check_estimator_features,
    check_length,
    check_positive,
    check_real_array,
)

__all__ = ["RidgeCV"]


# --------------------------------------------------------------------------- shared checks


def _check_targets(y: Any, n_samples: int) -> tuple[np.ndarray, bool]:
    """Targets as 2-D (n_samples, n_targets) and whether ``y`` was 1-D."""
    if y is None:
        raise LabelError("This estimator requires y to be passed, but the target y is None.")
    Y = check_real_array(y, "y", ndim=(1, 2))
    check_length(n_samples, Y, "y", of="samples in X")
    if Y.ndim == 2 and Y.shape[1] == 0:
        raise ShapeError("y has 0 targets.")
    return (Y[:, None], True) if Y.ndim == 1 else (Y, False)


def _check_alphas(alphas: Any) -> np.ndarray:
    arr = np.atleast_1d(check_array(alphas, "alphas", ndim=(0, 1), dtype=np.float64))
    if arr.size == 0:
        raise ShapeError("alphas is empty; give at least one regularisation value.")
    for a in arr:
        check_positive(a, "every alpha")
    return arr


def _working_dtype(dtype: Any, X: np.ndarray) -> type:
    """float32 or float64: ``dtype``, else float32 for float32 input and float64 otherwise."""
    if dtype is None:
        return np.float32 if X.dtype == np.float32 else np.float64
    name = check_choice(np.dtype(dtype).name if not isinstance(dtype, str) else dtype, ("float32", "float64"), "dtype")
    return np.dtype(name).type


def _check_batch(n_targets_batch: Any) -> int | None:
    if n_targets_batch is None:
        return None
    if isinstance(n_targets_batch, bool) or not isinstance(n_targets_batch, (int, np.integer)) or n_targets_batch < 1:
        raise ShapeError(f"n_targets_batch must be a positive integer or None, got {n_targets_batch!r}.")
    return int(n_targets_batch)


def _check_groups(groups: Any, n_samples: int) -> np.ndarray | None:
    if groups is None:
        return None
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise LabelError(f"groups must be 1-D (one run/session label per sample), got shape {arr.shape}.")
    check_length(n_samples, arr, "groups", of="samples")
    return arr


def resolve_splits(cv: Any, n_samples: int, groups: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Train/validation index pairs of ``cv``; None for efficient leave-one-out.

    ``cv``: None or ``"loo"`` (leave-one-out; with ``groups``, leave one group
    out), an int (``KFold``, or ``GroupKFold`` with ``groups``), a
    scikit-learn splitter, or an iterable of ``(train, val)`` index arrays.
    """
    from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut

    if isinstance(cv, str):
        check_choice(cv, ("loo",), "cv")
        cv = None
    if cv is None:
        if groups is None:
            return None
        splitter: Any = LeaveOneGroupOut()
    elif isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        if cv < 2:
            raise ShapeError(f"cv must be at least 2 folds, got {cv}.")
        splitter = GroupKFold(int(cv)) if groups is not None else KFold(int(cv))
    elif hasattr(cv, "split"):
        splitter = cv
    elif isinstance(cv, Iterable):
        splitter = None
    else:
        raise ShapeError(f"cv must be None, 'loo', an int, a splitter or (train, val) pairs; got {cv!r}.")
    try:
        pairs = list(cv) if splitter is None else list(splitter.split(np.zeros((n_samples, 1)), None, groups))
    except ValueError as exc:
        raise LabelError(f"Cannot split {n_samples} samples with cv={cv!r}: {exc}") from exc
    splits = []
    for i, pair in enumerate(pairs):
        train, val = (np.asarray(p).ravel() for p in pair)
        for part, idx in (("training", train), ("validation", val)):
            if idx.size == 0:
                raise LabelError(f"Split {i} has an empty {part} set.")
            if idx.dtype == bool:
                raise LabelError(f"Split {i}: give {part} indices, not a boolean mask.")
            if idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n_samples:
                raise LabelError(f"Split {i}: {part} indices must be integers in [0, {n_samples}).")
        if train.size < 2:
            raise LabelError(f"Split {i} has {train.size} training sample(s); at least 2 are needed.")
        splits.append((train.astype(np.intp), val.astype(np.intp)))
    if not splits:
        raise LabelError("cv produced no splits.")
    return splits


def unravel(value: np.ndarray, ravel: bool) -> Any:
    """Drop the target axis of a per-target result when ``y`` was 1-D."""
    if not ravel:
        return value
    return value[..., 0] if value.ndim > 1 else value.dtype.type(value[0]).item()


# --------------------------------------------------------------------------- estimator


class RidgeCV(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression with one regularisation per target, selected by cross-validation.

    For every target ``t``, minimises ``||y_t - X b_t - c_t||^2 + alpha_t ||b_t||^2``
    with ``alpha_t`` the candidate of ``alphas`` with the best
    cross-validated score. The features are diagonalised once per training
    fold and that decomposition serves all alphas and targets.

    Parameters
    ----------
    alphas : array-like of float, shape (n_alphas,)
        Positive regularisation candidates. With a single value no
        cross-validation is run (a plain ridge with that alpha).
    cv : None, "loo", int, splitter or iterable of (train, val)
        None or ``"loo"``: efficient leave-one-out (scikit-learn's
        ``RidgeCV(cv=None)``); with ``groups`` given to :meth:`fit`,
        leave-one-group-out. An int: ``KFold`` without shuffling (himalaya's
        convention), ``GroupKFold`` with ``groups``. A scikit-learn splitter
        (its ``split`` receives ``groups``) or explicit index pairs.
    fit_intercept : bool
        Fit an unpenalised intercept, by centring features and targets on
        the training mean (scikit-learn's convention, in every fold).
    alpha_per_target : bool
        One alpha per target (default) or the alpha with the best mean score
        over targets for all.
    scoring : {"neg_mean_squared_error", "r2", "pearson"}
        Cross-validation score maximised by the selection. K-fold scores are
        computed per validation fold and averaged over folds (as himalaya).
    n_targets_batch : int or None
        Targets processed at once; bounds memory (None: batches whose
        (n_samples, batch) block of targets is about 64 MiB).
    dtype : {None, "float32", "float64"}
        Dtype of the large matrix products and of ``coef_``. None: float32
        for float32 input, float64 otherwise.
    backend : {"numpy", "torch", "torch_cuda"}
        Array library of the large products (torch is imported when used).
        Results are numpy arrays in every case.

    Attributes
    ----------
    coef_ : numpy.ndarray, shape (n_targets, n_features) or (n_features,)
        Coefficients at the selected alphas (1-D for 1-D ``y``).
    intercept_ : numpy.ndarray, shape (n_targets,), or float
        Intercepts (0 without ``fit_intercept``).
    alpha_ : numpy.ndarray, shape (n_targets,), or float
        Selected alpha of each target.
    cv_scores_ : numpy.ndarray, shape (n_targets,), or float
        Cross-validated score at the selected alpha (NaN with one alpha).
    alpha_scores_ : numpy.ndarray, shape (n_alphas, n_targets)
        Cross-validated score of every candidate.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.encoding import RidgeCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5))
    >>> Y = X @ rng.standard_normal((5, 3)) + rng.standard_normal((100, 3))
    >>> model = RidgeCV(alphas=np.logspace(-2, 3, 6), cv=5).fit(X, Y)
    >>> model.alpha_.shape, model.coef_.shape
    ((3,), (3, 5))
    """

    def __init__(
        self,
        alphas: Any = (0.1, 1.0, 10.0),
        *,
        cv: Any = None,
        fit_intercept: bool = True,
        alpha_per_target: bool = True,
        scoring: str = "neg_mean_squared_error",
        n_targets_batch: int | None = None,
        dtype: Any = None,
        backend: str = "numpy",
    ) -> None:
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.alpha_per_target = alpha_per_target
        self.scoring = scoring
        self.n_targets_batch = n_targets_batch
        self.dtype = dtype
        self.backend = backend

    def fit(self, X: Any, y: Any, groups: Any = None) -> RidgeCV:
        """Select the alphas by cross-validation and fit on all samples.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Features (stimulus descriptors, design matrix).
        y : array-like, shape (n_samples,) or (n_samples, n_targets)
            Targets (voxels, channels, neurons).
        groups : array-like, shape (n_samples,), optional
            Run or session of each sample: folds then never split a group.

        Returns
        -------
        RidgeCV
            The fitted estimator.
        """
        X = check_estimator_features(self, X, reset=True)
        Y, ravel = _check_targets(y, X.shape[0])
        if X.shape[0] < 2:
            raise ShapeError(f"X has {X.shape[0]} sample(s); at least 2 are needed.")
        alphas = _check_alphas(self.alphas)
        check_choice(self.scoring, _solvers.SCORINGS, "scoring")
        check_choice(self.backend, _solvers.BACKENDS, "backend")
        dtype = _working_dtype(self.dtype, X)
        batch = _check_batch(self.n_targets_batch)
        splits = resolve_splits(self.cv, X.shape[0], _check_groups(groups, X.shape[0])) if len(alphas) > 1 else None
        result = _solvers.ridge_cv(
            X.astype(np.float64, copy=False),
            Y,
            alphas,
            splits,
            fit_intercept=bool(self.fit_intercept),
            scoring=self.scoring,
            alpha_per_target=bool(self.alpha_per_target),
            n_targets_batch=batch,
            dtype=dtype,
            backend=self.backend,
        )
        coef = np.ascontiguousarray(result["coef"].T)
        self.coef_ = coef[0] if ravel else coef
        self.intercept_ = unravel(result["intercept"], ravel)
        self.alpha_ = unravel(result["alpha"], ravel)
        self.cv_scores_ = unravel(result["cv_scores"], ravel)
        self.alpha_scores_ = result["alpha_scores"]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_targets) or (n_samples,)
        """
        check_is_fitted(self)
        X = check_estimator_features(self, X, reset=False)
        coef = np.asarray(self.coef_)
        return X.astype(coef.dtype, copy=False) @ coef.T + self.intercept_

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags
