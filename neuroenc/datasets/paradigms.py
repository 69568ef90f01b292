"""Paradigms: turn a dataset's recordings into (X, labels, metadata), as MOABB's paradigms do.

EEG paradigms (:class:`MotorImagery`, :class:`LeftRightImagery`,
:class:`ERP`, :class:`P300`) band-pass each run with MNE's IIR filter, cut
epochs from ``tmin`` to ``tmax`` after the start of the dataset's task
``interval``, optionally resample, and scale by the dataset's
``unit_factor`` -- the same steps, in the same order and with the same MNE
calls as ``moabb.paradigms``, so the arrays are identical on the same
recordings. :class:`FMRICategory` selects category patterns of fMRI runs.

``cache=folder`` stores each subject's preprocessed epochs as a
:class:`~neuroenc.BrainData` HDF5 file keyed by the dataset, the subject and
a digest of the paradigm parameters; later calls read it instead of the raw
files.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuroenc.braindata import BrainData, concatenate, provenance_record
from neuroenc.datasets.registry import Dataset, as_dataset, list_datasets
from neuroenc.errors import (
    CorruptFileError,
    DataError,
    EmptySelectionError,
    ModalityError,
    ShapeError,
    StoreError,
    UnknownNameError,
)
from neuroenc.validation import check_names, check_positive

__all__ = [
    "BaseParadigm",
    "MotorImagery",
    "LeftRightImagery",
    "ERP",
    "P300",
    "FMRICategory",
    "CACHE_KEY",
]

#: HDF5 entry of a cached subject.
CACHE_KEY = "epochs"
_CACHE_VERSION = 1


class BaseParadigm:
    """Common machinery of the paradigms; use a subclass.

    Parameters
    ----------
    events : list of str, optional
        Event names to keep (default: the paradigm's choice, see subclasses).
    cache : path-like, optional
        Folder of the HDF5 cache of preprocessed epochs (created if needed).
    """

    #: Dataset kinds (``Dataset.paradigm``) this paradigm accepts.
    kinds: tuple[str, ...] = ()

    def __init__(self, events: list[str] | None = None, cache: Any = None) -> None:
        if events is not None:
            if isinstance(events, str) or not all(isinstance(e, str) for e in events) or len(events) == 0:
                raise DataError(f"events must be a non-empty list of event names, got {events!r}.")
            events = list(events)
        self.events = events
        self.cache = None if cache is None else Path(cache).expanduser()

    # ------------------------------------------------------------------
    # compatibility
    def is_valid(self, dataset: Any) -> bool:
        """Whether the paradigm can use ``dataset`` (kind and events), as MOABB's ``is_valid``."""
        try:
            self.check_dataset(as_dataset(dataset))
        except DataError:
            return False
        return True

    def check_dataset(self, dataset: Dataset) -> dict[str, int]:
        """Raise a clear error if ``dataset`` does not fit; return the events used."""
        if dataset.paradigm not in self.kinds:
            raise ModalityError(
                f"{type(self).__name__} needs a dataset of kind {' or '.join(map(repr, self.kinds))}; "
                f"{dataset.code!r} is {dataset.paradigm!r}."
            )
        return self.used_events(dataset)

    def used_events(self, dataset: Dataset) -> dict[str, int]:
        """Event name -> code of the events this paradigm keeps from ``dataset``."""
        if self.events is None:
            return dict(dataset.events)
        check_names(self.events, dataset.events, f"event(s) of dataset {dataset.code!r}")
        return {e: dataset.events[e] for e in self.events}

    @property
    def datasets(self) -> list[str]:
        """Names of the registered datasets this paradigm accepts."""
        table = list_datasets()
        return [n for n, kind in zip(table["name"], table["paradigm"]) if kind in self.kinds]

    @property
    def scoring(self) -> str:
        """Default scikit-learn scorer: ``"roc_auc"`` for two classes, ``"accuracy"`` otherwise."""
        return "roc_auc" if self._n_classes() == 2 else "accuracy"

    def _n_classes(self) -> int | None:
        return len(self.events) if self.events is not None else None

    # ------------------------------------------------------------------
    # data
    def params(self) -> dict:
        """Parameters that define the preprocessing (the cache digest is computed from them)."""
        return {"paradigm": type(self).__name__, "events": self.events}

    def cache_file(self, dataset: Any, subject: Any) -> Path | None:
        """HDF5 cache file of one subject (None without ``cache``)."""
        if self.cache is None:
            return None
        ds = as_dataset(dataset)
        used = self.used_events(ds)
        key = dict(
            self.params(),
            used_events=used,
            dataset=ds.code,
            dataset_params=ds.cache_params(),
            interval=list(ds.interval),
            unit_factor=ds.unit_factor,
            version=_CACHE_VERSION,
        )
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ds.code)
        return self.cache / safe / f"sub-{subject}_{type(self).__name__}_{digest}.h5"

    def get_braindata(self, dataset: Any, subject: Any) -> BrainData:
        """Preprocessed epochs of one subject.

        Parameters
        ----------
        dataset : Dataset, MOABB dataset, name or YAML path
            The dataset.
        subject : int or str
            One subject of ``dataset.subject_list``.

        Returns
        -------
        BrainData
            ``obs`` columns: subject, session, run, condition (event name).
        """
        ds = as_dataset(dataset)
        self.check_dataset(ds)
        (subject,) = ds.check_subjects([subject])
        return self._subject_braindata(ds, subject)

    def get_data(
        self, dataset: Any, subjects: Any = None, return_epochs: bool = False, return_raws: bool = False
    ) -> tuple[Any, np.ndarray, pd.DataFrame]:
        """Data, labels and metadata of the given subjects, like MOABB's ``get_data``.

        Parameters
        ----------
        dataset : Dataset, MOABB dataset, name or YAML path
            The dataset.
        subjects : list, optional
            Subjects (default: all).
        return_epochs : bool
            Return an :class:`mne.Epochs` instead of an array (not cached).
        return_raws : bool
            Return the list of filtered raws (one per run) instead (not cached).

        Returns
        -------
        X : numpy.ndarray, mne.Epochs or list of mne.io.Raw
            ``(n_epochs, n_channels, n_times)`` for EEG, ``(n, n_voxels)`` for fMRI.
        labels : numpy.ndarray
            Event name of each epoch.
        metadata : pandas.DataFrame
            Columns subject, session, run (one row per epoch).
        """
        if return_epochs and return_raws:
            raise DataError("Select only return_epochs or return_raws, not both.")
        ds = as_dataset(dataset)
        self.check_dataset(ds)
        subjects = ds.check_subjects(subjects)
        if return_epochs or return_raws:
            return self._get_mne(ds, subjects, return_raws)
        parts = [self._subject_braindata(ds, s) for s in subjects]
        X = np.concatenate([p.data for p in parts], axis=0)
        labels = np.asarray([c for p in parts for c in p.obs["condition"]])
        metadata = pd.DataFrame(
            {
                "subject": [s for p in parts for s in p.obs["subject"]],
                "session": [str(s) for p in parts for s in p.obs["session"]],
                "run": [str(r) for p in parts for r in p.obs["run"]],
            }
        )
        return X, labels, metadata

    def _subject_braindata(self, ds: Dataset, subject: Any) -> BrainData:
        path = self.cache_file(ds, subject)
        if path is not None and path.exists():
            try:
                return BrainData.from_hdf5(path, CACHE_KEY)
            except (CorruptFileError, StoreError):
                path.unlink(missing_ok=True)  # an unreadable cache file is rebuilt below
        bd = self._process_subject(ds, subject)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            bd.to_hdf5(path, CACHE_KEY, overwrite=True)
        return bd

    def _process_subject(self, ds: Dataset, subject: Any) -> BrainData:
        used = self.used_events(ds)
        sessions = ds.get_data([subject])[subject]
        parts = []
        for session, runs in sessions.items():
            for run, recording in runs.items():
                bd = self._process_run(recording, ds, used)
                if bd is None:  # the run holds none of the events
                    continue
                obs = bd.obs.assign(subject=subject, session=str(session), run=str(run))
                parts.append(bd._replace(obs=obs[["subject", "session", "run", "condition"]]))
        if not parts:
            raise EmptySelectionError(
                f"Subject {subject} of {ds.code!r} has none of the events {sorted(used)} in any run."
            )
        out = concatenate(parts) if len(parts) > 1 else parts[0]
        out.provenance.append(provenance_record("paradigm", dataset=ds.code, subject=subject, **self.params()))
        return out

    def _process_run(self, recording: Any, ds: Dataset, used: dict[str, int]) -> BrainData | None:
        raise NotImplementedError

    def _get_mne(self, ds: Dataset, subjects: list, return_raws: bool) -> tuple:
        raise DataError(f"{type(self).__name__} has no MNE output; use return_epochs=False, return_raws=False.")


