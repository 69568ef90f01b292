"""Framework overhead of neuroenc.evaluation, and wall time against MOABB's WithinSessionEvaluation.

Data: MOABB's FakeDataset (22 channels, 250 Hz, 2 sessions, 96 left/right
trials per session) through ``moabb.paradigms.LeftRightImagery``; pipeline
``Covariances("oas") + MDM`` from neuroenc.riemann.

1. Overhead: the epochs are loaded once and served from memory, so that
   ``overhead = process() wall time - sum over folds of (fit + score time)``
   is what the framework adds per fold (splits, cloning, label coding,
   dispatch, record keeping, the results store), reported as a percentage of
   the mean fit time.
2. End to end: ``WithinSession`` against MOABB's ``WithinSessionEvaluation``
   on the same dataset, paradigm, pipeline and seed, both loading the data
   through the paradigm and writing their HDF5 results.

Run: ``python benchmarks/bench_evaluation.py [n_subjects]`` (default 4).
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


def overhead(paradigm, dataset, results, repeat=3):
    """(median wall s, per-fold overhead s, mean fit s, n folds) of WithinSession.process.

    The time spent serving the epochs (copying them out of memory) is the
    paradigm's, not the framework's, and is left out.
    """
    rows = []
    for i in range(repeat):
        pipes = {"MDM": make_pipeline(Covariances("oas"), MDM())}
        store = None if results is None else results.with_name(f"{results.stem}{i}.h5")  # a fresh store per run
        paradigm._load_time = 0.0
        t0 = time.perf_counter()
        df = WithinSession(paradigm, dataset, random_state=42, results=store).process(pipes)
        wall = time.perf_counter() - t0 - paradigm._load_time
        n_folds = int(df.n_folds.sum())
        work = float(((df.time + df.score_time) * df.n_folds).sum())
        fit = float((df.time * df.n_folds).sum()) / n_folds
        rows.append((wall, (wall - work) / n_folds, fit, n_folds))
    rows.sort()
    return rows[len(rows) // 2]


def main(n_subjects: int = 4) -> None:
    tmp = Path(tempfile.mkdtemp())
    dataset = FakeDataset(
        event_list=["left_hand", "right_hand"],
        n_subjects=n_subjects,
        n_sessions=2,
        n_runs=1,
        n_events=96,
        duration=400,
        sfreq=250,
        seed=3,
        channels=CHANNELS,
    )
    paradigm = LeftRightImagery()
    preloaded = PreloadedParadigm(paradigm, dataset)
    X = preloaded._data[0]
    print(f"FakeDataset: {n_subjects} subjects x 2 sessions, epochs {X.shape[1:]} (channels, times), 96/session")
    print()
    print(f"{'overhead (data preloaded)':<34} {'wall':>8} {'fit/fold':>9} {'overhead/fold':>14} {'% of fit':>9}")
    for label, results in [("results=None", None), ("results=store.h5", tmp / "store.h5")]:
        wall, over, fit, n_folds = overhead(preloaded, dataset, results)
        case = f"{label} ({n_folds} folds)"
        print(f"{case:<34} {wall:7.3f}s {fit * 1e3:7.2f}ms {over * 1e3:12.3f}ms {100 * over / fit:8.2f}%")
    print()

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
    print(f"\ncommand: python benchmarks/bench_evaluation.py {n_subjects}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
