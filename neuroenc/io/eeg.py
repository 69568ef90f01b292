"""EEG / MEG / iEEG loader built on MNE-Python."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuroenc.braindata import BrainData, concatenate, provenance_record
from neuroenc.errors import (
    CorruptFileError,
    EmptySelectionError,
    LabelError,
    ShapeError,
    UnknownNameError,
)
from neuroenc.io._common import as_list, check_band, check_files, check_window, describe_source
from neuroenc.validation import check_array, check_choice, check_positive

__all__ = ["read_eeg", "read_raw"]

_IGNORED_ANNOTATIONS = ("bad", "edge", "boundary")
_IEEG_TYPES = {"seeg", "ecog", "dbs"}
_MEG_TYPES = {"mag", "grad", "ref_meg"}
EventSpec = Sequence[str | int] | Mapping[str, str | int] | None


def read_raw(path: str | os.PathLike, **reader_kwargs: Any):
    """Read one continuous recording with :func:`mne.io.read_raw`, with clear errors.

    Parameters
    ----------
    path : path-like
        Any file MNE reads (EDF, BDF, GDF, BrainVision ``.vhdr``, EEGLAB
        ``.set``, FIF, CNT, ...).
    **reader_kwargs
        Passed to the MNE reader (e.g. ``data_format="int16"`` for CNT).

    Returns
    -------
    mne.io.Raw
        Preloaded recording.
    """
    import mne

    (path,) = check_files([path], "EEG/MEG file")
    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error", **reader_kwargs)
    except Exception as exc:  # MNE raises many types for damaged or unknown files
        raise CorruptFileError(f"Cannot read {path.name} with MNE ({type(exc).__name__}: {exc})".rstrip()) from exc
    _check_edf_complete(path, raw)
    return raw


def _check_edf_complete(path: Path, raw) -> None:
    """Refuse an EDF/BDF file that holds fewer data records than its header says.

    MNE infers the length from the file size and only warns (hidden by
    ``verbose="error"``), so a truncated copy would otherwise load as a
    silently shorter recording.
    """
    if path.suffix.lower() not in (".edf", ".bdf"):
        return
    with open(path, "rb") as fh:
        header = fh.read(256)
    try:
        n_records = int(header[236:244].decode("ascii"))
        record_s = float(header[244:252].decode("ascii"))
    except ValueError:
        return
    if n_records <= 0 or record_s <= 0:
        return  # -1 marks a recording that was never closed: the file size is its only length
    expected = int(round(n_records * record_s * raw.info["sfreq"]))
    if raw.n_times < expected:
        raise CorruptFileError(
            f"{path.name} is truncated: its header announces {n_records} data records "
            f"({expected} samples) but the file holds only {raw.n_times} samples."
        )


def _normalise_spec(event_id: EventSpec) -> list[tuple[str, str | int]] | None:
    if event_id is None:
        return None
    if isinstance(event_id, (str, int, np.integer)):
        event_id = [event_id]
    items = list(event_id.items()) if isinstance(event_id, Mapping) else [(e, e) for e in event_id]
    if not items:
        raise UnknownNameError("event_id is empty; give at least one event name or code.")
    spec = []
    for name, value in items:
        if isinstance(value, np.integer):
            value = int(value)
        if not isinstance(value, (str, int)):
            raise LabelError(f"event_id value {value!r} for {name!r} must be a name or an integer code.")
        spec.append((str(name), value))
    names = [n for n, _ in spec]
    if len(set(names)) != len(names):
        raise LabelError(f"event_id has repeated condition names: {names}.")
    return spec


def _annotation_names(raw) -> list[str]:
    names = []
    for desc in raw.annotations.description:
        if str(desc).lower().startswith(_IGNORED_ANNOTATIONS):
            continue
        if desc not in names:
            names.append(str(desc))
    return names


def _stim_events(raw) -> np.ndarray:
    import mne

    if not len(mne.pick_types(raw.info, meg=False, stim=True)):
        return np.zeros((0, 3), dtype=int)
    try:
        return mne.find_events(raw, shortest_event=1, verbose="error")
    except ValueError:
        return np.zeros((0, 3), dtype=int)


def _match(value: str | int, annots: list[str], codes: set[int]) -> tuple[str, Any] | None:
    """Where an event_id value is found: ('annot', description) or ('code', int)."""
    if isinstance(value, str):
        if value in annots:
            return "annot", value
        if value.lstrip("-").isdigit() and int(value) in codes:
            return "code", int(value)
    else:
        if value in codes:
            return "code", value
        if str(value) in annots:
            return "annot", str(value)
    return None


def _collect_events(raw, spec, explicit: np.ndarray | None):
    """Events of one run as a table: sample, condition, original label."""
    import mne

    stim = explicit if explicit is not None else _stim_events(raw)
    codes = {int(c) for c in stim[:, 2]}
    annots = [] if explicit is not None else _annotation_names(raw)
    if spec is None:
        if annots:
            spec = [(a, a) for a in annots]
        else:
            spec = [(str(c), c) for c in sorted(codes)]
    rows, found = [], set()
    want_annots = {}
    for name, value in spec:
        where = _match(value, annots, codes)
        if where is None:
            continue
        found.add(name)
        if where[0] == "code":
            for sample in stim[stim[:, 2] == where[1], 0]:
                rows.append((int(sample), name, str(where[1])))
        else:
            want_annots.setdefault(where[1], []).append(name)
    if want_annots:
        mapping = {desc: i + 1 for i, desc in enumerate(want_annots)}
        ev, _ = mne.events_from_annotations(raw, event_id=mapping, verbose="error")
        inverse = {code: desc for desc, code in mapping.items()}
        for sample, _, code in ev:
            desc = inverse[int(code)]
            for name in want_annots[desc]:
                rows.append((int(sample), name, desc))
    table = pd.DataFrame(rows, columns=["sample", "condition", "event"])
    available = annots + [str(c) for c in sorted(codes)]
    return table.sort_values("sample", kind="stable").reset_index(drop=True), found, available


def _modality(ch_types: list[str]) -> str:
    kinds = set(ch_types)
    if kinds & _MEG_TYPES:
        return "meg"
    if kinds & _IEEG_TYPES:
        return "ieeg"
    return "eeg"


def _features(info) -> pd.DataFrame:
    locs = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=float).reshape(-1, 3)
    locs[~np.isfinite(locs)] = np.nan
    return pd.DataFrame(
        {
            "name": list(info["ch_names"]),
            "ch_type": info.get_channel_types(),
            "x": locs[:, 0],
            "y": locs[:, 1],
            "z": locs[:, 2],
        }
    )


def _pick(raw, picks: Any, label: str):
    if picks is None:
        keep = [
            i
            for i, (name, kind) in enumerate(zip(raw.ch_names, raw.get_channel_types()))
            if kind != "stim" and name not in raw.info["bads"]
        ]
        if not keep:
            raise EmptySelectionError(f"{label} has no non-stimulus channel to keep.")
        return raw.pick(keep)
    try:
        return raw.pick(picks)
    except ValueError as exc:
        available = ", ".join(raw.ch_names[:20]) + (" ..." if len(raw.ch_names) > 20 else "")
        raise UnknownNameError(
            f"picks {picks!r} do not match {label} ({exc}). Channels: {available}; "
            f"types: {sorted(set(raw.get_channel_types()))}."
        ) from exc


def _check_nyquist(sfreq: float, l_freq: float | None, h_freq: float | None, label: str) -> None:
    nyquist = sfreq / 2.0
    for name, value in (("l_freq", l_freq), ("h_freq", h_freq)):
        if value is not None and value >= nyquist:
            raise ShapeError(f"{name}={value} Hz is not below the Nyquist frequency of {label} ({nyquist:g} Hz).")


def _filter(inst, l_freq, h_freq) -> None:
    """Band-pass every kept channel except stimulus channels, in place."""
    # MNE's default picks filter only "data" channels: kept EOG/ECG/EMG/misc
    # channels would stay unfiltered, and a recording with only such channels
    # would fail with MNE's "yielded no channels" error.
    picks = [i for i, kind in enumerate(inst.get_channel_types()) if kind != "stim"]
    if picks:
        inst.filter(l_freq, h_freq, picks=picks, verbose="error")


def _epoch_run(raw, table, label, *, tmin, tmax, baseline, l_freq, h_freq, picks, resample, reject_by_annotation):
    import mne

    raw = _pick(raw, picks, label)
    if l_freq is not None or h_freq is not None:
        _filter(raw, l_freq, h_freq)
    names = list(dict.fromkeys(table["condition"]))
    codes = {name: i + 1 for i, name in enumerate(names)}
    events = np.column_stack(
        [table["sample"].to_numpy(), np.zeros(len(table), int), table["condition"].map(codes).to_numpy()]
    ).astype(int)
    dup = pd.Series(events[:, 0]).duplicated().to_numpy()
    if dup.any():
        warnings.warn(
            f"{label}: {int(dup.sum())} event(s) share a sample with an earlier one and are dropped.",
            stacklevel=3,  # _epoch_run <- read_eeg <- the caller
        )
        events, table = events[~dup], table[~dup].reset_index(drop=True)
    epochs = mne.Epochs(
        raw,
        events,
        codes,
        tmin=tmin,
        tmax=tmax,
        baseline=baseline,
        preload=True,
        reject_by_annotation=reject_by_annotation,
        on_missing="ignore",
        verbose="error",
    )
    n_dropped = len(events) - len(epochs)
    if len(epochs) == 0:
        raise EmptySelectionError(
            f"{label}: no epoch could be cut: all {len(events)} event(s) (samples "
            f"{events[0, 0]}..{events[-1, 0]}) lie outside the recording (samples "
            f"{raw.first_samp}..{raw.last_samp}) or overlap bad segments."
        )
    if resample is not None:
        epochs.resample(resample, verbose="error")
    kept = table.iloc[epochs.selection].reset_index(drop=True)
    kept["onset"] = (kept["sample"] - raw.first_samp) / raw.info["sfreq"]
    return epochs, kept[["condition", "onset", "sample", "event"]], n_dropped + int(dup.sum())


def _to_braindata(epochs, obs, modality, provenance) -> BrainData:
    if modality is None:
        modality = _modality(epochs.get_channel_types())
    check_choice(modality, ("eeg", "meg", "ieeg"), "modality for EEG/MEG data")
    return BrainData(
        epochs.get_data(copy=False),
        obs,
        modality,
        features=_features(epochs.info),
        times=epochs.times,
        sfreq=epochs.info["sfreq"],
        info=epochs.info,
        provenance=provenance,
    )


def _from_epochs(epochs, *, tmin, tmax, l_freq, h_freq, picks, resample, modality, extra_obs) -> BrainData:
    epochs = epochs.copy()
    if not epochs.preload:
        epochs.load_data()
    epochs = _pick(epochs, picks, "Epochs")
    _check_nyquist(epochs.info["sfreq"], l_freq, h_freq, "the epochs")
    if l_freq is not None or h_freq is not None:
        _filter(epochs, l_freq, h_freq)
    if tmin is not None or tmax is not None:
        epochs.crop(tmin, tmax)
    if resample is not None:
        epochs.resample(resample, verbose="error")
    inverse = {code: name for name, code in epochs.event_id.items()}
    obs = epochs.metadata.reset_index(drop=True).copy() if epochs.metadata is not None else pd.DataFrame()
    names = [inverse.get(int(c), str(int(c))) for c in epochs.events[:, 2]]
    obs["condition"] = names
    if "run" not in obs:
        obs["run"] = 1
    # Epochs keep absolute sample numbers only, so onsets count from the
    # start of the acquisition rather than from the start of the run.
    obs["onset"] = epochs.events[:, 0] / epochs.info["sfreq"]
    obs["sample"] = epochs.events[:, 0]
    obs["event"] = names
    for key, value in extra_obs.items():
        obs[key] = value
    prov = [
        provenance_record(
            "read_eeg",
            source="mne.Epochs",
            n_epochs=len(epochs),
            picks=picks,
            l_freq=l_freq,
            h_freq=h_freq,
            resample=resample,
        )
    ]
    return _to_braindata(epochs, obs, modality, prov)


def read_eeg(
    source: Any,
    event_id: EventSpec = None,
    tmin: float | None = None,
    tmax: float | None = None,
    baseline: tuple[float | None, float | None] | None = None,
    l_freq: float | None = None,
    h_freq: float | None = None,
    picks: Any = None,
    resample: float | None = None,
    *,
    events: Any = None,
    fixed_length: float | None = None,
    runs: Sequence[Any] | None = None,
    subject: Any = None,
    session: Any = None,
    modality: str | None = None,
    reject_by_annotation: bool = True,
    reader_kwargs: dict | None = None,
) -> BrainData:
    """Load EEG, MEG or iEEG recordings into epochs.

    Parameters
    ----------
    source : path-like, mne.io.Raw, mne.Epochs, or list of paths/Raw
        One recording, or several runs of one subject (a list), in any
        format :func:`mne.io.read_raw` reads. Epochs are converted as they are.
    event_id : list or dict, optional
        Which events to epoch and how to name the conditions. A list of
        annotation descriptions or trigger codes (the condition is the item
        as a string, e.g. ``"1"``), or a ``{condition: description or code}`` dict, e.g.
        ``{"left": "T1", "right": "T2"}`` or ``{"auditory": 1}``. Default:
        every annotation (except BAD/EDGE ones), or else every trigger code
        on the stimulus channel.
    tmin, tmax : float
        Epoch window in seconds around each event (default -0.2, 0.5; for
        Epochs input, the epochs' own window).
    baseline : tuple, optional
        Baseline interval passed to :class:`mne.Epochs` (default: none).
    l_freq, h_freq : float, optional
        Band-pass edges applied to the continuous data of each run.
    picks : str or list, optional
        Channels (names or types) to keep. Default: all but stimulus and bad
        channels.
    resample : float, optional
        New sampling frequency of the epochs.
    events : array (n, 3), path, or list of those (one per run), optional
        Explicit MNE events (or ``-eve.fif`` files) instead of annotations
        or the stimulus channel.
    fixed_length : float, optional
        Cut each recording into consecutive windows of this many seconds
        (condition ``"window"``) instead of epoching around events.
    runs : sequence, optional
        Run label of each source (default 1, 2, ...).
    subject, session : optional
        Written to ``subject`` / ``session`` columns of ``obs``.
    modality : {"eeg", "meg", "ieeg"}, optional
        Override the modality inferred from the channel types.
    reject_by_annotation : bool
        Drop epochs overlapping BAD annotations.
    reader_kwargs : dict, optional
        Extra arguments of the MNE reader (e.g. ``{"data_format": "int16"}``).

    Returns
    -------
    BrainData
        ``data`` of shape (n_epochs, n_channels, n_times); ``obs`` has
        ``condition``, ``run``, ``onset`` (s from the start of the run),
        ``sample``, ``event`` (original description or code); ``info`` is
        the MNE measurement info. For Epochs input, ``obs`` starts from the
        epochs' metadata, ``run`` defaults to 1 and ``onset`` counts from the
        start of the acquisition.

    Notes
    -----
    Epoching follows :class:`mne.Epochs` defaults otherwise: in particular,
    SSP projectors stored in the file (e.g. the average EEG reference of
    Neuromag FIF files) are applied. Filtering covers every kept channel
    except stimulus channels (MNE's default filters only data channels).

    Examples
    --------
    >>> bd = read_eeg(["S001R04.edf", "S001R08.edf"], {"left": "T1", "right": "T2"},
    ...               tmin=0.0, tmax=4.0)  # doctest: +SKIP
    """
    import mne

    spec = _normalise_spec(event_id)
    check_band(l_freq, h_freq)
    if resample is not None:
        check_positive(resample, "resample")
    if modality is not None:
        check_choice(modality, ("eeg", "meg", "ieeg"), "modality for EEG/MEG data")
    extra_obs = {k: v for k, v in (("subject", subject), ("session", session)) if v is not None}

    if isinstance(source, mne.BaseEpochs):
        if spec is not None or events is not None or fixed_length is not None:
            raise ShapeError("event_id/events/fixed_length do not apply to mne.Epochs input.")
        if tmin is not None and tmax is not None:
            check_window(tmin, tmax)
        return _from_epochs(
            source,
            tmin=tmin,
            tmax=tmax,
            l_freq=l_freq,
            h_freq=h_freq,
            picks=picks,
            resample=resample,
            modality=modality,
            extra_obs=extra_obs,
        )

    sources = as_list(source)
    if not sources:
        raise EmptySelectionError("No source given.")
    if runs is None:
        runs = list(range(1, len(sources) + 1))
    elif len(runs) != len(sources):
        raise LabelError(f"{len(runs)} run labels for {len(sources)} sources.")
    if fixed_length is not None:
        fixed_length = check_positive(fixed_length, "fixed_length")
        if spec is not None or events is not None:
            raise ShapeError("fixed_length cuts windows; do not combine it with event_id or events.")
        if tmin is not None or tmax is not None:
            raise ShapeError("fixed_length sets the window itself (0 to fixed_length); do not pass tmin/tmax.")
    tmin = -0.2 if tmin is None else float(tmin)
    tmax = 0.5 if tmax is None else float(tmax)
    check_window(tmin, tmax)
    reader_kwargs = dict(reader_kwargs or {})

    # Check every data path before reading anything (event files too), then
    # read all runs so that unknown event names are reported before any
    # filtering/epoching work.
    paths = [s for s in sources if isinstance(s, (str, os.PathLike))]
    check_files(paths, "EEG/MEG file")
    explicit = _explicit_events(events, len(sources))
    raws, labels, described = [], [], []
    for src, run in zip(sources, runs):
        if isinstance(src, mne.io.BaseRaw):
            raw = src.copy().load_data(verbose="error")
            label = f"run {run} (Raw object)"
            described.append({"file": "mne.io.Raw", "filenames": [str(f) for f in src.filenames if f]})
        elif isinstance(src, (str, os.PathLike)):
            raw = read_raw(src, **reader_kwargs)
            label = f"run {run} ({Path(src).name})"
            described.append(describe_source(src))
        else:
            raise ShapeError(f"Unsupported EEG source of type {type(src).__name__}.")
        raws.append(raw)
        labels.append(label)

    for raw, label in zip(raws, labels):
        _check_nyquist(raw.info["sfreq"], l_freq, h_freq, label)

    tables = []
    if fixed_length is not None:
        for raw in raws:
            ev = mne.make_fixed_length_events(raw, id=1, duration=fixed_length)
            tables.append(pd.DataFrame({"sample": ev[:, 0], "condition": "window", "event": "window"}))
        tmin, tmax = 0.0, fixed_length - 1.0 / raws[0].info["sfreq"]
    else:
        found_any: set[str] = set()
        available: list[str] = []
        for raw, ex in zip(raws, explicit):
            table, found, avail = _collect_events(raw, spec, ex)
            tables.append(table)
            found_any |= found
            available += [a for a in avail if a not in available]
        if spec is not None:
            missing = [name for name, _ in spec if name not in found_any]
            if missing:
                wanted = {n: v for n, v in spec}
                raise UnknownNameError(
                    "Events not found in any run: "
                    + ", ".join(f"{m!r} ({wanted[m]!r})" for m in missing)
                    + f". Available annotations/codes: {', '.join(map(repr, available)) or 'none'}."
                )
        if all(len(t) == 0 for t in tables):
            raise EmptySelectionError(
                "No events found (no annotations and no stimulus-channel triggers). "
                "Pass events=..., or fixed_length=seconds to cut the data into windows."
            )

    parts, prov_runs = [], []
    for raw, table, label, run, desc in zip(raws, tables, labels, runs, described):
        if len(table) == 0:
            warnings.warn(f"{label}: none of the requested events occur; run skipped.", stacklevel=2)
            continue
        epochs, obs, n_dropped = _epoch_run(
            raw,
            table,
            label,
            tmin=tmin,
            tmax=tmax,
            baseline=baseline,
            l_freq=l_freq,
            h_freq=h_freq,
            picks=picks,
            resample=resample,
            reject_by_annotation=reject_by_annotation,
        )
        obs.insert(1, "run", run)
        for key, value in extra_obs.items():
            obs[key] = value
        prov_runs.append({**desc, "run": run, "n_epochs": len(epochs), "n_dropped": n_dropped})
        parts.append(_to_braindata(epochs, obs, modality, []))
    _check_runs_compatible(parts, [p["run"] for p in prov_runs])
    params = dict(
        event_id=dict(spec) if spec else None,
        tmin=tmin,
        tmax=tmax,
        baseline=baseline,
        l_freq=l_freq,
        h_freq=h_freq,
        picks=picks,
        resample=resample,
        fixed_length=fixed_length,
        reader_kwargs=reader_kwargs,
        mne_version=mne.__version__,
    )
    record = provenance_record("read_eeg", sources=prov_runs, **params)
    out = parts[0] if len(parts) == 1 else concatenate(parts)
    out.provenance = [record]
    return out


def _explicit_events(events: Any, n_sources: int) -> list[np.ndarray | None]:
    import mne

    if events is None:
        return [None] * n_sources
    # A list is one entry per run; with a single run, a list holding one array
    # or path is that run's entry, not a nested (1, n, 3) array.
    one_run_list = (
        isinstance(events, list) and len(events) == 1 and isinstance(events[0], (np.ndarray, str, os.PathLike))
    )
    per_run = events if (isinstance(events, list) and (n_sources > 1 or one_run_list)) else [events] * n_sources
    if len(per_run) != n_sources:
        raise LabelError(f"{len(per_run)} event arrays for {n_sources} sources.")
    out = []
    for ev in per_run:
        if isinstance(ev, (str, os.PathLike)):
            (path,) = check_files([ev], "event file")
            try:
                ev = mne.read_events(path, verbose="error")
            except Exception as exc:
                raise CorruptFileError(f"Cannot read events from {path.name}: {exc}") from exc
        ev = check_array(ev, "events", ndim=2, dtype=None, min_rows=1).astype(int)
        if ev.shape[1] != 3:
            raise ShapeError(f"events must have 3 columns (sample, previous, code), got {ev.shape[1]}.")
        out.append(ev)
    return out


def _check_runs_compatible(parts: list[BrainData], runs: list[Any]) -> None:
    first = parts[0]
    for part, run in zip(parts[1:], runs[1:]):
        if part.feature_names != first.feature_names:
            raise LabelError(f"Run {run} has other channels than run {runs[0]}.")
        if not np.isclose(part.sfreq, first.sfreq):
            raise ShapeError(f"Run {run} is sampled at {part.sfreq} Hz, run {runs[0]} at {first.sfreq} Hz.")
        if part.n_times != first.n_times:
            raise ShapeError(f"Run {run} epochs have {part.n_times} samples, run {runs[0]} {first.n_times}.")
