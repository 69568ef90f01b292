"""Exact transport kernel (neuroenc._kernels.transport) against scipy's LP solver (HiGHS) and 1-D W1."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import dijkstra
from scipy.stats import wasserstein_distance

from neuroenc._kernels.transport import edge_curvatures, transport_cost

#: HiGHS's default feasibility tolerance (1e-7) is too loose for masses far below 1
TIGHT = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def lp_cost(a: np.ndarray, b: np.ndarray, C: np.ndarray) -> float:
    """Optimal transport cost as a dense LP solved by HiGHS (the reference)."""
    p, q = C.shape
    A_eq = np.vstack([np.kron(np.eye(p), np.ones(q)), np.kron(np.ones(p), np.eye(q))])
    total = a.sum()  # HiGHS works with absolute tolerances: solve for unit mass
    res = linprog(
        C.ravel(), A_eq=A_eq, b_eq=np.r_[a / total, b / b.sum()], bounds=(0, None), method="highs", options=TIGHT
    )
    assert res.status == 0, res.message
    return float(res.fun) * total


def check_plan(a: np.ndarray, b: np.ndarray, C: np.ndarray) -> float:
    cost, plan = transport_cost(a, b, C)
    scale = max(a.sum(), 1e-300)
    assert plan.shape == C.shape
    assert np.all(plan >= 0)
    np.testing.assert_allclose(plan.sum(axis=1), a, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(plan.sum(axis=0), b, rtol=0, atol=1e-12 * scale)
    assert cost == pytest.approx(float(np.sum(plan * C)), rel=1e-12, abs=1e-15)
    return cost


def random_problem(rng: np.random.Generator, p: int, q: int, kind: str):
    a, b = rng.random(p), rng.random(q)
    C = rng.random((p, q))
    if kind == "uniform":  # equal masses: many degenerate (tied) plans
        a, b = np.ones(p), np.ones(q)
    elif kind == "integer":  # tied costs
        C = rng.integers(0, 3, (p, q)).astype(float)
    elif kind == "zero_cost":
        C = np.zeros((p, q))
    elif kind == "sparse_mass":  # zero masses on both sides
        a[rng.random(p) < 0.4] = 0.0
        b[rng.random(q) < 0.4] = 0.0
        a[0], b[0] = max(a[0], 0.1), max(b[0], 0.1)
    elif kind == "scaled":  # masses and costs far from 1
        a, b, C = a * 1e-6, b * 1e-6, C * 1e5
    a = a / a.sum()
    b = b / b.sum()
    if kind == "scaled":
        a, b = a * 1e-6, b * 1e-6
    return a, b, C


KINDS = ["random", "uniform", "integer", "zero_cost", "sparse_mass", "scaled"]


@pytest.mark.parametrize("kind", KINDS)
def test_random_problems_match_linprog(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    for _ in range(60):
        p, q = rng.integers(1, 13, size=2)
        a, b, C = random_problem(rng, int(p), int(q), kind)
        ref = lp_cost(a, b, C)
        assert check_plan(a, b, C) == pytest.approx(ref, rel=1e-9, abs=1e-12 * max(1.0, C.max()) * a.sum())


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2)])
def test_tiny_shapes(shape):
    rng = np.random.default_rng(sum(shape))
    p, q = shape
    a, b, C = random_problem(rng, p, q, "random")
    assert check_plan(a, b, C) == pytest.approx(lp_cost(a, b, C), rel=1e-12)
    if p == 1:  # everything moves from the single source
        assert check_plan(a, b, C) == pytest.approx(float(C[0] @ b), rel=1e-12)


def test_large_problem_matches_linprog():
    rng = np.random.default_rng(7)
    pts_a, pts_b = rng.standard_normal((80, 3)), rng.standard_normal((70, 3))
    C = np.linalg.norm(pts_a[:, None] - pts_b[None], axis=2)
    a, b = rng.random(80), rng.random(70)
    a, b = a / a.sum(), b / b.sum()
    assert check_plan(a, b, C) == pytest.approx(lp_cost(a, b, C), rel=1e-9)


def test_identical_measures_cost_nothing():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(6)
    a = rng.random(6)
    a /= a.sum()
    C = np.abs(x[:, None] - x[None])
    cost, plan = transport_cost(a, a, C)
    assert cost == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(plan, np.diag(a), atol=1e-15)


def test_totals_differing_by_rounding():
    a = np.array([0.1, 0.1, 0.1])  # sums to 0.30000000000000004
    b = np.array([0.3])
    C = np.array([[1.0], [2.0], [3.0]])
    cost, _ = transport_cost(a, b, C)
    assert cost == pytest.approx(0.6, rel=1e-12)


def test_empty_measure_costs_nothing():
    cost, plan = transport_cost(np.zeros(0), np.ones(3), np.zeros((0, 3)))
    assert cost == 0.0 and plan.shape == (0, 3)


@pytest.mark.parametrize("seed", range(6))
def test_one_dimensional_supports_match_scipy_wasserstein(seed):
    rng = np.random.default_rng(seed)
    p, q = rng.integers(1, 15, size=2)
    u, v = rng.standard_normal(p), rng.standard_normal(q) + 0.5
    if seed % 2:  # shared support points: zero costs on the diagonal
        v[: min(p, q)] = u[: min(p, q)]
    wu, wv = rng.random(p), rng.random(q)
    wu, wv = wu / wu.sum(), wv / wv.sum()
    cost, _ = transport_cost(wu, wv, np.abs(u[:, None] - v[None]))
    assert cost == pytest.approx(wasserstein_distance(u, v, wu, wv), rel=1e-10, abs=1e-14)


# ----------------------------------------------------------------------
# edge curvatures against a plain numpy / scipy reference
def random_graph(rng: np.random.Generator, n: int, p_edge: float) -> scipy.sparse.csr_array:
    """Connected random graph (a path plus random edges) with random positive lengths."""
    W = np.triu(rng.random((n, n)) < p_edge, 1).astype(float)
    W[np.arange(n - 1), np.arange(1, n)] = 1.0
    W *= 0.2 + rng.random((n, n))
    W = W + W.T
    G = scipy.sparse.csr_array(W)
    G.sort_indices()
    return G


def reference_curvatures(G: scipy.sparse.csr_array, alpha: float, exp_power: float) -> np.ndarray:
    """Curvature of every edge (i < j) from the full distance matrix and HiGHS (plain numpy/scipy)."""
    D = dijkstra(G, directed=False)
    n = G.shape[0]
    A = G.toarray() > 0

    def measure(x: int) -> np.ndarray:
        nbr = np.flatnonzero(A[x])
        w = np.exp(-(D[x, nbr] ** exp_power)) if exp_power else np.ones(nbr.size)
        m = np.zeros(n)
        m[nbr] = (1 - alpha) * w / w.sum()
        m[x] += alpha
        return m

    out = []
    for x, y in zip(*np.nonzero(np.triu(A, 1))):
        mx, my = measure(x), measure(y)
        sx, sy = np.flatnonzero(mx), np.flatnonzero(my)
        w1 = lp_cost(mx[sx], my[sy], D[np.ix_(sx, sy)])
        out.append(1 - w1 / D[x, y])
    return np.array(out)


def pair_table(G: scipy.sparse.csr_array):
    """All-pairs table (every pair, so it covers the needed ones)."""
    n = G.shape[0]
    D = dijkstra(G, directed=False)
    ptr = np.arange(0, n * n + 1, n)
    idx = np.tile(np.arange(n), n)
    return ptr, idx, D.ravel()


def kernel_curvatures(G, alpha, exp_power, n_jobs=1):
    n = G.shape[0]
    rows = np.repeat(np.arange(n), np.diff(G.indptr))
    upper = G.indices > rows
    edges = np.column_stack([rows[upper], G.indices[upper]])
    ptr, idx, dist = pair_table(G)
    return edge_curvatures(G.indptr, G.indices, ptr, idx, dist, edges, alpha=alpha, exp_power=exp_power, n_jobs=n_jobs)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("exp_power", [0.0, 2.0])
def test_edge_curvatures_match_reference(alpha, exp_power):
    rng = np.random.default_rng(int(alpha * 10 + exp_power))
    G = random_graph(rng, 18, 0.25)
    ref = reference_curvatures(G, alpha, exp_power)
    np.testing.assert_allclose(kernel_curvatures(G, alpha, exp_power), ref, rtol=1e-9, atol=1e-12)


def test_edge_curvatures_threads_agree():
    rng = np.random.default_rng(11)
    G = random_graph(rng, 200, 0.05)
    assert G.nnz // 2 > 3 * 256  # enough edges for three chunks
    one = kernel_curvatures(G, 0.5, 0.0, n_jobs=1)
    np.testing.assert_array_equal(kernel_curvatures(G, 0.5, 0.0, n_jobs=3), one)


def test_single_edge_alpha_half_is_flat_measure():
    # K2: both lazy walks are (1/2, 1/2) at alpha = 0.5, so nothing moves
    G = scipy.sparse.csr_array(np.array([[0.0, 2.0], [2.0, 0.0]]))
    assert kernel_curvatures(G, 0.5, 0.0)[0] == pytest.approx(1.0)
    # alpha = 0: the walks swap the two nodes, W1 = d(x, y)
    assert kernel_curvatures(G, 0.0, 0.0)[0] == pytest.approx(0.0, abs=1e-15)
