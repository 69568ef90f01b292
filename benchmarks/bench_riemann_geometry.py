"""SPD geometry and classifier benchmarks: neuroenc against pyRiemann 0.12 in the same run.

Run: ``python benchmarks/bench_riemann_geometry.py`` (add ``--quick`` for
smaller sizes). Data: covariances of white noise (64 x 500 samples, or 22
channels), as the targets of the SPD-geometry issue state them (and, for
one logm row, the same made ill-conditioned, condition numbers ~1e8, where
neuroenc takes the eigenvalues of LAPACK's divide and conquer). Prints
medians and ratios (reference time / neuroenc time; above 1 means neuroenc is
faster), then the floor of the pairwise Riemannian distance: the bare cost of
the eigenvalue problems it has to solve, measured with LAPACK
(``np.linalg.eigvalsh``) on the preformed whitened matrices, with one and with
two threads, and the same problems through neuroenc's own eigenvalue kernel.

pyRiemann runs with its defaults (numpy's BLAS threading untouched);
neuroenc with ``n_jobs=None`` (all cores, one BLAS thread per kernel thread).
"""

from __future__ import annotations

import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

import neuroenc.riemann as nr  # noqa: E402
from neuroenc._kernels import spd  # noqa: E402
from neuroenc._kernels.parallel import effective_n_jobs, single_threaded_blas  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyriemann.geometry.distance as pr_dist
    import pyriemann.geometry.mean as pr_mean
    from pyriemann.classification import MDM as PrMDM
    from pyriemann.tangentspace import TangentSpace as PrTangentSpace

QUICK = "--quick" in sys.argv


def white_noise_covs(n_matrices: int, n_channels: int, n_times: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n_matrices, n_channels, n_channels))
    for start in range(0, n_matrices, 100):  # in blocks: 1000 x 64 x 500 samples would be 256 MB
        x = rng.standard_normal((min(100, n_matrices - start), n_channels, n_times))
        out[start : start + len(x)] = x @ x.transpose(0, 2, 1) / n_times
    return out


