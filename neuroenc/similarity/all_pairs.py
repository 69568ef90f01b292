"""Many-by-many similarity matrices, and RSA as a representation similarity.

:func:`pairwise` compares every pair of a list of representations (layers of
a network, subjects, brain regions, models) with one metric. Each built-in
metric has a per-representation step that is done once, not once per pair:

========================  =============================================  ===================================
metric                    per representation                             all pairs
========================  =============================================  ===================================
``"cka"``                 centred (U-centred) Gram matrix, unit norm     one product of the stacked Grams
``"rsa"``                 RDM, then rank/centre/normalise features       one product (Kendall: one compare)
``"mutual_knn"``          neighbour indices                              one sparse product
``"shape"``               partial whitening (eigendecomposition)         nuclear norm per pair
``"permutation"``         centring                                       linear assignment per pair
``"stochastic_shape"``    means and covariance factors                   alternating optimisation per pair
``"svcca"``               SVD reduction                                  canonical correlations per pair
``"pwcca"``               thin SVD                                       weighted correlations per pair
========================  =============================================  ===================================

Similarities (``cka``, ``rsa``, ``mutual_knn``, ``svcca``, ``pwcca``) have
1 on the diagonal for non-degenerate representations; distances (``shape``,
``permutation``, ``stochastic_shape``) have 0.

:func:`rsa_similarity` is representational similarity analysis between two
representations through :mod:`neuroenc.rsa`: an RDM of each
(:func:`~neuroenc.rsa.compute_rdm`, one condition per stimulus) compared with
:func:`~neuroenc.rsa.comparisons.compare_vectors`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroenc.errors import ShapeError
from neuroenc.similarity import cca, knn, shape
from neuroenc.similarity import kernel_alignment as cka
from neuroenc.similarity.kernel_alignment import _check_same_stimuli, _representation, _stacked_products
from neuroenc.validation import check_choice

__all__ = ["METRICS", "RDM_METHODS", "pairwise", "rsa_similarity"]

#: RDM methods usable by :func:`rsa_similarity` (those needing no folds or noise model)
RDM_METHODS = ("correlation", "cosine", "euclidean", "sqeuclidean")


# ----------------------------------------------------------------------
# RSA
def _check_rsa(rdm_method: str, compare_method: str) -> str:
    from neuroenc.rsa.comparisons import canonical_method

    check_choice(rdm_method, RDM_METHODS, "RDM method")
    return canonical_method(compare_method)


def _rdm_vector(X: np.ndarray, rdm_method: str, n_jobs: int | None) -> np.ndarray:
    from neuroenc.rsa.compute import compute_rdm

    return compute_rdm(X, rdm_method, n_jobs=n_jobs).vectors[0]


def rsa_similarity(
    X: Any,
    Y: Any,
    rdm_method: str = "correlation",
    compare_method: str = "spearman",
    *,
    n_jobs: int | None = None,
) -> float:
    """Representational similarity: the comparison of the RDMs of two representations.

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_units_x) or (n_stimuli, ...)
        First representation (array, BrainData with one row per stimulus,
        torch tensor); each stimulus is one condition, in row order.
    Y : array-like, shape (n_stimuli, n_units_y) or (n_stimuli, ...)
        Second representation, rows in the same stimulus order.
    rdm_method : {"correlation", "cosine", "euclidean", "sqeuclidean"}
        Dissimilarity (:func:`neuroenc.rsa.compute_rdm`).
    compare_method : str
        RDM comparison (:func:`neuroenc.rsa.compare`): ``"spearman"``,
        ``"pearson"``, ``"cosine"``, ``"kendall_tau_a"``, ... or an
        rsatoolbox alias.
    n_jobs : int or None
        Threads of the RDM and rank kernels.

    Returns
    -------
    float
        Similarity of the two RDMs (a correlation, in [-1, 1]).

    Raises
    ------
    ShapeError, NonFiniteError
        Mismatched numbers of stimuli (both shapes named), NaN/Inf.
    DataError
        A constant stimulus pattern with ``correlation``/``cosine``.
    UnknownNameError
        Unknown RDM or comparison method.

    Notes
    -----
    ``O(n**2 (p + q))`` for the RDMs plus the comparison of two
    ``n (n - 1) / 2`` vectors (``O(n**2 log n)`` for rank methods).
    """
    from neuroenc.rsa.comparisons import compare_vectors

    compare_method = _check_rsa(rdm_method, compare_method)
    X, Y = cka._paired(X, Y)
    a, b = _rdm_vector(X, rdm_method, n_jobs), _rdm_vector(Y, rdm_method, n_jobs)
    return float(compare_vectors(a[None], b[None], compare_method, n_jobs=n_jobs)[0, 0])


def _rsa_matrix(
    reps: list[np.ndarray],
    rdm_method: str = "correlation",
    compare_method: str = "spearman",
    *,
    n_jobs: int | None = None,
) -> np.ndarray:
    from neuroenc.rsa.comparisons import _PRODUCT_METHODS, compare_vectors, product_features

    method = _check_rsa(rdm_method, compare_method)
    if method in _PRODUCT_METHODS:
        return _stacked_products(
            lambda X: product_features(_rdm_vector(X, rdm_method, n_jobs), method, n_jobs=n_jobs), reps, len(reps)
        )
    vectors = np.stack([_rdm_vector(X, rdm_method, n_jobs) for X in reps])
    return compare_vectors(vectors, vectors, method, n_jobs=n_jobs)


# ----------------------------------------------------------------------
# metric registry
@dataclass(frozen=True)
class _Metric:
    """How :func:`pairwise` computes a metric; hooks take the public function's keyword arguments."""

    #: the public pair function (its signature validates the parameters)
    function: Callable[..., float]
    #: True for distances (0 on the diagonal), False for similarities
    distance: bool
    #: all pairs at once from the list of representations; may return None
    #: when too large, and then the pairs are computed one by one
    matrix: Callable[..., np.ndarray | None] | None = None
    #: per-representation precomputation, and the metric of two prepared items
    prepare: Callable[..., Any] | None = None
    pair: Callable[..., float] | None = None
    symmetric: bool = True
    #: converts and checks one representation (default: a 2-D array)
    convert: Callable[[Any, str], Any] = _representation


