"""Banded ridge regression: one regularisation per feature space and target.

Several feature spaces (bands: network layers, or visual and semantic
descriptors) are concatenated, band ``i`` scaled by ``sqrt(gamma_i)`` with
``gamma`` on the simplex, and a ridge with regularisation ``alpha`` is fit to
the scaled features; band ``i``'s effective regularisation is then
``alpha / gamma_i``. The band weights ``gamma`` are searched at random on the
simplex (Dirichlet samples, the first one uniform) and, for each, ``alpha``
over a grid, as in himalaya 0.4.11's ``GroupRidgeCV`` (random-search solver):
for the same candidate weights, the selected weights, alphas, scores and
coefficients are himalaya's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from neuroenc.encoding import _solvers
from neuroenc.encoding.ridge import (
    _check_alphas,
    _check_batch,
    _check_groups,
    _check_targets,
    _working_dtype,
    resolve_splits,
    unravel,
)
from neuroenc.errors import ShapeError
from neuroenc.validation import check_array, check_choice, check_estimator_features, check_real_array

__all__ = ["BandedRidgeCV", "band_weight_candidates"]


def band_weight_candidates(
    n_iter: int, n_bands: int, concentration: Any = (0.1, 1.0), random_state: Any = None
) -> np.ndarray:
    """Random band weights on the simplex, the first one uniform.

    Parameters
    ----------
    n_iter : int
        Number of candidates.
    n_bands : int
        Number of feature spaces.
    concentration : float or sequence of float
        Dirichlet concentration, cycled over the candidates (small values
        favour weights concentrated on few bands, 1 is uniform on the
        simplex, ``inf`` gives equal weights).
    random_state : int, numpy.random.Generator or None
        Seed of the draws.

    Returns
    -------
    numpy.ndarray, shape (n_iter, n_bands)
        Rows are non-negative and sum to 1.
    """
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ShapeError(f"n_iter must be a positive integer or an array of weights, got {n_iter!r}.")
    conc = np.atleast_1d(check_array(concentration, "concentration", ndim=(0, 1), allow_nonfinite=True))
    if conc.size == 0 or np.isnan(conc).any() or (conc <= 0).any():
        raise ShapeError(f"concentration must hold positive values, got {concentration!r}.")
    rng = np.random.default_rng(random_state)
    gammas = np.empty((int(n_iter), n_bands))
    for i in range(int(n_iter)):
        c = conc[i % conc.size]
        gammas[i] = np.full(n_bands, 1.0 / n_bands) if np.isinf(c) else rng.dirichlet(np.full(n_bands, c))
    gammas[0] = 1.0 / n_bands
    return gammas


def _band_slices(bands: Any, n_features: int) -> list[slice]:
    sizes = check_array(bands, "bands", ndim=1)
    if sizes.size == 0 or (sizes != np.round(sizes)).any() or (sizes < 1).any():
        raise ShapeError(f"bands must list the positive number of features of each band, got {bands!r}.")
    if sizes.sum() != n_features:
        raise ShapeError(f"bands add up to {int(sizes.sum())} features but X has {n_features}.")
    edges = np.concatenate([[0], np.cumsum(sizes.astype(int))])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _scale_columns(X: np.ndarray, slices: list[slice], factors: np.ndarray) -> np.ndarray:
    scale = np.empty(X.shape[1])
    for sl, f in zip(slices, factors):
        scale[sl] = f
    return X * scale


class BandedRidgeCV(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge with one regularisation per feature space (band) and target.

    Parameters
    ----------
    bands : sequence of int or None
        Number of features of each band, in column order of ``X``. None:
        ``X`` is given to :meth:`fit` and :meth:`predict` as a list of 2-D
        arrays, one per band (a single 2-D array is then one band).
    alphas : array-like of float
        Candidates of the overall regularisation ``alpha``.
    n_iter : int or array-like, shape (n_candidates, n_bands)
        Number of random band-weight candidates (see
        :func:`band_weight_candidates`), or the candidates themselves (rows
        on the simplex; to reproduce another run or himalaya's search).
    concentration : float or sequence of float
        Dirichlet concentration of the random candidates.
    cv : None, "loo", int, splitter or iterable of (train, val)
        As in :class:`~neuroenc.encoding.RidgeCV` (default: 5-fold, as himalaya).
    fit_intercept : bool
        Centre features and targets on each training mean.
    scoring : {"neg_mean_squared_error", "r2", "pearson"}
        Cross-validation score maximised.
    random_state : int or None
        Seed of the random candidates.
    n_targets_batch, dtype, backend
        As in :class:`~neuroenc.encoding.RidgeCV`.

    Attributes
    ----------
    coef_ : numpy.ndarray, shape (n_targets, n_features) or (n_features,)
        Coefficients on the unscaled features.
    intercept_ : numpy.ndarray, shape (n_targets,), or float
    band_weights_ : numpy.ndarray, shape (n_bands, n_targets)
        Selected band weights ``gamma`` (columns sum to 1).
    alpha_ : numpy.ndarray, shape (n_targets,)
        Selected overall alpha.
    band_alphas_ : numpy.ndarray, shape (n_bands, n_targets)
        Effective regularisation of each band, ``alpha_ / band_weights_``
        (inf for a band with weight 0).
    deltas_ : numpy.ndarray, shape (n_bands, n_targets)
        ``log(band_weights_ / alpha_)``, himalaya's parametrisation.
    cv_scores_ : numpy.ndarray, shape (n_targets,)
        Best cross-validated score.
    candidate_scores_ : numpy.ndarray, shape (n_candidates, n_targets)
        Best score (over alphas) of each candidate (himalaya's ``cv_scores_``).
    band_weight_candidates_ : numpy.ndarray, shape (n_candidates, n_bands)
    n_bands_ : int
    n_features_in_ : int
    """

    def __init__(
        self,
        bands: Any = None,
        *,
        alphas: Any = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0),
        n_iter: Any = 20,
        concentration: Any = (0.1, 1.0),
        cv: Any = 5,
        fit_intercept: bool = True,
        scoring: str = "neg_mean_squared_error",
        random_state: Any = None,
        n_targets_batch: int | None = None,
        dtype: Any = None,
        backend: str = "numpy",
    ) -> None:
        self.bands = bands
        self.alphas = alphas
        self.n_iter = n_iter
        self.concentration = concentration
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.random_state = random_state
        self.n_targets_batch = n_targets_batch
        self.dtype = dtype
        self.backend = backend

    def _join(self, X: Any, *, reset: bool) -> tuple[np.ndarray, list[slice]]:
        """Features as one 2-D array and the column slice of each band."""
        sizes: Any = None
        # a list of 2-D arrays is one array per band (a list of rows is one array)
        if self.bands is None and isinstance(X, (list, tuple)) and X and all(np.ndim(x) == 2 for x in X):
            parts = [check_real_array(x, f"X[{i}]", ndim=2) for i, x in enumerate(X)]
            if len({p.shape[0] for p in parts}) > 1:
                raise ShapeError(f"The bands of X have different numbers of samples: {[p.shape[0] for p in parts]}.")
            sizes = [p.shape[1] for p in parts]
            if 0 in sizes:
                raise ShapeError(f"A band of X has 0 features (band sizes {sizes}).")
            X = np.concatenate(parts, axis=1)
        arr = check_estimator_features(self, X, reset=reset)
        if sizes is None:  # one array: bands from the parameter, else a single band
            sizes = self.bands if self.bands is not None else [arr.shape[1]]
        slices = _band_slices(sizes, arr.shape[1])
        if not reset and [s.stop - s.start for s in slices] != self._band_sizes():
            raise ShapeError(
                f"X has bands of {[s.stop - s.start for s in slices]} features; "
                f"the model was fit with {self._band_sizes()}."
            )
        return arr, slices

    def _band_sizes(self) -> list[int]:
        return [s.stop - s.start for s in self._slices]

    def _candidates(self, n_bands: int) -> np.ndarray:
        if n_bands == 1:  # every weight on the simplex is 1
            return np.ones((1, 1))
        if np.ndim(self.n_iter) == 0:
            return band_weight_candidates(self.n_iter, n_bands, self.concentration, self.random_state)
        gammas = check_array(self.n_iter, "n_iter (band weights)", ndim=2, dtype=np.float64)
        if gammas.shape[1] != n_bands:
            raise ShapeError(f"The band-weight candidates have {gammas.shape[1]} columns; there are {n_bands} bands.")
        if (gammas < 0).any() or (gammas.sum(1) <= 0).any():
            raise ShapeError("Band-weight candidates must be non-negative with a positive sum.")
        return gammas

    def fit(self, X: Any, y: Any, groups: Any = None) -> BandedRidgeCV:
        """Search band weights and alphas by cross-validation and fit on all samples.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features), or list of arrays
            Features (see ``bands``).
        y : array-like, shape (n_samples,) or (n_samples, n_targets)
            Targets.
        groups : array-like, shape (n_samples,), optional
            Run or session of each sample, for group-aware folds.

        Returns
        -------
        BandedRidgeCV
        """
        X, slices = self._join(X, reset=True)
        Y, ravel = _check_targets(y, X.shape[0])
        if X.shape[0] < 2:
            raise ShapeError(f"X has {X.shape[0]} sample(s); at least 2 are needed.")
        alphas = _check_alphas(self.alphas)
        check_choice(self.scoring, _solvers.SCORINGS, "scoring")
        check_choice(self.backend, _solvers.BACKENDS, "backend")
        dtype = _working_dtype(self.dtype, X)
        kw = dict(
            fit_intercept=bool(self.fit_intercept),
            n_targets_batch=_check_batch(self.n_targets_batch),
            dtype=dtype,
            backend=self.backend,
        )
        gammas = self._candidates(len(slices))
        splits = resolve_splits(self.cv, X.shape[0], _check_groups(groups, X.shape[0]))
        X = X.astype(np.float64, copy=False)
        n_targets = Y.shape[1]

        best = np.full(n_targets, -np.inf)
        best_gamma = np.zeros(n_targets, dtype=int)
        best_alpha = np.full(n_targets, alphas[0])
        candidate_scores = np.empty((len(gammas), n_targets))
        # himalaya's rule: a later candidate must win by more than the dtype's epsilon
        eps = np.finfo(dtype).eps
        for i, gamma in enumerate(gammas):
            Xs = _scale_columns(X, slices, np.sqrt(gamma))
            scores = _solvers.cv_scores(Xs, Y, alphas, splits, scoring=self.scoring, **kw)
            idx = _solvers.select_alphas(scores, alphas)
            candidate_scores[i] = scores[idx, np.arange(n_targets)]
            better = candidate_scores[i] > best + eps
            best[better] = candidate_scores[i, better]
            best_gamma[better] = i
            best_alpha[better] = alphas[idx[better]]

        coef = np.empty((X.shape[1], n_targets), dtype=dtype)
        intercept = np.empty(n_targets, dtype=dtype)
        for i in np.unique(best_gamma):
            targets = np.flatnonzero(best_gamma == i)
            root = np.sqrt(gammas[i])
            c, b = _solvers.fit_ridge(_scale_columns(X, slices, root), Y[:, targets], best_alpha[targets], **kw)
            # coefficients of the scaled features, expressed on the original ones
            coef[:, targets] = _scale_columns(c.T, slices, root).T
            intercept[targets] = b

        weights = gammas[best_gamma].T
        self._slices = slices
        self.n_bands_ = len(slices)
        self.band_weight_candidates_ = gammas
        self.candidate_scores_ = candidate_scores
        self.coef_ = np.ascontiguousarray(coef[:, 0] if ravel else coef.T)
        self.intercept_ = unravel(intercept, ravel)
        self.alpha_ = unravel(best_alpha, ravel)
        self.cv_scores_ = unravel(best, ravel)
        self.band_weights_ = unravel(weights, ravel)
        with np.errstate(divide="ignore"):
            self.band_alphas_ = unravel(best_alpha[None, :] / weights, ravel)
            self.deltas_ = unravel(np.log(weights / best_alpha[None, :]), ravel)
        return self

    def predict(self, X: Any, split: bool = False) -> np.ndarray:
        """Predicted targets, or each band's share of them.

        Parameters
        ----------
        X : array-like or list of arrays
            Features, as in :meth:`fit`.
        split : bool
            If True, return the prediction of each band,
            ``X_band @ coef_band``; they add up to ``predict(X) - intercept_``.

        Returns
        -------
        numpy.ndarray
            (n_samples, n_targets), or (n_bands, n_samples, n_targets) with
            ``split`` (the target axis is dropped for 1-D ``y``).
        """
        check_is_fitted(self)
        X, slices = self._join(X, reset=False)
        coef = np.asarray(self.coef_)
        X = X.astype(coef.dtype, copy=False)
        if not split:
            return X @ coef.T + self.intercept_
        return np.stack([X[:, sl] @ coef[..., sl].T for sl in slices])

    def score(self, X: Any, y: Any, split: bool = False) -> Any:
        """R² of the predictions; with ``split``, each band's share (product measure).

        Parameters
        ----------
        X : array-like or list of arrays
        y : array-like, shape (n_samples,) or (n_samples, n_targets)
        split : bool
            Per-band shares (:func:`~neuroenc.encoding.r2_score_split`),
            shape (n_bands, n_targets), which add up to the R² of each target.

        Returns
        -------
        float or numpy.ndarray
            Without ``split``, the mean R² over targets (scikit-learn's convention).
        """
        if not split:
            return super().score(X, y)
        from neuroenc.encoding.scoring import r2_score_split

        parts = self.predict(X, split=True)
        Y = check_array(y, "y", ndim=(1, 2))
        if Y.ndim == 1:
            return r2_score_split(Y[:, None], parts[..., None])[:, 0]
        return r2_score_split(Y, parts)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags
