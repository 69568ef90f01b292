"""Loaders for the real datasets of the data folder (see ``datapath``).

Each returns a :class:`~neuroenc.BrainData` with a documented ``obs``
schema, built only with the public loaders of :mod:`neuroenc.io`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from neuroenc.braindata import BrainData
from neuroenc.datapath import find_data_dir
from neuroenc.errors import MissingFileError, ShapeError
from neuroenc.io import read_eeg, read_fmri, read_spikes
from neuroenc.validation import check_choice, check_positive

__all__ = ["PHYSIONET_MI_TASKS", "load_physionet_mi", "load_haxby", "load_grasshopper"]

#: task -> (runs, {condition: annotation}) of the PhysioNet EEG Motor Movement/Imagery data.
PHYSIONET_MI_TASKS: dict[str, tuple[tuple[int, ...], dict[str, str]]] = {
    "imagery_lr": ((4, 8, 12), {"left_fist": "T1", "right_fist": "T2"}),
    "imagery_ff": ((6, 10, 14), {"both_fists": "T1", "both_feet": "T2"}),
    "movement_lr": ((3, 7, 11), {"left_fist": "T1", "right_fist": "T2"}),
    "movement_ff": ((5, 9, 13), {"both_fists": "T1", "both_feet": "T2"}),
}


def _data_dir(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise MissingFileError(f"Data folder not found: {path}")
        return path
    found = find_data_dir()
    if found is None:
        raise MissingFileError("No data folder found; set NEUROENC_DATA or pass data_dir.")
    return found[0]


def physionet_mi_files(
    subject: int = 1, task: str = "imagery_lr", data_dir: Any = None, allow_download: bool = False
) -> tuple[list[Path], str]:
    """Local EDF files of one subject/task, fetched with MNE if allowed and missing.

    Returns
    -------
    files : list of Path
        One EDF file per run.
    origin : str
        Where they came from (the folder or "MNE eegbci fetcher").
    """
    runs, _ = PHYSIONET_MI_TASKS[check_choice(task, PHYSIONET_MI_TASKS, "PhysioNet MI task")]
    try:
        root = _data_dir(data_dir) / "eegbci" / f"S{subject:03d}"
        files = [root / f"S{subject:03d}R{r:02d}.edf" for r in runs]
        missing = [f for f in files if not f.exists()]
        if not missing:
            return files, str(root)
        error: Exception = MissingFileError(f"Missing PhysioNet files: {', '.join(f.name for f in missing)}")
    except MissingFileError as exc:
        error = exc
    if not allow_download:
        raise error
    import mne

    paths = mne.datasets.eegbci.load_data(subject, list(runs), update_path=False, verbose="error")
    return [Path(p) for p in paths], "MNE eegbci fetcher (PhysioNet, online)"


def load_physionet_mi(
    subject: int = 1,
    task: str = "imagery_lr",
    *,
    data_dir: Any = None,
    allow_download: bool = False,
    tmin: float = 0.0,
    tmax: float = 4.0,
    **read_kwargs: Any,
) -> BrainData:
    """PhysioNet EEG Motor Movement/Imagery epochs of one subject and task.

    Parameters
    ----------
    subject : int
        Subject number (the data folder holds subject 1).
    task : {"imagery_lr", "imagery_ff", "movement_lr", "movement_ff"}
        Imagined or executed left/right fist, or both fists/both feet.
    data_dir : path-like, optional
        Data folder (default: :func:`neuroenc.datapath.find_data_dir`).
    allow_download : bool
        Fetch missing files with MNE's eegbci fetcher (needs internet).
    tmin, tmax : float
        Epoch window after the cue, in seconds (cues last 4.1 s).
    **read_kwargs
        Passed to :func:`neuroenc.io.read_eeg` (e.g. ``l_freq``, ``h_freq``).

    Returns
    -------
    BrainData
        64-channel EEG at 160 Hz; ``obs``: condition, run (PhysioNet run
        number), onset, sample, event (T1/T2), subject.
    """
    runs, event_id = PHYSIONET_MI_TASKS[check_choice(task, PHYSIONET_MI_TASKS, "PhysioNet MI task")]
    files, _ = physionet_mi_files(subject, task, data_dir, allow_download)
    return read_eeg(files, event_id, tmin=tmin, tmax=tmax, runs=list(runs), subject=subject, **read_kwargs)


def load_haxby(mode: str = "betas", *, data_dir: Any = None, **read_kwargs: Any) -> BrainData:
    """Haxby et al. (2001) subject 1, 530 ventral-temporal voxels of one slice.

    Parameters
    ----------
    mode : {"betas", "volumes"}
        One GLM estimate per category and run (96 observations), or every
        volume (1452, including 588 rest volumes).
    data_dir : path-like, optional
        Data folder.
    **read_kwargs
        Passed to :func:`neuroenc.io.read_fmri`.

    Returns
    -------
    BrainData
        ``obs``: condition (face, house, cat, shoe, bottle, scissors, chair,
        scrambledpix, and rest in volumes mode), run (0-11).
    """
    root = _data_dir(data_dir) / "haxby"
    table = root / "attributes_literal.txt"
    if not table.exists():
        raise MissingFileError(f"Haxby attributes not found: {table}")
    attrs = np.loadtxt(table, dtype=str)
    return read_fmri(
        root / "bold.nii.gz",
        labels=attrs[:, 0],
        runs=attrs[:, 1].astype(int),
        mask=root / "mask.nii.gz",
        mode=mode,
        **read_kwargs,
    )


def load_grasshopper(*, data_dir: Any = None, segment: float = 1.0, bin_size: float = 0.01) -> BrainData:
    """The two nitime grasshopper auditory-receptor recordings as two units.

    The 10-s recordings are cut into consecutive segments of ``segment``
    seconds (the trials, conditions ``seg0``, ``seg1``...).

    Returns
    -------
    BrainData
        Spike counts, (n_segments, 2 units, n_bins).
    """
    segment = check_positive(segment, "segment")
    if segment > 10.0:
        raise ShapeError(f"segment must be at most the 10-s length of the recordings, got {segment:g} s.")
    root = _data_dir(data_dir) / "nitime"
    trains = {}
    for i in (1, 2):
        path = root / f"grasshopper_spike_times{i}.txt"
        if not path.exists():
            raise MissingFileError(f"Grasshopper spikes not found: {path}")
        trains[f"recording{i}"] = np.loadtxt(path)
    n_seg = int(np.floor(10.0 / segment + 1e-9))
    onsets_us = np.arange(n_seg) * segment * 1e6
    return read_spikes(
        trains,
        onsets_us,
        [f"seg{i}" for i in range(n_seg)],
        0.0,
        segment,
        bin_size,
        time_unit="us",
        source=str(root),
    )