# ----------------------------------------------------------------------
# EEG


def _find_events(raw: Any, used: dict[str, int], offset_s: float) -> np.ndarray:
    """Cue events of ``used`` in a raw, from its stim channel or else its annotations (MOABB's rule)."""
    import mne

    if len(mne.pick_types(raw.info, meg=False, stim=True)) > 0:
        events = mne.find_events(raw, shortest_event=0, verbose=False)
    else:
        try:
            events, _ = mne.events_from_annotations(raw, event_id=used, verbose=False)
        except ValueError as exc:
            if "Could not find any of the events" in str(exc):
                return np.zeros((0, 3), dtype=int)
            raise
        events[:, 0] -= int(offset_s * raw.info["sfreq"])
    return events[np.isin(events[:, 2], list(used.values()))]


class _EpochsParadigm(BaseParadigm):
    """Band-pass, epoch and resample continuous EEG (MOABB's single-band processing)."""

    def __init__(
        self,
        fmin: float | None,
        fmax: float | None,
        events: list[str] | None = None,
        tmin: float = 0.0,
        tmax: float | None = None,
        baseline: tuple[float, float] | None = None,
        channels: list[str] | None = None,
        resample: float | None = None,
        cache: Any = None,
    ) -> None:
        super().__init__(events, cache)
        for name, value in (("fmin", fmin), ("fmax", fmax)):
            if value is not None:
                check_positive(value, name)
        if fmin is not None and fmax is not None and fmin >= fmax:
            raise ShapeError(f"fmin ({fmin}) must be below fmax ({fmax}).")
        if tmax is not None and tmin >= tmax:
            raise ShapeError(f"tmax ({tmax}) must be greater than tmin ({tmin}).")
        if baseline is not None and len(baseline) != 2:
            raise ShapeError(f"baseline must be None or (start, stop), got {baseline!r}.")
        self.fmin, self.fmax = fmin, fmax
        self.tmin, self.tmax = float(tmin), tmax
        self.baseline = None if baseline is None else tuple(baseline)
        self.channels = None if channels is None else list(channels)
        self.resample = None if resample is None else check_positive(resample, "resample")

    @property
    def filters(self) -> list[list[float | None]]:
        """The band, as MOABB's ``filters``."""
        return [[self.fmin, self.fmax]]

    def params(self) -> dict:
        return dict(
            super().params(),
            fmin=self.fmin,
            fmax=self.fmax,
            tmin=self.tmin,
            tmax=self.tmax,
            baseline=self.baseline,
            channels=self.channels,
            resample=self.resample,
        )

    def _window(self, ds: Dataset) -> tuple[float, float, tuple | None, float, float]:
        """Epoch window in the cue's time, as MOABB (relative to ``interval[0]``)."""
        start = ds.interval[0]
        tmin = self.tmin + start
        tmax = ds.interval[1] if self.tmax is None else self.tmax + start
        if self.baseline is None:
            return tmin, tmax, None, tmin, tmax
        baseline = (self.baseline[0] + start, self.baseline[1] + start)
        return tmin, tmax, baseline, min(baseline[0], tmin), max(baseline[1], tmax)

    def _epochs(self, raw: Any, ds: Dataset, used: dict[str, int]) -> Any:
        import mne

        if not isinstance(raw, mne.io.BaseRaw):
            raise ModalityError(f"{type(self).__name__} needs continuous EEG (mne.io.Raw); got {type(raw).__name__}.")
        if self.fmin is not None or self.fmax is not None:
            raw.filter(l_freq=self.fmin, h_freq=self.fmax, method="iir", picks="data", verbose=False)
        events = _find_events(raw, used, ds.annotation_offset)
        if len(events) == 0:
            return None
        if self.channels is None:
            picks = mne.pick_types(raw.info, eeg=True, stim=False)
        else:
            check_names(self.channels, raw.ch_names, f"channel(s) of {ds.code!r}")
            picks = mne.pick_channels(raw.ch_names, include=self.channels, ordered=True)
        tmin, tmax, baseline, bmin, bmax = self._window(ds)
        epochs = mne.Epochs(
            raw,
            events,
            event_id=list(used.values()),
            tmin=bmin,
            tmax=bmax,
            proj=False,
            baseline=baseline,
            preload=True,
            verbose=False,
            picks=picks,
            event_repeated="drop",
            on_missing="ignore",
            reject_by_annotation=True,
        )
        if bmin < tmin or bmax > tmax:
            epochs.crop(tmin=tmin, tmax=tmax, verbose=False)
        if self.resample is not None:
            epochs.resample(self.resample, verbose=False)
        return epochs

    def _labels(self, epochs: Any, used: dict[str, int]) -> list[str]:
        names = {code: name for name, code in used.items()}
        return [names[c] for c in epochs.events[:, -1]]

    def _process_run(self, recording: Any, ds: Dataset, used: dict[str, int]) -> BrainData | None:
        epochs = self._epochs(recording, ds, used)
        if epochs is None or len(epochs) == 0:
            return None
        X = epochs.get_data() * ds.unit_factor
        return BrainData(
            X,
            pd.DataFrame({"condition": self._labels(epochs, used)}),
            "eeg",
            features=list(epochs.ch_names),
            times=epochs.times,
            sfreq=epochs.info["sfreq"],
            info=epochs.info,
        )

    def _get_mne(self, ds: Dataset, subjects: list, return_raws: bool) -> tuple:
        import mne

        used = self.used_events(ds)
        X, labels, metas = [], [], []
        for subject in subjects:
            for session, runs in ds.get_data([subject])[subject].items():
                for run, raw in runs.items():
                    epochs = self._epochs(raw, ds, used)
                    if epochs is None or len(epochs) == 0:
                        continue
                    n = 1 if return_raws else len(epochs)
                    meta = pd.DataFrame(
                        {"subject": [subject] * n, "session": [str(session)] * n, "run": [str(run)] * n}
                    )
                    labels += self._labels(epochs, used)
                    if return_raws:
                        X.append(raw)
                    else:
                        epochs.metadata = meta.copy()
                        epochs.set_annotations(None)
                        X.append(epochs)
                    metas.append(meta)
        if not metas:
            raise EmptySelectionError(f"None of the events {sorted(used)} occur in {ds.code!r} for these subjects.")
        if not return_raws:
            X = mne.concatenate_epochs(X, verbose=False) if len(X) > 1 else X[0]
        return X, np.asarray(labels), pd.concat(metas, ignore_index=True)


