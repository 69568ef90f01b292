"""numba compile and cache-load times of neuroenc's compiled paths.

For each public function that runs a kernel, a fresh interpreter with an
empty ``NUMBA_CACHE_DIR`` times its first call on a tiny input (this is
what a user pays once after installing), then another fresh interpreter
with the now-filled cache times the first call again (every later process).

Run: ``python benchmarks/bench_numba_compile.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

# name -> (setup code, call code); inputs are tiny so the time is compilation/loading.
_COV = "import numpy as np; from neuroenc.riemann import covariances; "
_DATA = "X = np.random.default_rng(0).standard_normal((4, 3, 50))"
_SPD = "C = covariances(np.random.default_rng(0).standard_normal((4, 3, 50)))"

CASES = {
    "covariances scm": (
        _COV + _DATA,
        "covariances(X, 'scm')",
    ),
    "covariances lwf": (
        _COV + _DATA,
        "covariances(X, 'lwf')",
    ),
    "covariances oas": (
        _COV + _DATA,
        "covariances(X, 'oas')",
    ),
    "pairwise_distance riemann": (
        _COV + "from neuroenc.riemann import pairwise_distance; " + _SPD,
        "pairwise_distance(C, metric='riemann')",
    ),
    "pairwise_distance logeuclid": (
        _COV + "from neuroenc.riemann import pairwise_distance; " + _SPD,
        "pairwise_distance(C, metric='logeuclid')",
    ),
    "mean riemann": (
        _COV + "from neuroenc.riemann import mean; " + _SPD,
        "mean(C, metric='riemann')",
    ),
    "TangentSpace fit_transform": (
        _COV + "from neuroenc.riemann import TangentSpace; " + _SPD,
        "TangentSpace().fit_transform(C)",
    ),
}

PROBE = """
import json, time
t0 = time.perf_counter()
{setup}
t1 = time.perf_counter()
{call}
t2 = time.perf_counter()
print(json.dumps({{"setup": t1 - t0, "first_call": t2 - t1}}))
"""


def first_call(setup: str, call: str, cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup, call=call)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["first_call"]


def main() -> None:
    print(f"{'function':<30} {'fresh cache':>12} {'cached':>9}")
    for name, (setup, call) in CASES.items():
        with tempfile.TemporaryDirectory() as cache:
            fresh = first_call(setup, call, cache)
            cached = first_call(setup, call, cache)
        print(f"{name:<30} {fresh:11.2f}s {cached:8.2f}s")


if __name__ == "__main__":
    main()
