"""Comparing RDMs: correlations, rank correlations and whitened similarities.

Every method returns the full ``(n_a, n_b)`` matrix of similarities between
the RDMs of two sets, with the definitions of ``rsatoolbox.rdm.compare``
(rsatoolbox 0.3.2; its method names are accepted as aliases).

==================  ===============  ===========================================================
method              rsatoolbox       similarity of dissimilarity vectors ``a``, ``b`` (``n`` pairs)
==================  ===============  ===========================================================
``cosine``          ``cosine``       ``a.b / (|a| |b|)``
``pearson``         ``corr``         cosine of the mean-centred vectors
``spearman``        ``spearman``     Pearson correlation of the ranks (ties share their mean rank)
``rho_a``           ``rho-a``        ``12 sum(ra_c rb_c) / (n**3 - n)``, ``r_c`` = centred ranks
``kendall_tau_a``   ``tau-a``        ``(concordant - discordant) / (n (n - 1) / 2)``
``kendall_tau_b``   ``tau-b``,       ``scipy.stats.kendalltau``: ``(C - D) / sqrt((n0 - n1) (n0 - n2))``
                    ``kendall``
``cosine_cov``      ``cosine_cov``   cosine after whitening by the covariance of distance estimates
``pearson_cov``     ``corr_cov``     ``cosine_cov`` of the mean-centred vectors
==================  ===============  ===========================================================

Whitened methods (Diedrichsen et al. 2021, *Comparing representational
geometries using whitened unbiased-distance-matrix similarity*). With
``sigma_k`` (the covariance of the pattern estimates) the distances have the
covariance ``V = (C S C') o (C S C')`` (``C`` the pair contrasts, ``o`` the
elementwise product) and the similarity is ``a' V^-1 b / sqrt(a' V^-1 a
b' V^-1 b)``. It is computed without forming ``V``:

* ``sigma_k`` None: the cosine (Frobenius) between the double-centred
  second-moment matrices ``G = -D / 2`` (off-diagonal entries counted twice);
  this equals ``a' V^-1 b`` normalised.
* ``sigma_k`` 1-D (variances): as rsatoolbox, the double-centred ``G`` is
  divided elementwise by ``sqrt(s_i s_j)``.
* ``sigma_k`` 2-D: exact whitening ``Q L^-1 G L^-T Q`` (``S = L L'``, ``Q``
  projects out ``L^-1 1``), which equals ``a' V^-1 b`` normalised; rsatoolbox
  solves ``V x = b`` by conjugate gradients instead (same value up to its
  solver tolerance, differences of about 1e-6).

With missing pairs the double centring becomes rsatoolbox's weighted
projection of the available entries of ``G`` on row and column effects; with
a 2-D ``sigma_k`` and missing pairs ``V`` restricted to the available pairs is
factorised (``O(n_pairs**3)``, like rsatoolbox's dense system). (rsatoolbox
0.3.2 fails on missing pairs from 100 conditions on, where it switches to
sparse integer matrices; these are computed here as below 100.)

Missing dissimilarities (NaN)
    Each comparison uses the pairs defined in both RDMs. This is what
    rsatoolbox computes whenever the RDMs of each set share their NaN
    positions (e.g. bootstrap samples with repeated conditions); rsatoolbox
    drops the union of NaN positions of all RDMs and raises when the two sets
    disagree, whereas here every comparison keeps all its usable pairs. A
    comparison with no common pair is NaN.

Constant RDMs (zero variance)
    As rsatoolbox, whose cosine maps zero-norm vectors to 0: ``cosine`` of an
    all-zero RDM, and ``pearson``, ``spearman``, ``rho_a``, ``kendall_tau_a``,
    ``pearson_cov`` of a constant RDM are 0. ``kendall_tau_b`` of a constant
    RDM is NaN (as ``scipy.stats.kendalltau`` and rsatoolbox). ``cosine_cov``
    of a constant RDM is defined (it is the "all conditions equally distinct"
    geometry). Constancy is tested exactly (``max == min``), so rounding in the
    centring cannot turn a constant RDM into a spurious correlation.
    rsatoolbox 0.3.2 misplaces the other similarities of a set that mixes
    zero-norm and other RDMs (its ``np.putmask`` repeats values by flat
    position); here each entry is that of the pair alone. The Kendall taus
    and ``rho_a`` need at least two common pairs (NaN otherwise).

For loops over many comparisons (bootstrap, permutations) use
:func:`compare_vectors` on raw arrays (batched, per-comparison NaN masks) and
:func:`product_features`, which maps RDMs to vectors whose dot products are
the similarities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroenc._scratch import scratch
from neuroenc.errors import DataError, LabelError, NonFiniteError, ShapeError
from neuroenc.validation import check_array, check_choice, check_spd

__all__ = ["METHODS", "compare", "compare_vectors", "product_features", "canonical_method"]

#: canonical method names.
METHODS = (
    "cosine",
    "pearson",
    "spearman",
    "rho_a",
    "kendall_tau_a",
    "kendall_tau_b",
    "cosine_cov",
    "pearson_cov",
)

#: other accepted spellings (rsatoolbox's names among them) -> canonical name.
_ALIASES = {
    "corr": "pearson",
    "correlation": "pearson",
    "tau-a": "kendall_tau_a",
    "tau_a": "kendall_tau_a",
    "tau-b": "kendall_tau_b",
    "tau_b": "kendall_tau_b",
    "kendall": "kendall_tau_b",
    "rho-a": "rho_a",
    "corr_cov": "pearson_cov",
    "whitened_pearson": "pearson_cov",
    "whitened_cosine": "cosine_cov",
}

#: methods whose similarity is a dot product of per-RDM feature vectors.
_PRODUCT_METHODS = ("cosine", "pearson", "spearman", "rho_a", "cosine_cov", "pearson_cov")
_WHITENED = ("cosine_cov", "pearson_cov")


def canonical_method(method: str) -> str:
    """The canonical name of ``method`` (an entry of :data:`METHODS` or an alias such as ``"tau-a"``)."""
    if isinstance(method, str) and method in _ALIASES:
        return _ALIASES[method]
    return check_choice(method, METHODS + tuple(_ALIASES), "RDM comparison method")


# ----------------------------------------------------------------------
# public entry points
def compare(
    rdms_a: Any, rdms_b: Any, method: str = "cosine", *, sigma_k: Any = None, n_jobs: int | None = None
) -> np.ndarray:
    """Similarity of every RDM of ``rdms_a`` with every RDM of ``rdms_b``.

    Parameters
    ----------
    rdms_a, rdms_b : RDMs or array-like
        :class:`neuroenc.rsa.RDMs`, or dissimilarities as accepted by it:
        vectors ``(n, n_pairs)`` / ``(n_pairs,)`` or matrices
        ``(n, n_cond, n_cond)`` / ``(n_cond, n_cond)``. NaN marks a missing
        dissimilarity. Both must have the same number of conditions; two
        :class:`RDMs` with explicit condition labels must list the same
        conditions in the same order.
    method : str
        One of :data:`METHODS` or an rsatoolbox name (``"corr"``,
        ``"tau-a"``, ``"tau-b"``/``"kendall"``, ``"rho-a"``, ``"corr_cov"``);
        see the module documentation for the definitions.
    sigma_k : array-like, optional
        Covariance of the pattern estimates for ``cosine_cov`` and
        ``pearson_cov``: variances ``(n_cond,)`` or a positive-definite
        ``(n_cond, n_cond)`` matrix. Default: identity.
    n_jobs : int or None
        Threads for the rank kernels (None: all cores).

    Returns
    -------
    numpy.ndarray, shape (n_a, n_b)
        ``out[i, j]`` compares RDM ``i`` of ``rdms_a`` with RDM ``j`` of
        ``rdms_b``.

    Raises
    ------
    ShapeError
        Different numbers of conditions, or input that is not RDMs.
    LabelError
        Both inputs label their conditions, differently.
    UnknownNameError
        Unknown method.
    NonFiniteError
        Infinite dissimilarities.
    DataError
        ``sigma_k`` given to a method that does not use it.
    """
    method = canonical_method(method)
    a, labels_a = _as_vectors(rdms_a, "rdms_a")
    b, labels_b = _as_vectors(rdms_b, "rdms_b")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(
            f"rdms_a and rdms_b have different numbers of conditions "
            f"({_n_cond(a.shape[1])} and {_n_cond(b.shape[1])} conditions)."
        )
    if labels_a is not None and labels_b is not None and not np.array_equal(labels_a, labels_b):
        raise LabelError(
            "rdms_a and rdms_b label their conditions differently (or in another order); "
            "use RDMs.reorder(...) to align them, or pass the .vectors to compare by position."
        )
    sigma_k = _check_sigma_k(sigma_k, method, _n_cond(a.shape[1]))
    return _compare_batched(a[None], b[None], method, sigma_k, n_jobs)[0]


def compare_vectors(
    a: Any, b: Any, method: str = "cosine", *, sigma_k: Any = None, n_jobs: int | None = None
) -> np.ndarray:
    """Batched comparison of raw dissimilarity vectors, without the container checks.

    Parameters
    ----------
    a : array-like, shape (..., n_a, n_pairs)
        RDM vectors (squareform order); NaN marks a missing dissimilarity.
    b : array-like, shape (..., n_b, n_pairs)
        Leading dimensions broadcast against those of ``a``.
    method : str
        As :func:`compare`.
    sigma_k : array-like, optional
        As :func:`compare`.
    n_jobs : int or None
        Threads for the rank kernels.

    Returns
    -------
    numpy.ndarray, shape (..., n_a, n_b)
        Similarities; each one on the pairs defined in both vectors.

    Notes
    -----
    Made for resampling loops: e.g. ``a`` of shape ``(n_boot, n_models,
    n_pairs)`` and ``b`` of shape ``(n_boot, n_subjects, n_pairs)``, with NaN
    where a bootstrap sample repeats a condition, give all bootstrap
    comparisons in one call. When all vectors of a batch entry share their
    NaN positions (the bootstrap case), ranks and whitening are computed
    once per vector; otherwise the comparisons whose NaN positions differ
    are recomputed on their common pairs, batched per pair of NaN patterns
    (correct but slower: bootstrap the models along with the data so that
    their NaN positions agree). The Kendall taus handle every pair alike.
    """
    method = canonical_method(method)
    a = check_array(a, "a", dtype=np.float64, allow_nonfinite=True)
    b = check_array(b, "b", dtype=np.float64, allow_nonfinite=True)
    if a.ndim < 2 or b.ndim < 2:
        raise ShapeError(f"a and b must be (..., n_rdms, n_pairs); got shapes {a.shape} and {b.shape}.")
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"a and b have different numbers of pairs ({a.shape[-1]} and {b.shape[-1]}).")
    n_cond = _n_cond(a.shape[-1])
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"The leading dimensions of a {a.shape} and b {b.shape} do not broadcast.") from None
    if np.isinf(a).any() or np.isinf(b).any():
        raise NonFiniteError("a or b contains Inf; use NaN for missing dissimilarities.")
    sigma_k = _check_sigma_k(sigma_k, method, n_cond)
    a = np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    out = _compare_batched(a, b, method, sigma_k, n_jobs)
    return out.reshape(batch + out.shape[-2:])


def product_features(
    vectors: Any, method: str = "cosine", *, sigma_k: Any = None, n_jobs: int | None = None
) -> np.ndarray:
    """Per-RDM features whose dot products are the similarities.

    For NaN-free RDM vectors ``a`` and ``b``,
    ``product_features(a, m) @ product_features(b, m).T`` equals
    ``compare_vectors(a, b, m)``. Features of an RDM with permuted
    conditions are the permuted features (for ``sigma_k`` None), so
    permutation tests can permute them instead of recomputing ranks.

    Parameters
    ----------
    vectors : array-like, shape (..., n_pairs)
        RDM vectors; NaN positions get feature 0 and the rest are computed on
        the defined pairs (exact for comparisons between RDMs with the same
        NaN positions).
    method : str
        ``cosine``, ``pearson``, ``spearman``, ``rho_a``, ``cosine_cov`` or
        ``pearson_cov`` (or an alias). The Kendall taus have no such form.
    sigma_k : array-like, optional
        As :func:`compare`.
    n_jobs : int or None
        Threads for the rank kernel.

    Returns
    -------
    numpy.ndarray, shape (..., n_features)
        ``n_pairs`` features, or ``n_pairs + n_cond`` for the whitened
        methods (off-diagonal then diagonal entries of the whitened
        second-moment matrix).
    """
    method = canonical_method(method)
    if method not in _PRODUCT_METHODS:
        raise DataError(f"{method!r} is not a dot product of per-RDM features; use compare_vectors.")
    v = check_array(vectors, "vectors", dtype=np.float64, allow_nonfinite=True)
    if v.ndim < 1:
        raise ShapeError("vectors must be (..., n_pairs).")
    sigma_k = _check_sigma_k(sigma_k, method, _n_cond(v.shape[-1]))
    flat = v.reshape(-1, v.shape[-1])
    feats = _features_own_mask(flat, method, sigma_k, n_jobs)
    return feats.reshape(v.shape[:-1] + feats.shape[-1:])


# ----------------------------------------------------------------------
# input handling
def _n_cond(n_pair: int) -> int:
    from neuroenc.rsa.rdms import n_conditions_from_pairs

    return n_conditions_from_pairs(n_pair)


def _as_vectors(x: Any, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Vectors (n, n_pairs) and explicit condition labels (None when default)."""
    from neuroenc.rsa.rdms import RDMs

    if not isinstance(x, RDMs):
        if hasattr(x, "get_vectors") and hasattr(x, "pattern_descriptors"):  # an rsatoolbox RDMs
            x = RDMs.from_rsatoolbox(x)
        else:
            try:
                x = RDMs(x)
            except ShapeError as exc:
                raise ShapeError(f"{name}: {exc}") from exc
    labels = np.asarray(x.conditions)
    default = labels.dtype.kind in "iu" and np.array_equal(labels, np.arange(len(labels)))
    return x.vectors, None if default else labels


