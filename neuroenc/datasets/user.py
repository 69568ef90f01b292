"""User datasets described by a small YAML file (schema in ``datasets/README.md``).

Three formats:

- ``eeg``: one file per subject/session/run, read with :func:`mne.io.read_raw`
  (EDF, BDF, FIF, BrainVision, EEGLAB...); a ``path`` template with
  ``{subject}``, ``{session}`` and ``{run}`` fields gives each file.
- ``bids``: an EEG BIDS folder (``root``, ``task``); files and their
  ``*_events.tsv`` (``trial_type`` column) are found by the BIDS naming rule.
- ``fmri``: a 4-D image, a mask and a label table (label and run per
  volume), read with :func:`neuroenc.io.read_fmri`.

``${VAR}`` in any string is replaced by the environment variable ``VAR``;
``${NEUROENC_DATA}`` falls back to the data folder found by
:func:`neuroenc.datapath.find_data_dir`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from neuroenc.datapath import ENV_VAR, find_data_dir
from neuroenc.datasets.registry import PARADIGM_KINDS, Dataset
from neuroenc.errors import CorruptFileError, DataError, MissingFileError

__all__ = ["UserDataset", "FORMATS"]

FORMATS = ("eeg", "bids", "fmri")

_REQUIRED = {"eeg": ("name", "paradigm", "events", "subjects", "path", "interval"),
             "bids": ("name", "paradigm", "events", "subjects", "root", "task", "interval"),
             "fmri": ("name", "events", "subjects", "path", "mask", "labels")}  # fmt: skip
_OPTIONAL = ("format", "sessions", "runs", "reader", "description", "datatype", "extension", "mode",
             "paradigm", "interval", "unit_factor")  # fmt: skip


class UserDataset(Dataset):
    """A dataset defined by a YAML description (see :meth:`from_yaml`).

    Parameters
    ----------
    spec : dict
        The parsed description.
    origin : str
        Where it came from (file name, for messages).
    """

    def __init__(self, spec: dict, origin: str = "<dict>") -> None:
        self.origin = origin
        self.spec = _check_spec(spec, origin)
        s = self.spec
        self.format = s["format"]
        self.code = str(s["name"])
        self.paradigm = s["paradigm"]
        self.interval = tuple(float(v) for v in s["interval"])
        self.subject_list = list(s["subjects"])
        self.sessions = [str(v) for v in s.get("sessions", ["0"])]
        self.sessions_per_subject = len(self.sessions)
        self.runs = list(s.get("runs", ["0"]))
        self.unit_factor = float(s.get("unit_factor", 1.0 if self.format == "fmri" else 1e6))
        self.markers = dict(s["events"])
        taken = {v for v in self.markers.values() if isinstance(v, int)}
        free = (c for c in range(1, 10**6) if c not in taken)
        self.events = {name: (m if isinstance(m, int) else next(free)) for name, m in self.markers.items()}
        self.source = f"{self.format} files described in {origin}"
        self.description = str(s.get("description", ""))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> UserDataset:
        """Read a dataset description.

        Raises
        ------
        MissingFileError
            If the file does not exist.
        CorruptFileError
            If it is not valid YAML.
        DataError
            If a key is missing, unknown or has a bad value (the message
            names the file and the key).
        """
        import yaml

        path = Path(path).expanduser()
        if not path.is_file():
            raise MissingFileError(f"Dataset description not found: {path}")
        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise CorruptFileError(f"{path} is not valid YAML: {exc}") from exc
        return cls(spec, str(path))

    def cache_params(self) -> dict:
        text = repr(sorted(self.spec.items(), key=lambda kv: kv[0]))
        return {"spec": hashlib.sha256(text.encode()).hexdigest()[:16]}

    def available(self) -> bool:
        try:
            first = self._files(self.subject_list[0], self.sessions[0], self.runs[0])
        except (DataError, OSError):
            return False
        return all(Path(p).exists() for p in first)

    # ------------------------------------------------------------------
    def _files(self, subject: Any, session: str, run: Any) -> list[Path]:
        s = self.spec
        if self.format == "bids":
            return [_bids_path(s, subject, session, run, self.origin)]
        fields = {"subject": subject, "session": session, "run": run}
        try:
            return [Path(str(s["path"]).format(**fields))]
        except (KeyError, ValueError, IndexError) as exc:
            raise DataError(f"{self.origin}: key 'path': cannot fill the template {s['path']!r}: {exc}") from exc

    def _get_single_subject_data(self, subject: Any) -> dict:
        if self.format == "fmri":
            return self._fmri_subject(subject)
        data: dict = {}
        for session in self.sessions:
            data[session] = {}
            for run in self.runs:
                (path,) = self._files(subject, session, run)
                data[session][str(run)] = self._read_raw(path)
        return data

    def _read_raw(self, path: Path) -> Any:
        import mne

        if not path.exists():
            raise MissingFileError(f"{self.origin}: file not found: {path}")
        raw = mne.io.read_raw(path, preload=True, verbose="error", **dict(self.spec.get("reader") or {}))
        if self.format == "bids":
            _annotate_from_tsv(raw, path, self.origin)
        rename = {str(m): name for name, m in self.markers.items() if not isinstance(m, int)}
        present = set(raw.annotations.description)
        raw.annotations.rename({k: v for k, v in rename.items() if k in present})
        return raw

    def _fmri_subject(self, subject: Any) -> dict:
        from neuroenc.io import read_fmri

        s = self.spec
        fields = {"subject": subject}
        paths = {}
        for key in ("path", "mask", "labels"):
            try:
                paths[key] = Path(str(s[key]).format(**fields))
            except (KeyError, ValueError, IndexError) as exc:
                raise DataError(f"{self.origin}: key {key!r}: cannot fill the template {s[key]!r}: {exc}") from exc
            if not paths[key].exists():
                raise MissingFileError(f"{self.origin}: key {key!r}: file not found: {paths[key]}")
        table = np.loadtxt(paths["labels"], dtype=str, ndmin=2)
        if table.shape[1] < 2:
            raise DataError(f"{self.origin}: key 'labels': {paths['labels']} needs two columns (label, run).")
        bd = read_fmri(
            paths["path"],
            labels=table[:, 0],
            runs=table[:, 1].astype(int),
            mask=paths["mask"],
            mode=s.get("mode", "betas"),
        )
        runs = np.asarray(bd.obs["run"])
        return {"0": {str(int(r)): bd[np.flatnonzero(runs == r)] for r in np.unique(runs)}}


# ----------------------------------------------------------------------
# spec checking

_VAR = re.compile(r"\$\{(\w+)\}")


def _expand(value: Any, origin: str, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, origin, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, origin, key) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        name = match.group(1)
        if os.environ.get(name):
            return os.environ[name]
        if name == ENV_VAR:
            found = find_data_dir()
            if found is not None:
                return str(found[0])
        raise DataError(f"{origin}: key {key!r}: environment variable {name} is not set.")

    return _VAR.sub(sub, value)


def _check_spec(spec: Any, origin: str) -> dict:
    if not isinstance(spec, dict):
        raise DataError(f"{origin}: a dataset description is a YAML mapping (key: value), got {type(spec).__name__}.")
    fmt = spec.get("format", "eeg")
    if fmt not in FORMATS:
        raise DataError(f"{origin}: key 'format': {fmt!r} is not one of {', '.join(FORMATS)}.")
    unknown = [k for k in spec if k not in _REQUIRED[fmt] and k not in _OPTIONAL]
    if unknown:
        allowed = ", ".join(sorted(set(_REQUIRED[fmt]) | set(_OPTIONAL)))
        raise DataError(f"{origin}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {allowed}.")
    missing = [k for k in _REQUIRED[fmt] if k not in spec]
    if missing:
        raise DataError(f"{origin}: missing key(s) {', '.join(map(repr, missing))} (format {fmt!r}).")
    spec = {k: _expand(v, origin, k) for k, v in spec.items()}
    spec["format"] = fmt
    if fmt == "fmri":
        spec.setdefault("paradigm", "fmri_category")
        spec.setdefault("interval", [0.0, 0.0])
    if spec["paradigm"] not in PARADIGM_KINDS:
        raise DataError(f"{origin}: key 'paradigm': {spec['paradigm']!r} is not one of {', '.join(PARADIGM_KINDS)}.")
    name = spec["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise DataError(f"{origin}: key 'name': {name!r} must be a word of letters, digits, '.', '_' or '-'.")
    events = spec["events"]
    if isinstance(events, list):  # a list of names: each is its own marker
        events = {str(e): str(e) for e in events}
        spec["events"] = events
    if not isinstance(events, dict) or not events:
        raise DataError(f"{origin}: key 'events': expected a non-empty mapping event name -> marker (text or code).")
    for ev, marker in events.items():
        if isinstance(marker, bool) or not isinstance(marker, (int, str)):
            raise DataError(f"{origin}: key 'events.{ev}': marker must be text or an integer, got {marker!r}.")
    interval = spec["interval"]
    if (
        not isinstance(interval, (list, tuple))
        or len(interval) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in interval)
        or (fmt != "fmri" and interval[0] >= interval[1])
    ):
        raise DataError(
            f"{origin}: key 'interval': expected [start, stop] in seconds with start < stop, got {interval!r}."
        )
    for key in ("subjects", "sessions", "runs"):
        if key in spec:
            vals = spec[key]
            if not isinstance(vals, list) or not vals or len(set(map(str, vals))) != len(vals):
                raise DataError(f"{origin}: key {key!r}: expected a non-empty list of distinct values, got {vals!r}.")
    if "reader" in spec and not isinstance(spec["reader"], (dict, type(None))):
        raise DataError(f"{origin}: key 'reader': expected a mapping of mne.io.read_raw arguments.")
    return spec


# ----------------------------------------------------------------------
# BIDS


def _bids_path(spec: dict, subject: Any, session: str, run: Any, origin: str) -> Path:
    datatype = spec.get("datatype", "eeg")
    parts = [f"sub-{subject}"]
    folder = Path(spec["root"]) / f"sub-{subject}"
    if "sessions" in spec:
        parts.append(f"ses-{session}")
        folder = folder / f"ses-{session}"
    parts.append(f"task-{spec['task']}")
    if "runs" in spec:
        parts.append(f"run-{run}")
    stem = "_".join(parts) + f"_{datatype}"
    folder = folder / datatype
    ext = spec.get("extension")
    if ext:
        return folder / f"{stem}{ext}"
    matches = sorted(p for p in folder.glob(stem + ".*") if p.suffix not in (".json", ".tsv"))
    if not matches:
        raise MissingFileError(f"{origin}: no BIDS recording {stem}.* in {folder}")
    return matches[0]


def _annotate_from_tsv(raw: Any, path: Path, origin: str) -> None:
    """Replace the annotations by the ``trial_type`` rows of the BIDS ``*_events.tsv``."""
    import mne
    import pandas as pd

    stem = path.name.rsplit("_", 1)[0]
    tsv = path.with_name(f"{stem}_events.tsv")
    if not tsv.exists():
        return  # events stay in the file's own annotations or stim channel
    table = pd.read_csv(tsv, sep="\t", na_values="n/a")
    missing = {"onset", "duration", "trial_type"} - set(table.columns)
    if missing:
        raise DataError(f"{origin}: {tsv} lacks column(s) {', '.join(sorted(missing))}.")
    table = table.dropna(subset=["onset", "trial_type"])
    raw.set_annotations(
        mne.Annotations(
            table["onset"].to_numpy(float),
            table["duration"].fillna(0).to_numpy(float),
            table["trial_type"].astype(str).to_numpy(),
            orig_time=raw.annotations.orig_time,
        )
    )
