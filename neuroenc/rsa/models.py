"""RDM models: fixed model RDMs and weighted combinations fitted by non-negative least squares.

A **fixed model** is one RDM (a row of an :class:`~neuroenc.rsa.rdms.RDMs`);
it has no parameters. A :class:`WeightedModel` predicts
``sum_k theta_k * component_k`` with weights ``theta >= 0`` fitted to the data.

Fitting (:func:`fit_weighted`) follows rsatoolbox's ``fit_regress_nn``: the
data RDMs are pooled into the RDM that maximises the average similarity
(:func:`neuroenc.rsa.ceiling.pool_rdms`), and the weights minimise the
squared distance to it in the geometry of the comparison method, under
``theta >= 0``:

* ``cosine``: plain least squares; ``pearson``: the components (and the
  target) are centred first;
* ``cosine_cov`` / ``pearson_cov``: generalised least squares with
  the covariance ``V`` of RDM entries under i.i.d. pattern noise (the ``V``
  of rsatoolbox with ``sigma_k=None``), applied exactly through the
  Woodbury identity ``V = 2 I + B B^T`` (``B``: pair-condition incidence),
  where rsatoolbox runs conjugate gradients to a relative tolerance of 1e-5;
* rank methods (``spearman``, ``rho_a``, Kendall's tau): the target is the
  mean rank-transformed data RDM and the weights maximise its Pearson
  correlation with the combination. rsatoolbox has no regression fit for
  them (its ``fit_optimize_positive`` runs BFGS from random starts on the
  piecewise-constant rank correlation); this surrogate is deterministic.

Because the nearest point of a convex cone also has the smallest angle to
the target, the non-negative least-squares weights are those that maximise
the cosine (or, centred, Pearson) similarity with the pooled RDM, the
optimum that ``fit_optimize_positive`` searches for. The weights are scaled
to unit norm (rsatoolbox's ``normalize=True``); the comparisons do not
depend on the scale.

A fitted model must be evaluated on data it was not fitted to:
:func:`crossvalidate` fits on the training conditions of each fold and
evaluates on the test conditions (rsatoolbox's ``crossval`` with the
``sets_k_fold`` partition over conditions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuroenc.errors import LabelError, ShapeError
from neuroenc.rsa import _resampling as rs
from neuroenc.rsa.ceiling import NoiseCeiling, ceiling_from_vectors, group_average, rdm_groups
from neuroenc.rsa.comparisons import canonical_method, compare_vectors
from neuroenc.rsa.rdms import RDMs, n_pairs
from neuroenc.rsa.results import RSAResult
from neuroenc.validation import check_positive

__all__ = ["WeightedModel", "fit_weighted", "condition_folds", "crossvalidate", "model_vectors"]


class WeightedModel:
    """Non-negative linear combination of component RDMs.

    Parameters
    ----------
    components : RDMs
        The component RDMs (e.g. the RDMs of several feature models).
    name : str
        Model name in results.
    nonnegative : bool
        Constrain the weights to be >= 0 (non-negative least squares);
        otherwise ordinary least squares.
    ridge : float
        Ridge penalty added to the normal equations (in the units of the
        normalised problem, as rsatoolbox's ``ridge_weight``).

    Attributes
    ----------
    weights_ : numpy.ndarray, shape (n_components,)
        Fitted weights (unit norm), after :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.rsa.rdms import RDMs
    >>> rng = np.random.default_rng(0)
    >>> parts = RDMs(rng.random((2, 10)))
    >>> data = RDMs(parts.vectors[0] + 3 * parts.vectors[1] + 0.01 * rng.random((4, 10)))
    >>> model = WeightedModel(parts, "mix").fit(data, "cosine")
    >>> np.round(model.weights_ / model.weights_[0], 1)
    array([1., 3.])
    """

    def __init__(
        self, components: RDMs, name: str = "weighted", *, nonnegative: bool = True, ridge: float = 0.0
    ) -> None:
        if not isinstance(components, RDMs):
            raise ShapeError(f"components must be an RDMs object, got {type(components).__name__}.")
        self.components = components
        self.name = str(name)
        self.nonnegative = bool(nonnegative)
        self.ridge = check_positive(ridge, "ridge", strict=False)

    def __repr__(self) -> str:
        return f"<WeightedModel {self.name!r} | {self.components.n_rdms} components>"

    def fit(self, data: RDMs, method: str = "pearson") -> WeightedModel:
        """Fit the weights to ``data`` (see :func:`fit_weighted`); returns ``self``."""
        self.weights_ = fit_weighted(
            self.components, data, method, nonnegative=self.nonnegative, ridge=self.ridge, normalize=True
        )
        return self

    def predict(self, weights: Any = None) -> RDMs:
        """The predicted RDM for ``weights`` (default: the fitted weights)."""
        if weights is None:
            if not hasattr(self, "weights_"):
                raise ShapeError(f"{self!r} is not fitted; call fit() or pass weights.")
            weights = self.weights_
        theta = np.asarray(weights, dtype=float).ravel()
        if theta.shape != (self.components.n_rdms,):
            raise ShapeError(f"weights must have {self.components.n_rdms} entries, got {theta.size}.")
        return RDMs(theta @ self.components.vectors, self.components.conditions, metadata={"model": [self.name]})


# ----------------------------------------------------------------------
# aligning models and data
def _aligned(rdms: RDMs, data: RDMs, what: str) -> np.ndarray:
    """Vectors of ``rdms`` over the conditions of ``data``, in its order."""
    if rdms.n_conditions == data.n_conditions and np.array_equal(rdms.conditions, data.conditions):
        return rdms.vectors
    missing = [c for c in data.conditions if c not in set(rdms.conditions)]
    extra = [c for c in rdms.conditions if c not in set(data.conditions)]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks data conditions {missing[:5]!r}{' ...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"has conditions not in the data {extra[:5]!r}{' ...' if len(extra) > 5 else ''}")
        raise LabelError(
            f"{what} ({rdms.n_conditions} conditions) and the data ({data.n_conditions} conditions) "
            f"do not match: it {' and '.join(parts)}."
        )
    return rdms.subset_conditions(list(data.conditions)).vectors


def _rdm_names(rdms: RDMs) -> list[str] | None:
    for col in ("model", "name"):
        if col in rdms.metadata.columns:
            return [str(v) for v in rdms.metadata[col]]
    return None


def model_vectors(models: Any, data: RDMs, names: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Names and ``(n_models, n_pairs)`` vectors of fixed models, aligned to the conditions of ``data``.

    Parameters
    ----------
    models : RDMs or sequence of RDMs
        Each RDM is one fixed model. Names come from ``names``, else from a
        metadata column ``model`` or ``name``, else ``model0, model1, ...``.
    data : RDMs
        The data; models with the same condition labels in another order
        are reordered; other labels raise :class:`~neuroenc.errors.LabelError`.
    names : sequence of str, optional
        Model names.
    """
    if isinstance(models, WeightedModel) or (
        isinstance(models, Sequence) and any(isinstance(m, WeightedModel) for m in models)
    ):
        raise ShapeError("Weighted models must be fitted and evaluated on held-out data: use crossvalidate().")
    items = [models] if isinstance(models, RDMs) else list(models) if isinstance(models, Sequence) else None
    if not items or not all(isinstance(m, RDMs) for m in items):
        raise ShapeError("models must be an RDMs object or a non-empty sequence of RDMs.")
    vectors = np.vstack([_aligned(m, data, "The model RDMs") for m in items])
    found = [n for m in items for n in (_rdm_names(m) or [None] * m.n_rdms)]
    if names is None:
        names = [n if n is not None else f"model{i}" for i, n in enumerate(found)]
    names = [str(n) for n in names]
    if len(names) != len(vectors):
        raise LabelError(f"names has {len(names)} entries but there are {len(vectors)} models.")
    if len(set(names)) != len(names):
        raise LabelError(f"Model names must be unique; got {names}.")
    return names, vectors


# ----------------------------------------------------------------------
# fitting
def _v_inverse(X: np.ndarray, rows: np.ndarray, cols: np.ndarray, n_cond: int) -> np.ndarray:
    """``X @ V^-1`` for the RDM-entry covariance ``V = 2 I + B B^T`` restricted to the given pairs.

    ``B`` is the incidence matrix of pairs and conditions; by Woodbury,
    ``V^-1 = (I - B (2 I + B^T B)^-1 B^T) / 2``, an ``n_cond``-sized solve.
    """
    B = np.zeros((len(rows), n_cond))
    B[np.arange(len(rows)), rows] = 1.0
    B[np.arange(len(rows)), cols] = 1.0
    inner = 2 * np.eye(n_cond) + B.T @ B
    return (X - (X @ B) @ np.linalg.solve(inner, B.T)) / 2


def _nnls_gram(G: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin_{x >= 0} x^T G x - 2 b^T x`` for a symmetric positive semi-definite ``G``."""
    from scipy.optimize import nnls

    evals, evecs = np.linalg.eigh(G)
    keep = evals > evals.max() * 1e-13
    root = np.sqrt(evals[keep])
    A = (evecs[:, keep] * root).T  # A^T A = G on its range
    target = (evecs[:, keep].T @ b) / root
    x, _ = nnls(A, target, maxiter=50 * len(b))
    active = x > 0
    if active.any():
        # polish on the active set: the normal equations, as an active-set NNLS ends
        sub = np.linalg.lstsq(G[np.ix_(active, active)], b[active], rcond=None)[0]
        if np.all(sub > 0):
            x[active] = sub
    return x


def _pool_target(Y: np.ndarray, method: str, whiten: Any) -> np.ndarray:
    """Pooled data RDM the weights are fitted to (rsatoolbox ``pool_rdm`` of ``rsatoolbox.util.pooling``)."""
    if method in ("cosine_cov", "pearson_cov"):
        if method == "pearson_cov":
            Y = Y - Y.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", whiten(Y), Y))
        return (Y / norms[:, None]).mean(axis=0)
    return rs.pooling_transform(Y, method).mean(axis=0)


def _fit_vectors(
    X: np.ndarray,
    Y: np.ndarray,
    method: str,
    n_cond: int,
    *,
    nonnegative: bool = True,
    ridge: float = 0.0,
    normalize: bool = True,
) -> np.ndarray:
    """Weights of components ``X (n_components, n_pairs)`` fitted to data ``Y (n_rdms, n_pairs)``.

    Pairs missing (NaN) in any component or data RDM are left out.
    """
    ok = ~(np.isnan(X).any(axis=0) | np.isnan(Y).any(axis=0))
    rows, cols = rs.pair_conditions(n_cond)
    X, Y, rows, cols = X[:, ok], Y[:, ok], rows[ok], cols[ok]
    if X.shape[1] == 0:
        raise ShapeError("No dissimilarity is present in all components and data RDMs.")

    def whiten(A):
        return _v_inverse(A, rows, cols, n_cond)

    y = _pool_target(Y, method, whiten)
    if method in ("pearson", "pearson_cov") or method in rs.RANK_METHODS:
        X = X - X.mean(axis=1, keepdims=True)
        y = y - y.mean()
    WX = whiten(X) if method in ("cosine_cov", "pearson_cov") else X
    G = WX @ X.T + ridge * np.eye(len(X))
    b = WX @ y
    theta = _nnls_gram(G, b) if nonnegative else np.linalg.solve(G, b)
    norm = np.sqrt(np.sum(theta**2))
    return theta / norm if normalize and norm > 0 else theta


def fit_weighted(
    components: RDMs,
    data: RDMs,
    method: str = "pearson",
    *,
    nonnegative: bool = True,
    ridge: float = 0.0,
    normalize: bool = True,
) -> np.ndarray:
    """Weights of a linear combination of component RDMs fitted to data RDMs.

    Parameters
    ----------
    components : RDMs
        Component RDMs.
    data : RDMs
        Data RDMs (pooled over subjects for the fit).
    method : str
        Comparison method the fit is made for (see the module docstring).
    nonnegative : bool
        Non-negative least squares (default) or ordinary least squares.
    ridge : float
        Ridge penalty on the normal equations.
    normalize : bool
        Scale the weights to unit norm.

    Returns
    -------
    numpy.ndarray, shape (n_components,)
    """
    if not isinstance(data, RDMs):
        raise ShapeError(f"data must be an RDMs object, got {type(data).__name__}.")
    if not isinstance(components, RDMs):
        raise ShapeError(f"components must be an RDMs object, got {type(components).__name__}.")
    method = canonical_method(method)
    ridge = check_positive(ridge, "ridge", strict=False)
    X = _aligned(components, data, "The component RDMs")
    return _fit_vectors(
        X, data.vectors, method, data.n_conditions, nonnegative=nonnegative, ridge=ridge, normalize=normalize
    )


# ----------------------------------------------------------------------
# cross-validation over conditions
def condition_folds(
    n_conditions: int, n_folds: int = 5, *, shuffle: bool = True, random_state: Any = None
) -> list[np.ndarray]:
    """Partition conditions into test folds (rsatoolbox's ``sets_k_fold_pattern`` split).

    The conditions (shuffled if ``shuffle``) are cut into ``n_folds`` runs of
    ``n // n_folds``; the ``n % n_folds`` conditions left at the end go one
    each to the first folds, from the last one backwards.

    Parameters
    ----------
    n_conditions : int
        Number of conditions.
    n_folds : int
        Number of folds, at most ``n_conditions``.
    shuffle : bool
        Shuffle before cutting.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Randomness of the shuffle (None: numpy's global state, as rsatoolbox).

    Returns
    -------
    list of numpy.ndarray
        Sorted test conditions of each fold.
    """
    n_folds = rs.check_count(n_folds, "n_folds")
    if n_folds > n_conditions:
        raise ShapeError(f"n_folds={n_folds} exceeds the number of conditions ({n_conditions}).")
    order = np.arange(n_conditions)
    if shuffle:
        rs.random_state(random_state).shuffle(order)
    size, extra = divmod(n_conditions, n_folds)
    folds = []
    for i in range(n_folds):
        pos = list(range(i * size, (i + 1) * size))
        if i < extra:
            pos.append(n_conditions - (i + 1))
        folds.append(np.sort(order[pos]))
    return folds


def _check_folds(folds: Sequence[Any], n_cond: int) -> list[np.ndarray]:
    out, seen = [], set()
    for i, fold in enumerate(folds):
        arr = np.unique(np.asarray(fold))
        if arr.size == 0 or arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= n_cond:
            raise ShapeError(f"fold {i} must hold condition indices in [0, {n_cond}); got {fold!r}.")
        if seen & set(arr.tolist()):
            raise LabelError(f"fold {i} repeats conditions of an earlier fold; test folds must be disjoint.")
        seen |= set(arr.tolist())
        out.append(arr)
    if not out:
        raise ShapeError("folds is empty.")
    return out


def _sub_pairs(n_cond: int, conds: np.ndarray) -> np.ndarray:
    """Indices of the pairs among ``conds`` (sorted) in the full pair vector."""
    lookup = np.zeros((n_cond, n_cond), dtype=np.intp)
    rows, cols = rs.pair_conditions(n_cond)
    lookup[rows, cols] = np.arange(n_pairs(n_cond))
    r, c = rs.pair_conditions(len(conds))
    return lookup[conds[r], conds[c]]


def crossvalidate(
    models: Any,
    data: RDMs,
    method: str = "pearson",
    *,
    n_folds: int = 5,
    folds: Sequence[Any] | None = None,
    rdm_descriptor: str | None = None,
    random_state: Any = None,
) -> RSAResult:
    """Evaluate fixed and weighted models on held-out conditions.

    For each fold, weighted models are fitted to the data RDMs restricted to
    the training conditions and every model is compared with each subject's
    RDM restricted to the test conditions; folds with at most 2 test or
    training conditions give NaN (as rsatoolbox). The noise ceiling of each
    fold is that of the test conditions.

    Parameters
    ----------
    models : RDMs, WeightedModel or sequence of these
        Each RDM of an RDMs is a fixed model.
    data : RDMs
        One RDM per subject.
    method : str
        Comparison method.
    n_folds : int
        Number of folds of :func:`condition_folds` (ignored with ``folds``).
    folds : sequence of array-like, optional
        Test conditions (indices) of each fold; training conditions are the
        others.
    rdm_descriptor : str, optional
        Metadata column grouping RDMs into subjects.
    random_state : None, int, RandomState or Generator
        Shuffle of :func:`condition_folds`.

    Returns
    -------
    RSAResult
        Kind ``"crossvalidation"``: ``scores`` per subject (mean over folds),
        ``fold_scores`` (mean over subjects per fold), ``ceilings`` per fold;
        ``weights`` maps each weighted model to its ``(n_folds,
        n_components)`` fitted weights. Its standard errors and t-tests treat
        subjects as the random effect (rsatoolbox reports none for
        cross-validation).
    """
    if not isinstance(data, RDMs):
        raise ShapeError(f"data must be an RDMs object, got {type(data).__name__}.")
    method = canonical_method(method)
    items = [models] if isinstance(models, (RDMs, WeightedModel)) else list(models)
    names, specs = [], []
    for item in items:
        if isinstance(item, WeightedModel):
            names.append(item.name)
            specs.append(("weighted", _aligned(item.components, data, f"The components of {item.name!r}"), item))
        else:
            item_names, vecs = model_vectors(item, data)
            names += item_names
            specs += [("fixed", v, None) for v in vecs]
    if len(set(names)) != len(names):
        raise LabelError(f"Model names must be unique; got {names}.")
    n_cond = data.n_conditions
    folds = (
        condition_folds(n_cond, n_folds, random_state=random_state) if folds is None else _check_folds(folds, n_cond)
    )
    groups, _ = rdm_groups(data, rdm_descriptor)
    n_units = int(groups.max()) + 1
    member = group_average(groups)

    unit_scores = np.full((len(folds), n_units, len(specs)), np.nan)
    ceilings = np.full((len(folds), 2), np.nan)
    weights = {
        name: np.full((len(folds), spec[1].shape[0]), np.nan)
        for name, spec in zip(names, specs)
        if spec[0] == "weighted"
    }
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n_cond), test)
        if len(test) <= 2 or len(train) <= 2:
            continue
        test_pairs, train_pairs = _sub_pairs(n_cond, test), _sub_pairs(n_cond, train)
        preds = []
        for name, (kind, vecs, model) in zip(names, specs):
            if kind == "fixed":
                preds.append(vecs[test_pairs])
                continue
            theta = _fit_vectors(
                vecs[:, train_pairs], data.vectors[:, train_pairs], method, len(train),
                nonnegative=model.nonnegative, ridge=model.ridge,
            )  # fmt: skip
            weights[name][f] = theta
            preds.append(theta @ vecs[:, test_pairs])
        test_data = data.vectors[:, test_pairs]
        unit_scores[f] = member @ compare_vectors(np.vstack(preds), test_data, method).T
        ceilings[f] = ceiling_from_vectors(test_data, groups, method)
    evaluated = ~np.isnan(ceilings[:, 0])
    if not evaluated.any():
        raise ShapeError("No fold has more than 2 test and 2 training conditions.")
    fold_scores = unit_scores.mean(axis=1)
    scores = unit_scores[evaluated].mean(axis=0)
    estimate = fold_scores[evaluated].mean(axis=0)
    ceiling = NoiseCeiling(*ceilings[evaluated].mean(axis=0))
    return RSAResult(
        names,
        method,
        "crossvalidation",
        scores,
        ceilings,
        estimate,
        ceiling,
        n_units,
        fold_scores=fold_scores,
        weights=weights,
    )
