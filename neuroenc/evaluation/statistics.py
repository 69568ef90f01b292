"""Paired pipeline comparisons and their meta-analysis across datasets.

The numbers are those of MOABB's ``moabb.analysis.meta_analysis``: per
dataset, subject scores (mean over folds, then sessions) are compared pair by
pair with a one-tailed permutation paired t-test (small datasets) or a
one-tailed Wilcoxon signed-rank test (large ones), effects are standardised
mean differences, and datasets are combined with Stouffer's method and an
effect average, both weighted by ``sqrt(n subjects)``.

The exact permutation test enumerates every sign flip in the order in which
MOABB sums subjects, so its p-values are bit-identical; it grows the sums one
subject at a time (a binary tree of prefix sums), which costs ``~2**n``
additions per pipeline pair instead of MOABB's ``n * 2**n`` in a Python loop.
The randomised test draws its sign flips from the same NumPy ``RandomState``
stream as MOABB, so a seeded run reproduces MOABB's p-values exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from neuroenc.errors import LabelError, ShapeError
from neuroenc.validation import check_array, check_names

__all__ = [
    "MOABB_EXACT_MAX_SUBJECTS",
    "collapse_session_scores",
    "subject_score_table",
    "permutation_paired_t",
    "wilcoxon",
    "standardised_mean_difference",
    "compute_dataset_statistics",
    "combine_effects",
    "combine_pvalues",
    "find_significant_differences",
]

#: Largest number of subjects for which MOABB's ``compute_pvals_perm`` runs the exact test.
MOABB_EXACT_MAX_SUBJECTS = 13
# 2**26 leaves per pair is already half a gigabyte of sums; beyond, sample.
_EXACT_LIMIT = 26
# The exact test grows the sums of the last 16 subjects in a 512 KiB buffer (cache-resident).
_EXACT_BLOCK_LEVELS = 16
# Sign draws held at once by the randomised test.
_RANDOM_CHUNK = 1 << 20
# Stouffer's z is infinite at p = 0 or 1; Wilcoxon p-values are kept strictly inside.
_P_FLOOR = np.nextafter(0.0, 1.0)
_P_CEIL = np.nextafter(1.0, 0.0)
_REQUIRED = ("dataset", "subject", "pipeline", "score")
_STATS_COLUMNS = ("dataset", "pipe1", "pipe2", "p", "smd", "nsub")


# --------------------------------------------------------------------------- tables


def _check_columns(df: Any, required: Sequence[str], what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise LabelError(f"{what} must be a pandas DataFrame, got {type(df).__name__}.")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise LabelError(
            f"{what} lacks column(s) {', '.join(map(repr, missing))}; "
            f"required: {', '.join(required)}; present: {', '.join(map(str, df.columns))}."
        )
    if len(df) == 0:
        raise LabelError(f"{what} has no rows.")
    return df


def collapse_session_scores(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (pipeline, dataset, subject): scores averaged over folds, then sessions.

    Parameters
    ----------
    df : pandas.DataFrame
        Evaluation results with MOABB's columns (``dataset``, ``subject``,
        ``pipeline``, ``score``, optionally ``session``, ``time``, ...) or a
        neuroenc results-store frame (the same plus ``fold`` and ``evaluation``).
        A ``fold`` column triggers a first average over folds within each
        session, so that sessions with more folds do not weigh more.

    Returns
    -------
    pandas.DataFrame
        Columns ``pipeline``, ``dataset``, ``subject`` and the means of the
        numeric columns, rows in order of first appearance (as MOABB's
        ``collapse_session_scores``).

    Raises
    ------
    LabelError
        Missing columns, or several evaluations mixed in one frame.
    NonFiniteError
        NaN or Inf scores.
    """
    df = _check_columns(df, _REQUIRED, "results")
    check_array(df["score"].to_numpy(), "score", ndim=1)  # numeric and finite
    if "evaluation" in df.columns and df["evaluation"].nunique(dropna=False) > 1:
        found = ", ".join(map(repr, df["evaluation"].unique()))
        raise LabelError(f"results mix several evaluations ({found}); select one, e.g. df[df.evaluation == ...].")
    if "fold" in df.columns:
        keys = [c for c in ("pipeline", "dataset", "subject", "session") if c in df.columns]
        df = df.groupby(keys, sort=False, observed=True).mean(numeric_only=True).reset_index().drop(columns="fold")
    return (
        df.groupby(["pipeline", "dataset", "subject"], sort=False, observed=True).mean(numeric_only=True).reset_index()
    )


