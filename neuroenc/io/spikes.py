"""Spike-train loaders: per-unit spike times, or NWB units + trials tables."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from neuroenc.braindata import BrainData, provenance_record
from neuroenc.errors import CorruptFileError, LabelError, ShapeError
from neuroenc.io._common import check_files, check_window, describe_source
from neuroenc.validation import check_array, check_choice, check_length, check_positive

__all__ = ["read_spikes", "read_nwb", "bin_spikes"]

_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
#: A spike closer than this (in seconds) below a bin edge counts as on the edge.
_EDGE_TOL = 1e-9


def bin_spikes(spike_times: np.ndarray, starts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Count the spikes of one unit in bins around each trial start.

    Parameters
    ----------
    spike_times : ndarray, shape (n_spikes,)
        Spike times of one unit (any order), in seconds.
    starts : ndarray, shape (n_trials,)
        Alignment time of each trial, in seconds.
    edges : ndarray, shape (n_bins + 1,)
        Bin edges relative to the alignment time; bins are ``[a, b)``.

    Returns
    -------
    ndarray, shape (n_trials, n_bins)
        Spike counts.
    """
    s = np.sort(spike_times)
    positions = np.searchsorted(s, starts[:, None] + edges[None, :], side="left")
    return np.diff(positions, axis=1)


def _as_units(spike_times: Any, units: Sequence[Any] | None) -> tuple[list[np.ndarray], list[str]]:
    if isinstance(spike_times, Mapping):
        ids = list(spike_times.keys())
        trains = list(spike_times.values())
    elif isinstance(spike_times, np.ndarray) and spike_times.ndim == 1 and spike_times.dtype != object:
        ids, trains = [0], [spike_times]
    else:
        trains = list(spike_times)
        ids = list(range(len(trains)))
    if units is not None:
        check_length(len(trains), units, "units", of="spike trains")
        ids = list(units)
    if not trains:
        raise ShapeError("No spike train given.")
    out = [
        check_array(t, f"spike times of unit {u!r}", ndim=1, dtype=np.float64, min_rows=0) for t, u in zip(trains, ids)
    ]
    return out, [str(u) for u in ids]


def read_spikes(
    spike_times: Any,
    trial_onsets: Any,
    labels: Any,
    tmin: float = 0.0,
    tmax: float | None = None,
    bin_size: float | None = None,
    *,
    units: Sequence[Any] | None = None,
    time_unit: str = "s",
    output: str = "counts",
    subject: Any = None,
    session: Any = None,
    source: Any = None,
) -> BrainData:
    """Bin spike trains into trials.

    Parameters
    ----------
    spike_times : sequence of arrays, dict, or array
        Spike times of each unit (``{unit_id: times}`` or a list), or a
        single unit's times.
    trial_onsets : array-like, shape (n_trials,)
        Alignment time of each trial (same unit as the spike times).
    labels : array-like or DataFrame
        Condition of each trial, or an ``obs`` table with a ``condition`` column.
    tmin, tmax : float
        Window around each onset, in seconds (``tmax`` is required).
    bin_size : float, optional
        Bin width in seconds; ``(tmax - tmin)`` must be a whole number of
        bins. None counts the whole window (2-D output). Bins are
        ``[a, b)``; a spike within 1 ns of an edge counts as on it, so that
        float rounding (e.g. 690000 us -> 0.69 s vs 69 x 0.01 s) cannot move
        it to the neighbouring bin.
    units : sequence, optional
        Unit ids (default: dict keys or 0, 1, ...).
    time_unit : {"s", "ms", "us"}
        Unit of ``spike_times`` and ``trial_onsets``.
    output : {"counts", "rates"}
        Spike counts per bin, or rates in spikes/s.
    subject, session : optional
        Written to ``obs`` columns.
    source : optional
        Description of where the spikes came from, for provenance.

    Returns
    -------
    BrainData
        ``modality="spikes"``; data (n_trials, n_units, n_bins) with bin
        centres as ``times``, or (n_trials, n_units) without ``bin_size``.
    """
    scale = _TIME_UNITS[check_choice(time_unit, _TIME_UNITS, "time_unit")]
    check_choice(output, ("counts", "rates"), "output")
    if tmax is None:
        raise ShapeError("tmax is required: the end of the window after each onset, in seconds.")
    check_window(tmin, tmax)
    trains, ids = _as_units(spike_times, units)
    onsets = check_array(trial_onsets, "trial_onsets", ndim=1, dtype=np.float64) * scale
    if isinstance(labels, pd.DataFrame):
        obs = labels.reset_index(drop=True).copy()
        if "condition" not in obs:
            raise LabelError("The labels table needs a 'condition' column.")
    else:
        obs = pd.DataFrame({"condition": list(np.asarray(labels, dtype=object))})
    check_length(len(onsets), obs, "labels", of="trial onsets")
    width = float(tmax) - float(tmin)
    if bin_size is None:
        edges = np.array([tmin, tmax], dtype=float)
    else:
        bin_size = check_positive(bin_size, "bin_size")
        n_bins = width / bin_size
        if abs(n_bins - round(n_bins)) > 1e-6 or round(n_bins) < 1:
            raise ShapeError(
                f"The window ({width:g} s) is not a whole number of {bin_size:g}-s bins; adjust tmin/tmax or bin_size."
            )
        edges = tmin + np.arange(int(round(n_bins)) + 1) * bin_size
    # Converted times (690000 us -> 0.69 s) and edges onset + tmin + k * bin_size
    # carry float rounding errors (a few ulp: ~1e-12 s for hour-long recordings),
    # far below this tolerance, itself far below any spike-time resolution.
    search_edges = edges - min(_EDGE_TOL, 1e-3 * (width if bin_size is None else bin_size))
    counts = np.stack([bin_spikes(t * scale, onsets, search_edges) for t in trains], axis=1).astype(np.float64)
    if output == "rates":
        counts /= width if bin_size is None else bin_size
    obs["onset"] = onsets
    for key, value in (("subject", subject), ("session", session)):
        if value is not None:
            obs[key] = value
    record = provenance_record(
        "read_spikes",
        source=source,
        n_units=len(trains),
        n_trials=len(onsets),
        tmin=tmin,
        tmax=tmax,
        bin_size=bin_size,
        time_unit=time_unit,
        output=output,
    )
    features = pd.DataFrame({"name": ids, "n_spikes": [len(t) for t in trains]})
    if bin_size is None:
        return BrainData(counts[:, :, 0], obs, "spikes", features=features, provenance=[record])
    centres = (edges[:-1] + edges[1:]) / 2
    return BrainData(counts, obs, "spikes", features=features, times=centres, sfreq=1.0 / bin_size, provenance=[record])


