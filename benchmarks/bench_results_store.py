"""Results store: appending per-fold records and reading them back, against MOABB's ``Results``.

MOABB's :class:`moabb.analysis.results.Results` appends rows in place in one
HDF5 file under a lock (no ``fsync``, not crash-safe); neuroenc appends
journal lines (``fsync``-ed unless ``durable=False``) and merges them into the
HDF5 file atomically every ``compact_every`` records. Both store the same
records: 5 pipelines x N records (subject, session, score, time, n_samples,
n_channels).

Run: ``python benchmarks/bench_results_store.py [N_RECORDS]`` (default 10000).
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

from _timing import median_time, print_table
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neuroenc.evaluation.store import ResultsStore, pipeline_digest

N_PIPELINES = 5
BATCH = 100  # records of one subject: what MOABB writes at once


def make_records(n: int, dataset_code: str, dataset=None) -> list[dict]:
    recs = []
    for i in range(n):
        rec = {
            "dataset": dataset if dataset is not None else dataset_code,
            "subject": i // 10 + 1,
            "session": str(i % 2),
            "fold": i % 10,
            "score": (i % 97) / 97,
            "time": 0.01 * (i % 13),
            "n_samples": 100 + i % 7,
            "n_channels": 8,
        }
        recs.append(rec)
    return recs


def pipelines() -> dict:
    return {f"p{k}": make_pipeline(StandardScaler(), LogisticRegression(C=10.0**-k)) for k in range(N_PIPELINES)}


def ours(records: list[dict], pipes: dict) -> list[dict]:
    digests = {name: pipeline_digest(p) for name, p in pipes.items()}
    return [
        {**r, "pipeline": name, "digest": digests[name], "evaluation": "WithinSession"}
        for k, name in enumerate(pipes)
        for r in records[k :: len(pipes)]
    ]


def moabb_results(folder: Path, overwrite: bool = True):
    from moabb.analysis.results import Results
    from moabb.evaluations import WithinSessionEvaluation
    from moabb.paradigms import MotorImagery

    return Results(WithinSessionEvaluation, MotorImagery, hdf5_path=str(folder), overwrite=overwrite)


def time_once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(n: int) -> None:
    from moabb.datasets.fake import FakeDataset

    warnings.filterwarnings("ignore")
    dataset = FakeDataset(n_subjects=max(1, n // 10), n_sessions=2)
    pipes = pipelines()
    process = make_pipeline(LinearDiscriminantAnalysis())  # MOABB hashes (process, pipeline) pairs
    plain = make_records(n, dataset.code)
    mine = ours(plain, pipes)
    theirs = [(name, {**r, "dataset": dataset}) for name, r in zip((m["pipeline"] for m in mine), mine)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def ours_single(durable: bool) -> ResultsStore:
            path = tmp / f"single_{durable}.h5"
            with ResultsStore(path, overwrite=True, durable=durable) as store:
                for rec in mine:
                    store.add(rec)
            return store

        def ours_batched() -> None:
            with ResultsStore(tmp / "batched.h5", overwrite=True) as store:
                for i in range(0, n, BATCH):
                    store.add_many(mine[i : i + BATCH])

        def moabb_single():
            res = moabb_results(tmp / "moabb_single")
            for name, rec in theirs:
                res.add({name: [rec]}, pipes, process)
            return res

        def moabb_batched():
            res = moabb_results(tmp / "moabb_batched")
            for i in range(0, n, BATCH):
                chunk = theirs[i : i + BATCH]
                by_name: dict[str, list] = {}
                for name, rec in chunk:
                    by_name.setdefault(name, []).append(rec)
                res.add(by_name, pipes, process)

        t_ours_durable = time_once(lambda: ours_single(True))
        t_ours_fast = time_once(lambda: ours_single(False))
        t_moabb = time_once(moabb_single)
        rows.append((f"append {n} one at a time (fsync each)", t_ours_durable, t_moabb, "MOABB Results.add"))
        rows.append((f"append {n} one at a time (no fsync)", t_ours_fast, t_moabb, "MOABB Results.add"))
        rows.append(
            (
                f"append {n} in batches of {BATCH}",
                median_time(ours_batched, repeat=3),
                median_time(moabb_batched, repeat=3, warmup=0),
                "MOABB Results.add",
            )
        )

        store = ResultsStore(tmp / "single_True.h5")
        res = moabb_results(tmp / "moabb_single", overwrite=False)
        assert len(store.to_frame()) == n and len(res.to_dataframe()) == n
        one = {"p2": pipes["p2"]}
        assert len(store.query(pipeline="p2")) == len(res.to_dataframe(pipelines=one, process_pipeline=process))
        path = tmp / "single_True.h5"  # a fresh store object each time: nothing cached
        rows.append(
            (
                f"read all {n} records",
                median_time(lambda: ResultsStore(path).to_frame()),
                median_time(res.to_dataframe),
                "to_dataframe()",
            )
        )
        rows.append(
            (
                "query one pipeline",
                median_time(lambda: ResultsStore(path).query(pipeline="p2")),
                median_time(lambda: res.to_dataframe(pipelines=one, process_pipeline=process)),
                "to_dataframe(pipelines)",
            )
        )
        rows.append(
            (
                "resume check (done keys)",
                median_time(lambda: ResultsStore(path).done_keys()),
                median_time(lambda: res.not_yet_computed(pipes, dataset, 1, process)),
                "not_yet_computed",
            )
        )
    print_table(rows)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
