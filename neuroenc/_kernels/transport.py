"""Exact optimal transport between small discrete measures, and Ollivier-Ricci edge curvatures.

Two serial kernels:

- :func:`_transport` solves one transport problem ``min sum F_ij C_ij`` over
  plans ``F >= 0`` with row sums ``a`` and column sums ``b`` exactly, by the
  primal-dual (Hungarian) method run as successive shortest paths. Row and
  column potentials keep every reduced cost ``C_ij + pot_i - pot_j``
  non-negative and those on the plan's support zero (dual feasibility and
  complementary slackness), so the plan is optimal once it is feasible.
  The potentials start from a row then column reduction, and flow is first
  sent along the entries this makes tight (each row's and each column's
  cheapest). Each round is then a Dijkstra search (binary heap) on reduced
  costs from all rows with supply left, which start together at distance 0
  and so keep their potentials (each column's cheapest such row is kept up
  to date, so a round starts in O(q)), along row -> column pairs and
  backwards along plan entries (column -> row), until the first column
  with demand left is settled; the potentials then move by
  ``min(dist, dist_target)``, which keeps the reduced costs non-negative
  and makes the path tight, and flow is pushed along the path up to the
  first exhausted supply, demand or plan entry, which is set to exactly
  zero. About ``p + q`` rounds of at most O(p q log(p q)) each; in practice
  the searches stop early.
- :func:`curvature_kernel` computes, for each edge ``(x, y)`` of a graph,
  the Ollivier-Ricci curvature ``1 - W1(m_x, m_y) / d(x, y)`` (Ollivier 2009)
  of the lazy random-walk measures ``m_x = alpha * delta_x + (1 - alpha) *
  (neighbour mass)``. Shortest-path distances are a metric, so an optimal
  plan leaves ``min(m_x(z), m_y(z))`` in place at every node ``z``
  (Kantorovich-Rubinstein: W1 depends only on ``m_x - m_y``); only the
  positive and negative parts of the difference are transported. That makes
  the problems smaller (``x`` and ``y`` and the common neighbours mostly
  cancel) and removes the zero-cost entries on which simplex-type solvers
  degenerate.

Shortest-path distances come in as a sparse table (CSR: ``pair_ptr``,
``pair_idx`` sorted within each row, ``pair_dist``) holding every pair a
curvature needs (see :mod:`neuroenc.similarity.curvature`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neuroenc._kernels.parallel import run_chunks

__all__ = ["transport_cost", "edge_curvatures"]

#: residual mass (relative to the total) below which a supply or demand counts as exhausted
_REL_TOL = 1e-13
#: net masses below this (the measures are probabilities) are left out of a curvature's problem
_MASS_EPS = 1e-15


@njit(cache=True, nogil=True)
def _nearest_sources(CT, p, j, ra, pot):
    """``min_i C[i, j] + pot[i]`` over rows ``i`` with supply left, and the row (-1 if none)."""
    best = np.inf
    arg = -1
    col = CT[j]
    for i in range(p):
        if ra[i] > 0.0:
            c = col[i] + pot[i]
            if c < best:
                best = c
                arg = i
    return best, arg


@njit(inline="always")
def _push_tight(i, j, ra, rb, FT, support, n_support, tol):
    """Send what row ``i`` and column ``j`` allow along the (tight) entry ``(i, j)``, before the rounds."""
    x = min(ra[i], rb[j])
    if x <= 0.0:
        return
    if FT[j, i] == 0.0:
        support[j, n_support[j]] = i
        n_support[j] += 1
    FT[j, i] += x
    ra[i] = 0.0 if ra[i] - x <= tol else ra[i] - x
    rb[j] = 0.0 if rb[j] - x <= tol else rb[j] - x


@njit(inline="always")
def _remove(items, n, item):
    """Remove ``item`` from ``items[:n]`` (order not kept)."""
    for k in range(n):
        if items[k] == item:
            items[k] = items[n - 1]
            return


@njit(inline="always")
def _heap_push(keys, nodes, size, key, node):
    """Push onto a binary min-heap of ``size`` entries; returns the new size."""
    k = size
    while k > 0:
        up = (k - 1) >> 1
        if keys[up] <= key:
            break
        keys[k] = keys[up]
        nodes[k] = nodes[up]
        k = up
    keys[k] = key
    nodes[k] = node
    return size + 1


@njit(inline="always")
def _sift_down(keys, nodes, size, k):
    """Move entry ``k`` down to its place in a heap of ``size`` entries."""
    key = keys[k]
    node = nodes[k]
    while True:
        c = 2 * k + 1
        if c >= size:
            break
        if c + 1 < size and keys[c + 1] < keys[c]:
            c += 1
        if keys[c] >= key:
            break
        keys[k] = keys[c]
        nodes[k] = nodes[c]
        k = c
    keys[k] = key
    nodes[k] = node


@njit(inline="always")
def _heap_pop(keys, nodes, size):
    """Smallest entry of a non-empty heap: ``(key, node, new size)``."""
    key = keys[0]
    node = nodes[0]
    size -= 1
    if size > 0:
        keys[0] = keys[size]
        nodes[0] = nodes[size]
        _sift_down(keys, nodes, size, 0)
    return key, node, size


@njit(cache=True, nogil=True)
def _transport(a, b, C, p, q, F, tol):
    """Optimal plan ``F[:p, :q]`` and its cost for masses ``a[:p]``, ``b[:q]`` and costs ``C[:p, :q]``.

    Residual masses at or below ``tol`` count as zero. Returns ``(cost, ok)``;
    ``ok`` is False only if the augmentation limit was hit (a safeguard; not
    seen in practice).
    """
    n = p + q
    ra = np.empty(p)
    rb = np.empty(q)
    pot = np.zeros(n)  # rows 0 .. p-1, columns p .. p+q-1
    dist = np.empty(n)
    pred = np.empty(n, dtype=np.int64)
    done = np.empty(n, dtype=np.bool_)
    heap_keys = np.empty(q + 2 * p * q + 1)
    heap_nodes = np.empty(q + 2 * p * q + 1, dtype=np.int64)
    # per column, the cheapest row with supply left (those rows keep potential 0 throughout,
    # so this changes only when one of them runs dry)
    src_cost = np.empty(q)
    src_row = np.empty(q, dtype=np.int64)
    # the plan and costs column by column, so that the column scans read contiguous memory
    FT = np.zeros((q, p))
    CT = np.empty((q, p))
    # rows with a positive plan entry in each column (the column -> row edges of the residual graph)
    support = np.empty((q, p), dtype=np.int64)
    n_support = np.zeros(q, dtype=np.int64)
    for i in range(p):
        ra[i] = a[i] if a[i] > tol else 0.0
        for j in range(q):
            CT[j, i] = C[i, j]
    for j in range(q):
        rb[j] = b[j] if b[j] > tol else 0.0
    # two-sided reduction (as in the Hungarian method): rows, then columns, get the potentials
    # that make each row's and each column's cheapest entry tight (reduced cost 0, the rest >= 0)
    best_col = np.empty(p, dtype=np.int64)
    for i in range(p):
        lo = np.inf
        for j in range(q):
            if C[i, j] < lo:
                lo = C[i, j]
                best_col[i] = j
        pot[i] = -lo
    for j in range(q):
        lo = np.inf
        arg = 0
        for i in range(p):
            c = CT[j, i] + pot[i]
            if c < lo:
                lo = c
                arg = i
        pot[p + j] = lo
        _push_tight(arg, j, ra, rb, FT, support, n_support, tol)  # a start on tight entries
    for i in range(p):
        j = best_col[i]
        if C[i, j] + pot[i] == pot[p + j]:
            _push_tight(i, j, ra, rb, FT, support, n_support, tol)
    for j in range(q):
        src_cost[j], src_row[j] = _nearest_sources(CT, p, j, ra, pot)
    max_rounds = 4 * n * n + 64
    ok = False
    for _ in range(max_rounds):
        if src_row[0] < 0:  # no supply left
            ok = True
            break
        # Dijkstra from the rows with supply (settled at distance 0) to the sink
        for i in range(p):
            pred[i] = -1
            done[i] = ra[i] > 0.0
            dist[i] = 0.0 if done[i] else np.inf
        for j in range(q):
            v = p + j
            dist[v] = max(src_cost[j] - pot[v], 0.0)
            pred[v] = src_row[j]
            done[v] = False
            heap_keys[j] = dist[v]
            heap_nodes[j] = v
        size = q
        for k in range(q // 2 - 1, -1, -1):
            _sift_down(heap_keys, heap_nodes, size, k)
        d_sink = np.inf
        sink_col = -1
        while size > 0:
            best, u, size = _heap_pop(heap_keys, heap_nodes, size)
            if done[u] or best > dist[u]:
                continue
            done[u] = True
            pu = pot[u]
            if u >= p and rb[u - p] > 0.0:  # the nearest column with demand left
                d_sink = best
                sink_col = u - p
                break
            if u < p:
                for j in range(q):
                    v = p + j
                    if not done[v]:
                        nd = best + max(C[u, j] + pu - pot[v], 0.0)
                        if nd < dist[v]:
                            dist[v] = nd
                            pred[v] = u
                            size = _heap_push(heap_keys, heap_nodes, size, nd, v)
            else:
                j = u - p
                cost_j = CT[j]
                for k in range(n_support[j]):  # backwards along plan entries
                    i = support[j, k]
                    if not done[i]:
                        nd = best + max(pu - pot[i] - cost_j[i], 0.0)
                        if nd < dist[i]:
                            dist[i] = nd
                            pred[i] = u
                            size = _heap_push(heap_keys, heap_nodes, size, nd, i)
        if sink_col < 0:  # no demand left (totals differ by rounding)
            ok = True
            break
        for v in range(n):
            pot[v] += min(dist[v], d_sink)
        # bottleneck along sink <- column <- row <- column ... <- row with supply
        delta = rb[sink_col]
        v = p + sink_col
        while True:
            i = pred[v]
            back = pred[i]
            if back < 0:
                delta = min(delta, ra[i])
                break
            delta = min(delta, FT[back - p, i])
            v = back
        rb[sink_col] = 0.0 if rb[sink_col] - delta <= tol else rb[sink_col] - delta
        v = p + sink_col
        while True:
            i = pred[v]
            j = v - p
            if FT[j, i] == 0.0:
                support[j, n_support[j]] = i
                n_support[j] += 1
            FT[j, i] += delta
            back = pred[i]
            if back < 0:
                break
            j = back - p
            if FT[j, i] <= delta:
                FT[j, i] = 0.0
                _remove(support[j], n_support[j], i)
                n_support[j] -= 1
            else:
                FT[j, i] -= delta
            v = back
        if ra[i] - delta > tol:
            ra[i] -= delta
        else:  # row i runs dry: the columns whose nearest source it was look again
            ra[i] = 0.0
            for j in range(q):
                if src_row[j] == i:
                    src_cost[j], src_row[j] = _nearest_sources(CT, p, j, ra, pot)
    cost = 0.0
    for i in range(p):
        for j in range(q):
            F[i, j] = FT[j, i]
            cost += FT[j, i] * CT[j, i]
    return cost, ok


def transport_cost(a: np.ndarray, b: np.ndarray, C: np.ndarray) -> tuple[float, np.ndarray]:
    """Exact optimal transport cost and plan between two discrete measures (inputs already validated).

    Parameters
    ----------
    a : numpy.ndarray, shape (p,)
        Non-negative source masses.
    b : numpy.ndarray, shape (q,)
        Non-negative target masses with the same total as ``a`` (up to rounding).
    C : numpy.ndarray, shape (p, q)
        Finite costs.

    Returns
    -------
    cost : float
        ``sum(plan * C)``, the minimum.
    plan : numpy.ndarray, shape (p, q)
        An optimal plan: rows sum to ``a`` and columns to ``b`` up to
        ``1e-13`` times the total mass.
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    C = np.ascontiguousarray(C, dtype=np.float64)
    p, q = a.shape[0], b.shape[0]
    plan = np.zeros((p, q))
    if p == 0 or q == 0:
        return 0.0, plan
    tol = _REL_TOL * max(float(a.sum()), float(b.sum()))
    cost, ok = _transport(a, b, C, p, q, plan, tol)
    if not ok:
        raise RuntimeError("transport solver hit its augmentation limit; please report this input.")
    return float(cost), plan


