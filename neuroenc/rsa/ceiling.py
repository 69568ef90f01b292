"""Noise ceiling of RDM data and ceiling-normalised model scores.

The noise ceiling bounds the score the true model could reach given the
variability between subjects (Nili et al. 2014, PLoS Comput Biol 10:e1003553):

* **lower bound**: each subject's RDM compared with the pooled RDM of the
  other subjects (leave one subject out), averaged over subjects; a model
  fitted to the group can do at least this well;
* **upper bound**: each subject's RDM compared with the pooled RDM of all
  subjects (itself included), averaged over subjects; no model can do
  better on average.

The pooled RDM is the one that maximises the average similarity under the
comparison method: the mean of the rank-transformed RDMs for rank
correlations (Spearman, rho-a, Kendall's tau), of the z-scored RDMs for
Pearson correlations and of the RDMs scaled to unit root mean square for
cosine similarities (plain and whitened alike). These are the definitions of
rsatoolbox 0.3.2 (``boot_noise_ceiling``, ``pool_rdm``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from neuroenc.errors import LabelError, ShapeError
from neuroenc.rsa import _resampling as rs
from neuroenc.rsa.comparisons import canonical_method, compare_vectors
from neuroenc.rsa.rdms import RDMs
from neuroenc.validation import check_array, check_choice, check_names

__all__ = ["NoiseCeiling", "noise_ceiling", "pool_rdms", "normalize_scores"]


class NoiseCeiling(NamedTuple):
    """Lower and upper bound of the noise ceiling."""

    lower: float
    upper: float


def rdm_groups(data: RDMs, rdm_descriptor: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Group index of each RDM and the group labels (sorted unique values, as rsatoolbox).

    ``rdm_descriptor`` names a metadata column whose RDMs with equal values
    form one unit (e.g. the sessions of a subject); None makes every RDM its
    own unit.
    """
    if rdm_descriptor is None:
        return np.arange(data.n_rdms), np.arange(data.n_rdms)
    if not isinstance(data, RDMs):
        raise ShapeError("rdm_descriptor needs the data as an RDMs object.")
    check_names([rdm_descriptor], data.metadata.columns, "metadata column")
    values = data.metadata[rdm_descriptor].to_numpy()
    if data.metadata[rdm_descriptor].isna().any():
        raise LabelError(f"metadata column {rdm_descriptor!r} has missing values.")
    labels, groups = np.unique(values, return_inverse=True)
    return groups.ravel(), labels


def group_average(groups: np.ndarray) -> np.ndarray:
    """``(n_groups, n_rows)`` matrix whose product with per-row values averages them within groups."""
    n_groups = int(groups.max()) + 1
    member = np.zeros((n_groups, len(groups)))
    member[groups, np.arange(len(groups))] = 1.0
    return member / member.sum(axis=1, keepdims=True)


def ceiling_from_vectors(
    vectors: np.ndarray, groups: np.ndarray, method: str, counts: np.ndarray | None = None
) -> tuple[float, float]:
    """Noise ceiling of RDM vectors (rows) grouped into units, each row counted ``counts`` times.

    The lower bound averages, over groups, the similarity of each of the
    group's rows to the pool of the other groups; the upper bound to the pool
    of all rows.
    """
    counts = np.ones(len(vectors)) if counts is None else np.asarray(counts, dtype=float)
    pools = rs.loo_pools(rs.pooling_transform(vectors, method), groups, counts)
    to_all = compare_vectors(pools[-1:], vectors, method)[0]
    lower, upper = [], []
    for g in range(len(pools) - 1):
        rows = groups == g
        lower.append(compare_vectors(pools[g : g + 1], vectors[rows], method).mean())
        upper.append(to_all[rows].mean())
    return float(np.mean(lower)), float(np.mean(upper))


def noise_ceiling(data: RDMs, method: str = "spearman", *, rdm_descriptor: str | None = None) -> NoiseCeiling:
    """Lower (leave one subject out) and upper (all subjects) noise ceiling.

    Parameters
    ----------
    data : RDMs
        One RDM per subject (or several per subject with ``rdm_descriptor``).
    method : str
        Comparison method (see :mod:`neuroenc.rsa.comparisons`; rsatoolbox names
        such as ``"corr"`` or ``"tau-a"`` are accepted).
    rdm_descriptor : str, optional
        Metadata column grouping RDMs into subjects: a subject's RDMs are
        left out together and their similarities averaged. Default: every RDM
        is a subject.

    Returns
    -------
    NoiseCeiling
        ``(lower, upper)``. With a single subject both bounds are the
        similarity of its RDM to itself pooled (as rsatoolbox).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.rsa.rdms import RDMs
    >>> rng = np.random.default_rng(0)
    >>> base = rng.random(15)
    >>> data = RDMs(base + 0.3 * rng.random((6, 15)))
    >>> lower, upper = noise_ceiling(data, "pearson")
    >>> bool(lower < upper)
    True
    """
    if not isinstance(data, RDMs):
        raise ShapeError(f"data must be an RDMs object, got {type(data).__name__}.")
    method = canonical_method(method)
    groups, _ = rdm_groups(data, rdm_descriptor)
    return NoiseCeiling(*ceiling_from_vectors(data.vectors, groups, method))


def pool_rdms(data: RDMs, method: str = "spearman") -> RDMs:
    """The pooled RDM that maximises the average similarity under ``method``.

    Mean of the ranks (rank methods), of the z-scored RDMs (Pearson) or of the
    RDMs scaled to unit root mean square (cosine); a pair missing in any RDM
    is missing in the pool.

    Parameters
    ----------
    data : RDMs
        RDMs to pool.
    method : str
        Comparison method the pool is made for.

    Returns
    -------
    RDMs
        One RDM over the same conditions.
    """
    if not isinstance(data, RDMs):
        raise ShapeError(f"data must be an RDMs object, got {type(data).__name__}.")
    method = canonical_method(method)
    z = rs.pooling_transform(data.vectors, method)
    pooled = np.ones(data.n_rdms) @ z / data.n_rdms
    return RDMs(pooled[None, :], data.conditions, method=data.method)


def normalize_scores(scores: Any, ceiling: NoiseCeiling | Sequence[float], bound: str = "lower") -> np.ndarray | float:
    """Model scores as fractions of the noise ceiling.

    Parameters
    ----------
    scores : float or array-like
        Model evaluations.
    ceiling : NoiseCeiling or (lower, upper)
        Noise ceiling of the same data and method.
    bound : {"lower", "upper", "middle"}
        Divide by the lower bound (the usual choice: a score of 1 means the
        model explains the data as well as the other subjects do), the upper
        bound, or their mean.

    Returns
    -------
    float or numpy.ndarray
        ``scores / ceiling``; NaN where the chosen bound is not positive.
    """
    check_choice(bound, ("lower", "upper", "middle"), "ceiling bound")
    lower, upper = (float(v) for v in ceiling)
    ref = {"lower": lower, "upper": upper, "middle": (lower + upper) / 2}[bound]
    arr = check_array(scores, "scores", ndim=None, allow_nonfinite=True, min_rows=0)
    out = arr / ref if ref > 0 else np.full(arr.shape, np.nan)
    return float(out) if out.ndim == 0 else out
