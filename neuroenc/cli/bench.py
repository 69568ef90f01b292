"""``neuroenc bench``: evaluate the pipelines of a file on datasets, store every fold.

The same command runs serially (``--n-jobs 1``), on local processes
(``--n-jobs N``), on a local Dask cluster (``--dask-workers N``) or on any
running Dask cluster (``--scheduler tcp://host:8786``): evaluations fan their
(dataset, subject, pipeline) tasks out through joblib and, with Dask, through
joblib's ``"dask"`` backend.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import time
from collections.abc import Iterator
from typing import Any

from neuroenc.cli.main import (
    Progress,
    frame_records,
    parse_subjects,
    print_json,
    print_table,
    show_progress,
    stdout_reserved_for_json,
)
from neuroenc.errors import DataError
from neuroenc.validation import check_choice

#: ``--evaluation`` value -> evaluation class in :mod:`neuroenc.evaluation.evaluations`.
EVALUATION_CLASSES = {
    "within-session": "WithinSession",
    "cross-session": "CrossSession",
    "cross-subject": "CrossSubject",
    "within-subject": "WithinSubject",
}

#: ``--paradigm`` value -> paradigm class in :mod:`neuroenc.datasets.paradigms`.
PARADIGM_CLASSES = {
    "left-right-imagery": "LeftRightImagery",
    "motor-imagery": "MotorImagery",
    "p300": "P300",
    "erp": "P300",
    "fmri-category": "FMRICategory",
}


def _parse_params(items: list[str], option: str) -> dict[str, Any]:
    """``["fmin=8", "events=[a, b]"]`` -> ``{"fmin": 8, "events": ["a", "b"]}`` (YAML values)."""
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise DataError(f"{option} {item!r}: the value is not a valid YAML scalar or list") from None
    return params


def default_paradigm_name(dataset: Any) -> str:
    """The ``--paradigm`` used for a dataset when none is given (from its kind and events)."""
    kind = getattr(dataset, "paradigm", "imagery")
    if kind == "imagery":
        events = set(getattr(dataset, "events", {}))
        return "left-right-imagery" if {"left_hand", "right_hand"} <= events else "motor-imagery"
    if kind in ("p300", "erp"):
        return "p300"
    if kind == "fmri_category":
        return "fmri-category"
    raise DataError(f"dataset {dataset.code!r} has paradigm kind {kind!r}; choose one with --paradigm")


def load_datasets(names: list[str], subjects: list[Any] | None = None) -> list[Any]:
    """Datasets by name (see ``neuroenc datasets list``), restricted to ``subjects`` if given."""
    from neuroenc.datasets.registry import get_dataset

    datasets = []
    for name in dict.fromkeys(n for item in names for n in item.split(",") if n):
        ds = get_dataset(name)
        if subjects is not None:
            # A copy: a dataset registered as an instance is shared by every get_dataset call.
            ds = copy.copy(ds)
            ds.subject_list = ds.check_subjects(subjects)
        datasets.append(ds)
    if not datasets:
        raise DataError("--datasets names no dataset")
    return datasets


def make_paradigm(name: str | None, datasets: list[Any], params: dict[str, Any], cache: str | None) -> Any:
    """The paradigm object for ``--paradigm`` (or the datasets' default) with its parameters."""
    import neuroenc.datasets.paradigms as paradigms

    if name is None:
        names = {default_paradigm_name(ds) for ds in datasets}
        if len(names) > 1:
            raise DataError(
                f"the datasets need different paradigms ({', '.join(sorted(names))}); choose with --paradigm"
            )
        name = names.pop()
    cls = getattr(paradigms, PARADIGM_CLASSES[check_choice(name, PARADIGM_CLASSES, "paradigm")])
    if cache is not None:
        params = {**params, "cache": cache}
    try:
        paradigm = cls(**params)
    except TypeError as exc:
        raise DataError(f"--paradigm-param: {cls.__name__} does not accept {sorted(params)} ({exc})") from None
    for ds in datasets:
        if hasattr(paradigm, "check_dataset"):
            paradigm.check_dataset(ds)  # says which kind or events are missing
        elif not paradigm.is_valid(ds):
            raise DataError(f"dataset {ds.code!r} cannot be used with paradigm {name!r}")
    return paradigm


def summarise(scores: Any) -> Any:
    """Mean, standard deviation and count of the scores per dataset and pipeline."""
    table = (
        scores.groupby(["dataset", "pipeline"], sort=False)["score"]
        .agg(["mean", "std", "count"])
        .reset_index()
        .rename(columns={"count": "n"})
    )
    return table


@contextlib.contextmanager
def _quiet_mne() -> Iterator[None]:
    """MNE's INFO logs (one block per CSP fit) would drown the table; keep warnings.

    The environment variable reaches worker processes started inside the block.
    """
    import mne

    saved = os.environ.get("MNE_LOGGING_LEVEL")
    os.environ["MNE_LOGGING_LEVEL"] = saved or "WARNING"
    try:
        with mne.utils.use_log_level(os.environ["MNE_LOGGING_LEVEL"]):
            yield
    finally:
        if saved is None:
            os.environ.pop("MNE_LOGGING_LEVEL", None)


def run_bench(args: argparse.Namespace) -> int:
    """Run ``neuroenc bench`` (see ``neuroenc bench --help``); returns the exit code."""
    import neuroenc.evaluation.evaluations as evaluations
    from neuroenc.evaluation.pipelines import load_pipelines
    from neuroenc.evaluation.scaleout import dask_client
    from neuroenc.evaluation.store import ResultsStore

    # Everything the user named is checked before any work starts (and before a cluster starts).
    pipelines = load_pipelines(args.pipelines)
    datasets = load_datasets(args.datasets, parse_subjects(args.subjects))
    paradigm_params = _parse_params(args.paradigm_param, "--paradigm-param")
    paradigm = make_paradigm(args.paradigm, datasets, paradigm_params, args.cache)
    ResultsStore(args.results).close()
    use_dask = args.scheduler is not None or args.dask_workers is not None
    progress = Progress(0, "bench", enabled=show_progress(args))
    evaluation = getattr(evaluations, EVALUATION_CLASSES[args.evaluation])(
        paradigm,
        datasets,
        random_state=args.random_state,
        n_jobs=args.n_jobs if args.n_jobs is not None else (-1 if use_dask else 1),  # -1: every Dask thread
        results=args.results,
        overwrite=args.overwrite,
        n_splits=args.n_splits,
        backend="dask" if use_dask else "loky",
        progress=progress.callback if progress.enabled else False,
    )

    with stdout_reserved_for_json(args.json), _quiet_mne():
        t0 = time.perf_counter()
        with dask_client(args.scheduler, args.dask_workers, threads_per_worker=args.threads_per_worker) as client:
            where = f"Dask at {client.scheduler.address}" if client is not None else f"{evaluation.n_jobs} job(s)"
            try:
                scores = evaluation.process(pipelines)
            finally:
                progress.close()
        if not args.json:
            print(
                f"{args.evaluation} evaluation of {len(pipelines)} pipeline(s) on "
                f"{', '.join(ds.code for ds in datasets)}: {len(scores)} score(s) in "
                f"{time.perf_counter() - t0:.1f} s ({where}); folds stored in {args.results}\n"
            )
    if args.json:
        print_json(frame_records(scores))
        return 0
    if scores.empty:
        print("no score computed")
        return 0
    print_table(summarise(scores))
    return 0
