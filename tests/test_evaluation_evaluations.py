"""Evaluations of neuroenc.evaluation.evaluations against MOABB 1.7 on its FakeDataset."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

import neuroenc.riemann as nr
from neuroenc.errors import DataError, UnknownNameError
from neuroenc.evaluation.evaluations import CrossSession, CrossSubject, WithinSession, WithinSubject, pearson_r_score
from neuroenc.evaluation.splits import within_session_splits
from neuroenc.evaluation.store import ResultsStore

moabb = pytest.importorskip("moabb")
pytest.importorskip("pyriemann")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A two-subject, two-session left/right FakeDataset, generated locally (no network)."""
    os.environ["MNE_DATA"] = str(tmp_path_factory.mktemp("mne_data"))
    from moabb.datasets.fake import FakeDataset

    return FakeDataset(
        event_list=["left_hand", "right_hand"],
        n_subjects=2,
        n_sessions=2,
        n_runs=1,
        n_events=40,
        duration=130,
        seed=12,
        channels=["C3", "Cz", "C4", "FC1", "FC2"],
    )


@pytest.fixture(scope="module")
def paradigm():
    from moabb.paradigms import LeftRightImagery

    return LeftRightImagery()


class ArrayParadigm:
    """MOABB's paradigm interface over arrays held in memory (counts its loads)."""

    def __init__(self, data, scoring="roc_auc"):
        self.data, self.scoring, self._loads = data, scoring, 0

    def is_valid(self, dataset):
        return dataset.code in self.data

    def get_data(self, dataset, subjects=None, return_epochs=False):
        self._loads += 1
        X, y, meta = self.data[dataset.code]
        keep = meta.subject.isin(subjects if subjects is not None else dataset.subject_list).to_numpy()
        return X[keep], y[keep], meta[keep].reset_index(drop=True)


class Dataset:
    def __init__(self, code, subject_list, n_sessions=None):
        self.code, self.subject_list = code, list(subject_list)
        if n_sessions is not None:
            self.n_sessions = n_sessions


@pytest.fixture(scope="module")
def cached(fake, paradigm):
    """The FakeDataset epochs, loaded once, behind an ArrayParadigm."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X, y, meta = paradigm.get_data(fake, subjects=fake.subject_list)
    return ArrayParadigm({fake.code: (X, y, meta)}), Dataset(fake.code, fake.subject_list, 2)


def _pipelines():
    from mne.decoding import CSP
    from pyriemann.classification import MDM
    from pyriemann.estimation import Covariances

    return {
        "pyriemann MDM": make_pipeline(Covariances("oas"), MDM()),
        "neuroenc MDM": make_pipeline(nr.Covariances("oas"), nr.MDM()),
        "CSP+LDA": make_pipeline(CSP(n_components=4), LinearDiscriminantAnalysis()),
    }


def _moabb_rows(evaluation_cls, dataset, paradigm, pipelines, tmp_path, seed):
    """MOABB's per-subject results before its HDF5 store rounds scores to float32."""
    ev = evaluation_cls(
        paradigm=paradigm, datasets=[dataset], random_state=seed, hdf5_path=str(tmp_path), overwrite=True, suffix="t"
    )
    process = paradigm.make_process_pipelines(dataset)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = list(ev.evaluate(dataset, pipelines, param_grid=None, process_pipeline=process))
    ref = pd.DataFrame(rows).assign(dataset=lambda d: d.dataset.map(lambda x: x.code))
    return ref


KEYS = ["dataset", "subject", "session", "pipeline"]


