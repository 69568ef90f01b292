"""Scaling of the Riemannian stack with n_channels and n_trials, against pyRiemann.

Run: ``python benchmarks/bench_riemann_scaling.py``. Inputs are covariances
of white noise (500 samples per trial); medians of 3 runs, ratio =
pyRiemann time / neuroenc time.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)

from pyriemann.classification import MDM as PrMDM  # noqa: E402
from pyriemann.geometry.distance import pairwise_distance as pr_pairwise  # noqa: E402
from pyriemann.geometry.mean import mean_riemann as pr_mean  # noqa: E402
from pyriemann.tangentspace import TangentSpace as PrTangentSpace  # noqa: E402

from neuroenc.riemann import MDM, TangentSpace, covariances, mean, pairwise_distance  # noqa: E402


def spd(n_trials: int, n_channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return covariances(rng.standard_normal((n_trials, n_channels, 500)))


def cases(C: np.ndarray, y: np.ndarray, n_pairs: int):
    P = C[:n_pairs]
    return {
        "mean riemann": (lambda: mean(C), lambda: pr_mean(C)),
        "MDM fit+predict": (lambda: MDM().fit(C, y).predict(C), lambda: PrMDM().fit(C, y).predict(C)),
        "TangentSpace fit_transform": (
            lambda: TangentSpace().fit_transform(C),
            lambda: PrTangentSpace().fit_transform(C),
        ),
        f"pairwise riemann {n_pairs}x{n_pairs}": (lambda: pairwise_distance(P), lambda: pr_pairwise(P)),
    }


def row(label: str, ours: float, ref: float) -> None:
    print(f"{label:<44} {ours:9.3f}s {ref:9.3f}s {ref / ours:6.2f}x")


def main() -> None:
    print(f"{'case':<44} {'neuroenc':>10} {'pyRiemann':>10} {'ratio':>7}")
    print("-- vs n_channels (500 trials)")
    for n_channels in (8, 22, 64, 128):
        C = spd(500, n_channels)
        y = np.repeat([0, 1], 250)
        for name, (ours, ref) in cases(C, y, 100).items():
            row(f"{name} @{n_channels} ch", median_time(ours, 3), median_time(ref, 3))
    print("-- vs n_trials (22 channels)")
    for n_trials in (100, 1000, 4000):
        C = spd(n_trials, 22, seed=1)
        y = np.arange(n_trials) % 2
        for name, (ours, ref) in cases(C, y, 100).items():
            if name.startswith("pairwise"):
                continue
            row(f"{name} x{n_trials} trials", median_time(ours, 3), median_time(ref, 3))


if __name__ == "__main__":
    main()