def read_nwb(
    path: str | os.PathLike,
    tmin: float = 0.0,
    tmax: float | None = None,
    bin_size: float | None = None,
    *,
    condition: str = "condition",
    align: str = "start_time",
    output: str = "counts",
    subject: Any = None,
    session: Any = None,
) -> BrainData:
    """Load the units and trials tables of an NWB file (needs the ``nwb`` extra).

    Parameters
    ----------
    path : path-like
        NWB file with a units table (spike times) and a trials table.
    tmin, tmax, bin_size, output
        As in :func:`read_spikes`, relative to each trial's ``align`` time.
    condition : str
        Trials-table column holding the condition labels.
    align : str
        Trials-table column with the alignment times (default start_time).
    subject, session : optional
        Written to ``obs``; default: the NWB subject id and session id.

    Returns
    -------
    BrainData
        As :func:`read_spikes`; every trials-table column is kept in ``obs``.
    """
    try:
        from pynwb import NWBHDF5IO
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("read_nwb needs pynwb: pip install 'neuroenc[nwb]'.") from exc
    (path,) = check_files([path], "NWB file")
    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as exc:
        raise CorruptFileError(f"Cannot read {path.name} as NWB: {exc}") from exc
    with io:
        if nwb.units is None or len(nwb.units) == 0:
            raise LabelError(f"{path.name} has no units table.")
        if nwb.trials is None or len(nwb.trials) == 0:
            raise LabelError(f"{path.name} has no trials table.")
        trials = nwb.trials.to_dataframe().reset_index(drop=True)
        for col in (condition, align):
            if col not in trials.columns:
                raise LabelError(f"Trials table of {path.name} has no column {col!r}; columns: {list(trials.columns)}.")
        ids = list(nwb.units.id[:])
        trains = {uid: np.asarray(nwb.units.get_unit_spike_times(i)) for i, uid in enumerate(ids)}
        subject = subject if subject is not None else (nwb.subject.subject_id if nwb.subject else None)
        session = session if session is not None else nwb.session_id
    if condition != "condition" and "condition" in trials.columns:
        trials = trials.rename(columns={"condition": "condition_nwb"})
    obs = trials.rename(columns={condition: "condition"})
    bd = read_spikes(
        trains,
        trials[align].to_numpy(),
        obs,
        tmin,
        tmax,
        bin_size,
        output=output,
        subject=subject,
        session=session,
        source=describe_source(path),
    )
    bd.provenance[0]["step"] = "read_nwb"
    return bd