class MotorImagery(_EpochsParadigm):
    """N-class motor imagery (MOABB's ``MotorImagery``).

    Parameters
    ----------
    n_classes : int, optional
        Number of classes: the first ``n_classes`` of ``events`` present in
        the dataset; without ``events``, every event of the dataset is used
        and ``n_classes`` is the minimum it must have (as MOABB).
    fmin, fmax : float
        Band-pass (Hz; IIR Butterworth, zero phase, as MOABB).
    events : list of str, optional
        Event names (default: all events of the dataset).
    tmin, tmax : float
        Epoch window (s) relative to the start of the dataset's ``interval``;
        ``tmax=None`` ends at the end of the interval.
    baseline : tuple of float, optional
        Baseline window (same reference as ``tmin``).
    channels : list of str, optional
        Channels, in this order (default: every EEG channel).
    resample : float, optional
        New sampling rate (Hz).
    cache : path-like, optional
        Cache folder (see :class:`BaseParadigm`).
    """

    kinds = ("imagery",)

    def __init__(
        self,
        n_classes: int | None = None,
        fmin: float = 8,
        fmax: float = 32,
        events: list[str] | None = None,
        tmin: float = 0.0,
        tmax: float | None = None,
        baseline: tuple[float, float] | None = None,
        channels: list[str] | None = None,
        resample: float | None = None,
        cache: Any = None,
    ) -> None:
        super().__init__(fmin, fmax, events, tmin, tmax, baseline, channels, resample, cache)
        if n_classes is not None:
            if int(n_classes) != n_classes or n_classes < 1:
                raise ShapeError(f"n_classes must be a positive integer, got {n_classes!r}.")
            if events is not None and n_classes > len(events):
                raise ShapeError(f"n_classes ({n_classes}) exceeds the number of events ({len(events)}).")
        self.n_classes = None if n_classes is None else int(n_classes)

    def params(self) -> dict:
        return dict(super().params(), n_classes=self.n_classes)

    def _n_classes(self) -> int | None:
        return self.n_classes if self.n_classes is not None else super()._n_classes()

    def used_events(self, dataset: Dataset) -> dict[str, int]:
        candidates = list(dataset.events) if self.events is None else self.events
        present = [e for e in candidates if e in dataset.events]
        wanted = self.n_classes if self.n_classes is not None else len(candidates)
        # As MOABB: without events every dataset event is used; n_classes is then only a minimum.
        take = len(present) if self.events is None else wanted
        if self.events is not None and self.n_classes is None:
            # Every named event is required, as MOABB's is_valid.
            check_names(self.events, dataset.events, f"event(s) of dataset {dataset.code!r}")
        if len(present) < wanted:
            raise UnknownNameError(
                f"Dataset {dataset.code!r} has {len(present)} of the {wanted} classes needed among "
                f"{candidates}; its events are: {', '.join(dataset.events)}."
            )
        return {e: dataset.events[e] for e in present[:take]}


