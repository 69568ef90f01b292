"""Fixed and weighted RDM models: non-negative fits, cross-validation over conditions, against rsatoolbox 0.3.2."""

from __future__ import annotations

import signal
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import rsatoolbox
from rsatoolbox.inference import crossval, sets_k_fold
from rsatoolbox.inference.crossvalsets import sets_k_fold_pattern
from rsatoolbox.model import ModelFixed, ModelWeighted
from rsatoolbox.model.fitter import _nn_least_squares, fit_optimize_positive, fit_regress, fit_regress_nn
from rsatoolbox.util.matrix import get_v
from scipy.io import loadmat
from scipy.optimize import nnls
from scipy.stats import rankdata, ttest_1samp

from neuroenc.errors import LabelError, ShapeError, UnknownNameError
from neuroenc.rsa.comparisons import compare
from neuroenc.rsa.inference import evaluate
from neuroenc.rsa.models import (
    WeightedModel,
    _nnls_gram,
    _v_inverse,
    condition_folds,
    crossvalidate,
    fit_weighted,
    model_vectors,
)
from neuroenc.rsa.rdms import RDMs

RTOL = 1e-8


def close(ours, ref, rtol=RTOL, atol=1e-14):
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(ref, float), rtol=rtol, atol=atol)


@contextmanager
def time_limit(seconds):
    """rsatoolbox's active-set NNLS can cycle forever; fail instead of hanging."""

    def stop(signum, frame):
        raise TimeoutError("rsatoolbox did not finish")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def rsa92(rsa92_dir):
    brain = loadmat(rsa92_dir / "92_brainRDMs.mat")["RDMs"]
    mats = np.stack([brain[0, s, k]["RDM"] for s in range(4) for k in range(2)]).astype(float)
    subjects = [str(brain[0, s, 0]["name"][0]).split("|")[1].strip() for s in range(4) for _ in range(2)]
    data = RDMs(mats, metadata={"subject": subjects})
    mods = loadmat(rsa92_dir / "92_modelRDMs.mat")["Models"][0]
    vectors = RDMs(np.stack([m["RDM"] for m in mods]).astype(float)).vectors
    # unit norm: rsatoolbox's NNLS stops on an absolute tolerance and can cycle on the raw scales
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    models = RDMs(vectors, metadata={"model": [str(m["name"][0]) for m in mods]})
    return data, models


def random_components(seed=0, n_cond=10, n_comp=3, n_subj=5):
    rng = np.random.default_rng(seed)
    n = n_cond * (n_cond - 1) // 2
    comp = rng.random((n_comp, n))
    data = comp[0] + 2 * comp[1] + rng.random((n_subj, n))
    return RDMs(comp, metadata={"model": [f"c{i}" for i in range(n_comp)]}), RDMs(data)


# ----------------------------------------------------------------------
# fitting
@pytest.mark.parametrize("select", [[2, 3, 4, 5, 6, 7], [0, 2, 4]])
@pytest.mark.parametrize("method", ["cosine", "corr", "cosine_cov", "corr_cov"])
def test_weights_match_rsatoolbox_regressions_on_real_data(rsa92, select, method):
    data, models = rsa92
    comp = models[select]
    rmodel = ModelWeighted("w", comp.to_rsatoolbox())
    rdata = data.to_rsatoolbox()
    with time_limit(60):
        ref_nn = fit_regress_nn(rmodel, rdata, method=method)
    ref_ols = fit_regress(rmodel, rdata, method=method)
    ours = fit_weighted(comp, data, method)
    assert (ours >= 0).all() and np.linalg.norm(ours) == pytest.approx(1)
    close(ours, ref_nn, rtol=1e-8, atol=1e-10)
    close(fit_weighted(comp, data, method, nonnegative=False), ref_ols, rtol=1e-8, atol=1e-10)


def test_ridge_matches_rsatoolbox():
    comp, data = random_components(seed=1)
    rmodel = ModelWeighted("w", comp.to_rsatoolbox())
    with time_limit(30):
        ref = fit_regress_nn(rmodel, data.to_rsatoolbox(), method="corr", ridge_weight=0.5)
    close(fit_weighted(comp, data, "corr", ridge=0.5), ref, atol=1e-12)
    raw = fit_weighted(comp, data, "corr", normalize=False)
    close(raw / np.linalg.norm(raw), fit_weighted(comp, data, "corr"))


def test_nnls_weights_maximise_the_similarity_to_the_pooled_rdm():
    """The cone projection has the smallest angle: what rsatoolbox's fit_optimize_positive searches for."""
    comp, data = random_components(seed=2, n_cond=8)
    ours = fit_weighted(comp, data, "cosine")
    np.random.seed(0)
    ref = fit_optimize_positive(ModelWeighted("w", comp.to_rsatoolbox()), data.to_rsatoolbox(), method="cosine")
    score = compare(RDMs(ours @ comp.vectors), data, "cosine").mean()
    ref_score = compare(RDMs(ref @ comp.vectors), data, "cosine").mean()
    assert score >= ref_score - 1e-10
    close(ours, ref, rtol=1e-3, atol=1e-3)