@pytest.mark.parametrize(
    "ours_cls, ref_name", [(WithinSession, "WithinSessionEvaluation"), (CrossSession, "CrossSessionEvaluation")]
)
def test_parity_with_moabb(ours_cls, ref_name, fake, paradigm, tmp_path):
    import moabb.evaluations as me

    pipes = _pipelines()
    ref = _moabb_rows(getattr(me, ref_name), fake, paradigm, pipes, tmp_path, 42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = ours_cls(paradigm, [fake], random_state=42).process(pipes)
    assert len(ours) == len(ref) == 2 * 2 * 3
    merged = ref.merge(ours, on=KEYS, suffixes=("_moabb", ""), validate="one_to_one")
    assert len(merged) == len(ref)
    np.testing.assert_allclose(merged.score, merged.score_moabb, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(merged.n_samples, merged.n_samples_moabb)
    np.testing.assert_array_equal(merged.n_channels, merged.n_channels_moabb)
    assert (ours.evaluation == ours_cls.name).all()
    # neuroenc's MDM scores like pyRiemann's on every subject/session
    by_pipe = ours.pivot_table(index=["subject", "session"], columns="pipeline", values="score")
    np.testing.assert_allclose(by_pipe["neuroenc MDM"], by_pipe["pyriemann MDM"], atol=1e-12)


def test_within_session_table_equals_moabb_process(fake, paradigm, tmp_path):
    """MOABB's own result table (stored as float32) holds the same numbers."""
    from moabb.evaluations import WithinSessionEvaluation

    pipes = {"MDM": _pipelines()["neuroenc MDM"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = WithinSessionEvaluation(
            paradigm=paradigm, datasets=[fake], random_state=7, hdf5_path=str(tmp_path), overwrite=True, suffix="p"
        ).process(pipes)
        ours = WithinSession(paradigm, fake, random_state=7).process(pipes)
    ref = ref.assign(subject=ref.subject.astype(int), session=ref.session.astype(str))
    merged = ref.merge(ours, on=KEYS, suffixes=("_moabb", ""))
    assert len(merged) == len(ours) == 4
    np.testing.assert_allclose(merged.score, merged.score_moabb, rtol=1e-6)
    np.testing.assert_array_equal(merged.n_samples, merged.samples)
    assert (ours.n_folds == 5).all() and (ours.fold == -1).all()


def test_cross_subject_parity_with_moabb(fake, paradigm, tmp_path):
    from moabb.evaluations import CrossSubjectEvaluation

    pipes = {"MDM": _pipelines()["neuroenc MDM"]}
    ev = CrossSubjectEvaluation(paradigm=paradigm, datasets=[fake], hdf5_path=str(tmp_path), overwrite=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pd.DataFrame(ev._evaluate_parallel_dataset(fake, pipes, None, paradigm.make_process_pipelines(fake)[0]))
        ours = CrossSubject(paradigm, [fake]).process(pipes)
    ref = ref.assign(dataset=ref.dataset.map(lambda d: d.code))
    merged = ref.merge(ours, on=KEYS, suffixes=("_moabb", ""), validate="one_to_one")
    assert len(merged) == len(ours) == 4
    np.testing.assert_allclose(merged.score, merged.score_moabb, atol=1e-12)
    np.testing.assert_array_equal(merged.n_samples, merged.n_samples_moabb)


def test_within_subject_scores_each_session(cached):
    par, ds = cached
    pipes = {"MDM": make_pipeline(nr.Covariances("oas"), nr.MDM())}
    df = WithinSubject(par, ds, random_state=3, n_splits=4).process(pipes)
    assert len(df) == 4 and (df.n_folds == 4).all() and (df.n_samples == 80).all()
    assert df.score.between(0, 1).all()
    # the fold scores averaged by hand
    X, y, meta = par.get_data(ds, [1])
    from sklearn.metrics import get_scorer

    from neuroenc.evaluation.splits import within_subject_splits

    codes = np.unique(y, return_inverse=True)[1]
    scorer, per_session = get_scorer("roc_auc"), {"0": [], "1": []}
    for s in within_subject_splits(y, meta, n_splits=4, random_state=3):
        est = clone(pipes["MDM"]).fit(X[s.train], codes[s.train])
        for ses in ("0", "1"):
            pos = s.test[meta.session.to_numpy()[s.test] == ses]
            per_session[ses].append(scorer(est, X[pos], codes[pos]))
    got = df[df.subject == 1].set_index("session").score
    np.testing.assert_allclose([got["0"], got["1"]], [np.mean(per_session["0"]), np.mean(per_session["1"])])


def test_fixed_seed_repeats_and_parallel_equals_serial(cached, tmp_path):
    par, ds = cached
    pipes = {
        "MDM": make_pipeline(nr.Covariances("oas"), nr.MDM()),
        "TS": make_pipeline(nr.Covariances("oas"), nr.TSClassifier()),
    }
    serial = WithinSession(par, ds, random_state=11).process(pipes)
    again = WithinSession(par, ds, random_state=11).process(pipes)
    pd.testing.assert_frame_equal(
        serial.drop(columns=["time", "score_time"]), again.drop(columns=["time", "score_time"])
    )
    parallel = WithinSession(par, ds, random_state=11, n_jobs=2, results=tmp_path / "r.h5").process(pipes)
    cols = ["dataset", "subject", "session", "pipeline", "score", "n_samples", "n_folds", "digest"]
    pd.testing.assert_frame_equal(serial[cols], parallel[cols])
    assert len(ResultsStore(tmp_path / "r.h5").to_frame()) == 2 * 2 * 2 * 5
    other = WithinSession(par, ds, random_state=12).process(pipes)
    assert not np.allclose(other.score, serial.score)


class FitsOnce(nr.MDM):
    """An MDM that refuses a second fit and records which instances were fitted on what."""

    fitted: list = []

    def fit(self, X, y, sample_weight=None):
        if hasattr(self, "classes_"):
            raise RuntimeError("fitted twice: folds share an estimator")
        type(self).fitted.append((id(self), len(X)))
        return super().fit(X, y, sample_weight)


def test_every_fold_fits_a_fresh_copy_of_the_pipeline(cached):
    par, ds = cached
    pipeline = make_pipeline(nr.Covariances("oas"), FitsOnce(metric="riemann"))
    df = WithinSession(par, ds, random_state=11).process({"once": pipeline})
    assert df.n_folds.sum() == len(FitsOnce.fitted) == 20
    assert not hasattr(pipeline[-1], "classes_")  # the given pipeline itself is never fitted
    assert pipeline[-1].get_params() == FitsOnce(metric="riemann").get_params()
    FitsOnce.fitted.clear()
    # a pipeline that cannot be pickled is copied another way, with the same folds and scores
    from sklearn.preprocessing import FunctionTransformer

    unpicklable = make_pipeline(nr.Covariances("oas"), FunctionTransformer(lambda C: C), FitsOnce(metric="riemann"))
    again = WithinSession(par, ds, random_state=11).process({"once": unpicklable})
    assert len(FitsOnce.fitted) == 20
    np.testing.assert_array_equal(again.score, df.score)
    FitsOnce.fitted.clear()


class Exploding(nr.MDM):
    """An MDM whose fit raises once the class-wide budget of fits is spent."""

    budget = np.inf
    fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        if type(self).fits > type(self).budget:
            raise RuntimeError("boom")
        return super().fit(X, y, sample_weight)


def test_resume_after_interruption(cached, tmp_path):
    par, ds = cached
    path = tmp_path / "results.h5"
    pipes = {"MDM": make_pipeline(nr.Covariances("oas"), Exploding())}
    clean = WithinSession(par, ds, random_state=5).process(pipes)

    Exploding.fits, Exploding.budget = 0, 7
    with pytest.raises(RuntimeError, match="boom"):
        WithinSession(par, ds, random_state=5, results=path).process(pipes)
    assert len(ResultsStore(path).to_frame()) == 7  # each fold stored as it finished

    Exploding.fits, Exploding.budget = 0, np.inf
    resumed = WithinSession(par, ds, random_state=5, results=path).process(pipes)
    assert Exploding.fits == 20 - 7
    cols = ["subject", "session", "pipeline", "score", "n_samples", "n_folds"]
    pd.testing.assert_frame_equal(clean[cols], resumed[cols])

    Exploding.fits, loads = 0, par._loads
    done = WithinSession(par, ds, random_state=5, results=path).process(pipes)
    assert Exploding.fits == 0 and par._loads == loads  # nothing refitted, nothing reloaded
    pd.testing.assert_frame_equal(clean[cols], done[cols])

    WithinSession(par, ds, random_state=5, results=path, overwrite=True).process(pipes)
    assert Exploding.fits == 20
    # another evaluation or seed in the same file never reuses these folds
    Exploding.fits = 0
    CrossSession(par, ds, random_state=5, results=path).process(pipes)
    assert Exploding.fits == 4
    assert len(ResultsStore(path).to_frame()) == 24


def test_rsa_and_encoding_analyses(tmp_path):
    rng = np.random.default_rng(0)
    n_cond, n_rep, n_feat = 6, 8, 20
    patterns = rng.standard_normal((n_cond, n_feat))
    model_rdm = pdist(patterns, "correlation")
    rows, X = [], []
    for sub in (1, 2):
        for ses in ("a", "b"):
            for rep in range(n_rep):
                for c in range(n_cond):
                    rows.append((sub, ses, rep, f"c{c}"))
                    X.append(patterns[c] + rng.standard_normal(n_feat))
    meta = pd.DataFrame(rows, columns=["subject", "session", "run", "label"]).drop(columns="label")
    labels = np.array([r[3] for r in rows])
    X = np.asarray(X)
    par = ArrayParadigm({"toy": (X, labels, meta)})
    ds = Dataset("toy", [1, 2])

    def rsa(train, test):
        means = test.obs.groupby("condition").indices
        rdm = pdist(np.array([test.data[means[f"c{c}"]].mean(0) for c in range(n_cond)]), "correlation")
        half = n_feat // 2
        roi2 = pdist(np.array([test.data[means[f"c{c}"], half:].mean(0) for c in range(n_cond)]), "correlation")
        return {"all": spearmanr(rdm, model_rdm)[0], "roi2": spearmanr(roi2, model_rdm)[0]}

    df = WithinSession(par, ds, random_state=0, n_splits=2).process({"rsa": rsa})
    assert {"score_all", "score_roi2"} <= set(df.columns) and len(df) == 4
    np.testing.assert_allclose(df.score, df.score_all)
    assert (df.score > 0.5).all()  # the model RDM is the generating one
    # one session by hand
    keep = ((meta.subject == 1) & (meta.session == "a")).to_numpy()
    folds = within_session_splits(labels[keep], meta[keep], n_splits=2, random_state=0)
    Xs, ls = X[keep], labels[keep]
    by_hand = []
    for s in folds:
        test_means = [Xs[s.test][ls[s.test] == f"c{c}"].mean(0) for c in range(n_cond)]
        by_hand.append(spearmanr(pdist(np.array(test_means), "correlation"), model_rdm)[0])
    np.testing.assert_allclose(df.score.iloc[0], np.mean(by_hand), rtol=1e-12)

    # encoding: a regressor scored with the mean per-target Pearson r
    W = rng.standard_normal((n_feat, 3))
    Y = X @ W + 0.5 * rng.standard_normal((len(X), 3))
    enc = ArrayParadigm({"toy": (X, Y, meta)}, scoring=None)
    out = CrossSession(enc, ds).process({"ridge": Ridge(alpha=1.0)})
    assert len(out) == 4 and (out.score > 0.8).all()
    train = ((meta.subject == 1) & (meta.session == "b")).to_numpy()
    test = ((meta.subject == 1) & (meta.session == "a")).to_numpy()
    est = Ridge(alpha=1.0).fit(X[train], Y[train])
    expected = np.mean([np.corrcoef(est.predict(X[test])[:, k], Y[test][:, k])[0, 1] for k in range(3)])
    np.testing.assert_allclose(out.score.iloc[0], expected, rtol=1e-10)
    assert pearson_r_score(est, X[test], Y[test]) == pytest.approx(expected)


def test_progress_callback(cached):
    par, ds = cached
    calls = []
    WithinSession(par, ds, random_state=0, progress=lambda d, t, desc: calls.append((d, t))).process(
        {"a": make_pipeline(nr.Covariances("oas"), nr.MDM()), "b": make_pipeline(nr.Covariances("scm"), nr.MDM())}
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    calls.clear()  # cross-subject: one task per held-out subject, known once the data is loaded
    CrossSubject(par, ds, progress=lambda d, t, desc: calls.append((d, t))).process(
        {"a": make_pipeline(nr.Covariances("oas"), nr.MDM())}
    )
    assert calls == [(1, 2), (2, 2)]


def test_bad_inputs(cached, tmp_path):
    par, ds = cached
    mdm = make_pipeline(nr.Covariances("oas"), nr.MDM())
    with pytest.raises(UnknownNameError, match="scoring"):
        WithinSession(par, ds, scoring="acuracy")
    with pytest.raises(DataError, match="empty"):
        WithinSession(par, ds).process({})
    with pytest.raises(DataError, match="not a scikit-learn estimator"):
        WithinSession(par, ds).process({"x": 3})
    with pytest.raises(DataError, match=r"analysis\(train, test\)"):
        WithinSession(par, ds).process({"x": lambda a: 0.0})
    with pytest.raises(DataError, match="dict"):
        WithinSession(par, ds).process([mdm])
    with pytest.raises(UnknownNameError, match="param_grid"):
        WithinSession(par, ds).process({"m": mdm}, param_grid={"other": {}})
    with pytest.raises(DataError, match="paradigm"):
        WithinSession(object(), ds)
    with pytest.raises(DataError, match="n_splits"):
        WithinSession(par, ds, n_splits=1)
    with pytest.raises(UnknownNameError, match="backend"):
        WithinSession(par, ds, backend="spark")
    with pytest.raises(DataError, match="n_jobs"):
        WithinSession(par, ds, n_jobs=0)
    # a dataset the paradigm cannot use is dropped with a warning; none left is an error
    with pytest.warns(UserWarning, match="not compatible"), pytest.raises(DataError, match="No dataset left"):
        WithinSession(par, Dataset("other", [1]))
    # cross-session on a single-session dataset: skipped with a warning, before any fold
    with pytest.warns(UserWarning, match="1 session"), pytest.raises(DataError, match="No dataset left"):
        CrossSession(par, Dataset(ds.code, [1, 2], n_sessions=1))
    with pytest.warns(UserWarning, match="1 subject"), pytest.raises(DataError, match="No dataset left"):
        CrossSubject(par, Dataset(ds.code, [1]))
    loads = par._loads
    with pytest.raises(DataError, match="Client"):
        WithinSession(par, ds, backend="dask").process({"m": mdm})
    assert par._loads == loads  # nothing loaded before the error
