"""Scale-out and cache benchmarks of the MOABB-style evaluations.

1. A WithinSession evaluation of 8 subjects (MOABB FakeDataset, 16 channels)
   with Riemannian pipelines heavy enough that the per-task work dominates:
   serial (``n_jobs=1``) vs a 2-worker ``dask.distributed.LocalCluster``
   (``backend="dask"``), the way ``neuroenc bench --dask-workers 2`` runs it.
   The epochs are cached first, so both runs time the evaluation, not the
   synthetic data generation.
2. Time to start: time to the first finished task of an evaluation on
   PhysioNet S001 (with a pipeline that costs nothing) with a cold paradigm
   cache (EDF reading, filtering, epoching) vs a warm one (epochs read from
   the HDF5 cache).

Run: ``python benchmarks/bench_scaleout.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _timing import median_time

N_SUBJECTS = 8


def fake_dataset():
    from moabb.datasets.fake import FakeDataset

    from neuroenc.datasets.moabb_adapter import MoabbDataset

    channels = ("C3", "Cz", "C4", "FC1", "FC2", "FC5", "FC6", "CP1", "CP2", "CP5", "CP6", "C1", "C2", "C5", "C6", "FCz")
    fake = FakeDataset(
        n_subjects=N_SUBJECTS, n_sessions=1, n_runs=1, n_events=120, duration=400, channels=channels, seed=1
    )
    return MoabbDataset(fake)


def heavy_pipelines() -> dict:
    """Augmented covariances (48 x 48 SPD matrices) make the per-fold fit dominate.

    One kernel thread per estimator (``n_jobs=1``), as in any scale-out over
    workers: with the default (all cores) the "serial" run would already use
    both cores inside the kernels, and the comparison would time thread
    oversubscription rather than the fan-out.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from neuroenc.riemann import MDM, AugmentedCovariances, TangentSpace

    def aug():
        return AugmentedCovariances(order=3, lag=4, estimator="oas", n_jobs=1)

    return {
        "AugCov + MDM": make_pipeline(aug(), MDM(metric="riemann", n_jobs=1)),
        "AugCov + TS + LR": make_pipeline(aug(), TangentSpace(n_jobs=1), LogisticRegression(max_iter=2000)),
    }


def scale_out(repeat: int) -> list[tuple[str, float, float]]:
    from threadpoolctl import threadpool_limits

    from neuroenc.datasets.paradigms import MotorImagery
    from neuroenc.evaluation.evaluations import WithinSession
    from neuroenc.evaluation.scaleout import dask_client

    cache = Path(tempfile.mkdtemp(prefix="neuroenc_bench_cache_"))
    try:
        dataset, paradigm, pipes = fake_dataset(), MotorImagery(cache=cache), heavy_pipelines()
        paradigm.get_data(dataset)  # fill the cache: the runs below time the evaluation itself

        def run(**kw):
            # one BLAS thread, as in the Dask workers (their nannies set OMP/OPENBLAS_NUM_THREADS=1)
            with threadpool_limits(limits=1):
                return WithinSession(paradigm, [dataset], random_state=42, **kw).process(pipes)

        with dask_client(n_workers=2) as client:
            serial_scores = run()
            dask_scores = run(n_jobs=2, backend="dask")  # warm-up: imports on the workers
            # Serial and Dask runs alternate so that a change of machine load hits both alike.
            serial_times, dask_times = [], []
            for _ in range(repeat):
                serial_times.append(median_time(run, repeat=1, warmup=0))
                dask_times.append(median_time(lambda: run(n_jobs=2, backend="dask"), repeat=1, warmup=0))
            serial, dask = statistics.median(serial_times), statistics.median(dask_times)
            n_workers = len(client.scheduler_info()["workers"])
        same = serial_scores["score"].tolist() == dask_scores["score"].tolist()
        print(f"dask results identical to serial: {same}; workers: {n_workers}")
        return [(f"WithinSession {N_SUBJECTS} subj x 2 pipelines", dask, serial)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def first_task(repeat: int) -> list[tuple[str, float, float]]:
    from mne.decoding import Vectorizer
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline

    from neuroenc.datapath import find_data_dir
    from neuroenc.datasets.paradigms import LeftRightImagery
    from neuroenc.datasets.registry import PhysionetMI
    from neuroenc.evaluation.evaluations import WithinSession

    found = find_data_dir()
    if found is None:
        print("no data folder: cache benchmark skipped")
        return []
    dataset = PhysionetMI(data_dir=found[0])
    dataset.subject_list = [1]
    # A pipeline that costs nothing: the time to its first finished task is the time
    # until the first fold can start (data loaded and split).
    pipes = {"dummy": make_pipeline(Vectorizer(), DummyClassifier())}

    def time_to_first_task(cache: Path) -> float:
        t0 = time.perf_counter()
        first: list[float] = []

        def progress(done: int, total: int, desc: str) -> None:
            if not first:
                first.append(time.perf_counter() - t0)

        WithinSession(LeftRightImagery(cache=cache), [dataset], random_state=0, progress=progress).process(pipes)
        return first[0]

    colds, warms = [], []
    for _ in range(repeat):
        cache = Path(tempfile.mkdtemp(prefix="neuroenc_bench_cache_"))
        try:
            colds.append(time_to_first_task(cache))
            warms.append(time_to_first_task(cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    cold, warm = sorted(colds)[len(colds) // 2], sorted(warms)[len(warms) // 2]
    return [("first task, PhysioNet S001 (warm vs cold cache)", warm, cold)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("scaleout", "cache"), help="run one of the two benchmarks")
    args = parser.parse_args()
    rows = []
    if args.only in (None, "scaleout"):
        rows += [(*r, "serial n_jobs=1 (fast: 2-worker LocalCluster)") for r in scale_out(args.repeat)]
    if args.only in (None, "cache"):
        rows += [(*r, "cold cache (EDF read + filter + epoch)") for r in first_task(args.repeat)]
    print(f"{'case':<52} {'faster':>9} {'baseline':>9} {'ratio':>7}  baseline")
    for case, fast, base, name in rows:
        print(f"{case:<52} {fast:8.3f}s {base:8.3f}s {base / fast:6.2f}x  {name}")


if __name__ == "__main__":
    main()
