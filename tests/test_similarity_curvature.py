"""Ollivier-Ricci curvature of k-NN graphs (neuroenc.similarity.curvature).

References: scikit-learn's ``kneighbors_graph`` for the graphs, a brute force
written here with networkx shortest paths and scipy's LP solver (HiGHS) for
the curvatures, closed forms for complete graphs, cycles, trees and the
square lattice, networkx's modularity, and scipy / scikit-learn for the
comparison scores.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse
from scipy.optimize import linprog
from scipy.stats import wasserstein_distance
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import kneighbors_graph

from neuroenc.errors import DataError, NonFiniteError, ShapeError, UnknownNameError
from neuroenc.similarity import curvature
from neuroenc.similarity.curvature import (
    compare_communities,
    curvature_distribution_distance,
    knn_graph,
    ollivier_ricci,
    ricci_communities,
    ricci_flow,
)

# ----------------------------------------------------------------------
# brute-force reference: networkx shortest paths + HiGHS for every edge
#: HiGHS's default feasibility tolerance (1e-7) is too loose for masses far below 1
TIGHT = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def lp_w1(a: np.ndarray, b: np.ndarray, C: np.ndarray) -> float:
    p, q = C.shape
    A_eq = np.vstack([np.kron(np.eye(p), np.ones(q)), np.kron(np.ones(p), np.eye(q))])
    res = linprog(C.ravel(), A_eq=A_eq, b_eq=np.r_[a, b], bounds=(0, None), method="highs", options=TIGHT)
    assert res.status == 0, res.message
    return float(res.fun)


def brute_force_curvature(graph, alpha: float = 0.5, exp_power: float = 0.0) -> dict[tuple[int, int], float]:
    """``{(i, j): kappa}`` with GraphRicciCurvature's conventions, written out with networkx."""
    g = nx.from_scipy_sparse_array(graph) if scipy.sparse.issparse(graph) else graph
    dist = dict(nx.all_pairs_dijkstra_path_length(g, weight="weight"))

    def measure(x):
        nbrs = list(g.neighbors(x))
        e = np.array([dist[x][v] ** exp_power for v in nbrs]) if exp_power else np.zeros(len(nbrs))
        w = np.exp(-(e - e.min()))  # exp(-e) normalised, without underflow
        return nbrs + [x], np.r_[(1 - alpha) * w / w.sum(), alpha]

    out = {}
    for x, y in g.edges():
        sx, mx = measure(x)
        sy, my = measure(y)
        C = np.array([[dist[u][v] for v in sy] for u in sx])
        out[(min(x, y), max(x, y))] = 1 - lp_w1(mx, my, C) / dist[x][y]
    return out


def assert_matches_brute_force(result, graph, alpha=0.5, exp_power=0.0):
    ref = brute_force_curvature(graph, alpha, exp_power)
    assert result.n_edges == len(ref)
    expected = np.array([ref[(int(i), int(j))] for i, j in result.edges])
    np.testing.assert_allclose(result.edge_curvature, expected, rtol=1e-8, atol=1e-10)


def two_clusters(n: int = 50, dim: int = 20, sep: float = 5.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, dim))
    X[n:, 0] += sep
    return X, np.repeat([0, 1], n)


def rotation(dim: int, seed: int = 0) -> np.ndarray:
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))[0]


# ----------------------------------------------------------------------
# k-NN graph against scikit-learn
@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "cosine", "chebyshev", "correlation"])
@pytest.mark.parametrize("mutual", [False, True])
def test_knn_graph_matches_sklearn(metric, mutual):
    X = np.random.default_rng(0).standard_normal((60, 7))
    A = kneighbors_graph(X, 6, mode="distance", metric=metric, include_self=False)
    ref = A.minimum(A.T) if mutual else A.maximum(A.T)
    G = knn_graph(X, 6, metric=metric, mutual=mutual)
    assert isinstance(G, scipy.sparse.csr_array)
    assert G.shape == (60, 60) and abs(G - G.T).max() == 0
    np.testing.assert_array_equal(G.toarray() > 0, ref.toarray() > 0)
    np.testing.assert_allclose(G.toarray(), ref.toarray(), rtol=1e-12, atol=1e-12)
    degrees = np.diff(G.indptr)
    assert (degrees <= 6).all() if mutual else (degrees >= 6).all()


