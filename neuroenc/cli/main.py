"""Entry point of the ``neuroenc`` command.

Subcommand modules are imported only when run so that ``neuroenc --help``
stays instant.

Exit codes: 0 success, 2 usage or input error (one line
``neuroenc <command>: error: ...`` on stderr), 1 unexpected error
(traceback on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from neuroenc._version import __version__

EVALUATIONS = ("within-session", "cross-session", "cross-subject", "within-subject")
PLOT_KINDS = ("score", "paired", "meta", "summary")


class _Parser(argparse.ArgumentParser):
    """Argument parser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _output_options() -> argparse.ArgumentParser:
    shared = _Parser(add_help=False)
    shared.add_argument("--json", action="store_true", help="print one JSON document on stdout and nothing else")
    shared.add_argument(
        "--progress", action="store_true", help="show progress on stderr even when it is not a terminal"
    )
    return shared


def _add_bench(sub: Any, output: argparse.ArgumentParser) -> None:
    bench = sub.add_parser(
        "bench",
        parents=[output],
        help="evaluate pipelines on datasets and store the scores",
        description="Cross-validate the pipelines of a YAML or Python file on datasets (MOABB-style "
        "evaluation) and store one record per fold in an HDF5 results file; already stored "
        "folds are skipped unless --overwrite.",
    )
    bench.add_argument("pipelines", help="pipeline file (.yml/.yaml/.py) or folder of them")
    bench.add_argument(
        "--datasets", nargs="+", required=True, metavar="NAME", help="dataset names (see `neuroenc datasets list`)"
    )
    bench.add_argument("--subjects", nargs="+", metavar="S", help="only these subjects (default: all)")
    bench.add_argument("--evaluation", choices=EVALUATIONS, default="within-session", help="cross-validation scheme")
    bench.add_argument("--paradigm", help="paradigm name (default: from the first dataset's kind)")
    bench.add_argument(
        "--paradigm-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="paradigm parameter, e.g. fmin=8 (repeatable; values parsed as YAML scalars)",
    )
    bench.add_argument("--results", default="results.h5", help="HDF5 results file (default: results.h5)")
    bench.add_argument("--overwrite", action="store_true", help="recompute and replace stored folds")
    bench.add_argument("--n-splits", type=int, default=5, help="folds per split (default: 5)")
    bench.add_argument("--random-state", type=int, default=42, help="seed of the folds (default: 42)")
    bench.add_argument("--cache", metavar="DIR", help="cache preprocessed epochs in HDF5 files in DIR")
    bench.add_argument("--n-jobs", type=int, default=None, help="parallel tasks (default: 1, or all Dask threads)")
    where = bench.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="join a running Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--dask-workers", type=int, metavar="N", help="start a local Dask cluster of N processes")
    bench.add_argument(
        "--threads-per-worker", type=int, default=1, help="threads of each local Dask worker (default: 1)"
    )