def test_nnls_solver_matches_scipy_and_rsatoolbox():
    rng = np.random.default_rng(3)
    for trial in range(5):
        A = rng.standard_normal((40, 6))
        A[:, 5] = A[:, 0] + A[:, 1]  # collinear columns
        y = rng.standard_normal(40)
        ours = _nnls_gram(A.T @ A, A.T @ y)
        ref, _ = nnls(A, y)
        assert (ours >= 0).all()
        # the fitted values are unique even when the weights are not
        close(A @ ours, A @ ref, rtol=1e-9, atol=1e-12)
        if trial == 0:
            B = A[:, :5]
            close(_nnls_gram(B.T @ B, B.T @ y), _nn_least_squares(B, y)[0], atol=1e-12)


def test_whitening_is_the_exact_inverse_of_the_distance_covariance():
    n = 9
    rows, cols = np.triu_indices(n, 1)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3, len(rows)))
    V = get_v(n, None).toarray()
    close(_v_inverse(X, rows, cols, n), np.linalg.solve(V, X.T).T, atol=1e-12)
    keep = rng.random(len(rows)) > 0.3
    Vk = V[np.ix_(keep, keep)]
    close(_v_inverse(X[:, keep], rows[keep], cols[keep], n), np.linalg.solve(Vk, X[:, keep].T).T, atol=1e-12)


@pytest.mark.parametrize("method", ["spearman", "rho_a", "tau-a"])
def test_rank_methods_fit_the_mean_ranks(method):
    comp, data = random_components(seed=5)
    ours = fit_weighted(comp, data, method)
    target = rankdata(data.vectors, axis=1).mean(axis=0)
    surrogate = fit_weighted(comp, RDMs(target), "corr")
    close(ours, surrogate, rtol=1e-10)
    assert ours[1] > ours[0] > ours[2]  # data = c0 + 2 c1 + noise


def test_missing_pairs_are_left_out_of_the_fit():
    comp, data = random_components(seed=6)
    vec = data.vectors.copy()
    vec[2, 4] = np.nan
    ours = fit_weighted(comp, RDMs(vec), "corr")
    keep = np.arange(comp.n_pairs) != 4
    Y = data.vectors[:, keep]
    y = ((Y - Y.mean(axis=1, keepdims=True)) / Y.std(axis=1, keepdims=True)).mean(axis=0)
    X = comp.vectors[:, keep] - comp.vectors[:, keep].mean(axis=1, keepdims=True)
    ref, _ = nnls(X.T, y - y.mean())
    close(ours, ref / np.linalg.norm(ref), atol=1e-12)


def test_weighted_model_object():
    comp, data = random_components(seed=7)
    model = WeightedModel(comp, "mix")
    with pytest.raises(ShapeError, match="not fitted"):
        model.predict()
    model.fit(data, "corr")
    close(model.weights_, fit_weighted(comp, data, "corr"))
    pred = model.predict()
    assert pred.n_rdms == 1 and list(pred.metadata["model"]) == ["mix"]
    close(pred.vectors[0], model.weights_ @ comp.vectors)
    close(model.predict([1, 0, 0]).vectors[0], comp.vectors[0])
    with pytest.raises(ShapeError, match="3 entries"):
        model.predict([1, 2])
    with pytest.raises(ShapeError):
        WeightedModel(comp.vectors)
    with pytest.raises(ShapeError):
        WeightedModel(comp, ridge=-1)
    with pytest.raises(UnknownNameError):
        fit_weighted(comp, data, "euclid")
    with pytest.raises(LabelError):
        fit_weighted(RDMs(comp.vectors, conditions=[f"x{i}" for i in range(10)]), data)
    assert "mix" in repr(model)


# ----------------------------------------------------------------------
# cross-validation
def test_condition_folds_follow_rsatoolbox_partition():
    rdms = RDMs(np.random.default_rng(0).random((2, 45))).to_rsatoolbox()
    for n_folds in (3, 4):
        np.random.seed(6)
        _, ref, _ = sets_k_fold_pattern(rdms, k=n_folds, random=True)
        ours = condition_folds(10, n_folds, random_state=6)
        assert [list(f) for f in ours] == [sorted(t[1]) for t in ref]
    plain = condition_folds(10, 3, shuffle=False)
    assert [list(f) for f in plain] == [[0, 1, 2, 9], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ShapeError):
        condition_folds(4, 5)
    with pytest.raises(ShapeError):
        condition_folds(10, 0)


