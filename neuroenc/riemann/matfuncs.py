"""Matrix functions of symmetric (positive-definite) matrices.

Each function applies a scalar function to the eigenvalues,
``f(C) = V f(Lambda) V^T``, for one matrix ``(n, n)`` or a batch
``(..., n, n)``, as pyRiemann's ``sqrtm``, ``invsqrtm``, ``logm``, ``expm``
and ``powm``. The batch is split over threads, which solve groups of
eigenproblems together (LAPACK's tridiagonalisation, then a QL iteration
vectorised over the group, see :mod:`neuroenc._kernels.spd`); matrices of
condition number above 1e6 get the eigenvalues of numpy's ``eigh``, on
which the result depends at that conditioning.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from neuroenc.errors import NotSPDError, ShapeError
from neuroenc.validation import _index, check_spd, check_square_matrices

__all__ = ["sqrtm", "invsqrtm", "logm", "expm", "powm"]


def check_symmetric(X: Any, name: str = "X", *, rtol: float = 1e-7) -> np.ndarray:
    """Float64 array of finite symmetric matrices ``(..., n, n)`` (same tolerance as ``check_spd``)."""
    arr = check_square_matrices(X, name)
    flat = arr.reshape((-1,) + arr.shape[-2:])
    scale = np.abs(flat).max(axis=(1, 2))
    asym = np.abs(flat - flat.transpose(0, 2, 1)).max(axis=(1, 2))
    bad = np.flatnonzero(asym > rtol * np.maximum(scale, np.finfo(float).tiny))
    if bad.size:
        i = int(bad[0])
        raise NotSPDError(
            f"{name}[{_index(i, arr.shape[:-2])}] is not symmetric "
            f"(max |X - X.T| = {asym[i]:.3g}, max |X| = {scale[i]:.3g})."
        )
    return arr


def _apply(X: np.ndarray, op: int, p: float = 1.0, n_jobs: int | None = None) -> np.ndarray:
    """Matrix function of already validated matrices ``(..., n, n)``."""
    from neuroenc._kernels.spd import matfunc

    flat = X.reshape((-1,) + X.shape[-2:])
    return matfunc(flat, op, p, n_jobs=n_jobs).reshape(X.shape)


def sqrtm(X: Any, *, n_jobs: int | None = None) -> np.ndarray:
    """Symmetric square root of SPD matrices.

    Parameters
    ----------
    X : array-like, shape (..., n, n)
        SPD matrices.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        ``V sqrt(Lambda) V^T``.
    """
    from neuroenc._kernels.spd import OP_SQRT

    return _apply(check_spd(X), OP_SQRT, n_jobs=n_jobs)


def invsqrtm(X: Any, *, n_jobs: int | None = None) -> np.ndarray:
    """Inverse symmetric square root of SPD matrices.

    Parameters
    ----------
    X : array-like, shape (..., n, n)
        SPD matrices.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        ``V Lambda^{-1/2} V^T``.
    """
    from neuroenc._kernels.spd import OP_INVSQRT

    return _apply(check_spd(X), OP_INVSQRT, n_jobs=n_jobs)


def logm(X: Any, *, n_jobs: int | None = None) -> np.ndarray:
    """Principal logarithm of SPD matrices.

    Parameters
    ----------
    X : array-like, shape (..., n, n)
        SPD matrices.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        ``V log(Lambda) V^T`` (symmetric).
    """
    from neuroenc._kernels.spd import OP_LOG

    return _apply(check_spd(X), OP_LOG, n_jobs=n_jobs)


def expm(X: Any, *, n_jobs: int | None = None) -> np.ndarray:
    """Exponential of symmetric matrices.

    Parameters
    ----------
    X : array-like, shape (..., n, n)
        Symmetric matrices (not necessarily positive definite, e.g. tangent
        vectors).
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        ``V exp(Lambda) V^T`` (SPD).
    """
    from neuroenc._kernels.spd import OP_EXP

    return _apply(check_symmetric(X), OP_EXP, n_jobs=n_jobs)


def powm(X: Any, p: float, *, n_jobs: int | None = None) -> np.ndarray:
    """Real power of SPD matrices.

    Parameters
    ----------
    X : array-like, shape (..., n, n)
        SPD matrices.
    p : float
        Exponent.
    n_jobs : int or None
        Threads (None or -1: all cores).

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        ``V Lambda^p V^T``.
    """
    from neuroenc._kernels.spd import OP_POW

    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not np.isfinite(p):
        raise ShapeError(f"The exponent p must be a finite real number, got {p!r}.")
    return _apply(check_spd(X), OP_POW, float(p), n_jobs=n_jobs)