def _check_sigma_k(sigma_k: Any, method: str, n_cond: int) -> np.ndarray | None:
    if sigma_k is None:
        return None
    if method not in _WHITENED:
        raise DataError(f"sigma_k is used only by the whitened methods {_WHITENED}, not by {method!r}.")
    s = check_array(sigma_k, "sigma_k", ndim=(1, 2), dtype=np.float64)
    if s.shape[0] != n_cond:
        raise ShapeError(f"sigma_k has {s.shape[0]} rows but the RDMs have {n_cond} conditions.")
    if s.ndim == 1:
        if np.any(s <= 0):
            raise DataError("sigma_k (variances) must be positive.")
        return s
    return check_spd(s, "sigma_k", ndim=2)


# ----------------------------------------------------------------------
# engine
def _compare_batched(a: np.ndarray, b: np.ndarray, method: str, sigma_k, n_jobs) -> np.ndarray:
    """``a`` (B, n_a, p), ``b`` (B, n_b, p) -> (B, n_a, n_b)."""
    from neuroenc._kernels.parallel import single_threaded_blas

    # The products and solves here are small; multi-threaded BLAS only adds
    # synchronisation (tens of times slower on a busy machine).
    with single_threaded_blas():
        return _compare_batched_serial_blas(a, b, method, sigma_k, n_jobs)