def _add_results(sub: Any, output: argparse.ArgumentParser) -> None:
    results = sub.add_parser("results", help="show, export, test or plot stored scores")
    actions = results.add_subparsers(dest="action", metavar="ACTION", required=True)
    filters = _Parser(add_help=False)
    filters.add_argument("path", help="HDF5 results file written by `neuroenc bench`")
    filters.add_argument("--dataset", nargs="+", metavar="NAME", help="only these datasets")
    filters.add_argument("--pipeline", nargs="+", metavar="NAME", help="only these pipelines")
    filters.add_argument("--subject", nargs="+", metavar="S", help="only these subjects")

    show = actions.add_parser("show", parents=[filters, output], help="print the scores table")
    show.add_argument("--folds", action="store_true", help="one row per fold instead of the mean over folds")
    export = actions.add_parser("export", parents=[filters, output], help="write the per-fold records to CSV")
    export.add_argument("out", help="CSV file to write")
    actions.add_parser("stats", parents=[filters, output], help="paired statistics between pipelines per dataset")
    plot = actions.add_parser("plot", parents=[filters, output], help="save a figure of the scores")
    plot.add_argument("--out", required=True, help="figure file (.png or .svg)")
    plot.add_argument("--kind", choices=PLOT_KINDS, default="score", help="figure type (default: score)")
    plot.add_argument(
        "--pipelines", nargs=2, metavar=("PIPE1", "PIPE2"), help="the two pipelines of a paired or meta plot"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="neuroenc",
        description="Compare brain responses with the activations of artificial neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"neuroenc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    output = _output_options()

    demo = sub.add_parser("demo", help="run the end-to-end demo on the real data folder")
    demo.add_argument("--data-dir", help="data folder (default: $NEUROENC_DATA, then ../shared/data)")
    demo.add_argument("--out", default="neuroenc_demo_output", help="folder for the demo's files")
    demo.add_argument("--no-download", action="store_true", help="never fetch PhysioNet data from the internet")

    info = sub.add_parser("info", help="list the entries of a neuroenc HDF5 file")
    info.add_argument("path", help="HDF5 file written by neuroenc")

    _add_bench(sub, output)
    _add_results(sub, output)
    datasets = sub.add_parser("datasets", help="list the datasets neuroenc knows")
    datasets_actions = datasets.add_subparsers(dest="action", metavar="ACTION", required=True)
    datasets_actions.add_parser("list", parents=[output], help="name, paradigm, subjects, sessions, availability")
    return parser


# --------------------------------------------------------------------------
# Output helpers shared by the subcommands
# --------------------------------------------------------------------------
@contextlib.contextmanager
def stdout_reserved_for_json(enabled: bool) -> Iterator[None]:
    """Send everything printed in the block to stderr, so that stdout carries only the JSON.

    Both Python-level writes (MNE logs to ``sys.stdout``) and file-descriptor
    writes (child processes such as Dask workers inherit fd 1) are redirected.
    """
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):  # replaced stdout (e.g. pytest capture)
        fd = saved = None
    if fd is not None:
        os.dup2(sys.stderr.fileno(), fd)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if fd is not None:
            os.dup2(saved, fd)
            os.close(saved)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _clean(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def print_json(document: Any) -> None:
    """Write ``document`` as one JSON document on stdout."""
    text = json.dumps(_clean(json.loads(json.dumps(document, default=_json_default))), allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def frame_records(frame: Any) -> list[dict[str, Any]]:
    """Records of a DataFrame with plain Python values, every float digit kept (for :func:`print_json`)."""
    import numpy as np
    import pandas as pd

    def plain(value: Any) -> Any:
        if value is None or value is pd.NA or value is pd.NaT:
            return None
        return value.item() if isinstance(value, np.generic) else value

    return [{str(k): plain(v) for k, v in rec.items()} for rec in frame.to_dict("records")]


def parse_subjects(values: list[str] | None) -> list[Any] | None:
    """Subject names from the command line: integers where they look like integers."""
    return None if values is None else [int(v) if v.lstrip("-").isdigit() else v for v in values]


def print_table(frame: Any, floatfmt: str = "{:.3f}", file: Any = None) -> None:
    """Print a DataFrame as aligned text columns."""
    cols = [str(c) for c in frame.columns]
    rows = [
        [("-" if math.isnan(v) else floatfmt.format(v)) if isinstance(v, float) else str(v) for v in rec]
        for rec in frame.itertuples(index=False, name=None)
    ]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    out = file or sys.stdout
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)


class Progress:
    """A one-line progress bar with ETA on stderr.

    Parameters
    ----------
    total : int
        Number of steps.
    label : str
        Text in front of the bar.
    enabled : bool, optional
        Draw at all (default: only when stderr is a terminal).
    """

    def __init__(self, total: int, label: str = "", enabled: bool | None = None) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.done = 0
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self._t0 = time.perf_counter()
        self._last = 0.0

    def update(self, n: int = 1, note: str = "") -> None:
        """Count ``n`` finished steps; ``note`` says what finished."""
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        now = time.perf_counter()
        if self.enabled and (now - self._last > 0.1 or self.done >= self.total):
            self._last = now
            self._draw(note)

    def _draw(self, note: str) -> None:
        elapsed = time.perf_counter() - self._t0
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        bar = "#" * int(20 * frac)
        eta_s = _fmt_seconds(eta) if math.isfinite(eta) else "?"
        line = f"{self.label} [{bar:<20}] {self.done}/{self.total} {_fmt_seconds(elapsed)} elapsed, ETA {eta_s}"
        if note:
            line += f"  {note}"
        sys.stderr.write("\r" + line[:160].ljust(100) if sys.stderr.isatty() else line + "\n")
        sys.stderr.flush()

    def callback(self, done: int, total: int, description: str = "") -> None:
        """``progress(done, total, description)`` hook of the evaluations."""
        self.total = int(total)
        self.update(int(done) - self.done, description)

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled and sys.stderr.isatty():
            sys.stderr.write("\n")
            sys.stderr.flush()


def _fmt_seconds(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def show_progress(args: argparse.Namespace) -> bool:
    """Whether a command draws progress: ``--progress``, or stderr is a terminal."""
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from neuroenc.cli.demo import run_demo

        return run_demo(data_dir=args.data_dir, out=args.out, allow_download=not args.no_download)
    if args.command == "info":
        from neuroenc.cli.info import run_info

        return run_info(args.path)
    if args.command == "bench":
        from neuroenc.cli.bench import run_bench

        return run_bench(args)
    if args.command == "results":
        from neuroenc.cli.results_cmd import run_results

        return run_results(args)
    if args.command == "datasets":
        from neuroenc.cli.datasets_cmd import run_datasets

        return run_datasets(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename and str(filename) not in text:
        text = f"{filename}: {text}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``neuroenc`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 0
    from neuroenc.errors import NeuroencError

    name = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
    try:
        return _run(args)
    except (NeuroencError, OSError) as exc:
        # NeuroencError: bad input; plain OSError: unreadable/unwritable files or an
        # unreachable scheduler. Both are the user's to fix, so one clear line.
        print(f"neuroenc {name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neuroenc {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        traceback.print_exc()
        print(f"neuroenc {name}: unexpected error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
