"""Ollivier-Ricci curvature of k-nearest-neighbour graphs of representations.

A representation (stimuli x units) is summarised by the k-nearest-neighbour
graph of its stimuli, and the graph by the Ollivier-Ricci curvature of its
edges (Ollivier 2009): for an edge ``(x, y)``,

.. math::

    \\kappa(x, y) = 1 - W_1(m_x, m_y) / d(x, y),

where ``d`` is the shortest-path distance on the graph (edge lengths are the
distances between the stimuli), ``W_1`` the optimal-transport (earth
mover's) distance under ``d``, and ``m_x`` the lazy random-walk measure at
``x``: mass ``alpha`` stays at ``x`` and ``1 - alpha`` is spread over its
neighbours, uniformly (``exp_power=0``, the default) or in proportion to
``exp(-d(x, v) ** exp_power)``. These are the conventions of the
GraphRicciCurvature package (Ni et al. 2015, 2019), except that its default
``exp_power`` is 2 (on raw lengths, which makes the curvature depend on the
scale of the data; the uniform default here is invariant to rotations and
scalings of the representation) and that the neighbour weights are computed
relative to the nearest neighbour, so they never underflow (the package falls
back to uniform weights when their sum drops below 1e-7). A node's curvature
is the mean over its edges. Positively curved edges lie inside densely
connected regions, negatively curved ones are bridges between them.

Comparing two representations of the same stimuli (as in
"Exploring Geometric Representational Alignment through Ollivier-Ricci
Curvature and Ricci Flow"): :func:`curvature_distribution_distance` is the
1-Wasserstein distance between their curvature distributions;
:func:`compare_communities` detects communities in each graph and compares
them by adjusted Rand index and normalised mutual information.

Communities (:func:`ricci_communities`): the discrete Ricci flow of Ni et
al. (2019), ``w <- w * (1 - step * kappa)`` followed by a rescaling to mean
length 1, stretches the negatively curved bridges and shrinks the edges
inside communities; the edges longer than a cutoff are then cut and the
connected components are the communities. The cutoff is the candidate (one
per quantile of the flowed lengths) whose components have the largest
modularity on the unweighted k-NN graph. ``method="curvature"`` skips the
flow and cuts the edges whose curvature is below a threshold chosen the same
way.

The transport problems are solved exactly by a compiled kernel
(:mod:`neuroenc._kernels.transport`), threaded over edges; the shortest-path
distances it needs (between the neighbourhoods of adjacent nodes) come from
Dijkstra searches bounded by a radius that provably covers them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroenc.errors import DataError, ShapeError
from neuroenc.validation import check_array, check_choice, check_positive

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse

__all__ = [
    "knn_graph",
    "ollivier_ricci",
    "ricci_flow",
    "ricci_communities",
    "compare_communities",
    "curvature_distribution_distance",
    "RicciCurvature",
    "RicciFlow",
    "RicciCommunities",
    "CommunityComparison",
    "METRICS",
]

#: distances accepted by :func:`knn_graph` (scipy.spatial.distance.cdist names)
METRICS = ("euclidean", "cosine", "correlation", "cityblock", "chebyshev")
#: curvature methods (the exact transport distance; kept as a parameter for approximations to come)
CURVATURE_METHODS = ("exact",)
#: community detection methods of :func:`ricci_communities`
COMMUNITY_METHODS = ("flow", "curvature")
#: smallest flowed edge length (lengths are rescaled to mean 1 after each flow step)
_MIN_LENGTH = 1e-10
#: doubles of one block of the brute-force distance computations
_BLOCK = 1 << 22


# ----------------------------------------------------------------------
# input checks
def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ShapeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ShapeError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def _check_alpha(alpha: Any) -> float:
    value = check_positive(alpha, "alpha", strict=False)
    if value > 1.0:
        raise ShapeError(f"alpha is the mass kept at a node and must lie in [0, 1], got {alpha!r}.")
    return value


def _as_points(X: Any, name: str) -> np.ndarray:
    """Representation as a finite float64 array (n_stimuli, n_features); >2-D flattened after axis 0."""
    arr = check_array(X, name, dtype=np.float64)
    if arr.ndim < 2:
        raise ShapeError(f"{name} has shape {arr.shape}; expected (n_stimuli, n_features).")
    if arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[1] == 0:
        raise ShapeError(f"{name} has no features (shape {arr.shape}).")
    return arr


def _check_k(k: Any, n: int, name: str) -> int:
    k = _check_int(k, "k", 1)
    if k >= n:
        raise ShapeError(f"k={k} neighbours need more than k stimuli; {name} has {n}.")
    return k


def _check_metric_rows(X: np.ndarray, metric: str, name: str) -> None:
    """Rows on which ``metric`` is undefined (cdist would return NaN)."""
    if metric == "cosine":
        bad = np.flatnonzero(~np.any(X != 0, axis=1))
        what = "is all zeros"
    elif metric == "correlation":
        bad = np.flatnonzero(np.ptp(X, axis=1) == 0)
        what = "is constant"
    else:
        return
    if bad.size:
        raise DataError(f"{name} row {int(bad[0])} {what}: its {metric} distance is undefined.")


def _is_graph(obj: Any) -> bool:
    import scipy.sparse

    return scipy.sparse.issparse(obj) or (hasattr(obj, "adj") and hasattr(obj, "nodes") and hasattr(obj, "edges"))


def _check_graph(graph: Any, name: str = "graph") -> scipy.sparse.csr_array:
    """Symmetric sparse matrix of positive, finite edge lengths as a sorted csr_array."""
    import scipy.sparse

    if not scipy.sparse.issparse(graph):  # a networkx graph
        if graph.is_directed() or graph.is_multigraph():
            raise ShapeError(f"{name} must be a simple undirected graph.")
        import networkx

        graph = networkx.to_scipy_sparse_array(graph, weight="weight", format="csr")
    if graph.ndim != 2 or graph.shape[0] != graph.shape[1]:
        raise ShapeError(f"{name} must be a square adjacency matrix, got shape {graph.shape}.")
    G = scipy.sparse.csr_array(graph, dtype=np.float64, copy=True)  # canonicalised below, in place
    G.sum_duplicates()
    G.sort_indices()
    n = G.shape[0]
    if n < 2:
        raise ShapeError(f"{name} has {n} node(s); at least 2 are needed.")
    if G.nnz == 0:
        raise ShapeError(f"{name} has no edges.")
    check_array(G.data, f"{name} edge lengths")
    rows = np.repeat(np.arange(n), np.diff(G.indptr))
    if np.any(rows == G.indices):
        node = int(rows[rows == G.indices][0])
        raise ShapeError(f"{name} has a self-loop at node {node}; remove the diagonal.")
    if np.any(G.data <= 0):
        pos = int(np.flatnonzero(G.data <= 0)[0])
        raise DataError(
            f"{name} edge ({int(rows[pos])}, {int(G.indices[pos])}) has length {G.data[pos]!r}; "
            "edge lengths must be > 0 (store no entry for a missing edge)."
        )
    asym = abs(G - G.T)
    if asym.nnz and asym.max() > 1e-12 * G.data.max():
        raise ShapeError(
            f"{name} is not symmetric (max |G - G.T| = {asym.max():.3g}); curvature needs an undirected graph."
        )
    return G


# ----------------------------------------------------------------------
# k-nearest-neighbour graph
def _nearest(X: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of each row's ``k`` nearest other rows (brute force, in blocks)."""
    from scipy.spatial.distance import cdist

    n = X.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k))
    block = max(1, _BLOCK // n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        D = cdist(X[start:stop], X, metric=metric)
        D[np.arange(stop - start), np.arange(start, stop)] = np.inf
        part = np.argpartition(D, k - 1, axis=1)[:, :k]
        idx[start:stop] = part
        dist[start:stop] = np.take_along_axis(D, part, axis=1)
    return idx, dist


def knn_graph(X: Any, k: int = 10, metric: str = "euclidean", mutual: bool = False) -> scipy.sparse.csr_array:
    """Symmetric k-nearest-neighbour graph of the stimuli, weighted by their distances.

    Parameters
    ----------
    X : array-like, shape (n_stimuli, n_features) or (n_stimuli, ...)
        Representation; axes after the first are flattened.
    k : int
        Neighbours per stimulus, ``1 <= k < n_stimuli``.
    metric : str
        One of :data:`METRICS` (:func:`scipy.spatial.distance.cdist` names).
        Curvatures use shortest-path distances, which equal the edge lengths
        for the metrics among them (all but ``"cosine"`` and ``"correlation"``).
    mutual : bool
        False (default): ``i`` and ``j`` are joined if either is among the
        other's ``k`` nearest neighbours (degrees are at least ``k``). True:
        only if both are (degrees at most ``k``; nodes may be isolated).

    Returns
    -------
    scipy.sparse.csr_array, shape (n_stimuli, n_stimuli)
        Symmetric, zero diagonal; entry ``(i, j)`` is the distance between
        ``i`` and ``j`` for an edge and absent otherwise.

    Raises
    ------
    DataError
        Two stimuli coincide (distance 0 between neighbours): edge lengths
        must be positive.
    """
    import scipy.sparse

    X = _as_points(X, "X")
    n = X.shape[0]
    k = _check_k(k, n, "X")
    check_choice(metric, METRICS, "metric")
    _check_metric_rows(X, metric, "X")
    idx, dist = _nearest(X, k, metric)
    zero = np.argwhere(dist <= 0)
    if zero.size:
        i = int(zero[0, 0])
        j = int(idx[i, zero[0, 1]])
        raise DataError(
            f"X rows {i} and {j} coincide ({metric} distance 0): k-NN graph edges need positive lengths; "
            "drop duplicated stimuli or add a little noise."
        )
    rows = np.repeat(np.arange(n), k)
    A = scipy.sparse.csr_array((dist.ravel(), (rows, idx.ravel())), shape=(n, n))
    G = A.minimum(A.T) if mutual else A.maximum(A.T)
    G = scipy.sparse.csr_array(G)
    G.eliminate_zeros()
    G.sort_indices()
    return G


# ----------------------------------------------------------------------
# shortest-path distances needed by the curvatures
class _Neighbourhoods:
    """Graph structure reused across flow steps: edges and the table of node pairs whose distance is needed.

    For an edge ``(x, y)`` the transport runs between ``x``'s closed
    neighbourhood ``B(x)`` and ``y``'s, so the pairs needed are those of
    ``B A B`` (``A`` the adjacency, ``B = A + I``).
    """

    def __init__(self, graph) -> None:
        import scipy.sparse

        self.graph = graph
        n = graph.shape[0]
        self.n_nodes = n
        A = scipy.sparse.csr_array((np.ones(graph.nnz), graph.indices, graph.indptr), shape=(n, n))
        self.ball = (A + scipy.sparse.eye_array(n, format="csr")).tocsr()
        pairs = (self.ball @ A @ self.ball).tocsr()
        pairs.sort_indices()
        self.pair_ptr = pairs.indptr.astype(np.int64)
        self.pair_idx = pairs.indices.astype(np.int32)  # the table is the memory-heavy part
        rows = np.repeat(np.arange(n), np.diff(graph.indptr))
        upper = graph.indices > rows
        self.edges = np.column_stack([rows[upper], graph.indices[upper]]).astype(np.int64)
        # CSR positions of (x, y) and (y, x), to write flowed lengths back
        keys = rows.astype(np.int64) * n + graph.indices
        self.pos_xy = np.flatnonzero(upper)
        self.pos_yx = np.searchsorted(keys, self.edges[:, 1] * n + self.edges[:, 0])

    def _radius(self, graph) -> np.ndarray:
        """Per node, a bound on the distance to every node it needs: three hops of the longest nearby edges."""
        ball = self.ball
        longest = np.zeros(self.n_nodes)
        deg = np.diff(graph.indptr)
        has = deg > 0
        longest[has] = np.maximum.reduceat(graph.data, graph.indptr[:-1][has])

        def ball_max(values: np.ndarray) -> np.ndarray:
            return np.maximum.reduceat(values[ball.indices], ball.indptr[:-1])

        near = ball_max(longest)
        return (longest + near + ball_max(near)) * (1.0 + 1e-9)

    def pair_distances(self, graph) -> np.ndarray:
        """Shortest-path distance of every needed pair (aligned with ``pair_idx``)."""
        from scipy.sparse.csgraph import dijkstra

        n = self.n_nodes
        radius = self._radius(graph)
        order = np.argsort(radius, kind="stable")
        counts = np.diff(self.pair_ptr)
        out = np.empty(self.pair_idx.shape[0])
        block = max(1, _BLOCK // n)
        for start in range(0, n, block):
            nodes = order[start : start + block]
            D = dijkstra(graph, directed=True, indices=nodes, limit=float(radius[nodes].max()))
            sizes = counts[nodes]
            local = np.repeat(np.arange(nodes.size), sizes)
            # positions of the nodes' table rows: each row's start plus 0 .. size - 1
            where = np.arange(local.size) + np.repeat(self.pair_ptr[nodes] - (np.cumsum(sizes) - sizes), sizes)
            out[where] = D[local, self.pair_idx[where]]
        if not np.all(np.isfinite(out)):  # the radius bound makes this impossible
            raise RuntimeError("internal error: a needed shortest-path distance was not found.")
        return out

    def curvatures(self, graph, alpha: float, exp_power: float, n_jobs: int | None) -> np.ndarray:
        from neuroenc._kernels.transport import edge_curvatures

        return edge_curvatures(
            graph.indptr,
            graph.indices,
            self.pair_ptr,
            self.pair_idx,
            self.pair_distances(graph),
            self.edges,
            alpha=alpha,
            exp_power=exp_power,
            n_jobs=n_jobs,
        )


def _node_means(n: int, edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of the edge values at each node; NaN for isolated nodes."""
    total = np.bincount(edges.ravel(), weights=np.repeat(values, 2), minlength=n)
    deg = np.bincount(edges.ravel(), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(deg > 0, total / np.maximum(deg, 1), np.nan)


# ----------------------------------------------------------------------
# curvature
@dataclass(frozen=True, eq=False)
class RicciCurvature:
    """Ollivier-Ricci curvature of a graph's edges and nodes.

    Attributes
    ----------
    edges : numpy.ndarray of int64, shape (n_edges, 2)
        Edges ``(i, j)``, ``i < j``, in row-major order.
    edge_curvature : numpy.ndarray, shape (n_edges,)
        Curvature of each edge.
    node_curvature : numpy.ndarray, shape (n_nodes,)
        Mean curvature of each node's edges (NaN for an isolated node).
    graph : scipy.sparse.csr_array
        The graph (edge lengths).
    alpha : float
        Idleness.
    exp_power : float
        Neighbour-mass exponent (0: uniform).
    """

    edges: np.ndarray
    edge_curvature: np.ndarray
    node_curvature: np.ndarray
    graph: scipy.sparse.csr_array
    alpha: float
    exp_power: float

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return int(self.edges.shape[0])

    @property
    def n_nodes(self) -> int:
        """Number of nodes (stimuli)."""
        return int(self.graph.shape[0])


def _graph_of(X_or_graph: Any, k: int, metric: str, mutual: bool, name: str) -> scipy.sparse.csr_array:
    if _is_graph(X_or_graph):
        return _check_graph(X_or_graph, name)
    return knn_graph(X_or_graph, k, metric, mutual)


def _check_curvature_args(alpha: Any, exp_power: Any, method: str) -> tuple[float, float]:
    check_choice(method, CURVATURE_METHODS, "curvature method")
    return _check_alpha(alpha), check_positive(exp_power, "exp_power", strict=False)


def ollivier_ricci(
    X_or_graph: Any,
    k: int = 10,
    *,
    alpha: float = 0.5,
    method: str = "exact",
    exp_power: float = 0.0,
    metric: str = "euclidean",
    mutual: bool = False,
    n_jobs: int | None = None,
) -> RicciCurvature:
    """Ollivier-Ricci curvature of the edges and nodes of a representation's k-NN graph.

    Parameters
    ----------
    X_or_graph : array-like, sparse matrix or networkx.Graph
        A representation (n_stimuli, n_features), whose :func:`knn_graph` is
        used, or a graph: a symmetric sparse matrix of positive edge lengths
        (absent entries are non-edges) or an undirected networkx graph (edge
        attribute ``"weight"`` as length, 1 if absent; node order as listed).
    k : int
        Neighbours per stimulus (ignored for a graph).
    alpha : float
        Idleness in [0, 1]: mass of the random walk that stays at the node
        (GraphRicciCurvature's default 0.5).
    method : {"exact"}
        Exact optimal transport.
    exp_power : float
        Neighbour ``v`` of ``x`` gets mass proportional to
        ``exp(-d(x, v) ** exp_power)``; 0 (default) spreads it uniformly.
    metric, mutual
        Passed to :func:`knn_graph` (ignored for a graph).
    n_jobs : int or None
        Threads (None: all cores).

    Returns
    -------
    RicciCurvature
        Edge and node curvatures.
    """
    alpha, exp_power = _check_curvature_args(alpha, exp_power, method)
    graph = _graph_of(X_or_graph, k, metric, mutual, "X_or_graph")
    hoods = _Neighbourhoods(graph)
    kappa = hoods.curvatures(graph, alpha, exp_power, n_jobs)
    return RicciCurvature(
        edges=hoods.edges,
        edge_curvature=kappa,
        node_curvature=_node_means(graph.shape[0], hoods.edges, kappa),
        graph=graph,
        alpha=alpha,
        exp_power=exp_power,
    )


# ----------------------------------------------------------------------
# Ricci flow
@dataclass(frozen=True, eq=False)
class RicciFlow:
    """Result of a discrete Ricci flow.

    Attributes
    ----------
    graph : scipy.sparse.csr_array
        The graph with the flowed edge lengths (mean 1 once a step was taken).
    edges : numpy.ndarray of int64, shape (n_edges, 2)
        Edges ``(i, j)``, ``i < j``.
    lengths : numpy.ndarray, shape (n_edges,)
        Flowed length of each edge.
    edge_curvature : numpy.ndarray, shape (n_edges,)
        Curvature under the flowed lengths.
    spread : numpy.ndarray, shape (n_iter + 1,)
        ``max - min`` of the edge curvatures before each step and at the end.
    n_iter : int
        Steps taken.
    converged : bool
        Whether the spread fell below ``tol``.
    """

    graph: scipy.sparse.csr_array
    edges: np.ndarray
    lengths: np.ndarray
    edge_curvature: np.ndarray
    spread: np.ndarray
    n_iter: int
    converged: bool


def ricci_flow(
    X_or_graph: Any,
    iterations: int = 20,
    step: float = 1.0,
    *,
    k: int = 10,
    alpha: float = 0.5,
    exp_power: float = 0.0,
    tol: float = 1e-4,
    metric: str = "euclidean",
    mutual: bool = False,
    n_jobs: int | None = None,
) -> RicciFlow:
    """Discrete Ricci flow (Ni et al. 2019) on a representation's k-NN graph.

    Each step multiplies every edge length by ``1 - step * kappa`` (its
    curvature under the current lengths), rescales the lengths to mean 1 and
    recomputes the curvatures; negatively curved edges (bridges) grow and
    positively curved ones shrink, until the curvature is nearly uniform.
    Lengths are kept above ``1e-10`` (a component that is a single edge has
    curvature 1 for ``alpha = 0.5`` and would collapse).

    Parameters
    ----------
    X_or_graph : array-like, sparse matrix or networkx.Graph
        As in :func:`ollivier_ricci`.
    iterations : int
        Maximum number of steps.
    step : float
        Step size (> 0).
    k, alpha, exp_power, metric, mutual, n_jobs
        As in :func:`ollivier_ricci`.
    tol : float
        Stop when ``max - min`` of the edge curvatures is below ``tol``.

    Returns
    -------
    RicciFlow
        Flowed lengths and curvatures.
    """
    alpha, exp_power = _check_curvature_args(alpha, exp_power, "exact")
    iterations = _check_int(iterations, "iterations", 0)
    step = check_positive(step, "step")
    tol = check_positive(tol, "tol", strict=False)
    graph = _graph_of(X_or_graph, k, metric, mutual, "X_or_graph")
    hoods = _Neighbourhoods(graph)
    graph = graph.copy()
    lengths = graph.data[hoods.pos_xy].copy()
    kappa = hoods.curvatures(graph, alpha, exp_power, n_jobs)
    spread = [float(np.ptp(kappa))]
    n_iter = 0
    while n_iter < iterations and spread[-1] >= tol:
        lengths = np.maximum(lengths * (1.0 - step * kappa), 0.0)
        total = lengths.sum()
        if total > 0:
            lengths *= lengths.size / total
        np.maximum(lengths, _MIN_LENGTH, out=lengths)
        graph.data[hoods.pos_xy] = lengths
        graph.data[hoods.pos_yx] = lengths
        kappa = hoods.curvatures(graph, alpha, exp_power, n_jobs)
        spread.append(float(np.ptp(kappa)))
        n_iter += 1
    return RicciFlow(
        graph=graph,
        edges=hoods.edges,
        lengths=lengths,
        edge_curvature=kappa,
        spread=np.asarray(spread),
        n_iter=n_iter,
        converged=spread[-1] < tol,
    )


# ----------------------------------------------------------------------
# communities
@dataclass(frozen=True, eq=False)
class RicciCommunities:
    """Communities of a k-NN graph found with Ricci curvature.

    Attributes
    ----------
    labels : numpy.ndarray of int64, shape (n_stimuli,)
        Community of each stimulus (0, 1, ... in order of first appearance).
    n_communities : int
        Number of communities (isolated stimuli count as their own).
    modularity : float
        Modularity of the partition on the unweighted k-NN graph.
    cutoff : float
        ``method="flow"``: the longest flowed edge length kept;
        ``method="curvature"``: the smallest edge curvature kept.
    method : str
        ``"flow"`` or ``"curvature"``.
    """

    labels: np.ndarray
    n_communities: int
    modularity: float
    cutoff: float
    method: str


def _modularity(n: int, edges: np.ndarray, labels: np.ndarray) -> float:
    """Newman's modularity of a partition of an unweighted graph."""
    m = edges.shape[0]
    n_labels = int(labels.max()) + 1
    deg = np.bincount(edges.ravel(), minlength=n)
    src, dst = labels[edges[:, 0]], labels[edges[:, 1]]
    inside = np.bincount(src[src == dst], minlength=n_labels)
    degree_sums = np.bincount(labels, weights=deg, minlength=n_labels)
    return float(inside.sum() / m - np.sum((degree_sums / (2.0 * m)) ** 2))


def _components(n: int, edges: np.ndarray) -> np.ndarray:
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    adj = scipy.sparse.coo_array((np.ones(edges.shape[0]), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(adj, directed=False)[1].astype(np.int64)


def _best_cut(n: int, edges: np.ndarray, score: np.ndarray, n_cutoffs: int) -> tuple[np.ndarray, float, float]:
    """Components after cutting the edges with ``score > c``, for the ``c`` of largest modularity.

    Candidates are quantiles of the scores, from the largest down (no cut);
    a smaller cutoff must improve the modularity to win, so ties keep more edges.
    """
    candidates = np.unique(np.quantile(score, np.linspace(0.0, 1.0, n_cutoffs)))[::-1]
    best = (-np.inf, None, np.nan)
    for c in candidates:
        labels = _components(n, edges[score <= c])
        q = _modularity(n, edges, labels)
        if q > best[0] + 1e-12:
            best = (q, labels, float(c))
    return best[1], best[0], best[2]


def _check_community_args(method: str, n_cutoffs: Any) -> int:
    check_choice(method, COMMUNITY_METHODS, "community method")
    return _check_int(n_cutoffs, "n_cutoffs", 2)


def _communities(graph, method: str, n_cutoffs: int, flow_args: dict[str, Any]) -> RicciCommunities:
    n = graph.shape[0]
    if method == "flow":
        flow = ricci_flow(graph, **flow_args)
        edges, score = flow.edges, flow.lengths
    else:
        hoods = _Neighbourhoods(graph)
        kappa = hoods.curvatures(graph, flow_args["alpha"], flow_args["exp_power"], flow_args["n_jobs"])
        edges, score = hoods.edges, -kappa
    labels, modularity, cutoff = _best_cut(n, edges, score, n_cutoffs)
    return RicciCommunities(
        labels=labels,
        n_communities=int(labels.max()) + 1,
        modularity=modularity,
        cutoff=cutoff if method == "flow" else -cutoff,
        method=method,
    )


def ricci_communities(
    X_or_graph: Any,
    k: int = 10,
    *,
    method: str = "flow",
    iterations: int = 20,
    step: float = 1.0,
    alpha: float = 0.5,
    exp_power: float = 0.0,
    metric: str = "euclidean",
    mutual: bool = False,
    n_cutoffs: int = 100,
    n_jobs: int | None = None,
) -> RicciCommunities:
    """Communities of a representation's k-NN graph from Ricci flow or Ricci curvature.

    Parameters
    ----------
    X_or_graph : array-like, sparse matrix or networkx.Graph
        As in :func:`ollivier_ricci`.
    k : int
        Neighbours per stimulus (ignored for a graph).
    method : {"flow", "curvature"}
        ``"flow"``: run :func:`ricci_flow` and cut the edges longer than a
        cutoff (Ni et al. 2019). ``"curvature"``: cut the edges whose
        curvature is below a threshold (faster, no flow).
    iterations, step
        Ricci flow parameters (``method="flow"``).
    alpha, exp_power, metric, mutual, n_jobs
        As in :func:`ollivier_ricci`.
    n_cutoffs : int
        Candidate cutoffs (quantiles of the flowed lengths or curvatures);
        the one whose connected components have the largest modularity on
        the unweighted graph is kept.

    Returns
    -------
    RicciCommunities
        Community labels and the chosen cutoff.
    """
    n_cutoffs = _check_community_args(method, n_cutoffs)
    alpha, exp_power = _check_curvature_args(alpha, exp_power, "exact")
    iterations = _check_int(iterations, "iterations", 0)
    step = check_positive(step, "step")
    graph = _graph_of(X_or_graph, k, metric, mutual, "X_or_graph")
    flow_args = dict(iterations=iterations, step=step, alpha=alpha, exp_power=exp_power, n_jobs=n_jobs)
    return _communities(graph, method, n_cutoffs, flow_args)


@dataclass(frozen=True, eq=False)
class CommunityComparison:
    """Agreement between the Ricci communities of two representations of the same stimuli.

    Attributes
    ----------
    ari : float
        Adjusted Rand index (1: identical partitions, about 0: chance).
    nmi : float
        Normalised mutual information (arithmetic normalisation, in [0, 1]).
    communities_x, communities_y : RicciCommunities
        The communities of each representation.
    """

    ari: float
    nmi: float
    communities_x: RicciCommunities
    communities_y: RicciCommunities


def _two_graphs(X: Any, Y: Any, k: int, metric: str, mutual: bool, same_stimuli: bool) -> list:
    """Both graphs, with every input check done before either is built."""
    inputs = []
    for obj, name in ((X, "X"), (Y, "Y")):
        if _is_graph(obj):
            inputs.append(_check_graph(obj, name))
        else:
            pts = _as_points(obj, name)
            _check_k(k, pts.shape[0], name)
            check_choice(metric, METRICS, "metric")
            _check_metric_rows(pts, metric, name)
            inputs.append(pts)
    n_x, n_y = (obj.shape[0] for obj in inputs)
    if same_stimuli and n_x != n_y:
        raise ShapeError(f"X has {n_x} stimuli and Y has {n_y}; both must hold the same stimuli in the same order.")
    return [obj if _is_graph(obj) else knn_graph(obj, k, metric, mutual) for obj in inputs]


def compare_communities(
    X: Any,
    Y: Any,
    k: int = 10,
    *,
    method: str = "flow",
    iterations: int = 20,
    step: float = 1.0,
    alpha: float = 0.5,
    exp_power: float = 0.0,
    metric: str = "euclidean",
    mutual: bool = False,
    n_cutoffs: int = 100,
    n_jobs: int | None = None,
) -> CommunityComparison:
    """Compare the Ricci communities of two representations of the same stimuli.

    Parameters
    ----------
    X, Y : array-like, sparse matrix or networkx.Graph
        Two representations (n_stimuli, n_features_x) and (n_stimuli,
        n_features_y) with the stimuli in the same order (or their graphs).
    k, method, iterations, step, alpha, exp_power, metric, mutual, n_cutoffs, n_jobs
        As in :func:`ricci_communities`, used for both.

    Returns
    -------
    CommunityComparison
        Adjusted Rand index and normalised mutual information
        (:func:`sklearn.metrics.adjusted_rand_score`,
        :func:`sklearn.metrics.normalized_mutual_info_score`) of the two
        partitions, and the partitions.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    n_cutoffs = _check_community_args(method, n_cutoffs)
    alpha, exp_power = _check_curvature_args(alpha, exp_power, "exact")
    iterations = _check_int(iterations, "iterations", 0)
    step = check_positive(step, "step")
    gx, gy = _two_graphs(X, Y, k, metric, mutual, same_stimuli=True)
    flow_args = dict(iterations=iterations, step=step, alpha=alpha, exp_power=exp_power, n_jobs=n_jobs)
    cx = _communities(gx, method, n_cutoffs, flow_args)
    cy = _communities(gy, method, n_cutoffs, flow_args)
    return CommunityComparison(
        ari=float(adjusted_rand_score(cx.labels, cy.labels)),
        nmi=float(normalized_mutual_info_score(cx.labels, cy.labels)),
        communities_x=cx,
        communities_y=cy,
    )


def curvature_distribution_distance(
    X: Any,
    Y: Any,
    k: int = 10,
    *,
    level: str = "edge",
    alpha: float = 0.5,
    exp_power: float = 0.0,
    metric: str = "euclidean",
    mutual: bool = False,
    n_jobs: int | None = None,
) -> float:
    """1-Wasserstein distance between the curvature distributions of two representations.

    A representational-alignment score (0: the same distribution of local
    geometry): :func:`scipy.stats.wasserstein_distance` between the edge (or
    node) curvatures of the two k-NN graphs. The numbers of stimuli may
    differ.

    Parameters
    ----------
    X, Y : array-like, sparse matrix or networkx.Graph
        Representations (n_stimuli, n_features) or their graphs.
    k : int
        Neighbours per stimulus (ignored for graphs).
    level : {"edge", "node"}
        Compare edge curvatures or node curvatures (isolated nodes left out).
    alpha, exp_power, metric, mutual, n_jobs
        As in :func:`ollivier_ricci`.

    Returns
    -------
    float
        The distance, in curvature units.
    """
    from scipy.stats import wasserstein_distance

    check_choice(level, ("edge", "node"), "curvature level")
    alpha, exp_power = _check_curvature_args(alpha, exp_power, "exact")
    gx, gy = _two_graphs(X, Y, k, metric, mutual, same_stimuli=False)
    values = []
    for graph in (gx, gy):
        res = ollivier_ricci(graph, alpha=alpha, exp_power=exp_power, n_jobs=n_jobs)
        v = res.edge_curvature if level == "edge" else res.node_curvature
        values.append(v[np.isfinite(v)])
    return float(wasserstein_distance(values[0], values[1]))