def test_knn_graph_flattens_trailing_axes():
    X = np.random.default_rng(1).standard_normal((30, 2, 3))
    assert (knn_graph(X, 4) != knn_graph(X.reshape(30, 6), 4)).nnz == 0


# ----------------------------------------------------------------------
# closed forms
@pytest.mark.parametrize("n", [3, 5, 8])
@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.8])
def test_complete_graph_closed_form(n, alpha):
    # only alpha at x and the share (1 - alpha) / (n - 1) at y differ between m_x and m_y
    res = ollivier_ricci(nx.complete_graph(n), alpha=alpha)
    expected = 1 - abs(alpha - (1 - alpha) / (n - 1))
    np.testing.assert_allclose(res.edge_curvature, expected, rtol=1e-12)
    np.testing.assert_allclose(res.node_curvature, expected, rtol=1e-12)


@pytest.mark.parametrize("n", [6, 7, 10])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9])
def test_cycle_is_flat(n, alpha):
    # n >= 6: the four nodes x-1, x, y, y+1 sit on a line, W1 = 1 for every alpha
    res = ollivier_ricci(nx.cycle_graph(n), alpha=alpha)
    np.testing.assert_allclose(res.edge_curvature, 0.0, atol=1e-12)


def tree_curvature(dx: int, dy: int, alpha: float) -> float:
    """Lazy-walk curvature of a tree edge between nodes of degrees dx, dy (unit lengths).

    On a tree W1 is the sum over edges of the net mass that must cross them:
    (1 - alpha) / dx from each other neighbour of x, (1 - alpha) / dy to each
    other neighbour of y, and what is left across the edge (x, y) itself.
    """
    s = 1 - alpha
    across = s * (dx - 1) / dx + alpha - s / dy
    return 1 - (s * (dx - 1) / dx + s * (dy - 1) / dy + abs(across))


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_tree_edges_closed_form_and_negative(alpha):
    tree = nx.random_labeled_tree(40, seed=3) if hasattr(nx, "random_labeled_tree") else nx.random_tree(40, seed=3)
    res = ollivier_ricci(tree, alpha=alpha)
    deg = dict(tree.degree())
    expected = [tree_curvature(deg[i], deg[j], alpha) for i, j in res.edges]
    np.testing.assert_allclose(res.edge_curvature, expected, rtol=1e-12, atol=1e-12)
    inner = np.array([min(deg[i], deg[j]) >= 3 for i, j in res.edges])
    assert inner.any() and (res.edge_curvature[inner] < 0).all()
    assert_matches_brute_force(res, tree, alpha)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_lattice_is_flat(alpha):
    torus = nx.convert_node_labels_to_integers(nx.grid_2d_graph(7, 8, periodic=True))
    np.testing.assert_allclose(ollivier_ricci(torus, alpha=alpha).edge_curvature, 0.0, atol=1e-12)
    # k-NN graph of a square grid of points: edges away from the border are flat
    side = 12
    X = np.array([(i, j) for i in range(side) for j in range(side)], dtype=float)
    res = ollivier_ricci(X, 4, alpha=alpha)
    inside = np.all((X[res.edges] >= 3) & (X[res.edges] <= side - 4), axis=(1, 2))
    assert inside.sum() > 20
    np.testing.assert_allclose(res.edge_curvature[inside], 0.0, atol=1e-12)


# ----------------------------------------------------------------------
# brute force on k-NN graphs
@pytest.mark.parametrize(
    "alpha, exp_power, mutual, metric",
    [
        (0.5, 0.0, False, "euclidean"),
        (0.0, 0.0, False, "cityblock"),
        (0.5, 2.0, False, "euclidean"),
        (0.9, 1.0, True, "euclidean"),
        (0.5, 0.0, False, "cosine"),
    ],
)
def test_knn_curvature_matches_brute_force(alpha, exp_power, mutual, metric):
    X = np.random.default_rng(5).standard_normal((35, 4))
    res = ollivier_ricci(X, 5, alpha=alpha, exp_power=exp_power, mutual=mutual, metric=metric)
    assert_matches_brute_force(res, knn_graph(X, 5, metric=metric, mutual=mutual), alpha, exp_power)
    np.testing.assert_array_equal(res.graph.toarray(), knn_graph(X, 5, metric=metric, mutual=mutual).toarray())


