"""``neuroenc demo``: load real EEG, fMRI and spike data end to end.

Later capabilities (RSA, encoding, Riemannian decoding, evaluations) add
their step to :data:`STEPS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuroenc.braindata import BrainData
from neuroenc.datapath import find_data_dir
from neuroenc.errors import MissingFileError, NeuroencError


def _load_eeg(data_dir: Path | None, allow_download: bool) -> tuple[BrainData, str]:
    from neuroenc.datasets.local import load_physionet_mi

    bd = load_physionet_mi(1, "imagery_lr", data_dir=data_dir, allow_download=allow_download)
    first = Path(bd.provenance[0]["params"]["sources"][0]["path"])
    return bd, f"{first.parent.name}/ ({first.parent})"


def _load_fmri(data_dir: Path | None, allow_download: bool) -> tuple[BrainData, str]:
    from neuroenc.datasets.local import load_haxby

    return load_haxby("betas", data_dir=data_dir), "haxby/ (PyMVPA excerpt)"


def _load_spikes(data_dir: Path | None, allow_download: bool) -> tuple[BrainData, str]:
    from neuroenc.datasets.local import load_grasshopper

    return load_grasshopper(data_dir=data_dir), "nitime/ grasshopper recordings"


def _riemann_decoding(folder: Path | None, allow_download: bool) -> list[dict[str, Any]]:
    """Cross-validated imagined left/right fist decoding with three Riemannian pipelines."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    from neuroenc.datasets.local import load_physionet_mi
    from neuroenc.riemann import MDM, AugmentedCovariances, Covariances, TSClassifier

    epochs = load_physionet_mi(1, "imagery_lr", data_dir=folder, allow_download=allow_download, l_freq=8.0, h_freq=30.0)
    motor = [n for n in epochs.feature_names if n[:2] in ("Fc", "C1", "C2", "C3", "C4", "C5", "C6", "Cz", "Cp")]
    epochs = epochs.pick_features(motor).crop(0.5, 3.5)
    cv = StratifiedKFold(5, shuffle=True, random_state=42)
    pipelines = {
        "Covariances(oas) + MDM": make_pipeline(Covariances("oas"), MDM()),
        "Covariances(oas) + TSClassifier": make_pipeline(Covariances("oas"), TSClassifier()),
        "AugmentedCovariances(3, 8) + TSClassifier": make_pipeline(
            AugmentedCovariances(order=3, lag=8, estimator="oas"), TSClassifier()
        ),
    }
    rows = []
    for name, pipeline in pipelines.items():
        t0 = time.perf_counter()
        scores = cross_val_score(pipeline, epochs.data, epochs.conditions, cv=cv)
        rows.append(
            {
                "pipeline": name,
                "accuracy": f"{scores.mean():.3f} +/- {scores.std():.3f}",
                "folds": len(scores),
                "time s": f"{time.perf_counter() - t0:.2f}",
            }
        )
    print(
        f"\nRiemannian decoding, PhysioNet S001 imagined left vs right fist ({epochs.n_obs} trials, "
        f"{epochs.n_features} sensorimotor channels, 8-30 Hz, 0.5-3.5 s), stratified 5-fold CV:"
    )
    return rows


#: Pipelines of the demo's MOABB-style evaluation (the same as docs/examples/pipelines_mi.yml).
EVALUATION_PIPELINES = """
name: CSP + LDA
steps: [{class: CSP, params: {n_components: 6}}, LDA]
---
name: Covariances + MDM
steps: [{class: Covariances, params: {estimator: oas}}, MDM]
---
name: Tangent space + LR
steps:
  - {class: Covariances, params: {estimator: oas}}
  - TangentSpace
  - {class: LogisticRegression, params: {max_iter: 1000}}
"""


