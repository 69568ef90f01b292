"""Splits of neuroenc.evaluation.splits against MOABB 1.7's splitters."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from moabb.evaluations.splitters import (
    CrossSessionSplitter,
    CrossSubjectSplitter,
    WithinSessionSplitter,
)
from sklearn.model_selection import GroupKFold

from neuroenc.errors import LabelError
from neuroenc.evaluation.splits import (
    cross_session_splits,
    cross_subject_splits,
    resolve_seed,
    within_session_splits,
    within_subject_splits,
)


def _meta(n_subjects=3, n_sessions=2, n_per=36, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(s, f"{se}", r) for s in range(1, n_subjects + 1) for se in range(n_sessions) for r in range(n_per)]
    meta = pd.DataFrame(rows, columns=["subject", "session", "run"])
    y = rng.choice(["left", "right", "feet"], size=len(meta))
    return y, meta


def _by_partition(pairs, meta):
    """{(subject, session of test): [(train, test), ...]} in yield order."""
    out = {}
    for train, test in pairs:
        key = (meta.subject[test[0]], meta.session[test[0]])
        out.setdefault(key, []).append((np.sort(train), np.sort(test)))
    return out


@pytest.mark.parametrize("seed", [0, 42])
def test_within_session_equals_moabb(seed):
    y, meta = _meta()
    ours = within_session_splits(y, meta, n_splits=5, random_state=seed)
    ref = _by_partition(WithinSessionSplitter(n_folds=5, shuffle=True, random_state=seed).split(y, meta), meta)
    mine = _by_partition([(s.train, s.test) for s in ours], meta)
    assert mine.keys() == ref.keys()
    for key in ref:
        assert len(mine[key]) == len(ref[key]) == 5
        for (tr_a, te_a), (tr_b, te_b) in zip(mine[key], ref[key]):
            np.testing.assert_array_equal(tr_a, tr_b)
            np.testing.assert_array_equal(te_a, te_b)
    # fold numbers restart in every session
    assert [s.fold for s in ours[:6]] == [0, 1, 2, 3, 4, 0]


def test_within_session_independent_of_other_subjects():
    y, meta = _meta()
    whole = within_session_splits(y, meta, random_state=3)
    keep = (meta.subject == 2).to_numpy()
    alone = within_session_splits(y[keep], meta[keep], random_state=3)
    offset = np.flatnonzero(keep)[0]
    sub = [s for s in whole if meta.subject[s.test[0]] == 2]
    for a, b in zip(sub, alone):
        np.testing.assert_array_equal(a.test, b.test + offset)


def test_cross_session_equals_moabb():
    y, meta = _meta(n_sessions=3)
    ours = [(s.train, s.test) for s in cross_session_splits(y, meta)]
    ref = list(CrossSessionSplitter().split(y, meta))
    assert len(ours) == len(ref) == 9
    for (a, b), (c, d) in zip(ours, ref):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_cross_session_skips_single_session_subject():
    y, meta = _meta(n_sessions=2)
    keep = ~((meta.subject == 1) & (meta.session == "1")).to_numpy()
    splits = cross_session_splits(y[keep], meta[keep].reset_index(drop=True))
    assert len(splits) == 4  # subjects 2 and 3 only


@pytest.mark.parametrize("n_splits", [None, 2])
def test_cross_subject_equals_moabb(n_splits):
    y, meta = _meta(n_subjects=4)
    ours = [(s.train, s.test) for s in cross_subject_splits(y, meta, n_splits=n_splits)]
    kwargs = {} if n_splits is None else {"cv_class": GroupKFold, "n_splits": n_splits}
    ref = list(CrossSubjectSplitter(**kwargs).split(y, meta))
    assert len(ours) == len(ref) == (4 if n_splits is None else 2)
    for (a, b), (c, d) in zip(ours, ref):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_within_subject_pools_sessions_and_is_stratified():
    y, meta = _meta()
    splits = within_subject_splits(y, meta, n_splits=4, random_state=1)
    assert len(splits) == 3 * 4
    for s in splits:
        assert meta.subject[s.train].nunique() == 1
        assert set(meta.session[s.test]) == {"0", "1"} or len(s.test) < 6
        assert len(np.intersect1d(s.train, s.test)) == 0
    first = [s for s in splits if meta.subject[s.test[0]] == 1]
    covered = np.sort(np.concatenate([s.test for s in first]))
    np.testing.assert_array_equal(covered, np.flatnonzero(meta.subject == 1))
    again = within_subject_splits(y, meta, n_splits=4, random_state=1)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(splits, again))


def test_resolve_seed():
    assert resolve_seed(None) is None
    assert resolve_seed(np.int64(7)) == 7
    assert resolve_seed(np.random.RandomState(0)) == np.random.RandomState(0).randint(0, 2**31)
    with pytest.raises(LabelError, match="random_state"):
        resolve_seed("7")


def test_bad_inputs():
    y, meta = _meta()
    with pytest.raises(LabelError, match="session"):
        within_session_splits(y, meta.drop(columns="session"))
    with pytest.raises(LabelError, match="entries"):
        within_session_splits(y[:-1], meta)
    with pytest.raises(LabelError, match="DataFrame"):
        cross_session_splits(y, meta.to_numpy())
    with pytest.raises(LabelError, match="n_splits"):
        within_subject_splits(y, meta, n_splits=1)
    with pytest.raises(LabelError, match="at least 2 subjects"):
        cross_subject_splits(y[meta.subject == 1], meta[meta.subject == 1])
    with pytest.raises(LabelError, match="exceeds"):
        cross_subject_splits(y, meta, n_splits=9)


def _sklearn_folds(y, n_splits, seed):
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


@pytest.mark.parametrize("kind", ["int", "str", "float"])
def test_stratified_folds_equal_sklearn(kind):
    # the folds are assigned without StratifiedKFold's own checks; they must stay its folds
    from neuroenc.evaluation.splits import _kfold

    rng = np.random.default_rng(1)
    for _ in range(150):
        n, k, n_classes = int(rng.integers(10, 150)), int(rng.integers(2, 7)), int(rng.integers(1, 5))
        y = rng.integers(0, n_classes, n)
        if kind == "str":
            y = np.array([f"class{v}" for v in rng.permutation(9)[y]])
        elif kind == "float":
            y = y * 2.0 - 1.0
        seed = int(rng.integers(0, 2**31))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # classes smaller than n_splits warn on both sides
            try:
                ref = _sklearn_folds(y, k, seed)
            except ValueError:
                with pytest.raises(LabelError, match="n_splits"):
                    _kfold(y, k, seed)
                continue
            ours = _kfold(y, k, seed)
        assert len(ours) == k
        for (train, test), (train_ref, test_ref) in zip(ours, ref):
            np.testing.assert_array_equal(train, train_ref)
            np.testing.assert_array_equal(test, test_ref)


def test_stratified_folds_unseeded_use_the_global_generator():
    from neuroenc.evaluation.splits import _kfold

    y = np.repeat(["a", "b", "c"], [20, 13, 7])
    np.random.seed(5)
    ref = _sklearn_folds(y, 4, None)
    np.random.seed(5)
    ours = _kfold(y, 4, None)
    for (train, test), (train_ref, test_ref) in zip(ours, ref):
        np.testing.assert_array_equal(test, test_ref)
        np.testing.assert_array_equal(train, train_ref)


def test_stratified_folds_bad_labels():
    from neuroenc.evaluation.splits import _kfold

    with pytest.raises(LabelError, match="continuous"):
        _kfold(np.linspace(0, 1, 30), 3, 0)
    with pytest.raises(LabelError, match="exceeds the number of epochs \\(4\\)"):
        _kfold(np.array([0, 1, 0, 1]), 5, 0)
    with pytest.raises(LabelError, match="every class"):
        _kfold(np.array([0, 1, 2, 0, 1, 2]), 3 + 1, 0)
    with pytest.raises(LabelError, match="shape"):
        _kfold(np.zeros((6, 2)), 2, 0)
    with pytest.warns(UserWarning, match="least populated class has only 2"):
        _kfold(np.array([0] * 10 + [1] * 2), 3, 0)


@pytest.mark.parametrize(
    "subjects, sessions",
    [
        ([3, 1, 2, 1, 3, 2, 1], ["b", "a", "a", "b", "a", "b", "a"]),
        ([4, 4, 4, 4, 4], ["b", "a", "b", "a", "c"]),  # one subject: its column is not hashed
        (["s10", "s2", "s10", "s2"], [1, 0, 0, 1]),
        ([1, "x", 1, "x"], ["a", "a", "b", "b"]),  # mixed key types: pandas decides
        ([1.0, np.nan, 2.0, 1.0], ["a", "a", "b", "a"]),  # missing keys are left out, as pandas does
    ],
)
def test_groups_equal_pandas_groupby(subjects, sessions):
    from neuroenc.evaluation.splits import _groups

    meta = pd.DataFrame({"subject": subjects, "session": sessions})
    meta_cat = meta.assign(session=pd.Categorical(meta.session, categories=sorted(set(sessions), reverse=True)))
    for frame in (meta, meta_cat):
        for columns in (["subject", "session"], ["subject"], ["session"]):
            try:
                ref = list(frame.groupby(columns, sort=True, observed=True).indices.values())
            except TypeError:
                continue
            ours = _groups(frame, columns)
            assert len(ours) == len(ref)
            for a, b in zip(ours, ref):
                np.testing.assert_array_equal(a, b)
