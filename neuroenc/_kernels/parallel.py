"""Run serial ``nogil`` kernels over chunks of a batch on several threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

__all__ = ["effective_n_jobs", "run_chunks", "single_threaded_blas"]

_BLAS: list[Any] | None = None
_LIMIT_LOCK = threading.Lock()
_LIMIT_DEPTH = 0
_RESTORE: list[tuple[Any, int]] = []
_POOLS: dict[int, ThreadPoolExecutor] = {}


def effective_n_jobs(n_jobs: int | None) -> int:
    """Threads to use: None or -1 mean all CPU cores, -2 all but one, and so on."""
    n_cpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_jobs is None or n_jobs == 0:
        return n_cpu
    if n_jobs < 0:
        return max(1, n_cpu + 1 + n_jobs)
    return int(n_jobs)


def _blas_libraries() -> list[Any]:
    global _BLAS
    if _BLAS is None:
        import scipy.linalg  # noqa: F401  numba's LAPACK is scipy's; load it before scanning
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController().select(user_api="blas").lib_controllers
    return _BLAS


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit every loaded BLAS/LAPACK to one thread for the block.

    Re-entrant and shared by threads: the thread counts are set on the first
    entry and restored when the last block exits, so nested blocks (and
    blocks in kernel threads) cost a counter update, and none restores the
    libraries while another block still runs.
    """
    global _LIMIT_DEPTH
    libraries = _blas_libraries()
    with _LIMIT_LOCK:
        if _LIMIT_DEPTH == 0:
            _RESTORE[:] = [(lib, lib.num_threads) for lib in libraries]
            for lib, n in _RESTORE:
                if n != 1:
                    lib.set_num_threads(1)
        _LIMIT_DEPTH += 1
    try:
        yield
    finally:
        with _LIMIT_LOCK:
            _LIMIT_DEPTH -= 1
            if _LIMIT_DEPTH == 0:
                for lib, n in _RESTORE:
                    if n != 1:
                        lib.set_num_threads(n)


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
        chunks = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        pool = _pool(len(chunks) - 1)
        futures = [(pool.submit(kernel, a, b), a, b) for a, b in chunks[1:]]
        # The calling thread takes the first chunk, then any chunk no helper has
        # started yet: on a busy machine, where a helper may not be scheduled
        # for a while, the call then costs no more than running serially.
        kernel(*chunks[0])
        for fut, a, b in futures:
            if fut.cancel():
                kernel(a, b)
            else:
                fut.result()
