"""Mutual k-nearest-neighbour alignment of two representations.

For each stimulus, take its ``k`` nearest other stimuli in ``X`` and in ``Y``;
the alignment is the mean fraction of shared neighbours (Huh et al. 2024,
*The Platonic Representation Hypothesis*). It is a **similarity** in [0, 1]:
1 when both representations give every stimulus the same neighbours, about
``k / (n - 1)`` for unrelated ones. It depends only on the neighbour
structure, so it is invariant to any transform that preserves neighbour
order (rotations and scaling for both distances; per-stimulus scaling for
``cosine``).

Neighbours
    ``distance="cosine"`` (the paper's choice: rows L2-normalised, neighbours by inner
    product) or ``euclidean``. A stimulus is never its own neighbour. Ties
    are broken in favour of the stimulus listed first, so results are
    deterministic.

Complexity: ``O(n**2 (p + log n))`` per representation (products and one
sort of each row), ``O(n k)`` per pair;
:func:`~neuroenc.similarity.all_pairs.pairwise` finds each
representation's neighbours once and gets all overlaps from one sparse
product.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroenc.errors import DataError, ShapeError
from neuroenc.similarity.kernel_alignment import _centred, _paired, _representation
from neuroenc.validation import check_choice

__all__ = ["NEIGHBOUR_DISTANCES", "mutual_knn", "nearest_neighbours"]

#: distances that define neighbours in :func:`mutual_knn`
NEIGHBOUR_DISTANCES = ("cosine", "euclidean")


def _check_k(k: Any, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise DataError(f"k must be an integer, got {k!r}.")
    if not 1 <= k <= n - 1:
        raise DataError(f"k must be between 1 and n_stimuli - 1 = {n - 1}, got {k}.")
    return int(k)


def _neighbours(X: np.ndarray, k: int = 10, distance: str = "cosine") -> np.ndarray:
    """``(n, k)`` indices of each stimulus' nearest other stimuli, nearest first."""
    check_choice(distance, NEIGHBOUR_DISTANCES, "neighbour distance")
    n = X.shape[0]
    k = _check_k(k, n)
    if distance == "cosine":
        Xf = X.astype(np.float64, copy=True)
        norms = np.linalg.norm(Xf, axis=1)
        if np.any(norms == 0):
            i = int(np.flatnonzero(norms == 0)[0])
            raise DataError(
                f"Stimulus {i} has an all-zero response, so its cosine neighbours are undefined; "
                "use distance='euclidean'."
            )
        Xf /= norms[:, None]
        score = Xf @ Xf.T  # similarity: larger is nearer
    else:
        Xc = _centred(X)  # distances do not depend on the mean; centring limits cancellation
        sq = np.einsum("ij,ij->i", Xc, Xc)
        score = Xc @ Xc.T
        score *= 2.0
        score -= sq[None, :]  # -(squared distance to j) up to the per-row constant sq_i
    np.fill_diagonal(score, -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    return order[:, :k]


def nearest_neighbours(X: Any, k: int = 10, *, distance: str = "cosine") -> np.ndarray:
    """Indices of the ``k`` nearest other stimuli of every stimulus.

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units) or (n_stimuli, ...)
        Representation.
    k : int
        Neighbours per stimulus, ``1 <= k <= n_stimuli - 1``.
    distance : {"cosine", "euclidean"}
        Distance that defines neighbours.

    Returns
    -------
    numpy.ndarray of int, shape (n_stimuli, k)
        Nearest first; ties broken by stimulus index.
    """
    return _neighbours(_representation(X, "X"), k, distance)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    n, k = a.shape
    # Row i of a and b are sets of distinct indices: shared ones are counted
    # by sorting each row pair together and looking for repeats.
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    return float((both[:, 1:] == both[:, :-1]).sum() / (n * k))


def mutual_knn(X: Any, Y: Any, k: int = 10, *, distance: str = "cosine") -> float:
    """Mutual k-nearest-neighbour alignment (Huh et al. 2024).

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units_x) or (n_stimuli, ...)
        First representation (array, BrainData with one row per stimulus,
        torch tensor).
    Y : array-like, shape (n_stimuli, n_units_y) or (n_stimuli, ...)
        Second representation, rows in the same stimulus order.
    k : int
        Neighbours per stimulus, ``1 <= k <= n_stimuli - 1``.
    distance : {"cosine", "euclidean"}
        Distance that defines neighbours (module documentation).

    Returns
    -------
    float
        Mean fraction of shared neighbours, in [0, 1].

    Raises
    ------
    ShapeError, NonFiniteError
        Mismatched numbers of stimuli (both shapes named), NaN/Inf.
    DataError
        ``k`` out of range; an all-zero stimulus with ``cosine``.
    UnknownNameError
        Unknown distance.
    """
    check_choice(distance, NEIGHBOUR_DISTANCES, "neighbour distance")
    X, Y = _paired(X, Y)
    _check_k(k, X.shape[0])
    return _overlap(_neighbours(X, k, distance), _neighbours(Y, k, distance))


def _knn_matrix(reps: list[np.ndarray], k: int = 10, *, distance: str = "cosine") -> np.ndarray:
    """All pairwise mutual-kNN alignments from one sparse product of neighbour indicators."""
    from scipy import sparse

    n = reps[0].shape[0]
    if n < 2:
        raise ShapeError(f"The representations have {n} stimulus; neighbours need at least 2.")
    rows = []
    for X in reps:
        idx = _neighbours(X, k, distance)
        rows.append((np.arange(n)[:, None] * n + idx).ravel())
    k = rows[0].size // n
    indptr = np.arange(len(rows) + 1) * (n * k)
    A = sparse.csr_matrix((np.ones(len(rows) * n * k), np.concatenate(rows), indptr), shape=(len(rows), n * n))
    return (A @ A.T).toarray() / (n * k)
