"""Centered kernel alignment (CKA) between two representations of the same stimuli.

CKA (Kornblith et al. 2019, *Similarity of neural network representations
revisited*) compares the stimulus-by-stimulus kernel (Gram) matrices ``K`` of
``X`` and ``L`` of ``Y``:

``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``

It is a **similarity** in [0, 1] (1: identical up to rotation and isotropic
scaling for the linear kernel), invariant to orthogonal transforms and
isotropic scaling of the units, and to translation of either representation.

Kernels
    ``linear``: ``K = X X^T``. ``rbf``: ``K_ij = exp(-||x_i - x_j||^2 / (2 s^2))``
    with ``s = sigma * median distance``, the median taken over all ``n**2``
    ordered pairs including the zero diagonal, as in Kornblith et al.'s
    reference code (``sigma`` is their ``threshold``).

HSIC estimators
    ``debiased=False``: ``HSIC = <H K H, H L H>`` (``H`` the centring matrix),
    the biased estimator of Gretton et al. 2005 (the ``1/(n-1)**2`` factor
    cancels in CKA). ``debiased=True``: the unbiased estimator of Song et al.
    2012, written as the inner product of *U-centred* Gram matrices
    (Szekely & Rizzo 2014): ``K~`` has zero diagonal and
    ``K~_ij = K_ij - r_i - r_j + t`` off the diagonal, with ``r_i`` the row sums
    of the zero-diagonal ``K`` divided by ``n - 2`` and ``t`` their total
    divided by ``(n - 1)(n - 2)``; then ``HSIC_1(K, L) = <K~, L~> / (n (n - 3))``.
    Debiased CKA lies in [-1, 1] (a slightly negative value means no
    detectable similarity).

Guard against negative self-HSIC
    Implementations that evaluate Song et al.'s formula for ``HSIC_1(K, K)``
    term by term can obtain a (rounding-level) negative value and return NaN
    from its square root. Here the self terms are squared Frobenius norms of
    the U-centred matrices, non-negative by construction. The feature-space
    route (used when there are many more stimuli than units) evaluates the
    formula, and falls back to the Gram route when a self term is within
    rounding of zero. A representation whose (U-)centred Gram matrix is zero
    (constant over stimuli) has CKA 0 with everything, the convention
    :func:`neuroenc.rsa.compare` uses for zero-norm vectors.

Complexity (``n`` stimuli, ``p`` and ``q`` units)
    Gram route: ``O(n**2 (p + q))`` time, ``O(n**2)`` memory. Linear kernel,
    feature route: ``O(n p q + n (p**2 + q**2))`` time, ``O(p q)`` memory; the
    cheaper route is chosen. :func:`neuroenc.similarity.all_pairs.pairwise`
    computes each representation's normalised centred Gram matrix once, so
    that all pairwise CKAs of ``m`` representations are one ``(m, n**2)``
    matrix product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from neuroenc.errors import DataError, ShapeError
from neuroenc.validation import check_array, check_choice, check_positive

__all__ = ["KERNELS", "cka", "gram", "centered_gram"]

#: kernels understood by :func:`cka`, :func:`gram` and :func:`centered_gram`
KERNELS = ("linear", "rbf")

#: largest stack of Gram matrices (bytes) that the all-pairs product builds;
#: beyond it each pair is computed on its own.
_GRAM_STACK_BYTES = 2 * 1024**3


# ----------------------------------------------------------------------
# input handling shared by the similarity modules
def _representation(X: Any, name: str = "X", *, min_stimuli: int = 2) -> np.ndarray:
    """``X`` as a float64 array ``(n_stimuli, n_units)``.

    Accepts arrays (and anything ``np.asarray`` converts, torch tensors
    included), a :class:`~neuroenc.braindata.BrainData` (its ``.data``; one
    row per observation, so average by condition first to get one row per
    stimulus), and flattens the axes after the first.
    """
    if hasattr(X, "layer_names") and hasattr(X, "flattened"):
        raise ShapeError(
            f"{name} is an Activations container (layers {list(X.layer_names)}); pass one layer, e.g. "
            f"act.flattened({X.layer_names[0]!r}), or compare all layers with pairwise(metric, act)."
        )
    if hasattr(X, "obs") and hasattr(X, "modality") and hasattr(X, "data"):  # BrainData
        X = X.data
    elif hasattr(X, "detach") and hasattr(X, "cpu") and hasattr(X, "numpy"):  # torch tensor
        X = X.detach().cpu().numpy()
    # float32 input stays float32 here (no copy of large layers); every
    # computation starts from a float64 centred copy or product.
    arr = check_array(X, name, dtype="numeric")
    if arr.dtype.kind == "c":
        raise ShapeError(f"{name} is complex; a real array is expected.")
    if arr.ndim < 2:
        raise ShapeError(
            f"{name} has shape {arr.shape}; expected (n_stimuli, n_units) (use X.reshape(-1, 1) for one unit)."
        )
    if arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[0] < min_stimuli:
        raise ShapeError(f"{name} has {arr.shape[0]} stimuli (shape {arr.shape}); at least {min_stimuli} needed.")
    if arr.shape[1] == 0:
        raise ShapeError(f"{name} has no units (shape {arr.shape}).")
    return arr


def _check_same_stimuli(X: np.ndarray, Y: np.ndarray, names: tuple[str, str] = ("X", "Y")) -> None:
    if X.shape[0] != Y.shape[0]:
        a, b = names
        raise ShapeError(
            f"{a} has shape {X.shape} and {b} has shape {Y.shape}: both need one row per stimulus, in the same "
            f"order, but they have {X.shape[0]} and {Y.shape[0]} rows."
        )


def _paired(X: Any, Y: Any, *, min_stimuli: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``X`` and ``Y`` with the same number of stimuli."""
    X = _representation(X, "X", min_stimuli=min_stimuli)
    Y = _representation(Y, "Y", min_stimuli=min_stimuli)
    _check_same_stimuli(X, Y)
    return X, Y


