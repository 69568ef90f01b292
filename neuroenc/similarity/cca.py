"""Canonical correlation analysis similarities: SVCCA and PWCCA.

Canonical correlations ``rho_1 >= rho_2 >= ...`` between two centred
representations are the cosines of the principal angles between their
column spaces (the spans of their units over stimuli): with orthonormal bases
``Q_x``, ``Q_y`` of those spaces they are the singular values of
``Q_x^T Q_y`` (Bjorck & Golub 1973), which is how they are computed here
(thin SVDs, no covariance inversion). Directions whose singular value is
below ``max(n, p) * eps`` times the largest are dropped as numerically null.

Both summaries are **similarities** in [0, 1]:

:func:`svcca` (Raghu et al. 2017)
    Each representation is first reduced to its top principal components
    explaining a fraction ``variance`` of its variance (0.99 by default, as in
    the paper) or to ``n_components`` components; the similarity is the mean
    canonical correlation of the reduced representations.

:func:`pwcca` (Morcos et al. 2018)
    Mean canonical correlation weighted by how much of the representation
    each canonical variate accounts for: with unit-norm canonical variates
    ``h_i`` of ``X`` and its centred units ``x_j``,
    ``w_i = sum_j |<h_i, x_j>|``, normalised to sum 1. As in the authors'
    code the weights come from the representation with fewer units (``X``
    when equal), so the value is symmetric except between representations
    of equal width.

When a representation has at least as many (linearly independent) units as
stimuli minus one, its column space is everything and all canonical
correlations are 1: CCA needs more stimuli than units (or the SVD reduction
of :func:`svcca`). A constant representation has no canonical variates; its
similarity to anything is 0.

Complexity: ``O(n p min(n, p))`` per representation (thin SVD) and
``O(n k_x k_y)`` per pair; :func:`~neuroenc.similarity.all_pairs.pairwise`
reuses the per-representation part.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from neuroenc.errors import DataError
from neuroenc.similarity.kernel_alignment import _centred, _paired

__all__ = ["canonical_correlations", "svcca", "pwcca"]


class _Subspace(NamedTuple):
    """Orthonormal basis of a centred representation's column space and its coordinates."""

    #: (n, r) orthonormal basis (left singular vectors), by decreasing variance
    basis: np.ndarray
    #: (r, p) ``basis^T X_c`` (singular values times right singular vectors)
    coords: np.ndarray


def _subspace(X: np.ndarray) -> _Subspace:
    Xc = _centred(X)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    keep = s > (s[0] * max(Xc.shape) * np.finfo(float).eps if s.size and s[0] > 0 else np.inf)
    return _Subspace(U[:, keep], s[keep, None] * Vt[keep])


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[1] == 0 or b.shape[1] == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(a.T @ b, compute_uv=False), 0.0, 1.0)


def canonical_correlations(X: Any, Y: Any) -> np.ndarray:
    """Canonical correlations between two representations of the same stimuli.

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units_x) or (n_stimuli, ...)
        First representation; axes after the first are flattened.
    Y : array-like, shape (n_stimuli, n_units_y) or (n_stimuli, ...)
        Second representation, rows in the same stimulus order.

    Returns
    -------
    numpy.ndarray, shape (min(rank_x, rank_y),)
        Correlations in [0, 1], decreasing (ranks of the centred data).
    """
    X, Y = _paired(X, Y)
    return _correlations(_subspace(X).basis, _subspace(Y).basis)


# ----------------------------------------------------------------------
# SVCCA
def _check_reduction(n_components: Any, variance: Any) -> tuple[int | None, float]:
    if n_components is not None:
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise DataError(f"n_components must be a positive integer or None, got {n_components!r}.")
        n_components = int(n_components)
    try:
        variance = float(variance)
    except (TypeError, ValueError):
        raise DataError(f"variance must be a number in (0, 1], got {variance!r}.") from None
    if not 0.0 < variance <= 1.0:
        raise DataError(f"variance must be in (0, 1], got {variance!r}.")
    return n_components, variance


def _reduced_basis(X: np.ndarray, n_components: int | None = None, variance: float = 0.99) -> np.ndarray:
    n_components, variance = _check_reduction(n_components, variance)
    sub = _subspace(X)
    if n_components is None:
        power = np.einsum("ij,ij->i", sub.coords, sub.coords)  # variance of each component
        if power.size == 0:
            return sub.basis
        cumulative = np.cumsum(power)
        # Fewest components reaching the fraction (with rounding slack for variance=1).
        n_components = int(np.searchsorted(cumulative, variance * cumulative[-1] * (1 - 1e-12))) + 1
    return sub.basis[:, :n_components]


def _pair_svcca(a: np.ndarray, b: np.ndarray, n_components: int | None = None, variance: float = 0.99) -> float:
    rho = _correlations(a, b)
    return float(rho.mean()) if rho.size else 0.0


def svcca(X: Any, Y: Any, n_components: int | None = None, variance: float = 0.99) -> float:
    """Singular vector CCA similarity (Raghu et al. 2017).

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units_x) or (n_stimuli, ...)
        First representation (array, BrainData with one row per stimulus,
        torch tensor).
    Y : array-like, shape (n_stimuli, n_units_y) or (n_stimuli, ...)
        Second representation, rows in the same stimulus order.
    n_components : int, optional
        Keep this many top principal components of each representation
        (at most its rank). Overrides ``variance``.
    variance : float in (0, 1]
        Otherwise keep the fewest top components explaining this fraction of
        each representation's variance.

    Returns
    -------
    float
        Mean canonical correlation of the reduced representations, in [0, 1].

    Raises
    ------
    ShapeError, NonFiniteError
        Mismatched numbers of stimuli (both shapes named), NaN/Inf.
    DataError
        Invalid ``n_components`` or ``variance``.
    """
    _check_reduction(n_components, variance)
    X, Y = _paired(X, Y)
    return _pair_svcca(_reduced_basis(X, n_components, variance), _reduced_basis(Y, n_components, variance))


# ----------------------------------------------------------------------
# PWCCA
def _pair_pwcca(sx: _Subspace, sy: _Subspace) -> float:
    if sx.basis.shape[1] == 0 or sy.basis.shape[1] == 0:
        return 0.0
    if sy.coords.shape[1] < sx.coords.shape[1]:  # weights from the narrower representation
        sx, sy = sy, sx
    U, rho, _ = np.linalg.svd(sx.basis.T @ sy.basis, full_matrices=False)
    k = rho.size
    # <h_i, x_j> for the canonical variates h = Q_x U of X: U^T (Q_x^T X_c).
    weights = np.abs(U[:, :k].T @ sx.coords).sum(axis=1)
    return float(np.clip(weights @ np.clip(rho, 0.0, 1.0) / weights.sum(), 0.0, 1.0))


def pwcca(X: Any, Y: Any) -> float:
    """Projection-weighted CCA similarity (Morcos et al. 2018).

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units_x) or (n_stimuli, ...)
        First representation.
    Y : array-like, shape (n_stimuli, n_units_y) or (n_stimuli, ...)
        Second representation, rows in the same stimulus order.

    Returns
    -------
    float
        Weighted mean canonical correlation in [0, 1]; weights from the
        representation with fewer units (``X`` on a tie).

    Raises
    ------
    ShapeError, NonFiniteError
        Mismatched numbers of stimuli (both shapes named), NaN/Inf.
    """
    X, Y = _paired(X, Y)
    return _pair_pwcca(_subspace(X), _subspace(Y))
