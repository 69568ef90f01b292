"""The :class:`BrainData` container for epoched brain responses.

One container serves every modality: EEG/MEG/iEEG epochs (channels x
times), fMRI volumes or GLM estimates (voxels or regions), and binned spike
counts (units x time bins). Analysis modules take a ``BrainData`` or plain
arrays and never need to know which loader produced the data.
"""

from __future__ import annotations

import copy as _copy
import datetime as _dt
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neuroenc._h5 import (
    COMPRESSIONS,
    atomic_h5,
    open_h5_read,
    prepare_key,
    read_frame,
    read_rows,
    require_group,
    write_array,
    write_frame,
)
from neuroenc._version import __version__
from neuroenc.errors import (
    EmptySelectionError,
    LabelError,
    ModalityError,
    ShapeError,
    StoreError,
    UnknownNameError,
)
from neuroenc.validation import check_array, check_choice, check_length, check_names

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import nibabel

__all__ = ["BrainData", "concatenate", "MODALITIES"]

MODALITIES = ("eeg", "meg", "ieeg", "fmri", "spikes")
_MNE_MODALITIES = ("eeg", "meg", "ieeg")
_STORE_KIND = "BrainData"
_FORMAT_VERSION = 1


def provenance_record(step: str, **params: Any) -> dict:
    """A JSON-serialisable record of one processing step."""
    record = {
        "step": step,
        "neuroenc_version": __version__,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "params": params,
    }
    # Round-trip through JSON now so that an unserialisable parameter is
    # stringified here rather than failing later in to_hdf5.
    return json.loads(json.dumps(record, default=str))