_METRICS: dict[str, _Metric] = {
    "cka": _Metric(cka.cka, distance=False, matrix=cka._cka_matrix),
    "rsa": _Metric(rsa_similarity, distance=False, matrix=_rsa_matrix),
    "mutual_knn": _Metric(knn.mutual_knn, distance=False, matrix=knn._knn_matrix),
    "shape": _Metric(shape.shape_distance, distance=True, prepare=shape._prepare_shape, pair=shape._pair_shape),
    "permutation": _Metric(
        shape.permutation_distance,
        distance=True,
        prepare=shape._prepare_permutation,
        pair=shape._pair_permutation,
    ),
    "stochastic_shape": _Metric(
        shape.stochastic_shape_distance,
        distance=True,
        prepare=shape._prepare_stochastic,
        pair=shape._pair_stochastic,
        convert=shape._gaussian,
    ),
    "svcca": _Metric(cca.svcca, distance=False, prepare=cca._reduced_basis, pair=cca._pair_svcca),
    "pwcca": _Metric(
        cca.pwcca, distance=False, prepare=lambda X: cca._subspace(X), pair=cca._pair_pwcca, symmetric=False
    ),
}

#: metric names understood by :func:`pairwise`
METRICS = tuple(_METRICS)


def _representation_list(representations: Any) -> list[Any]:
    if hasattr(representations, "layer_names") and hasattr(representations, "flattened"):  # Activations
        return [representations.flattened(name) for name in representations.layer_names]
    if isinstance(representations, Mapping):
        return list(representations.values())
    if isinstance(representations, (str, bytes)) or not hasattr(representations, "__iter__"):
        raise ShapeError(
            "representations must be a sequence of arrays, a mapping or an Activations; "
            f"got {type(representations).__name__}."
        )
    return list(representations)


def _n_stimuli(item: Any) -> np.ndarray:
    return item if isinstance(item, np.ndarray) else item.means


def _bound_params(function: Callable, params: dict, n_positional: int = 2) -> dict:
    """``params`` checked against ``function``'s signature (a TypeError names a bad one), defaults filled."""
    signature = inspect.signature(function)
    try:
        bound = signature.bind(*([None] * n_positional), **params)
    except TypeError as exc:
        raise TypeError(f"{getattr(function, '__name__', function)}: {exc}") from None
    bound.apply_defaults()
    names = list(signature.parameters)[n_positional:]
    return {name: bound.arguments[name] for name in names if name in bound.arguments}


def _blas_threads(n_threads: int):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n_threads, user_api="blas")


def _fill_pairs(
    out: np.ndarray, pair: Callable[[int, int], float], pairs: list[tuple[int, int]], n_threads: int, symmetric: bool
) -> None:
    def run(ij: tuple[int, int]) -> None:
        i, j = ij
        out[i, j] = pair(i, j)
        if symmetric:
            out[j, i] = out[i, j]

    if n_threads == 1 or len(pairs) < 2:
        for ij in pairs:
            run(ij)
        return
    # Pairs are independent LAPACK-heavy calls (numpy releases the GIL):
    # one BLAS thread per worker avoids oversubscription.
    with _blas_threads(1), ThreadPoolExecutor(min(n_threads, len(pairs))) as pool:
        list(pool.map(run, pairs))


