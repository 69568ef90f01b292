"""fMRI loader built on nibabel and nilearn (maskers and first-level GLM)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuroenc.braindata import BrainData, provenance_record
from neuroenc.errors import CorruptFileError, EmptySelectionError, LabelError, ShapeError
from neuroenc.io._common import check_files, describe_source
from neuroenc.validation import check_array, check_choice, check_positive

__all__ = ["read_fmri", "events_from_labels"]

_EVENT_COLUMNS = ("onset", "duration", "trial_type")


def _load_img(src: Any, what: str):
    import nibabel

    if isinstance(src, (str, os.PathLike)):
        (path,) = check_files([src], what)
        try:
            return nibabel.load(path), describe_source(path)
        except Exception as exc:
            raise CorruptFileError(f"Cannot read {path.name} as a NIfTI image: {exc}") from exc
    if hasattr(src, "shape") and hasattr(src, "affine"):
        return src, {"file": f"<{type(src).__name__}>"}
    raise ShapeError(f"{what} must be a path or a nibabel image, got {type(src).__name__}.")


def _read_events_table(ev: Any) -> pd.DataFrame:
    if isinstance(ev, (str, os.PathLike)):
        (path,) = check_files([ev], "events file")
        try:
            ev = pd.read_csv(path, sep=None, engine="python")
        except Exception as exc:
            raise CorruptFileError(f"Cannot read events table {path.name}: {exc}") from exc
    if not isinstance(ev, pd.DataFrame):
        raise ShapeError(f"events must be a DataFrame or a table file, got {type(ev).__name__}.")
    missing = [c for c in _EVENT_COLUMNS if c not in ev.columns]
    if missing:
        raise LabelError(
            f"events table lacks column(s) {missing}; it has {list(ev.columns)} (needed: onset, duration, trial_type)."
        )
    # min_rows=0: a run without events (rest only, as events_from_labels gives) is valid input;
    # betas mode skips such runs and volumes mode labels them all null_label.
    check_array(ev[["onset", "duration"]].to_numpy(dtype=float), "events onset/duration", min_rows=0)
    return ev.reset_index(drop=True)


def events_from_labels(labels: Sequence[Any], t_r: float, null_label: Any = "rest") -> pd.DataFrame:
    """Turn per-volume labels of one run into a block events table.

    Consecutive volumes with the same label form one block (onset = first
    volume x TR, duration = length x TR); ``null_label`` volumes are baseline.

    Parameters
    ----------
    labels : sequence
        Label of each volume of one run.
    t_r : float
        Repetition time in seconds.
    null_label : object
        Label of baseline volumes (not modelled).

    Returns
    -------
    pandas.DataFrame
        Columns onset, duration, trial_type.
    """
    labels = np.asarray(labels)
    rows = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] != null_label:
                rows.append((start * t_r, (i - start) * t_r, labels[start]))
            start = i
    # Explicit float times: without rows (an all-baseline run) pandas would make them object.
    return pd.DataFrame(rows, columns=list(_EVENT_COLUMNS)).astype({"onset": float, "duration": float})


def _volume_labels(events: pd.DataFrame, n_vols: int, t_r: float, hrf_shift: float, null_label: Any) -> np.ndarray:
    """Label each volume with the event whose (shifted) interval contains its onset."""
    times = np.arange(n_vols) * t_r
    labels = np.full(n_vols, null_label, dtype=object)
    for onset, duration, kind in events[list(_EVENT_COLUMNS)].itertuples(index=False):
        start = onset + hrf_shift
        labels[(times >= start - 1e-9) & (times < start + duration - 1e-9)] = kind
    return labels


def _read_table_file(value: Any, name: str) -> Any:
    """Read a regressor table file; other values are returned unchanged."""
    if not isinstance(value, (str, os.PathLike)):
        return value
    (path,) = check_files([value], f"{name} file")
    # Motion files (FSL .par, SPM rp_*.txt, OpenFMRI bold_moest.txt) are headerless and
    # separated by runs of blanks: pandas' sniffer would take their first row as a header
    # and turn the repeated blanks into empty columns, so read plain numbers first.
    try:
        return np.loadtxt(path, ndmin=2)
    except ValueError:
        pass
    try:
        return pd.read_csv(path, sep=None, engine="python")  # a table with a header (e.g. fMRIPrep TSV)
    except Exception as exc:
        raise CorruptFileError(f"Cannot read {name} file {path.name}: {exc}") from exc


def _split_per_run(value: Any, counts: list[int], name: str) -> list[Any]:
    """Split a per-volume table/array (or a per-run list) into one item per run."""
    if value is None:
        return [None] * len(counts)
    if (
        isinstance(value, (list, tuple))
        and len(value) == len(counts)
        and (isinstance(value[0], (str, os.PathLike)) or not np.isscalar(value[0]))
    ):
        # One item per run (paths are scalars for numpy, hence the explicit check); check
        # each run's length here, or nilearn's error would surface as a corrupt-data error.
        items = [_read_table_file(v, name) for v in value]
        for r, (item, n) in enumerate(zip(items, counts)):
            if len(item) != n:
                raise LabelError(f"{name} of run #{r + 1} has {len(item)} rows for {n} volumes.")
        return items
    value = _read_table_file(value, name)
    arr = value.to_numpy() if isinstance(value, pd.DataFrame) else np.asarray(value)
    if len(arr) != sum(counts):
        raise LabelError(f"{name} has {len(arr)} rows for {sum(counts)} volumes.")
    bounds = np.cumsum([0] + counts)
    return [arr[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def read_fmri(
    imgs: Any,
    labels: Sequence[Any] | None = None,
    events: Any = None,
    runs: Sequence[Any] | None = None,
    mask: Any = None,
    atlas: Any = None,
    t_r: float | None = None,
    mode: str = "volumes",
    confounds: Any = None,
    standardize: bool = False,
    hrf_shift: float = 0.0,
    *,
    null_label: Any = "rest",
    detrend: bool = False,
    high_pass: float | None = None,
    smoothing_fwhm: float | None = None,
    atlas_labels: Sequence[str] | None = None,
    hrf_model: str = "glover",
    drift_model: str | None = "cosine",
    glm_high_pass: float = 0.01,
    subject: Any = None,
    session: Any = None,
) -> BrainData:
    """Load fMRI data as volumes or as per-run GLM estimates.

    Parameters
    ----------
    imgs : path, nibabel image, or list of those
        A 4-D image (all runs, with ``runs`` per volume) or one 4-D image per run.
    labels : sequence, optional
        Condition label of every volume (all runs, in order).
    events : DataFrame, path, or list of those (one per run), optional
        Events table(s) with ``onset``, ``duration``, ``trial_type`` (seconds
        from the start of each run); a single table may have a ``run`` column.
        Give either ``labels`` or ``events``.
    runs : sequence, optional
        Run id of every volume (single image) or of every image (list).
    mask : path or image, optional
        Brain mask; features are its voxels. Default: computed from the data.
    atlas : path or image, optional
        Labels image; features are its regions (mean signal per region).
    t_r : float, optional
        Repetition time in seconds; default: the 4th zoom of the image header.
    mode : {"volumes", "betas"}
        ``"volumes"``: one observation per volume. ``"betas"``: a first-level
        GLM per run (:class:`nilearn.glm.first_level.FirstLevelModel`) and one
        observation per condition and run (the effect-size map).
    confounds : array, DataFrame, path or list (one per run), optional
        Confound regressors (e.g. motion parameters), one row per volume.
    standardize : bool
        z-score each feature within each run (volumes mode).
    hrf_shift : float
        Volumes mode: shift labels by this many seconds to account for the
        haemodynamic delay (leading volumes get ``null_label``).
    null_label : object
        Label of baseline volumes; not modelled in betas mode.
    detrend, high_pass, smoothing_fwhm
        Signal cleaning passed to the nilearn masker (volumes mode).
    atlas_labels : sequence of str, optional
        Region names for ``atlas`` (excluding background).
    hrf_model, drift_model, glm_high_pass
        Passed to ``FirstLevelModel`` (betas mode).
    subject, session : optional
        Written to ``obs`` columns.

    Returns
    -------
    BrainData
        ``data`` of shape (n_obs, n_features); ``obs`` has ``condition`` and
        ``run`` (plus ``onset``, ``volume`` in volumes mode); voxel features
        carry ``i, j, k`` indices, and the container keeps ``mask`` and
        ``affine``.
    """
    import nibabel
    import nilearn
    from nilearn.image import index_img

    check_choice(mode, ("volumes", "betas"), "mode")
    if labels is None and events is None and mode == "betas":
        raise LabelError("mode='betas' needs labels or events to build the GLM design.")
    if labels is not None and events is not None:
        raise LabelError("Give labels or events, not both.")
    if mask is not None and atlas is not None:
        raise ShapeError("Give mask or atlas, not both.")
    if mode == "betas" and hrf_shift:
        raise ShapeError("hrf_shift applies to mode='volumes'; the GLM models the HRF itself.")

    img_list = imgs if isinstance(imgs, (list, tuple)) else [imgs]
    if not img_list:
        raise EmptySelectionError("No image given.")
    loaded = [_load_img(src, "fMRI image") for src in img_list]
    images = [img for img, _ in loaded]
    sources = [desc for _, desc in loaded]
    for img, desc in zip(images, sources):
        if len(img.shape) != 4:
            raise ShapeError(f"{desc['file']} has shape {img.shape}; expected a 4-D (x, y, z, time) image.")
    shape3d = images[0].shape[:3]
    for img, desc in zip(images[1:], sources[1:]):
        if img.shape[:3] != shape3d:
            raise ShapeError(f"{desc['file']} has volume shape {img.shape[:3]}, the first image {shape3d}.")
    if t_r is None:
        t_r = float(images[0].header.get_zooms()[3]) if len(images[0].header.get_zooms()) > 3 else 0.0
        if not t_r > 0:
            raise ShapeError("The image header has no repetition time; pass t_r.")
    t_r = check_positive(t_r, "t_r")

    # Split into runs: one (image, volume indices) per run.
    if len(images) > 1:
        run_ids = list(runs) if runs is not None else list(range(1, len(images) + 1))
        if len(run_ids) != len(images):
            raise LabelError(f"{len(run_ids)} run ids for {len(images)} images.")
        run_imgs = images
    else:
        n_total = images[0].shape[3]
        if runs is None:
            run_per_vol = np.ones(n_total, dtype=int)
        else:
            run_per_vol = np.asarray(runs)
            if len(run_per_vol) != n_total:
                raise LabelError(f"runs has {len(run_per_vol)} entries for {n_total} volumes.")
        run_ids = list(pd.unique(run_per_vol))
        if any(np.any(np.diff(np.flatnonzero(run_per_vol == r)) != 1) for r in run_ids):
            raise LabelError("Volumes of each run must be contiguous in the image.")
        # nibabel.load only reads the header; slicing reads the data, so a truncated or
        # damaged file fails here and must be reported as such.
        try:
            run_imgs = [index_img(images[0], np.flatnonzero(run_per_vol == r)) for r in run_ids]
        except Exception as exc:
            raise CorruptFileError(f"Cannot read the data of {sources[0]['file']}: {exc}") from exc
    counts = [img.shape[3] for img in run_imgs]

    vol_labels: list[np.ndarray] | None = None
    run_events: list[pd.DataFrame] | None = None
    if labels is not None:
        labels = np.asarray(labels, dtype=object)
        if labels.ndim != 1 or len(labels) != sum(counts):
            raise LabelError(f"labels has {len(labels)} entries for {sum(counts)} volumes.")
        bounds = np.cumsum([0] + counts)
        vol_labels = [labels[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    elif events is not None:
        run_events = _events_per_run(events, run_ids)
    conf_per_run = _split_per_run(confounds, counts, "confounds")

    masker, mask_img = _make_masker(
        atlas,
        mask,
        atlas_labels,
        shape3d,
        t_r,
        standardize if mode == "volumes" else False,
        detrend if mode == "volumes" else False,
        high_pass if mode == "volumes" else None,
        # Betas mode: the GLM smooths the data itself; smoothing the effect maps again
        # when extracting them would smooth twice.
        smoothing_fwhm if mode == "volumes" else None,
    )
    try:
        masker.fit(run_imgs if mask is None and atlas is None else None)
    except ValueError as exc:
        if "empty" in str(exc):
            # nilearn's EPI mask erodes thin (e.g. one-slice) volumes away entirely.
            raise EmptySelectionError(
                f"The brain mask computed from the data is empty ({exc}); pass mask= or atlas=."
            ) from exc
        raise CorruptFileError(f"Cannot build the brain mask: {exc}") from exc
    except Exception as exc:
        raise CorruptFileError(f"Cannot build the brain mask: {exc}") from exc

    data_parts, obs_parts = [], []
    if mode == "volumes":
        start = 0
        for r, img, n, conf in zip(run_ids, run_imgs, counts, conf_per_run):
            try:
                X = masker.transform(img, confounds=conf)
            except Exception as exc:
                raise CorruptFileError(f"Cannot read the data of run {r}: {exc}") from exc
            if vol_labels is not None:
                lab = _shift_labels(vol_labels[len(obs_parts)], hrf_shift, t_r, null_label)
            elif run_events is not None:
                lab = _volume_labels(run_events[len(obs_parts)], n, t_r, hrf_shift, null_label)
            else:
                lab = np.full(n, null_label, dtype=object)
            obs_parts.append(
                pd.DataFrame(
                    {
                        "condition": list(lab),
                        "run": r,
                        "onset": np.arange(n) * t_r,
                        "volume": np.arange(start, start + n),
                    }
                )
            )
            data_parts.append(X)
            start += n
    else:
        from nilearn.glm.first_level import FirstLevelModel

        # The mask image, not the fitted masker: given a masker, nilearn uses it (and its
        # unsmoothed settings) in place of this model's parameters, and mutates it.
        glm_mask = None if mask_img is None else mask_img.mask_img_
        if atlas is not None:
            # Fit the GLM on the atlas voxels: a mask computed from each run would leave zeros
            # inside regions (biasing their means) or be empty on thin slabs.
            regions = masker.labels_img_
            inside = np.asarray(regions.dataobj) != masker.background_label
            glm_mask = nibabel.Nifti1Image(inside.astype(np.uint8), regions.affine)
        for i, (r, img, conf) in enumerate(zip(run_ids, run_imgs, conf_per_run)):
            ev = events_from_labels(vol_labels[i], t_r, null_label) if vol_labels is not None else run_events[i]
            # Baseline events in a user's table are not modelled either (as documented for null_label).
            ev = ev[ev["trial_type"] != null_label]
            if ev.empty:
                continue
            glm = FirstLevelModel(
                t_r=t_r,
                hrf_model=hrf_model,
                drift_model=drift_model,
                high_pass=glm_high_pass,
                mask_img=glm_mask,
                smoothing_fwhm=smoothing_fwhm,
                minimize_memory=True,
            )
            try:
                with warnings.catch_warnings():
                    # nilearn's FirstLevelModel warns, on every fit with a mask image, that its
                    # inner masker was given both the mask and the data; the mask is used as asked.
                    warnings.filterwarnings("ignore", message=r".*Generation of a mask has been requested")
                    glm.fit(
                        img, events=ev[list(_EVENT_COLUMNS)], confounds=None if conf is None else pd.DataFrame(conf)
                    )
            except Exception as exc:
                raise CorruptFileError(f"First-level GLM failed for run {r}: {exc}") from exc
            conds = sorted(pd.unique(ev["trial_type"]), key=str)
            # Contrast vectors rather than expressions: a condition named e.g. 1 or "face 1" is
            # not a valid nilearn contrast expression.
            columns = glm.design_matrices_[0].columns
            maps = [
                glm.compute_contrast(np.asarray(columns == c, dtype=float), output_type="effect_size") for c in conds
            ]
            data_parts.append(np.vstack([masker.transform(m) for m in maps]))
            obs_parts.append(pd.DataFrame({"condition": conds, "run": r}))
        if not data_parts:
            raise EmptySelectionError("No run has any event to model.")

    obs = pd.concat(obs_parts, ignore_index=True)
    for key, value in (("subject", subject), ("session", session)):
        if value is not None:
            obs[key] = value
    data = np.concatenate(data_parts, axis=0)
    features, affine, vmask = _features(masker, atlas_labels if atlas is not None else None)
    record = provenance_record(
        "read_fmri",
        sources=sources,
        mode=mode,
        t_r=t_r,
        runs=[str(r) for r in run_ids],
        mask=_describe(mask),
        atlas=_describe(atlas),
        standardize=standardize,
        hrf_shift=hrf_shift,
        detrend=detrend,
        high_pass=high_pass,
        smoothing_fwhm=smoothing_fwhm,
        hrf_model=hrf_model,
        drift_model=drift_model,
        confounds=confounds is not None,
        nilearn_version=nilearn.__version__,
        nibabel_version=nibabel.__version__,
    )
    return BrainData(data, obs, "fmri", features=features, affine=affine, mask=vmask, provenance=[record])


def _describe(img: Any) -> Any:
    if img is None:
        return None
    if isinstance(img, (str, os.PathLike)):
        return Path(img).name
    return f"<{type(img).__name__}>"


def _events_per_run(events: Any, run_ids: list[Any]) -> list[pd.DataFrame]:
    if isinstance(events, (list, tuple)):
        if len(events) != len(run_ids):
            raise LabelError(f"{len(events)} events tables for {len(run_ids)} runs.")
        return [_read_events_table(ev) for ev in events]
    table = _read_events_table(events)
    if "run" in table.columns:
        unknown = set(table["run"]) - set(run_ids)
        if unknown:
            raise LabelError(f"events mention runs {sorted(unknown, key=str)} that the data lacks.")
        return [table[table["run"] == r].reset_index(drop=True) for r in run_ids]
    if len(run_ids) > 1:
        raise LabelError("One events table for several runs needs a 'run' column.")
    return [table]


def _shift_labels(labels: np.ndarray, hrf_shift: float, t_r: float, null_label: Any) -> np.ndarray:
    k = int(round(hrf_shift / t_r))
    if k == 0:
        return labels
    out = np.full(len(labels), null_label, dtype=object)
    if k > 0:
        out[k:] = labels[:-k] if k < len(labels) else []
    else:
        out[:k] = labels[-k:]
    return out


def _make_masker(atlas, mask, atlas_labels, shape3d, t_r, standardize, detrend, high_pass, smoothing_fwhm):
    from nilearn.maskers import NiftiLabelsMasker, NiftiMasker

    common = dict(
        standardize="zscore_sample" if standardize else None,
        detrend=detrend,
        high_pass=high_pass,
        t_r=t_r,
        smoothing_fwhm=smoothing_fwhm,
        reports=False,
    )
    if atlas is not None:
        atlas_img, _ = _load_img(atlas, "atlas image")
        if atlas_img.shape[:3] != shape3d:
            raise ShapeError(f"atlas has shape {atlas_img.shape[:3]}, the data volumes {shape3d}.")
        return NiftiLabelsMasker(labels_img=atlas_img, labels=atlas_labels, **common), None
    mask_img = None
    if mask is not None:
        mask_img, _ = _load_img(mask, "mask image")
        if mask_img.shape[:3] != shape3d:
            raise ShapeError(f"mask has shape {mask_img.shape[:3]}, the data volumes {shape3d}.")
        if not np.asarray(mask_img.dataobj).any():
            raise EmptySelectionError("The mask has no voxel.")
    masker = NiftiMasker(mask_img=mask_img, mask_strategy="epi", **common)
    return masker, masker


def _features(masker, atlas_labels):
    from nilearn.maskers import NiftiLabelsMasker

    if isinstance(masker, NiftiLabelsMasker):
        names = masker.region_names_ if hasattr(masker, "region_names_") else None
        ids = [v for v in masker.labels_ if v != masker.background_label] if hasattr(masker, "labels_") else None
        if atlas_labels is not None:
            names = list(atlas_labels)
        elif isinstance(names, dict):
            names = [str(names[k]) for k in sorted(names)]
        if names is None or len(names) != len(ids or []):
            names = [f"region{int(v)}" for v in ids]
        feats = pd.DataFrame({"name": [str(n) for n in names], "label_value": [float(v) for v in ids]})
        return feats, None, None
    mask_img = masker.mask_img_
    vmask = np.asarray(mask_img.dataobj).astype(bool)
    ijk = np.argwhere(vmask)
    feats = pd.DataFrame({"name": [f"v{i}_{j}_{k}" for i, j, k in ijk], "i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2]})
    return feats, np.asarray(mask_img.affine, dtype=float), vmask
