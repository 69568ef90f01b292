"""Pipeline statistics: neuroenc against MOABB's ``meta_analysis`` on the same scores.

Cases (4 pipelines, random subject scores):

* exact permutation paired t-test at n = 12, 16, 20 subjects (2**n sign
  flips); reference: ``moabb.analysis.meta_analysis._pairedttest_exact`` on
  the same (n, 4, 4) difference array (identical p-values checked);
* randomised test at n = 30 subjects, 10000 flips, same seed (identical p-values checked);
* ``compute_dataset_statistics`` on 5 datasets of 5-25 subjects, 2 sessions.

Run: ``python benchmarks/bench_evaluation_statistics.py [--quick]`` (``--quick``
skips MOABB's n = 20 exact test, which takes tens of seconds). Prints medians
and ratios (reference time / neuroenc time; above 1 means neuroenc is faster).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from moabb.analysis import meta_analysis as ma

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

from neuroenc.evaluation.statistics import compute_dataset_statistics, permutation_paired_t  # noqa: E402

N_PIPELINES = 4


def _scores(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 0.9, size=(n, 1)) + 0.03 * rng.normal(size=(n, N_PIPELINES))


def _differences(X: np.ndarray) -> np.ndarray:
    return X[:, :, None] - X[:, None, :]


def _results_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, n in [("A", 5), ("B", 12), ("C", 15), ("D", 19), ("E", 25)]:
        for subject in range(1, n + 1):
            base = rng.uniform(0.5, 0.9)
            for session in ("0", "1"):
                for k in range(N_PIPELINES):
                    rows.append(
                        {
                            "dataset": dataset,
                            "subject": subject,
                            "session": session,
                            "pipeline": f"p{k}",
                            "score": base + 0.03 * rng.normal(),
                            "time": 0.1,
                            "samples": 100,
                        }
                    )
    return pd.DataFrame(rows)


def main(quick: bool = False) -> None:
    rows = []
    for n in (12, 16, 20):
        X = _scores(n, n)
        ours = median_time(lambda X=X: permutation_paired_t(X, exact_max_subjects=20), repeat=5)
        ref = None
        if not (quick and n == 20):
            D = _differences(X)
            expected = ma._pairedttest_exact(D)
            assert np.array_equal(permutation_paired_t(X, exact_max_subjects=20), expected)
            ref = median_time(lambda D=D: ma._pairedttest_exact(D), repeat=1 if n >= 16 else 3, warmup=0)
        rows.append((f"exact permutation t, n={n}, 4 pipelines", ours, ref, "moabb _pairedttest_exact"))

    X = _scores(30, 1)
    D = _differences(X)
    assert np.array_equal(
        permutation_paired_t(X, exact_max_subjects=20, random_state=7), ma._pairedttest_random(D, 10000, seed=7)
    )
    ours = median_time(lambda: permutation_paired_t(X, exact_max_subjects=20, random_state=7), repeat=5)
    ref = median_time(lambda: ma._pairedttest_random(D, 10000, seed=7), repeat=3)
    rows.append(("random permutation t, n=30, 10000 flips", ours, ref, "moabb _pairedttest_random"))

    df = _results_frame()
    ours = median_time(lambda: compute_dataset_statistics(df, random_state=0), repeat=5)
    ref = median_time(lambda: ma.compute_dataset_statistics(df), repeat=3)
    rows.append(("compute_dataset_statistics, 5 datasets", ours, ref, "moabb compute_dataset_statistics"))
    print_table(rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
