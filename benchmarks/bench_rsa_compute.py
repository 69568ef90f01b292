"""RDM computation benchmarks: neuroenc against rsatoolbox 0.3.2 in the same run, on the same inputs.

Cases (random data, float64):

- fMRI-like ROI: 100 conditions x 8 runs (one pattern per condition and
  run, 800 observations) x 2000 voxels:

  * crossnobis over runs without noise model (rsatoolbox multiplies by an
    identity precision), with a given 2000 x 2000 precision, and with the
    noise estimated from the residuals (``noise="shrinkage_diag"`` against
    rsatoolbox's ``prec_from_unbalanced`` followed by ``calc_rdm``);
  * squared Euclidean and correlation of the condition means;

- EEG-like time-resolved RDMs: 40 conditions x 20 trials (5 folds) x 64
  channels x 200 time points: one RDM per time point (squared Euclidean,
  correlation, crossnobis), and 10-sample windows every 5 samples, against
  rsatoolbox's ``calc_rdm_movie`` (a loop over time points);

- searchlight-like batch: 300 sets of 50 features (8 runs x 40 conditions),
  crossnobis, with :func:`neuroenc.rsa.compute.rdm_vectors` on the per-fold
  means against a loop of rsatoolbox ``calc_rdm`` over the sets.

Run: ``python benchmarks/bench_rsa_compute.py``. Prints medians and ratios
(rsatoolbox time / neuroenc time; above 1 means neuroenc is faster).
neuroenc uses all cores (``n_jobs=None``), as numpy's BLAS does for
rsatoolbox.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import rsatoolbox
from rsatoolbox.data import Dataset, TemporalDataset
from rsatoolbox.data.noise import prec_from_unbalanced

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_time, print_table  # noqa: E402

from neuroenc.rsa.compute import compute_rdm, condition_means, rdm_vectors  # noqa: E402

REPEAT = 7
warnings.simplefilter("ignore")  # rsatoolbox's casting warnings


def roi_data(n_cond: int = 100, n_runs: int = 8, n_vox: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    conds = np.tile(np.arange(n_cond), n_runs)
    runs = np.repeat(np.arange(n_runs), n_cond)
    mixing = np.eye(n_vox) + 0.05 * rng.standard_normal((n_vox, n_vox)) / np.sqrt(n_vox)
    X = (rng.standard_normal((n_cond, n_vox))[conds] + rng.standard_normal((len(conds), n_vox))) @ mixing
    return X, conds, runs


def eeg_data(n_cond: int = 40, n_trials: int = 20, n_chan: int = 64, n_times: int = 200, seed: int = 1):
    rng = np.random.default_rng(seed)
    conds = np.tile(np.arange(n_cond), n_trials)
    folds = np.repeat(np.arange(5), n_cond * n_trials // 5)
    X = rng.standard_normal((len(conds), n_chan, n_times)) + np.sin(np.arange(n_times) / 20)
    return X, conds, folds, np.arange(n_times) / 250.0


def timed_once(fn):
    """Wall time and result of one call (for references too slow to repeat)."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def check(ours: np.ndarray, ref: np.ndarray, case: str) -> None:
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    assert err < 1e-8, f"{case}: relative difference {err:.2e}"