def test_distance_weighted_mass_does_not_underflow():
    # exp(-d**2) underflows to 0 for lengths ~ 40; the weights are taken relative to the nearest neighbour
    X = 40.0 * np.random.default_rng(7).standard_normal((30, 3))
    res = ollivier_ricci(X, 4, exp_power=2.0)
    assert np.isfinite(res.edge_curvature).all()
    assert_matches_brute_force(res, res.graph, 0.5, 2.0)


def test_node_curvature_is_mean_of_edges_and_nan_when_isolated():
    X = np.random.default_rng(6).standard_normal((40, 3))
    X[0] = 50.0  # far away: nobody's mutual neighbour
    res = ollivier_ricci(X, 4, mutual=True)
    g = nx.Graph()
    g.add_nodes_from(range(40))
    g.add_edges_from(map(tuple, res.edges))
    for node in range(1, 40):
        incident = [k for k, (i, j) in enumerate(res.edges) if node in (i, j)]
        if incident:
            assert res.node_curvature[node] == pytest.approx(res.edge_curvature[incident].mean(), rel=1e-12)
    assert np.isnan(res.node_curvature[0]) and g.degree(0) == 0


def test_graph_inputs_agree():
    X = np.random.default_rng(8).standard_normal((30, 3))
    G = knn_graph(X, 4)
    from_x = ollivier_ricci(X, 4)
    from_sparse = ollivier_ricci(scipy.sparse.csr_matrix(G))
    from_nx = ollivier_ricci(nx.from_scipy_sparse_array(G))
    np.testing.assert_array_equal(from_x.edges, from_sparse.edges)
    np.testing.assert_allclose(from_sparse.edge_curvature, from_x.edge_curvature, rtol=1e-14)
    np.testing.assert_allclose(from_nx.edge_curvature, from_x.edge_curvature, rtol=1e-14)
    before = G.copy()
    ricci_flow(G, 2)  # the caller's matrix is left alone
    assert (G != before).nnz == 0


def test_invariant_to_rotation_scaling_translation():
    X = np.random.default_rng(9).standard_normal((80, 6))
    Y = 3.7 * X @ rotation(6) + 2.0
    a, b = ollivier_ricci(X, 6), ollivier_ricci(Y, 6)
    np.testing.assert_array_equal(a.edges, b.edges)
    np.testing.assert_allclose(a.edge_curvature, b.edge_curvature, rtol=1e-9, atol=1e-11)


def test_threads_agree():
    X = np.random.default_rng(10).standard_normal((200, 10))
    one = ollivier_ricci(X, 8, n_jobs=1).edge_curvature
    np.testing.assert_array_equal(ollivier_ricci(X, 8, n_jobs=2).edge_curvature, one)


# ----------------------------------------------------------------------
# clusters, flow, communities
def test_bridges_between_clusters_are_negatively_curved():
    X, y = two_clusters()
    res = ollivier_ricci(X, 8)
    between = y[res.edges[:, 0]] != y[res.edges[:, 1]]
    assert 0 < between.sum() < 0.1 * res.n_edges
    assert res.edge_curvature[between].mean() < 0
    assert res.edge_curvature[between].mean() < np.percentile(res.edge_curvature[~between], 25)


def test_ricci_flow_stretches_bridges():
    X, y = two_clusters()
    flow = ricci_flow(X, 10, k=8)
    between = y[flow.edges[:, 0]] != y[flow.edges[:, 1]]
    assert flow.lengths.mean() == pytest.approx(1.0, rel=1e-9)
    assert flow.n_iter == 10 and flow.spread.shape == (11,)
    assert flow.spread[-1] < flow.spread[0]
    assert np.median(flow.lengths[between]) > np.percentile(flow.lengths[~between], 95)
    G = flow.graph
    np.testing.assert_allclose(G[flow.edges[:, 0], flow.edges[:, 1]], flow.lengths)
    assert abs(G - G.T).max() == 0
    # the flow forgets the scale of the data
    scaled = ricci_flow(5.0 * X, 10, k=8)
    np.testing.assert_allclose(scaled.lengths, flow.lengths, rtol=1e-8)