class LeftRightImagery(MotorImagery):
    """Imagined left vs right hand (MOABB's ``LeftRightImagery``); scored with ROC AUC.

    Parameters are those of :class:`MotorImagery` without ``events`` and
    ``n_classes`` (fixed to left_hand, right_hand).
    """

    def __init__(
        self,
        fmin: float = 8,
        fmax: float = 32,
        tmin: float = 0.0,
        tmax: float | None = None,
        baseline: tuple[float, float] | None = None,
        channels: list[str] | None = None,
        resample: float | None = None,
        cache: Any = None,
    ) -> None:
        super().__init__(None, fmin, fmax, ["left_hand", "right_hand"], tmin, tmax, baseline, channels, resample, cache)


class ERP(_EpochsParadigm):
    """Event-related potentials of any named events (datasets of kind p300 or erp).

    Parameters
    ----------
    events : list of str, optional
        Events to epoch (default: all events of the dataset).
    fmin, fmax : float
        Band-pass (Hz), default 1-24 Hz as MOABB's P300.
    tmin, tmax, baseline, channels, resample, cache
        As :class:`MotorImagery`.
    """

    kinds = ("p300", "erp")

    def __init__(
        self,
        events: list[str] | None = None,
        fmin: float = 1,
        fmax: float = 24,
        tmin: float = 0.0,
        tmax: float | None = None,
        baseline: tuple[float, float] | None = None,
        channels: list[str] | None = None,
        resample: float | None = None,
        cache: Any = None,
    ) -> None:
        super().__init__(fmin, fmax, events, tmin, tmax, baseline, channels, resample, cache)


