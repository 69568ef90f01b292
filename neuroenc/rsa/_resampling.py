"""Numerics shared by the noise ceiling, bootstrap, permutation and model-fitting code.

Resampling conditions with replacement (a bootstrap over patterns) turns an
RDM over ``n`` conditions into one over the drawn copies, in condition order.
The dissimilarity between a copy of condition ``i`` and a copy of ``j != i``
is ``d_ij``; the pairs between two copies of the same condition carry no
information and are NaN (as in rsatoolbox), so they drop out of every
comparison (:func:`expand_pairs`). The compiled bootstrap
(:mod:`neuroenc._kernels.bootstrap`) uses the equivalent weighted form for
the Pearson, cosine, Spearman and rho-a comparisons.

Rank averages are formed as exact sums of half-integers divided once by the
count, so that ties among pooled ranks are the same as in rsatoolbox's
``np.mean`` (a tie broken by one rounding error would move a rank by 0.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroenc.errors import ShapeError
from neuroenc.rsa.rdms import n_pairs

#: comparison methods of the compiled bootstrap kernel.
FAST_METHODS = frozenset({"pearson", "cosine", "spearman", "rho_a"})
#: methods compared on ranks; their pooled RDM is the mean of the ranks.
RANK_METHODS = frozenset({"spearman", "rho_a", "kendall_tau_a", "kendall_tau_b"})


def random_state(random_state: Any) -> np.random.RandomState | np.random.Generator:
    """None: numpy's global state (as rsatoolbox); int: a seeded ``RandomState``; else as given."""
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.RandomState(int(random_state))
    raise ShapeError(f"random_state must be None, an int, a RandomState or a Generator; got {random_state!r}.")


def check_count(value: Any, name: str) -> int:
    """A positive integer (bools and floats rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ShapeError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


# ----------------------------------------------------------------------
# pooling (the "best" group RDM for a method, as rsatoolbox's pool_rdm)
def nan_ranks(X: np.ndarray) -> np.ndarray:
    """Average ranks of each row over its finite entries (``scipy.stats.rankdata``); NaN stays NaN."""
    from neuroenc._kernels.ranks import average_ranks

    return average_ranks(X)


def pooling_transform(X: np.ndarray, method: str) -> np.ndarray:
    """Rows made comparable before averaging them into a pooled RDM.

    Rank methods: ranks; Pearson (plain or whitened): z-scores; cosine (plain
    or whitened): division by the root mean square. NaN entries are ignored
    in the statistics and kept.
    """
    if method in RANK_METHODS:
        return nan_ranks(X)
    if method in ("pearson", "pearson_cov"):
        centred = X - np.nanmean(X, axis=1, keepdims=True)
        return centred / np.nanstd(centred, axis=1, keepdims=True)
    return X / np.sqrt(np.nanmean(X**2, axis=1, keepdims=True))


def loo_pools(Z: np.ndarray, groups: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Leave-one-group-out pooled rows, then the pool of all rows.

    Parameters
    ----------
    Z : numpy.ndarray, shape (n_rows, n_pairs)
        Transformed rows (:func:`pooling_transform`).
    groups : numpy.ndarray of int, shape (n_rows,)
        Group index ``0 .. n_groups - 1`` of each row (e.g. subject).
    counts : numpy.ndarray, shape (n_rows,)
        Multiplicity of each row in the pool (positive integers).

    Returns
    -------
    numpy.ndarray, shape (n_groups + 1, n_pairs)
        Row ``g``: mean over the rows of the other groups (all rows when
        there is one group, as rsatoolbox); last row: mean over all rows.
    """
    n_groups = int(groups.max()) + 1
    total_weight = counts.sum()
    total = counts @ Z
    if n_groups == 1:
        loo = (total / total_weight)[None, :]
    elif np.isnan(Z).any():
        # a missing entry of one group must not blank the pools that leave it out
        loo = np.stack([counts[groups != g] @ Z[groups != g] / counts[groups != g].sum() for g in range(n_groups)])
    else:
        # exact sums (integer counts times half-integer ranks), divided once
        member = np.zeros((n_groups, len(groups)))
        member[groups, np.arange(len(groups))] = counts
        loo = (total - member @ Z) / (total_weight - member.sum(axis=1))[:, None]
    return np.vstack([loo, total / total_weight])


# ----------------------------------------------------------------------
# resampled conditions
def pair_conditions(n_conditions: int) -> tuple[np.ndarray, np.ndarray]:
    """Conditions ``(i, j)`` of each pair, squareform order."""
    return np.triu_indices(n_conditions, k=1)


def expand_pairs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Original pair index of each pair of the resampled RDM, and where it joins two copies.

    The copies are in condition order (as rsatoolbox's ``subsample_pattern``).

    Returns
    -------
    index : numpy.ndarray of int, shape (n_pairs(sum(counts)),)
    same : numpy.ndarray of bool
        Pairs of two copies of one condition (NaN in the resampled RDM).
    """
    n = len(counts)
    lookup = np.zeros((n, n), dtype=np.intp)
    rows, cols = pair_conditions(n)
    lookup[rows, cols] = lookup[cols, rows] = np.arange(n_pairs(n))
    drawn = np.repeat(np.arange(n), counts)
    r, c = pair_conditions(len(drawn))
    a, b = drawn[r], drawn[c]
    return lookup[a, b], a == b


def expand(X: np.ndarray, index: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Rows of ``X`` as resampled RDM vectors (:func:`expand_pairs`)."""
    out = X[:, index]
    out[:, same] = np.nan
    return out
