"""Retrieval decoding: similarities, ranks with ties, top-k accuracy, ridge decoder on Haxby fMRI."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import rankdata
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut

from neuroenc.decoding.retrieval import RetrievalDecoder, retrieval_scores, similarity
from neuroenc.errors import LabelError, NonFiniteError, ShapeError, UnknownNameError
from tests.conftest import make_braindata


def _reference(pred, cand, target, metric, ks):
    """Ranks from scipy: average rank of the true candidate among all, highest similarity first."""
    sims = 1.0 - cdist(pred, cand, metric=metric)
    ranks = np.array([rankdata(-row, method="average")[t] for row, t in zip(sims, target)])
    # top-k under random tie-breaking, by enumerating the tied positions
    tops = {}
    for k in ks:
        hits = []
        for row, t in zip(sims, target):
            better = np.sum(row > row[t] + 1e-12)
            tied = np.sum(np.abs(row - row[t]) <= 1e-12)
            hits.append(np.mean([better + 1 + j <= k for j in range(tied)]))
        tops[k] = np.mean(hits)
    return sims, ranks, tops


@pytest.mark.parametrize("metric", ["cosine", "correlation"])
def test_scores_equal_scipy_reference(metric):
    rng = np.random.default_rng(0)
    cand = rng.standard_normal((40, 12))
    pred = cand[:25] + 1.5 * rng.standard_normal((25, 12))
    target = rng.permutation(25)
    pred = pred[np.argsort(target)]  # prediction i belongs to candidate target[i]
    target = np.sort(target)
    sims, ranks, tops = _reference(pred, cand, target, metric, (1, 5, 10))
    np.testing.assert_allclose(similarity(pred, cand, metric), sims, atol=1e-12)
    got = retrieval_scores(pred, cand, target_index=target, k=(1, 5, 10), metric=metric)
    np.testing.assert_allclose(got["ranks"], ranks)
    for k in (1, 5, 10):
        assert got[f"top{k}"] == pytest.approx(tops[k])
    assert got["mean_rank"] == pytest.approx(ranks.mean())
    assert got["median_rank"] == pytest.approx(np.median(ranks))
    assert got["rank_accuracy"] == pytest.approx(np.mean(1 - (ranks - 1) / 39))
    assert got["n_candidates"] == 40


def test_ties_are_broken_at_random_in_expectation():
    cand = np.array([[1.0, 0], [1.0, 0], [0, 1.0], [-1.0, 0]])  # candidates 0 and 1 identical
    got = retrieval_scores(np.array([[2.0, 0], [3.0, 0.0]]), cand, k=(1, 2))
    np.testing.assert_allclose(got["ranks"], [1.5, 1.5])
    assert got["top1"] == 0.5 and got["top2"] == 1.0
    # a constant prediction retrieves at chance, not perfectly
    flat = retrieval_scores(np.zeros((4, 2)), cand, k=1)
    assert flat["top1"] == pytest.approx(0.25) and flat["mean_rank"] == pytest.approx(2.5)


def test_decoder_recovers_linear_embedding_and_grid_search():
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((120, 20))
    brain = emb @ rng.standard_normal((20, 80)) + 2.0 * rng.standard_normal((120, 80))
    dec = RetrievalDecoder(Ridge(alpha=10.0), k=(1, 5)).fit(brain[:80], emb[:80])
    scores = dec.evaluate(brain[80:], emb[80:])
    assert scores["top5"] > 0.9 and scores["top1"] > 0.5
    assert dec.score(brain[80:], emb[80:]) == scores["top1"]
    # a larger candidate set: the 40 test embeddings among all 120
    wide = dec.evaluate(brain[80:], None, candidates=emb, target_index=np.arange(80, 120))
    assert wide["n_candidates"] == 120 and wide["top5"] <= scores["top5"]
    search = GridSearchCV(RetrievalDecoder(Ridge()), {"estimator__alpha": [1e-3, 10.0, 1e6]}, cv=4)
    assert search.fit(brain, emb).best_params_["estimator__alpha"] != 1e6


def test_default_estimator_is_neuroenc_ridgecv():
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((60, 8))
    brain = emb @ rng.standard_normal((8, 30)) + rng.standard_normal((60, 30))
    dec = RetrievalDecoder().fit(brain[:40], emb[:40])
    assert type(dec.estimator_).__module__ == "neuroenc.encoding.ridge"
    assert dec.estimator_.alpha_.shape == (8,)
    assert dec.score(brain[40:], emb[40:]) > 0.5


def test_epochs_and_braindata_are_flattened():
    bd = make_braindata(n_obs=30, n_features=4, n_times=5)
    emb = np.random.default_rng(3).standard_normal((30, 3))
    dec = RetrievalDecoder(Ridge()).fit(bd, emb)
    assert dec.n_features_in_ == 20
    np.testing.assert_allclose(dec.predict(bd), dec.predict(bd.data.reshape(30, -1)))


def test_haxby_categories_retrieved_from_held_out_runs(haxby_dir):
    # real fMRI: 8 categories x 12 runs of GLM betas; each category gets a fixed random 32-d
    # "model embedding"; held-out runs are decoded and matched among the 8 embeddings.
    from neuroenc.datasets import load_haxby

    betas = load_haxby("betas", data_dir=haxby_dir.parent)
    cats, idx = np.unique(betas.conditions, return_inverse=True)
    table = np.random.default_rng(0).standard_normal((len(cats), 32))
    X, Y, runs = betas.data, table[idx], betas.obs["run"].to_numpy()
    top1, top3 = [], []
    for train, test in LeaveOneGroupOut().split(X, Y, runs):
        dec = RetrievalDecoder(k=(1, 3)).fit(X[train], Y[train])
        s = dec.evaluate(X[test], None, candidates=table, target_index=idx[test])
        top1.append(s["top1"])
        top3.append(s["top3"])
    assert np.mean(top1) > 0.3  # chance 1/8 (measured 0.42)
    assert np.mean(top3) > 0.6  # chance 3/8 (measured 0.74)


def test_bad_inputs_raise():
    rng = np.random.default_rng(4)
    pred, cand = rng.standard_normal((5, 3)), rng.standard_normal((8, 3))
    with pytest.raises(ShapeError, match="dimension"):
        retrieval_scores(pred, cand[:, :2])
    with pytest.raises(UnknownNameError, match="metric"):
        retrieval_scores(pred, cand, metric="euclid")
    with pytest.raises(ShapeError, match="k must"):
        retrieval_scores(pred, cand, k=(1, 0))
    with pytest.raises(LabelError, match="target_index"):
        retrieval_scores(pred, cand, target_index=[0, 1, 2, 3, 8])
    with pytest.raises(LabelError, match="target_index"):
        retrieval_scores(pred, cand, target_index=[0, 1, 2])
    with pytest.raises(LabelError, match="candidates"):
        retrieval_scores(cand, pred)
    bad = pred.copy()
    bad[1, 1] = np.nan
    with pytest.raises(NonFiniteError, match="NaN"):
        retrieval_scores(bad, cand)
    with pytest.raises(LabelError, match="samples"):
        RetrievalDecoder(Ridge()).fit(pred, cand)
    dec = RetrievalDecoder(Ridge()).fit(cand, cand)
    with pytest.raises(ShapeError, match="feature"):
        dec.predict(cand[:, :2])