class P300(ERP):
    """Target vs NonTarget ERPs (MOABB's ``P300``); scored with ROC AUC.

    Parameters are those of :class:`ERP`; ``events`` defaults to
    ``["Target", "NonTarget"]``.
    """

    kinds = ("p300",)

    def __init__(
        self,
        fmin: float = 1,
        fmax: float = 24,
        events: list[str] | None = None,
        tmin: float = 0.0,
        tmax: float | None = None,
        baseline: tuple[float, float] | None = None,
        channels: list[str] | None = None,
        resample: float | None = None,
        cache: Any = None,
    ) -> None:
        super().__init__(
            ["Target", "NonTarget"] if events is None else events,
            fmin,
            fmax,
            tmin,
            tmax,
            baseline,
            channels,
            resample,
            cache,
        )


# ----------------------------------------------------------------------
# fMRI


class FMRICategory(BaseParadigm):
    """Category decoding from fMRI patterns (one pattern per block estimate or volume).

    Parameters
    ----------
    categories : list of str, optional
        Categories to keep (default: every event of the dataset but ``rest``).
    cache : path-like, optional
        Cache folder.

    Notes
    -----
    ``get_data`` returns ``X`` of shape (n_patterns, n_voxels), the
    category of each pattern as labels, and subject/session/run metadata
    (runs are the cross-validation groups of leave-one-run-out).
    """

    kinds = ("fmri_category",)

    def __init__(self, categories: list[str] | None = None, cache: Any = None) -> None:
        super().__init__(categories, cache)

    @property
    def categories(self) -> list[str] | None:
        """The categories asked for (None: all but rest)."""
        return self.events

    def used_events(self, dataset: Dataset) -> dict[str, int]:
        if self.events is None:
            return {k: v for k, v in dataset.events.items() if k != "rest"}
        return super().used_events(dataset)

    def _process_run(self, recording: Any, ds: Dataset, used: dict[str, int]) -> BrainData | None:
        if not isinstance(recording, BrainData) or recording.modality != "fmri":
            raise ModalityError(f"FMRICategory needs fMRI BrainData runs; {ds.code!r} gave {type(recording).__name__}.")
        keep = np.flatnonzero(recording.obs["condition"].astype(str).isin(list(used)).to_numpy())
        if keep.size == 0:
            return None
        return recording[keep]
