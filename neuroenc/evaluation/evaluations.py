"""MOABB-style evaluations: every pipeline on every subject of every dataset.

:class:`WithinSession`, :class:`CrossSession`, :class:`CrossSubject` and
:class:`WithinSubject` take a paradigm (any object with MOABB's paradigm
interface: ``get_data(dataset, subjects) -> (X, labels, metadata)``,
``scoring`` and ``is_valid(dataset)``), datasets (objects with ``code`` and
``subject_list``) and, in :meth:`process`, a dict of pipelines. Scores,
splits and the returned table equal MOABB 1.7's ``WithinSessionEvaluation``,
``CrossSessionEvaluation`` and ``CrossSubjectEvaluation`` for the same
pipelines and seed.

A pipeline is a scikit-learn estimator (classifier: scored with the
paradigm's metric; regressor: mean Pearson r over targets), or a callable
analysis ``analysis(train, test) -> score`` receiving two
:class:`~neuroenc.BrainData` (for RSA or encoding scores computed by any
code); a dict return gives one ``score_<key>`` column per entry (e.g. per ROI).

Work is fanned out as one joblib task per (dataset, subject, pipeline) — per
(dataset, held-out fold, pipeline) for :class:`CrossSubject` — with the
``loky``, ``threading`` or ``dask`` backend. With ``results=`` every fold is
written to a :class:`~neuroenc.evaluation.store.ResultsStore` as soon as it
finishes; a rerun computes only the folds not yet stored.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import numbers
import pickle
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_regressor

from neuroenc.errors import DataError, LabelError, UnknownNameError
from neuroenc.evaluation.splits import (
    Split,
    cross_session_splits,
    cross_subject_splits,
    resolve_seed,
    within_session_splits,
    within_subject_splits,
)
from neuroenc.validation import check_array, check_choice, check_length

__all__ = ["WithinSession", "CrossSession", "CrossSubject", "WithinSubject", "BACKENDS", "pearson_r_score"]

BACKENDS = ("loky", "threading", "multiprocessing", "dask")
_COLUMNS = (
    "dataset",
    "subject",
    "session",
    "pipeline",
    "score",
    "time",
    "n_samples",
    "n_channels",
    "evaluation",
    "fold",
    "n_folds",
    "score_time",
    "n_samples_test",
    "n_classes",
    "digest",
)


def pearson_r_score(estimator: Any, X: Any, y: Any) -> float:
    """Mean Pearson correlation between predicted and true targets (a scikit-learn scorer).

    Parameters
    ----------
    estimator : fitted regressor
    X : array-like
        Test inputs.
    y : array-like, shape (n_samples,) or (n_samples, n_targets)
        True targets.

    Returns
    -------
    float
        The correlation averaged over targets; a constant target counts as 0.
    """
    pred = np.asarray(estimator.predict(X), dtype=np.float64)
    true = np.asarray(y, dtype=np.float64)
    pred, true = pred.reshape(len(pred), -1), true.reshape(len(true), -1)
    pred, true = pred - pred.mean(0), true - true.mean(0)
    denom = np.sqrt((pred**2).sum(0) * (true**2).sum(0))
    r = np.divide((pred * true).sum(0), denom, out=np.zeros(denom.shape), where=denom > 0)
    return float(r.mean())


def _estimator_score(estimator: Any, X: Any, y: Any) -> float:
    return estimator.score(X, y)


# --------------------------------------------------------------------------
# What one task needs and does
# --------------------------------------------------------------------------
@dataclass
class _Task:
    """One pipeline on one load unit: folds to run and how to label their records."""

    dataset: str
    pipeline_name: str
    pipeline: Any
    kind: str  # "estimator" (classifier), "regressor" or "analysis"
    digest: str
    evaluation: str
    scoring: Any
    param_grid: dict | None
    seed: int | None
    splits: list[Split]
    groups: list[list[tuple]]  # per split: the (subject, session, test positions) scored apart
    n_records: int  # records the whole (load unit, pipeline) gives; marks it complete in the store
    template: _Template | None = None  # estimators: where each fold's unfitted copy comes from


def _score_groups(subjects: np.ndarray, sessions: np.ndarray, test: np.ndarray) -> list[tuple[Any, Any, np.ndarray]]:
    """(subject, session, positions) of each (subject, session) in a test set; one per fold usually."""
    sub, ses = subjects[test], sessions[test]
    if (sub == sub[0]).all() and (ses == ses[0]).all():
        return [(sub[0], ses[0], test)]
    keys = pd.MultiIndex.from_arrays([sub, ses])
    return [(a, b, test[np.flatnonzero(keys == (a, b))]) for a, b in keys.unique().sort_values()]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class _Template:
    """Unfitted copies of a pipeline, one per fold, without a ``clone`` for each.

    The pipeline is cloned once and pickled; unpickling gives the estimator
    ``clone`` would (clone deep-copies every parameter) at a tenth of the
    cost. Pipelines that cannot be pickled are deep-copied instead.
    """

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = clone(pipeline)
        try:
            self._pickled: bytes | None = pickle.dumps(self._pipeline, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # lambdas, open handles...: any pickling failure
            self._pickled = None

    def new(self) -> Any:
        return copy.deepcopy(self._pipeline) if self._pickled is None else pickle.loads(self._pickled)


def _fit_estimator(task: _Task, X: np.ndarray, y: np.ndarray, train: np.ndarray) -> tuple[Any, float]:
    est = task.template.new()
    if task.param_grid is not None:
        # As MOABB: an inner stratified 3-fold grid search, refit on the whole training set.
        from sklearn.model_selection import GridSearchCV, StratifiedKFold

        inner = StratifiedKFold(3, shuffle=True, random_state=task.seed)
        est = GridSearchCV(est, task.param_grid, refit=True, cv=inner, scoring=task.scoring, n_jobs=1)
    t0 = time.perf_counter()
    est.fit(X[train], y[train])
    return est, time.perf_counter() - t0


def _scores(value: Any, what: str) -> dict[str, float]:
    """A score or a dict of scores as {"score": first, "score_<k>": ...}."""
    if isinstance(value, Mapping):
        if not value:
            raise DataError(f"{what} returned an empty dict of scores.")
        out = {f"score_{k}": float(v) for k, v in value.items()}
        return {"score": next(iter(out.values())), **out}
    if isinstance(value, (numbers.Real, np.generic)) and not isinstance(value, bool):
        return {"score": float(value)}
    raise DataError(f"{what} must return a number or a dict of numbers, got {type(value).__name__}.")


def _as_braindata(X: np.ndarray, y: np.ndarray, metadata: pd.DataFrame) -> Any:
    from neuroenc.braindata import BrainData

    obs = metadata.reset_index(drop=True).assign(condition=y)
    if X.ndim == 3:  # epochs without their sampling rate: times are sample numbers
        return BrainData(X, obs, "eeg", sfreq=1.0)
    return BrainData(X, obs, "fmri")


def _run_task(X: np.ndarray, y: np.ndarray, metadata: pd.DataFrame, task: _Task, store: Any) -> list[dict]:
    """Fit and score every fold of ``task``; each fold's records go to ``store`` when it ends."""
    records = []
    data = _as_braindata(X, y, metadata) if task.kind == "analysis" else None
    n_channels = int(X.shape[1])
    for split, groups in zip(task.splits, task.groups):
        if task.kind == "analysis":
            train = data[split.train]
            t0 = time.perf_counter()
            results = []
            for _, _, pos in groups:
                results.append(_scores(task.pipeline(train, data[pos]), f"Analysis {task.pipeline_name!r}"))
            fit_time, score_times = time.perf_counter() - t0, [0.0] * len(groups)
        else:
            est, fit_time = _fit_estimator(task, X, y, split.train)
            results, score_times = [], []
            for _, _, pos in groups:
                t0 = time.perf_counter()
                results.append(_scores(task.scoring(est, X[pos], y[pos]), f"Scorer of {task.pipeline_name!r}"))
                score_times.append(time.perf_counter() - t0)
        fold_records = [
            {
                "dataset": task.dataset,
                "subject": _plain(subject),
                "session": str(session),
                "pipeline": task.pipeline_name,
                "digest": task.digest,
                "fold": split.fold,
                **scores,
                "time": fit_time,
                "n_samples": len(split.train),
                "n_channels": n_channels,
                "evaluation": task.evaluation,
                "score_time": score_time,
                "n_samples_test": len(pos),
                "n_samples_total": len(split.train) + len(split.test),
                "n_classes": len(np.unique(y[pos])) if task.kind != "regressor" else 0,
                "n_records": task.n_records,
            }
            for (subject, session, pos), scores, score_time in zip(groups, results, score_times)
        ]
        if store is not None:
            store.add_many(fold_records)
        records.extend(fold_records)
    return records


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------
def _pipeline_kind(name: Any, pipeline: Any) -> str:
    if not isinstance(name, str) or not name:
        raise DataError(f"Pipeline names must be non-empty strings, got {name!r}.")
    if hasattr(pipeline, "fit") and hasattr(pipeline, "get_params"):
        return "regressor" if is_regressor(pipeline) else "estimator"
    if callable(pipeline) and not isinstance(pipeline, type):
        try:
            inspect.signature(pipeline).bind(None, None)
        except TypeError:
            raise DataError(
                f"Pipeline {name!r} is a callable that cannot be called as analysis(train, test)."
            ) from None
        except ValueError:  # builtins without a signature: let the call decide
            pass
        return "analysis"
    raise DataError(
        f"Pipeline {name!r} is a {type(pipeline).__name__}, not a scikit-learn estimator "
        "(with fit and get_params) nor a callable analysis(train, test)."
    )


