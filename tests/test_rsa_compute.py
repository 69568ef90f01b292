"""RDM computation and noise estimation: parity with rsatoolbox 0.3.2, batching, time-resolved RDMs, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import rsatoolbox
from rsatoolbox.data import Dataset, TemporalDataset
from rsatoolbox.data import noise as rsa_noise
from scipy.spatial.distance import pdist

import neuroenc
from neuroenc.datasets.local import load_grasshopper, load_haxby
from neuroenc.errors import DataError, LabelError, NonFiniteError, NotSPDError, ShapeError, UnknownNameError
from neuroenc.rsa.compute import METHODS, compute_rdm, condition_means, rdm_vectors
from neuroenc.rsa.noise import (
    NOISE_METHODS,
    cov_from_measurements,
    cov_from_residuals,
    cov_from_unbalanced,
    prec_from_measurements,
    prec_from_residuals,
    prec_from_unbalanced,
)
from neuroenc.rsa.rdms import RDMs

TOL = 1e-8


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / np.abs(b).max())


def rsa_rdm(X, conds, method, runs=None, **kwargs) -> np.ndarray:
    """rsatoolbox's ``calc_rdm`` vector (its RuntimeWarnings on casting are not ours)."""
    obs = {"conds": np.asarray(conds)}
    if runs is not None:
        obs["runs"] = np.asarray(runs)
        kwargs.setdefault("cv_descriptor", "runs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rsatoolbox.rdm.calc_rdm(
            Dataset(X, obs_descriptors=obs), method, descriptor="conds", **kwargs
        ).get_vectors()[0]


def design(n_cond=7, n_runs=4, per_cell=2, n_feat=30, seed=0):
    """Random balanced data with a common offset (so that distances are not trivially large)."""
    rng = np.random.default_rng(seed)
    conds = np.tile(np.repeat(np.arange(n_cond), per_cell), n_runs)
    runs = np.repeat(np.arange(n_runs), n_cond * per_cell)
    signal = rng.standard_normal((n_cond, n_feat))
    X = signal[conds] + 0.8 * rng.standard_normal((len(conds), n_feat)) + rng.standard_normal(n_feat)
    return X, conds, runs


# ----------------------------------------------------------------------
# real data
@pytest.fixture(scope="module")
def haxby_betas(haxby_dir):
    return load_haxby("betas", data_dir=haxby_dir.parent)


@pytest.fixture(scope="module")
def haxby_volumes(haxby_dir):
    vols = load_haxby("volumes", data_dir=haxby_dir.parent)
    return vols.data.astype(np.float64)[vols.conditions != "rest"], vols.obs[vols.conditions != "rest"]


@pytest.mark.parametrize(
    "ours, theirs", [("sqeuclidean", "euclidean"), ("correlation", "correlation"), ("crossnobis", "crossnobis")]
)
def test_haxby_betas_match_rsatoolbox(haxby_betas, ours, theirs):
    X, conds, runs = haxby_betas.data, haxby_betas.conditions, haxby_betas.obs["run"].to_numpy()
    rdms = compute_rdm(haxby_betas, ours)  # crossnobis takes the run column as folds
    assert rdms.n_conditions == 8 and list(rdms.conditions) == sorted(set(conds))
    assert rel(rdms.vectors[0], rsa_rdm(X, conds, theirs, runs if ours == "crossnobis" else None)) < TOL
    assert rdms.metadata["method"].tolist() == [ours]


def test_haxby_betas_crossnobis_with_noise_matches_rsatoolbox(haxby_betas):
    X, conds, runs = haxby_betas.data, haxby_betas.conditions, haxby_betas.obs["run"].to_numpy()
    ds = Dataset(X, obs_descriptors={"conds": conds})
    precision = rsa_noise.prec_from_unbalanced(ds, "conds", method="shrinkage_diag")
    want = rsa_rdm(X, conds, "crossnobis", runs, noise=precision)
    for noise in (precision, "shrinkage_diag"):  # given precision, or estimated and whitened
        rdms = compute_rdm(haxby_betas, "crossnobis", noise=noise)
        assert rel(rdms.vectors[0], want) < TOL
    assert rdms.metadata["noise"].tolist() == ["shrinkage_diag"]
    assert rel(prec_from_unbalanced(haxby_betas, method="shrinkage_diag"), precision) < TOL


