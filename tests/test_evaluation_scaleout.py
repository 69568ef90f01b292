"""Dask scale-out: a real 2-process LocalCluster gives exactly what the serial run gives."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
import cloudpickle  # noqa: E402  (comes with dask)

from neuroenc.errors import DataError, FileError  # noqa: E402
from neuroenc.evaluation.scaleout import cluster_threads, dask_client, run_tasks  # noqa: E402

# Dask workers are other processes: ship this module's functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


def fake_dataset(n_subjects: int = 3):
    from moabb.datasets.fake import FakeDataset

    from neuroenc.datasets.moabb_adapter import MoabbDataset

    return MoabbDataset(FakeDataset(n_subjects=n_subjects, n_sessions=1, n_runs=1, seed=3, duration=60))


def pipelines():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from neuroenc.riemann import MDM, Covariances, TangentSpace

    return {
        "MDM": make_pipeline(Covariances("oas"), MDM()),
        "TS+LR": make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression()),
    }


def subject_score(X, y, seed):
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    return cross_val_score(pipelines()["TS+LR"], X, y, cv=StratifiedKFold(3, shuffle=True, random_state=seed))


def test_run_tasks_on_two_worker_processes_equals_serial(cluster):
    rng = np.random.default_rng(0)
    tasks = []
    for seed in range(4):
        X = rng.standard_normal((30, 4, 64))
        y = np.repeat([0, 1], 15)
        X[y == 1, 0] *= 1.5
        tasks.append((X, y, seed))
    serial = run_tasks(subject_score, tasks)
    with dask_client(cluster.scheduler_address) as client:
        assert cluster_threads(client) == 2
        pids = set(client.run(lambda: __import__("os").getpid()).values())
        assert len(pids) == 2 and __import__("os").getpid() not in pids  # real processes
        parallel = run_tasks(subject_score, tasks, n_jobs=-1, backend="dask")
    assert len(parallel) == len(serial)
    for a, b in zip(parallel, serial):
        np.testing.assert_array_equal(a, b)
    # joining a scheduler leaves its workers running
    assert len(cluster.scheduler_info["workers"]) == 2


def test_within_session_evaluation_on_dask_equals_serial(cluster, tmp_path):
    from neuroenc.datasets.paradigms import MotorImagery
    from neuroenc.evaluation.evaluations import WithinSession
    from neuroenc.evaluation.store import ResultsStore

    dataset = fake_dataset()
    paradigm = MotorImagery(cache=tmp_path / "cache")
    serial = WithinSession(paradigm, [dataset], random_state=7, results=tmp_path / "serial.h5").process(pipelines())
    with dask_client(cluster.scheduler_address):
        ev = WithinSession(paradigm, [dataset], random_state=7, n_jobs=-1, backend="dask", results=tmp_path / "dask.h5")
        distributed = ev.process(pipelines())
    columns = ["dataset", "subject", "session", "pipeline", "score", "n_samples", "n_channels", "n_folds"]
    pd.testing.assert_frame_equal(distributed[columns], serial[columns])
    assert len(serial) == 3 * 2
    # every fold was written by the workers to the store, with the serial run's scores
    stored = [ResultsStore(tmp_path / name).to_frame() for name in ("serial.h5", "dask.h5")]
    assert len(stored[0]) == len(stored[1]) == 3 * 2 * 5
    key = ["subject", "pipeline", "fold"]
    np.testing.assert_array_equal(stored[0].sort_values(key)["score"], stored[1].sort_values(key)["score"])


def test_local_cluster_is_started_and_shut_down():
    with dask_client(n_workers=1, processes=False) as client:
        address = client.scheduler.address
        assert cluster_threads(client) == 1
        assert run_tasks(pow, [(2, 3), (3, 2)], n_jobs=-1, backend="dask") == [8, 9]
    with pytest.raises(FileError, match="cannot reach the Dask scheduler"):
        with dask_client(address, timeout=2):
            pass


def _worker_settings() -> tuple:
    import os

    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), dask.config.get("distributed.worker.profile.enabled")


@pytest.mark.parametrize("tune", [True, False])
def test_local_workers_start_without_profiler_and_memory_trimming(tune):
    with dask_client(n_workers=1, tune_workers=tune) as client:
        (settings,) = client.run(_worker_settings).values()
    assert settings == ((None, False) if tune else ("65536", True))


def test_without_dask_arguments_there_is_no_client():
    with dask_client() as client:
        assert client is None
        assert cluster_threads(client) == 1
    assert run_tasks(pow, [(2, 5)]) == [32]
    assert run_tasks(pow, [(2, 5), (3, 3)], n_jobs=2, backend="threading") == [32, 27]


def test_bad_scale_out_requests_fail_before_any_work():
    with pytest.raises(DataError, match="not both"):
        with dask_client("tcp://127.0.0.1:1", 2):
            pass
    with pytest.raises(DataError, match=">= 1"):
        with dask_client(n_workers=0):
            pass
    with pytest.raises(FileError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:1"):
        with dask_client("tcp://127.0.0.1:1", timeout=1):
            pass
    with pytest.raises(DataError, match="needs a running Dask client"):
        run_tasks(pow, [(1, 1)], backend="dask")
