"""RDM kernels: sums of observations per (fold, condition) cell, and dissimilarities from pattern products.

Every RDM method of :mod:`neuroenc.rsa.compute` ends in one of two forms once
its patterns are prepared (averaged, whitened, normalised, log-transformed):
for the rows ``a_i`` of ``A`` and ``b_i`` of ``B`` of one set, with
``K = A B^T`` summed over the folds of the set,

- ``DIFFERENCE``: ``d_ij = K_ii + K_jj - K_ij - K_ji``, i.e.
  ``(a_i - a_j) . (b_i - b_j)`` (squared Euclidean and Mahalanobis distances
  with ``B = A`` or ``B = A P``; crossnobis with leave-one-fold-out training
  means in ``A`` and test means in ``B``; the symmetrised Poisson KL
  divergence with ``B = log A``);
- ``ONE_MINUS``: ``d_ij = 1 - K_ij`` (correlation and cosine distances of
  normalised rows).

:func:`pair_dissimilarities` computes these for a batch of sets (time points,
searchlight spheres) in one call. The products are computed here rather than
by BLAS: these are short-and-wide products (tens to hundreds of conditions,
thousands of features), where OpenBLAS's ``gemm``/``syrk`` reach a fraction of
their speed on square matrices. The kernel uses the register blocking of
:func:`neuroenc._kernels.blocks.add_dots_4x4` (4 x 4 blocks of rows, 16
products per 8 loads, inner loop vectorised along the features), reads the
folds of a set in place (no concatenation copy) and, when ``B = A``, only
computes the lower triangle. Threads split a large batch by sets, and a
batch smaller than the number of threads by feature ranges (partial products
summed). Each set's upper triangle is written straight into the row-major
pair vector (the order of :func:`scipy.spatial.distance.squareform`).

:func:`group_sums` adds every observation into its cell in one pass over the
data, threads splitting the features, so that averaging costs
O(n_obs x n_features) rather than the O(n_cells x n_obs x n_features) of an
indicator-matrix product.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neuroenc._kernels.blocks import add_dots_4x4
from neuroenc._kernels.parallel import effective_n_jobs, run_chunks

__all__ = ["DIFFERENCE", "ONE_MINUS", "group_sums", "pair_dissimilarities", "pairs_from_products"]

DIFFERENCE = 0
ONE_MINUS = 1

_FAST = {"reassoc", "contract"}

#: features per thread below which splitting one set over threads does not pay
_MIN_SPLIT_COLUMNS = 2048


@njit(cache=True, nogil=True, fastmath=_FAST)
def _product(a_flat, b_flat, s, n_folds, n_rows, n_cols, f0, f1, symmetric, K, block):
    """``K[i, j] = sum_k sum_{f0 <= f < f1} A[s, k, i, f] B[s, k, j, f]``.

    ``A``/``B`` are C-ordered (n_sets, n_folds, n_rows, n_cols) arrays given
    flat. With ``symmetric`` (``B is A``) only blocks with ``j <= i`` are
    computed and the result is mirrored. Past the last row a block repeats it
    (the extra results are not stored). ``block`` is 4 x 4 scratch.
    """
    n = f1 - f0
    last = n_rows - 1
    for a in range(0, n_rows, 4):
        b_stop = a + 1 if symmetric else n_rows
        for b in range(0, b_stop, 4):
            block[:, :] = 0.0
            for k in range(n_folds):
                base = ((s * n_folds + k) * n_rows) * n_cols + f0
                o0 = base + a * n_cols
                o1 = base + min(a + 1, last) * n_cols
                o2 = base + min(a + 2, last) * n_cols
                o3 = base + min(a + 3, last) * n_cols
                x0 = a_flat[o0 : o0 + n]
                x1 = a_flat[o1 : o1 + n]
                x2 = a_flat[o2 : o2 + n]
                x3 = a_flat[o3 : o3 + n]
                o0 = base + b * n_cols
                o1 = base + min(b + 1, last) * n_cols
                o2 = base + min(b + 2, last) * n_cols
                o3 = base + min(b + 3, last) * n_cols
                y0 = b_flat[o0 : o0 + n]
                y1 = b_flat[o1 : o1 + n]
                y2 = b_flat[o2 : o2 + n]
                y3 = b_flat[o3 : o3 + n]
                add_dots_4x4(x0, x1, x2, x3, y0, y1, y2, y3, n, block)
            for i in range(min(4, n_rows - a)):
                for j in range(min(4, n_rows - b)):
                    K[a + i, b + j] = block[i, j]
    if symmetric:
        for i in range(n_rows):
            for j in range(i + 1, n_rows):
                K[i, j] = K[j, i]


@njit(cache=True, nogil=True)
def _pairs_from_product(K, kind, scale, out):
    """Upper triangle (row-major) of the dissimilarities defined by the product ``K``."""
    n = K.shape[0]
    p = 0
    for i in range(n):
        kii = K[i, i]
        for j in range(i + 1, n):
            if kind == 0:
                out[p] = (kii + K[j, j] - K[i, j] - K[j, i]) * scale
            else:
                out[p] = (1.0 - K[i, j]) * scale
            p += 1


@njit(cache=True, nogil=True)
def _sets_kernel(a_flat, b_flat, dims, symmetric, kind, scale, out, start, stop):
    """Whole sets ``[start, stop)``: product over all features, then the pair vector."""
    n_folds, n_rows, n_cols = dims[0], dims[1], dims[2]
    K = np.empty((n_rows, n_rows))
    block = np.empty((4, 4))
    for s in range(start, stop):
        _product(a_flat, b_flat, s, n_folds, n_rows, n_cols, 0, n_cols, symmetric, K, block)
        _pairs_from_product(K, kind, scale, out[s])


@njit(cache=True, nogil=True)
def _partial_kernel(a_flat, b_flat, dims, s, symmetric, bounds, partial, start, stop):
    """Products of set ``s`` over the feature ranges ``bounds[t]:bounds[t + 1]``, t in ``[start, stop)``."""
    n_folds, n_rows, n_cols = dims[0], dims[1], dims[2]
    block = np.empty((4, 4))
    for t in range(start, stop):
        _product(a_flat, b_flat, s, n_folds, n_rows, n_cols, bounds[t], bounds[t + 1], symmetric, partial[t], block)


@njit(cache=True, nogil=True)
def _products_kernel(K, kind, scale, out, start, stop):
    for s in range(start, stop):
        _pairs_from_product(K[s], kind, scale, out[s])


@njit(cache=True, nogil=True)
def _group_sums_kernel(x_flat, cells, n_cols, out_flat, start, stop):
    """``out[cells[o], start:stop] += X[o, start:stop]`` for every row ``o`` (C-ordered arrays given flat).

    1-D slices of the flat arrays are contiguous to numba, so the inner loop
    vectorises (2-D slices would be strided views).
    """
    n = stop - start
    for o in range(cells.shape[0]):
        src = x_flat[o * n_cols + start : o * n_cols + stop]
        dst = out_flat[cells[o] * n_cols + start : cells[o] * n_cols + stop]
        for f in range(n):
            dst[f] += src[f]


def _as_c(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def pair_dissimilarities(
    A: np.ndarray, B: np.ndarray | None, kind: int, scale: float = 1.0, n_jobs: int | None = None
) -> np.ndarray:
    """Dissimilarity vectors of a batch of sets from the products ``A[s] B[s]^T``.

    Parameters
    ----------
    A : numpy.ndarray, shape (n_sets, n_rows, n_columns) or (n_sets, n_folds, n_rows, n_columns)
        Prepared patterns (finite float64; converted to C order if needed).
        With a fold axis the product of a set is the sum over its folds
        (the same as concatenating the folds along the columns).
    B : numpy.ndarray of the same shape, or None
        Second factor; None means ``B = A`` (symmetric product, half the work).
    kind : {DIFFERENCE, ONE_MINUS}
        Dissimilarity formed from the product (see the module docstring).
    scale : float
        Factor applied to every dissimilarity (e.g. ``1 / n_features``).
    n_jobs : int or None
        Threads (see :func:`neuroenc._kernels.parallel.effective_n_jobs`).

    Returns
    -------
    numpy.ndarray, shape (n_sets, n_rows * (n_rows - 1) / 2)
        Upper triangles, row-major.
    """
    A = _as_c(A)
    symmetric = B is None or B is A
    B = A if symmetric else _as_c(B)
    if A.shape != B.shape or A.ndim not in (3, 4):
        raise ValueError(
            f"A and B must be equal-shaped (n_sets, [n_folds,] n_rows, n_columns); got {A.shape} and {B.shape}."
        )
    if A.ndim == 3:
        A, B = A[:, None], B[:, None]
    n_sets, n_folds, n_rows, n_cols = A.shape
    dims = np.array([n_folds, n_rows, n_cols], dtype=np.int64)
    a_flat, b_flat = A.reshape(-1), B.reshape(-1)
    out = np.empty((n_sets, n_rows * (n_rows - 1) // 2))
    n_threads = effective_n_jobs(n_jobs)
    n_chunks = min(n_threads, n_cols // _MIN_SPLIT_COLUMNS)
    if n_sets < n_threads and n_chunks > 1:
        # few large sets: threads take feature ranges of one set, partial products are summed
        bounds = np.array([round(i * n_cols / n_chunks) for i in range(n_chunks + 1)], dtype=np.int64)
        partial = np.empty((n_chunks, n_rows, n_rows))
        for s in range(n_sets):

            def split(start: int, stop: int, s: int = s) -> None:
                _partial_kernel(a_flat, b_flat, dims, s, symmetric, bounds, partial, start, stop)

            run_chunks(split, n_chunks, n_chunks)
            _pairs_from_product(partial.sum(axis=0), kind, float(scale), out[s])
        return out

    def kernel(start: int, stop: int) -> None:
        _sets_kernel(a_flat, b_flat, dims, symmetric, kind, float(scale), out, start, stop)

    run_chunks(kernel, n_sets, n_jobs)
    return out


def pairs_from_products(K: np.ndarray, kind: int, scale: float = 1.0, *, n_jobs: int | None = None) -> np.ndarray:
    """Dissimilarity vectors from already computed products ``K`` (n_sets, n, n).

    See :func:`pair_dissimilarities`; used when the products come from
    elsewhere (e.g. a sum of products with per-fold-pair precisions).
    """
    K = _as_c(K)
    n_sets, n = K.shape[:2]
    out = np.empty((n_sets, n * (n - 1) // 2))

    def kernel(start: int, stop: int) -> None:
        _products_kernel(K, kind, float(scale), out, start, stop)

    run_chunks(kernel, n_sets, n_jobs, min_chunk=16)
    return out


def group_sums(X: np.ndarray, cells: np.ndarray, n_cells: int, n_jobs: int | None = None) -> np.ndarray:
    """Sum of the rows of ``X`` falling in each cell.

    Parameters
    ----------
    X : numpy.ndarray, shape (n_obs, n_columns)
        Finite values (converted to C-ordered float64 if needed).
    cells : numpy.ndarray of int, shape (n_obs,)
        Cell of each row, in ``[0, n_cells)``.
    n_cells : int
        Number of cells; a cell without rows sums to 0.
    n_jobs : int or None
        Threads; each sums a contiguous block of columns.

    Returns
    -------
    numpy.ndarray, shape (n_cells, n_columns)
    """
    X = _as_c(X)
    cells = np.ascontiguousarray(cells, dtype=np.int64)
    if cells.shape != (X.shape[0],):
        raise ValueError(f"cells must have one entry per row of X ({X.shape[0]}); got shape {cells.shape}.")
    if cells.size and (cells.min() < 0 or cells.max() >= n_cells):
        raise ValueError(f"cells must lie in [0, {n_cells}).")
    out = np.zeros((n_cells, X.shape[1]))
    x_flat, out_flat, n_cols = X.reshape(-1), out.reshape(-1), X.shape[1]

    def kernel(start: int, stop: int) -> None:
        _group_sums_kernel(x_flat, cells, n_cols, out_flat, start, stop)

    # below a few thousand columns a second thread costs more than it saves
    run_chunks(kernel, X.shape[1], n_jobs, min_chunk=4096)
    return out
