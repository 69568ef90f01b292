"""Timing helpers shared by the benchmark scripts: medians of repeated runs."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_subprocess_time(code: str, repeat: int = 5) -> float:
    """Median wall time of ``python -c code`` in fresh interpreters."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def print_table(rows: list[tuple[str, float, float | None, str]]) -> None:
    """Print (case, neuroenc s, reference s, reference name) rows with ratios."""
    print(f"{'case':<46} {'neuroenc':>10} {'reference':>10} {'ratio':>7}  reference")
    for case, ours, ref, ref_name in rows:
        ratio = f"{ref / ours:6.2f}x" if ref else "      -"
        ref_s = f"{ref:9.3f}s" if ref else "         -"
        print(f"{case:<46} {ours:9.3f}s {ref_s} {ratio}  {ref_name}")
