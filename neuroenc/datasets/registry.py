"""Dataset registry: named datasets that yield recordings per subject, session and run.

A :class:`Dataset` follows MOABB's ``BaseDataset`` interface: ``get_data``
returns ``{subject: {session: {run: recording}}}`` where a recording is an
:class:`mne.io.Raw` (EEG/MEG; its annotations or stim channel mark the cues
named in ``events``) or a :class:`~neuroenc.BrainData` (fMRI, already one
pattern per observation). Paradigms (:mod:`neuroenc.datasets.paradigms`) turn
these recordings into arrays, labels and metadata.

Built-in datasets: ``PhysionetMI`` (EEG motor imagery, local copy in the data
folder, MNE's fetcher when online) and ``Haxby`` (fMRI object categories).
``moabb:<Name>`` wraps a MOABB dataset class; a ``datasets/<name>.yml`` file
describes user data (:mod:`neuroenc.datasets.user`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuroenc.datasets.local import PHYSIONET_MI_TASKS, _data_dir, load_haxby, physionet_mi_files
from neuroenc.errors import DataError, MissingFileError, UnknownNameError
from neuroenc.validation import check_choice, check_names

__all__ = [
    "PARADIGM_KINDS",
    "Dataset",
    "PhysionetMI",
    "Haxby",
    "register_dataset",
    "get_dataset",
    "list_datasets",
    "as_dataset",
    "dataset_search_path",
]

#: Kinds of experiment a dataset can hold (``Dataset.paradigm``).
PARADIGM_KINDS = ("imagery", "p300", "erp", "fmri_category")

#: Environment variable with extra folders (``os.pathsep``-separated) holding ``<name>.yml`` files.
DATASETS_ENV_VAR = "NEUROENC_DATASETS"


class Dataset:
    """Base class of neuroenc datasets (MOABB's ``BaseDataset`` interface).

    Subclasses set the attributes below in ``__init__`` and implement
    :meth:`_get_single_subject_data`.

    Attributes
    ----------
    code : str
        Name of the dataset (used in results and cache file names).
    subject_list : list of int
        Subjects that exist.
    paradigm : {"imagery", "p300", "erp", "fmri_category"}
        Kind of experiment.
    interval : tuple of float
        Cue-relative window (s) of one trial; paradigms' ``tmin``/``tmax``
        are relative to ``interval[0]``, as in MOABB.
    events : dict of str to int
        Event name -> integer code in the recordings (annotation
        descriptions of a Raw are the event names).
    sessions_per_subject : int
        Sessions per subject.
    unit_factor : float
        Factor applied to epoched EEG (1e6: volts to microvolts, as MOABB).
    source : str
        Where the data come from (for ``list_datasets``).
    annotation_offset : float
        Seconds by which event annotations were shifted after the cue
        (MOABB shifts them by ``interval[0]``); removed when reading events.
    """

    code: str = "Dataset"
    subject_list: list = []
    paradigm: str = "imagery"
    interval: tuple[float, float] = (0.0, 1.0)
    events: dict[str, int] = {}
    sessions_per_subject: int = 1
    unit_factor: float = 1e6
    source: str = ""
    annotation_offset: float = 0.0

    @property
    def event_id(self) -> dict[str, int]:
        """Alias of ``events`` (MOABB's name)."""
        return self.events

    def available(self) -> bool:
        """Whether the recordings can be read now without a download."""
        return True

    def cache_params(self) -> dict:
        """Settings that change the recordings (part of the paradigm cache key)."""
        return {}

    def check_subjects(self, subjects: Any) -> list:
        """Subjects as a list; raise :class:`UnknownNameError` for unknown ones."""
        if subjects is None:
            return list(self.subject_list)
        if isinstance(subjects, (int, np.integer, str)):
            subjects = [subjects]
        subjects = [int(s) if isinstance(s, np.integer) else s for s in subjects]
        return check_names(subjects, self.subject_list, f"subject(s) of dataset {self.code!r}")

    def get_data(self, subjects: Iterable | None = None) -> dict:
        """Recordings of the given subjects.

        Parameters
        ----------
        subjects : list, optional
            Subjects to load (default: all of ``subject_list``).

        Returns
        -------
        dict
            ``{subject: {session: {run: mne.io.Raw or BrainData}}}``.
        """
        return {s: self._get_single_subject_data(s) for s in self.check_subjects(subjects)}

    def _get_single_subject_data(self, subject: Any) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, subjects={len(self.subject_list)}, paradigm={self.paradigm!r})"
        )