def _within_session_evaluation(folder: Path | None, allow_download: bool, out_dir: Path) -> list[dict[str, Any]]:
    """WithinSession evaluation of three pipelines on PhysioNet S001; results stored and plotted."""
    import mne
    import yaml

    from neuroenc.datasets.paradigms import LeftRightImagery
    from neuroenc.datasets.registry import PhysionetMI
    from neuroenc.evaluation.evaluations import WithinSession
    from neuroenc.evaluation.pipelines import pipelines_from_spec
    from neuroenc.evaluation.plots import save_figure, score_plot
    from neuroenc.evaluation.store import ResultsStore

    dataset = PhysionetMI(data_dir=folder, allow_download=allow_download)
    dataset.subject_list = [1]
    pipelines = pipelines_from_spec(list(yaml.safe_load_all(EVALUATION_PIPELINES)), "demo pipelines")
    results = out_dir / "results.h5"
    evaluation = WithinSession(
        LeftRightImagery(fmin=8, fmax=30), [dataset], random_state=42, results=results, overwrite=True
    )
    t0 = time.perf_counter()
    with mne.utils.use_log_level("WARNING"):  # CSP logs every fit
        scores = evaluation.process(pipelines)
    seconds = time.perf_counter() - t0
    figure = save_figure(score_plot(ResultsStore(results).to_frame()), out_dir / "scores.png")
    print(
        f"\nWithinSession evaluation (MOABB-style), PhysioNet S001 imagined left vs right hand, 8-30 Hz, "
        f"5 stratified folds per session, ROC AUC ({seconds:.1f} s); folds stored in {results}, "
        f"score plot in {figure}; see `neuroenc results show {results}`:"
    )
    return [
        {
            "pipeline": row.pipeline,
            "session": row.session,
            "roc auc": f"{row.score:.3f}",
            "folds": row.n_folds,
            "trials": row.n_samples,
            "fit s": f"{row.time:.3f}",
        }
        for row in scores.itertuples()
    ]


#: (name, function) of each analysis run on the data folder after loading.
ANALYSES: list[tuple[str, Callable[[Path | None, bool, Path], list[dict[str, Any]]]]] = [
    ("Riemannian decoding", lambda folder, allow_download, out_dir: _riemann_decoding(folder, allow_download)),
    ("WithinSession evaluation", _within_session_evaluation),
]


#: (name, loader) of each demo dataset.
STEPS: list[tuple[str, Callable[[Path | None, bool], tuple[BrainData, str]]]] = [
    ("PhysioNet MI (imagined left/right fist)", _load_eeg),
    ("Haxby 2001 (GLM betas per run)", _load_fmri),
    ("Grasshopper receptor spikes", _load_spikes),
]


def _summary_row(name: str, bd: BrainData, seconds: float, origin: str) -> dict[str, Any]:
    counts = bd.obs["condition"].value_counts()
    return {
        "dataset": name,
        "modality": bd.modality,
        "obs": bd.n_obs,
        "features": bd.n_features,
        "times": bd.n_times or "-",
        "conditions": f"{len(counts)} ({counts.min()}-{counts.max()} each)",
        "load s": f"{seconds:.2f}",
        "from": origin,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    print("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))


def run_demo(data_dir: str | None = None, out: str = "neuroenc_demo_output", allow_download: bool = True) -> int:
    """Run the demo; returns the process exit code."""
    print("neuroenc demo: load EEG, fMRI and spikes into BrainData, store them in HDF5, decode EEG\n")
    if data_dir is not None:
        folder: Path | None = Path(data_dir).expanduser().resolve()
        if not folder.is_dir():
            raise MissingFileError(f"--data-dir {folder} is not a folder.")
        print(f"Data folder: {folder} (from --data-dir)")
    else:
        found = find_data_dir()
        folder = found[0] if found else None
        if found:
            print(f"Data folder: {found[0]} (found via {found[1]})")
        else:
            print(
                "No local data folder (NEUROENC_DATA or ../shared/data); "
                + ("trying MNE's PhysioNet fetcher." if allow_download else "downloads disabled.")
            )

    rows, loaded = [], {}
    for name, loader in STEPS:
        t0 = time.perf_counter()
        try:
            bd, origin = loader(folder, allow_download)
        except NeuroencError as exc:
            print(f"  skipped {name}: {exc}")
            continue
        except OSError as exc:  # network errors of the online fetcher
            print(f"  skipped {name}: could not fetch data ({exc})")
            continue
        rows.append(_summary_row(name, bd, time.perf_counter() - t0, origin))
        loaded[bd.modality] = bd
    if not rows:
        print("neuroenc demo: no dataset could be loaded.")
        return 1

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = out_dir / "demo.h5"
    t0 = time.perf_counter()
    for modality, bd in loaded.items():
        bd.to_hdf5(store, key=modality, overwrite=True)
        back = BrainData.from_hdf5(store, key=modality)
        if not (np.array_equal(back.data, bd.data) and back.obs.equals(bd.obs)):
            print(f"neuroenc demo: HDF5 round trip of {modality} differs.")
            return 1
    print()
    _print_table(rows)
    print(
        f"\nStored and re-read {len(loaded)} entries in {store} "
        f"({store.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.2f} s); "
        f"see `neuroenc info {store}`."
    )
    if "eeg" in loaded:
        for name, analysis in ANALYSES:
            try:
                _print_table(analysis(folder, allow_download, out_dir))
            except NeuroencError as exc:
                print(f"  skipped {name}: {exc}")
    return 0