# ----------------------------------------------------------------------
# Ollivier-Ricci curvature of graph edges
@njit(cache=True, nogil=True)
def _pair_distance(pair_ptr, pair_idx, pair_dist, u, v):
    """Shortest-path distance ``d(u, v)`` from the sparse table (binary search in row ``u``)."""
    lo = pair_ptr[u]
    hi = pair_ptr[u + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        w = pair_idx[mid]
        if w < v:
            lo = mid + 1
        else:
            hi = mid
    if lo < pair_ptr[u + 1] and pair_idx[lo] == v:
        return pair_dist[lo]
    return np.inf


@njit(cache=True, nogil=True)
def _add_measure(x, sign, indptr, indices, pair_ptr, pair_idx, pair_dist, alpha, exp_power, net, weights):
    """``net += sign * m_x``: ``alpha`` at ``x``, ``1 - alpha`` over its neighbours.

    Neighbour ``v`` gets mass proportional to ``exp(-d(x, v) ** exp_power)``
    (uniform for ``exp_power = 0``); the weights are computed relative to the
    nearest neighbour, which leaves the normalised masses unchanged and
    cannot underflow.
    """
    start = indptr[x]
    deg = indptr[x + 1] - start
    net[x] += sign * alpha
    if exp_power == 0.0:
        share = sign * (1.0 - alpha) / deg
        for k in range(deg):
            net[indices[start + k]] += share
        return
    lo = np.inf
    for k in range(deg):
        e = _pair_distance(pair_ptr, pair_idx, pair_dist, x, indices[start + k]) ** exp_power
        weights[k] = e
        lo = min(lo, e)
    total = 0.0
    for k in range(deg):
        weights[k] = np.exp(lo - weights[k])
        total += weights[k]
    scale = sign * (1.0 - alpha) / total
    for k in range(deg):
        net[indices[start + k]] += scale * weights[k]


@njit(cache=True, nogil=True)
def _ball(x, indptr, indices, out):
    """``x`` and its neighbours into ``out``; returns their number."""
    out[0] = x
    start = indptr[x]
    deg = indptr[x + 1] - start
    for k in range(deg):
        out[k + 1] = indices[start + k]
    return deg + 1


@njit(cache=True, nogil=True)
def curvature_kernel(
    indptr, indices, pair_ptr, pair_idx, pair_dist, edges, order, alpha, exp_power, max_degree, out, status, start, stop
):
    """Curvatures of edges ``order[start:stop]`` into ``out``; ``status`` 1 flags a solver failure."""
    n = indptr.shape[0] - 1
    size = max_degree + 1
    net = np.zeros(n)
    weights = np.empty(size)
    ball_x = np.empty(size, dtype=np.int64)
    ball_y = np.empty(size, dtype=np.int64)
    src = np.empty(size, dtype=np.int64)
    dst = np.empty(size, dtype=np.int64)
    a = np.empty(size)
    b = np.empty(size)
    C = np.empty((size, size))
    F = np.empty((size, size))
    for k in range(start, stop):
        e = order[k]
        x = edges[e, 0]
        y = edges[e, 1]
        _add_measure(x, 1.0, indptr, indices, pair_ptr, pair_idx, pair_dist, alpha, exp_power, net, weights)
        _add_measure(y, -1.0, indptr, indices, pair_ptr, pair_idx, pair_dist, alpha, exp_power, net, weights)
        nx_ = _ball(x, indptr, indices, ball_x)
        ny_ = _ball(y, indptr, indices, ball_y)
        # a node with surplus is in x's ball, one with deficit in y's: each is listed once
        p = 0
        for k in range(nx_):
            z = ball_x[k]
            if net[z] > _MASS_EPS:
                src[p] = z
                a[p] = net[z]
                p += 1
        q = 0
        for k in range(ny_):
            z = ball_y[k]
            if net[z] < -_MASS_EPS:
                dst[q] = z
                b[q] = -net[z]
                q += 1
        for k in range(nx_):
            net[ball_x[k]] = 0.0
        for k in range(ny_):
            net[ball_y[k]] = 0.0
        w1 = 0.0
        if p > 0 and q > 0:
            for i in range(p):
                for j in range(q):
                    C[i, j] = _pair_distance(pair_ptr, pair_idx, pair_dist, src[i], dst[j])
            w1, ok = _transport(a, b, C, p, q, F, _REL_TOL)
            if not ok:
                status[e] = 1
        out[e] = 1.0 - w1 / _pair_distance(pair_ptr, pair_idx, pair_dist, x, y)


def edge_curvatures(
    indptr: np.ndarray,
    indices: np.ndarray,
    pair_ptr: np.ndarray,
    pair_idx: np.ndarray,
    pair_dist: np.ndarray,
    edges: np.ndarray,
    *,
    alpha: float,
    exp_power: float,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Ollivier-Ricci curvature of each edge (inputs already validated).

    Parameters
    ----------
    indptr, indices : numpy.ndarray of int64
        CSR structure of the symmetric graph (no self-loops, every listed
        node of an edge has degree >= 1).
    pair_ptr, pair_idx, pair_dist : numpy.ndarray
        Sparse table of shortest-path distances, CSR (int64 pointers, int32
        column indices sorted within each row); it must hold ``d(u, v)`` for ``u`` in ``x``'s closed
        neighbourhood and ``v`` in ``y``'s for every edge ``(x, y)``.
    edges : numpy.ndarray of int64, shape (n_edges, 2)
        Edges to compute.
    alpha : float
        Idleness: mass kept at the node, in [0, 1].
    exp_power : float
        Neighbour mass proportional to ``exp(-d ** exp_power)``; 0 is uniform.
    n_jobs : int or None
        Threads.

    Returns
    -------
    numpy.ndarray, shape (n_edges,)
        ``1 - W1(m_x, m_y) / d(x, y)``.
    """
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    pair_ptr = np.ascontiguousarray(pair_ptr, dtype=np.int64)
    pair_idx = np.ascontiguousarray(pair_idx, dtype=np.int32)
    pair_dist = np.ascontiguousarray(pair_dist, dtype=np.float64)
    edges = np.ascontiguousarray(edges, dtype=np.int64).reshape(-1, 2)
    n_edges = edges.shape[0]
    out = np.empty(n_edges)
    status = np.zeros(n_edges, dtype=np.int8)
    max_degree = int(np.diff(indptr).max()) if indptr.shape[0] > 1 else 0
    a, e = float(alpha), float(exp_power)
    # a fixed shuffle gives every thread's chunk the same mix of cheap edges and costly hub edges
    order = np.random.default_rng(0).permutation(n_edges)

    def kernel(start: int, stop: int) -> None:
        curvature_kernel(
            indptr, indices, pair_ptr, pair_idx, pair_dist, edges, order, a, e, max_degree, out, status, start, stop
        )

    run_chunks(kernel, n_edges, n_jobs, min_chunk=256)
    if status.any():
        bad = edges[int(np.flatnonzero(status)[0])]
        raise RuntimeError(f"transport solver hit its augmentation limit on edge {tuple(bad)}; please report this.")
    return out