def test_haxby_volumes_unbalanced_match_rsatoolbox(haxby_volumes):
    X, obs = haxby_volumes
    half = (obs["run"] < 6).to_numpy()
    X, conds, runs = X[half], obs["condition"].to_numpy()[half], obs["run"].to_numpy()[half]
    # drop volumes so that cells hold 5 to 9 volumes: unbalanced within and across folds
    keep = np.ones(len(X), dtype=bool)
    rng = np.random.default_rng(0)
    for idx in pd.DataFrame({"c": conds, "r": runs}).groupby(["c", "r"]).indices.values():
        keep[rng.choice(idx, rng.integers(0, 5), replace=False)] = False
    X, conds, runs = X[keep], conds[keep], runs[keep]
    for ours, theirs in (("correlation", "correlation"), ("crossnobis", "crossnobis")):
        got = compute_rdm(X, ours, conditions=conds, folds=runs).vectors[0]
        assert rel(got, rsa_rdm(X, conds, theirs, runs if ours == "crossnobis" else None)) < TOL
    ds = Dataset(X, obs_descriptors={"conds": conds})
    for method in ("diag", "shrinkage_eye"):
        precision = rsa_noise.prec_from_unbalanced(ds, "conds", method=method)
        want = rsa_rdm(X, conds, "crossnobis", runs, noise=precision)
        assert rel(compute_rdm(X, "crossnobis", conditions=conds, folds=runs, noise=method).vectors[0], want) < TOL
        want = rsa_rdm(X, conds, "mahalanobis", noise=precision)
        assert rel(compute_rdm(X, "mahalanobis", conditions=conds, noise=precision).vectors[0], want) < TOL


def test_haxby_residual_noise_matches_rsatoolbox(haxby_volumes):
    X, obs = haxby_volumes
    first_runs = (obs["run"] < 4).to_numpy()  # 288 volumes: rsatoolbox's estimators loop over rows
    X, conds = X[first_runs], obs["condition"].to_numpy()[first_runs]
    residuals = X - pd.DataFrame(X).groupby(conds).transform("mean").to_numpy()
    for method in NOISE_METHODS:
        want = rsa_noise.cov_from_residuals(residuals, method=method)
        assert rel(cov_from_residuals(residuals, method=method), want) < TOL
    assert rel(prec_from_residuals(residuals, dof=250), rsa_noise.prec_from_residuals(residuals, dof=250)) < TOL


def test_spike_counts_poisson_match_rsatoolbox(data_dir):
    spikes = load_grasshopper(data_dir=data_dir, segment=0.5, bin_size=0.01)  # (20 segments, 2 units, 50 bins)
    X = spikes.data.reshape(20, -1)
    conds, halves = np.arange(20) // 2, np.arange(20) % 2  # a 1-s stretch, observed in two halves
    assert rel(compute_rdm(X, "poisson", conditions=conds).vectors[0], rsa_rdm(X, conds, "poisson")) < TOL
    got = compute_rdm(X, "poisson_cv", conditions=conds, folds=halves, prior_weight=0.3).vectors[0]
    # rsatoolbox 0.3.2 keeps only its last fold's term: make each fold the last one in turn
    terms = [rsa_rdm(X, conds, "poisson_cv", np.where(halves == k, 9, halves), prior_weight=0.3) for k in (0, 1)]
    assert rel(got, np.mean(terms, axis=0)) < TOL
    # time-resolved: per-bin Poisson RDMs of the two units
    movie = compute_rdm(spikes, "poisson", conditions=conds)
    assert movie.n_rdms == 50 and np.allclose(movie.metadata["time"], spikes.times)
    t = 17
    assert rel(movie.vectors[t], rsa_rdm(spikes.data[:, :, t], conds, "poisson")) < TOL


