"""HeldLock: the results store's lock file kept open between holds."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time

import pytest

from neuroenc._h5 import HeldLock

fcntl = pytest.importorskip("fcntl")

PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("held")
else:
    print("free")
"""


def held_elsewhere(lock: HeldLock) -> bool:
    """Whether another process would have to wait for the lock."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(lock.lock_path)], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "held"


def test_reentrant_and_released_after_the_outer_block(tmp_path):
    lock = HeldLock(tmp_path / "r.h5")
    with lock():
        with lock():
            assert held_elsewhere(lock)
        assert held_elsewhere(lock)  # the inner block does not release the outer one's lock
    assert not held_elsewhere(lock)
    lock.close()
    with lock():  # reopened after close
        assert held_elsewhere(lock)


def test_threads_of_one_process_exclude_each_other(tmp_path):
    lock = HeldLock(tmp_path / "r.h5")
    events = []

    def work(name):
        for _ in range(5):
            with lock():
                events.append(("in", name))
                time.sleep(0.002)
                events.append(("out", name))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(events) == 30
    for enter, leave in zip(events[::2], events[1::2]):  # never two holders at once
        assert enter[0] == "in" and leave == ("out", enter[1])


def _child_takes(lock: HeldLock, flag) -> None:
    with lock():
        flag.value = 1


def test_forked_child_and_unpickled_copy_wait_for_the_holder(tmp_path):
    lock = HeldLock(tmp_path / "r.h5")
    copy = pickle.loads(pickle.dumps(lock))
    assert copy.lock_path == lock.lock_path
    ctx = multiprocessing.get_context("fork")
    for other in (lock, copy):
        flag = ctx.Value("i", 0)
        with lock():
            child = ctx.Process(target=_child_takes, args=(other, flag))
            child.start()
            time.sleep(0.3)
            assert flag.value == 0  # the child opened its own lock file and waits
        child.join(10)
        assert flag.value == 1 and child.exitcode == 0


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_dropped_locks_close_their_file(tmp_path):
    def open_files():
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    for i in range(20):
        lock = HeldLock(tmp_path / f"r{i}.h5")
        with lock():
            assert open_files() == before + 1
        del lock
    gc.collect()
    assert open_files() == before
