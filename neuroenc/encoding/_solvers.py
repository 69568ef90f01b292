"""Ridge solvers behind :class:`~neuroenc.encoding.RidgeCV` and :class:`~neuroenc.encoding.BandedRidgeCV`.

Plain functions on validated arrays (the estimators validate), as himalaya
splits its solvers from its estimators. The definitions are those of
himalaya 0.4.11 (K-fold scores averaged over splits, one alpha per target)
and scikit-learn (efficient leave-one-out, intercept by centring); the
computation is organised around a few large matrix products:

- each training set is diagonalised once, in float64 (``X^T X`` when there
  are fewer features than samples, the Gram matrix ``X X^T`` otherwise), and
  the decomposition serves every alpha and every target;
- the predictions of one alpha on a validation set are
  ``(A * w_alpha) @ B``, with ``A = X_val @ basis`` (n_val x k) and
  ``B = right @ Y_train`` (k x n_targets) computed once per fold: per alpha
  and fold, one ``n_val x k x n_targets`` product, where a prediction matrix
  ``X_val (X^T X + alpha I)^-1 X^T`` applied to ``Y_train`` would cost
  ``n_val x n_train x n_targets``;
- scores are reduced per target as soon as one alpha's predictions exist,
  so no ``(n_alphas, n_val, n_targets)`` array is ever held, and targets are
  processed in batches, which bounds memory.

The large products run in the working dtype (float32 halves their cost);
the decompositions and score accumulators are float64.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Scores that can select the regularisation (higher is better).
SCORINGS = ("neg_mean_squared_error", "r2", "pearson")

#: Array backends of the solvers.
BACKENDS = ("numpy", "torch", "torch_cuda")

# Size of one (n_samples, batch) block of targets when n_targets_batch is None:
# small next to the targets themselves, and wide enough for efficient matrix
# products. Smaller blocks run 10% faster on an idle machine (the
# element-wise passes stay in cache) but several times slower when another
# process holds a core, as each product then waits on a descheduled BLAS thread.
_BATCH_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- backends


class _NumpyOps:
    """The handful of array operations the solvers need, for numpy arrays."""

    name = "numpy"

    def asarray(self, a: Any, dtype: Any) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def index(self, idx: np.ndarray) -> np.ndarray:
        return idx

    def sumsq(self, a: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->j", a, a)

    def coldot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->j", a, b)


class _TorchOps(_NumpyOps):
    """The same operations on torch tensors (imported on first use)."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.name = "torch" if device == "cpu" else "torch_cuda"

    def _dtype(self, dtype: Any) -> Any:
        return {np.float32: self.torch.float32, np.float64: self.torch.float64}[np.dtype(dtype).type]

    def asarray(self, a: Any, dtype: Any) -> Any:
        if isinstance(a, self.torch.Tensor):
            return a.to(dtype=self._dtype(dtype), device=self.device)
        return self.torch.as_tensor(np.ascontiguousarray(a, dtype=dtype), device=self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy() if isinstance(a, self.torch.Tensor) else np.asarray(a)

    def index(self, idx: np.ndarray) -> Any:
        return self.torch.as_tensor(idx, device=self.device)

    def sumsq(self, a: Any) -> Any:
        return (a * a).sum(0)

    def coldot(self, a: Any, b: Any) -> Any:
        return (a * b).sum(0)


def get_ops(backend: str) -> _NumpyOps:
    """Array operations of ``backend`` (one of :data:`BACKENDS`)."""
    if backend == "numpy":
        return _NumpyOps()
    if backend == "torch_cuda":
        return _TorchOps("cuda")
    return _TorchOps("cpu")


# --------------------------------------------------------------------------- decompositions


@dataclass
class Spectral:
    """Ridge solutions of one training set for every alpha.

    ``coef(alpha) = basis @ diag(1 / (eigvals + alpha)) @ right @ Y``, with
    ``X`` the (centred) training features: ``basis = V``, ``right = V^T X^T``
    from the eigenvectors of ``X^T X`` (n_samples >= n_features), or
    ``basis = X^T U``, ``right = U^T`` from those of ``X X^T`` (wide ``X``).
    """

    eigvals: np.ndarray  # (k,) float64, clipped at 0
    basis: np.ndarray  # (n_features, k) float64
    right: np.ndarray  # (k, n_train) float64

    def weights(self, alphas: np.ndarray) -> np.ndarray:
        """``1 / (eigvals + alpha)`` for every alpha: (n_alphas, k)."""
        return 1.0 / (self.eigvals[None, :] + np.asarray(alphas, dtype=np.float64)[:, None])


def spectral(X: np.ndarray) -> Spectral:
    """Diagonalise the training features ``X`` (n_train, n_features) in float64."""
    from neuroenc._kernels.parallel import single_threaded_blas

    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    gram = X.T @ X if p <= n else X @ X.T
    # LAPACK's eigensolver synchronises its BLAS threads at every step: on a
    # busy machine two threads are 50x slower than one, and one is as fast
    # on a quiet one at these sizes.
    with single_threaded_blas():
        eigvals, vectors = np.linalg.eigh(gram)
    if p <= n:
        basis, right = vectors, vectors.T @ X.T
    else:
        basis, right = X.T @ vectors, vectors.T
    # float rounding can leave tiny negative eigenvalues on a singular matrix
    return Spectral(np.maximum(eigvals, 0.0), basis, right)


def _means(X: np.ndarray, fit_intercept: bool) -> np.ndarray:
    return X.mean(0) if fit_intercept else np.zeros(X.shape[1])


def target_batches(n_targets: int, n_rows: int, itemsize: int, n_targets_batch: int | None) -> Iterator[slice]:
    """Contiguous slices of targets; by default sized to :data:`_BATCH_BYTES` of ``n_rows`` rows."""
    if n_targets_batch is None:
        n_targets_batch = max(256, _BATCH_BYTES // max(1, n_rows * itemsize))
    for start in range(0, n_targets, n_targets_batch):
        yield slice(start, min(start + n_targets_batch, n_targets))


def _batch(ops: _NumpyOps, Y: np.ndarray, cols: slice, dtype: Any, center: bool) -> Any:
    """Targets ``Y[:, cols]`` in the backend and dtype; centred on a copy, never in place."""
    Yb = ops.asarray(Y[:, cols], dtype)
    return Yb - Yb.mean(0) if center else Yb


# --------------------------------------------------------------------------- scores


class _FoldScorer:
    """Per-target scores of predictions on one validation set (targets centred on the training mean)."""

    def __init__(self, ops: _NumpyOps, scoring: str, Yv: Any) -> None:
        self.ops, self.scoring, self.Yv = ops, scoring, Yv
        n = Yv.shape[0]
        if scoring != "neg_mean_squared_error":
            Yvc = Yv - Yv.mean(0)
            self.ss_tot = ops.to_numpy(ops.sumsq(Yvc)).astype(np.float64)
            if scoring == "pearson":
                self.Yvc = Yvc
        self.n = n

    def __call__(self, P: Any) -> np.ndarray:
        ops = self.ops
        if self.scoring == "pearson":
            P -= P.mean(0)
            num = ops.to_numpy(ops.coldot(P, self.Yvc)).astype(np.float64)
            den = np.sqrt(ops.to_numpy(ops.sumsq(P)).astype(np.float64) * self.ss_tot)
            return np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        P -= self.Yv
        sse = ops.to_numpy(ops.sumsq(P)).astype(np.float64)
        if self.scoring == "neg_mean_squared_error":
            return -sse / self.n
        # a constant validation target scores 0, as in himalaya
        return 1.0 - np.divide(sse, self.ss_tot, out=np.ones_like(sse), where=self.ss_tot > 0)


# --------------------------------------------------------------------------- cross-validation


@dataclass
class _Fold:
    train: Any
    val: Any
    A: Any  # X_val @ basis, working dtype
    right: Any  # working dtype
    right_sum: Any  # right @ ones: the centring correction
    W: Any  # (n_alphas, k) working dtype


def _prepare_folds(
    ops: _NumpyOps, X: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], alphas, fit_intercept, dtype
) -> list[_Fold]:
    folds = []
    for train, val in splits:
        Xt = X[train]
        mx = _means(Xt, fit_intercept)
        sp = spectral(Xt - mx)
        A = (X[val] - mx) @ sp.basis
        folds.append(
            _Fold(
                train=ops.index(train),
                val=ops.index(val),
                A=ops.asarray(A, dtype),
                right=ops.asarray(sp.right, dtype),
                right_sum=ops.asarray(sp.right.sum(1), dtype),
                W=ops.asarray(sp.weights(alphas), dtype),
            )
        )
    return folds


def kfold_scores(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    fit_intercept: bool = True,
    scoring: str = "neg_mean_squared_error",
    n_targets_batch: int | None = None,
    dtype: Any = np.float64,
    backend: str = "numpy",
) -> np.ndarray:
    """Cross-validation scores of every alpha and target, averaged over the splits.

    Parameters
    ----------
    X : numpy.ndarray, shape (n_samples, n_features)
        Features (float64 is best: the decompositions are float64).
    Y : numpy.ndarray, shape (n_samples, n_targets)
        Targets.
    alphas : numpy.ndarray, shape (n_alphas,)
        Positive regularisation candidates.
    splits : sequence of (train, val) index arrays
        Cross-validation splits.
    fit_intercept : bool
        Centre features and targets on each training set's mean.
    scoring : str
        One of :data:`SCORINGS`.
    n_targets_batch : int or None
        Targets per batch (None: an (n_samples, batch) block of about 64 MiB).
    dtype : numpy dtype
        Working dtype of the large products (float32 or float64).
    backend : str
        One of :data:`BACKENDS`.

    Returns
    -------
    numpy.ndarray, shape (n_alphas, n_targets)
        Mean score over splits (float64, higher is better).
    """
    ops = get_ops(backend)
    if fit_intercept:
        # Centring once on the global mean keeps float32 products away from
        # the cancellation that large offsets (raw BOLD) would cause.
        X = X - X.mean(0)
    folds = _prepare_folds(ops, X, splits, alphas, fit_intercept, dtype)
    n_targets = Y.shape[1]
    scores = np.zeros((len(alphas), n_targets))
    for cols in target_batches(n_targets, Y.shape[0], np.dtype(dtype).itemsize, n_targets_batch):
        Yb = _batch(ops, Y, cols, dtype, fit_intercept)
        for fold in folds:
            Yt = Yb[fold.train]
            B = fold.right @ Yt
            Yv = Yb[fold.val]
            if fit_intercept:
                my = Yt.mean(0)
                B -= fold.right_sum[:, None] * my[None, :]
                Yv -= my
            del Yt
            score = _FoldScorer(ops, scoring, Yv)
            for i in range(len(alphas)):
                scores[i, cols] += score((fold.A * fold.W[i]) @ B)
    scores /= len(folds)
    return scores


def loo_scores(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: np.ndarray,
    *,
    fit_intercept: bool = True,
    scoring: str = "neg_mean_squared_error",
    n_targets_batch: int | None = None,
    dtype: Any = np.float64,
    backend: str = "numpy",
    decomposition: Spectral | None = None,
) -> np.ndarray:
    """Efficient leave-one-out scores of every alpha and target (scikit-learn's ``_RidgeGCV``).

    The leave-one-out residual of sample ``i`` is ``r_i / (1 - h_ii)``, with
    ``r`` the residual of the fit on all samples and ``h_ii`` the leverage
    (including ``1/n`` for the unpenalised intercept). Parameters are those
    of :func:`kfold_scores`; ``decomposition`` is :func:`spectral` of the
    centred ``X`` when already computed.

    Returns
    -------
    numpy.ndarray, shape (n_alphas, n_targets)
        ``neg_mean_squared_error``: minus the mean squared leave-one-out
        error; ``r2``/``pearson``: score of the leave-one-out predictions.
    """
    ops = get_ops(backend)
    n = X.shape[0]
    Xc = X - _means(X, fit_intercept)
    sp = decomposition if decomposition is not None else spectral(Xc)
    L = Xc @ sp.basis  # hat(alpha) = L diag(w) right
    W = sp.weights(alphas)
    leverage = (L * sp.right.T) @ W.T + (1.0 / n if fit_intercept else 0.0)  # (n, n_alphas)
    inv_keep = 1.0 / (1.0 - leverage)
    L_, right_, W_, inv_keep_ = (ops.asarray(a, dtype) for a in (L, sp.right, W, inv_keep))
    n_targets = Y.shape[1]
    scores = np.empty((len(alphas), n_targets))
    for cols in target_batches(n_targets, n, np.dtype(dtype).itemsize, n_targets_batch):
        Yb = _batch(ops, Y, cols, dtype, fit_intercept)
        B = right_ @ Yb
        score = _FoldScorer(ops, scoring, Yb) if scoring != "neg_mean_squared_error" else None
        for i in range(len(alphas)):
            E = (L_ * W_[i]) @ B
            E -= Yb
            E *= inv_keep_[:, i : i + 1]  # minus the leave-one-out residuals
            if score is None:
                scores[i, cols] = -ops.to_numpy(ops.sumsq(E)).astype(np.float64) / n
            else:
                E += Yb  # leave-one-out predictions
                scores[i, cols] = score(E)
    return scores


def select_alphas(scores: np.ndarray, alphas: np.ndarray, per_target: bool = True) -> np.ndarray:
    """Index of the best alpha per target (ties go to the largest alpha, the safer choice).

    Parameters
    ----------
    scores : numpy.ndarray, shape (n_alphas, n_targets)
        Scores, higher is better.
    alphas : numpy.ndarray, shape (n_alphas,)
        The candidates.
    per_target : bool
        If False, one alpha (best mean score over targets) for all targets.

    Returns
    -------
    numpy.ndarray of int, shape (n_targets,)
    """
    order = np.argsort(-np.asarray(alphas), kind="stable")
    if per_target:
        return order[np.argmax(scores[order], axis=0)]
    best = order[int(np.argmax(scores[order].mean(1)))]
    return np.full(scores.shape[1], best)


# --------------------------------------------------------------------------- fitting


def fit_ridge(
    X: np.ndarray,
    Y: np.ndarray,
    alpha: Any,
    *,
    fit_intercept: bool = True,
    n_targets_batch: int | None = None,
    dtype: Any = np.float64,
    backend: str = "numpy",
    decomposition: Spectral | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge coefficients with one alpha per target.

    Minimises ``||Y_t - X b_t - c_t||^2 + alpha_t ||b_t||^2`` for every
    target ``t`` (``c_t = 0`` without intercept), as scikit-learn's
    ``Ridge(alpha_t)``.

    Parameters
    ----------
    X : numpy.ndarray, shape (n_samples, n_features)
    Y : numpy.ndarray, shape (n_samples, n_targets)
    alpha : float or numpy.ndarray, shape (n_targets,)
        Positive regularisation, one for all targets or one per target.
    fit_intercept : bool
        Fit an unpenalised intercept (centre ``X`` and ``Y``).
    n_targets_batch, dtype, backend
        As in :func:`kfold_scores`.
    decomposition : Spectral, optional
        :func:`spectral` of the centred ``X`` when already computed.

    Returns
    -------
    coef : numpy.ndarray, shape (n_features, n_targets)
    intercept : numpy.ndarray, shape (n_targets,)
    """
    ops = get_ops(backend)
    n_targets = Y.shape[1]
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n_targets,))
    mx = _means(X, fit_intercept)
    sp = decomposition if decomposition is not None else spectral(X - mx)
    uniq, which = np.unique(alpha, return_inverse=True)
    W = sp.weights(uniq)  # (n_unique, k)
    basis_, right_ = ops.asarray(sp.basis, dtype), ops.asarray(sp.right, dtype)
    coef = np.empty((X.shape[1], n_targets), dtype=dtype)
    for cols in target_batches(n_targets, X.shape[0], np.dtype(dtype).itemsize, n_targets_batch):
        Yb = _batch(ops, Y, cols, dtype, fit_intercept)
        B = right_ @ Yb
        B *= ops.asarray(W[which[cols]].T, dtype)
        coef[:, cols] = ops.to_numpy(basis_ @ B)
    intercept = Y.mean(0) - mx @ coef if fit_intercept else np.zeros(n_targets, dtype=dtype)
    return coef, intercept.astype(dtype, copy=False)


def cv_scores(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]] | None,
    *,
    decomposition: Spectral | None = None,
    **kw: Any,
) -> np.ndarray:
    """Scores (n_alphas, n_targets): :func:`loo_scores` if ``splits`` is None, else :func:`kfold_scores`."""
    if splits is None:
        return loo_scores(X, Y, alphas, decomposition=decomposition, **kw)
    return kfold_scores(X, Y, alphas, splits, **kw)


def ridge_cv(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]] | None,
    *,
    fit_intercept: bool = True,
    scoring: str = "neg_mean_squared_error",
    alpha_per_target: bool = True,
    n_targets_batch: int | None = None,
    dtype: Any = np.float64,
    backend: str = "numpy",
) -> dict[str, np.ndarray]:
    """Select alphas by cross-validation, then refit on all samples.

    ``splits=None`` means efficient leave-one-out (:func:`loo_scores`),
    otherwise K-fold-like splits (:func:`kfold_scores`). With one candidate
    alpha no cross-validation is run and the scores are NaN.

    Returns
    -------
    dict
        ``alpha_index`` (n_targets,), ``alpha`` (n_targets,), ``alpha_scores``
        (n_alphas, n_targets), ``cv_scores`` (n_targets,), ``coef``
        (n_features, n_targets), ``intercept`` (n_targets,).
    """
    kw = dict(fit_intercept=fit_intercept, n_targets_batch=n_targets_batch, dtype=dtype, backend=backend)
    n_targets = Y.shape[1]
    # leave-one-out and the refit share the decomposition of all samples
    decomposition = spectral(X - _means(X, fit_intercept)) if splits is None else None
    if len(alphas) == 1:
        scores = np.full((1, n_targets), np.nan)
    else:
        scores = cv_scores(X, Y, alphas, splits, scoring=scoring, decomposition=decomposition, **kw)
    best = select_alphas(np.nan_to_num(scores, nan=-np.inf), alphas, alpha_per_target)
    coef, intercept = fit_ridge(X, Y, alphas[best], decomposition=decomposition, **kw)
    return {
        "alpha_index": best,
        "alpha": alphas[best],
        "alpha_scores": scores,
        "cv_scores": scores[best, np.arange(n_targets)],
        "coef": coef,
        "intercept": intercept,
    }