def _centred(X: np.ndarray) -> np.ndarray:
    """Float64 copy of ``X`` with zero-mean columns; constant columns become exactly zero."""
    Xc = X - X.mean(axis=0, dtype=np.float64)
    # The mean of a constant column can be off by rounding, leaving residue
    # that normalised metrics would read as a direction; constancy is tested
    # exactly.
    constant = X.max(axis=0) == X.min(axis=0)
    if constant.any():
        Xc[:, constant] = 0.0
    return Xc


def _stacked_products(features: Callable[[Any], np.ndarray], items: Iterable[Any], n_items: int) -> np.ndarray:
    """``F @ F.T`` for the rows ``F[i] = features(items[i])``, building ``F`` once."""
    stack = None
    for i, item in enumerate(items):
        row = features(item)
        if stack is None:
            stack = np.empty((n_items, row.size))
        stack[i] = row.reshape(-1)
        del row
    out = stack @ stack.T
    return (out + out.T) / 2


# ----------------------------------------------------------------------
# Gram matrices
def _check_kernel(kernel: str, sigma: float) -> float:
    check_choice(kernel, KERNELS, "CKA kernel")
    return check_positive(sigma, "sigma")


def _linear_gram(Xc: np.ndarray) -> np.ndarray:
    return Xc @ Xc.T


def _rbf_gram(Xc: np.ndarray, sigma: float) -> np.ndarray:
    G = Xc @ Xc.T
    sq = np.diag(G).copy()
    D = G
    D *= -2.0
    D += sq[:, None]
    D += sq[None, :]
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, 0.0)
    median = float(np.median(D))
    if median <= 0.0:
        raise DataError(
            "The median squared distance between stimuli is 0 (more than half of the pairs of rows are "
            "identical), so the RBF bandwidth is undefined; use kernel='linear' or remove duplicated stimuli."
        )
    D *= -1.0 / (2.0 * sigma**2 * median)
    return np.exp(D, out=D)


def _kernel_matrix(X: np.ndarray, kernel: str, sigma: float) -> np.ndarray:
    # Centring the rows first changes neither kernel (the RBF kernel depends
    # on differences; the linear one is centred afterwards) and avoids
    # cancellation in X X^T when the units have large means.
    Xc = _centred(X)
    return _linear_gram(Xc) if kernel == "linear" else _rbf_gram(Xc, sigma)


def _double_centre(K: np.ndarray) -> np.ndarray:
    """``H K H`` in place."""
    means = K.mean(axis=0)
    total = means.mean()
    K -= means[:, None]
    K -= means[None, :]
    K += total
    return K


def _u_centre(K: np.ndarray) -> np.ndarray:
    """The U-centred matrix (Szekely & Rizzo 2014), in place; needs n >= 4."""
    n = K.shape[0]
    np.fill_diagonal(K, 0.0)
    rows = K.sum(axis=0) / (n - 2)
    total = rows.sum() / (n - 1)
    K -= rows[:, None] - total
    K -= rows[None, :]
    np.fill_diagonal(K, 0.0)
    return K