# ----------------------------------------------------------------------
# built-in datasets

#: PhysioNet annotation -> neuroenc/MOABB event name, per kind of run.
_PHYSIONET_EVENTS = {
    "lr": {"T0": "rest", "T1": "left_hand", "T2": "right_hand"},
    "ff": {"T0": "rest", "T1": "hands", "T2": "feet"},
}


class PhysionetMI(Dataset):
    """PhysioNet EEG Motor Movement/Imagery (Schalk et al. 2004), MOABB's event names.

    The data folder holds subject 1; other subjects are fetched with MNE's
    ``eegbci`` fetcher when ``allow_download=True`` (needs internet).

    Parameters
    ----------
    imagined : bool
        Include the imagined-movement runs (4, 8, 12 left/right fist; 6, 10,
        14 both fists/both feet).
    executed : bool
        Include the executed-movement runs (3, 7, 11; 5, 9, 13).
    data_dir : path-like, optional
        Data folder (default: :func:`neuroenc.datapath.find_data_dir`).
    allow_download : bool
        Fetch files missing from the data folder with MNE.

    Notes
    -----
    One session ``"0"`` per subject; runs are named by their PhysioNet run
    number (``"4"``, ``"8"``...). Events: rest (T0), left_hand/right_hand
    (T1/T2 of left/right runs), hands/feet (T1/T2 of fists/feet runs);
    ``interval`` is (0, 3) s as in MOABB. Channel names are standardised
    with :func:`mne.datasets.eegbci.standardize`.
    """

    code = "PhysionetMI"
    paradigm = "imagery"
    interval = (0.0, 3.0)
    events = {"rest": 1, "left_hand": 2, "right_hand": 3, "hands": 4, "feet": 5}
    # Recordings 88, 92 and 100 have a different sampling rate; 104 is broken (as in MOABB).
    all_subjects = [s for s in range(1, 110) if s not in (88, 92, 100, 104)]
    source = "PhysioNet eegmmidb (data folder; MNE eegbci fetcher when online)"

    def __init__(
        self, *, imagined: bool = True, executed: bool = False, data_dir: Any = None, allow_download: bool = False
    ) -> None:
        if not (imagined or executed):
            raise DataError("PhysionetMI needs imagined=True or executed=True (or both).")
        prefix = [p for p, keep in (("imagery", imagined), ("movement", executed)) if keep]
        self.tasks = [f"{p}_{kind}" for p in prefix for kind in ("lr", "ff")]
        self.data_dir = data_dir
        self.allow_download = allow_download
        # Without downloads, the subjects are those whose files are in the data folder.
        self.subject_list = (
            list(self.all_subjects) if allow_download else [s for s in self.all_subjects if self._local(s)]
        )

    def _local(self, subject: int) -> bool:
        try:
            for task in self.tasks:
                physionet_mi_files(subject, task, self.data_dir, allow_download=False)
        except MissingFileError:
            return False
        return True

    def check_subjects(self, subjects: Any) -> list:
        if subjects is not None and not self.allow_download:
            wanted = [subjects] if isinstance(subjects, (int, np.integer)) else list(subjects)
            remote = [s for s in wanted if s in self.all_subjects and s not in self.subject_list]
            if remote:
                raise MissingFileError(
                    f"PhysionetMI subject(s) {remote} are not in the data folder (local: {self.subject_list}); "
                    "pass allow_download=True to fetch them with MNE (needs internet)."
                )
        return super().check_subjects(subjects)

    def cache_params(self) -> dict:
        return {"tasks": self.tasks}

    def available(self) -> bool:
        return bool(self.subject_list)

    def _get_single_subject_data(self, subject: int) -> dict:
        import mne

        runs = {}
        for task in self.tasks:
            files, _ = physionet_mi_files(subject, task, self.data_dir, self.allow_download)
            rename = _PHYSIONET_EVENTS[task.rsplit("_", 1)[1]]
            for run, path in zip(PHYSIONET_MI_TASKS[task][0], files):
                raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
                mne.datasets.eegbci.standardize(raw)
                raw.annotations.rename({k: v for k, v in rename.items() if k in raw.annotations.description})
                runs[str(run)] = raw
        return {"0": dict(sorted(runs.items(), key=lambda kv: int(kv[0])))}


