"""Model evaluation with bootstrap and permutation inference (rsatoolbox 0.3.2 definitions).

:func:`evaluate` compares model RDMs with data RDMs (one per subject) and
estimates the sampling variability of the mean similarity by resampling
subjects (``bootstrap="rdm"``), conditions (``"pattern"``) or both
(``"both"``), as rsatoolbox's ``eval_bootstrap_rdm``, ``eval_bootstrap_pattern``
and ``eval_bootstrap``. Each bootstrap sample yields the mean evaluation of
every model and the noise ceiling of the resampled data.

Resampled conditions appear several times; the dissimilarities between
copies of the same condition are undefined (NaN) and left out of every
comparison, as in rsatoolbox. Samples with fewer than 3 distinct conditions
are NaN. For the Pearson, Spearman, cosine and rho-a comparisons the samples
are evaluated as weighted statistics of the original vectors (see
:mod:`neuroenc.rsa._resampling`), which is exact and avoids building the
resampled RDMs; other methods compare the resampled vectors.

The resampling indices can be drawn by :func:`bootstrap_indices` and passed
back (``indices=``), so that two runs, or neuroenc and rsatoolbox, see the
same samples: with an integer ``random_state`` (or None and numpy's global
seed) the indices are drawn in rsatoolbox's order (per sample: RDMs, then
conditions, each with ``randint(0, n, n)``).

Differences from rsatoolbox: when RDMs are grouped (``rdm_descriptor``) or
conditions are grouped (``condition_groups``), the variance correction and
degrees of freedom use the number of groups (rsatoolbox uses the number of
RDMs and conditions); the test against the noise ceiling of
``bootstrap="rdm"`` uses the covariance of evaluations and ceiling (rsatoolbox
drops the ceiling's variance for that case only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroenc.errors import ShapeError
from neuroenc.rsa import _resampling as rs
from neuroenc.rsa.ceiling import NoiseCeiling, ceiling_from_vectors, group_average, rdm_groups
from neuroenc.rsa.comparisons import canonical_method, compare_vectors, product_features
from neuroenc.rsa.models import model_vectors
from neuroenc.rsa.rdms import RDMs
from neuroenc.rsa.results import PermutationResult, RSAResult
from neuroenc.validation import check_array, check_choice, check_length

__all__ = ["BootstrapIndices", "bootstrap_indices", "evaluate", "permutation_test"]

_BOOTSTRAPS = ("pattern", "rdm", "both")


class _Default(str):
    """A default argument value that can be told from the same value passed explicitly."""


_PATTERN = _Default("pattern")
#: methods whose similarity is a dot product of per-RDM features (neuroenc.rsa.comparisons.product_features).
PRODUCT_METHODS = ("cosine", "pearson", "spearman", "rho_a", "cosine_cov", "pearson_cov")


@dataclass(frozen=True, eq=False)
class BootstrapIndices:
    """Resampling indices of a bootstrap.

    Attributes
    ----------
    rdm : numpy.ndarray of int, shape (n_bootstrap, n_rdm_units), or None
        Drawn RDM units (indices into the sorted unique values of the
        ``rdm_descriptor``, or RDM indices).
    pattern : numpy.ndarray of int, shape (n_bootstrap, n_condition_units), or None
        Drawn conditions (indices into the sorted unique condition groups, or
        condition indices).
    """

    rdm: np.ndarray | None = None
    pattern: np.ndarray | None = None

    @property
    def kind(self) -> str:
        """``"rdm"``, ``"pattern"`` or ``"both"``."""
        if self.rdm is not None and self.pattern is not None:
            return "both"
        return "rdm" if self.rdm is not None else "pattern"

    @property
    def n_bootstrap(self) -> int:
        """Number of bootstrap samples."""
        return len(self.rdm if self.rdm is not None else self.pattern)


def _condition_units(condition_groups: Any, n_cond: int) -> tuple[np.ndarray, int]:
    """Group index of each condition and the number of groups."""
    if condition_groups is None:
        return np.arange(n_cond), n_cond
    labels = np.asarray(list(condition_groups))
    if labels.ndim != 1:
        raise ShapeError(f"condition_groups must be one label per condition, got shape {labels.shape}.")
    check_length(n_cond, labels, "condition_groups", of="conditions")
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.ravel(), int(inverse.max()) + 1


def bootstrap_indices(
    data: RDMs,
    bootstrap: str = "pattern",
    n_bootstrap: int = 1000,
    *,
    rdm_descriptor: str | None = None,
    condition_groups: Sequence[Any] | None = None,
    random_state: Any = None,
) -> BootstrapIndices:
    """Draw bootstrap resampling indices for ``data``.

    Parameters
    ----------
    data : RDMs
        The data to resample.
    bootstrap : {"pattern", "rdm", "both"}
        Resample conditions, RDMs (subjects), or both.
    n_bootstrap : int
        Number of samples.
    rdm_descriptor : str, optional
        Metadata column whose values are resampled as units (e.g. subject,
        with several sessions each). Default: each RDM.
    condition_groups : sequence, optional
        One label per condition; conditions with equal labels are resampled
        together. Default: each condition.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        None uses numpy's global state and an int a ``RandomState``, drawing
        exactly as rsatoolbox does with the same seed.

    Returns
    -------
    BootstrapIndices
    """
    if not isinstance(data, RDMs):
        raise ShapeError(f"data must be an RDMs object, got {type(data).__name__}.")
    check_choice(bootstrap, _BOOTSTRAPS, "bootstrap")
    n_bootstrap = rs.check_count(n_bootstrap, "n_bootstrap")
    n_rdm = len(rdm_groups(data, rdm_descriptor)[1])
    n_pat = _condition_units(condition_groups, data.n_conditions)[1]
    rng = rs.random_state(random_state)
    draw = rng.randint if isinstance(rng, np.random.RandomState) else rng.integers
    want_rdm, want_pat = bootstrap in ("rdm", "both"), bootstrap in ("pattern", "both")
    rdm = np.empty((n_bootstrap, n_rdm), dtype=np.intp) if want_rdm else None
    pat = np.empty((n_bootstrap, n_pat), dtype=np.intp) if want_pat else None
    for i in range(n_bootstrap):  # per sample, RDMs then conditions: rsatoolbox's stream
        if want_rdm:
            rdm[i] = draw(0, n_rdm, size=n_rdm)
        if want_pat:
            pat[i] = draw(0, n_pat, size=n_pat)
    return BootstrapIndices(rdm, pat)


def _check_indices(indices: Any, bootstrap: str | None, n_rdm: int, n_pat: int) -> BootstrapIndices:
    if not isinstance(indices, BootstrapIndices):
        raise ShapeError(f"indices must be a BootstrapIndices (see bootstrap_indices), got {type(indices).__name__}.")
    if indices.rdm is None and indices.pattern is None:
        raise ShapeError("indices holds neither RDM nor condition indices.")
    if not isinstance(bootstrap, _Default) and bootstrap != indices.kind:
        raise ShapeError(f"bootstrap={bootstrap!r} but the indices resample {indices.kind!r}.")
    out = {}
    for name, arr, n_units in (("rdm", indices.rdm, n_rdm), ("pattern", indices.pattern, n_pat)):
        if arr is None:
            out[name] = None
            continue
        arr = check_array(arr, f"indices.{name}", ndim=2, dtype=None)
        if arr.dtype.kind not in "iu":
            raise ShapeError(f"indices.{name} must hold integers, got dtype {arr.dtype}.")
        if arr.shape[1] != n_units or arr.min() < 0 or arr.max() >= n_units:
            raise ShapeError(f"indices.{name} must be (n_bootstrap, {n_units}) with values in [0, {n_units}).")
        out[name] = arr
    if out["rdm"] is not None and out["pattern"] is not None and len(out["rdm"]) != len(out["pattern"]):
        raise ShapeError("indices.rdm and indices.pattern have different numbers of samples.")
    return BootstrapIndices(out["rdm"], out["pattern"])


def evaluate(
    models: Any,
    data: RDMs,
    method: str = "spearman",
    *,
    bootstrap: str | None = _PATTERN,
    n_bootstrap: int | None = None,
    indices: BootstrapIndices | None = None,
    rdm_descriptor: str | None = None,
    condition_groups: Sequence[Any] | None = None,
    random_state: Any = None,
    names: Sequence[str] | None = None,
    n_jobs: int | None = None,
) -> RSAResult:
    """Evaluate fixed model RDMs on data RDMs, with bootstrap inference and noise ceiling.

    Parameters
    ----------
    models : RDMs or sequence of RDMs
        Each RDM is one model; conditions must match those of ``data`` (the
        same labels; another order is aligned).
    data : RDMs
        One RDM per subject (or several per subject with ``rdm_descriptor``).
    method : str
        Comparison method: ``pearson``, ``spearman``, ``kendall_tau_a``,
        ``kendall_tau_b``, ``rho_a``, ``cosine``, ``cosine_cov``,
        ``pearson_cov`` or an rsatoolbox name (``corr``, ``tau-a``,
        ``rho-a``, ``corr_cov``, ...).
    bootstrap : {"pattern", "rdm", "both"} or None
        What to resample (default ``"pattern"``, or what ``indices``
        resample); None evaluates once, with standard errors across subjects
        (rsatoolbox's ``eval_fixed``).
    n_bootstrap : int, optional
        Number of bootstrap samples (default 1000; taken from ``indices``
        when given).
    indices : BootstrapIndices, optional
        Precomputed resampling indices (:func:`bootstrap_indices`).
    rdm_descriptor : str, optional
        Metadata column grouping RDMs into units (resampled, left out in the
        noise ceiling and averaged together).
    condition_groups : sequence, optional
        One label per condition; conditions with equal labels are resampled
        together.
    random_state : None, int, RandomState or Generator
        Randomness of the resampling (see :func:`bootstrap_indices`).
    names : sequence of str, optional
        Model names (default: metadata column ``model``/``name``).
    n_jobs : int or None
        Threads of the compiled kernels (None: all cores).

    Returns
    -------
    RSAResult
        With :meth:`~RSAResult.to_frame` and :meth:`~RSAResult.plot`.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.rsa.rdms import RDMs
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.random(190)  # 20 conditions
    >>> data = RDMs(truth + 0.5 * rng.random((5, 190)))
    >>> models = RDMs(np.vstack([truth, rng.random(190)]), metadata={"model": ["true", "random"]})
    >>> result = evaluate(models, data, "spearman", n_bootstrap=100, random_state=0)
    >>> result.to_frame()["model"].tolist()
    ['true', 'random']
    >>> bool(result.p_pairwise()[0] < 0.01)
    True
    """
    if not isinstance(data, RDMs):
        raise ShapeError(f"data must be an RDMs object, got {type(data).__name__}.")
    method = canonical_method(method)
    if bootstrap is not None:
        check_choice(bootstrap, _BOOTSTRAPS, "bootstrap")
    if n_bootstrap is not None:
        rs.check_count(n_bootstrap, "n_bootstrap")
    names, M = model_vectors(models, data, names)
    D = data.vectors
    groups, _ = rdm_groups(data, rdm_descriptor)
    cgroups, n_pat = _condition_units(condition_groups, data.n_conditions)
    n_rdm = int(groups.max()) + 1
    if indices is not None:
        indices = _check_indices(indices, bootstrap, n_rdm, n_pat)
        bootstrap = indices.kind
        if n_bootstrap is not None and n_bootstrap != indices.n_bootstrap:
            raise ShapeError(f"n_bootstrap={n_bootstrap} but indices hold {indices.n_bootstrap} samples.")
    if bootstrap in ("rdm", "both") and n_rdm < 2:
        raise ShapeError(f"bootstrap={bootstrap!r} needs at least 2 RDM units; the data have {n_rdm}.")
    if bootstrap in ("pattern", "both") and n_pat < 3:
        raise ShapeError(f"bootstrap={bootstrap!r} needs at least 3 condition units; the data have {n_pat}.")

    unit_scores = group_average(groups) @ compare_vectors(M, D, method, n_jobs=n_jobs).T
    estimate = unit_scores.mean(axis=0)
    ceiling = NoiseCeiling(*ceiling_from_vectors(D, groups, method))
    if bootstrap is None:
        return RSAResult(names, method, "fixed", unit_scores, [ceiling], estimate, ceiling, n_rdm)

    if indices is None:
        indices = bootstrap_indices(
            data,
            bootstrap,
            1000 if n_bootstrap is None else n_bootstrap,
            rdm_descriptor=rdm_descriptor,
            condition_groups=condition_groups,
            random_state=random_state,
        )
    samples, ceilings = _bootstrap(M, D, method, indices, groups, cgroups, n_rdm, n_pat, n_jobs)
    n_units = {"rdm": n_rdm, "pattern": n_pat, "both": min(n_rdm, n_pat)}[bootstrap]
    return RSAResult(
        names, method, f"bootstrap_{bootstrap}", samples, ceilings, estimate, ceiling, n_units, indices=indices
    )


def _bootstrap(
    M: np.ndarray,
    D: np.ndarray,
    method: str,
    indices: BootstrapIndices,
    groups: np.ndarray,
    cgroups: np.ndarray,
    n_rdm: int,
    n_pat: int,
    n_jobs: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean evaluation of each model and noise ceiling for every bootstrap sample."""
    n_boot = indices.n_bootstrap
    cond_counts = np.ones((n_boot, len(cgroups)), dtype=np.intp)
    valid = np.ones(n_boot, dtype=bool)
    if indices.pattern is not None:
        drawn = np.stack([np.bincount(row, minlength=n_pat) for row in indices.pattern])
        valid = (drawn > 0).sum(axis=1) >= 3  # as rsatoolbox: at least 3 distinct conditions
        cond_counts = drawn[:, cgroups]
    rdm_counts = np.ones((n_boot, len(D)), dtype=np.intp)
    if indices.rdm is not None:
        rdm_counts = np.stack([np.bincount(row, minlength=n_rdm) for row in indices.rdm])[:, groups]
    if method in rs.FAST_METHODS and not (np.isnan(M).any() or np.isnan(D).any()):
        from neuroenc._kernels.bootstrap import bootstrap_evaluate

        return bootstrap_evaluate(method, M, D, cond_counts, rdm_counts, groups, valid, n_jobs)
    samples = np.full((n_boot, len(M)), np.nan)
    ceilings = np.full((n_boot, 2), np.nan)
    for b in np.flatnonzero(valid):
        keep = rdm_counts[b] > 0
        u = rdm_counts[b, keep].astype(float)
        Mv, Dv = M, D[keep]
        if indices.pattern is not None:
            index, same = rs.expand_pairs(cond_counts[b])
            Mv, Dv = rs.expand(M, index, same), rs.expand(Dv, index, same)
        samples[b] = compare_vectors(Mv, Dv, method, n_jobs=n_jobs) @ u / u.sum()
        ceilings[b] = ceiling_from_vectors(Dv, np.unique(groups[keep], return_inverse=True)[1].ravel(), method, u)
    return samples, ceilings


def permutation_test(
    models: Any,
    data: RDMs,
    method: str = "spearman",
    *,
    n_permutations: int = 1000,
    random_state: Any = None,
    names: Sequence[str] | None = None,
    n_jobs: int | None = None,
) -> PermutationResult:
    """Test each model against the null of no relation by permuting condition labels.

    The model RDM's conditions are permuted (rows and columns together; the
    same permutation for all models) and the mean similarity over subjects
    recomputed; the one-sided p-value is ``(1 + #{null >= observed}) /
    (1 + n_permutations)``. This tests the model against chance, not against
    other models. (rsatoolbox 0.3.2 has no condition-label permutation test.)

    Parameters
    ----------
    models, data, method, names
        As :func:`evaluate`.
    n_permutations : int
        Number of random permutations.
    random_state : None, int, RandomState or Generator
        Randomness of the permutations.
    n_jobs : int or None
        Threads of the compiled rank kernels (None: all cores).

    Returns
    -------
    PermutationResult
    """
    if not isinstance(data, RDMs):
        raise ShapeError(f"data must be an RDMs object, got {type(data).__name__}.")
    method = canonical_method(method)
    n_permutations = rs.check_count(n_permutations, "n_permutations")
    names, M = model_vectors(models, data, names)
    D = data.vectors
    n_cond = data.n_conditions
    rng = rs.random_state(random_state)
    perms = np.vstack([np.arange(n_cond), [rng.permutation(n_cond) for _ in range(n_permutations)]])
    pair_maps = _permuted_pairs(perms, n_cond)
    if method in PRODUCT_METHODS and not (np.isnan(M).any() or np.isnan(D).any()):
        # similarities are dot products of features, and the features of a
        # permuted RDM are the permuted features: no ranks or whitening per permutation
        feat_models = product_features(M, method, n_jobs=n_jobs)
        feat_data = product_features(D, method, n_jobs=n_jobs).mean(axis=0)
        if feat_models.shape[1] > M.shape[1]:  # whitened: the diagonal of G follows the conditions
            pair_maps = np.hstack([pair_maps, M.shape[1] + perms])
        means = np.stack([feat_models[:, pm] @ feat_data for pm in pair_maps])
    else:
        means = np.stack([compare_vectors(M[:, pm], D, method, n_jobs=n_jobs).mean(axis=1) for pm in pair_maps])
    observed, null = means[0], means[1:]
    pvalues = (1 + (null >= observed).sum(axis=0)) / (1 + n_permutations)
    return PermutationResult(names, method, observed, null, pvalues)


def _permuted_pairs(perms: np.ndarray, n_cond: int) -> np.ndarray:
    """For each permutation ``p``, the pair indices giving ``M[p][:, p]`` as a vector."""
    lookup = np.zeros((n_cond, n_cond), dtype=np.intp)
    rows, cols = rs.pair_conditions(n_cond)
    lookup[rows, cols] = lookup[cols, rows] = np.arange(len(rows))
    return lookup[perms[:, rows], perms[:, cols]]