def _min_stimuli(debiased: bool) -> int:
    # The unbiased HSIC divides by n (n - 3) and (n - 1)(n - 2).
    return 4 if debiased else 2


def gram(X: Any, kernel: str = "linear", *, sigma: float = 0.8) -> np.ndarray:
    """Kernel (Gram) matrix of the stimuli of one representation.

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units) or (n_stimuli, ...)
        Representation (array, BrainData, torch tensor); axes after the first
        are flattened.
    kernel : {"linear", "rbf"}
        ``linear``: ``X X^T``; ``rbf``: Gaussian kernel with bandwidth
        ``sigma`` times the median distance between stimuli (see the module
        documentation).
    sigma : float
        RBF bandwidth as a fraction of the median distance.

    Returns
    -------
    numpy.ndarray, shape (n_stimuli, n_stimuli)
        Uncentred kernel matrix (``X X^T`` of the raw rows for ``linear``).
    """
    sigma = _check_kernel(kernel, sigma)
    X = _representation(X, "X")
    if kernel == "linear":
        X = X.astype(np.float64, copy=False)
        return X @ X.T
    return _rbf_gram(_centred(X), sigma)


def centered_gram(X: Any, kernel: str = "linear", *, debiased: bool = False, sigma: float = 0.8) -> np.ndarray:
    """Centred (or U-centred) kernel matrix, the per-representation part of CKA.

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units) or (n_stimuli, ...)
        Representation.
    kernel : {"linear", "rbf"}
        Kernel (see :func:`gram`).
    debiased : bool
        False: ``H K H``. True: the U-centred matrix of the unbiased HSIC
        (zero diagonal; see the module documentation); needs 4 stimuli.
    sigma : float
        RBF bandwidth as a fraction of the median distance.

    Returns
    -------
    numpy.ndarray, shape (n_stimuli, n_stimuli)
        ``cka(X, Y)`` is the cosine (Frobenius) between
        ``centered_gram(X)`` and ``centered_gram(Y)``.
    """
    sigma = _check_kernel(kernel, sigma)
    X = _representation(X, "X", min_stimuli=_min_stimuli(debiased))
    return _centred_gram(X, kernel, debiased, sigma)


def _centred_gram(X: np.ndarray, kernel: str, debiased: bool, sigma: float) -> np.ndarray:
    K = _kernel_matrix(X, kernel, sigma)
    return _u_centre(K) if debiased else _double_centre(K)


def _unit_gram(X: np.ndarray, kernel: str, debiased: bool, sigma: float) -> np.ndarray:
    """Centred Gram matrix scaled to unit Frobenius norm; all zero if it is zero up to rounding."""
    K = _kernel_matrix(X, kernel, sigma)
    if debiased:
        np.fill_diagonal(K, 0.0)
    scale = np.linalg.norm(K)
    K = _u_centre(K) if debiased else _double_centre(K)
    norm = np.linalg.norm(K)
    # Centring a matrix with no centred part (e.g. the U-centring of a
    # one-hot code's Gram) leaves rounding residue, not a direction.
    if norm <= 10 * K.shape[0] * np.finfo(float).eps * scale:
        K[:] = 0.0
    else:
        K /= norm
    return K