# ----------------------------------------------------------------------
# every method on random data
@pytest.mark.parametrize(
    "ours, theirs, kwargs",
    [
        ("sqeuclidean", "euclidean", {}),
        ("correlation", "correlation", {}),
        ("sqeuclidean", "euclidean", {"remove_mean": True}),
        ("crossnobis", "crossnobis", {}),
        ("crossnobis", "crossnobis", {"remove_mean": True}),
        ("mahalanobis", "mahalanobis", {}),
    ],
)
def test_random_data_match_rsatoolbox(ours, theirs, kwargs):
    X, conds, runs = design()
    cv = ours == "crossnobis"
    got = compute_rdm(X, ours, conditions=conds, folds=runs if cv else None, **kwargs).vectors[0]
    assert rel(got, rsa_rdm(X, conds, theirs, runs if cv else None, **kwargs)) < TOL


def test_euclidean_is_the_root_of_rsatoolbox_euclidean_and_cosine_is_scipy():
    X, conds, _ = design()
    want = rsa_rdm(X, conds, "euclidean")
    assert rel(compute_rdm(X, "euclidean", conditions=conds).vectors[0], np.sqrt(want)) < TOL
    means = condition_means(X, conds).means[0]
    assert rel(compute_rdm(X, "cosine", conditions=conds).vectors[0], pdist(means, "cosine")) < TOL
    assert rel(compute_rdm(X, "correlation", conditions=conds).vectors[0], pdist(means, "correlation")) < TOL


@pytest.mark.parametrize("noise", ["precision", *NOISE_METHODS])
def test_noise_normalised_crossnobis_and_mahalanobis_match_rsatoolbox(noise):
    X, conds, runs = design(n_feat=12, per_cell=3, seed=4)
    estimator = "shrinkage_diag" if noise == "precision" else noise
    precision = rsa_noise.prec_from_unbalanced(Dataset(X, obs_descriptors={"conds": conds}), "conds", method=estimator)
    arg = precision if noise == "precision" else noise
    for method in ("crossnobis", "mahalanobis"):
        got = compute_rdm(X, method, conditions=conds, folds=runs, noise=arg).vectors[0]
        want = rsa_rdm(X, conds, method, runs if method == "crossnobis" else None, noise=precision)
        assert rel(got, want) < TOL


def test_crossnobis_with_per_fold_noise_matches_rsatoolbox():
    X, conds, runs = design(n_feat=10, per_cell=3)
    precisions = [prec_from_unbalanced(X[runs == r], conds[runs == r], method="shrinkage_eye") for r in range(4)]
    want = rsa_rdm(X, conds, "crossnobis", runs, noise=[p.copy() for p in precisions])
    for noise in (precisions, np.stack(precisions)):
        rdms = compute_rdm(X, "crossnobis", conditions=conds, folds=runs, noise=noise)
        assert rel(rdms.vectors[0], want) < TOL
    assert rdms.metadata["noise"].tolist() == ["per-fold precision"]


@pytest.mark.parametrize("noise", [None, "shrinkage_diag"])
def test_unbalanced_crossnobis_matches_rsatoolbox(noise):
    X, conds, runs = design(per_cell=3, seed=2)
    rng = np.random.default_rng(5)
    drop = rng.choice(len(X), 20, replace=False)
    drop = [i for i in drop if ((conds == conds[i]) & (runs == runs[i])).sum() > 1][:12]
    X, conds, runs = np.delete(X, drop, 0), np.delete(conds, drop), np.delete(runs, drop)
    ds = Dataset(X, obs_descriptors={"conds": conds})
    precision = None if noise is None else rsa_noise.prec_from_unbalanced(ds, "conds", method=noise)
    got = compute_rdm(X, "crossnobis", conditions=conds, folds=runs, noise=noise).vectors[0]
    assert rel(got, rsa_rdm(X, conds, "crossnobis", runs, noise=precision)) < TOL


def test_folds_of_different_sizes_balanced_within_folds():
    # run 0 holds 3 observations per condition, runs 1-2 one each: the symmetric fast path with unequal folds
    X, conds, runs = design(n_runs=3, per_cell=3, seed=6)
    keep = (runs == 0) | (np.arange(len(X)) % 3 == 0)
    X, conds, runs = X[keep], conds[keep], runs[keep]
    got = compute_rdm(X, "crossnobis", conditions=conds, folds=runs).vectors[0]
    assert rel(got, rsa_rdm(X, conds, "crossnobis", runs)) < TOL


