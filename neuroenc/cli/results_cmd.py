"""``neuroenc results {show,export,stats,plot} RESULTS.h5``: use stored scores."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neuroenc.cli.main import frame_records, parse_subjects, print_json, print_table
from neuroenc.errors import DataError, EmptySelectionError
from neuroenc.validation import check_file

#: Columns that identify one score after averaging the folds.
SCORE_KEYS = ["dataset", "subject", "session", "pipeline"]


def load_scores(path: str, **filters: Any) -> Any:
    """Per-fold records of a results file, filtered by column values.

    Raises a one-line error if the file is missing or unreadable, holds no
    score, or a filter value matches nothing (the message lists stored values).
    """
    from neuroenc.evaluation.store import ResultsStore

    check_file(path, "results file")
    frame = ResultsStore(path).to_frame()
    if frame.empty:
        raise EmptySelectionError(f"{path}: the results file holds no score")
    for column, wanted in filters.items():
        if not wanted:
            continue
        keep = frame[column].astype(str).isin([str(w) for w in wanted])
        if not keep.any():
            known = ", ".join(sorted(frame[column].astype(str).unique()))
            raise EmptySelectionError(f"{path}: no score for {column} {', '.join(map(str, wanted))}; stored: {known}")
        frame = frame[keep]
    return frame.reset_index(drop=True)


def mean_over_folds(frame: Any) -> Any:
    """One row per dataset, subject, session and pipeline: mean score and time over folds."""
    keys = [k for k in SCORE_KEYS if k in frame.columns]
    extra = [c for c in ("evaluation", "n_samples", "n_channels") if c in frame.columns]
    agg = {"score": "mean"}
    if "time" in frame.columns:
        agg["time"] = "mean"
    agg.update({c: "first" for c in extra})
    table = frame.groupby(keys, sort=False, dropna=False).agg(agg)
    table["n_folds"] = frame.groupby(keys, sort=False, dropna=False).size()
    return table.reset_index()


def _show(args: argparse.Namespace, frame: Any) -> int:
    table = frame if args.folds else mean_over_folds(frame)
    if args.json:
        print_json(frame_records(table))
        return 0
    print_table(table)
    summary = table.groupby(["dataset", "pipeline"], sort=False)["score"].agg(["mean", "std", "count"])
    print(f"\nMean score per dataset and pipeline ({'folds' if args.folds else 'subjects x sessions'}):")
    print_table(summary.reset_index().rename(columns={"count": "n"}))
    return 0


def _export(args: argparse.Namespace, frame: Any) -> int:
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".csv":
        raise DataError(f"export writes CSV; give a .csv file name, got {out}")
    if not out.parent.is_dir():
        raise DataError(f"cannot write {out}: folder {out.parent} does not exist")
    from neuroenc.evaluation.store import ResultsStore

    # The store writes the CSV atomically; the filters were checked by load_scores.
    ResultsStore(args.path).export_csv(out, **_filters(args))
    if args.json:
        print_json({"path": str(out), "rows": len(frame)})
    else:
        print(f"wrote {len(frame)} fold record(s) to {out}")
    return 0


def _statistics(frame: Any) -> tuple[Any, Any, Any]:
    from neuroenc.evaluation.statistics import compute_dataset_statistics, find_significant_differences

    stats = compute_dataset_statistics(frame, random_state=42)
    p_values, effects = find_significant_differences(stats)
    return stats, p_values, effects


def _matrix_records(matrix: Any) -> dict[str, dict[str, Any]]:
    return {str(row): {str(col): matrix.loc[row, col] for col in matrix.columns} for row in matrix.index}


def _stats(args: argparse.Namespace, frame: Any) -> int:
    stats, p_values, effects = _statistics(frame)
    pairs = stats[stats["pipe1"] != stats["pipe2"]][["dataset", "pipe1", "pipe2", "p", "smd", "nsub"]]
    if args.json:
        print_json({"stats": frame_records(pairs), "p": _matrix_records(p_values), "smd": _matrix_records(effects)})
        return 0
    print("Per dataset: one-tailed p (pipe1 > pipe2) and standardised mean difference")
    print_table(pairs.reset_index(drop=True), floatfmt="{:.4g}")
    print("\nAcross datasets (Stouffer p, weighted by sqrt(n subjects)); row > column:")
    print_table(p_values.reset_index().rename(columns={"index": "p"}), floatfmt="{:.4g}")
    return 0


def _plot(args: argparse.Namespace, frame: Any) -> int:
    import neuroenc.evaluation.plots as plots

    kind = args.kind
    if kind in ("paired", "meta") and not args.pipelines:
        raise DataError(f"--kind {kind} compares two pipelines; name them with --pipelines PIPE1 PIPE2")
    if args.pipelines:
        stored = set(frame["pipeline"].astype(str))
        missing = [p for p in args.pipelines if p not in stored]
        if missing:
            raise EmptySelectionError(
                f"no score for pipeline(s) {', '.join(missing)}; stored: {', '.join(sorted(stored))}"
            )
    out = Path(args.out).expanduser()
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise DataError(f"--out must end in .png, .svg or .pdf, got {out.name}")
    if kind == "score":
        fig = plots.score_plot(frame)
    elif kind == "paired":
        fig = plots.paired_plot(frame, *args.pipelines)
    else:
        stats, p_values, effects = _statistics(frame)
        fig = (
            plots.meta_analysis_plot(stats, *args.pipelines)
            if kind == "meta"
            else plots.summary_plot(p_values, effects)
        )
    plots.save_figure(fig, out)
    if args.json:
        print_json({"path": str(out), "kind": kind})
    else:
        print(f"wrote {kind} plot to {out}")
    return 0


_ACTIONS = {"show": _show, "export": _export, "stats": _stats, "plot": _plot}


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    named = {"dataset": args.dataset, "pipeline": args.pipeline, "subject": parse_subjects(args.subject)}
    return {k: v for k, v in named.items() if v}


def run_results(args: argparse.Namespace) -> int:
    """Run ``neuroenc results ACTION`` (see ``neuroenc results --help``); returns the exit code."""
    frame = load_scores(args.path, **_filters(args))
    return _ACTIONS[args.action](args, frame)