def roi_cases(rows: list) -> None:
    X, conds, runs = roi_data()
    ds = Dataset(X, obs_descriptors={"conds": conds, "runs": runs})
    rng = np.random.default_rng(2)
    noise = rng.standard_normal((4000, X.shape[1]))
    precision = np.linalg.inv(noise.T @ noise / 4000)

    def ours_cn(**kw):
        return compute_rdm(X, "crossnobis", conditions=conds, folds=runs, **kw).vectors[0]

    def ref_cn(**kw):
        return rsatoolbox.rdm.calc_rdm(ds, "crossnobis", descriptor="conds", cv_descriptor="runs", **kw).get_vectors()[
            0
        ]

    check(ours_cn(), ref_cn(), "crossnobis")
    rows.append(
        (
            "crossnobis 100 x 8 runs x 2000, no noise",
            median_time(ours_cn, REPEAT),
            median_time(ref_cn, REPEAT),
            "calc_rdm('crossnobis')",
        )
    )
    check(ours_cn(noise=precision), ref_cn(noise=precision), "crossnobis + precision")
    rows.append(
        (
            "crossnobis, given 2000 x 2000 precision",
            median_time(lambda: ours_cn(noise=precision), 5),
            median_time(lambda: ref_cn(noise=precision), 5),
            "calc_rdm('crossnobis', noise=P)",
        )
    )

    def ref_estimated():
        return ref_cn(noise=prec_from_unbalanced(ds, "conds", method="shrinkage_diag"))

    ref_time, ref = timed_once(ref_estimated)
    check(ours_cn(noise="shrinkage_diag"), ref, "crossnobis + estimated noise")
    rows.append(
        (
            "crossnobis, noise='shrinkage_diag' (estimated)",
            median_time(lambda: ours_cn(noise="shrinkage_diag"), 3),
            ref_time,
            "prec_from_unbalanced + calc_rdm",
        )
    )
    for ours_name, ref_name in (("sqeuclidean", "euclidean"), ("correlation", "correlation")):

        def ours(m=ours_name):
            return compute_rdm(X, m, conditions=conds).vectors[0]

        def ref(m=ref_name):
            return rsatoolbox.rdm.calc_rdm(ds, m, descriptor="conds").get_vectors()[0]

        check(ours(), ref(), ours_name)
        rows.append(
            (
                f"{ours_name} 800 obs -> 100 x 2000",
                median_time(ours, REPEAT),
                median_time(ref, REPEAT),
                f"calc_rdm('{ref_name}')",
            )
        )


def time_cases(rows: list) -> None:
    X, conds, folds, times = eeg_data()
    ds = TemporalDataset(X, obs_descriptors={"conds": conds, "folds": folds}, time_descriptors={"time": times})
    bins = [times[s : s + 10] for s in range(0, 191, 5)]
    cases = [
        ("sqeuclidean", "euclidean", {}, None),
        ("correlation", "correlation", {}, None),
        ("crossnobis", "crossnobis", {}, None),
        ("correlation", "correlation", {"window": 10, "step": 5}, bins),
    ]
    for ours_name, ref_name, kw, ref_bins in cases:

        def ours(m=ours_name, kw=kw):
            return compute_rdm(X, m, conditions=conds, folds=folds, times=times, **kw).vectors

        def ref(m=ref_name, b=ref_bins):
            cv = {"cv_descriptor": "folds"} if m == "crossnobis" else {}
            return rsatoolbox.rdm.calc_rdm_movie(ds, m, descriptor="conds", bins=b, **cv).get_vectors()

        ref_time, ref_vectors = timed_once(ref)
        check(ours(), ref_vectors, ours_name)
        label = "windows 10/5" if kw else "200 time points"
        rows.append(
            (
                f"{ours_name}, 800 x 64 x 200, {label}",
                median_time(ours, 5),
                ref_time,
                "calc_rdm_movie" + (" (bins)" if kw else ""),
            )
        )


def searchlight_case(rows: list) -> None:
    X, conds, runs = roi_data(n_cond=40, n_vox=1500, seed=3)
    rng = np.random.default_rng(4)
    sets = np.stack([rng.choice(X.shape[1], 50, replace=False) for _ in range(300)])
    cm = condition_means(X, conds, runs)

    def ours():
        return rdm_vectors(cm.means[..., sets].transpose(2, 0, 1, 3), "crossnobis", counts=cm.counts)

    def ref():
        out = []
        for s in sets:
            ds = Dataset(X[:, s], obs_descriptors={"conds": conds, "runs": runs})
            rdm = rsatoolbox.rdm.calc_rdm(ds, "crossnobis", descriptor="conds", cv_descriptor="runs")
            out.append(rdm.get_vectors()[0])
        return np.array(out)

    ref_time, ref_vectors = timed_once(ref)
    check(ours(), ref_vectors, "searchlight")
    rows.append(("crossnobis, 300 sets x (8 x 40 x 50)", median_time(ours, REPEAT), ref_time, "calc_rdm loop"))


def main() -> None:
    rows: list = []
    roi_cases(rows)
    time_cases(rows)
    searchlight_case(rows)
    print_table(rows)


if __name__ == "__main__":
    main()
