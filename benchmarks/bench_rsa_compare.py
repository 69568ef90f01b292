"""RDM comparison benchmarks: neuroenc against rsatoolbox 0.3.2 in the same run, on the same inputs.

Cases: 50 x 20 comparisons of 100-condition RDMs (4950 pairs) with every
method of :func:`neuroenc.rsa.comparisons.compare`, and 200 bootstrap-like
batches with NaN-masked pairs via :func:`neuroenc.rsa.comparisons.compare_vectors`
(rsatoolbox: one ``compare`` call per batch entry).

RDMs: 50 "data" RDMs are Euclidean distances of noisy 100 x 20 patterns; the
20 "model" RDMs are continuous, except 5 that take 2 levels and 5 that take
6 levels (ties, as categorical models).

Run: ``python benchmarks/bench_rsa_compare.py [--quick]``. Prints medians of
repeated runs (the two libraries timed in alternation) and ratios (rsatoolbox
time / neuroenc time; above 1 means neuroenc is faster). neuroenc uses all
cores (``n_jobs=None``) in the wall-time rows; the "1 thread, CPU s" rows time
the CPU of the calling thread with ``n_jobs=1``, which other processes on a
shared machine do not inflate.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rsatoolbox.rdm import RDMs as RsaRDMs
from rsatoolbox.rdm import compare as rsa_compare
from scipy.spatial.distance import pdist

sys.path.insert(0, str(Path(__file__).parent))
from _timing import print_table  # noqa: E402

from neuroenc.rsa import RDMs  # noqa: E402
from neuroenc.rsa.comparisons import compare, compare_vectors  # noqa: E402

N_COND = 100
METHODS = [
    ("kendall_tau_a", "tau-a"),
    ("spearman", "spearman"),
    ("rho_a", "rho-a"),
    ("pearson", "corr"),
    ("cosine", "cosine"),
    ("kendall_tau_b", "tau-b"),
    ("cosine_cov", "cosine_cov"),
    ("pearson_cov", "corr_cov"),
]


def make_rdms(n_data: int = 50, n_models: int = 20, n_cond: int = N_COND, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_cond, 20))
    data = np.stack([pdist(base + rng.standard_normal(base.shape)) for _ in range(n_data)])
    models = np.stack([pdist(rng.standard_normal((n_cond, 5))) for _ in range(n_models)])
    labels = rng.integers(0, 6, (10, n_cond))
    for k in range(10):
        lab = labels[k] % 2 if k < 5 else labels[k]
        models[k] = pdist(lab[:, None].astype(float), lambda u, v: float(u[0] != v[0]) * (1 + (u[0] + v[0]) % 3))
    return data, models


def bootstrap_batch(data: np.ndarray, models: np.ndarray, n_boot: int, seed: int = 1):
    """Condition-bootstrap samples: pairs of a repeated condition are NaN."""
    from neuroenc.rsa.rdms import to_matrices, to_vectors

    rng = np.random.default_rng(seed)
    dm, mm = to_matrices(data), to_matrices(models)
    a, b = [], []
    for _ in range(n_boot):
        idx = np.sort(rng.integers(0, N_COND, N_COND))
        same = idx[:, None] == idx[None, :]
        np.fill_diagonal(same, False)
        sub_d = np.where(same, np.nan, dm[:, idx][:, :, idx])
        sub_m = np.where(same, np.nan, mm[:, idx][:, :, idx])
        a.append(to_vectors(sub_m))
        b.append(to_vectors(sub_d))
    return np.stack(a), np.stack(b)


def alternating_medians(
    ours: Callable[[], object], ref: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> tuple[float, float]:
    """Median times of ``ours`` and ``ref``, timed in alternation after a warm-up run each.

    Alternating spreads the load of a shared machine evenly over both.
    """
    ours()
    ref()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, ts in zip((ours, ref), times):
            t0 = clock()
            fn()
            ts.append(clock() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def main(quick: bool = False) -> None:
    data, models = make_rdms()
    # each library gets its own containers, built outside the timed calls
    ne_data, ne_models = RDMs(data), RDMs(models)
    rsa_data, rsa_models = RsaRDMs(data), RsaRDMs(models)
    repeat = 3 if quick else 21
    rows = []
    for ours, theirs in METHODS:
        slow = theirs in ("tau-a", "tau-b")
        t_ours, t_ref = alternating_medians(
            lambda ours=ours: compare(ne_data, ne_models, ours),
            lambda theirs=theirs: rsa_compare(rsa_data, rsa_models, method=theirs),
            repeat=3 if slow else repeat,
        )
        diff = np.max(np.abs(compare(ne_data, ne_models, ours) - rsa_compare(rsa_data, rsa_models, method=theirs)))
        rows.append((f"50x20, {N_COND} cond: {ours} (max|diff| {diff:.0e})", t_ours, t_ref, f"rsatoolbox {theirs}"))

    # CPU time of the calling thread, neuroenc on one thread: insensitive to
    # other processes competing for the cores of a shared machine
    for ours, theirs in METHODS[:3]:
        t_ours, t_ref = alternating_medians(
            lambda ours=ours: compare(ne_data, ne_models, ours, n_jobs=1),
            lambda theirs=theirs: rsa_compare(rsa_data, rsa_models, method=theirs),
            repeat=3 if theirs == "tau-a" else repeat,
            clock=time.thread_time,
        )
        rows.append((f"50x20, {N_COND} cond: {ours}, 1 thread, CPU s", t_ours, t_ref, f"rsatoolbox {theirs}"))

    n_boot = 10 if quick else 50
    boot_m, boot_d = bootstrap_batch(data[:10], models[:8], n_boot)
    for ours, theirs in [("spearman", "spearman"), ("kendall_tau_a", "tau-a"), ("rho_a", "rho-a")]:

        def ref_loop(theirs=theirs):
            return np.stack([rsa_compare(RsaRDMs(m), RsaRDMs(d), method=theirs) for m, d in zip(boot_m, boot_d)])

        t_ours, t_ref = alternating_medians(lambda ours=ours: compare_vectors(boot_m, boot_d, ours), ref_loop, 1)
        diff = np.nanmax(np.abs(compare_vectors(boot_m, boot_d, ours) - ref_loop()))
        rows.append((f"{n_boot} boot x 8x10, NaN: {ours} ({diff:.0e})", t_ours, t_ref, f"rsatoolbox {theirs} loop"))
    print_table(rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