def _resolve_scorer(scoring: Any, kind: str, paradigm_scoring: Any) -> Any:
    """A callable scorer(estimator, X, y) for one pipeline kind; None for analyses."""
    if kind == "analysis":
        return None
    if scoring is None:
        scoring = "r" if kind == "regressor" else paradigm_scoring
    if scoring is None:  # a paradigm without a metric: the estimator's own score method
        return _estimator_score
    if scoring == "r":
        return pearson_r_score
    if callable(scoring):
        return scoring
    from sklearn.metrics import get_scorer, get_scorer_names

    check_choice(scoring, ["r", *get_scorer_names()], "scoring")
    return get_scorer(scoring)


def _is_simple(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return len(value) <= 100 and all(_is_simple(v) for v in value)
    if isinstance(value, dict):
        return len(value) <= 100 and all(_is_simple(k) and _is_simple(v) for k, v in value.items())
    return False


def _describe_paradigm(paradigm: Any) -> str:
    """Class and simple public settings (bands, window, events...): what shaped the data."""
    attrs = {k: v for k, v in sorted(vars(paradigm).items()) if not k.startswith("_") and _is_simple(v)}
    return f"{type(paradigm).__module__}.{type(paradigm).__qualname__}{attrs!r}"


def _check_dask_client() -> None:
    try:
        from distributed import default_client

        default_client()
    except (ImportError, ValueError) as exc:
        raise DataError(
            "backend='dask' needs a running dask.distributed Client "
            "(from distributed import Client; client = Client(...)) before process()."
        ) from exc


# --------------------------------------------------------------------------
# Evaluations
# --------------------------------------------------------------------------
class _Evaluation:
    """Shared machinery; subclasses say how to split and whether folds are averaged."""

    name = ""
    aggregate_folds = False  # one row per (subject, session) averaging folds, as MOABB
    needs_all_subjects = False  # the training set spans subjects: load the whole dataset at once

    def __init__(
        self,
        paradigm: Any,
        datasets: Any = None,
        *,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int = 1,
        results: Any = None,
        overwrite: bool = False,
        n_splits: int | None = None,
        scoring: str | Callable | None = None,
        backend: str = "loky",
        progress: bool | Callable[[int, int, str], Any] = False,
    ) -> None:
        for attr in ("get_data", "is_valid"):
            if not callable(getattr(paradigm, attr, None)):
                raise DataError(
                    f"paradigm must have MOABB's paradigm interface; {type(paradigm).__name__} lacks {attr}()."
                )
        self.paradigm = paradigm
        self.random_state = resolve_seed(random_state)
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
            raise DataError(f"n_jobs must be a non-zero integer, got {n_jobs!r}.")
        self.n_jobs = int(n_jobs)
        self.backend = check_choice(backend, BACKENDS, "backend")
        if n_splits is not None and (isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral)):
            raise DataError(f"n_splits must be an integer >= 2 or None, got {n_splits!r}.")
        if n_splits is not None and n_splits < 2:
            raise DataError(f"n_splits must be >= 2, got {n_splits}.")
        self.n_splits = None if n_splits is None else int(n_splits)
        if scoring is not None and not callable(scoring):
            _resolve_scorer(scoring, "estimator", None)  # unknown names fail here, before any work
        self.scoring = scoring
        if progress is not False and progress is not True and not callable(progress):
            raise DataError("progress must be a bool or a callable progress(done, total, description).")
        self.progress = progress
        self.overwrite = bool(overwrite)
        self.results = results
        self.datasets = self._valid_datasets(datasets)

    # -- datasets ---------------------------------------------------------------
    def is_valid(self, dataset: Any) -> bool:
        """Whether ``dataset`` can be evaluated this way (always, except where a subclass says)."""
        return True

    def _valid_datasets(self, datasets: Any) -> list:
        if datasets is None:
            datasets = getattr(self.paradigm, "datasets", None)
        if datasets is None:
            raise DataError("No datasets given and the paradigm lists none.")
        if hasattr(datasets, "subject_list"):
            datasets = [datasets]
        datasets = list(datasets)
        if not datasets:
            raise DataError("datasets is empty.")
        kept = []
        for ds in datasets:
            if not hasattr(ds, "code") or not hasattr(ds, "subject_list"):
                raise DataError(f"A dataset needs .code and .subject_list; got {type(ds).__name__}.")
            if not self.paradigm.is_valid(ds):
                warnings.warn(
                    f"Dataset {ds.code!r} is not compatible with paradigm {type(self.paradigm).__name__}; skipping it.",
                    stacklevel=3,
                )
            elif not self.is_valid(ds):
                warnings.warn(
                    f"Dataset {ds.code!r} cannot be used for {self.name}: {self._why(ds)}; skipping it.", stacklevel=3
                )
            else:
                kept.append(ds)
        if not kept:
            raise DataError(f"No dataset left to evaluate: none is compatible with the paradigm and {self.name}.")
        return kept

    def _why(self, dataset: Any) -> str:
        return "requirements not met"

    # -- splitting (subclasses) -------------------------------------------------------
    def _splits(self, y: np.ndarray, metadata: pd.DataFrame) -> list[Split]:
        raise NotImplementedError

    def _load_units(self, dataset: Any) -> list[list]:
        """Subjects loaded together: one each, or all for cross-subject."""
        subjects = list(dataset.subject_list)
        return [subjects] if self.needs_all_subjects else [[s] for s in subjects]

    def _unit_tasks(self, scored: list[tuple[Split, list]]) -> list[list[tuple[Split, list]]]:
        """(split, score groups) pairs grouped into tasks: all folds of the load unit (one subject) in one."""
        return [scored]

    # -- running ---------------------------------------------------------------------
    def process(self, pipelines: Mapping[str, Any], param_grid: Mapping[str, dict] | None = None) -> pd.DataFrame:
        """Evaluate every pipeline on every subject of every dataset.

        Parameters
        ----------
        pipelines : dict of str to estimator or callable
            Named scikit-learn pipelines (neuroenc, pyRiemann, MNE or any
            estimator), or callables ``analysis(train, test) -> score``.
        param_grid : dict of str to dict, optional
            Grid of parameters per pipeline name, searched by an inner
            stratified 3-fold cross-validation on each training set (as MOABB).

        Returns
        -------
        pandas.DataFrame
            One row per dataset, subject, session and pipeline (folds
            averaged) for :class:`WithinSession` and :class:`WithinSubject`;
            one row per fold and test session for :class:`CrossSession` and
            :class:`CrossSubject`. Columns: dataset, subject, session,
            pipeline, score, time (mean fit time in s), n_samples (as MOABB:
            epochs of the session / subject when folds are averaged, training
            epochs otherwise), n_channels, evaluation, fold (-1 for averaged
            rows), n_folds, score_time, n_samples_test, n_classes, digest,
            and ``score_<key>`` columns for analyses returning dicts.
        """
        kinds = self._check_pipelines(pipelines, param_grid)
        scorers = {
            name: _resolve_scorer(self.scoring, kind, getattr(self.paradigm, "scoring", None))
            for name, kind in kinds.items()
        }
        digests = {name: self._digest(pipe, scorers[name]) for name, pipe in pipelines.items()}
        if self.backend == "dask":
            _check_dask_client()
        store = self._open_store(pipelines, digests)
        try:
            stored = self._stored_records(store, pipelines, digests)
            plan = self._plan(pipelines, stored)
            # one task per planned (unit, pipeline); _tasks corrects it once it knows the folds
            count = {"done": 0, "total": sum(len(names) for _, _, names in plan)}
            task_iter = self._tasks(plan, pipelines, kinds, scorers, digests, param_grid, stored, count)
            new_records = self._execute(task_iter, count, store)
        finally:
            if store is not None and store is not self.results:
                store.close()
        return self._table(stored + new_records, pipelines)

    def _check_pipelines(self, pipelines: Any, param_grid: Any) -> dict[str, str]:
        if not isinstance(pipelines, Mapping):
            raise DataError(f"pipelines must be a dict of name -> estimator, got {type(pipelines).__name__}.")
        if not pipelines:
            raise DataError("pipelines is empty; give at least one named pipeline.")
        kinds = {name: _pipeline_kind(name, pipe) for name, pipe in pipelines.items()}
        if param_grid is not None:
            if not isinstance(param_grid, Mapping):
                raise DataError("param_grid must be a dict of pipeline name -> parameter grid.")
            unknown = [n for n in param_grid if n not in pipelines]
            if unknown:
                raise UnknownNameError(f"param_grid names unknown pipeline(s) {unknown}; pipelines: {list(pipelines)}.")
            for name in param_grid:
                if kinds[name] == "analysis":
                    raise DataError(f"param_grid cannot tune the callable analysis {name!r}.")
        return kinds

    def _digest(self, pipeline: Any, scorer: Any) -> str:
        """Pipeline digest combined with everything else that decides a fold's score."""
        from neuroenc.evaluation.store import pipeline_digest

        setup = (
            pipeline_digest(pipeline),
            self.name,
            self.n_splits,
            self.random_state,
            pipeline_digest(scorer) if scorer is not None else None,
            _describe_paradigm(self.paradigm),
        )
        return hashlib.sha256(repr(setup).encode()).hexdigest()[:32]

    def _open_store(self, pipelines: Mapping, digests: dict[str, str]) -> Any:
        if self.results is None:
            return None
        from neuroenc.evaluation.store import ResultsStore

        # A fold written without fsync survives a killed process (the OS keeps it); pass your own
        # ResultsStore(path, durable=True) to survive power cuts too, at ~0.4 ms more per fold.
        store = self.results if isinstance(self.results, ResultsStore) else ResultsStore(self.results, durable=False)
        if self.overwrite:
            for ds in self.datasets:
                for name in pipelines:
                    store.remove(dataset=ds.code, pipeline=name, digest=digests[name])
        return store

    def _stored_records(self, store: Any, pipelines: Mapping, digests: dict[str, str]) -> list[dict]:
        if store is None:
            return []
        frame = store.to_frame(
            dataset=[ds.code for ds in self.datasets], pipeline=list(pipelines), digest=sorted(set(digests.values()))
        )
        if frame.empty:
            return []
        frame = frame[frame["digest"].to_numpy() == frame["pipeline"].map(digests).to_numpy()]
        records = frame.to_dict("records")
        subject_of = {(ds.code, str(s)): s for ds in self.datasets for s in ds.subject_list}
        for rec in records:  # the store may hand subjects back as text
            rec["subject"] = subject_of.get((rec["dataset"], str(rec["subject"])), rec["subject"])
        return records

    def _plan(self, pipelines: Mapping, stored: list[dict]) -> list[tuple[Any, list, list[str]]]:
        """(dataset, subjects to load, pipelines not yet complete there), skipping complete units unloaded."""
        counts: dict[tuple, list[int]] = {}
        for rec in stored:
            unit = (rec["dataset"], None if self.needs_all_subjects else rec["subject"], rec["pipeline"])
            counts.setdefault(unit, []).append(int(rec.get("n_records", -1)))
        plan = []
        for ds in self.datasets:
            for subjects in self._load_units(ds):
                unit_subject = None if self.needs_all_subjects else subjects[0]
                todo = []
                for name in pipelines:
                    seen = counts.get((ds.code, unit_subject, name), [])
                    if not seen or len(seen) < max(seen):
                        todo.append(name)
                if todo:
                    plan.append((ds, subjects, todo))
        return plan

    def _load(self, dataset: Any, subjects: list) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        X, y, metadata = self.paradigm.get_data(dataset, subjects=subjects)
        X = check_array(X, f"X of {dataset.code}", ndim=(2, 3), dtype=None)
        y = np.asarray(y)
        check_length(len(X), y, "labels", of="epochs")
        if not isinstance(metadata, pd.DataFrame) or not {"subject", "session"} <= set(metadata.columns):
            raise LabelError(f"The paradigm's metadata for {dataset.code} needs columns subject and session.")
        check_length(len(X), metadata, "metadata", of="epochs")
        return X, y, metadata.reset_index(drop=True)

    def _tasks(self, plan, pipelines, kinds, scorers, digests, param_grid, stored, count) -> Iterator[tuple]:
        """Load each unit when the executor asks for its first task (so memory holds few units)."""
        done = {(r["dataset"], str(r["subject"]), str(r["session"]), r["pipeline"], r["fold"]) for r in stored}
        templates: dict[str, _Template] = {}  # one clone per pipeline and run, not per task
        for ds, subjects, names in plan:
            X, y, metadata = self._load(ds, subjects)
            # labels as 0..k-1 in sorted order, as MOABB's LabelEncoder; the folds only depend on
            # which epochs share a label, and integer codes split faster than text labels
            codes = np.unique(y, return_inverse=True)[1].reshape(-1) if y.ndim == 1 and y.dtype.kind != "f" else None
            splits = self._splits(y if codes is None else codes, metadata)
            if not splits:
                warnings.warn(f"{self.name}: no fold for {ds.code} subject(s) {subjects}; skipping.", stacklevel=2)
                count["total"] -= len(names)
                continue
            subjects_, sessions_ = metadata["subject"].to_numpy(), metadata["session"].to_numpy()
            scored = [(s, _score_groups(subjects_, sessions_, s.test)) for s in splits]
            n_records = sum(len(g) for _, g in scored)
            unit_tasks = []
            for name in names:
                kind = kinds[name]
                if kind == "estimator":
                    if codes is None:
                        codes = np.unique(y, return_inverse=True)[1]
                    y_fit = codes
                else:
                    y_fit = y
                for chunk in self._unit_tasks(scored):
                    todo = [
                        (s, g)
                        for s, g in chunk
                        if any((ds.code, str(_plain(sub)), str(ses), name, s.fold) not in done for sub, ses, _ in g)
                    ]
                    if not todo:
                        continue
                    if kind != "analysis" and name not in templates:
                        templates[name] = _Template(pipelines[name])
                    task = _Task(
                        dataset=ds.code,
                        pipeline_name=name,
                        pipeline=pipelines[name],
                        kind=kind,
                        digest=digests[name],
                        evaluation=self.name,
                        scoring=scorers[name],
                        param_grid=None if param_grid is None else param_grid.get(name),
                        seed=self.random_state,
                        splits=[s for s, _ in todo],
                        groups=[g for _, g in todo],
                        n_records=n_records,
                        template=templates.get(name),
                    )
                    unit_tasks.append((X, y_fit, metadata, task))
            count["total"] += len(unit_tasks) - len(names)
            yield from unit_tasks

    def _execute(self, task_iter: Iterator[tuple], count: dict, store: Any) -> list[dict]:
        from joblib import delayed

        from neuroenc.evaluation.scaleout import make_parallel

        report = self._reporter(count)
        records: list[dict] = []
        if self.n_jobs == 1 and self.backend != "dask":
            for X, y, metadata, task in task_iter:  # in-process: no pickling, same store object
                records.extend(_run_task(X, y, metadata, task, store))
                report(task)
            return records
        n_jobs = -1 if self.backend == "dask" and self.n_jobs == 1 else self.n_jobs
        # called outside the backend's configuration: the joblib calls made while the tasks are
        # produced (MNE filtering in a paradigm) must not submit to the same pool and deadlock
        parallel = make_parallel(n_jobs, self.backend, return_as="generator_unordered")
        outputs = parallel(delayed(_run_fold_task)(X, y, metadata, task, store) for X, y, metadata, task in task_iter)
        for task, task_records in outputs:
            records.extend(task_records)
            report(task)
        return records

    def _reporter(self, count: dict) -> Callable[[_Task], None]:
        callback = self.progress
        if callback is True:
            import sys

            def callback(done: int, total: int, desc: str) -> None:
                print(f"[{self.name}] {done}/{total} {desc}", file=sys.stderr, flush=True)

        def report(task: _Task) -> None:
            count["done"] += 1
            if callback:
                callback(count["done"], max(count["total"], count["done"]), f"{task.dataset} {task.pipeline_name}")

        return report

    def _table(self, records: list[dict], pipelines: Mapping) -> pd.DataFrame:
        # Plain Python over the records: a few dozen rows, where pandas' groupby and sorts cost ~10 ms a run.
        extra = sorted({c for rec in records for c in rec if c.startswith("score_") and c != "score_time"})
        columns = list(_COLUMNS) + extra
        if not records:
            return pd.DataFrame(columns=columns)
        rows = _aggregate(records) if self.aggregate_folds else [{**rec, "n_folds": 1} for rec in records]
        p_order = {name: i for i, name in enumerate(pipelines)}
        ds_order = {ds.code: i for i, ds in enumerate(self.datasets)}

        def position(r: dict, by_subject: bool = True) -> tuple:
            within = (r["subject"], r["session"]) if by_subject else ()
            return (ds_order[r["dataset"]], *within, p_order[r["pipeline"]], r["fold"])

        try:
            rows.sort(key=position)
        except TypeError:  # subjects of mixed types within a dataset
            rows.sort(key=lambda r: position(r, by_subject=False))
        return pd.DataFrame.from_records(rows, columns=columns)