def test_ricci_flow_stops_when_flat():
    flow = ricci_flow(nx.cycle_graph(8), 5)
    assert flow.converged and flow.n_iter == 0
    np.testing.assert_allclose(flow.lengths, 1.0)


@pytest.mark.parametrize("method", ["flow", "curvature"])
def test_communities_recover_clusters(method):
    X, y = two_clusters()
    com = ricci_communities(X, 8, method=method)
    assert adjusted_rand_score(y, com.labels) > 0.95
    assert com.n_communities == com.labels.max() + 1
    g = nx.from_scipy_sparse_array(knn_graph(X, 8))
    parts = [set(np.flatnonzero(com.labels == c)) for c in range(com.n_communities)]
    assert com.modularity == pytest.approx(nx.community.modularity(g, parts, weight=None), rel=1e-12)


def test_modularity_matches_networkx():
    g = nx.karate_club_graph()
    edges = np.array(g.edges())
    labels = np.random.default_rng(0).integers(0, 3, 34)
    parts = [set(np.flatnonzero(labels == c)) for c in range(3)]
    assert curvature._modularity(34, edges, labels) == pytest.approx(
        nx.community.modularity(g, parts, weight=None), rel=1e-12
    )


def test_compare_communities_rotated_copy():
    X, y = two_clusters(seed=1)
    cmp = compare_communities(X, -2.0 * X @ rotation(X.shape[1], 1) + 1.0, 8)
    assert cmp.ari == 1.0 and cmp.nmi == pytest.approx(1.0)
    np.testing.assert_array_equal(cmp.communities_x.labels, cmp.communities_y.labels)


def test_compare_communities_unrelated_representations():
    X, y = two_clusters(seed=2)
    noise = np.random.default_rng(3).standard_normal(X.shape)
    cmp = compare_communities(X, noise, 8, method="curvature")
    assert cmp.ari < 0.5
    assert cmp.ari == pytest.approx(adjusted_rand_score(cmp.communities_x.labels, cmp.communities_y.labels))


def test_curvature_distribution_distance():
    X, _ = two_clusters(n=40, dim=10)
    Y = 0.1 * X @ rotation(10, 2)
    assert curvature_distribution_distance(X, Y, 6) == pytest.approx(0.0, abs=1e-10)
    noise = np.random.default_rng(4).standard_normal((60, 3))
    kx, kn = ollivier_ricci(X, 6), ollivier_ricci(noise, 6)
    d = curvature_distribution_distance(X, noise, 6)
    assert d == pytest.approx(wasserstein_distance(kx.edge_curvature, kn.edge_curvature), rel=1e-12)
    d_node = curvature_distribution_distance(X, noise, 6, level="node")
    assert d_node == pytest.approx(wasserstein_distance(kx.node_curvature, kn.node_curvature), rel=1e-12)
    assert d > 0.01


# ----------------------------------------------------------------------
# real data: Haxby (2001) category-by-run block means, 96 patterns x 530 voxels
@pytest.fixture(scope="module")
def haxby_blocks(haxby_dir):
    nib = pytest.importorskip("nibabel")
    bold = np.asanyarray(nib.load(haxby_dir / "bold.nii.gz").dataobj)
    mask = np.asanyarray(nib.load(haxby_dir / "mask.nii.gz").dataobj) > 0
    labels, runs = np.loadtxt(haxby_dir / "attributes_literal.txt", dtype=str).T
    volumes = bold[mask].T.astype(np.float64)
    task = labels != "rest"
    keys, block = np.unique(np.char.add(labels[task], runs[task]), return_inverse=True)
    patterns = np.zeros((keys.size, volumes.shape[1]))
    np.add.at(patterns, block, volumes[task])
    return patterns / np.bincount(block)[:, None]


def test_haxby_curvature_matches_brute_force(haxby_blocks):
    res = ollivier_ricci(haxby_blocks, 5)
    assert res.n_nodes == 96 and np.isfinite(res.node_curvature).all()
    assert_matches_brute_force(res, res.graph)


