"""Framework overhead of neuroenc.evaluation, and wall time against MOABB's WithinSessionEvaluation.

Data: MOABB's FakeDataset (22 channels, 250 Hz, 2 sessions, 96 left/right
trials per session) through ``moabb.paradigms.LeftRightImagery``; pipeline
``Covariances("oas") + MDM`` from neuroenc.riemann.

1. Overhead: the epochs are loaded once and served from memory. Two measures
   per fold, as a percentage of the mean fit time: "beyond fit+score" =
   ``process() wall time - sum over folds of (fit + score time)`` (includes
   copying each fold's epochs out of the session array, which any
   cross-validation does), and "beyond loop" = ``process() wall time - wall
   time of a plain loop`` that runs the same folds by hand (encode labels,
   split, clone/fit on ``X[train]``, score on ``X[test]``): what the framework
   adds (splits, dispatch, record keeping, results table, the results store).
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

import numpy as np  # noqa: E402
from _timing import median_time, print_table  # noqa: E402
from moabb.datasets.fake import FakeDataset  # noqa: E402
from moabb.evaluations import WithinSessionEvaluation  # noqa: E402
from moabb.paradigms import LeftRightImagery  # noqa: E402
from sklearn.metrics import get_scorer  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import LabelEncoder  # noqa: E402

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


def run_loop(paradigm, dataset):
    """(wall s, n folds) of the same folds run by a plain loop, as a user would without a framework.

    Per subject and session: labels encoded, stratified 5-fold splits, a
    fresh pipeline fitted on ``X[train]`` and scored on ``X[test]`` with the
    paradigm's scorer. What neuroenc takes beyond this is what it adds.
    """
    scorer = get_scorer(paradigm.scoring)
    paradigm._load_time = 0.0
    t0 = time.perf_counter()
    n_folds = 0
    for subject in dataset.subject_list:
        X, y, meta = paradigm.get_data(dataset, subjects=[subject])
        for session in np.unique(meta.session):
            ix = np.flatnonzero((meta.session == session).to_numpy())
            Xs, ys = X[ix], LabelEncoder().fit_transform(y[ix])
            for train, test in StratifiedKFold(5, shuffle=True, random_state=42).split(Xs, ys):
                pipe = make_pipeline(Covariances("oas"), MDM()).fit(Xs[train], ys[train])
                scorer(pipe, Xs[test], ys[test])
                n_folds += 1
    return time.perf_counter() - t0 - paradigm._load_time, n_folds


def overheads(paradigm, dataset, tmp: Path, repeat: int = 7) -> None:
    """Print per-fold overheads; the plain loop and both neuroenc runs alternate, differences are paired per round."""
    runs: dict[str, list] = {"results=None": [], "results=store.h5": []}
    loops = []
    for i in range(repeat):
        loops.append(run_loop(paradigm, dataset)[0])
        runs["results=None"].append(run_neuroenc(paradigm, dataset, None))
        runs["results=store.h5"].append(run_neuroenc(paradigm, dataset, tmp / f"store{i}.h5"))  # a fresh store
    print(f"plain loop over the same folds: {np.median(loops):.3f}s (median of {repeat})")
    print()
    header = f"{'overhead (data preloaded)':<34} {'wall':>8} {'fit/fold':>9}"
    print(f"{header} {'beyond fit+score':>17} {'% of fit':>9} {'beyond loop':>12} {'% of fit':>9}")
    for label, rows in runs.items():
        wall, work, fit, n_folds = (np.array(col) for col in zip(*rows))
        n = int(n_folds[0])
        over = np.median((wall - work) / n)
        added = np.median((wall - np.array(loops)) / n)
        fit_ms = np.median(fit)
        print(
            f"{label + f' ({n} folds)':<34} {np.median(wall):7.3f}s {fit_ms * 1e3:7.2f}ms {over * 1e3:15.3f}ms"
            f" {100 * over / fit_ms:8.2f}% {added * 1e3:10.3f}ms {100 * added / fit_ms:8.2f}%"
        )
    print()


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
    print(f"\ncommand: python benchmarks/bench_evaluation.py {n_subjects}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