def _mean(values: list) -> float:
    """Mean of the values present (None and NaN skipped, as pandas does); NaN if none."""
    present = np.array([v for v in values if not pd.isna(v)], dtype=np.float64)
    return float(present.mean()) if len(present) else float("nan")


def _aggregate(records: list[dict]) -> list[dict]:
    """One row per (dataset, subject, session, pipeline), folds averaged, MOABB's way."""
    groups: dict[tuple, list[dict]] = {}
    for rec in sorted(records, key=lambda r: r["fold"]):
        groups.setdefault((rec["dataset"], rec["subject"], rec["session"], rec["pipeline"]), []).append(rec)
    averaged = ["time", *dict.fromkeys(c for rec in records for c in rec if c.startswith("score"))]
    rows = []
    for (dataset, subject, session, pipeline), recs in groups.items():
        first = recs[0]
        row = {"dataset": dataset, "subject": subject, "session": session, "pipeline": pipeline}
        row.update({c: _mean([r.get(c) for r in recs]) for c in averaged})
        row.update(
            n_samples=int(first["n_samples_total"]),  # MOABB: train + test of the first fold
            n_samples_test=int(_mean([r["n_samples_test"] for r in recs])),
            n_classes=max(r["n_classes"] for r in recs),
            n_folds=len(recs),
            n_channels=first["n_channels"],
            evaluation=first["evaluation"],
            digest=first["digest"],
            fold=-1,
        )
        rows.append(row)
    return rows