class Haxby(Dataset):
    """Haxby et al. (2001) subject 1: 530 ventral-temporal voxels, 8 object categories.

    Parameters
    ----------
    mode : {"betas", "volumes"}
        One pattern per category and run, or every volume (rest included).
    data_dir : path-like, optional
        Data folder.

    Notes
    -----
    One subject (1), one session ``"0"``, twelve runs ``"0"``...``"11"``;
    each run is a :class:`~neuroenc.BrainData` (modality fmri) whose
    ``obs.condition`` holds the category.
    """

    code = "Haxby"
    paradigm = "fmri_category"
    interval = (0.0, 2.5)
    subject_list = [1]
    events = {
        name: i + 1
        for i, name in enumerate(
            ("face", "house", "cat", "shoe", "bottle", "scissors", "chair", "scrambledpix", "rest")
        )
    }
    unit_factor = 1.0
    source = "Haxby 2001, PyMVPA excerpt (data folder)"

    def __init__(self, mode: str = "betas", *, data_dir: Any = None) -> None:
        self.mode = check_choice(mode, ("betas", "volumes"), "Haxby mode")
        self.data_dir = data_dir

    def cache_params(self) -> dict:
        return {"mode": self.mode}

    def available(self) -> bool:
        try:
            return (_data_dir(self.data_dir) / "haxby" / "bold.nii.gz").exists()
        except MissingFileError:
            return False

    def _get_single_subject_data(self, subject: int) -> dict:
        bd = load_haxby(self.mode, data_dir=self.data_dir)
        runs = np.asarray(bd.obs["run"])
        return {"0": {str(int(r)): bd[np.flatnonzero(runs == r)] for r in np.unique(runs)}}


# ----------------------------------------------------------------------
# registry

_REGISTRY: dict[str, Callable[..., Dataset]] = {}


def register_dataset(cls_or_instance: type | Dataset, name: str | None = None) -> type | Dataset:
    """Make a dataset available to :func:`get_dataset` under its ``code``.

    Parameters
    ----------
    cls_or_instance : Dataset subclass or instance
        A class is instantiated with the keyword arguments of
        :func:`get_dataset`; an instance is returned as is. Usable as a
        class decorator.
    name : str, optional
        Registry name (default: ``code``).

    Returns
    -------
    The argument, unchanged.
    """
    is_class = isinstance(cls_or_instance, type)
    if not (issubclass(cls_or_instance, Dataset) if is_class else isinstance(cls_or_instance, Dataset)):
        raise DataError(f"register_dataset expects a neuroenc Dataset class or instance, got {cls_or_instance!r}.")
    key = name or cls_or_instance.code
    if is_class:
        _REGISTRY[key] = cls_or_instance
    else:

        def factory(**kwargs: Any) -> Dataset:
            if kwargs:
                raise DataError(f"Dataset {key!r} was registered as an instance; it takes no arguments.")
            return cls_or_instance

        _REGISTRY[key] = factory
    return cls_or_instance


register_dataset(PhysionetMI)
register_dataset(Haxby)


def dataset_search_path() -> list[Path]:
    """Folders searched for ``<name>.yml`` dataset definitions.

    ``$NEUROENC_DATASETS`` (``os.pathsep``-separated), then ``./datasets``,
    then the ``datasets/`` folder of the repository checkout.
    """
    folders = [Path(p).expanduser() for p in os.environ.get(DATASETS_ENV_VAR, "").split(os.pathsep) if p]
    folders += [Path.cwd() / "datasets", Path(__file__).resolve().parents[2] / "datasets"]
    seen, out = set(), []
    for folder in folders:
        key = folder.resolve() if folder.exists() else folder
        if key not in seen and folder.is_dir():
            seen.add(key)
            out.append(folder)
    return out