def subject_score_table(collapsed: pd.DataFrame, dataset: Any) -> pd.DataFrame:
    """Subjects x pipelines score table of one dataset (rows and columns sorted).

    Parameters
    ----------
    collapsed : pandas.DataFrame
        Output of :func:`collapse_session_scores`.
    dataset : object
        Dataset name.

    Returns
    -------
    pandas.DataFrame
        Index ``subject``, one column per pipeline.

    Raises
    ------
    LabelError
        A pipeline lacks some subjects of the dataset (paired tests need all).
    """
    rows = collapsed[collapsed["dataset"] == dataset]
    if len(rows) == 0:
        check_names([dataset], collapsed["dataset"].unique(), "dataset")
    table = rows.pivot(index="subject", values="score", columns="pipeline")
    holes = table.isna()
    if holes.to_numpy().any():
        pipe = holes.any(axis=0).idxmax()
        subjects = list(table.index[holes[pipe].to_numpy()])
        raise LabelError(
            f"dataset {dataset!r}: pipeline {pipe!r} has no score for subject(s) {subjects}; "
            "paired comparisons need every pipeline on every subject."
        )
    return table


# --------------------------------------------------------------------------- paired tests


def _scipy_stats() -> Any:
    import scipy.stats  # imported on first use: it costs ~1 s, and `import neuroenc` stays fast

    return scipy.stats


def _score_matrix(scores: Any) -> np.ndarray:
    X = check_array(scores, "scores", ndim=2, dtype=np.float64)
    if X.shape[1] < 2:
        raise ShapeError(
            f"scores has {X.shape[1]} pipeline column(s); paired comparisons need at least 2 "
            "(shape (n_subjects, n_pipelines))."
        )
    return X