def _compare_batched_serial_blas(a: np.ndarray, b: np.ndarray, method: str, sigma_k, n_jobs) -> np.ndarray:
    n_batch, n_a, p = a.shape
    n_b = b.shape[1]
    if method in ("kendall_tau_a", "kendall_tau_b"):
        from neuroenc._kernels.ranks import VARIANT_TAU_A, VARIANT_TAU_B, kendall_pairs

        ia = np.arange(n_batch * n_a).reshape(n_batch, n_a, 1)
        ib = np.arange(n_batch * n_b).reshape(n_batch, 1, n_b)
        ia, ib = np.broadcast_arrays(ia, ib)
        variant = VARIANT_TAU_A if method == "kendall_tau_a" else VARIANT_TAU_B
        tau = kendall_pairs(a.reshape(-1, p), b.reshape(-1, p), ia.ravel(), ib.ravel(), variant, n_jobs)
        return tau.reshape(n_batch, n_a, n_b)

    complete = False  # known to hold no NaN
    if method in ("spearman", "rho_a"):
        # the features live only for the product below: reused scratch memory
        buf = scratch(a.size + b.size)
        fa, fb = buf[: a.size].reshape(n_batch, n_a, p), buf[a.size :].reshape(n_batch, n_b, p)
        _, (defined_a, defined_b) = _rank_feature_sets(
            [a.reshape(-1, p), b.reshape(-1, p)], method, n_jobs, out=[fa.reshape(-1, p), fb.reshape(-1, p)]
        )
        complete = not ((defined_a < p).any() or (defined_b < p).any())
    else:
        fa = _features_own_mask(a.reshape(-1, p), method, sigma_k, n_jobs).reshape(n_batch, n_a, -1)
        fb = _features_own_mask(b.reshape(-1, p), method, sigma_k, n_jobs).reshape(n_batch, n_b, -1)
    out = np.matmul(fa, fb.transpose(0, 2, 1))
    if complete:
        return out
    nan_a = np.isnan(a)
    nan_b = np.isnan(b)
    if not (nan_a.any() or nan_b.any()):
        return out
    # Features use each vector's own defined pairs, which is right when both
    # vectors of a comparison have the same NaN positions; the others are
    # recomputed on their common pairs.
    id_a, id_b = _mask_ids(nan_a.reshape(-1, p), nan_b.reshape(-1, p))
    id_a, id_b = id_a.reshape(n_batch, n_a), id_b.reshape(n_batch, n_b)
    differ = id_a[:, :, None] != id_b[:, None, :]
    empty_a = nan_a.all(axis=2)
    out[empty_a[:, :, None] & ~differ] = np.nan
    if differ.any():
        _recompute_mismatched(a, b, id_a, id_b, differ, method, sigma_k, n_jobs, out)
    return out