def _run_fold_task(X: np.ndarray, y: np.ndarray, metadata: pd.DataFrame, task: _Task, store: Any) -> tuple:
    return task, _run_task(X, y, metadata, task, store)


class WithinSession(_Evaluation):
    """Stratified k-fold cross-validation within each session of each subject.

    Same folds, scores and table as MOABB's ``WithinSessionEvaluation``:
    ``StratifiedKFold(n_splits, shuffle=True)`` per session, its generator
    seeded afresh with ``random_state`` for every session; scores averaged
    over folds.

    Parameters
    ----------
    paradigm : paradigm
        Object with MOABB's paradigm interface (``get_data``, ``is_valid``,
        ``scoring``): a :mod:`moabb.paradigms` or :mod:`neuroenc.datasets` paradigm.
    datasets : dataset or list of datasets, optional
        Objects with ``code`` and ``subject_list`` (MOABB or neuroenc
        datasets); default the paradigm's ``datasets``. Datasets the
        paradigm or the evaluation cannot use are skipped with a warning;
        none left raises :class:`~neuroenc.errors.DataError`.
    random_state : int, RandomState or None
        Seed of the fold shuffling; the same seed gives the same folds in every run.
    n_jobs : int
        Parallel tasks (one per dataset, subject and pipeline); -1 for all cores.
    results : path-like or ResultsStore, optional
        Store every fold there as soon as it finishes (a path is opened with
        ``durable=False``: records survive a killed process; pass a
        ``ResultsStore(path, durable=True)`` to survive power cuts); folds already
        stored (same pipeline digest, evaluation, seed and paradigm) are
        not recomputed. None keeps results in memory only.
    overwrite : bool
        Delete the stored folds of these datasets and pipelines first.
    n_splits : int, optional
        Folds per session (default 5).
    scoring : str or callable, optional
        A scikit-learn scorer name or ``scorer(estimator, X, y)``; default
        the paradigm's ``scoring`` (ROC AUC for two classes, accuracy otherwise)
        and, for regressors, ``"r"`` (:func:`pearson_r_score`).
    backend : {"loky", "threading", "multiprocessing", "dask"}
        joblib backend; ``"dask"`` needs a running ``distributed.Client``.
    progress : bool or callable
        ``progress(done, total, description)`` after each task; True prints to stderr.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline  # doctest: +SKIP
    >>> from neuroenc.riemann import Covariances, MDM
    >>> ev = WithinSession(paradigm, [dataset], random_state=42, results="results.h5")
    >>> df = ev.process({"MDM": make_pipeline(Covariances("oas"), MDM())})
    """

    name = "WithinSession"
    aggregate_folds = True

    def _splits(self, y: np.ndarray, metadata: pd.DataFrame) -> list[Split]:
        return within_session_splits(y, metadata, n_splits=self.n_splits or 5, random_state=self.random_state)