class BrainData:
    """Epoched brain responses with per-observation metadata.

    Parameters
    ----------
    data : array-like, shape (n_obs, n_features) or (n_obs, n_features, n_times)
        Responses. Features are channels, voxels, regions or units.
    obs : pandas.DataFrame or sequence
        One row per observation with at least a ``condition`` column; a
        sequence is taken as the condition labels. Common optional columns:
        ``run``, ``session``, ``subject``, ``onset``.
    modality : {"eeg", "meg", "ieeg", "fmri", "spikes"}
        Kind of recording.
    features : pandas.DataFrame or sequence of str, optional
        One row per feature with a unique ``name`` column (channel names,
        voxel labels or unit ids) plus any extra columns (``ch_type``,
        voxel indices ``i, j, k``...). A sequence is taken as the names.
    times : array-like, shape (n_times,), optional
        Time of each sample in seconds; required for 3-D data unless
        ``sfreq`` is given (then times start at 0).
    sfreq : float, optional
        Sampling frequency in Hz; inferred from ``times`` if omitted.
    affine : array-like, shape (4, 4), optional
        Voxel-to-world transform (fMRI).
    mask : array-like of bool, shape (nx, ny, nz), optional
        Brain mask whose True voxels, in C order, are the features (fMRI).
    info : mne.Info, optional
        Measurement info for EEG/MEG/iEEG; its channels must be the features.
    provenance : list of dict, optional
        Processing history (source files, parameters).

    Attributes
    ----------
    data, obs, features, times, sfreq, modality, affine, mask, info, provenance
        As given (validated); ``obs`` and ``features`` get a fresh RangeIndex.
    """

    def __init__(
        self,
        data: Any,
        obs: pd.DataFrame | Sequence[Any],
        modality: str,
        *,
        features: pd.DataFrame | Sequence[str] | None = None,
        times: Any = None,
        sfreq: float | None = None,
        affine: Any = None,
        mask: Any = None,
        info: mne.Info | None = None,
        provenance: list[dict] | None = None,
    ) -> None:
        self.modality = check_choice(modality, MODALITIES, "modality")
        data = check_array(data, "data", ndim=(2, 3), dtype="numeric")
        n_obs, n_features = data.shape[:2]
        self.data = data

        if isinstance(obs, pd.DataFrame):
            obs = obs.reset_index(drop=True)
        else:
            obs = pd.DataFrame({"condition": list(obs) if not isinstance(obs, np.ndarray) else obs})
        if "condition" not in obs.columns:
            raise LabelError(f"obs needs a 'condition' column; it has: {', '.join(map(str, obs.columns)) or 'none'}.")
        check_length(n_obs, obs, "obs")
        self.obs = obs

        if features is None:
            features = pd.DataFrame({"name": [f"f{i}" for i in range(n_features)]})
        elif not isinstance(features, pd.DataFrame):
            features = pd.DataFrame({"name": [str(f) for f in features]})
        features = features.reset_index(drop=True)
        if "name" not in features.columns:
            raise LabelError("features needs a 'name' column.")
        check_length(n_features, features, "features", of="features in data")
        dup = features["name"][features["name"].duplicated()]
        if len(dup):
            raise LabelError(f"Feature names must be unique; {dup.iloc[0]!r} is repeated.")
        self.features = features

        self.times, self.sfreq = self._check_times(times, sfreq, data)
        self.affine, self.mask = self._check_space(affine, mask, n_features)
        if info is not None:
            if self.modality not in _MNE_MODALITIES:
                raise ModalityError(f"info is only meaningful for EEG/MEG/iEEG, not {self.modality}.")
            if list(info["ch_names"]) != list(features["name"]):
                raise LabelError("info['ch_names'] must equal the feature names, in order.")
        self.info = info
        self.provenance = list(provenance or [])

    # ------------------------------------------------------------------
    # validation helpers
    @staticmethod
    def _check_times(times: Any, sfreq: float | None, data: np.ndarray):
        if sfreq is not None:
            sfreq = float(sfreq)
            if not np.isfinite(sfreq) or sfreq <= 0:
                raise ShapeError(f"sfreq must be positive and finite, got {sfreq}.")
        if data.ndim == 2:
            if times is not None:
                raise ShapeError("times given but data has no time axis (2-D data).")
            return None, sfreq
        n_times = data.shape[2]
        if times is None:
            if sfreq is None:
                raise ShapeError("3-D data needs times or sfreq.")
            times = np.arange(n_times) / sfreq
        times = check_array(times, "times", ndim=1, dtype=np.float64)
        check_length(n_times, times, "times", of="time samples in data")
        if n_times > 1 and np.any(np.diff(times) <= 0):
            raise ShapeError("times must be strictly increasing.")
        if n_times > 1:
            steps = np.diff(times)
            if np.allclose(steps, steps[0], rtol=1e-6, atol=0):
                if sfreq is None:
                    sfreq = float(1.0 / steps[0])
                elif not np.isclose(sfreq * steps[0], 1.0, rtol=1e-5, atol=0):
                    # to_mne and resampling trust sfreq; it must describe the given times.
                    raise ShapeError(f"sfreq {sfreq:g} Hz does not match the spacing of times ({1.0 / steps[0]:g} Hz).")
        return times, sfreq

    def _check_space(self, affine: Any, mask: Any, n_features: int):
        if affine is not None:
            affine = check_array(affine, "affine", dtype=np.float64)
            if affine.shape != (4, 4):
                raise ShapeError(f"affine must be 4x4, got shape {affine.shape}.")
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if mask.ndim != 3:
                raise ShapeError(f"mask must be a 3-D volume, got shape {mask.shape}.")
            if int(mask.sum()) != n_features:
                raise LabelError(f"mask has {int(mask.sum())} voxels but data has {n_features} features.")
            if affine is None:
                raise ShapeError("A mask needs its affine.")
        return affine, mask

    # ------------------------------------------------------------------
    # basic properties
    @property
    def n_obs(self) -> int:
        """Number of observations (trials, volumes, beta maps)."""
        return self.data.shape[0]

    @property
    def n_features(self) -> int:
        """Number of features (channels, voxels, regions, units)."""
        return self.data.shape[1]

    @property
    def n_times(self) -> int | None:
        """Number of time samples, or None for data without a time axis."""
        return self.data.shape[2] if self.data.ndim == 3 else None

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`data`."""
        return self.data.shape

    @property
    def feature_names(self) -> list[str]:
        """Feature names, in order."""
        return [str(n) for n in self.features["name"]]

    @property
    def conditions(self) -> np.ndarray:
        """Condition label of each observation."""
        return self.obs["condition"].to_numpy()

    def __len__(self) -> int:
        return self.n_obs

    def __repr__(self) -> str:
        dims = f"{self.n_obs} obs x {self.n_features} features"
        if self.n_times is not None:
            dims += f" x {self.n_times} times"
        counts = self.obs["condition"].value_counts(sort=False)
        shown = ", ".join(f"{k}: {v}" for k, v in list(counts.items())[:6])
        more = ", ..." if len(counts) > 6 else ""
        extra = f", sfreq={self.sfreq:g} Hz" if self.sfreq else ""
        return f"<BrainData | {self.modality}, {dims}{extra}, conditions {{{shown}{more}}}>"

    def copy(self) -> BrainData:
        """A deep copy."""
        return _copy.deepcopy(self)

    def _replace(self, step: str | None = None, params: dict | None = None, **changes: Any) -> BrainData:
        """A new BrainData with some attributes replaced and a provenance step added."""
        kwargs = dict(
            data=self.data,
            obs=self.obs,
            modality=self.modality,
            features=self.features,
            times=self.times,
            sfreq=self.sfreq,
            affine=self.affine,
            mask=self.mask,
            info=self.info,
            provenance=list(self.provenance),
        )
        kwargs.update(changes)
        if step is not None:
            kwargs["provenance"] = kwargs["provenance"] + [provenance_record(step, **(params or {}))]
        return BrainData(kwargs.pop("data"), kwargs.pop("obs"), kwargs.pop("modality"), **kwargs)

    # ------------------------------------------------------------------
    # selection
    def __getitem__(self, key: Any) -> BrainData:
        """Observations by integer index, slice, integer array or boolean mask."""
        if isinstance(key, (int, np.integer)):
            key = [int(key)]
        idx = np.arange(self.n_obs)[key]
        if idx.size == 0:
            raise EmptySelectionError("The selection matched no observation.")
        return self._take(idx)

    def _take(self, idx: np.ndarray, step: str | None = None, params: dict | None = None) -> BrainData:
        return self._replace(step, params, data=self.data[idx], obs=self.obs.iloc[idx].reset_index(drop=True))

    def select(self, query: str | None = None, **criteria: Any) -> BrainData:
        """Observations whose metadata match.

        Parameters
        ----------
        query : str, optional
            A :meth:`pandas.DataFrame.query` expression on :attr:`obs`,
            e.g. ``"run > 2 and condition != 'rest'"``.
        **criteria
            ``column=value`` or ``column=[values]`` equality filters.

        Returns
        -------
        BrainData
            The matching observations, in their original order.

        Examples
        --------
        >>> left = bd.select(condition="left", run=[1, 2])  # doctest: +SKIP
        """
        keep = np.ones(self.n_obs, dtype=bool)
        check_names(criteria, self.obs.columns, "obs column")
        for col, value in criteria.items():
            values = [value] if np.isscalar(value) or value is None else list(value)
            keep &= self.obs[col].isin(values).to_numpy()
        if query is not None:
            try:
                matched = self.obs.query(query)
            except Exception as exc:  # pandas raises many types for a bad expression
                raise UnknownNameError(
                    f"Cannot evaluate query {query!r} on obs columns {list(self.obs.columns)}: {exc}"
                ) from exc
            qmask = np.zeros(self.n_obs, dtype=bool)
            qmask[self.obs.index.get_indexer(matched.index)] = True
            keep &= qmask
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            raise EmptySelectionError(f"No observation matches query={query!r}, criteria={criteria!r}.")
        return self._take(idx, "select", {"query": query, "criteria": criteria})

    def pick_features(self, picks: Sequence[str] | Sequence[int] | np.ndarray) -> BrainData:
        """Keep some features, by name, by position (in the given order) or by a boolean mask."""
        picks = list(picks)
        if not picks:
            raise EmptySelectionError("No feature picked.")
        if all(isinstance(p, (bool, np.bool_)) for p in picks):
            check_length(self.n_features, picks, "boolean feature mask", of="features")
            picks = [int(i) for i in np.flatnonzero(picks)]
            if not picks:
                raise EmptySelectionError("The boolean feature mask selects no feature.")
        if all(isinstance(p, (int, np.integer)) for p in picks):
            idx = np.asarray(picks, dtype=int)
            if idx.min() < -self.n_features or idx.max() >= self.n_features:
                raise ShapeError(f"Feature index out of range for {self.n_features} features.")
            idx = np.arange(self.n_features)[idx]
        else:
            check_names(picks, self.feature_names, "feature")
            pos = {n: i for i, n in enumerate(self.feature_names)}
            idx = np.array([pos[str(p)] for p in picks])
        changes: dict[str, Any] = {
            "data": self.data[:, idx],
            "features": self.features.iloc[idx].reset_index(drop=True),
        }
        if self.mask is not None:
            if np.any(np.diff(idx) <= 0):
                raise ShapeError("Voxel features of masked fMRI data must be picked in mask order.")
            flat = np.flatnonzero(self.mask.ravel())[idx]
            mask = np.zeros(self.mask.size, dtype=bool)
            mask[flat] = True
            changes["mask"] = mask.reshape(self.mask.shape)
        if self.info is not None:
            import mne

            changes["info"] = mne.pick_info(self.info, idx)
        return self._replace("pick_features", {"n_picked": len(idx)}, **changes)

    def crop(self, tmin: float | None = None, tmax: float | None = None) -> BrainData:
        """Keep the time samples with ``tmin <= t <= tmax``."""
        if self.times is None:
            raise ModalityError("crop needs data with a time axis.")
        lo = -np.inf if tmin is None else tmin
        hi = np.inf if tmax is None else tmax
        keep = (self.times >= lo - 1e-12) & (self.times <= hi + 1e-12)
        if not keep.any():
            raise EmptySelectionError(
                f"No sample in [{tmin}, {tmax}]; times span {self.times[0]:g} to {self.times[-1]:g} s."
            )
        return self._replace("crop", {"tmin": tmin, "tmax": tmax}, data=self.data[:, :, keep], times=self.times[keep])

    # ------------------------------------------------------------------
    # averaging
    def average(self, by: str | Sequence[str] = "condition", within: str | Sequence[str] | None = None) -> BrainData:
        """Average observations that share metadata values.

        Parameters
        ----------
        by : str or list of str
            Columns that define the groups (default: condition).
        within : str or list of str, optional
            Extra grouping columns, e.g. ``"run"`` to average each condition
            separately in every run (as needed by cross-validated RDMs).

        Returns
        -------
        BrainData
            One observation per group, ordered by the sorted group values,
            with the grouping columns and ``n_averaged`` in ``obs``.

        Notes
        -----
        Every observation weighs the same: averaging data that are already
        averages does not weight them by their ``n_averaged``.
        """
        by = [by] if isinstance(by, str) else list(by)
        within = [] if within is None else ([within] if isinstance(within, str) else list(within))
        keys = list(dict.fromkeys(by + within))
        check_names(keys, self.obs.columns, "obs column")
        if "condition" not in keys:
            raise LabelError("average needs 'condition' among the grouping columns.")
        grouped = self.obs.groupby(keys, sort=True, observed=True, dropna=False)
        codes = grouped.ngroup().to_numpy()
        n_groups = int(codes.max()) + 1
        counts = np.bincount(codes, minlength=n_groups)
        indicator = np.zeros((n_groups, self.n_obs))
        indicator[codes, np.arange(self.n_obs)] = 1.0 / counts[codes]
        flat = self.data.reshape(self.n_obs, -1)
        means = (indicator @ flat).astype(self.data.dtype, copy=False)
        first = pd.Series(np.arange(self.n_obs)).groupby(codes).first().to_numpy()
        obs = self.obs.iloc[first][keys].reset_index(drop=True)
        obs["n_averaged"] = counts
        return self._replace(
            "average",
            {"by": by, "within": within},
            data=means.reshape((n_groups,) + self.data.shape[1:]),
            obs=obs,
        )

    @staticmethod
    def concatenate(
        items: Sequence[BrainData], *, keys: Sequence[Any] | None = None, key_name: str | None = None
    ) -> BrainData:
        """Stack observations of several BrainData; see :func:`neuroenc.concatenate`."""
        return concatenate(items, keys=keys, key_name=key_name)

    # ------------------------------------------------------------------
    # conversion
    def to_mne(self) -> mne.EpochsArray:
        """Convert EEG/MEG/iEEG data with a time axis to :class:`mne.EpochsArray`.

        ``obs`` becomes the epochs' metadata; event codes number the sorted
        conditions from 1.
        """
        import mne

        if self.modality not in _MNE_MODALITIES:
            raise ModalityError(f"to_mne works for EEG/MEG/iEEG data, not {self.modality}.")
        if self.times is None or self.sfreq is None:
            raise ModalityError("to_mne needs data with a time axis and a sampling frequency.")
        info = self.info
        if info is None:
            if "ch_type" in self.features:
                ch_types = [str(t) for t in self.features["ch_type"]]
            else:
                ch_types = {"eeg": "eeg", "meg": "mag", "ieeg": "seeg"}[self.modality]
            info = mne.create_info(self.feature_names, self.sfreq, ch_types)
        conds = _sorted_labels(pd.unique(self.obs["condition"]))
        event_id = {str(c): i + 1 for i, c in enumerate(conds)}
        codes = self.obs["condition"].map(lambda c: event_id[str(c)]).to_numpy()
        samples = self.obs["sample"].to_numpy() if "sample" in self.obs else None
        if samples is None or len(np.unique(samples)) != self.n_obs:
            samples = np.arange(self.n_obs) * (self.n_times + 1)
        events = np.column_stack([samples, np.zeros(self.n_obs, int), codes]).astype(int)
        return mne.EpochsArray(
            self.data.astype(np.float64, copy=False),
            info,
            events=events,
            tmin=float(self.times[0]),
            event_id=event_id,
            metadata=self.obs.copy(),
            verbose="error",
        )

    def to_nifti(self, values: Any = None) -> nibabel.Nifti1Image:
        """Put feature values back into the brain volume (masked fMRI only).

        Parameters
        ----------
        values : array-like, shape (n_features,) or (n, n_features), optional
            Values per voxel; default: :attr:`data` (one volume per observation).

        Returns
        -------
        nibabel.Nifti1Image
            3-D image for one vector, 4-D image otherwise; voxels outside the
            mask are 0.
        """
        import nibabel

        if self.mask is None:
            raise ModalityError("to_nifti needs voxel features with a mask and affine.")
        values = self.data if values is None else check_array(values, "values", ndim=(1, 2))
        if values.ndim == 3:
            raise ShapeError("to_nifti takes (n_features,) or (n, n_features) values.")
        if values.shape[-1] != self.n_features:
            raise ShapeError(f"values have {values.shape[-1]} features, the mask has {self.n_features}.")
        if values.ndim == 1:
            vol = np.zeros(self.mask.shape, dtype=values.dtype)
            vol[self.mask] = values
        else:
            vol = np.zeros(self.mask.shape + (values.shape[0],), dtype=values.dtype)
            vol[self.mask] = values.T
        return nibabel.Nifti1Image(vol, self.affine)

    # ------------------------------------------------------------------
    # HDF5 store
    def to_hdf5(
        self, path: str | os.PathLike, key: str = "data", *, overwrite: bool = False, compression: str | None = "lzf"
    ) -> None:
        """Store in an HDF5 file under ``key``, atomically.

        The file is changed all at once: a crash or kill during the write
        leaves the previous file (or no file) in place, never a damaged one.
        Other entries of the file are kept.

        Parameters
        ----------
        path : path-like
            HDF5 file; created if missing.
        key : str
            Group name of the entry (may contain ``/`` for nesting).
        overwrite : bool
            Replace an existing entry with this key instead of raising.
        compression : {"lzf", "gzip", None}
            Filter of the data chunks: ``"lzf"`` is fast, ``"gzip"`` readable
            by any HDF5 tool (MATLAB, h5dump), None stores raw chunks.
        """
        check_choice(compression, COMPRESSIONS, "compression")
        info_bytes = _info_to_bytes(self.info) if self.info is not None else None
        with atomic_h5(path, replace=key if overwrite else None) as f:
            prepare_key(f, key, overwrite)
            g = f.create_group(key)
            g.attrs["neuroenc_type"] = _STORE_KIND
            g.attrs["format_version"] = _FORMAT_VERSION
            g.attrs["neuroenc_version"] = __version__
            g.attrs["modality"] = self.modality
            g.attrs["provenance"] = json.dumps(self.provenance)
            if self.sfreq is not None:
                g.attrs["sfreq"] = self.sfreq
            write_array(g, "data", self.data, compression)
            write_frame(g, "obs", self.obs)
            write_frame(g, "features", self.features)
            for name in ("times", "affine", "mask"):
                value = getattr(self, name)
                if value is not None:
                    g.create_dataset(name, data=value)
            if info_bytes is not None:
                g.create_dataset("info_fif", data=np.frombuffer(info_bytes, dtype=np.uint8))
                # FIF keeps positions in float32; these restore them exactly.
                g.create_dataset("info_locs", data=np.array([ch["loc"] for ch in self.info["chs"]], dtype=np.float64))
                dig = self.info["dig"] or []
                g.create_dataset("info_dig", data=np.array([d["r"] for d in dig], dtype=np.float64).reshape(-1, 3))

    @classmethod
    def from_hdf5(cls, path: Any, key: str = "data", *, obs_query: str | dict | None = None) -> BrainData:
        """Read an entry written by :meth:`to_hdf5`.

        Parameters
        ----------
        path : path-like or binary file object
            HDF5 file.
        key : str
            Entry to read.
        obs_query : str or dict, optional
            Read only the matching observations (a pandas query string or a
            ``{column: value(s)}`` dict); only the chunks holding them are
            read from disk.

        Returns
        -------
        BrainData
        """
        with open_h5_read(path) as f:
            g = require_group(f, key, _STORE_KIND)
            version = int(g.attrs.get("format_version", 0))
            if version > _FORMAT_VERSION:
                raise StoreError(
                    f"Entry {key!r} has format version {version}; this neuroenc reads up to "
                    f"{_FORMAT_VERSION}. Upgrade neuroenc."
                )
            obs = read_frame(g, "obs")
            rows = None
            provenance = json.loads(g.attrs["provenance"])
            if obs_query is not None:
                rows = _query_rows(obs, obs_query)
                provenance.append(
                    provenance_record("from_hdf5", key=key, obs_query=obs_query, n_obs=len(rows), of=len(obs))
                )
                obs = obs.iloc[rows].reset_index(drop=True)
            data = read_rows(g["data"], rows)
            features = read_frame(g, "features")
            extras = {name: g[name][()] for name in ("times", "affine", "mask") if name in g}
            info = None
            if "info_fif" in g:
                info = _info_from_bytes(g["info_fif"][()].tobytes())
                if "info_locs" in g:
                    for ch, loc in zip(info["chs"], g["info_locs"][()]):
                        ch["loc"] = loc.copy()
                if "info_dig" in g:
                    for d, r in zip(info["dig"] or [], g["info_dig"][()]):
                        d["r"] = r.copy()
            sfreq = float(g.attrs["sfreq"]) if "sfreq" in g.attrs else None
            return cls(
                data,
                obs,
                str(g.attrs["modality"]),
                features=features,
                sfreq=sfreq,
                info=info,
                provenance=provenance,
                **extras,
            )


def _sorted_labels(labels: Any) -> list:
    """Labels in natural order (numbers numerically), by text when types are mixed."""
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=str)


def _query_rows(obs: pd.DataFrame, query: str | dict) -> np.ndarray:
    if isinstance(query, dict):
        check_names(query, obs.columns, "obs column")
        keep = np.ones(len(obs), dtype=bool)
        for col, value in query.items():
            values = [value] if np.isscalar(value) or value is None else list(value)
            keep &= obs[col].isin(values).to_numpy()
        rows = np.flatnonzero(keep)
    else:
        try:
            rows = obs.index.get_indexer(obs.query(query).index)
        except Exception as exc:
            raise UnknownNameError(f"Cannot evaluate obs_query {query!r}: {exc}") from exc
    if rows.size == 0:
        raise EmptySelectionError(f"obs_query {query!r} matched no observation.")
    return rows


def _info_to_bytes(info: mne.Info) -> bytes:
    import tempfile

    import mne

    with tempfile.TemporaryDirectory() as tmp:
        fname = os.path.join(tmp, "info-info.fif")
        mne.io.write_info(fname, info)
        with open(fname, "rb") as fh:
            return fh.read()


def _info_from_bytes(raw: bytes) -> mne.Info:
    import tempfile

    import mne

    with tempfile.TemporaryDirectory() as tmp:
        fname = os.path.join(tmp, "info-info.fif")
        with open(fname, "wb") as fh:
            fh.write(raw)
        return mne.io.read_info(fname, verbose="error")


def concatenate(
    items: Sequence[BrainData], *, keys: Sequence[Any] | None = None, key_name: str | None = None
) -> BrainData:
    """Stack observations of several BrainData (runs, sessions, subjects).

    Parameters
    ----------
    items : sequence of BrainData
        Must share modality, features (names, in order), time axis and, for
        fMRI, the mask and affine.
    keys : sequence, optional
        One value per item written to a new ``key_name`` column of ``obs``
        (e.g. subject ids).
    key_name : str, optional
        Name of that column (required with ``keys``).

    Returns
    -------
    BrainData
        ``obs`` is the union of the items' columns (missing values as NA).
    """
    items = list(items)
    if not items:
        raise EmptySelectionError("Nothing to concatenate.")
    for i, item in enumerate(items):
        if not isinstance(item, BrainData):
            raise ShapeError(f"Item {i} is a {type(item).__name__}, not a BrainData.")
    first = items[0]
    for i, item in enumerate(items[1:], start=1):
        if item.modality != first.modality:
            raise ModalityError(f"Item {i} is {item.modality}, item 0 is {first.modality}.")
        if item.data.shape[1:] != first.data.shape[1:]:
            raise ShapeError(
                f"Item {i} has feature/time shape {item.data.shape[1:]}, item 0 has {first.data.shape[1:]}."
            )
        if item.feature_names != first.feature_names:
            raise LabelError(f"Item {i} has other feature names (or order) than item 0.")
        if (first.times is not None) and not np.allclose(item.times, first.times, atol=1e-9):
            raise ShapeError(f"Item {i} has other sample times than item 0.")
        if (item.sfreq is None) != (first.sfreq is None) or (
            first.sfreq is not None and not np.isclose(item.sfreq, first.sfreq)
        ):
            raise ShapeError(f"Item {i} has sfreq {item.sfreq}, item 0 has {first.sfreq}.")
        for name in ("mask", "affine"):
            a, b = getattr(first, name), getattr(item, name)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                raise ShapeError(f"Item {i} has another {name} than item 0.")
    obs_list = [item.obs for item in items]
    if keys is not None:
        if key_name is None:
            raise LabelError("keys need a key_name for the new obs column.")
        check_length(len(items), keys, "keys", of="items")
        obs_list = [o.assign(**{key_name: k}) for o, k in zip(obs_list, keys)]
    obs = pd.concat(obs_list, ignore_index=True)
    data = np.concatenate([item.data for item in items], axis=0)
    provenance = list(first.provenance)
    for item in items[1:]:
        provenance += [p for p in item.provenance if p not in provenance]
    provenance.append(
        provenance_record(
            "concatenate", n_items=len(items), key_name=key_name, keys=list(keys) if keys is not None else None
        )
    )
    return BrainData(
        data,
        obs,
        first.modality,
        features=first.features,
        times=first.times,
        sfreq=first.sfreq,
        affine=first.affine,
        mask=first.mask,
        info=first.info,
        provenance=provenance,
    )