def test_crossvalidation_matches_rsatoolbox_on_real_data(rsa92):
    data, models = rsa92
    comp = models[[2, 3, 4, 5, 6, 7]]
    fixed = models[[0, 3]]
    rdata = data.to_rsatoolbox()
    rmodels = [ModelFixed(n, v) for n, v in zip(fixed.metadata["model"], fixed.vectors)]
    rmodels.append(ModelWeighted("weighted", comp.to_rsatoolbox()))
    np.random.seed(0)
    train, test, _ = sets_k_fold(rdata, k_rdm=1, k_pattern=5, random=True)
    folds = [np.asarray(t[1]) for t in test]
    with time_limit(60):
        ref = crossval(rmodels, rdata, train, test, method="corr", fitter=[None, None, fit_regress_nn])
    ours = crossvalidate([fixed, WeightedModel(comp, "weighted")], data, "corr", folds=folds)
    assert ours.kind == "crossvalidation" and ours.model_names == ["animacy", "EVA", "weighted"]
    close(ours.fold_scores, ref.evaluations[0].T)
    close(ours.ceilings, ref.noise_ceiling.T)
    close(ours.means(), ref.get_means())
    assert ours.weights["weighted"].shape == (5, 6) and (ours.weights["weighted"] >= 0).all()
    # standard errors across subjects: a one-sided one-sample t-test on the per-subject scores
    ttest = ttest_1samp(ours.scores, 0, alternative="greater")
    close(ours.p_zero(), ttest.pvalue, rtol=1e-9)
    frame = ours.to_frame()
    assert frame.loc[2, "model"] == "weighted" and np.isfinite(frame["sem"]).all()


def test_crossvalidation_with_cosine_and_subject_groups():
    comp, data = random_components(seed=8, n_cond=12, n_subj=6)
    data = RDMs(data.vectors, metadata={"subject": [0, 0, 1, 1, 2, 2]})
    folds = condition_folds(12, 3, random_state=1)
    rdata = RDMs(data.vectors).to_rsatoolbox()
    train, test = [], []
    for fold in folds:
        rest = np.setdiff1d(np.arange(12), fold)
        train.append([rdata.subset_pattern("index", rest), list(rest)])
        test.append([rdata.subset_pattern("index", fold), list(fold)])
    with time_limit(30):
        ref = crossval([ModelWeighted("w", comp.to_rsatoolbox())], rdata, train, test, method="cosine",
                       fitter=[fit_regress_nn])  # fmt: skip
    ours = crossvalidate(WeightedModel(comp, "w"), RDMs(data.vectors), "cosine", folds=folds)
    close(ours.fold_scores, ref.evaluations[0].T)
    close(ours.ceilings, ref.noise_ceiling.T)
    grouped = crossvalidate(WeightedModel(comp, "w"), data, "cosine", folds=folds, rdm_descriptor="subject")
    assert grouped.scores.shape == (3, 1) and grouped.n_units == 3
    close(grouped.fold_scores, ours.fold_scores)  # equal group sizes: same means


def test_small_folds_are_nan_and_bad_folds_are_rejected():
    comp, data = random_components(seed=9, n_cond=8)
    res = crossvalidate(comp, data, "spearman", folds=[[0, 1], [2, 3, 4], [5, 6, 7]])
    assert np.isnan(res.fold_scores[0]).all() and np.isfinite(res.fold_scores[1:]).all()
    assert np.isnan(res.ceilings[0]).all()
    with pytest.raises(ShapeError, match="No fold"):
        crossvalidate(comp, data, folds=[[0, 1]])
    with pytest.raises(LabelError, match="disjoint"):
        crossvalidate(comp, data, folds=[[0, 1, 2], [2, 3, 4]])
    with pytest.raises(ShapeError, match="condition indices"):
        crossvalidate(comp, data, folds=[[0, 1, 8]])
    with pytest.raises(ShapeError, match="empty"):
        crossvalidate(comp, data, folds=[])
    with pytest.raises(LabelError, match="unique"):
        crossvalidate([comp, WeightedModel(comp, "c0")], data)
    with pytest.raises(ShapeError, match="crossvalidate"):
        evaluate(WeightedModel(comp), data)
    with pytest.raises(ShapeError):
        crossvalidate(comp, data.vectors)


def test_model_vectors_names_and_alignment():
    comp, data = random_components(seed=10)
    names, vecs = model_vectors([comp, RDMs(comp.vectors[:1])], data)
    assert names == ["c0", "c1", "c2", "model3"] and vecs.shape == (4, 45)
    names, _ = model_vectors(comp, data, names=["a", "b", "c"])
    assert names == ["a", "b", "c"]
    with pytest.raises(LabelError, match="3 models"):
        model_vectors(comp, data, names=["a"])
    with pytest.raises(ShapeError):
        model_vectors([], data)
    rsa_rdms = rsatoolbox.rdm.RDMs(comp.vectors)
    with pytest.raises(ShapeError):
        model_vectors(rsa_rdms, data)