def once(fn) -> float:
    """Wall time of one call (pyRiemann's large cases take tens of seconds)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def count_karcher_passes() -> tuple[int, int]:
    """Eigendecomposition passes over the data of each Riemannian mean (1000 x 64)."""
    from neuroenc._kernels import spd as kernels

    X = white_noise_covs(200, 64, seed=3)
    calls = {"n": 0}
    original = kernels.weighted_matfunc_sum

    def counting(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    kernels.weighted_matfunc_sum = counting
    try:
        nr.mean(X)
    finally:
        kernels.weighted_matfunc_sum = original
    ours = calls["n"]
    pr_calls = {"n": 0}
    pr_logm = pr_mean.logm

    def pr_counting(A):
        pr_calls["n"] += 1
        return pr_logm(A)

    pr_mean.logm = pr_counting
    try:
        pr_mean.mean_riemann(X)
    finally:
        pr_mean.logm = pr_logm
    return ours, pr_calls["n"]


def floor_rows(n_x: int, n_channels: int, label: str) -> list[tuple[str, float, float | None, str]]:
    """Cost of the n_x (n_x - 1) / 2 eigenvalue problems of the pairwise riemann distance."""
    n_pairs = n_x * (n_x - 1) // 2
    X = white_noise_covs(n_x, n_channels, seed=1)
    rng = np.random.default_rng(2)
    # a sample of the pairs, whitened beforehand (all of them would not fit in memory)
    n_sample = min(n_pairs, 3000 if n_channels > 32 else 20000)
    i = rng.integers(0, n_x, n_sample)
    j = (i + 1 + rng.integers(0, n_x - 1, n_sample)) % n_x
    Li = np.linalg.inv(np.linalg.cholesky(X))
    W = Li[i] @ X[j] @ Li[i].transpose(0, 2, 1)
    W = 0.5 * (W + W.transpose(0, 2, 1))
    scale = n_pairs / n_sample

    with single_threaded_blas():
        one = median_time(lambda: np.linalg.eigvalsh(W), 3) * scale
        halves = np.array_split(W, 2)
        with ThreadPoolExecutor(2) as pool:
            two = median_time(lambda: list(pool.map(np.linalg.eigvalsh, halves)), 3) * scale
    ours1 = median_time(lambda: spd.eigvalsh(W, n_jobs=1), 3) * scale
    ours2 = median_time(lambda: spd.eigvalsh(W, n_jobs=2), 3) * scale
    return [
        (f"  floor {label}: LAPACK eigvalsh, 1 thread", one, None, ""),
        (f"  floor {label}: LAPACK eigvalsh, 2 threads", two, None, ""),
        ("  neuroenc eigvalsh kernel, 1 thread", ours1, one, "LAPACK eigvalsh 1 thread"),
        ("  neuroenc eigvalsh kernel, 2 threads", ours2, two, "LAPACK eigvalsh 2 threads"),
    ]


def main() -> None:
    n_big = 200 if QUICK else 1000
    n_pair64 = 120 if QUICK else 500
    n_pair22 = 120 if QUICK else 288
    X = white_noise_covs(n_big, 64)
    X64 = X[:n_pair64]
    X22 = white_noise_covs(n_pair22, 22, seed=5)
    y = np.random.default_rng(4).integers(0, 2, n_big)
    print(f"{effective_n_jobs(None)} cores; white-noise covariances (n_times=500)\n")

    # compile everything before timing
    nr.pairwise_distance(X[:20])
    nr.pairwise_distance(X[:20], metric="logeuclid")
    nr.mean(X[:20])
    nr.MDM().fit(X[:20], y[:20]).predict(X[:20])
    nr.TangentSpace().fit_transform(X[:20])
    spd.eigvalsh(X[:20])

    rows = []
    ours = median_time(lambda: nr.pairwise_distance(X64), 3)
    ref = once(lambda: pr_dist.pairwise_distance(X64))
    rows.append((f"pairwise riemann {n_pair64}x{n_pair64} @64", ours, ref, "pairwise_distance (1 run)"))
    floor64 = floor_rows(n_pair64, 64, f"{n_pair64}x{n_pair64} @64")
    rows += floor64

    ours = median_time(lambda: nr.pairwise_distance(X22), 5)
    ref = median_time(lambda: pr_dist.pairwise_distance(X22), 3)
    rows.append((f"pairwise riemann {n_pair22}x{n_pair22} @22", ours, ref, "pairwise_distance"))
    floor22 = floor_rows(n_pair22, 22, f"{n_pair22}x{n_pair22} @22")
    rows += floor22

    ours = median_time(lambda: nr.pairwise_distance(X64, metric="logeuclid"), 5)
    ref = median_time(lambda: pr_dist.pairwise_distance(X64, metric="logeuclid"), 3)
    rows.append((f"pairwise logeuclid {n_pair64}x{n_pair64} @64", ours, ref, "pairwise_distance"))
    ours = median_time(lambda: nr.pairwise_distance(X, metric="logeuclid"), 3)
    ref = median_time(lambda: pr_dist.pairwise_distance(X, metric="logeuclid"), 3)
    rows.append((f"pairwise logeuclid {n_big}x{n_big} @64", ours, ref, "pairwise_distance"))
    ours = median_time(lambda: nr.pairwise_distance(X64[:200], metric="wasserstein"), 3)
    ref = once(lambda: pr_dist.pairwise_distance(X64[:200], metric="wasserstein"))
    rows.append(("pairwise wasserstein 200x200 @64", ours, ref, "pairwise_distance (1 run)"))

    ours = median_time(lambda: nr.mean(X), 3)
    ref = median_time(lambda: pr_mean.mean_riemann(X), 3)
    rows.append((f"Riemannian mean {n_big} @64", ours, ref, "mean_riemann"))
    ours = median_time(lambda: nr.mean(X, metric="logeuclid"), 3)
    ref = median_time(lambda: pr_mean.mean_logeuclid(X), 3)
    rows.append((f"log-Euclidean mean {n_big} @64", ours, ref, "mean_logeuclid"))
    ours = median_time(lambda: nr.MDM().fit(X, y).predict(X), 3)
    ref = median_time(lambda: PrMDM().fit(X, y).predict(X), 3)
    rows.append((f"MDM fit+predict {n_big} @64", ours, ref, "MDM"))
    ours = median_time(lambda: nr.TangentSpace().fit_transform(X), 3)
    ref = median_time(lambda: PrTangentSpace().fit_transform(X), 3)
    rows.append((f"TangentSpace fit_transform {n_big} @64", ours, ref, "TangentSpace"))
    ours = median_time(lambda: nr.logm(X), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyriemann.geometry.base import logm as pr_logm
    ref = median_time(lambda: pr_logm(X), 3)
    rows.append((f"logm {n_big} @64", ours, ref, "logm"))
    # condition numbers ~1e8: past neuroenc's limit, the eigenvalues come from LAPACK's divide and conquer
    Q, _ = np.linalg.qr(np.random.default_rng(6).standard_normal((64, 64)))
    S12 = (Q * np.logspace(0, -4, 64)) @ Q.T
    X_ill = S12 @ X @ S12
    X_ill = 0.5 * (X_ill + X_ill.transpose(0, 2, 1))
    ours = median_time(lambda: nr.logm(X_ill), 3)
    ref = median_time(lambda: pr_logm(X_ill), 3)
    rows.append((f"logm {n_big} @64, cond ~1e8", ours, ref, "logm"))

    print_table(rows)
    for floor in (floor64, floor22):
        pair_row = rows[rows.index(floor[0]) - 1]
        print(
            f"\n{pair_row[0]}: {pair_row[1] / floor[1][1]:.2f}x the 2-thread LAPACK floor, "
            f"{pair_row[1] / floor[0][1]:.2f}x the 1-thread floor"
        )
    ours_passes, pr_passes = count_karcher_passes()
    print(f"\nKarcher mean (200 x 64): {ours_passes} eigendecomposition passes (pyRiemann: {pr_passes})")


if __name__ == "__main__":
    main()