def pairwise(
    metric: str | Callable[..., float],
    representations: Any,
    *,
    n_jobs: int | None = None,
    symmetric: bool | None = None,
    **params: Any,
) -> np.ndarray:
    """Metric between every pair of representations of the same stimuli.

    Parameters
    ----------
    metric : str or callable
        One of :data:`METRICS` (table in the module documentation), or a
        function ``metric(X, Y, **params) -> float`` of two 2-D arrays.
    representations : sequence, mapping or Activations
        Representations of the same stimuli in the same row order: arrays
        ``(n_stimuli, ...)`` (flattened after the first axis), BrainData with
        one row per stimulus, torch tensors; a mapping's values in order; an
        ``Activations`` container's layers in depth order. For
        ``"stochastic_shape"``: trial-resolved arrays
        ``(n_stimuli, n_trials, n_units)`` or ``(means, covariances)`` pairs.
    n_jobs : int or None
        Threads (None: all cores): BLAS threads of the shared products, or
        workers over pairs for the pairwise metrics.
    symmetric : bool, optional
        For a callable: whether ``metric(X, Y) == metric(Y, X)`` (default
        True; False computes both orders). Built-in metrics know their own.
    **params
        Keyword arguments of the metric (e.g. ``kernel="rbf"``,
        ``debiased=True`` for ``"cka"``; ``alpha``, ``score`` for
        ``"shape"``; ``k`` for ``"mutual_knn"``; ``rdm_method``,
        ``compare_method`` for ``"rsa"``).

    Returns
    -------
    numpy.ndarray, shape (n_representations, n_representations)
        ``out[i, j]`` = metric(representation i, representation j). Built-in
        distances have an exact 0 diagonal; similarities the value of each
        representation with itself (1 unless degenerate). For ``"pwcca"``
        (asymmetric) every entry is computed.

    Raises
    ------
    UnknownNameError
        Unknown metric name.
    TypeError
        A parameter the metric does not take.
    ShapeError, NonFiniteError
        Fewer than one representation, representations with different numbers
        of stimuli (the message names both and their shapes), NaN/Inf. All
        inputs are checked before any metric is computed.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroenc.similarity.all_pairs import pairwise
    >>> rng = np.random.default_rng(0)
    >>> layers = [rng.standard_normal((50, 20)) for _ in range(3)]
    >>> pairwise("cka", layers).shape
    (3, 3)
    """
    from neuroenc._kernels.parallel import effective_n_jobs

    if callable(metric) and not isinstance(metric, str):
        spec = None
        function = metric
    else:
        spec = _METRICS[check_choice(metric, METRICS, "similarity metric")]
        function = spec.function
        if symmetric is not None:
            raise TypeError("symmetric= is only for callable metrics; built-in metrics know their symmetry.")
        params = _bound_params(function, params)

    items = _representation_list(representations)
    if not items:
        raise ShapeError("representations is empty; pass at least one representation.")
    convert = spec.convert if spec is not None else _representation
    reps = [convert(item, f"representations[{i}]") for i, item in enumerate(items)]
    for i in range(1, len(reps)):
        _check_same_stimuli(_n_stimuli(reps[0]), _n_stimuli(reps[i]), ("representations[0]", f"representations[{i}]"))

    n_threads = effective_n_jobs(n_jobs)
    m = len(reps)
    out = np.zeros((m, m))
    if spec is None:
        sym = True if symmetric is None else bool(symmetric)
        pairs = [(i, j) for i in range(m) for j in range(i if sym else 0, m)]
        _fill_pairs(out, lambda i, j: float(metric(reps[i], reps[j], **params)), pairs, n_threads, sym)
        return out

    if "n_jobs" in params:
        params["n_jobs"] = n_jobs
    if spec.matrix is not None:
        with _blas_threads(n_threads):
            result = spec.matrix(reps, **params)
        if result is not None:
            return result
        prepared, pair = reps, lambda a, b: function(a, b, **params)
    else:
        with _blas_threads(n_threads):
            prepared = [spec.prepare(X, **params) for X in reps]
        pair = lambda a, b: spec.pair(a, b, **params)

    if spec.symmetric:
        first = 1 if spec.distance else 0
        pairs = [(i, j) for i in range(m) for j in range(i + first, m)]
    else:
        pairs = [(i, j) for i in range(m) for j in range(m) if not (spec.distance and i == j)]
    _fill_pairs(out, lambda i, j: pair(prepared[i], prepared[j]), pairs, n_threads, spec.symmetric)
    return out
