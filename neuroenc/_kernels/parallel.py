"""Run serial ``nogil`` kernels over chunks of a batch on several threads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

__all__ = ["effective_n_jobs", "run_chunks", "single_threaded_blas"]

_CONTROLLER = None
_POOLS: dict[int, ThreadPoolExecutor] = {}


def effective_n_jobs(n_jobs: int | None) -> int:
    """Threads to use: None or -1 mean all CPU cores, -2 all but one, and so on."""
    n_cpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_jobs is None or n_jobs == 0:
        return n_cpu
    if n_jobs < 0:
        return max(1, n_cpu + 1 + n_jobs)
    return int(n_jobs)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit every loaded BLAS/LAPACK to one thread for the block."""
    global _CONTROLLER
    if _CONTROLLER is None:
        import scipy.linalg  # noqa: F401  numba's LAPACK is scipy's; load it before scanning
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def _pool(n_threads: int) -> ThreadPoolExecutor:
    pool = _POOLS.get(n_threads)
    if pool is None:
        pool = _POOLS[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="neuroenc-kernel")
    return pool


def run_chunks(
    kernel: Callable[[int, int], object], n_items: int, n_jobs: int | None = None, min_chunk: int = 1
) -> None:
    """Call ``kernel(start, stop)`` on contiguous chunks covering ``range(n_items)``.

    Parameters
    ----------
    kernel : callable
        Typically a closure over a ``nogil`` numba kernel and its arrays.
    n_items : int
        Size of the batch.
    n_jobs : int or None
        Threads (see :func:`effective_n_jobs`).
    min_chunk : int
        Smallest worthwhile chunk; fewer threads are used for small batches.
    """
    if n_items <= 0:
        return
    n_threads = max(1, min(effective_n_jobs(n_jobs), n_items // max(1, min_chunk)))
    with single_threaded_blas():
        if n_threads == 1:
            kernel(0, n_items)
            return
        bounds = [round(i * n_items / n_threads) for i in range(n_threads + 1)]
        futures = [_pool(n_threads).submit(kernel, a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        for fut in futures:
            fut.result()
