"""Train/test splits of the four MOABB evaluation protocols.

Each function takes the labels and the metadata (columns ``subject`` and
``session``, one row per epoch, as a MOABB paradigm's ``get_data`` returns
them) and returns a list of :class:`Split` whose indices are *positions*
into those arrays. The folds are exactly MOABB 1.7's for
``WithinSession``, ``CrossSession`` and ``CrossSubject`` (leave one subject
out); see :func:`within_subject_splits` for the one deliberate difference.

A split never depends on which other subjects or sessions are present
(except cross-subject, where the other subjects *are* the training set), so
an interrupted run that resumes gets the same folds.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from neuroenc.errors import LabelError
from neuroenc.validation import check_length, check_positive

__all__ = [
    "Split",
    "within_session_splits",
    "cross_session_splits",
    "within_subject_splits",
    "cross_subject_splits",
    "resolve_seed",
]


@dataclass(frozen=True)
class Split:
    """One cross-validation fold.

    Attributes
    ----------
    fold : int
        Fold number within its subject/session (WithinSession), subject
        (CrossSession, WithinSubject) or dataset (CrossSubject).
    train, test : numpy.ndarray of int
        Positions of the training and test epochs.
    """

    fold: int
    train: np.ndarray
    test: np.ndarray


def resolve_seed(random_state: Any) -> int | None:
    """An int seed (or None) from ``random_state``.

    A :class:`numpy.random.RandomState` is turned into an int by drawing
    from it, as MOABB's splitters do, so that every session gets its own
    freshly seeded generator.
    """
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31))
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, (int, np.integer)):
        raise LabelError(f"random_state must be None, an int or a numpy RandomState, got {random_state!r}.")
    return int(random_state)


def _check_inputs(y: Any, metadata: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    y = np.asarray(y)
    if not isinstance(metadata, pd.DataFrame):
        raise LabelError(f"metadata must be a pandas DataFrame, got {type(metadata).__name__}.")
    missing = [c for c in columns if c not in metadata.columns]
    if missing:
        raise LabelError(
            f"metadata lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, metadata.columns))}."
        )
    check_length(len(metadata), y, "y", of="metadata rows")
    return y


def _n_splits(n_splits: Any) -> int:
    n = int(check_positive(n_splits, "n_splits"))
    if n != n_splits or n < 2:
        raise LabelError(f"n_splits must be an integer >= 2, got {n_splits!r}.")
    return n


_local = threading.local()


def _seeded(seed: int) -> np.random.RandomState:
    """The generator ``RandomState(seed)`` gives, without its 0.16 ms of OS-entropy seeding first."""
    rng = getattr(_local, "rng", None)
    if rng is None:
        rng = _local.rng = np.random.RandomState()
    rng.seed(seed)
    return rng


def _stratified_test_folds(y: np.ndarray, n_splits: int, seed: int | None) -> np.ndarray:
    """Test fold of every sample, as scikit-learn's ``StratifiedKFold(shuffle=True)`` assigns them.

    Same algorithm and random draws (checked against scikit-learn in the
    tests) without its generic target checks, which cost ten times the
    assignment itself for a session of a hundred trials.
    """
    if y.ndim != 1:
        raise LabelError(f"Stratified folds need one label per epoch; got labels of shape {y.shape}.")
    if y.dtype.kind == "f" and not np.array_equal(y, np.floor(y)):
        raise LabelError("Stratified folds need class labels; got continuous values.")
    if n_splits > len(y):
        raise LabelError(f"n_splits={n_splits} exceeds the number of epochs ({len(y)}) of a partition.")
    # classes numbered by first appearance, as scikit-learn shuffles them in that order
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    by_appearance = np.argsort(np.argsort(first, kind="stable"), kind="stable")
    encoded = by_appearance[inverse.reshape(-1)]
    n_classes = len(first)
    counts = np.bincount(encoded, minlength=n_classes)
    if (counts < n_splits).all():
        raise LabelError(f"n_splits={n_splits} exceeds the number of epochs of every class ({counts.tolist()}).")
    if counts.min() < n_splits:
        warnings.warn(
            f"The least populated class has only {counts.min()} members, which is less than n_splits={n_splits}.",
            UserWarning,
            stacklevel=4,
        )
    # Dealing the sorted labels round-robin gives each fold its share of every class.
    dealt = np.sort(encoded)
    per_fold = np.stack([np.bincount(dealt[i::n_splits], minlength=n_classes) for i in range(n_splits)])
    rng = np.random.mtrand._rand if seed is None else _seeded(seed)
    folds = np.empty(len(y), dtype=np.intp)
    for k in range(n_classes):
        of_class = np.repeat(np.arange(n_splits), per_fold[:, k])
        rng.shuffle(of_class)
        folds[encoded == k] = of_class
    return folds


def _kfold(y: np.ndarray, n_splits: int, seed: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    # MOABB hands each partition a fresh RandomState(seed); an int seed does the same.
    folds = _stratified_test_folds(y, n_splits, seed)
    return [(np.flatnonzero(folds != i), np.flatnonzero(folds == i)) for i in range(n_splits)]


def within_session_splits(
    y: Any, metadata: pd.DataFrame, *, n_splits: int = 5, random_state: Any = None
) -> list[Split]:
    """Stratified k-fold within each (subject, session), as MOABB's ``WithinSessionSplitter``.

    Parameters
    ----------
    y : array-like, shape (n_epochs,)
        Labels.
    metadata : pandas.DataFrame
        Columns ``subject`` and ``session``, one row per epoch.
    n_splits : int
        Folds per session.
    random_state : int, RandomState or None
        Seed of the shuffling; every session is split with a generator
        seeded afresh, so a session's folds do not depend on the others.

    Returns
    -------
    list of Split
        Folds in (subject, session, fold) order; ``fold`` counts within the session.
    """
    y = _check_inputs(y, metadata, ("subject", "session"))
    n_splits, seed = _n_splits(n_splits), resolve_seed(random_state)
    splits = []
    for positions in _groups(metadata, ["subject", "session"]):
        for fold, (train, test) in enumerate(_kfold(y[positions], n_splits, seed)):
            splits.append(Split(fold, positions[train], positions[test]))
    return splits


def cross_session_splits(y: Any, metadata: pd.DataFrame) -> list[Split]:
    """Leave one session out, per subject, as MOABB's ``CrossSessionSplitter``.

    Subjects with a single session give no fold (MOABB skips them too).

    Returns
    -------
    list of Split
        One fold per session of each subject, sessions in sorted order.
    """
    y = _check_inputs(y, metadata, ("subject", "session"))
    splits = []
    for positions in _groups(metadata, ["subject"]):
        sessions = metadata["session"].to_numpy()[positions]
        if len(np.unique(sessions)) < 2:
            continue
        for fold, (train, test) in enumerate(LeaveOneGroupOut().split(positions, groups=sessions)):
            splits.append(Split(fold, positions[train], positions[test]))
    return splits


def within_subject_splits(
    y: Any, metadata: pd.DataFrame, *, n_splits: int = 5, random_state: Any = None
) -> list[Split]:
    """Stratified k-fold over all sessions of each subject pooled.

    Unlike MOABB's ``WithinSubjectSplitter``, which threads one random
    generator through the subjects in a shuffled order (so a subject's
    folds change when another subject is added or skipped), each subject
    here gets a generator seeded afresh, like sessions in
    :func:`within_session_splits`; folds are thus stable under resume.

    Returns
    -------
    list of Split
        Folds in (subject, fold) order.
    """
    y = _check_inputs(y, metadata, ("subject", "session"))
    n_splits, seed = _n_splits(n_splits), resolve_seed(random_state)
    splits = []
    for positions in _groups(metadata, ["subject"]):
        for fold, (train, test) in enumerate(_kfold(y[positions], n_splits, seed)):
            splits.append(Split(fold, positions[train], positions[test]))
    return splits


def cross_subject_splits(y: Any, metadata: pd.DataFrame, *, n_splits: int | None = None) -> list[Split]:
    """Leave one subject out (``n_splits=None``) or group k-fold over subjects.

    Same folds as MOABB's ``CrossSubjectSplitter`` (``LeaveOneGroupOut``,
    or ``GroupKFold(n_splits)`` when ``n_splits`` is given).

    Returns
    -------
    list of Split
        One fold per held-out subject (group), in sorted subject order.
    """
    y = _check_inputs(y, metadata, ("subject", "session"))
    subjects = metadata["subject"].to_numpy()
    n_subjects = len(pd.unique(subjects))
    if n_subjects < 2:
        raise LabelError(f"Cross-subject splits need at least 2 subjects; got {n_subjects}.")
    if n_splits is None:
        cv = LeaveOneGroupOut()
    else:
        n_splits = _n_splits(n_splits)
        if n_splits > n_subjects:
            raise LabelError(f"n_splits={n_splits} exceeds the number of subjects ({n_subjects}).")
        cv = GroupKFold(n_splits)
    positions = np.arange(len(y))
    return [Split(fold, train, test) for fold, (train, test) in enumerate(cv.split(positions, y, groups=subjects))]


def _groups(metadata: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    """Positions of each group of ``columns``, keys sorted (as ``groupby(sort=True)``, which costs 10x more)."""
    sizes, codes = [], []
    for column in columns:
        series = metadata[column]
        if isinstance(series.dtype, pd.CategoricalDtype):  # pandas orders categories its own way
            return _groups_pandas(metadata, columns)
        values = series.to_numpy()
        if values.dtype.kind in "iu" and len(values) and (values == values[0]).all():  # one subject loaded
            code, n_keys = np.zeros(len(values), dtype=np.intp), 1
        else:
            try:
                code, unique = pd.factorize(values, sort=True)  # hashing: cheaper than np.unique
            except TypeError:  # keys of mixed types: only pandas orders them
                return _groups_pandas(metadata, columns)
            n_keys = len(unique)
        if (code < 0).any():  # pandas leaves missing keys out
            return _groups_pandas(metadata, columns)
        sizes.append(n_keys)
        codes.append(code)
    combined = np.ravel_multi_index(codes, sizes) if len(codes) > 1 else codes[0]
    order = np.argsort(combined, kind="stable").astype(np.intp)
    starts = np.flatnonzero(np.diff(combined[order], prepend=-1))
    return np.split(order, starts[1:])


def _groups_pandas(metadata: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    grouped = metadata.reset_index(drop=True).groupby(columns, sort=True).indices
    return [np.asarray(pos, dtype=np.intp) for pos in grouped.values()]
