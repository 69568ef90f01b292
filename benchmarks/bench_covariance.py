"""Covariance estimation benchmarks: neuroenc against pyRiemann 0.12 and plain numpy in the same run.

Cases:

- ``scm``, ``lwf``, ``oas`` on 1000 trials x 64 channels x 500 samples against
  ``pyriemann.estimation.Covariances`` and against the plain batched product
  ``X @ X.transpose(0, 2, 1)`` (no centring, no checks: a floor for any
  sample covariance);
- ``scm`` scaling with the number of channels (8, 22, 64, 128; 1000 trials)
  and of trials (100, 1000, 4000; 64 channels; the 1000 x 64 rows are the first case);
- augmented covariance (order 4, lag 2, so 256 x 256 matrices) against
  MOABB's ``AugmentedDataset`` followed by pyRiemann's ``Covariances``.

Run: ``python benchmarks/bench_covariance.py``. Prints medians of repeated
runs (neuroenc and its references timed in alternation) and ratios
(reference time / neuroenc time; above 1 means neuroenc is faster).
neuroenc uses all cores (``n_jobs=None``), as numpy's BLAS does.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from moabb.pipelines.features import AugmentedDataset
from pyriemann.estimation import Covariances as PyrCovariances

sys.path.insert(0, str(Path(__file__).parent))
from _timing import print_table  # noqa: E402

from neuroenc.riemann import augmented_covariances, covariances  # noqa: E402

REPEAT = 5


def epochs(n_trials: int, n_channels: int, n_times: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((n_channels, n_channels)) / np.sqrt(n_channels)
    return np.einsum("ij,njt->nit", mixing, rng.standard_normal((n_trials, n_channels, n_times)))


def batched_product(X: np.ndarray) -> np.ndarray:
    return X @ X.transpose(0, 2, 1)


def interleaved_medians(fns: list[Callable[[], object]], repeat: int = REPEAT) -> list[float]:
    """Median wall time of each function, timed in alternation after one warm-up run each.

    Alternating spreads the load of a shared machine evenly over the competitors.
    """
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def main() -> None:
    rows = []
    X = epochs(1000, 64, 500)
    for estimator in ("scm", "lwf", "oas"):
        ours, ref, floor = interleaved_medians(
            [
                lambda e=estimator: covariances(X, e),
                lambda e=estimator: PyrCovariances(e).transform(X),
                lambda: batched_product(X),
            ]
        )
        rows.append((f"{estimator}: 1000 x 64 x 500", ours, ref, f"pyRiemann Covariances('{estimator}')"))
        rows.append((f"{estimator}: 1000 x 64 x 500", ours, floor, "numpy X @ X.transpose(0, 2, 1)"))

    for n_trials, n_channels in ((1000, 8), (1000, 22), (1000, 128), (100, 64), (4000, 64)):
        Xs = epochs(n_trials, n_channels, 500, seed=n_channels + n_trials)
        ours, ref, floor = interleaved_medians(
            [
                lambda Xs=Xs: covariances(Xs),
                lambda Xs=Xs: PyrCovariances("scm").transform(Xs),
                lambda Xs=Xs: batched_product(Xs),
            ],
            3 if n_trials > 1000 else REPEAT,
        )
        case = f"scm: {n_trials} trials x {n_channels} ch x 500"
        rows.append((case, ours, ref, "pyRiemann Covariances('scm')"))
        rows.append((case, ours, floor, "numpy batched product"))

    Xa = epochs(200, 64, 500, seed=1)
    moabb = AugmentedDataset(order=4, lag=2)
    for estimator in ("scm", "lwf"):
        ours, ref = interleaved_medians(
            [
                lambda e=estimator: augmented_covariances(Xa, 4, 2, e),
                lambda e=estimator: PyrCovariances(e).transform(moabb.transform(Xa)),
            ],
            3,
        )
        rows.append((f"augmented {estimator}: 200 x 64 x 500, order 4 lag 2", ours, ref, "MOABB + pyRiemann"))

    print_table(rows)


if __name__ == "__main__":
    main()