# ----------------------------------------------------------------------
# CKA
def cka(X: Any, Y: Any, kernel: str = "linear", debiased: bool = False, sigma: float = 0.8) -> float:
    """Centered kernel alignment of two representations of the same stimuli.

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units_x) or (n_stimuli, ...)
        First representation (array, BrainData averaged to one row per
        stimulus, torch tensor, one layer of an ``Activations``); axes after
        the first are flattened.
    Y : array-like, shape (n_stimuli, n_units_y) or (n_stimuli, ...)
        Second representation, rows in the same stimulus order.
    kernel : {"linear", "rbf"}
        Kernel of the Gram matrices (module documentation).
    debiased : bool
        Use the unbiased HSIC estimator (Song et al. 2012); needs at least 4
        stimuli. Reduces the positive bias of CKA when units outnumber
        stimuli.
    sigma : float
        RBF bandwidth as a fraction of the median distance between stimuli.

    Returns
    -------
    float
        Similarity in [0, 1] (debiased: [-1, 1]); 1 for identical, rotated or
        isotropically scaled representations. 0 when either representation
        is constant over stimuli.

    Raises
    ------
    ShapeError
        Different numbers of stimuli (the message gives both shapes), fewer
        than 2 (debiased: 4) stimuli, or input that is not a representation.
    NonFiniteError
        NaN or Inf in ``X`` or ``Y``.
    UnknownNameError
        Unknown kernel.
    DataError
        RBF kernel whose median distance is zero.

    Notes
    -----
    Linear kernel: cost ``O(min(n**2 (p + q), n (p q + p**2 + q**2)))`` for
    ``n`` stimuli and ``p``, ``q`` units. RBF: ``O(n**2 (p + q))`` time and
    ``O(n**2)`` memory.
    """
    sigma = _check_kernel(kernel, sigma)
    X, Y = _paired(X, Y, min_stimuli=_min_stimuli(debiased))
    n, p = X.shape
    q = Y.shape[1]
    feature_cost = n * (p * q + (p * p + q * q) / 2)
    gram_cost = n * n * (p + q) / 2
    if kernel == "linear" and (feature_cost < gram_cost or 2 * 8 * n * n > _GRAM_STACK_BYTES):
        value = _linear_cka_features(_centred(X), _centred(Y), debiased)
        if value is not None:
            return value
    inner = np.vdot(_unit_gram(X, kernel, debiased, sigma), _unit_gram(Y, kernel, debiased, sigma))
    return float(np.clip(inner, -1.0, 1.0))


def _linear_cka_features(Xc: np.ndarray, Yc: np.ndarray, debiased: bool) -> float | None:
    """Linear CKA from feature-space products; None when a self term is within rounding of zero."""
    xy = np.linalg.norm(Yc.T @ Xc) ** 2
    xx = np.linalg.norm(Xc.T @ Xc) ** 2
    yy = np.linalg.norm(Yc.T @ Yc) ** 2
    if not debiased:
        if xx == 0 or yy == 0:
            return 0.0
        return float(np.clip(xy / np.sqrt(xx * yy), -1.0, 1.0))
    n = Xc.shape[0]
    kd = np.einsum("ij,ij->i", Xc, Xc)  # diagonal of K = Xc Xc^T
    ld = np.einsum("ij,ij->i", Yc, Yc)
    hxy, _ = _u_hsic_terms(xy, kd, ld, n)
    hxx, sx = _u_hsic_terms(xx, kd, kd, n)
    hyy, sy = _u_hsic_terms(yy, ld, ld, n)
    # Song et al.'s formula subtracts terms of the size of ``s``; a self term
    # below its rounding error is recomputed from the Gram matrices, where it
    # is a sum of squares.
    tol = 1e3 * np.finfo(float).eps
    if hxx <= tol * sx or hyy <= tol * sy:
        return None
    return float(np.clip(hxy / np.sqrt(hxx * hyy), -1.0, 1.0))


def _u_hsic_terms(frob: float, kd: np.ndarray, ld: np.ndarray, n: int) -> tuple[float, float]:
    """``n (n - 3) HSIC_1`` for centred representations, and the size of its terms.

    With centred rows ``K 1 = 0``, so Song et al.'s ``tr(K~ L~)``,
    ``1' K~ 1`` and ``1' K~ L~ 1`` reduce to products of the Gram diagonals.
    """
    kl = float(kd @ ld)
    sk, sl = float(kd.sum()), float(ld.sum())
    terms = (frob, kl, sk * sl / ((n - 1) * (n - 2)), 2 * kl / (n - 2))
    value = terms[0] - terms[1] + terms[2] - terms[3]
    return value, sum(abs(t) for t in terms)


# ----------------------------------------------------------------------
# pairwise hook
def _cka_matrix(reps: list[np.ndarray], kernel: str = "linear", debiased: bool = False, sigma: float = 0.8):
    """All pairwise CKAs; None when the stack of Gram matrices would not fit (compute pairs instead)."""
    sigma = _check_kernel(kernel, sigma)
    n = reps[0].shape[0]
    if n < _min_stimuli(debiased):
        raise ShapeError(f"The representations have {n} stimuli; debiased CKA needs at least 4.")
    if len(reps) * n * n * 8 > _GRAM_STACK_BYTES:
        return None
    out = _stacked_products(lambda X: _unit_gram(X, kernel, debiased, sigma), reps, len(reps))
    # A zero Gram matrix (constant representation) gives a zero row; its
    # self-similarity follows the same convention.
    diag = np.diag(out) > 0.5
    np.fill_diagonal(out, diag.astype(float))
    return np.clip(out, -1.0, 1.0)
