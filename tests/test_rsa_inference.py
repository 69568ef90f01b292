"""Model evaluation: bootstrap, noise ceiling, tests and results, against rsatoolbox 0.3.2 and plain references."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import rsatoolbox
from matplotlib.container import BarContainer
from rsatoolbox.inference import (
    boot_noise_ceiling,
    eval_bootstrap,
    eval_bootstrap_pattern,
    eval_bootstrap_rdm,
    eval_fixed,
)
from rsatoolbox.inference.bootstrap import bootstrap_sample, bootstrap_sample_pattern
from rsatoolbox.model import ModelFixed
from rsatoolbox.util.inference_util import extract_variances, t_test_nc
from scipy.io import loadmat
from scipy.spatial.distance import squareform
from scipy.stats import false_discovery_control, rankdata

from neuroenc._kernels.bootstrap import bootstrap_evaluate
from neuroenc.errors import LabelError, ShapeError, UnknownNameError
from neuroenc.rsa import _resampling as resampling
from neuroenc.rsa.ceiling import NoiseCeiling, noise_ceiling, normalize_scores, pool_rdms
from neuroenc.rsa.comparisons import compare
from neuroenc.rsa.inference import BootstrapIndices, bootstrap_indices, evaluate, permutation_test
from neuroenc.rsa.rdms import RDMs
from neuroenc.rsa.stats import correct_pvalues

RTOL = 1e-8


def close(ours, ref, rtol=RTOL, atol=1e-14):
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(ref, float), rtol=rtol, atol=atol)


def random_case(n_cond=10, n_subj=5, n_models=3, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    n = n_cond * (n_cond - 1) // 2
    truth = rng.random(n)
    data = truth + rng.random((n_subj, n))
    models = np.vstack([truth + (k + 0.5) * rng.random(n) for k in range(n_models)])
    if ties:
        models[0] = np.round(models[0] * 3)  # a categorical-like model with many ties
    names = [f"m{k}" for k in range(n_models)]
    return RDMs(models, metadata={"model": names}), RDMs(data, metadata={"subject": range(n_subj)})


def rsa_models(models: RDMs):
    return [ModelFixed(str(n), rsatoolbox.rdm.RDMs(v[None])) for n, v in zip(models.metadata["model"], models.vectors)]


@pytest.fixture(scope="module")
def rsa92(rsa92_dir):
    brain = loadmat(rsa92_dir / "92_brainRDMs.mat")["RDMs"]
    mats = np.stack([brain[0, s, k]["RDM"] for s in range(4) for k in range(2)]).astype(float)
    subjects = [str(brain[0, s, 0]["name"][0]).split("|")[1].strip() for s in range(4) for _ in range(2)]
    data = RDMs(mats, metadata={"subject": subjects, "session": [1, 2] * 4})
    mods = loadmat(rsa92_dir / "92_modelRDMs.mat")["Models"][0]
    names = [str(m["name"][0]) for m in mods]
    models = RDMs(np.stack([m["RDM"] for m in mods]).astype(float), metadata={"model": names})
    behav = loadmat(rsa92_dir / "92_behavRDMs.mat")["rdms_behav_92"][0]
    behaviour = RDMs(np.stack([b["RDM"] for b in behav]).astype(float))
    return data, models, behaviour


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox's tqdm and pooling warnings
        yield


# ----------------------------------------------------------------------
# resampling indices
def test_indices_follow_rsatoolbox_random_stream():
    models, data = random_case()
    rdata = data.to_rsatoolbox()
    ours = bootstrap_indices(data, "both", 5, random_state=11)
    np.random.seed(11)
    for i in range(5):
        _, rdm_idx, pattern_idx = bootstrap_sample(rdata)
        assert np.array_equal(ours.rdm[i], rdm_idx) and np.array_equal(ours.pattern[i], pattern_idx)
    ours = bootstrap_indices(data, "pattern", 4, random_state=np.random.RandomState(3))
    np.random.seed(3)
    for i in range(4):
        assert np.array_equal(ours.pattern[i], bootstrap_sample_pattern(rdata)[1])
    assert ours.kind == "pattern" and ours.n_bootstrap == 4 and ours.rdm is None
    gen = bootstrap_indices(data, "rdm", 3, random_state=np.random.default_rng(0))
    assert gen.rdm.shape == (3, data.n_rdms) and gen.kind == "rdm"


# ----------------------------------------------------------------------
# parity of the bootstrap evaluation with rsatoolbox (same draws)
EVALUATORS = {"pattern": eval_bootstrap_pattern, "rdm": eval_bootstrap_rdm, "both": eval_bootstrap}


@pytest.mark.parametrize(
    "method",
    ["spearman", "corr", "cosine", "rho-a", "tau-a", "kendall", "corr_cov", "cosine_cov"],
)
def test_pattern_bootstrap_matches_rsatoolbox(method):
    models, data = random_case(seed=1)
    np.random.seed(5)
    ref = eval_bootstrap_pattern(rsa_models(models), data.to_rsatoolbox(), method=method, N=12)
    ours = evaluate(models, data, method, bootstrap="pattern", n_bootstrap=12, random_state=5)
    assert np.array_equal(np.isnan(ours.scores[:, 0]), np.isnan(ref.evaluations[:, 0]))
    close(ours.scores, ref.evaluations)
    close(ours.ceilings, ref.noise_ceiling.T)


@pytest.mark.parametrize("bootstrap", ["rdm", "both"])
@pytest.mark.parametrize("method", ["spearman", "corr", "tau-a"])
def test_rdm_and_dual_bootstrap_match_rsatoolbox(bootstrap, method):
    models, data = random_case(seed=2, n_cond=9)
    np.random.seed(8)
    ref = EVALUATORS[bootstrap](rsa_models(models), data.to_rsatoolbox(), method=method, N=12)
    ours = evaluate(models, data, method, bootstrap=bootstrap, n_bootstrap=12, random_state=8)
    close(ours.scores, ref.evaluations)
    close(ours.ceilings, ref.noise_ceiling.T)
    assert ours.kind == f"bootstrap_{bootstrap}"


def test_precomputed_indices_give_the_same_samples_as_a_seed():
    models, data = random_case(seed=3)
    idx = bootstrap_indices(data, "both", 10, random_state=1)
    a = evaluate(models, data, "spearman", indices=idx)
    b = evaluate(models, data, "spearman", bootstrap="both", n_bootstrap=10, random_state=1)
    assert np.array_equal(a.indices.rdm, idx.rdm) and np.array_equal(a.indices.pattern, idx.pattern)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.ceilings, b.ceilings)


def test_real_92_image_data_grouped_by_subject_match_rsatoolbox(rsa92):
    data, models, _ = rsa92
    models = models[[0, 2, 3]]
    rdata = data.to_rsatoolbox()
    np.random.seed(2)
    ref = eval_bootstrap(rsa_models(models), rdata, method="spearman", N=6, rdm_descriptor="subject")
    ours = evaluate(models, data, "spearman", bootstrap="both", n_bootstrap=6, rdm_descriptor="subject", random_state=2)
    close(ours.scores, ref.evaluations)
    close(ours.ceilings, ref.noise_ceiling.T)
    # the units are the 4 subjects (rsatoolbox counts the 8 RDMs for the variance correction)
    assert ours.n_units == 4 and ours.dof == 3


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_compiled_path_equals_the_resampled_vectors_on_real_data(rsa92, method, monkeypatch):
    data, models, _ = rsa92
    models = models[[0, 4]]
    idx = bootstrap_indices(data, "both", 3, rdm_descriptor="subject", random_state=0)
    fast = evaluate(models, data, method, indices=idx, rdm_descriptor="subject")
    monkeypatch.setattr(resampling, "FAST_METHODS", frozenset())  # build and compare the resampled RDMs
    generic = evaluate(models, data, method, indices=idx, rdm_descriptor="subject")
    close(fast.scores, generic.scores, rtol=1e-12)
    close(fast.ceilings, generic.ceilings, rtol=1e-12)


def test_missing_pairs_match_rsatoolbox():
    models, data = random_case(seed=4)
    missing = np.zeros(data.n_pairs, bool)
    missing[[3, 20]] = True  # missing in every RDM, as rsatoolbox requires
    models = RDMs(np.where(missing, np.nan, models.vectors), metadata=models.metadata)
    data = RDMs(np.where(missing, np.nan, data.vectors))
    np.random.seed(0)
    ref = eval_bootstrap(rsa_models(models), data.to_rsatoolbox(), method="spearman", N=8)
    ours = evaluate(models, data, "spearman", bootstrap="both", n_bootstrap=8, random_state=0)
    assert np.isfinite(ours.scores).all()
    close(ours.scores, ref.evaluations)
    close(ours.ceilings, ref.noise_ceiling.T)


# ----------------------------------------------------------------------
# the compiled kernel against a plain numpy/scipy reference
def _resampled_vector(vec, counts):
    drawn = np.repeat(np.arange(len(counts)), counts)
    mat = squareform(vec)[np.ix_(drawn, drawn)]
    rows, cols = np.triu_indices(len(drawn), 1)
    keep = drawn[rows] != drawn[cols]
    return mat[rows, cols][keep]


def _similarity(a, b, method):
    if method in ("spearman", "rho_a"):
        a, b = rankdata(a), rankdata(b)
    if method != "cosine":
        a, b = a - a.mean(), b - b.mean()
    if method == "rho_a":
        n = len(a)
        return 12 * a @ b / (n**3 - n)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return a @ b / den if den > 0 else 0.0


def _pool_transform(x, method):
    if method in ("spearman", "rho_a"):
        return rankdata(x)
    if method == "pearson":
        return (x - x.mean()) / x.std()
    return x / np.sqrt(np.mean(x**2))


def reference_sample(M, D, counts, u, groups, method):
    """One bootstrap sample by building the resampled RDMs (repeated subjects included)."""
    Mv = [_resampled_vector(m, counts) for m in M]
    reps = [s for s in range(len(D)) for _ in range(u[s])]
    Dv = {s: _resampled_vector(D[s], counts) for s in set(reps)}
    scores = [np.mean([_similarity(m, Dv[s], method) for s in reps]) for m in Mv]
    drawn = sorted({groups[s] for s in reps})
    lower, upper = [], []
    pool_all = np.mean([_pool_transform(Dv[s], method) for s in reps], axis=0)
    for g in drawn:
        test = [s for s in set(reps) if groups[s] == g]
        rest = [s for s in reps if groups[s] != g] or reps
        pool = np.mean([_pool_transform(Dv[s], method) for s in rest], axis=0)
        lower.append(np.mean([_similarity(pool, Dv[s], method) for s in test]))
        upper.append(np.mean([_similarity(pool_all, Dv[s], method) for s in test]))
    return np.array(scores), np.array([np.mean(lower), np.mean(upper)])


@pytest.mark.parametrize("method", ["pearson", "cosine", "spearman", "rho_a"])
def test_bootstrap_kernel_matches_plain_reference(method):
    rng = np.random.default_rng(4)
    n_cond, n_rdm = 7, 5
    n = n_cond * (n_cond - 1) // 2
    M = np.vstack([rng.random(n), np.round(rng.random(n) * 2), np.full(n, 0.5)])  # ties and a constant model
    D = np.round(rng.random((n_rdm, n)) * 6)  # integer data: many ties
    groups = np.array([0, 0, 1, 2, 2])
    cond_counts = np.array(
        [
            [1] * n_cond,
            [2, 0, 1, 0, 3, 1, 0],
            [0, 0, 0, 3, 2, 2, 0],  # 3 distinct conditions
            [1, 1, 1, 1, 1, 1, 1],
            [7, 0, 0, 0, 0, 0, 0],  # invalid: one condition
        ]
    )
    rdm_counts = np.array([[1, 1, 1, 1, 1], [2, 2, 0, 1, 1], [0, 0, 3, 0, 0], [1, 1, 0, 0, 0], [1] * 5])
    valid = np.array([True, True, True, True, False])
    scores, ceilings = bootstrap_evaluate(method, M, D, cond_counts, rdm_counts, groups, valid, n_jobs=1)
    for b in range(4):
        ref_scores, ref_ceiling = reference_sample(M, D, cond_counts[b], rdm_counts[b], groups, method)
        close(scores[b], ref_scores, rtol=1e-12, atol=1e-14)
        close(ceilings[b], ref_ceiling, rtol=1e-12, atol=1e-14)
    assert np.isnan(scores[4]).all() and np.isnan(ceilings[4]).all()
    assert scores[0, 2] == 0.0 or method == "cosine"  # a constant model has similarity 0
    assert ceilings[2, 0] == ceilings[2, 1]  # one drawn subject: its own pool, as rsatoolbox
    # threads split the samples without changing them
    again = bootstrap_evaluate(method, M, D, cond_counts, rdm_counts, groups, valid, n_jobs=2)
    assert np.array_equal(again[0], scores, equal_nan=True)


# ----------------------------------------------------------------------
# noise ceiling
@pytest.mark.parametrize("method", ["spearman", "corr", "cosine", "tau-a", "corr_cov"])
def test_noise_ceiling_matches_rsatoolbox_on_behavioural_rdms(rsa92, method):
    _, _, behaviour = rsa92
    ref = boot_noise_ceiling(behaviour.to_rsatoolbox(), method=method)
    ours = noise_ceiling(behaviour, method)
    assert isinstance(ours, NoiseCeiling) and ours.lower < ours.upper
    close(ours, ref)


def test_noise_ceiling_grouped_by_subject_matches_rsatoolbox(rsa92):
    data, _, _ = rsa92
    ref = boot_noise_ceiling(data.to_rsatoolbox(), method="spearman", rdm_descriptor="subject")
    close(noise_ceiling(data, "spearman", rdm_descriptor="subject"), ref)
    # one subject: both bounds compare it with its own pool (rsatoolbox's convention)
    one = noise_ceiling(data[:1], "corr")
    assert one.lower == one.upper == pytest.approx(1.0)


def test_pooled_rdm_maximises_mean_similarity():
    _, data = random_case(seed=6)
    pooled = pool_rdms(data, "corr")
    assert pooled.n_rdms == 1
    mean_sim = compare(pooled, data, "corr").mean()
    for other in (data[:1], RDMs(data.vectors.mean(axis=0) + 0.1 * np.random.default_rng(0).random(data.n_pairs))):
        assert compare(other, data, "corr").mean() <= mean_sim + 1e-12


def test_normalized_scores():
    assert normalize_scores(0.3, (0.6, 0.8)) == pytest.approx(0.5)
    np.testing.assert_allclose(normalize_scores([0.35, 0.7], NoiseCeiling(0.6, 0.8), "middle"), [0.5, 1.0])
    assert np.isnan(normalize_scores(0.3, (0.0, 0.8)))
    with pytest.raises(UnknownNameError):
        normalize_scores(0.3, (0.6, 0.8), "best")


# ----------------------------------------------------------------------
# tests, variances and intervals against rsatoolbox's Result
def test_fixed_evaluation_and_t_tests_match_rsatoolbox():
    models, data = random_case(seed=7, n_models=4)
    ref = eval_fixed(rsa_models(models), data.to_rsatoolbox(), method="corr")
    ours = evaluate(models, data, "corr", bootstrap=None)
    assert ours.kind == "fixed" and ours.dof == data.n_rdms - 1
    close(ours.scores, ref.evaluations[0].T)
    close(ours.ceilings[0], ref.noise_ceiling)
    close(ours.means(), ref.get_means())
    close(ours.estimate, ref.get_means())
    close(ours.sem(), ref.get_sem())
    close(ours.p_zero(), ref.test_zero())
    close(ours.p_ceiling(), ref.test_noise())
    close(ours.p_pairwise(), squareform(ref.test_pairwise(), checks=False))
    close(np.vstack(ours.ci(0.9)), np.vstack(ref.get_ci(0.9)))


@pytest.mark.parametrize("bootstrap", ["pattern", "both"])
def test_bootstrap_variances_and_tests_match_rsatoolbox(bootstrap):
    models, data = random_case(seed=8, n_models=4)
    np.random.seed(9)
    ref = EVALUATORS[bootstrap](rsa_models(models), data.to_rsatoolbox(), method="spearman", N=60)
    ours = evaluate(models, data, "spearman", bootstrap=bootstrap, n_bootstrap=60, random_state=9)
    assert ours.dof == ref.dof
    model_var, diff_var, ceiling_var = ours.variances()
    close(model_var, ref.model_var)
    close(diff_var, ref.diff_var)
    close(ceiling_var, ref.noise_ceil_var)
    close(ours.means(), ref.get_means())
    for test in ("t-test", "bootstrap"):
        close(ours.p_zero(test), ref.test_zero(test))
        close(ours.p_pairwise(test), squareform(ref.test_pairwise(test), checks=False))
    close(ours.p_ceiling(), ref.test_noise())
    # rsatoolbox's bootstrap test against the ceiling fails on its own arrays; its definition:
    lower = ref.noise_ceiling[0][:, None]
    close(ours.p_ceiling("bootstrap"), (((lower - ref.evaluations) <= 0).sum(axis=0) + 1) / 60)
    close(np.vstack(ours.ci(0.95)), np.vstack(ref.get_ci(0.95)))
    close(np.vstack(ours.ci(0.8, "percentile")), np.vstack(ref.get_ci(0.8, "bootstrap")))


def test_rdm_bootstrap_ceiling_test_uses_the_ceiling_covariance():
    models, data = random_case(seed=10)
    np.random.seed(1)
    ref = eval_bootstrap_rdm(rsa_models(models), data.to_rsatoolbox(), method="corr", N=50)
    ours = evaluate(models, data, "corr", bootstrap="rdm", n_bootstrap=50, random_state=1)
    close(ours.variances()[0], ref.model_var)
    close(ours.variances()[1], ref.diff_var)
    cov = np.cov(np.concatenate([ref.evaluations.T, ref.noise_ceiling]))
    _, _, ceiling_var = extract_variances(cov, True, data.n_rdms, None)
    close(ours.variances()[2], ceiling_var)
    close(ours.p_ceiling(), t_test_nc(ref.evaluations, ceiling_var[:, 0], np.nanmean(ref.noise_ceiling[0]), ref.dof))


def test_correct_pvalues():
    p = np.array([0.01, 0.04, 0.03, 0.5, np.nan, 0.002])
    ok = ~np.isnan(p)
    fdr = correct_pvalues(p, "fdr")
    close(fdr[ok], false_discovery_control(p[ok]))
    assert np.isnan(fdr[4])
    close(correct_pvalues(p, "bonferroni")[ok], np.minimum(p[ok] * 5, 1))
    holm = correct_pvalues(p, "holm")[ok]
    order = np.argsort(p[ok])
    expected = np.maximum.accumulate(np.sort(p[ok]) * (5 - np.arange(5)))
    close(holm[order], np.minimum(expected, 1))
    assert np.array_equal(correct_pvalues(p, "none"), p, equal_nan=True)
    assert correct_pvalues(np.empty(0)).size == 0
    with pytest.raises(UnknownNameError):
        correct_pvalues(p, "sidak")
    with pytest.raises(ShapeError):
        correct_pvalues([0.1, 1.5])


# ----------------------------------------------------------------------
# permutation test
@pytest.mark.parametrize("method", ["spearman", "corr", "cosine_cov", "tau-a"])
def test_permutation_null_is_the_evaluation_of_permuted_models(method):
    models, data = random_case(seed=12, n_cond=8)
    res = permutation_test(models, data, method, n_permutations=30, random_state=3)
    assert res.null.shape == (30, 3)
    close(res.observed, compare(models, data, method).mean(axis=1), rtol=1e-12)
    perm = np.random.RandomState(3).permutation(8)  # the first permutation drawn
    permuted = RDMs(models.matrices[:, perm][:, :, perm])
    close(res.null[0], compare(permuted, data, method).mean(axis=1), rtol=1e-12)
    close(res.pvalues, (1 + (res.null >= res.observed).sum(axis=0)) / 31)


def test_permutation_test_separates_true_and_random_models(rsa92):
    data, models, _ = rsa92
    rng = np.random.default_rng(0)
    noise = RDMs(rng.random((1, data.n_pairs)), metadata={"model": ["noise"]})
    res = permutation_test([models[[0]], noise], data, "spearman", n_permutations=199, random_state=0)
    table = res.to_frame()
    assert list(table["model"]) == ["animacy", "noise"]
    assert table.loc[0, "p"] == pytest.approx(1 / 200) and table.loc[1, "p"] > 0.05


# ----------------------------------------------------------------------
# results: tables and plots
def test_result_tables_and_plot():
    models, data = random_case(seed=13, n_models=4)
    res = evaluate(models, data, "spearman", bootstrap="pattern", n_bootstrap=40, random_state=0)
    frame = res.to_frame()
    assert list(frame.columns) == [
        "model", "estimate", "mean", "sem", "ci_lower", "ci_upper", "p_zero", "p_ceiling",
        "ceiling_lower", "ceiling_upper", "normalized", "method", "kind",
    ]  # fmt: skip
    assert list(frame["model"]) == ["m0", "m1", "m2", "m3"]
    assert (frame["ci_lower"] < frame["mean"]).all() and (frame["mean"] < frame["ci_upper"]).all()
    close(frame["normalized"], frame["mean"] / frame["ceiling_lower"])
    pairs = res.to_frame("pairwise", correction="bonferroni")
    assert len(pairs) == 6 and set(pairs.columns) >= {"model_a", "model_b", "difference", "p", "p_corrected"}
    close(pairs["p_corrected"], np.minimum(pairs["p"] * 6, 1))
    assert "RSAResult" in repr(res)
    ax = res.plot(error="ci", sort=True)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 1 and len(bars[0]) == 4
    assert ax.get_xticklabels()[0].get_text() == frame.sort_values("mean").iloc[-1]["model"]
    boot_frame = res.to_frame(test="bootstrap")
    assert (boot_frame["p_zero"] >= 1 / 40).all()
    fixed = evaluate(models, data, "spearman", bootstrap=None)
    with pytest.raises(ValueError, match="bootstrap samples"):
        fixed.p_zero("bootstrap")
    fixed.plot()


# ----------------------------------------------------------------------
# bad input
def test_bad_input_is_rejected_before_work():
    models, data = random_case()
    with pytest.raises(LabelError, match="do not match"):
        evaluate(RDMs(models.vectors, conditions=[f"c{i}" for i in range(10)]), data)
    with pytest.raises(LabelError, match="lacks data conditions"):
        evaluate(RDMs(models.vectors[:, :36]), data)  # 9 conditions vs 10
    with pytest.raises(UnknownNameError):
        evaluate(models, data, "euclid")
    with pytest.raises(UnknownNameError):
        evaluate(models, data, bootstrap="subjects")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ShapeError, match="n_bootstrap"):
            evaluate(models, data, n_bootstrap=bad)
    with pytest.raises(ShapeError, match="at least 2 RDM units"):
        evaluate(models, data[:1], bootstrap="rdm", n_bootstrap=5)
    two = RDMs(np.ones((2, 1)))
    with pytest.raises(ShapeError, match="3 condition units"):
        evaluate(RDMs(np.ones(1)), two, bootstrap="pattern", n_bootstrap=5)
    with pytest.raises(ShapeError, match="RDMs object"):
        evaluate(models, data.vectors)
    with pytest.raises(ShapeError):
        evaluate(models.vectors, data)
    with pytest.raises(UnknownNameError):
        evaluate(models, data, rdm_descriptor="session")
    with pytest.raises(LabelError):
        evaluate(models, data, condition_groups=[0, 1, 2])
    with pytest.raises(LabelError, match="unique"):
        evaluate(models, data, names=["a", "a", "b"])
    good = bootstrap_indices(data, "pattern", 3, random_state=0)
    with pytest.raises(ShapeError, match="resample"):
        evaluate(models, data, bootstrap="rdm", indices=good)
    with pytest.raises(ShapeError, match="values in"):
        evaluate(models, data, indices=BootstrapIndices(pattern=np.full((3, 10), 10)))
    with pytest.raises(ShapeError, match="n_bootstrap=4"):
        evaluate(models, data, indices=good, n_bootstrap=4)
    with pytest.raises(ShapeError, match="random_state"):
        bootstrap_indices(data, random_state="seed")
    with pytest.raises(ShapeError, match="n_permutations"):
        permutation_test(models, data, n_permutations=0)


def test_reordered_model_conditions_are_aligned():
    models, data = random_case(seed=14)
    labels = [f"c{i}" for i in range(10)]
    data = RDMs(data.vectors, conditions=labels)
    aligned = RDMs(models.vectors, conditions=labels, metadata=models.metadata)
    shuffled = aligned.subset_conditions(labels[::-1])
    a = evaluate(aligned, data, "spearman", bootstrap=None)
    b = evaluate(shuffled, data, "spearman", bootstrap=None)
    close(a.scores, b.scores, rtol=1e-14)
