"""Activation statistics and sparse probes: neuroenc against numpy/scipy/scikit-learn formulas on the same inputs.

Cases (synthetic activations, float32 like a network's):

* dimensionality: participation ratio + effective rank of a 1000 x 4096 (fc)
  and a 256 x 50176 (conv, 64 x 28 x 28) layer; reference: one float64
  ``numpy.linalg.svd`` of the centred matrix;
* neural collapse of 1000 x 1024 activations in 10 classes; reference: the
  textbook ``tr(Sw pinv(Sb)) / C`` with 1024 x 1024 scatter matrices;
* unit selectivity of 4096 units (faces vs the rest, FDR); reference:
  ``scipy.stats.ttest_ind`` + ``scipy.stats.false_discovery_control``;
* ANOVA F unit scores of 4096 units in 10 classes; reference: ``sklearn.feature_selection.f_classif``;
* massive activations of 1000 x 4096; reference: a ``numpy.nanmedian`` formula;
* 5-fold k-sparse probes, k = 1, 2, 4, ..., 32, of a 500 x 4096 layer;
  reference: ``cross_val_score`` of ``SelectKBest(f_classif, k) ->
  StandardScaler -> LogisticRegression`` once per k (same folds, solver and scores).

Run: ``python benchmarks/bench_activation_statistics.py [--quick]``. Prints
medians of repeated runs and ratios (reference time / neuroenc time; above 1
means neuroenc is faster).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.stats
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

from neuroenc.activations.probes import probe_layers, unit_scores  # noqa: E402
from neuroenc.activations.statistics import (  # noqa: E402
    effective_rank,
    massive_activations,
    neural_collapse,
    participation_ratio,
    unit_selectivity,
)


def layer(n: int, m: int, seed: int = 0) -> np.ndarray:
    """ReLU activations with a decaying spectrum."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 64)) * np.linspace(3, 0.1, 64)
    X = latent @ rng.standard_normal((64, m)) + 0.5 * rng.standard_normal((n, m))
    return np.maximum(X, 0).astype(np.float32)


def ref_dimensionality(X: np.ndarray) -> tuple[float, float]:
    s = np.linalg.svd(X - X.mean(axis=0, dtype=np.float64), compute_uv=False)
    lam = s**2
    p = s[s > s[0] * 1e-12] / s.sum()
    return lam.sum() ** 2 / (lam**2).sum(), float(np.exp(-(p * np.log(p)).sum()))


def ref_nc1(X: np.ndarray, labels: np.ndarray) -> float:
    X = X.astype(np.float64)
    classes = np.unique(labels)
    mu = np.array([X[labels == c].mean(axis=0) for c in classes])
    W = X - mu[np.searchsorted(classes, labels)]
    Sw = W.T @ W / len(X)
    B = mu - X.mean(axis=0)
    Sb = B.T @ B / len(classes)
    # numpy's default cutoff keeps rounding-noise eigenvalues of the rank-(C-1) Sb; use m * eps as neuroenc
    pinv = np.linalg.pinv(Sb, rtol=Sb.shape[0] * np.finfo(float).eps, hermitian=True)
    return float(np.trace(Sw @ pinv) / len(classes))


def ref_selectivity(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    res = scipy.stats.ttest_ind(X[labels == 0], X[labels != 0], equal_var=False)
    return scipy.stats.false_discovery_control(res.pvalue)


def ref_massive(X: np.ndarray, ratio: float) -> int:
    mag = np.abs(X.astype(np.float64))
    med = np.nanmedian(np.where(mag > 0, mag, np.nan), axis=1)
    return int((mag / med[:, None] > ratio).sum())


def ref_probes(X: np.ndarray, y: np.ndarray, ks: tuple[int, ...], cv) -> list[float]:
    return [
        cross_val_score(
            make_pipeline(
                SelectKBest(f_classif, k=k),
                StandardScaler(),
                LogisticRegression(solver="newton-cholesky", max_iter=1000),
            ),
            X,
            y,
            cv=cv,
        ).mean()
        for k in ks
    ]


def main(quick: bool = False) -> None:
    scale = 4 if quick else 1
    repeat = 3
    fc = layer(1000 // scale, 4096 // scale)
    conv = layer(256 // scale, 50176 // scale, seed=1)
    labels = np.repeat(np.arange(10), len(fc) // 10)
    rows = []

    def case(name, ours, ref, ref_name, check):
        a, b = ours(), ref()
        check(a, b)
        # the calls above were the warm-up runs
        rows.append((name, median_time(ours, repeat, warmup=0), median_time(ref, repeat, warmup=0), ref_name))

    def close(a, b, rtol=1e-6):
        np.testing.assert_allclose(a, b, rtol=rtol)

    for name, X in (("fc", fc), ("conv", conv)):
        case(
            f"PR + effective rank, {name} {X.shape[0]}x{X.shape[1]}",
            lambda X=X: (participation_ratio(X), effective_rank(X)),
            lambda X=X: ref_dimensionality(X),
            "numpy svd",
            close,
        )
    nc_X = fc[:, : 1024 // scale]
    case(
        f"NC1, {nc_X.shape[0]}x{nc_X.shape[1]}, 10 classes",
        lambda: neural_collapse(nc_X, labels).nc1,
        lambda: ref_nc1(nc_X, labels),
        "numpy pinv(Sb)",
        lambda a, b: close(a, b, 1e-5),
    )
    case(
        f"selectivity + FDR, {fc.shape[1]} units",
        lambda: unit_selectivity(fc, labels, 0)["p_adjusted"].to_numpy(),
        lambda: ref_selectivity(fc, labels),
        "scipy ttest_ind",
        lambda a, b: close(a, b, 1e-5),
    )
    case(
        f"ANOVA F scores, {fc.shape[1]} units",
        lambda: unit_scores(fc, labels, "f"),
        lambda: f_classif(fc, labels)[0],
        "sklearn f_classif",
        lambda a, b: close(a, b, 1e-4),
    )
    case(
        f"massive activations, {fc.shape[0]}x{fc.shape[1]}",
        lambda: massive_activations(fc, 5.0).n_massive,
        lambda: ref_massive(fc, 5.0),
        "numpy nanmedian",
        lambda a, b: np.testing.assert_equal(a, b),
    )
    n_probe = 500 // scale
    probe_X = fc[:n_probe].astype(np.float64)
    y = (
        probe_X[:, :8].sum(axis=1) + np.random.default_rng(2).standard_normal(n_probe)
        > np.median(probe_X[:, :8].sum(axis=1))
    ).astype(int)
    ks = (1, 2, 4, 8, 16, 32)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    case(
        f"probes k=1..32, 5 folds, {n_probe}x{probe_X.shape[1]}",
        lambda: probe_layers(probe_X, y, ks, cv=cv, selector="f")["score"].to_numpy(),
        lambda: ref_probes(probe_X, y, ks, cv),
        "sklearn SelectKBest pipeline",
        lambda a, b: close(a, b, 1e-8),
    )
    print_table(rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
