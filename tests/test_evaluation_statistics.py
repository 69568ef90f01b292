"""Paired pipeline statistics against MOABB's meta-analysis on the same scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from moabb.analysis import meta_analysis as ma

from neuroenc.errors import LabelError, NonFiniteError, ShapeError, UnknownNameError
from neuroenc.evaluation.statistics import (
    MOABB_EXACT_MAX_SUBJECTS,
    collapse_session_scores,
    combine_effects,
    combine_pvalues,
    compute_dataset_statistics,
    find_significant_differences,
    permutation_paired_t,
    standardised_mean_difference,
    subject_score_table,
    wilcoxon,
)

PIPELINES = ["csp", "mdm", "rnd", "ts"]
# 5 and 12 subjects: exact test; 15 and 19: randomised; 25: Wilcoxon.
SIZES = {"A": 5, "B": 12, "C": 15, "D": 19, "E": 25}


def results_frame(seed: int = 0, sizes: dict = SIZES, n_folds: int = 0) -> pd.DataFrame:
    """Random scores with MOABB's result columns (plus ``fold`` rows when n_folds > 0)."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, n in sizes.items():
        for subject in range(1, n + 1):
            base = rng.uniform(0.5, 0.9)
            for session in ("0", "1"):
                for k, pipe in enumerate(PIPELINES):
                    row = {
                        "dataset": dataset,
                        "subject": subject,
                        "session": session,
                        "pipeline": pipe,
                        "time": rng.uniform(),
                        "samples": 100,
                        "channels": 3,
                        "n_sessions": 2,
                    }
                    score = base + 0.02 * k + 0.03 * rng.normal()
                    if n_folds:
                        for fold in range(n_folds + (session == "1")):  # unequal fold counts
                            rows.append(
                                {
                                    **row,
                                    "fold": fold,
                                    "evaluation": "WithinSession",
                                    "score": score + 0.01 * rng.normal(),
                                }
                            )
                    else:
                        rows.append({**row, "score": score})
    return pd.DataFrame(rows)


def differences(X: np.ndarray) -> np.ndarray:
    return X[:, :, None] - X[:, None, :]


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return results_frame()


# ----------------------------------------------------------------- per-dataset and meta-analysis parity


def test_dataset_statistics_match_moabb(df):
    np.random.seed(11)  # MOABB's randomised test draws from numpy's global state
    expected = ma.compute_dataset_statistics(df)
    np.random.seed(11)
    got = compute_dataset_statistics(df)
    assert list(got.columns) == ["dataset", "index", "pipe1", "pipe2", "p", "smd", "nsub"]
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=0)
    # the exact and the randomised branches reproduce MOABB's counts, so the p-values are identical
    np.testing.assert_array_equal(got["p"].to_numpy(), expected["p"].to_numpy())


