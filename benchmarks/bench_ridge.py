"""RidgeCV with one alpha per target against himalaya (5-fold) and scikit-learn (leave-one-out).

Run: ``python benchmarks/bench_ridge.py`` (about 2 minutes on 2 cores;
``--quick`` runs a 10x smaller problem). Each case runs in a fresh
subprocess on the same data (seeded), which reports its wall time, the peak
resident memory of the whole process (``ru_maxrss``, data included) and, in a
second run, the peak of the memory allocated during the fit (tracemalloc,
which numpy reports to). Default problem: n_samples=2000, n_features=500,
n_targets=10000, 15 alphas, float32. neuroenc runs 3 times (median), the
references once. Then neuroenc alone with n_targets up to 100,000 (batched),
next to the floor set by its large matrix products (the same GEMMs timed
alone on random matrices of the same shapes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import print_table  # noqa: E402

N_SAMPLES, N_FEATURES, N_ALPHAS, N_FOLDS = 2000, 500, 15, 5
ALPHAS = np.logspace(-1, 6, N_ALPHAS)


def make_data(n_samples: int, n_features: int, n_targets: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 features and targets with varied signal-to-noise (so selected alphas vary), built in place."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    Y = np.empty((n_samples, n_targets), dtype=np.float32)
    for start in range(0, n_targets, 2000):
        cols = slice(start, min(start + 2000, n_targets))
        k = cols.stop - cols.start
        W = rng.standard_normal((n_features, k), dtype=np.float32) * rng.uniform(0, 0.1, k).astype(np.float32)
        Y[:, cols] = X @ W
        Y[:, cols] += rng.standard_normal((n_samples, k), dtype=np.float32)
    return X, Y


def fitter(case: str):
    """Import what ``case`` needs (before any measurement); return a function fitting it to (X, Y)."""
    from sklearn.model_selection import KFold

    folds = KFold(N_FOLDS)
    if case.startswith("neuroenc"):
        from neuroenc.encoding.ridge import RidgeCV

        cv = None if case.endswith("loo") else folds
        backend = "torch" if "torch" in case else "numpy"
        return lambda X, Y: RidgeCV(ALPHAS, cv=cv, dtype="float32", backend=backend).fit(X, Y).alpha_
    if case == "himalaya-kfold":
        from himalaya.ridge import RidgeCV as HimalayaRidgeCV

        return lambda X, Y: HimalayaRidgeCV(ALPHAS, cv=folds, fit_intercept=True).fit(X, Y).best_alphas_
    if case == "sklearn-loo":
        from sklearn.linear_model import RidgeCV as SkRidgeCV

        return lambda X, Y: SkRidgeCV(ALPHAS, alpha_per_target=True).fit(X, Y).alpha_
    if case == "floor":
        import neuroenc.encoding._solvers  # noqa: F401  imported before timing

        return gemm_floor
    raise ValueError(case)


def gemm_floor(X: np.ndarray, Y: np.ndarray) -> None:
    """The large products of neuroenc's 5-fold path alone, on random matrices of the same shapes."""
    rng = np.random.default_rng(1)
    n, k = X.shape
    n_val = n // N_FOLDS
    right = rng.standard_normal((k, n - n_val), dtype=np.float32)
    A = rng.standard_normal((n_val, k), dtype=np.float32)
    right_all = rng.standard_normal((k, n), dtype=np.float32)
    basis = rng.standard_normal((k, k), dtype=np.float32)
    from neuroenc.encoding._solvers import target_batches

    for cols in target_batches(Y.shape[1], n, Y.itemsize, None):  # neuroenc's default batches
        Yb = Y[:, cols]
        for _ in range(N_FOLDS):
            B = right @ Yb[n_val:]
            for _ in range(N_ALPHAS):
                A @ B
        basis @ (right_all @ Yb)  # refit