def _pair_differences(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Differences ``X[:, i] - X[:, j]`` for every pair ``i < j``, as columns."""
    i, j = np.triu_indices(X.shape[1], k=1)
    return X[:, i] - X[:, j], i, j


def _sequential_sum(D: np.ndarray) -> np.ndarray:
    # Row after row, as numpy's axis-0 reduction (and so MOABB) adds subjects.
    total = D[0].copy()
    for row in D[1:]:
        total += row
    return total


def _grow_sums(out: np.ndarray, first: float, terms: np.ndarray) -> np.ndarray:
    """Every signed sum ``first ± terms[0] ± terms[1] ...``, added left to right, into ``out``."""
    out[0] = first
    filled = 1
    for x in terms:
        # Children of every prefix: prefix - x (new half) and prefix + x (in place).
        np.subtract(out[:filled], x, out=out[filled : 2 * filled])
        out[:filled] += x
        filled *= 2
    return out


def _exact_counts(D: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Over all 2**n sign flips: how often the flipped sum is >= and <= the observed one.

    Leaves come in exact opposite pairs (negating every term negates each
    rounded partial sum), so only flips with a ``+`` on subject 0 are built:
    ``count(S >= t)`` over all flips is ``count(S >= t) + count(S <= -t)``
    over that half. The last subjects' subtrees are grown one prefix at a
    time in a cache-sized buffer.
    """
    n, m = D.shape
    n_top = max(1, n - _EXACT_BLOCK_LEVELS)
    ge = np.zeros(m, dtype=np.int64)
    le = np.zeros(m, dtype=np.int64)
    leaves = np.empty(1 << (n - n_top))
    for c in range(m):
        d = np.ascontiguousarray(D[:, c])
        t = total[c]
        prefixes = _grow_sums(np.empty(1 << (n_top - 1)), d[0], d[1:n_top])
        for prefix in prefixes:
            _grow_sums(leaves, prefix, d[n_top:])
            ge[c] += np.count_nonzero(leaves >= t) + np.count_nonzero(leaves <= -t)
            le[c] += np.count_nonzero(leaves <= t) + np.count_nonzero(leaves >= -t)
    return ge, le


def _sign_draws(rng: np.random.RandomState | np.random.Generator, n_rows: int, n_subjects: int) -> np.ndarray:
    # RandomState.choice([1, -1], size=n) draws randint(0, 2, n) and indexes; the
    # same stream drawn as a block gives MOABB's signs row after row.
    if isinstance(rng, np.random.Generator):
        idx = rng.integers(0, 2, size=(n_rows, n_subjects))
    else:
        idx = rng.randint(0, 2, size=(n_rows, n_subjects))
    return np.where(idx == 0, 1.0, -1.0)


def _check_random_state(random_state: Any) -> np.random.RandomState | np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    from sklearn.utils import check_random_state

    return check_random_state(random_state)


def _random_counts(
    D: np.ndarray, total: np.ndarray, n_permutations: int, random_state: Any
) -> tuple[np.ndarray, np.ndarray]:
    rng = _check_random_state(random_state)
    n, m = D.shape
    ge = np.zeros(m, dtype=np.int64)
    le = np.zeros(m, dtype=np.int64)
    step = max(1, _RANDOM_CHUNK // max(n, m))
    for start in range(0, n_permutations, step):
        rows = min(step, n_permutations - start)
        signs = _sign_draws(rng, rows, n)
        sums = np.zeros((rows, m))
        for s, d in zip(signs.T, D):
            sums += s[:, None] * d  # a sign flip is exact, so the sums are MOABB's
        ge += (sums >= total).sum(axis=0)
        le += (sums <= total).sum(axis=0)
    return ge, le


def _check_count(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ShapeError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def permutation_paired_t(
    scores: Any,
    *,
    exact_max_subjects: int = 20,
    n_permutations: int = 10000,
    random_state: Any = None,
) -> np.ndarray:
    """One-tailed permutation paired t-test between every pair of pipelines.

    The statistic is the sum over subjects of the score differences; its null
    distribution flips the sign of each subject's difference.

    Parameters
    ----------
    scores : array-like of shape (n_subjects, n_pipelines)
        Subject scores, one column per pipeline (a DataFrame such as
        :func:`subject_score_table` works).
    exact_max_subjects : int
        Up to this many subjects every one of the ``2**n`` sign flips is
        enumerated (at most 26); above, ``n_permutations`` random flips are
        drawn. MOABB enumerates up to :data:`MOABB_EXACT_MAX_SUBJECTS`.
    n_permutations : int
        Number of random sign flips (MOABB: 10000).
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Source of the random flips. None, an int or a RandomState draw exactly
        the flips MOABB's ``_pairedttest_random`` draws from the same state
        (None: NumPy's global state, as MOABB).

    Returns
    -------
    numpy.ndarray of shape (n_pipelines, n_pipelines)
        ``p[i, j]``: p-value of "pipeline i scores higher than pipeline j",
        the fraction of flips whose sum is >= the observed one (the random
        test counts the observed flip once more), capped at
        ``(N - 1) / N`` for Stouffer's method. The diagonal holds that cap.

    Raises
    ------
    ShapeError, NonFiniteError
        Not a 2-D finite table with at least two pipelines, or bad counts.
    """
    X = _score_matrix(scores)
    exact_max_subjects = _check_count(exact_max_subjects, "exact_max_subjects", 0)
    if exact_max_subjects > _EXACT_LIMIT:
        raise ShapeError(
            f"exact_max_subjects={exact_max_subjects} would enumerate 2**{exact_max_subjects} sign flips; "
            f"at most {_EXACT_LIMIT} is supported, larger samples use random flips."
        )
    n, k = X.shape
    exact = n <= exact_max_subjects
    if not exact:
        n_permutations = _check_count(n_permutations, "n_permutations", 2)
    D, i, j = _pair_differences(X)
    total = _sequential_sum(D)
    if exact:
        n_total = 1 << n
        ge, le = _exact_counts(D, total)
        diagonal = n_total
    else:
        n_total = n_permutations
        ge, le = _random_counts(D, total, n_permutations, random_state)
        ge, le = ge + 1, le + 1  # the observed statistic counts as one permutation
        diagonal = n_permutations + 1
    counts = np.full((k, k), diagonal, dtype=np.int64)
    # Pair (j, i) sums the negated differences: -S >= -t is S <= t.
    counts[i, j] = ge
    counts[j, i] = le
    return np.minimum(counts, n_total - 1) / n_total


def wilcoxon(scores: Any) -> np.ndarray:
    """One-tailed Wilcoxon signed-rank test between every pair of pipelines.

    Parameters
    ----------
    scores : array-like of shape (n_subjects, n_pipelines)
        Subject scores, one column per pipeline.

    Returns
    -------
    numpy.ndarray of shape (n_pipelines, n_pipelines)
        ``p[i, j]``: p-value of "pipeline i scores higher than pipeline j":
        half the two-sided :func:`scipy.stats.wilcoxon` p-value, mirrored
        (``1 - p``) when the mean difference is negative, kept strictly inside
        (0, 1); 0.5 when all differences are zero. Diagonal 0 (as MOABB).

    Raises
    ------
    ShapeError, NonFiniteError
        Not a 2-D finite table with at least two pipelines.
    """
    X = _score_matrix(scores)
    k = X.shape[1]
    out = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            if a == b:
                continue
            diff = X[:, a] - X[:, b]
            if not diff.any():
                out[a, b] = 0.5  # indistinguishable pipelines: no direction is favoured
                continue
            half = _scipy_stats().wilcoxon(X[:, a], X[:, b]).pvalue / 2
            one_tailed = 1 - half if diff.mean() < 0 else half
            out[a, b] = min(max(one_tailed, _P_FLOOR), _P_CEIL)
    return out


def standardised_mean_difference(scores: Any) -> np.ndarray:
    """Standardised mean difference (mean / sample std of paired differences).

    Parameters
    ----------
    scores : array-like of shape (n_subjects, n_pipelines)
        Subject scores, one column per pipeline.

    Returns
    -------
    numpy.ndarray of shape (n_pipelines, n_pipelines)
        ``smd[i, j] = mean(x_i - x_j) / std(x_i - x_j, ddof=1)``; antisymmetric.
        A constant difference gives 0 (identical pipelines) or a signed
        infinity (a constant offset), as MOABB's ``compute_effect``.

    Raises
    ------
    ShapeError, NonFiniteError
        Not a 2-D finite table with at least two pipelines.
    """
    X = _score_matrix(scores)
    D, i, j = _pair_differences(X)
    effect = np.empty(D.shape[1])
    for c, diff in enumerate(D.T):
        diff = np.ascontiguousarray(diff)
        mean = diff.mean()
        if (diff == diff[0]).all():
            effect[c] = 0.0 if mean == 0 else np.copysign(np.inf, mean)
        else:
            effect[c] = mean / diff.std(ddof=1)
    out = np.zeros((X.shape[1], X.shape[1]))
    out[i, j] = effect
    out[j, i] = -effect
    return out


# --------------------------------------------------------------------------- datasets and meta-analysis


def _stats_block(dataset: Any, algs: list, p: np.ndarray, smd: np.ndarray, nsub: int) -> pd.DataFrame:
    k = len(algs)
    names = np.asarray(algs, dtype=object)
    # Rows run over pipe2 first, then pipe1 (MOABB's melted layout).
    return pd.DataFrame(
        {
            "dataset": np.full(k * k, dataset, dtype=object),
            "index": np.arange(k * k),
            "pipe1": np.tile(names, k),
            "pipe2": np.repeat(names, k),
            "p": p.T.ravel(),
            "smd": smd.T.ravel(),
            "nsub": np.full(k * k, nsub, dtype=np.int64),
        }
    )


def compute_dataset_statistics(
    df: pd.DataFrame,
    perm_cutoff: int = 20,
    *,
    exact_max_subjects: int = MOABB_EXACT_MAX_SUBJECTS,
    n_permutations: int = 10000,
    random_state: Any = None,
) -> pd.DataFrame:
    """Per-dataset paired statistics between every pair of pipelines.

    Parameters
    ----------
    df : pandas.DataFrame
        Evaluation results (MOABB's columns, or a neuroenc results-store frame
        with ``fold``/``evaluation``; see :func:`collapse_session_scores`).
    perm_cutoff : int
        Datasets with fewer subjects use :func:`permutation_paired_t`, the
        others :func:`wilcoxon` (MOABB: 20).
    exact_max_subjects : int
        Largest dataset tested with every sign flip; the default reproduces
        MOABB (13). The exact test is fast here, so 19 or 20 is affordable.
    n_permutations : int
        Random sign flips above ``exact_max_subjects`` (MOABB: 10000).
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Source of random flips, shared by all datasets in turn (None: NumPy's
        global state, as MOABB).

    Returns
    -------
    pandas.DataFrame
        MOABB's layout: columns ``dataset``, ``index``, ``pipe1``, ``pipe2``,
        ``p`` (one-tailed, pipe1 > pipe2), ``smd`` (standardised mean
        difference, the effect size) and ``nsub``; pipelines sorted within a
        dataset, datasets in order of appearance.

    Raises
    ------
    LabelError
        Missing columns, a dataset with fewer than two pipelines, or a
        pipeline without scores for some subjects.
    """
    perm_cutoff = _check_count(perm_cutoff, "perm_cutoff", 0)
    collapsed = collapse_session_scores(df)
    blocks = []
    for dataset in collapsed["dataset"].unique():
        table = subject_score_table(collapsed, dataset)
        algs = table.columns.tolist()
        if len(algs) < 2:
            raise LabelError(
                f"dataset {dataset!r} has results for {len(algs)} pipeline(s) {algs}; "
                "paired comparisons need at least 2."
            )
        X = table.to_numpy(dtype=np.float64)
        if X.shape[0] < perm_cutoff:
            p = permutation_paired_t(
                X, exact_max_subjects=exact_max_subjects, n_permutations=n_permutations, random_state=random_state
            )
        else:
            p = wilcoxon(X)
        blocks.append(_stats_block(dataset, algs, p, standardised_mean_difference(X), X.shape[0]))
    return pd.concat(blocks, ignore_index=True)


def _weights(nsubs: Any, n: int) -> np.ndarray:
    w = check_array(np.asarray(nsubs, dtype=np.float64).ravel(), "nsubs", ndim=1)
    if w.shape[0] != n:
        raise ShapeError(f"nsubs has {w.shape[0]} entries for {n} dataset value(s).")
    if (w <= 0).any():
        raise ShapeError("nsubs must be positive subject counts.")
    return np.sqrt(w)


def combine_effects(effects: Any, nsubs: Any) -> float:
    """Average of per-dataset effects weighted by ``sqrt(n subjects)``.

    Parameters
    ----------
    effects : array-like of shape (n_datasets,)
        Standardised mean differences of one pipeline pair, one per dataset.
    nsubs : array-like of shape (n_datasets,)
        Number of subjects of each dataset.

    Returns
    -------
    float
        ``sum(w * effects) / sum(w)`` with ``w = sqrt(nsubs)``.
    """
    e = check_array(np.asarray(effects, dtype=np.float64).ravel(), "effects", ndim=1, allow_nonfinite=True)
    w = _weights(nsubs, e.shape[0])
    return float(((w / w.sum()) * e).sum())


def combine_pvalues(pvalues: Any, nsubs: Any) -> float:
    """Stouffer's combination of one-tailed p-values weighted by ``sqrt(n subjects)``.

    Parameters
    ----------
    pvalues : array-like of shape (n_datasets,)
        One-tailed p-values of one pipeline pair, one per dataset, in (0, 1).
    nsubs : array-like of shape (n_datasets,)
        Number of subjects of each dataset.

    Returns
    -------
    float
        The combined p-value; a single p-value is returned unchanged.
    """
    p = check_array(np.asarray(pvalues, dtype=np.float64).ravel(), "pvalues", ndim=1)
    w = _weights(nsubs, p.shape[0])
    if ((p < 0) | (p > 1)).any():
        raise ShapeError("pvalues must lie in [0, 1].")
    if p.shape[0] == 1:
        return float(p[0])
    return float(_scipy_stats().combine_pvalues(p, method="stouffer", weights=w).pvalue)


def find_significant_differences(stats: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Meta-analysis of every pipeline pair across datasets.

    Parameters
    ----------
    stats : pandas.DataFrame
        Output of :func:`compute_dataset_statistics`.

    Returns
    -------
    P : pandas.DataFrame of shape (n_pipelines, n_pipelines)
        Combined one-tailed p-values (row pipeline > column pipeline), NaN on
        the diagonal.
    T : pandas.DataFrame of shape (n_pipelines, n_pipelines)
        Combined standardised mean differences, NaN on the diagonal.

    Notes
    -----
    Each dataset's p-value and effect are weighted by that dataset's own
    subject count. MOABB 1.7.2 pairs the values (sorted by dataset name) with
    counts in order of appearance; both agree whenever datasets appear in
    sorted order. Datasets lacking one of the two pipelines are left out of
    that pair.
    """
    stats = _check_columns(stats, _STATS_COLUMNS, "stats")
    algs = list(stats["pipe1"].unique())
    nsub = stats.groupby("dataset", sort=False)["nsub"].mean()
    pairs = stats[stats["pipe1"] != stats["pipe2"]]
    p_full = pairs.pivot_table(values="p", index=["pipe1", "pipe2"], columns="dataset", dropna=False)
    t_full = pairs.pivot_table(values="smd", index=["pipe1", "pipe2"], columns="dataset", dropna=False)
    P = np.full((len(algs), len(algs)), np.nan)
    T = np.full((len(algs), len(algs)), np.nan)
    for a, first in enumerate(algs):
        for b, second in enumerate(algs):
            if a == b or (first, second) not in p_full.index:
                continue
            p = p_full.loc[(first, second)].dropna()
            t = t_full.loc[(first, second), p.index]
            weights = nsub.loc[p.index].to_numpy()
            P[a, b] = combine_pvalues(p.to_numpy(), weights)
            T[a, b] = combine_effects(t.to_numpy(), weights)
    return pd.DataFrame(P, index=algs, columns=algs), pd.DataFrame(T, index=algs, columns=algs)
