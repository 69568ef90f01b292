"""Geodesic kernel (neuroenc._kernels.graph) against scipy.sparse.csgraph shortest paths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components, csgraph_from_dense, shortest_path
from scipy.spatial.distance import pdist, squareform

from neuroenc._kernels.graph import geodesic_batch


def reference_graph(vec: np.ndarray, zero_edges: bool) -> np.ndarray:
    """Dense edge lengths of one RDM vector, ``inf`` where there is no edge (plain numpy)."""
    lo, hi = np.nanmin(vec), np.nanmax(vec)
    w = (vec - lo) / (hi - lo) if hi > lo else np.zeros_like(vec)
    edge = ~np.isnan(vec) & (w < 1) & (zero_edges | (w != 0))
    M = squareform(np.where(edge, w, np.inf), checks=False)
    np.fill_diagonal(M, 0.0)
    return M


def reference_geodesic(vec: np.ndarray, zero_edges: bool = True, method: str = "D") -> tuple[np.ndarray, int]:
    M = reference_graph(vec, zero_edges)
    # null_value=inf: zero-length entries are edges (scipy's default reads 0 as "no edge")
    G = csgraph_from_dense(M, null_value=np.inf)
    D = shortest_path(G, method=method, directed=False)
    out = squareform(D, checks=False)
    out[np.isnan(vec)] = np.nan
    n_comp = connected_components(csgraph_from_dense(np.isfinite(M).astype(float)), directed=False)[0]
    return out, n_comp


def check_against_reference(V: np.ndarray, n: int, zero_edges: bool = True) -> None:
    out, comp = geodesic_batch(V, n, zero_edges=zero_edges, n_jobs=1)
    for r, vec in enumerate(V):
        for method in ("D", "FW"):
            ref, ref_comp = reference_geodesic(vec, zero_edges, method)
            np.testing.assert_array_equal(np.isnan(out[r]), np.isnan(ref))
            np.testing.assert_array_equal(np.isinf(out[r]), np.isinf(ref))
            ok = np.isfinite(ref)
            np.testing.assert_allclose(out[r][ok], ref[ok], rtol=1e-12, atol=1e-14)
        assert comp[r] == ref_comp


def euclidean_rdms(rng: np.random.Generator, n_rdms: int, n: int, dim: int = 5) -> np.ndarray:
    return np.array([pdist(rng.standard_normal((n, dim))) for _ in range(n_rdms)])


@pytest.mark.parametrize("n", [2, 3, 4, 7, 17, 40, 70])
@pytest.mark.parametrize("zero_edges", [True, False])
def test_random_rdms_match_scipy(n, zero_edges):
    rng = np.random.default_rng(n)
    check_against_reference(euclidean_rdms(rng, 3, n), n, zero_edges)


@pytest.mark.parametrize("zero_edges", [True, False])
def test_ties_at_min_and_max(zero_edges):
    rng = np.random.default_rng(1)
    n = 12
    # few distinct values: many pairs at the minimum (length 0) and the maximum (cut)
    V = rng.integers(0, 4, size=(5, n * (n - 1) // 2)).astype(float)
    check_against_reference(V, n, zero_edges)


@pytest.mark.parametrize("zero_edges", [True, False])
def test_thresholded_rdms_match_scipy(zero_edges):
    # geo-topological-like input: a tenth of the pairs at 0, the top third at 1
    rng = np.random.default_rng(2)
    V = euclidean_rdms(rng, 4, 30)
    lo, hi = np.quantile(V, [0.1, 0.67], axis=1, keepdims=True)
    V = np.clip((V - lo) / (hi - lo), 0.0, 1.0)
    check_against_reference(V, 30, zero_edges)


def test_disconnected_graph_gives_inf_and_component_count():
    # two clusters whose between-cluster pairs are all at the maximum, hence cut
    n = 8
    labels = np.repeat([0, 1], 4)
    rng = np.random.default_rng(3)
    M = rng.uniform(0.1, 0.5, size=(n, n))
    M = (M + M.T) / 2
    M[labels[:, None] != labels[None, :]] = 1.0
    np.fill_diagonal(M, 0.0)
    vec = squareform(M)
    out, comp = geodesic_batch(vec[None], n)
    assert comp[0] == 2
    between = squareform(labels[:, None] != labels[None, :], checks=False)
    assert np.isinf(out[0][between]).all()
    assert np.isfinite(out[0][~between]).all()
    check_against_reference(vec[None], n)


def test_isolated_condition_with_zero_edges_dropped():
    # condition 0 is at the minimum from 1 and at the maximum from the rest:
    # without zero-length edges it is isolated (rsatoolbox's convention)
    M = np.array([[0, 1, 5, 5], [1, 0, 2, 3], [5, 2, 0, 4], [5, 3, 4, 0]], dtype=float)
    vec = squareform(M)
    out_keep, comp_keep = geodesic_batch(vec[None], 4, zero_edges=True)
    out_drop, comp_drop = geodesic_batch(vec[None], 4, zero_edges=False)
    assert comp_keep[0] == 1 and comp_drop[0] == 2
    assert np.isinf(out_drop[0][:3]).all()  # pairs (0, 1), (0, 2), (0, 3)
    # kept: (0, 1) has length 0, so (0, 2) goes through 1: w(1, 2) = (2 - 1) / 4
    assert out_keep[0][0] == 0.0
    assert out_keep[0][1] == pytest.approx(0.25)
    check_against_reference(vec[None], 4, zero_edges=False)


def test_three_conditions_by_hand():
    # d(0,1) = 1, d(0,2) = 3, d(1,2) = 2 -> w = 0, 1, 0.5; the pair (0, 2) is cut
    out, comp = geodesic_batch(np.array([[1.0, 3.0, 2.0]]), 3)
    np.testing.assert_allclose(out[0], [0.0, 0.5, 0.5])
    out, comp = geodesic_batch(np.array([[1.0, 3.0, 2.0]]), 3, zero_edges=False)
    np.testing.assert_array_equal(out[0], [np.inf, np.inf, 0.5])
    assert comp[0] == 2


def test_constant_rdm_policy():
    vec = np.full((1, 10), 0.7)
    out, comp = geodesic_batch(vec, 5)
    np.testing.assert_array_equal(out, 0.0)
    assert comp[0] == 1
    out, comp = geodesic_batch(vec, 5, zero_edges=False)
    assert np.isinf(out).all() and comp[0] == 5


def test_missing_pairs_are_not_edges_and_stay_missing():
    rng = np.random.default_rng(4)
    V = euclidean_rdms(rng, 3, 15)
    V[0, [0, 5, 17]] = np.nan
    V[2, 40] = np.nan
    out, _ = geodesic_batch(V, 15)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(V))
    check_against_reference(V, 15)


def test_threads_give_identical_results_and_input_is_untouched():
    rng = np.random.default_rng(5)
    V = euclidean_rdms(rng, 9, 64)
    V0 = V.copy()
    one, c1 = geodesic_batch(V, 64, n_jobs=1)
    two, c2 = geodesic_batch(V, 64, n_jobs=3)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(V, V0)


def test_geodesic_is_a_metric_below_the_normalised_rdm():
    rng = np.random.default_rng(6)
    n = 25
    vec = euclidean_rdms(rng, 1, n)[0]
    out, _ = geodesic_batch(vec[None], n)
    D = squareform(out[0])
    W = reference_graph(vec, True)
    assert np.all(D <= W + 1e-15)  # a direct edge is one path
    # triangle inequality: D[i, j] <= D[i, k] + D[k, j] at index [i, j, k]
    assert np.all(D[:, :, None] <= D[:, None, :] + D.T[None, :, :] + 1e-12)