def child(case: str, n_targets: int, memory: bool, out: str) -> None:
    warnings.simplefilter("ignore")
    X, Y = make_data(N_SAMPLES, N_FEATURES, n_targets)
    fit = fitter(case)
    if memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    alphas = fit(X, Y)
    seconds = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if memory else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    if alphas is not None:
        np.save(out + ".npy", np.asarray(alphas, dtype=np.float64))
    with open(out, "w") as f:
        json.dump({"seconds": seconds, "peak_rss_mb": rss, "traced_mb": traced}, f)


def run(case: str, n_targets: int, memory: bool = False) -> dict:
    out = f"/tmp/bench_ridge_{os.getpid()}_{case}_{n_targets}_{int(memory)}.json"
    cmd = [sys.executable, __file__, "--child", case, str(n_targets), "1" if memory else "0", out]
    subprocess.run(cmd, check=True)
    with open(out) as f:
        result = json.load(f)
    os.remove(out)
    if Path(out + ".npy").exists():
        result["alphas"] = np.load(out + ".npy")
        os.remove(out + ".npy")
    return result


def compare(ours_case: str, ref_case: str, n_targets: int, repeat: int) -> tuple:
    """Time and memory of one neuroenc case and its reference; a print_table row and a memory line."""
    ours = [run(ours_case, n_targets) for _ in range(repeat)]
    ref = run(ref_case, n_targets)
    t_ours = statistics.median(r["seconds"] for r in ours)
    mem_ours, mem_ref = run(ours_case, n_targets, memory=True), run(ref_case, n_targets, memory=True)
    same = np.mean(np.isclose(ours[0]["alphas"], ref["alphas"], rtol=1e-5))
    memory = (
        f"{ours_case:<22} peak RSS {ours[0]['peak_rss_mb']:6.0f} MB vs {ref['peak_rss_mb']:6.0f} MB; "
        f"allocated during fit {mem_ours['traced_mb']:6.0f} MB vs {mem_ref['traced_mb']:6.0f} MB; "
        f"same alpha for {100 * same:.2f}% of targets"
    )
    return (f"{ours_case} ({n_targets} targets)", t_ours, ref["seconds"], ref_case), memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer targets, no scaling series")
    parser.add_argument("--torch", action="store_true", help="also time the torch backend")
    parser.add_argument("--only", choices=("compare", "scaling"), help="run one part only")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, n_targets, memory, out = args.child
        child(case, int(n_targets), memory == "1", out)
        return
    n_targets = 1000 if args.quick else 10000
    print(
        f"n_samples={N_SAMPLES} n_features={N_FEATURES} n_targets={n_targets} n_alphas={N_ALPHAS} float32, "
        f"{os.cpu_count()} CPUs visible"
    )
    if args.only != "scaling":
        compare_to_references(n_targets, args.torch)
    if args.quick or args.only == "compare":
        return
    scaling()


def compare_to_references(n_targets: int, torch: bool) -> None:
    pairs = [("neuroenc-kfold", "himalaya-kfold"), ("neuroenc-loo", "sklearn-loo")]
    if torch:
        pairs.append(("neuroenc-torch-kfold", "himalaya-kfold"))
    results = [compare(ours, ref, n_targets, repeat=3) for ours, ref in pairs]
    print_table([row for row, _ in results])
    for _, memory in results:
        print(memory)


def scaling() -> None:
    print("\nneuroenc 5-fold vs n_targets (default batches), and the floor of its GEMMs")
    print(f"{'n_targets':>10} {'neuroenc':>9} {'GEMM floor':>10} {'ratio':>6} {'peak RSS':>9}")
    for n in (1000, 10000, 30000, 100000):
        ours, floor = run("neuroenc-kfold", n), run("floor", n)
        print(
            f"{n:>10} {ours['seconds']:8.2f}s {floor['seconds']:9.2f}s "
            f"{ours['seconds'] / floor['seconds']:5.2f}x {ours['peak_rss_mb']:7.0f}MB"
        )


if __name__ == "__main__":
    main()
