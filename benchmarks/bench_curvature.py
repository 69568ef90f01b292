"""Ollivier-Ricci curvature of a k-NN graph: compiled exact transport against LP loops, same run.

Run: ``python benchmarks/bench_curvature.py``. Input: 1000 points from a
20-dimensional standard normal, k = 10 (symmetrised k-NN graph, Euclidean
lengths), alpha = 0.5, uniform neighbour mass. neuroenc's
:func:`~neuroenc.similarity.curvature.ollivier_ricci` (k-NN graph, bounded
shortest paths, exact transport kernel) is timed whole: medians of 3 runs
after one warm-up (which also compiles the kernel).

References (POT/GraphRicciCurvature are not dependencies), both per edge as
GraphRicciCurvature does it, on the same graph and measures:

- scipy: all-pairs shortest paths with ``scipy.sparse.csgraph.dijkstra``,
  then one ``scipy.optimize.linprog`` (HiGHS) transport LP per edge;
- networkx: ``networkx.all_pairs_dijkstra_path_length``, then the same LPs.

The LPs run on a random subset of edges (checked against neuroenc's
curvatures first) and their time is extrapolated to all edges; the
shortest-path step is timed whole. Ratio = reference time / neuroenc time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.optimize import linprog
from scipy.sparse.csgraph import dijkstra

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

from neuroenc.similarity.curvature import knn_graph, ollivier_ricci  # noqa: E402

N_POINTS, DIM, K, ALPHA = 1000, 20, 10, 0.5
N_SUBSET = 300


def lp_w1(a: np.ndarray, b: np.ndarray, C: np.ndarray) -> float:
    p, q = C.shape
    A_eq = np.vstack([np.kron(np.eye(p), np.ones(q)), np.kron(np.ones(p), np.eye(q))])
    return linprog(C.ravel(), A_eq=A_eq, b_eq=np.r_[a, b], bounds=(0, None), method="highs").fun


def lp_curvatures(neighbours: list[np.ndarray], costs, edges: np.ndarray) -> np.ndarray:
    """GraphRicciCurvature-style loop: supports, masses and an LP per edge; ``costs(sx, sy)`` distances."""
    out = np.empty(len(edges))
    for e, (x, y) in enumerate(edges):
        sx, sy = np.r_[neighbours[x], x], np.r_[neighbours[y], y]
        mx = np.r_[np.full(sx.size - 1, (1 - ALPHA) / (sx.size - 1)), ALPHA]
        my = np.r_[np.full(sy.size - 1, (1 - ALPHA) / (sy.size - 1)), ALPHA]
        C = costs(sx, sy)
        out[e] = 1 - lp_w1(mx, my, C) / C[-1, -1]
    return out


def main() -> None:
    X = np.random.default_rng(0).standard_normal((N_POINTS, DIM))
    res = ollivier_ricci(X, K, alpha=ALPHA)
    G = res.graph
    neighbours = [G.indices[G.indptr[i] : G.indptr[i + 1]] for i in range(N_POINTS)]
    subset = np.random.default_rng(1).choice(res.n_edges, N_SUBSET, replace=False)
    edges = res.edges[subset]
    scale = res.n_edges / N_SUBSET

    t0 = time.perf_counter()
    D = dijkstra(G, directed=False)
    t_apsp = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = lp_curvatures(neighbours, lambda sx, sy: D[np.ix_(sx, sy)], edges)
    t_lp = time.perf_counter() - t0
    assert np.abs(ref - res.edge_curvature[subset]).max() < 1e-8  # same numbers before timing

    g = nx.from_scipy_sparse_array(G)
    t0 = time.perf_counter()
    D_nx = dict(nx.all_pairs_dijkstra_path_length(g, weight="weight"))
    t_nx = time.perf_counter() - t0
    t0 = time.perf_counter()
    lp_curvatures(neighbours, lambda sx, sy: np.array([[D_nx[u][v] for v in sy] for u in sx]), edges)
    t_lp_nx = time.perf_counter() - t0

    label = f"{N_POINTS} pts, k={K}"
    ours = median_time(lambda: ollivier_ricci(X, K, alpha=ALPHA), repeat=3)
    ours_1 = median_time(lambda: ollivier_ricci(X, K, alpha=ALPHA, n_jobs=1), repeat=3)
    graph_only = median_time(lambda: knn_graph(X, K), repeat=3)
    ref_scipy = t_apsp + t_lp * scale
    ref_nx = t_nx + t_lp_nx * scale
    print_table(
        [
            (f"ollivier_ricci, {label}", ours, ref_scipy, "scipy dijkstra + linprog loop (extrap.)"),
            (f"ollivier_ricci n_jobs=1, {label}", ours_1, ref_scipy, "scipy dijkstra + linprog loop (extrap.)"),
            (f"ollivier_ricci, {label}", ours, ref_nx, "networkx + linprog loop (extrap.)"),
            (f"knn_graph only, {N_POINTS} pts, k={K}", graph_only, None, ""),
        ]
    )
    print(
        f"{res.n_edges} edges; reference parts: scipy APSP {t_apsp:.3f}s, networkx APSP {t_nx:.3f}s, "
        f"linprog {1e3 * t_lp / N_SUBSET:.2f} ms/edge over {N_SUBSET} edges"
    )


if __name__ == "__main__":
    main()
