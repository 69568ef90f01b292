"""Graph kernels: all-pairs shortest paths (geodesic distances) of a batch of RDMs.

One serial kernel, :func:`geodesic_kernel`, for the geodesic transform of
topological RSA (Lin & Kriegeskorte). For each RDM (an upper-triangle vector,
row-major as :func:`scipy.spatial.distance.squareform`) it

1. min-max normalises the dissimilarities, ``w = (d - min) / (max - min)``
   (NaN ignored; a constant RDM gives ``w = 0`` everywhere);
2. builds a dense weighted graph: pair ``(i, j)`` is an edge of length ``w``
   when ``w < 1`` (so the pairs at the RDM's maximum are cut) and ``d`` is
   not NaN; with ``zero_edges=False`` pairs with ``w == 0`` are not edges
   either (rsatoolbox 0.3.2 builds the graph with networkx, which reads zero
   entries of an adjacency matrix as missing edges);
3. runs Floyd-Warshall on it. The relaxation ``D[i, :] = min(D[i, :],
   D[i, k] + D[k, :])`` runs along contiguous rows and is written as an
   unconditional select so that LLVM vectorises it; rows with
   ``D[i, k] = inf`` are skipped, which makes sparse graphs cheaper;
4. writes the upper triangle back (NaN where the input was NaN, ``inf``
   between conditions in different connected components) and counts the
   connected components.

Floyd-Warshall is O(n**3) per RDM like per-source dense Dijkstra, but its
inner loop is a branch-free compare-and-select over a contiguous row, which
LLVM vectorises (checked in the assembly: packed compares on AVX registers);
at RDM sizes (tens to a few hundred conditions) the matrix stays in cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neuroenc._kernels.parallel import run_chunks

__all__ = ["geodesic_batch"]


@njit(cache=True, nogil=True)
def _fill_graph(vec, n, zero_edges, D):
    """Dense graph of one RDM vector: edge lengths, ``inf`` for non-edges, 0 on the diagonal."""
    lo = np.inf
    hi = -np.inf
    for k in range(vec.shape[0]):
        d = vec[k]
        if d == d:  # not NaN
            lo = min(lo, d)
            hi = max(hi, d)
    scale = hi - lo
    k = 0
    for i in range(n):
        D[i, i] = 0.0
        for j in range(i + 1, n):
            d = vec[k]
            k += 1
            w = np.inf
            if d == d:
                # the same expression as a min-max normalisation in numpy, so
                # that the cut ``x < 1`` falls exactly where rsatoolbox's does
                x = (d - lo) / scale if scale > 0.0 else 0.0
                if x < 1.0 and (zero_edges or x != 0.0):
                    w = x
            D[i, j] = w
            D[j, i] = w


@njit(cache=True, nogil=True)
def _floyd_warshall(D):
    """All-pairs shortest paths of a symmetric non-negative graph, in place."""
    n = D.shape[0]
    for k in range(n):
        row_k = D[k]
        for i in range(n):
            d_ik = row_k[i]  # D[i, k] by symmetry, read from a row in cache
            if i == k or d_ik == np.inf:
                continue
            row_i = D[i]
            for j in range(n):
                c = d_ik + row_k[j]
                old = row_i[j]
                row_i[j] = c if c < old else old
    return D


@njit(cache=True, nogil=True)
def _count_components(D):
    """Connected components: conditions with no finite path to any earlier condition."""
    n = D.shape[0]
    count = 0
    for i in range(n):
        first = True
        row = D[i]
        for j in range(i):
            if row[j] != np.inf:
                first = False
                break
        if first:
            count += 1
    return count


@njit(cache=True, nogil=True)
def geodesic_kernel(vectors, n, zero_edges, out, components, start, stop):
    """Geodesic transform of RDMs ``start .. stop - 1`` of ``vectors`` into ``out``."""
    D = np.empty((n, n))
    for r in range(start, stop):
        vec = vectors[r]
        _fill_graph(vec, n, zero_edges, D)
        _floyd_warshall(D)
        components[r] = _count_components(D)
        dst = out[r]
        k = 0
        for i in range(n):
            row = D[i]
            for j in range(i + 1, n):
                d = vec[k]
                dst[k] = row[j] if d == d else np.nan
                k += 1


def geodesic_batch(
    vectors: np.ndarray, n_conditions: int, *, zero_edges: bool = True, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic transform of a batch of RDM vectors (input already validated).

    Parameters
    ----------
    vectors : numpy.ndarray, shape (n_rdms, n_pairs)
        Upper triangles (``squareform`` order) of RDMs over ``n_conditions``
        conditions; NaN marks a missing dissimilarity (not an edge; NaN in the
        output). No infinite values.
    n_conditions : int
        Number of conditions, ``n_pairs = n (n - 1) / 2``.
    zero_edges : bool
        Whether pairs at the RDM's minimum (normalised length 0) are edges.
    n_jobs : int or None
        Threads (see :func:`neuroenc._kernels.parallel.effective_n_jobs`).

    Returns
    -------
    geodesic : numpy.ndarray, shape (n_rdms, n_pairs)
        Shortest-path lengths on the graph of the min-max normalised RDM;
        ``inf`` between disconnected conditions.
    components : numpy.ndarray of int64, shape (n_rdms,)
        Number of connected components of each graph.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float64)
    n_rdms = vectors.shape[0]
    out = np.empty_like(vectors)
    components = np.zeros(n_rdms, dtype=np.int64)
    flag = bool(zero_edges)

    def kernel(start: int, stop: int) -> None:
        geodesic_kernel(vectors, n_conditions, flag, out, components, start, stop)

    # one RDM of 100 conditions is ~1e6 relaxations, worth a thread of its own
    run_chunks(kernel, n_rdms, n_jobs, min_chunk=1 if n_conditions >= 64 else 16)
    return out, components
