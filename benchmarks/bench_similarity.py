"""Representation-similarity benchmarks: all-pairs CKA and RSA over network layers.

Case (the issue's): 20 layers x 1000 stimuli x 4096 units (float64), all 190
pairs.

* Linear CKA. neuroenc: ``pairwise("cka", layers)`` computes each layer's
  centred 1000 x 1000 Gram matrix once, then all pairs as one product of the
  stacked, normalised Grams. References, per pair as most code does:
  "numpy features" centres X and Y and evaluates
  ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` from the 4096 x 4096 feature
  products; "numpy Grams" is Kornblith et al.'s per-pair Gram route; "torch
  features" and "torch Grams (H K H)" are the same in torch (the latter
  centring with the n x n matrix ``H``, as common torch CKA code does).
* RSA (correlation-distance RDMs, Spearman comparison). neuroenc:
  ``pairwise("rsa", layers)``: one RDM per layer, ranked once, all pairs as
  one product. References: rsatoolbox 0.3.2 (``calc_rdm`` per layer, then
  one ``compare`` of all RDMs) and a per-pair scipy loop (``pdist`` of both
  layers, ``spearmanr``).
* Shape metric (smaller: 10 layers x 500 stimuli x 256 units, alpha=0.5):
  ``pairwise("shape")`` (one whitening per layer) against per-pair
  ``shape_distance`` calls.

Per-pair references are timed on ``--pairs`` sampled pairs (median per
pair) and multiplied by the number of pairs, so that the run stays short;
the rows say so. Each sampled value is checked against neuroenc's.

Run: ``python benchmarks/bench_similarity.py [--quick] [--pairs 3]``.
Ratios are reference time / neuroenc time (above 1: neuroenc is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

from neuroenc.similarity.all_pairs import pairwise  # noqa: E402
from neuroenc.similarity.shape import shape_distance  # noqa: E402


def make_layers(n_layers: int, n: int, p: int, seed: int = 0) -> list[np.ndarray]:
    """Layers that drift away from a shared low-rank signal with depth, like a network's."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, 64))
    layers = []
    for i in range(n_layers):
        mix = rng.standard_normal((64, p)) / 8
        layers.append(np.maximum(signal @ mix + (0.2 + i / n_layers) * rng.standard_normal((n, p)), 0.0))
    return layers


def per_pair_total(fn: Callable, layers: list[np.ndarray], pairs: list[tuple[int, int]], expected: np.ndarray):
    """Median time of ``fn(X, Y)`` over the sampled pairs, times the number of pairs; and the largest error."""
    times, errors = [], []
    for i, j in pairs:
        t0 = time.perf_counter()
        value = float(fn(layers[i], layers[j]))
        times.append(time.perf_counter() - t0)
        errors.append(abs(value - expected[i, j]))
    n_pairs = len(layers) * (len(layers) - 1) // 2
    return statistics.median(times) * n_pairs, max(errors)


# ----------------------------------------------------------------------
# CKA references
def numpy_features_cka(X, Y):
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    return np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))


def _centre_gram(K):
    means = K.mean(0)
    means -= means.mean() / 2
    return K - means[:, None] - means[None, :]


def numpy_grams_cka(X, Y):
    K, L = _centre_gram(X @ X.T), _centre_gram(Y @ Y.T)
    return np.vdot(K, L) / (np.linalg.norm(K) * np.linalg.norm(L))


def torch_references():
    try:
        import torch
    except ImportError:
        return {}

    def features(X, Y):
        X, Y = torch.from_numpy(X), torch.from_numpy(Y)
        X = X - X.mean(0)
        Y = Y - Y.mean(0)
        num = torch.linalg.norm(Y.T @ X) ** 2
        return (num / (torch.linalg.norm(X.T @ X) * torch.linalg.norm(Y.T @ Y))).item()

    def grams_h(X, Y):
        X, Y = torch.from_numpy(X), torch.from_numpy(Y)
        n = X.shape[0]
        H = torch.eye(n, dtype=X.dtype) - 1.0 / n

        def hsic(A, B):
            return torch.sum((H @ (A @ A.T) @ H) * (H @ (B @ B.T) @ H))

        return (hsic(X, Y) / torch.sqrt(hsic(X, X) * hsic(Y, Y))).item()

    return {"torch features": features, "torch Grams (H K H)": grams_h}