def test_significant_differences_match_moabb(df):
    stats = compute_dataset_statistics(df, random_state=0)
    P_ref, T_ref = ma.find_significant_differences(stats)
    P, T = find_significant_differences(stats)
    pd.testing.assert_frame_equal(P, P_ref, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(T, T_ref, check_exact=False, rtol=1e-12)
    assert np.isnan(np.diag(P.to_numpy())).all()


def test_meta_analysis_weights_follow_each_dataset():
    # Datasets listed out of name order: each p-value keeps its own dataset's weight.
    frame = results_frame(3, {"Z": 6, "A": 25})
    stats = compute_dataset_statistics(frame)
    P, T = find_significant_differences(stats)
    fw = stats[(stats.pipe1 == "ts") & (stats.pipe2 == "csp")].set_index("dataset")
    assert P.loc["ts", "csp"] == pytest.approx(ma.combine_pvalues(fw["p"], fw["nsub"]), rel=1e-12)
    assert T.loc["ts", "csp"] == pytest.approx(ma.combine_effects(fw["smd"], fw["nsub"]), rel=1e-12)


def test_store_frame_collapses_folds_first():
    folds = results_frame(5, {"A": 6, "B": 9}, n_folds=3)
    by_session = (
        folds.groupby(["dataset", "subject", "session", "pipeline"], sort=False).mean(numeric_only=True).reset_index()
    )
    got = compute_dataset_statistics(folds)
    pd.testing.assert_frame_equal(got, ma.compute_dataset_statistics(by_session), check_exact=False, rtol=1e-12)
    collapsed = collapse_session_scores(folds)
    assert "fold" not in collapsed.columns
    assert len(collapsed) == (6 + 9) * len(PIPELINES)


def test_exact_threshold_can_be_raised():
    frame = results_frame(2, {"A": 17})
    table = subject_score_table(collapse_session_scores(frame), "A")
    got = compute_dataset_statistics(frame, exact_max_subjects=20)
    p = got.pivot(index="pipe1", columns="pipe2", values="p").loc[table.columns, table.columns].to_numpy()
    np.testing.assert_array_equal(p, permutation_paired_t(table))


# ----------------------------------------------------------------- building blocks


@pytest.mark.parametrize("n", [1, 2, 7, 13])
@pytest.mark.parametrize("k", [2, 5])
def test_exact_permutation_matches_moabb(n, k):
    rng = np.random.default_rng(n * 10 + k)
    X = np.round(rng.uniform(0.4, 1.0, size=(n, k)), 2)  # rounding creates ties and equal sums
    X[:, -1] = X[:, 0]  # two identical pipelines
    np.testing.assert_array_equal(permutation_paired_t(X), ma._pairedttest_exact(differences(X)))


def test_exact_permutation_matches_moabb_at_16():
    X = np.random.default_rng(16).uniform(0.5, 0.9, size=(16, 3))
    np.testing.assert_array_equal(permutation_paired_t(X), ma._pairedttest_exact(differences(X)))


@pytest.mark.parametrize("seed", [0, 4])
def test_random_permutation_reproduces_moabb_draws(seed):
    X = np.random.default_rng(seed).uniform(0.5, 0.9, size=(23, 4))
    expected = ma._pairedttest_random(differences(X), 10000, seed=seed)
    np.testing.assert_array_equal(permutation_paired_t(X, random_state=seed), expected)
    state = np.random.RandomState(seed)
    np.testing.assert_array_equal(permutation_paired_t(X, random_state=state, exact_max_subjects=0)[:1], expected[:1])


def test_random_permutation_agrees_with_exact_at_15():
    rng = np.random.default_rng(15)
    X = rng.uniform(0.5, 0.9, size=(15, 1)) + 0.04 * rng.normal(size=(15, 4)) + [0, 0.01, 0.02, 0.05]
    exact = permutation_paired_t(X)
    n_perm = 40000
    random = permutation_paired_t(
        X, exact_max_subjects=10, n_permutations=n_perm, random_state=np.random.default_rng(1)
    )
    # binomial standard error of a Monte-Carlo p-value, 5 sigma
    tol = 5 * np.sqrt(exact * (1 - exact) / n_perm) + 1 / n_perm
    assert (np.abs(random - exact) <= tol).all()
    assert not np.array_equal(random, exact)


def test_wilcoxon_matches_moabb():
    rng = np.random.default_rng(7)
    X = np.round(rng.uniform(0.5, 0.9, size=(30, 4)), 3)
    X[:, 3] = X[:, 1]  # all-zero differences
    X[:5, 2] = X[:5, 0]  # some zero differences
    table = pd.DataFrame(X, columns=list("abcd"))
    np.testing.assert_allclose(wilcoxon(table), ma.compute_pvals_wilcoxon(table), rtol=1e-12, atol=0)


def test_effect_matches_moabb():
    rng = np.random.default_rng(8)
    X = rng.uniform(0.5, 0.9, size=(11, 5))
    X[:, 3] = X[:, 0] + 0.125  # constant offset: infinite effect
    X[:, 4] = X[:, 1]  # identical pipelines: no effect
    table = pd.DataFrame(X, columns=list("abcde"))
    got = standardised_mean_difference(table)
    np.testing.assert_allclose(got, ma.compute_effect(table), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(got, -got.T)


def test_combinations_match_moabb():
    p = pd.Series([0.01, 0.2, 0.7])
    nsub = pd.Series([9, 16, 40])
    e = pd.Series([0.5, -0.1, 0.3])
    assert combine_pvalues(p, nsub) == pytest.approx(ma.combine_pvalues(p, nsub), rel=1e-12)
    assert combine_effects(e, nsub) == pytest.approx(ma.combine_effects(e, nsub), rel=1e-12)
    assert combine_pvalues([0.03], [12]) == 0.03


# ----------------------------------------------------------------- bad input


def test_missing_columns(df):
    with pytest.raises(LabelError, match="'pipeline'"):
        compute_dataset_statistics(df.drop(columns="pipeline"))
    with pytest.raises(LabelError, match="smd"):
        find_significant_differences(pd.DataFrame({"dataset": ["A"], "pipe1": ["a"], "pipe2": ["b"], "p": [0.1]}))


def test_fewer_than_two_pipelines(df):
    with pytest.raises(LabelError, match="at least 2"):
        compute_dataset_statistics(df[df.pipeline == "csp"])
    with pytest.raises(ShapeError, match="at least 2"):
        permutation_paired_t(np.ones((5, 1)))


def test_missing_subject_and_bad_scores(df):
    with pytest.raises(LabelError, match="'mdm' has no score for subject"):
        compute_dataset_statistics(df.drop(df[(df.pipeline == "mdm") & (df.subject == 3)].index))
    bad = df.copy()
    bad.loc[4, "score"] = np.nan
    with pytest.raises(NonFiniteError):
        compute_dataset_statistics(bad)
    with pytest.raises(NonFiniteError):
        wilcoxon([[0.5, np.inf], [0.6, 0.7]])


def test_mixed_evaluations_and_unknown_dataset():
    folds = results_frame(1, {"A": 4}, n_folds=2)
    folds.loc[folds.index[:3], "evaluation"] = "CrossSession"
    with pytest.raises(LabelError, match="several evaluations"):
        compute_dataset_statistics(folds)
    with pytest.raises(UnknownNameError, match="dataset"):
        subject_score_table(collapse_session_scores(results_frame(1, {"A": 4})), "nope")


def test_bad_counts():
    X = np.random.default_rng(0).uniform(size=(6, 3))
    with pytest.raises(ShapeError, match="exact_max_subjects"):
        permutation_paired_t(X, exact_max_subjects=40)
    with pytest.raises(ShapeError, match="n_permutations"):
        permutation_paired_t(X, exact_max_subjects=2, n_permutations=0)
    with pytest.raises(ShapeError, match="nsubs"):
        combine_pvalues([0.1, 0.2], [5])
    assert MOABB_EXACT_MAX_SUBJECTS == 13
