"""Thread fan-out of the kernels, the BLAS thread limit and per-thread scratch memory."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from neuroenc._kernels.parallel import effective_n_jobs, run_chunks, single_threaded_blas
from neuroenc._scratch import MAX_SCRATCH_BYTES, scratch


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.mark.parametrize("n_items, n_jobs, min_chunk", [(1, 2, 1), (7, 2, 1), (100, 3, 10), (5, 8, 1), (40, 2, 30)])
def test_run_chunks_covers_every_item_once(n_items, n_jobs, min_chunk):
    seen = np.zeros(n_items, dtype=int)
    lock = threading.Lock()

    def kernel(a, b):
        with lock:
            seen[a:b] += 1

    run_chunks(kernel, n_items, n_jobs, min_chunk)
    np.testing.assert_array_equal(seen, 1)


def test_run_chunks_caller_runs_chunks_no_helper_started():
    # the pool's only helper is kept busy by another call: the caller must run
    # the chunk it queued itself instead of waiting for that helper
    in_helper = threading.Event()
    release = threading.Event()
    names: dict[int, str] = {}

    def blocking(a, b):
        if a == 0:
            in_helper.wait(5)  # so that chunk 1 cannot be taken back by this caller
        else:
            names[a] = threading.current_thread().name
            in_helper.set()
            release.wait(10)

    blocker = threading.Thread(target=run_chunks, args=(blocking, 2, 2))
    blocker.start()
    assert in_helper.wait(5)
    assert names[1].startswith("neuroenc-kernel")
    ran = []
    finished = threading.Event()

    def second():
        run_chunks(lambda a, b: ran.append((a, b, threading.current_thread().name)), 4, 2)
        finished.set()

    t = threading.Thread(target=second, name="second-caller")
    t.start()
    ok = finished.wait(5)
    release.set()
    blocker.join(5)
    t.join(5)
    assert ok, "run_chunks waited for a busy helper"
    assert sorted(ran) == [(0, 2, "second-caller"), (2, 4, "second-caller")]


def test_run_chunks_propagates_errors():
    def kernel(a, b):
        if a > 0:
            raise RuntimeError("chunk failed")

    with pytest.raises(RuntimeError, match="chunk failed"):
        run_chunks(kernel, 10, 2)


def test_effective_n_jobs():
    n = effective_n_jobs(None)
    assert n >= 1 and effective_n_jobs(-1) == n and effective_n_jobs(3) == 3
    assert effective_n_jobs(-(n + 5)) == 1


def test_single_threaded_blas_nests_and_restores():
    import scipy.linalg  # noqa: F401  (its BLAS is among those limited)

    before = _blas_threads()
    with single_threaded_blas():
        with single_threaded_blas():
            assert all(n == 1 for n in _blas_threads())
        # the inner block must not restore while the outer one runs
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before


def test_scratch_reused_per_thread_and_capped():
    a = scratch(1000)
    b = scratch(500)
    assert a.shape == (1000,) and b.shape == (500,) and np.shares_memory(a, b)
    assert not np.shares_memory(scratch(10, slot=1), scratch(10, slot=0))
    other = []
    t = threading.Thread(target=lambda: other.append(scratch(1000)))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], scratch(1000))
    big = MAX_SCRATCH_BYTES // 8 + 1
    assert not np.shares_memory(scratch(big), scratch(big))