# ----------------------------------------------------------------------
# RSA references
def scipy_rsa(X, Y):
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    return spearmanr(pdist(X, "correlation"), pdist(Y, "correlation"))[0]


def rsatoolbox_rsa(layers: list[np.ndarray], n_timed: int) -> tuple[float, np.ndarray]:
    """calc_rdm timed on ``n_timed`` layers (scaled to all), one compare of all RDMs timed in full."""
    import rsatoolbox

    rdms, times = [], []
    for i, X in enumerate(layers):
        t0 = time.perf_counter()
        rdm = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(X), method="correlation")
        times.append(time.perf_counter() - t0)
        rdms.append(rdm)
        if i + 1 == n_timed:
            break
    # The remaining RDMs are equal to rsatoolbox's (tested); build them cheaply.
    from neuroenc.rsa.compute import compute_rdm

    rdms += [
        rsatoolbox.rdm.RDMs(compute_rdm(X, "correlation").vectors, dissimilarity_measure="correlation")
        for X in layers[n_timed:]
    ]
    all_rdms = rsatoolbox.rdm.concat(rdms)
    t0 = time.perf_counter()
    out = rsatoolbox.rdm.compare(all_rdms, all_rdms, method="spearman")
    compare_time = time.perf_counter() - t0
    return statistics.median(times) * len(layers) + compare_time, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 layers x 500 stimuli x 1024 units")
    parser.add_argument("--pairs", type=int, default=3, help="sampled pairs per per-pair reference")
    args = parser.parse_args()
    n_layers, n, p = (8, 500, 1024) if args.quick else (20, 1000, 4096)
    layers = make_layers(n_layers, n, p)
    rng = np.random.default_rng(1)
    all_pairs = [(i, j) for i in range(n_layers) for j in range(i + 1, n_layers)]
    pairs = [all_pairs[k] for k in rng.choice(len(all_pairs), args.pairs, replace=False)]
    print(f"{n_layers} layers x {n} stimuli x {p} units, float64, {len(all_pairs)} pairs; CPU cores: {os.cpu_count()}")
    rows = []

    # --- linear CKA
    cka = pairwise("cka", layers)
    ours = median_time(lambda: pairwise("cka", layers), repeat=3)
    refs = {"numpy features": numpy_features_cka, "numpy Grams": numpy_grams_cka, **torch_references()}
    for name, fn in refs.items():
        total, err = per_pair_total(fn, layers, pairs, cka)
        rows.append((f"linear CKA, all pairs vs {name}", ours, total, f"{name} (x{len(all_pairs)} pairs)"))
        print(f"  {name}: max |difference| on sampled pairs = {err:.2e}")

    # --- RSA
    rsa = pairwise("rsa", layers)
    ours = median_time(lambda: pairwise("rsa", layers), repeat=3)
    total, err = per_pair_total(scipy_rsa, layers, pairs, rsa)
    rows.append(("RSA (correlation, spearman) vs scipy pairs", ours, total, f"scipy (x{len(all_pairs)} pairs)"))
    print(f"  scipy RSA: max |difference| on sampled pairs = {err:.2e}")
    try:
        total, ref = rsatoolbox_rsa(layers, n_timed=2)
        rows.append(("RSA (correlation, spearman) vs rsatoolbox", ours, total, "rsatoolbox (calc_rdm x2 scaled)"))
        print(f"  rsatoolbox RSA: max |difference| = {np.abs(ref - rsa).max():.2e}")
    except ImportError:
        pass

    # --- shape metric: per-layer whitening reused across pairs
    small = make_layers(10, 500, 256, seed=2)
    small_pairs = [(i, j) for i in range(10) for j in range(i + 1, 10)]
    ours = median_time(lambda: pairwise("shape", small, alpha=0.5), repeat=3)
    ref = median_time(lambda: [shape_distance(small[i], small[j], 0.5) for i, j in small_pairs], repeat=1)
    rows.append(("shape (alpha=0.5), 10 x 500 x 256", ours, ref, "shape_distance per pair"))

    print()
    print_table(rows)


if __name__ == "__main__":
    main()