def _yaml_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in dataset_search_path():
        for path in sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def _moabb_names() -> list[str]:
    try:
        import moabb.datasets as md
    except ImportError:  # pragma: no cover - moabb is optional
        return []
    return sorted(n for n in getattr(md, "__all__", dir(md)) if not n.startswith("_"))


def get_dataset(name: str, **kwargs: Any) -> Dataset:
    """A dataset by name.

    Parameters
    ----------
    name : str
        A registered name (``"PhysionetMI"``, ``"Haxby"``...), the stem of a
        YAML definition in :func:`dataset_search_path`, a path to a ``.yml``
        file, or ``"moabb:<ClassName>"`` for a MOABB dataset class.
    **kwargs
        Passed to the dataset class.

    Returns
    -------
    Dataset

    Raises
    ------
    UnknownNameError
        If the name is not known; the message lists the known names.
    """
    if not isinstance(name, str):
        raise UnknownNameError(f"Dataset names are strings, got {name!r}.")
    if name in _REGISTRY:
        return _REGISTRY[name](**kwargs)
    from neuroenc.datasets.user import UserDataset

    yamls = _yaml_files()
    if name.endswith((".yml", ".yaml")) or name in yamls:
        if kwargs:
            raise DataError(f"Dataset {name!r} is described by a YAML file; it takes no arguments.")
        return UserDataset.from_yaml(yamls.get(name, name))
    if name.startswith("moabb:"):
        from neuroenc.datasets.moabb_adapter import MoabbDataset

        cls_name = name.split(":", 1)[1]
        import moabb.datasets as md

        cls = getattr(md, cls_name, None)
        if not isinstance(cls, type):
            known = ", ".join(_moabb_names()[:20])
            raise UnknownNameError(f"Unknown MOABB dataset {cls_name!r}; MOABB datasets include: {known}...")
        return MoabbDataset(cls(**kwargs))
    known = sorted(_REGISTRY) + sorted(yamls)
    raise UnknownNameError(
        f"Unknown dataset {name!r}. Known datasets: {', '.join(known)}; "
        "or 'moabb:<ClassName>' for a MOABB dataset, or a path to a .yml definition."
    )


def as_dataset(dataset: Any) -> Dataset:
    """A neuroenc :class:`Dataset` from a Dataset, a MOABB dataset object, a name or a YAML path."""
    if isinstance(dataset, Dataset):
        return dataset
    if isinstance(dataset, (str, os.PathLike)):
        text = os.fspath(dataset)
        if text.endswith((".yml", ".yaml")):
            from neuroenc.datasets.user import UserDataset

            return UserDataset.from_yaml(text)
        return get_dataset(text)
    from neuroenc.datasets.moabb_adapter import MoabbDataset, is_moabb_dataset

    if is_moabb_dataset(dataset):
        return MoabbDataset(dataset)
    raise DataError(
        f"Expected a neuroenc Dataset, a MOABB dataset, a dataset name or a .yml path; got {type(dataset).__name__}."
    )


def list_datasets() -> pd.DataFrame:
    """Registered and YAML-defined datasets.

    Returns
    -------
    pandas.DataFrame
        Columns name, paradigm, subjects (count), sessions (per subject),
        source, available (readable now without a download).
    """
    from neuroenc.datasets.user import UserDataset

    rows = []
    for name, factory in sorted(_REGISTRY.items()):
        rows.append(_describe(name, factory))
    for name, path in _yaml_files().items():
        if name in _REGISTRY:
            continue
        try:
            ds = UserDataset.from_yaml(path)
        except (DataError, OSError) as exc:
            rows.append(
                dict(
                    name=name, paradigm="?", subjects=0, sessions=0, source=f"{path} (invalid: {exc})", available=False
                )
            )
            continue
        rows.append(_describe(name, lambda ds=ds: ds))
    return pd.DataFrame(rows, columns=["name", "paradigm", "subjects", "sessions", "source", "available"])


def _describe(name: str, factory: Callable[[], Dataset]) -> dict:
    ds = factory()
    return dict(
        name=name,
        paradigm=ds.paradigm,
        subjects=len(ds.subject_list),
        sessions=ds.sessions_per_subject,
        source=ds.source,
        available=bool(ds.available()),
    )
