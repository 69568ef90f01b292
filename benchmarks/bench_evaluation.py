"""Framework overhead of neuroenc.evaluation, and wall time against MOABB's WithinSessionEvaluation.

Data: MOABB's FakeDataset (22 channels, 250 Hz, 2 sessions, 96 left/right
trials per session) through ``moabb.paradigms.LeftRightImagery``; pipeline
``Covariances("oas") + MDM`` from neuroenc.riemann.

1. Overhead: the epochs are loaded once and served from memory, so that
   ``overhead = process() wall time - sum over folds of (fit + score time)``
   is what the framework adds per fold (splits, cloning, label coding,
   dispatch, record keeping, results table, the results store; the fit and
   score times include copying the fold's epochs out of the session array,
   as any cross-validation does), reported as a percentage of the mean fit
   time. The runs with and without a results file alternate.
2. End to end: ``WithinSession`` against MOABB's ``WithinSessionEvaluation``
   on the same dataset, paradigm, pipeline and seed, both loading the data
   through the paradigm and writing their HDF5 results.

Run: ``python benchmarks/bench_evaluation.py [n_subjects [n_events]]`` (default 4 subjects,
96 left/right trials per session; 144 is the size of BNCI 2014-001's left/right sessions).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
warnings.filterwarnings("ignore")
os.environ.setdefault("MNE_DATA", tempfile.mkdtemp())

import numpy as np  # noqa: E402
from _timing import median_time, print_table  # noqa: E402
from moabb.datasets.fake import FakeDataset  # noqa: E402
from moabb.evaluations import WithinSessionEvaluation  # noqa: E402
from moabb.paradigms import LeftRightImagery  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from neuroenc.evaluation.evaluations import WithinSession  # noqa: E402
from neuroenc.riemann import MDM, Covariances  # noqa: E402

CHANNELS = "Fz FC3 FC1 FCz FC2 FC4 C5 C3 C1 Cz C2 C4 C6 CP3 CP1 CPz CP2 CP4 P1 Pz P2 POz".split()


class PreloadedParadigm:
    """The paradigm's epochs, loaded once and served from memory."""

    def __init__(self, paradigm, dataset):
        self.scoring = paradigm.scoring
        self._data = paradigm.get_data(dataset, subjects=dataset.subject_list)
        self._load_time = 0.0

    def is_valid(self, dataset):
        return True

    def get_data(self, dataset, subjects=None, return_epochs=False):
        t0 = time.perf_counter()
        X, y, meta = self._data
        keep = meta.subject.isin(subjects).to_numpy()
        out = X[keep], y[keep], meta[keep].reset_index(drop=True)
        self._load_time += time.perf_counter() - t0
        return out


def run_neuroenc(paradigm, dataset, store):
    """(wall s, fit + score s, mean fit s per fold, n folds) of one WithinSession.process.

    The time spent serving the epochs (copying them out of memory) is the
    paradigm's, not the framework's, and is left out.
    """
    pipes = {"MDM": make_pipeline(Covariances("oas"), MDM())}
    paradigm._load_time = 0.0
    t0 = time.perf_counter()
    df = WithinSession(paradigm, dataset, random_state=42, results=store).process(pipes)
    wall = time.perf_counter() - t0 - paradigm._load_time
    n_folds = int(df.n_folds.sum())
    work = float(((df.time + df.score_time) * df.n_folds).sum())
    return wall, work, float((df.time * df.n_folds).sum()) / n_folds, n_folds


def overheads(paradigm, dataset, tmp: Path, repeat: int = 7) -> None:
    """Print per-fold overheads (medians over runs; the two configurations alternate)."""
    runs: dict[str, list] = {"results=None": [], "results=store.h5": []}
    for i in range(repeat):
        runs["results=None"].append(run_neuroenc(paradigm, dataset, None))
        runs["results=store.h5"].append(run_neuroenc(paradigm, dataset, tmp / f"store{i}.h5"))  # a fresh store
    print(f"{'overhead (data preloaded)':<34} {'wall':>8} {'fit/fold':>9} {'overhead/fold':>14} {'% of fit':>9}")
    for label, rows in runs.items():
        wall, work, fit, n_folds = (np.array(col) for col in zip(*rows))
        n = int(n_folds[0])
        over = np.median((wall - work) / n)
        fit_ms = np.median(fit)
        print(
            f"{label + f' ({n} folds)':<34} {np.median(wall):7.3f}s {fit_ms * 1e3:7.2f}ms {over * 1e3:12.3f}ms"
            f" {100 * over / fit_ms:8.2f}%"
        )
    print()


def main(n_subjects: int = 4, n_events: int = 96) -> None:
    tmp = Path(tempfile.mkdtemp())
    dataset = FakeDataset(
        event_list=["left_hand", "right_hand"],
        n_subjects=n_subjects,
        n_sessions=2,
        n_runs=1,
        n_events=n_events,
        duration=400,
        sfreq=250,
        seed=3,
        channels=CHANNELS,
    )
    paradigm = LeftRightImagery()
    preloaded = PreloadedParadigm(paradigm, dataset)
    X = preloaded._data[0]
    print(
        f"FakeDataset: {n_subjects} subjects x 2 sessions, epochs {X.shape[1:]} (channels, times), {n_events}/session"
    )
    print()
    overheads(preloaded, dataset, tmp)

    pipes = {"MDM": make_pipeline(Covariances("oas"), MDM())}

    def ours():
        WithinSession(paradigm, dataset, random_state=42, results=tmp / "ours.h5", overwrite=True).process(pipes)

    def theirs():
        WithinSessionEvaluation(
            paradigm=paradigm, datasets=[dataset], random_state=42, hdf5_path=str(tmp), overwrite=True
        ).process(pipes)

    t_ours = median_time(ours, repeat=3)
    t_ref = median_time(theirs, repeat=3)
    print_table([("WithinSession end to end (load+fit+store)", t_ours, t_ref, "moabb WithinSessionEvaluation")])
    print(f"\ncommand: python benchmarks/bench_evaluation.py {n_subjects} {n_events}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
