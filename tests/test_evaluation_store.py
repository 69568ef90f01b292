"""Tests of the evaluation results store: schema, resume, crash safety and concurrency."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from neuroenc.errors import CorruptFileError, DataError, StoreError, UnknownNameError
from neuroenc.evaluation.store import KEY_COLUMNS, ResultsStore, pipeline_digest

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_record(i: int, dataset: str = "D", **extra) -> dict:
    """A deterministic record; extra columns appear only in later records (schema evolution)."""
    rec = {
        "dataset": f"{dataset}{i % 2}",
        "subject": i % 5 + 1,
        "session": str(i % 2),
        "pipeline": "csp+lda",
        "digest": "d" * 32,
        "fold": i,
        "score": i / 7,
        "time": i / 100,
        "n_samples": 10 + i,
        "n_channels": 8,
        "evaluation": "WithinSession",
    }
    if i >= 100:
        rec["tag"] = f"t{i % 3}"
    if i >= 200:
        rec["lr"] = 0.1 * i
        rec["flag"] = i % 2 == 0
    rec.update(extra)
    return rec


def key(rec: dict) -> tuple:
    return tuple(rec[c] for c in KEY_COLUMNS)


def frame_keys(frame: pd.DataFrame) -> list[tuple]:
    return list(zip(*(frame[c].tolist() for c in KEY_COLUMNS)))


def reference_frame(tmp_path: Path, n: int) -> pd.DataFrame:
    """The table of an uninterrupted run writing records 0..n-1 one at a time."""
    with ResultsStore(tmp_path / "reference.h5", durable=False) as store:
        for i in range(n):
            store.add(make_record(i))
    return ResultsStore(tmp_path / "reference.h5").to_frame()


# --------------------------------------------------------------------------
# Records, schema and queries
# --------------------------------------------------------------------------
def test_records_round_trip_with_evolving_schema_and_tidy_dtypes(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsStore(path) as store:
        store.add(make_record(0))
        store.add(make_record(150))  # adds "tag"
        store.add({**make_record(250), "n_channels": np.int64(8), "score": np.float32(0.5)})  # adds lr, flag
        live = store.to_frame()
    reopened = ResultsStore(path).to_frame()  # from the compacted HDF5 file
    pd.testing.assert_frame_equal(live, reopened)
    assert list(reopened.columns) == [*KEY_COLUMNS, "score", "time", "n_samples", "n_channels", "evaluation"] + [
        "tag",
        "lr",
        "flag",
    ]
    dtypes = reopened.dtypes.astype(str).to_dict()
    assert dtypes["subject"] == dtypes["fold"] == dtypes["n_samples"] == dtypes["n_channels"] == "int64"
    assert dtypes["score"] == dtypes["time"] == dtypes["lr"] == "float64"
    assert dtypes["flag"] == "boolean"  # bool with a missing value
    assert not any(isinstance(d, pd.CategoricalDtype) for d in reopened.dtypes)
    row = reopened.set_index("fold").loc[250]
    assert row["score"] == np.float32(0.5) and row["tag"] == "t1" and row["flag"] is np.True_
    assert pd.isna(reopened.set_index("fold").loc[0, "tag"])
    with h5py.File(path, "r") as f:  # the compacted file is plain HDF5
        assert f.attrs["neuroenc_type"] == "results_store" and "records" in f


def _combine_by_pandas(table: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """What merging means, said with pandas: concatenate, latest write per key, one dtype per column."""
    from neuroenc.evaluation.store import _CORE_DTYPES, _STR, _WRITTEN

    names = list(dict.fromkeys(c for rec in records for c in rec))
    new = pd.DataFrame({c: pd.Series([rec.get(c) for rec in records], dtype=object) for c in names})
    order = list(dict.fromkeys([*_CORE_DTYPES, *table.columns, *new.columns]))
    both = pd.concat([f.astype(object).reindex(columns=order) for f in (table, new) if len(f)], ignore_index=True)
    both = both.where(both.notna(), None).sort_values(_WRITTEN, kind="stable")
    both = both.loc[~both[list(KEY_COLUMNS)].astype(str).duplicated(keep="last")].reset_index(drop=True)

    def tidy(values):
        missing = values.isna()
        if missing.all():
            return values.astype(np.float64)
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind == "boolean":
            return values.astype("boolean" if missing.any() else bool)
        if kind == "integer":
            return values.astype("Int64" if missing.any() else np.int64)
        if kind in ("floating", "mixed-integer-float"):
            return values.astype(np.float64)
        if kind != "string":
            values = values.where(missing, values.map(str, na_action="ignore"))
        return values.astype(_STR)

    return pd.DataFrame({c: tidy(both[c]) for c in order})


@pytest.mark.parametrize("seed", range(6))
def test_merge_equals_its_pandas_formulation(seed):
    # the journal merge is written in plain Python for speed; it must mean what the pandas version says
    from neuroenc.evaluation.store import _WRITTEN, _combine, _empty_frame

    rng = random.Random(seed)
    extras = {
        "n_classes": lambda: rng.choice([2, 3, None]),
        "note": lambda: rng.choice(["a", "b", None]),
        "ratio": lambda: rng.choice([0.5, 1, float("nan"), None]),
        "ok": lambda: rng.choice([True, False, None] if seed % 2 else [True, False]),
        "mixed": lambda: rng.choice(["x", 3, None]) if seed >= 3 else rng.choice([1, 2]),
        "bool_or_number": lambda: rng.choice([True, 1, 2.5]) if seed >= 3 else rng.choice([1, 2.5]),
    }

    def batch(n: int, start: int) -> list[dict]:
        out = []
        for i in range(n):
            rec = make_record(rng.randrange(12), subject=rng.choice([1, 2, "2"]))
            rec[_WRITTEN] = start + rng.randrange(50) if seed == 5 else start + i  # ties and disorder too
            rec.update({name: draw() for name, draw in extras.items() if rng.random() < 0.7})
            out.append(rec)
        return out

    first = batch(30, 0)
    later = batch(25, 100 if seed < 4 else 15)  # seeds 4, 5: journal lines older than, or as old as, table rows
    for base in (_empty_frame(), _combine(_empty_frame(), first)):
        ours = _combine(base, later)
        ref = _combine_by_pandas(base, later)
        pd.testing.assert_frame_equal(ours, ref)
        assert not ours[list(KEY_COLUMNS)].astype(str).duplicated().any()
    # a journal line as old as the table row of its key wins (it was merged later); an older one loses
    base = _combine(_empty_frame(), [{**make_record(1), _WRITTEN: 10}])
    for written, score in ((10, 0.75), (9, 1 / 7)):
        merged = _combine(base, [{**make_record(1), "score": 0.75, _WRITTEN: written}])
        assert merged["score"].tolist() == [score]
        pd.testing.assert_frame_equal(
            merged, _combine_by_pandas(base, [{**make_record(1), "score": 0.75, _WRITTEN: written}])
        )


def test_duplicate_key_replaces_and_is_never_duplicated(tmp_path):
    path = tmp_path / "r.h5"
    other = ResultsStore(path)
    with ResultsStore(path) as store:
        store.add(make_record(3))
        other.add({**make_record(3), "score": 0.99})  # same key, from another writer
        store.add_many([make_record(4), {**make_record(4), "score": 0.25}])
        frame = store.to_frame()
    other.close()
    frame = ResultsStore(path).to_frame().sort_values("fold")
    assert len(frame) == 2 and frame_keys(frame) == [key(make_record(3)), key(make_record(4))]
    assert frame["score"].tolist() == [0.99, 0.25]


def test_resume_has_done_keys_and_query(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsStore(path) as store:
        store.add_many(make_record(i) for i in range(10))
    store = ResultsStore(path)
    assert store.done_keys() == {key(make_record(i)) for i in range(10)}
    assert store.has(**{c: make_record(4)[c] for c in KEY_COLUMNS})
    assert store.has(**{**{c: make_record(4)[c] for c in KEY_COLUMNS}, "subject": "5", "session": 0})
    assert not store.has(**{**{c: make_record(4)[c] for c in KEY_COLUMNS}, "fold": 11})
    assert store.has(dataset="D1", subject=2) and not store.has(dataset="D1", subject=6)
    assert len(store) == 10
    sub = store.query(dataset="D0", subject=[1, 3])
    expected = [i for i in range(10) if i % 2 == 0 and i % 5 + 1 in (1, 3)]
    assert sub["fold"].tolist() == expected
    assert store.query(pipeline="other").empty and list(store.query(pipeline="other").columns) == list(sub.columns)
    assert sorted(store.to_frame(fold=[1, 2])["fold"]) == [1, 2]
    with pytest.raises(UnknownNameError, match="nope"):
        store.query(nope=1)
    with pytest.raises(UnknownNameError, match="score"):
        store.has(score=1.0)


def test_remove_and_overwrite(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsStore(path) as store:
        store.add_many(make_record(i) for i in range(6))
        assert store.remove(dataset="D0") == 3
        assert sorted(store.to_frame()["fold"]) == [1, 3, 5]
        store.add(make_record(7))
    assert sorted(ResultsStore(path).to_frame()["fold"]) == [1, 3, 5, 7]
    store = ResultsStore(path, overwrite=True)
    assert len(store) == 0 and store.to_frame().dtypes["fold"] == np.int64
    assert not any((tmp_path / "r.h5.journal").iterdir())


def test_export_csv_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsStore(path) as store:
        store.add_many(make_record(i) for i in (1, 120, 220))
        out = store.export_csv(tmp_path / "results.csv")
        store.export_csv(tmp_path / "results.csv", dataset="D0")  # replaces the file whole
    assert out == tmp_path / "results.csv"
    assert sorted(p.name for p in tmp_path.iterdir() if "csv" in p.name) == ["results.csv"]
    back = pd.read_csv(out)
    assert back["fold"].tolist() == [120, 220]
    np.testing.assert_allclose(back["score"], [120 / 7, 220 / 7], rtol=1e-15)
    with pytest.raises(StoreError, match="does not exist"):
        store.export_csv(tmp_path / "missing" / "x.csv")


def test_writes_from_another_object_survive_a_merge(tmp_path):
    """A merge deletes a live writer's journal; that writer's next record must not be lost."""
    path = tmp_path / "r.h5"
    a, b = ResultsStore(path), ResultsStore(path)
    a.add(make_record(0))
    b.compact()  # merges and deletes a's journal
    a.add(make_record(1))  # a notices and opens a new journal
    assert sorted(ResultsStore(path).to_frame()["fold"]) == [0, 1]
    a.close()
    b.close()
    copy = pickle.loads(pickle.dumps(a))  # what loky/Dask ship to a worker
    copy.add(make_record(2))
    copy.close()
    assert sorted(ResultsStore(path).to_frame()["fold"]) == [0, 1, 2]


@pytest.mark.parametrize("durable", [True, False])
def test_fsync_only_when_durable(tmp_path, monkeypatch, durable):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    store = ResultsStore(tmp_path / "r.h5", durable=durable)
    store.add(make_record(0))
    store.close()
    assert bool(calls) == durable
    assert frame_keys(ResultsStore(tmp_path / "r.h5").to_frame()) == [key(make_record(0))]


def test_table_written_is_not_read_back_until_replaced(tmp_path, monkeypatch):
    path = tmp_path / "r.h5"
    store = ResultsStore(path, durable=False)
    store.add_many([make_record(i) for i in range(3)])
    store.compact()

    def no_open(*args, **kwargs):
        raise AssertionError("the store read back the table it had just written")

    with monkeypatch.context() as m:
        m.setattr(h5py, "File", no_open)
        assert len(store.to_frame()) == 3
    # another writer replaces the file: this store must see its records
    other = ResultsStore(path, durable=False)
    other.add(make_record(3))
    other.compact()
    assert len(store.to_frame()) == 4


def test_damaged_journal_lines_are_ignored(tmp_path):
    path = tmp_path / "r.h5"
    store = ResultsStore(path)
    store.add(make_record(0))
    store.add(make_record(1))
    journal = next((tmp_path / "r.h5.journal").iterdir())
    data = journal.read_bytes()
    first_end = data.index(b"\n") + 1
    damaged = data[:first_end] + data[first_end:].replace(b"0.1", b"0.2", 1) + b'1234abcd {"dataset": '
    journal.write_bytes(damaged)  # second line fails its checksum, a partial line follows
    assert ResultsStore(path).to_frame()["fold"].tolist() == [0]


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, match",
    [
        ({"fold": None}, "fold"),
        ({"score": "high"}, "score"),
        ({"n_samples": 2.5}, "n_samples"),
        ({"n_channels": -1}, "n_channels"),
        ({"time": float("nan")}, "time"),
        ({"subject": 1.5}, "subject"),
        ({"dataset": ""}, "dataset"),
        ({"extra": [1, 2]}, "extra"),
        ({"_private": 1}, "_private"),
    ],
)
def test_bad_records_are_refused_before_writing(tmp_path, change, match):
    store = ResultsStore(tmp_path / "r.h5")
    store.add(make_record(0))
    with pytest.raises(DataError, match=match):
        store.add_many([make_record(1), {**make_record(2), **change}])
    assert store.to_frame()["fold"].tolist() == [0]


def test_record_missing_key_columns(tmp_path):
    store = ResultsStore(tmp_path / "r.h5")
    record = make_record(0)
    del record["digest"], record["score"]
    with pytest.raises(DataError, match="'digest', 'score'"):
        store.add(record)
    with pytest.raises(DataError, match="dict"):
        store.add([("dataset", "D")])
    assert len(store) == 0 and not (tmp_path / "r.h5.journal").exists()


def test_unreadable_files_raise_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(CorruptFileError, match="garbage.h5"):
        ResultsStore(garbage)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(StoreError, match="foreign.h5.*not a neuroenc results store"):
        ResultsStore(foreign)
    good = tmp_path / "good.h5"
    with ResultsStore(good) as store:
        store.add_many(make_record(i) for i in range(50))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="truncated.h5"):
        ResultsStore(truncated)
    with pytest.raises(StoreError, match="does not exist"):
        ResultsStore(tmp_path / "nowhere" / "r.h5")
    with pytest.raises(DataError, match="compact_every"):
        ResultsStore(good, compact_every=0)


# --------------------------------------------------------------------------
# Pipeline digest
# --------------------------------------------------------------------------
DIGEST_SRC = """
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from neuroenc.evaluation.store import pipeline_digest
print(pipeline_digest(make_pipeline(StandardScaler(), LogisticRegression(C=0.5))))
"""


def _named_analysis(train, test):
    return 0.0


def test_pipeline_digest_is_stable_and_sensitive():
    # imported here: the crash test's writer processes import this module and must start fast
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pipe(**kw):
        return make_pipeline(StandardScaler(), LogisticRegression(**kw))

    assert pipeline_digest(pipe(C=0.5)) == pipeline_digest(pipe(C=0.5))
    assert len(pipeline_digest(pipe())) == 32
    assert pipeline_digest(pipe(C=0.5)) != pipeline_digest(pipe(C=0.6))
    assert pipeline_digest(pipe(C=1)) != pipeline_digest(pipe(C=1.0))  # int and float configure differently
    assert pipeline_digest(make_pipeline(StandardScaler(with_mean=False), LogisticRegression())) != pipeline_digest(
        pipe()
    )
    fitted = pipe().fit(np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2)
    assert pipeline_digest(fitted) == pipeline_digest(pipe())  # the configuration, not the fitted state
    assert pipeline_digest(_named_analysis) == pipeline_digest(_named_analysis)
    assert pipeline_digest(lambda a, b: 1.0) != pipeline_digest(lambda a, b: 2.0)
    out = subprocess.run(
        [sys.executable, "-c", DIGEST_SRC], capture_output=True, text=True, check=True, env=child_env()
    )
    assert out.stdout.strip() == pipeline_digest(pipe(C=0.5))


# --------------------------------------------------------------------------
# Crash safety: SIGKILL a writer at random moments, then resume
# --------------------------------------------------------------------------
WRITER_SRC = """
import sys, time
sys.path.insert(0, sys.argv[4])
from test_evaluation_store import make_record, key
from neuroenc.evaluation import store as st