def test_default_folds_split_by_repetition_like_rsatoolbox():
    X, conds, _ = design(per_cell=1)
    order = np.random.default_rng(0).permutation(len(X))  # repetitions interleaved
    X, conds = X[order], conds[order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = Dataset(X, obs_descriptors={"conds": conds})
        want = rsatoolbox.rdm.calc_rdm(ds, "crossnobis", descriptor="conds").get_vectors()[0]
    assert rel(compute_rdm(X, "crossnobis", conditions=conds).vectors[0], want) < TOL


def test_observations_without_conditions_are_their_own_conditions():
    X = np.random.default_rng(0).standard_normal((5, 9))
    rdms = compute_rdm(X, "sqeuclidean")
    assert rdms.n_conditions == 5 and rel(rdms.vectors[0], pdist(X, "sqeuclidean") / 9) < TOL


def test_three_and_two_conditions():
    X, conds, runs = design(n_cond=3, n_feat=4)
    for method in ("sqeuclidean", "crossnobis", "correlation"):
        got = compute_rdm(X, method, conditions=conds, folds=runs).vectors
        assert got.shape == (1, 3)
        assert rel(got[0], rsa_rdm(X, conds, method.replace("sq", ""), runs if method == "crossnobis" else None)) < TOL
    X, conds, runs = design(n_cond=2, n_feat=4)
    assert compute_rdm(X, "crossnobis", conditions=conds, folds=runs).vectors.shape == (1, 1)


# ----------------------------------------------------------------------
# time-resolved RDMs
def temporal(n_cond=5, n_rep=6, n_feat=8, n_times=23, seed=0):
    rng = np.random.default_rng(seed)
    conds = np.tile(np.arange(n_cond), n_rep)
    runs = np.repeat(np.arange(3), n_cond * n_rep // 3)
    X = rng.standard_normal((len(conds), n_feat, n_times)) + np.sin(np.arange(n_times) / 4)
    return X, conds, runs, np.linspace(-0.1, 0.34, n_times)


@pytest.mark.parametrize(
    "ours, theirs", [("sqeuclidean", "euclidean"), ("correlation", "correlation"), ("crossnobis", "crossnobis")]
)
def test_time_resolved_rdms_match_rsatoolbox_movie(ours, theirs):
    X, conds, runs, times = temporal()
    ds = TemporalDataset(X, obs_descriptors={"conds": conds, "runs": runs}, time_descriptors={"time": times})
    kw = {"cv_descriptor": "runs"} if ours == "crossnobis" else {}
    for window, step in ((None, 1), (4, 3), (23, 1)):
        got = compute_rdm(X, ours, conditions=conds, folds=runs, times=times, window=window, step=step)
        bins = None if window is None else [times[s : s + window] for s in range(0, 23 - window + 1, step)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = rsatoolbox.rdm.calc_rdm_movie(ds, theirs, descriptor="conds", bins=bins, **kw)
        assert rel(got.vectors, want.get_vectors()) < TOL
        assert np.allclose(got.metadata["time"], want.rdm_descriptors["time"], rtol=0, atol=1e-15)


def test_time_resolved_noise_is_pooled_over_time():
    X, conds, runs, _ = temporal(n_feat=6)
    cov = cov_from_unbalanced(X, conds, method="shrinkage_eye")
    residuals = X - condition_means(X, conds).means[0][np.unique(conds, return_inverse=True)[1]]
    flat = residuals.transpose(0, 2, 1).reshape(-1, 6)
    assert rel(cov, rsa_noise.cov_from_residuals(flat, dof=(len(X) - 5) * 23, method="shrinkage_eye")) < TOL
    precision = np.linalg.inv(cov)
    got = compute_rdm(X, "crossnobis", conditions=conds, folds=runs, noise="shrinkage_eye")
    for t in (0, 11, 22):
        assert rel(got.vectors[t], rsa_rdm(X[:, :, t], conds, "crossnobis", runs, noise=precision)) < TOL


def test_braindata_times_descriptors_and_metadata():
    X, conds, runs, times = temporal()
    obs = pd.DataFrame({"condition": [f"c{c}" for c in conds], "run": runs, "subject": "s01"})
    bd = neuroenc.BrainData(X, obs, "eeg", times=times)
    rdms = compute_rdm(bd, "crossnobis", window=5, step=5, metadata={"roi": "occipital"})
    assert isinstance(rdms, RDMs) and rdms.n_rdms == 4 and rdms.method == "crossnobis"
    assert list(rdms.conditions) == ["c0", "c1", "c2", "c3", "c4"]
    assert set(rdms.metadata.columns) == {"method", "subject", "time", "roi"}
    assert (rdms.metadata["subject"] == "s01").all() and (rdms.metadata["roi"] == "occipital").all()
    assert np.allclose(rdms.metadata["time"], [times[s : s + 5].mean() for s in range(0, 19, 5)])
    same = compute_rdm(X, "crossnobis", conditions=obs["condition"], folds=runs, window=5, step=5)
    assert np.array_equal(rdms.vectors, same.vectors)


# ----------------------------------------------------------------------
# low-level functions
def test_condition_means_match_pandas():
    X, conds, runs = design(per_cell=2)
    X, conds, runs = X[1:], conds[1:], runs[1:]  # unbalanced
    cm = condition_means(X, conds, runs)
    assert cm.means.shape == (4, 7, 30) and list(cm.folds) == [0, 1, 2, 3]
    groups = pd.DataFrame(X).groupby([runs, conds])
    assert np.allclose(cm.means.reshape(28, 30), groups.mean().to_numpy(), rtol=1e-13, atol=1e-13)
    assert np.array_equal(cm.counts.reshape(-1), groups.size().to_numpy())
    moved = np.where((runs == 1) & (conds == 0), 1, conds)
    with pytest.raises(LabelError, match="Condition 0 has no observation in fold 1"):
        condition_means(X, moved, runs)


def test_rdm_vectors_batch_equals_one_set_at_a_time():
    rng = np.random.default_rng(0)
    X, conds, runs = design(n_feat=40)
    cm = condition_means(X, conds, runs)
    spheres = np.stack([rng.choice(40, 9, replace=False) for _ in range(6)])  # 6 "searchlight" sets
    folds_sets = cm.means[..., spheres].transpose(2, 0, 1, 3)  # (6, n_folds, n_cond, 9)
    precisions = np.stack([np.linalg.inv(np.cov(rng.standard_normal((50, 9)), rowvar=False)) for _ in range(6)])
    batch = rdm_vectors(folds_sets, "crossnobis", counts=cm.counts, precision=precisions)
    for s in range(6):
        want = rsa_rdm(X[:, spheres[s]], conds, "crossnobis", runs, noise=precisions[s])
        assert rel(batch[s], want) < TOL
    means = condition_means(X, conds).means[0][:, spheres].transpose(1, 0, 2)  # (6, n_cond, 9)
    for method in ("sqeuclidean", "correlation", "cosine", "euclidean"):
        got = rdm_vectors(means.reshape(2, 3, 7, 9), method)  # two batch axes
        assert got.shape == (2, 3, 21)
        one = [compute_rdm(X[:, spheres[s]], method, conditions=conds).vectors[0] for s in range(6)]
        assert rel(got.reshape(6, 21), np.array(one)) < 1e-12


def test_rdm_vectors_gives_nan_for_a_degenerate_set():
    P = np.random.default_rng(0).standard_normal((2, 4, 5))
    P[1, 2] = 3.0  # constant pattern
    out = rdm_vectors(P, "correlation")
    assert np.isfinite(out[0]).all() and np.isnan(out[1, [1, 3, 5]]).all() and np.isfinite(out[1, [0, 2, 4]]).all()


def test_rdm_vectors_bad_inputs():
    P = np.ones((3, 4, 5))
    with pytest.raises(UnknownNameError, match="crossnobis"):
        rdm_vectors(P, "manhattan")
    with pytest.raises(ShapeError, match="n_folds"):
        rdm_vectors(P[0], "crossnobis")
    with pytest.raises(ShapeError, match="at least 2 folds"):
        rdm_vectors(P[:1], "crossnobis")
    with pytest.raises(ShapeError, match="counts"):
        rdm_vectors(P, "crossnobis", counts=np.ones((3, 5)))
    with pytest.raises(DataError, match="counts"):
        rdm_vectors(P, "sqeuclidean", counts=np.ones((3, 4)))
    with pytest.raises(DataError, match="only used by"):
        rdm_vectors(P, "correlation", precision=np.eye(5))
    with pytest.raises(ShapeError, match="precision"):
        rdm_vectors(P, "mahalanobis", precision=np.eye(4))
    with pytest.raises(ShapeError, match="at least 2"):
        rdm_vectors(np.ones((1, 5)), "sqeuclidean")
    with pytest.raises(NonFiniteError):
        rdm_vectors(np.full((3, 4), np.nan), "sqeuclidean")


# ----------------------------------------------------------------------
# noise estimators
@pytest.mark.parametrize("method", NOISE_METHODS)
def test_noise_estimators_match_rsatoolbox(method):
    rng = np.random.default_rng(1)
    R = rng.standard_normal((40, 25)) @ (np.eye(25) + 0.3 * rng.standard_normal((25, 25))) + 1.0
    for dof in (None, 31):
        assert rel(cov_from_residuals(R, dof, method), rsa_noise.cov_from_residuals(R, dof, method)) < TOL
        assert rel(prec_from_residuals(R, dof, method), rsa_noise.prec_from_residuals(R, dof, method)) < TOL
    batch = rng.standard_normal((3, 30, 8))  # e.g. searchlight spheres: one vectorised pass
    want = np.array(rsa_noise.prec_from_residuals(batch, method=method))
    assert rel(prec_from_residuals(batch, method=method), want) < TOL
    runs = [rng.standard_normal((n, 8)) for n in (12, 15)]
    got = cov_from_residuals(runs, method=method)
    assert isinstance(got, list)
    for g, r in zip(got, runs):
        assert rel(g, rsa_noise.cov_from_residuals(r, method=method)) < TOL
    X, conds, _ = design(n_feat=9, per_cell=2)
    ds = Dataset(X, obs_descriptors={"conds": conds})
    pairs = [
        (cov_from_measurements, rsa_noise.cov_from_measurements),
        (prec_from_measurements, rsa_noise.prec_from_measurements),
        (cov_from_unbalanced, rsa_noise.cov_from_unbalanced),
    ]
    for ours, theirs in pairs:
        assert rel(ours(X, conds, method=method), theirs(ds, "conds", method=method)) < TOL


def test_noise_estimator_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(NotSPDError, match="singular"):
        prec_from_residuals(rng.standard_normal((5, 10)), method="full")
    R = rng.standard_normal((20, 4))
    R[:, 2] = 1.0
    with pytest.raises(DataError, match="Feature 2 has zero variance"):
        cov_from_residuals(R, method="shrinkage_diag")
    with pytest.raises(UnknownNameError, match="shrinkage_eye"):
        cov_from_residuals(R, method="ledoit")
    with pytest.raises(ShapeError, match="at least 2"):
        cov_from_residuals(R[:1])
    with pytest.raises(NonFiniteError):
        cov_from_residuals(np.full((3, 2), np.inf))
    with pytest.raises(LabelError, match="cov_from_unbalanced"):
        cov_from_measurements(R, [0, 0, 0] + [1] * 17)
    with pytest.raises(LabelError, match="has 3 entries"):
        cov_from_unbalanced(R, [0, 1, 1])
    with pytest.raises(ShapeError, match="dof"):
        cov_from_residuals(R + rng.standard_normal(R.shape), dof=-1)


# ----------------------------------------------------------------------
# input errors, raised before any work
def test_compute_rdm_errors():
    X, conds, runs = design()
    with pytest.raises(UnknownNameError) as err:
        compute_rdm(X, "manhattan", conditions=conds)
    assert all(m in str(err.value) for m in METHODS)
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(NonFiniteError, match=r"\(3, 4\)"):
        compute_rdm(bad, "correlation", conditions=conds)
    with pytest.raises(LabelError, match="conditions has 55 entries"):
        compute_rdm(X, "correlation", conditions=conds[:-1])
    with pytest.raises(LabelError, match="folds has 55 entries"):
        compute_rdm(X, "crossnobis", conditions=conds, folds=runs[1:])
    with pytest.raises(LabelError, match="at least 2 folds"):
        compute_rdm(X, "crossnobis", conditions=conds, folds=np.zeros(len(X)))
    once, once_conds, _ = design(per_cell=1, n_runs=1)
    with pytest.raises(LabelError, match="at least 2 folds"):
        compute_rdm(once, "crossnobis", conditions=once_conds)  # one repetition: one default fold
    with pytest.raises(LabelError, match="no observation in fold 3"):
        compute_rdm(X[:-2], "crossnobis", conditions=conds[:-2], folds=runs[:-2])
    with pytest.raises(LabelError, match="pass folds"):
        compute_rdm(X[:-1], "poisson_cv", conditions=conds[:-1])
    with pytest.raises(ShapeError, match="at least 2 conditions"):
        compute_rdm(X, "correlation", conditions=np.zeros(len(X)))
    with pytest.raises(DataError, match="only used by"):
        compute_rdm(X, "correlation", conditions=conds, noise="shrinkage_diag")
    with pytest.raises(UnknownNameError, match="shrinkage_diag"):
        compute_rdm(X, "crossnobis", conditions=conds, folds=runs, noise="ledoit")
    with pytest.raises(ShapeError, match=r"expected \(30, 30\)"):
        compute_rdm(X, "mahalanobis", conditions=conds, noise=np.eye(29))
    with pytest.raises(ShapeError, match="one precision per fold"):
        compute_rdm(X, "crossnobis", conditions=conds, folds=runs, noise=[np.eye(30)] * 3)
    with pytest.raises(DataError, match="only used by crossnobis"):
        compute_rdm(X, "mahalanobis", conditions=conds, noise=[np.eye(30)] * 4)
    with pytest.raises(LabelError, match="names a column"):
        compute_rdm(X, "crossnobis", conditions=conds, folds="run")
    with pytest.raises(LabelError, match="pass the condition label"):
        rdms_no_labels = compute_rdm(None, "correlation")  # noqa: F841
    with pytest.raises(ShapeError, match="window"):
        compute_rdm(X, "correlation", conditions=conds, window=3)


def test_compute_rdm_value_errors():
    X, conds, runs, times = temporal()
    with pytest.raises(ShapeError, match=r"window must be .* \[1, 23\]"):
        compute_rdm(X, "correlation", conditions=conds, window=24)
    with pytest.raises(ShapeError, match="step"):
        compute_rdm(X, "correlation", conditions=conds, step=0)
    with pytest.raises(LabelError, match="times has 22 entries"):
        compute_rdm(X, "correlation", conditions=conds, times=times[1:])
    bd = neuroenc.BrainData(X, pd.DataFrame({"condition": conds, "run": runs}), "eeg", times=times)
    with pytest.raises(ShapeError, match="own times"):
        compute_rdm(bd, "correlation", times=times)
    with pytest.raises(UnknownNameError, match="Available"):
        compute_rdm(bd, "crossnobis", folds="session")
    flat = X[:, :, 0].copy()
    flat[conds == 2] = 1.5  # a constant pattern
    with pytest.raises(DataError, match="condition 2 is constant"):
        compute_rdm(flat, "correlation", conditions=conds)
    with pytest.raises(DataError, match="non-negative counts"):
        compute_rdm(flat - 3, "poisson", conditions=conds)
    with pytest.raises(DataError, match="remove_mean"):
        compute_rdm(np.abs(flat), "poisson", conditions=conds, remove_mean=True)
    with pytest.raises(ShapeError, match="prior_lambda"):
        compute_rdm(np.abs(flat), "poisson", conditions=conds, prior_lambda=0)
