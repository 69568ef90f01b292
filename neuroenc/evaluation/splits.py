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

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold

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


def _kfold(y: np.ndarray, n_splits: int, seed: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    # MOABB hands each partition a fresh RandomState(seed); an int seed does the same.
    cv = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y))


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
    for _, positions in _groups(metadata, ["subject", "session"]):
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
    for _, positions in _groups(metadata, ["subject"]):
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
    for _, positions in _groups(metadata, ["subject"]):
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


def _groups(metadata: pd.DataFrame, columns: list[str]) -> list[tuple[Any, np.ndarray]]:
    """(key, positions) per group of ``columns``, keys sorted."""
    grouped = metadata.reset_index(drop=True).groupby(columns, sort=True).indices
    return [(key, np.asarray(pos, dtype=np.intp)) for key, pos in grouped.items()]