def test_haxby_rotated_copy_same_communities(haxby_blocks):
    rotated = 0.01 * haxby_blocks @ rotation(haxby_blocks.shape[1], 5)
    cmp = compare_communities(haxby_blocks, rotated, 5)
    assert cmp.ari == 1.0 and cmp.communities_x.n_communities > 1
    assert curvature_distribution_distance(haxby_blocks, rotated, 5) == pytest.approx(0.0, abs=1e-9)


# ----------------------------------------------------------------------
# bad input: clear errors before any work
@pytest.mark.parametrize(
    "X, kwargs, error, match",
    [
        (np.full((10, 3), np.nan), {}, NonFiniteError, "NaN"),
        (np.r_[np.zeros((1, 3)), np.full((9, 3), np.inf)], {}, NonFiniteError, "Inf"),
        (np.ones(10), {}, ShapeError, "n_stimuli"),
        (np.zeros((10, 0)), {}, ShapeError, "no features"),
        (np.eye(10), {"k": 10}, ShapeError, "more than k"),
        (np.eye(10), {"k": 0}, ShapeError, ">= 1"),
        (np.eye(10), {"k": 2.5}, ShapeError, "integer"),
        (np.eye(10), {"metric": "minkowski"}, UnknownNameError, "metric"),
        (np.r_[np.eye(9), np.eye(9)[:1]], {"k": 2}, DataError, "coincide"),
        (np.r_[np.zeros((1, 9)), np.eye(9)], {"metric": "cosine"}, DataError, "all zeros"),
        (np.r_[np.ones((1, 9)), np.eye(9)], {"metric": "correlation"}, DataError, "constant"),
        (["a", "b"], {}, ShapeError, "dtype"),
    ],
)
def test_bad_points(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        knn_graph(X, **{"k": 3, **kwargs})
    with pytest.raises(error, match=match):
        ollivier_ricci(X, **{"k": 3, **kwargs})


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"alpha": 1.5}, ShapeError, r"\[0, 1\]"),
        ({"alpha": -0.1}, ShapeError, "alpha"),
        ({"exp_power": -1.0}, ShapeError, "exp_power"),
        ({"method": "sinkhorn"}, UnknownNameError, "curvature method"),
    ],
)
def test_bad_curvature_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        ollivier_ricci(np.eye(10), 3, **kwargs)


@pytest.mark.parametrize(
    "graph, match",
    [
        (scipy.sparse.csr_array(np.array([[0.0, 1.0], [2.0, 0.0]])), "not symmetric"),
        (scipy.sparse.csr_array(np.array([[1.0, 1.0], [1.0, 0.0]])), "self-loop"),
        (scipy.sparse.csr_array(np.array([[0.0, -1.0], [-1.0, 0.0]])), "must be > 0"),
        (scipy.sparse.csr_array(np.array([[0.0, np.nan], [np.nan, 0.0]])), "NaN"),
        (scipy.sparse.csr_array((2, 2)), "no edges"),
        (scipy.sparse.csr_array(np.ones((2, 3))), "square"),
        (nx.DiGraph([(0, 1)]), "undirected"),
    ],
)
def test_bad_graphs(graph, match):
    with pytest.raises(DataError, match=match):
        ollivier_ricci(graph)


def test_bad_flow_and_community_options():
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ShapeError, match="step"):
        ricci_flow(X, 3, 0.0)
    with pytest.raises(ShapeError, match="iterations"):
        ricci_flow(X, -1)
    with pytest.raises(UnknownNameError, match="community method"):
        ricci_communities(X, 3, method="louvain")
    with pytest.raises(ShapeError, match="n_cutoffs"):
        ricci_communities(X, 3, n_cutoffs=1)
    with pytest.raises(UnknownNameError, match="level"):
        curvature_distribution_distance(X, X, 3, level="graph")


def test_compare_checks_both_inputs_before_work(monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("a graph was built before the inputs were checked")

    monkeypatch.setattr(curvature, "knn_graph", no_work)
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ShapeError, match="same stimuli"):
        compare_communities(X, X[:15], 3)
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(NonFiniteError, match="Y contains NaN"):
        compare_communities(X, bad, 3)
    with pytest.raises(ShapeError, match="more than k"):
        curvature_distribution_distance(X, X[:3], 3)