path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "stall":  # hang inside a merge, after part of the new HDF5 file is written
    write_frame = st.write_frame

    def stalling(parent, name, df):
        group = write_frame(parent, name, df)
        if len(df):
            print("merging", flush=True)
            time.sleep(60)
        return group

    st.write_frame = stalling
store = st.ResultsStore(path, compact_every=25)
done = store.done_keys()
print("ready", flush=True)
for i in range(n):
    record = make_record(i)
    if key(record) not in done:
        store.add(record)
        print("added", i, flush=True)
        time.sleep(0.002)  # a fold takes a while
store.close()
print("finished", flush=True)
"""


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return env


def run_writer(path: Path, n: int, mode: str, kill_after: float | None) -> tuple[set[int], str]:
    """Run the writer; SIGKILL it (after ``kill_after`` s, or once it stalls); return the records it added."""
    args = [sys.executable, "-c", WRITER_SRC, str(path), str(n), mode, str(Path(__file__).parent)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    added: set[int] = set()
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        if mode == "stall":
            for line in proc.stdout:
                if line.startswith("added "):
                    added.add(int(line.split()[1]))
                if line.strip() == "merging":
                    break
        if kill_after is not None:
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = out.split("\n")[:-1]  # the last line may be cut by the kill
    added |= {int(line.split()[1]) for line in lines if line.startswith("added ")}
    status = "finished" if "finished" in lines else "killed"
    assert status == "finished" or proc.returncode == -signal.SIGKILL, err
    return added, status


def check_after_kill(path: Path, added: set[int]) -> None:
    with h5py.File(path, "r") as f:  # the HDF5 file always opens
        assert f.attrs["neuroenc_type"] == "results_store"
    frame = ResultsStore(path).to_frame()
    keys = frame_keys(frame)
    assert len(keys) == len(set(keys)), "a record is duplicated"
    present = set(frame["fold"])
    assert added <= present, f"records lost: {sorted(added - present)}"
    for rec in frame.to_dict("records"):  # every stored record is intact
        expected = make_record(int(rec["fold"]))
        assert all(rec[c] == v for c, v in expected.items())


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_table(tmp_path):
    n = 600
    path = tmp_path / "crash.h5"
    rng = random.Random(7)
    added: set[int] = set()
    kills = 0
    for round_ in range(7):
        mode = "stall" if round_ % 3 == 0 else "loop"
        delay = 0.0 if mode == "stall" else rng.uniform(0.02, 0.4)
        new, status = run_writer(path, n, mode, kill_after=delay)
        kills += status == "killed"
        if mode == "stall":  # killed while writing the new HDF5 file of a merge
            assert status == "killed" and list(tmp_path.glob(".crash.h5.*.tmp"))
        added |= new
        check_after_kill(path, added)
    assert kills >= 5
    new, status = run_writer(path, n, "loop", kill_after=None)
    assert status == "finished" and not (new & added), "resume must skip the records already stored"
    final = ResultsStore(path).to_frame()
    pd.testing.assert_frame_equal(final, reference_frame(tmp_path, n))
    # killed writers' journals were merged and deleted, and their temporary files removed
    assert not any((tmp_path / "crash.h5.journal").iterdir())
    assert not list(tmp_path.glob(".crash.h5.*.tmp"))


# --------------------------------------------------------------------------
# Concurrency: processes, loky workers and Dask workers writing at once
# --------------------------------------------------------------------------
def write_many(path: str, dataset: str, n: int) -> int:
    with ResultsStore(path, compact_every=50) as store:
        for i in range(n):
            store.add(make_record(i, dataset=dataset, writer=dataset))
    return n


def write_one(store: ResultsStore, i: int) -> int:
    store.add(make_record(i, dataset="dask"))
    return i


def expected_keys(datasets: list[str], n: int) -> set[tuple]:
    return {key(make_record(i, dataset=d)) for d in datasets for i in range(n)}


@pytest.mark.slow
def test_processes_and_loky_workers_write_at_once(tmp_path):
    from joblib import Parallel, delayed

    path = str(tmp_path / "parallel.h5")
    ResultsStore(path)
    n = 200
    mp = [f"mp{k}-" for k in range(2)]
    procs = [multiprocessing.Process(target=write_many, args=(path, d, n)) for d in mp]
    for p in procs:
        p.start()
    loky = [f"loky{k}-" for k in range(2)]
    assert Parallel(n_jobs=2, backend="loky")(delayed(write_many)(path, d, n) for d in loky) == [n, n]
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    frame = ResultsStore(path).to_frame()
    keys = frame_keys(frame)
    assert len(keys) == 4 * n and set(keys) == expected_keys(mp + loky, n)
    assert set(frame["writer"]) == set(mp + loky)


@pytest.mark.slow
def test_dask_workers_write_at_once(tmp_path):
    distributed = pytest.importorskip("distributed")
    path = tmp_path / "dask.h5"
    store = ResultsStore(path)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        futures = client.map(write_one, [store] * 40, range(40))
        assert sorted(client.gather(futures)) == list(range(40))
        pids = set(client.run(os.getpid).values())
    frame = store.to_frame()
    assert len(pids) == 2 and os.getpid() not in pids
    assert sorted(frame["fold"]) == list(range(40)) and set(frame_keys(frame)) == expected_keys(["dask"], 40)