class CrossSession(_Evaluation):
    """Leave one session out within each subject (MOABB's ``CrossSessionEvaluation``).

    One row per test session. A dataset with a single session (known from
    its ``n_sessions``) is skipped with a warning, as MOABB does; subjects
    that turn out to have one session give no fold (also with a warning).
    Parameters as :class:`WithinSession` (``n_splits`` is not used).
    """

    name = "CrossSession"

    def is_valid(self, dataset: Any) -> bool:
        """False for a dataset whose ``n_sessions`` is 1."""
        n_sessions = getattr(dataset, "n_sessions", None)
        return n_sessions is None or n_sessions > 1

    def _why(self, dataset: Any) -> str:
        return f"it has {dataset.n_sessions} session(s); at least 2 are needed"

    def _splits(self, y: np.ndarray, metadata: pd.DataFrame) -> list[Split]:
        return cross_session_splits(y, metadata)


class WithinSubject(_Evaluation):
    """Stratified k-fold over all sessions of each subject pooled.

    Each fold is scored per session of its test set and the scores are
    averaged over folds per (subject, session), as MOABB's
    ``WithinSubjectEvaluation``; folds differ from MOABB's only in that each
    subject's generator is seeded afresh (see
    :func:`~neuroenc.evaluation.splits.within_subject_splits`).
    Parameters as :class:`WithinSession` (``n_splits`` folds per subject, default 5).
    """

    name = "WithinSubject"
    aggregate_folds = True

    def _splits(self, y: np.ndarray, metadata: pd.DataFrame) -> list[Split]:
        return within_subject_splits(y, metadata, n_splits=self.n_splits or 5, random_state=self.random_state)


class CrossSubject(_Evaluation):
    """Train on the other subjects, test on the held-out ones (MOABB's ``CrossSubjectEvaluation``).

    Leave one subject out by default, ``GroupKFold(n_splits)`` over subjects
    when ``n_splits`` is given. Each fold is one task; its score is given
    per held-out subject and session (one row each). Needs at least two
    subjects. Other parameters as :class:`WithinSession`.
    """

    name = "CrossSubject"
    needs_all_subjects = True

    def is_valid(self, dataset: Any) -> bool:
        """False for a dataset with fewer than two subjects."""
        return len(dataset.subject_list) > 1

    def _why(self, dataset: Any) -> str:
        return f"it has {len(dataset.subject_list)} subject(s); at least 2 are needed"

    def _splits(self, y: np.ndarray, metadata: pd.DataFrame) -> list[Split]:
        return cross_subject_splits(y, metadata, n_splits=self.n_splits)

    def _unit_tasks(self, scored: list[tuple[Split, list]]) -> list[list[tuple[Split, list]]]:
        return [[pair] for pair in scored]  # one task per held-out fold
