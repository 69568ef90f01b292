"""Per-thread scratch buffers reused across calls.

A fresh multi-megabyte array costs its page faults on first touch (about a
microsecond per 4 KiB page, comparable to ranking the values written into it),
every call: hot loops (bootstrap, searchlights, repeated comparisons) keep
their intermediate arrays here instead. Buffers are per thread, so concurrent
calls never share one, and capped in size, so no large block stays allocated.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["MAX_SCRATCH_BYTES", "scratch"]

#: largest buffer kept between calls; larger requests get a fresh array.
MAX_SCRATCH_BYTES = 16 * 2**20

_LOCAL = threading.local()


def scratch(n: int, slot: int = 0) -> np.ndarray:
    """A float64 array of ``n`` uninitialised values, reused by the next call with the same ``slot``.

    The caller must be done with it before the next call on the same thread
    asks for the same slot: never return it, or a view of it, to a user.
    """
    if 8 * n > MAX_SCRATCH_BYTES:
        return np.empty(n)
    buffers = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = {}
    buf = buffers.get(slot)
    if buf is None or buf.size < n:
        buf = buffers[slot] = np.empty(n)
    return buf[:n]