def _mask_ids(nan_a: np.ndarray, nan_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids of the NaN patterns of the rows of ``nan_a`` and ``nan_b`` (equal id = equal pattern)."""
    packed = np.packbits(np.concatenate([nan_a, nan_b]), axis=1)
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, ids = np.unique(keys, return_inverse=True)
    ids = ids.ravel()
    return ids[: len(nan_a)], ids[len(nan_a) :]


def _recompute_mismatched(a, b, id_a, id_b, differ, method, sigma_k, n_jobs, out) -> None:
    """Fill ``out`` where ``differ``: each comparison on its common pairs, batched per pair of NaN patterns."""
    combos: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for t, i, j in zip(*np.nonzero(differ)):
        combos.setdefault((id_a[t, i], id_b[t, j]), []).append((t, i, j))
    for items in combos.values():
        t0, i0, j0 = items[0]
        keep = ~(np.isnan(a[t0, i0]) | np.isnan(b[t0, j0]))
        if not keep.any():
            for t, i, j in items:
                out[t, i, j] = np.nan
            continue
        rows_a = sorted({(t, i) for t, i, _ in items})
        rows_b = sorted({(t, j) for t, _, j in items})
        fa = _features_own_mask(np.where(keep, np.stack([a[r] for r in rows_a]), np.nan), method, sigma_k, n_jobs)
        fb = _features_own_mask(np.where(keep, np.stack([b[r] for r in rows_b]), np.nan), method, sigma_k, n_jobs)
        pos_a = {r: k for k, r in enumerate(rows_a)}
        pos_b = {r: k for k, r in enumerate(rows_b)}
        for t, i, j in items:
            out[t, i, j] = fa[pos_a[(t, i)]] @ fb[pos_b[(t, j)]]


def _features_own_mask(v: np.ndarray, method: str, sigma_k, n_jobs) -> np.ndarray:
    """Features of rows ``v`` (m, p), each computed on its own defined pairs (0 at NaN).

    Unit norm for every method but ``rho_a`` (centred ranks times
    ``sqrt(12 / (n**3 - n))``); zero rows for constant RDMs (see the module
    notes).
    """
    if method in _WHITENED:
        return _whitened_features(v, np.isnan(v), method, sigma_k)
    if method in ("spearman", "rho_a"):
        return _rank_feature_sets([v], method, n_jobs)[0][0]
    nan = np.isnan(v)
    has_nan = bool(nan.any())
    x = np.where(nan, 0.0, v) if has_nan else v.copy()
    if method == "pearson":
        count = (~nan).sum(axis=1) if has_nan else v.shape[1]
        x -= (x.sum(axis=1) / np.maximum(count, 1))[:, None]
        if has_nan:
            x[nan] = 0.0
        x[_constant_rows(v, nan, has_nan)] = 0.0
    return _normalise(x)


def _rank_feature_sets(
    sets: list[np.ndarray], method: str, n_jobs, out: list[np.ndarray] | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Rank features of several sets of rows, ranked in one threaded batch, and their defined entries per row."""
    from neuroenc._kernels.ranks import SCALE_RHO_A, SCALE_UNIT, rank_feature_sets

    return rank_feature_sets(sets, SCALE_UNIT if method == "spearman" else SCALE_RHO_A, n_jobs, out)


def _constant_rows(v: np.ndarray, nan: np.ndarray, has_nan: bool) -> np.ndarray:
    if has_nan:
        hi = np.where(nan, -np.inf, v).max(axis=1)
        lo = np.where(nan, np.inf, v).min(axis=1)
    else:
        hi = v.max(axis=1)
        lo = v.min(axis=1)
    return hi <= lo


def _normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm, in place; zero rows stay zero (rsatoolbox's cosine gives them similarity 0)."""
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    positive = norm > 0
    factor = np.zeros_like(norm)
    factor[positive] = 1.0 / norm[positive]
    x *= factor[:, None]
    return x


# ----------------------------------------------------------------------
# whitening
def _pair_index(n_cond: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n_cond, k=1)


def _whitened_features(v: np.ndarray, nan: np.ndarray, method: str, sigma_k) -> np.ndarray:
    """Whitened second-moment features ``[sqrt(2) G_ij (i<j), G_ii]``, unit norm; NaN pairs get 0."""
    m, p = v.shape
    n_cond = _n_cond(p)
    if not nan.any():
        return _normalise(_whitened_group(v, np.ones(p, dtype=bool), n_cond, method, sigma_k))
    out = np.zeros((m, p + n_cond))
    # the projection depends on the NaN pattern: one group of rows per pattern
    groups: dict[bytes, list[int]] = {}
    for i, key in enumerate(np.packbits(nan, axis=1)):
        groups.setdefault(key.tobytes(), []).append(i)
    for rows in groups.values():
        keep = ~nan[rows[0]]
        if keep.any():
            out[rows] = _whitened_group(v[np.ix_(rows, np.flatnonzero(keep))], keep, n_cond, method, sigma_k)
    return _normalise(out)


def _whitened_group(d: np.ndarray, keep: np.ndarray, n_cond: int, method: str, sigma_k) -> np.ndarray:
    """Unnormalised whitened features of RDM vectors ``d`` defined on the pairs ``keep``."""
    if method == "pearson_cov":
        constant = d.max(axis=1) <= d.min(axis=1)
        d = d - d.mean(axis=1, keepdims=True)
        d[constant] = 0.0
    if sigma_k is None or sigma_k.ndim == 1:
        return _whiten_projection(d, keep, n_cond, sigma_k)
    if keep.all():
        return _whiten_full_matrix_sigma(d, n_cond, sigma_k)
    out = np.zeros((d.shape[0], len(keep) + n_cond))
    out[:, np.flatnonzero(keep)] = _whiten_dense_v(d, keep, n_cond, sigma_k)
    return out


def _whiten_projection(d: np.ndarray, keep: np.ndarray, n_cond: int, sigma_k) -> np.ndarray:
    """Double centring of ``G = -D / 2`` on the available pairs (rsatoolbox's weighted projection).

    The extended vector ``w`` holds ``G_ij`` for the available pairs and the
    (zero) diagonal. Row/column effects are removed as
    ``w - W S (S' W S)^-1 S' w``, where row ``(i, j)`` of ``S`` is
    ``e_i + e_j`` with weight ``1/2`` and the diagonal row ``i`` is ``e_i``
    with weight 1; without missing pairs this is ``G - m_i - m_j + mean(G)``.
    Then a 1-D ``sigma_k`` divides by ``sqrt(s_i s_j)`` and off-diagonal
    entries are multiplied by ``sqrt(2)`` (they appear twice in ``G``).
    """
    from scipy.sparse import csr_matrix

    rows_all, cols_all = _pair_index(n_cond)
    ri, ci = rows_all[keep], cols_all[keep]
    n_kept = len(ri)
    complete = n_kept == len(keep)
    m = d.shape[0]
    out = np.empty((m, len(keep) + n_cond))
    # off-diagonal entries of G = -D / 2, written in place where no pair is missing
    off = out[:, : len(keep)] if complete else np.empty((m, n_kept))
    np.multiply(d, -0.5, out=off)
    # incidence of the available pairs: row (i, j) has ones in columns i and j
    incidence = csr_matrix(
        (np.ones(2 * n_kept), np.column_stack([ri, ci]).ravel(), np.arange(0, 2 * n_kept + 1, 2)),
        shape=(n_kept, n_cond),
    )
    sums = (incidence.T @ off.T).T  # S' w (the diagonal of G is 0)
    deg = np.bincount(ri, minlength=n_cond) + np.bincount(ci, minlength=n_cond)
    gram = np.eye(n_cond) + 0.5 * np.diag(deg.astype(np.float64))
    gram[ri, ci] += 0.5
    gram[ci, ri] += 0.5
    beta = np.linalg.solve(gram, sums.T).T
    effect = np.take(beta, ri, axis=1)
    effect += np.take(beta, ci, axis=1)
    effect *= 0.5
    off -= effect
    diag = out[:, len(keep) :]
    np.negative(beta, out=diag)
    if sigma_k is not None:
        root = np.sqrt(sigma_k)
        off /= root[ri] * root[ci]
        diag /= sigma_k
    off *= np.sqrt(2.0)
    if not complete:
        out[:, : len(keep)] = 0.0
        out[:, np.flatnonzero(keep)] = off
    return out


def _whiten_full_matrix_sigma(d: np.ndarray, n_cond: int, sigma_k: np.ndarray) -> np.ndarray:
    """Exact whitening for a full ``sigma_k = L L'``: ``Q L^-1 G L^-T Q``, ``Q`` removing ``L^-1 1``."""
    from scipy.linalg import solve_triangular

    from neuroenc.rsa.rdms import to_matrices

    chol = np.linalg.cholesky(sigma_k)
    inv_chol = solve_triangular(chol, np.eye(n_cond), lower=True)
    Gt = inv_chol @ (-0.5 * to_matrices(d)) @ inv_chol.T
    u = inv_chol.sum(axis=1)  # L^-1 1
    u /= np.linalg.norm(u)
    proj = np.eye(n_cond) - np.outer(u, u)
    Gw = proj @ Gt @ proj
    ri, ci = _pair_index(n_cond)
    return np.concatenate([np.sqrt(2.0) * Gw[:, ri, ci], np.einsum("mii->mi", Gw)], axis=1)


def _distance_covariance(n_cond: int, sigma_k: np.ndarray) -> np.ndarray:
    """``V = (C S C') o (C S C')`` for the pair contrasts ``C`` (squareform order)."""
    ri, ci = _pair_index(n_cond)
    # (C S C')_{(ij),(kl)} = S_ik - S_il - S_jk + S_jl
    xi = sigma_k[ri][:, ri] - sigma_k[ri][:, ci] - sigma_k[ci][:, ri] + sigma_k[ci][:, ci]
    return xi * xi


def _whiten_dense_v(d: np.ndarray, keep: np.ndarray, n_cond: int, sigma_k: np.ndarray) -> np.ndarray:
    """``R^-T d`` with ``V_kept = R' R``, so that dot products are ``a' V^-1 b``."""
    from scipy.linalg import cho_factor, solve_triangular

    V = _distance_covariance(n_cond, sigma_k)[np.ix_(keep, keep)]
    upper, _ = cho_factor(V, lower=False)
    return solve_triangular(upper, d.T, trans="T", lower=False).T
