"""fMRI loader: read_fmri and events_from_labels.

Every reference is computed on the same files with nibabel (``bold[mask]``),
nilearn's maskers (``NiftiMasker``, ``NiftiLabelsMasker``), ``signal.clean``,
``compute_epi_mask`` and ``FirstLevelModel``, one run at a time as
``read_fmri`` does, so numbers must agree. The only hard-coded numbers are
counts documented in ``shared/data/README.md`` (haxby/ and nitime/).

OpenFMRI layout vs ``bold.nii.gz``: ``haxby2001/sub001/BOLD/task001_runNNN``
holds exactly the volumes of chunk ``NNN - 1`` of ``bold.nii.gz`` (checked
below voxel by voxel), and the onset files of that run give exactly the labels
of that chunk in ``attributes_literal.txt`` (every block starts on a volume:
onsets and durations are multiples of the 2.5 s TR).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nilearn import signal
from nilearn.glm.first_level import FirstLevelModel
from nilearn.image import index_img
from nilearn.maskers import NiftiLabelsMasker, NiftiMasker
from nilearn.masking import compute_epi_mask

from neuroenc.errors import (
    CorruptFileError,
    EmptySelectionError,
    LabelError,
    MissingFileError,
    ModalityError,
    ShapeError,
    UnknownNameError,
)
from neuroenc.io import events_from_labels, read_fmri

# README (haxby/): 12 runs x 121 volumes, TR 2.5 s, 530 mask voxels,
# 8 categories x 108 volumes + 588 rest, one block per category per run.
N_RUNS, N_PER_RUN, N_VOLS, N_VOXELS, TR = 12, 121, 1452, 530, 2.5
CATEGORIES = ("face", "house", "cat", "shoe", "bottle", "scissors", "chair", "scrambledpix")
N_PER_CATEGORY, N_REST = 108, 588
# README (nitime/): fmri1.nii.gz is 10x10x18 x 40 volumes.
NITIME_SHAPE = (10, 10, 18, 40)
# Settings that read_fmri documents as its GLM defaults.
GLM = dict(t_r=TR, hrf_model="glover", drift_model="cosine", high_pass=0.01, minimize_memory=True)


# ----------------------------------------------------------------------
# fixtures and helpers
@pytest.fixture(scope="module")
def haxby(haxby_dir: Path) -> dict:
    """Paths, arrays and attributes of the Haxby excerpt, read with nibabel/numpy."""
    bold_img = nib.load(haxby_dir / "bold.nii.gz")
    mask_img = nib.load(haxby_dir / "mask.nii.gz")
    labels, runs = np.loadtxt(haxby_dir / "attributes_literal.txt", dtype=str).T
    return {
        "bold": haxby_dir / "bold.nii.gz",
        "mask": haxby_dir / "mask.nii.gz",
        "bold_img": bold_img,
        "mask_img": mask_img,
        "bold_arr": np.asanyarray(bold_img.dataobj),
        "mask_arr": np.asanyarray(mask_img.dataobj) > 0,
        "labels": labels,
        "runs": runs.astype(int),
    }


@pytest.fixture(scope="module")
def volumes(haxby):
    return read_fmri(haxby["bold"], labels=haxby["labels"], runs=haxby["runs"], mask=haxby["mask"])


@pytest.fixture(scope="module")
def betas(haxby):
    return read_fmri(haxby["bold"], labels=haxby["labels"], runs=haxby["runs"], mask=haxby["mask"], mode="betas")


def run_dir(haxby_dir: Path, run: int) -> Path:
    """OpenFMRI BOLD folder of run ``run`` (1-based)."""
    return haxby_dir / "haxby2001" / "sub001" / "BOLD" / f"task001_run{run:03d}"


def openfmri_events(haxby_dir: Path, run: int) -> pd.DataFrame:
    """Events of OpenFMRI run ``run`` (1-based) from its condNNN.txt onset files."""
    root = haxby_dir / "haxby2001"
    key = {}
    for line in (root / "models" / "model001" / "condition_key.txt").read_text().splitlines():
        if line.strip():
            _, cond, name = line.split()
            key[cond] = name
    rows = []
    for cond, name in key.items():
        onsets = np.loadtxt(root / "sub001" / "model" / "model001" / "onsets" / f"task001_run{run:03d}" / f"{cond}.txt")
        for onset, duration, amplitude in np.atleast_2d(onsets):
            rows.append((onset, duration, name, amplitude))
    table = pd.DataFrame(rows, columns=["onset", "duration", "trial_type", "amplitude"])
    return table.sort_values("onset", ignore_index=True)


def chunk(haxby: dict, run: int) -> np.ndarray:
    """Volume indices of chunk ``run`` (0-based) of bold.nii.gz."""
    return np.flatnonzero(haxby["runs"] == run)


def shifted(labels: np.ndarray, k: int, null: str = "rest") -> np.ndarray:
    """Labels delayed by k volumes, the first k volumes set to null (reference for hrf_shift)."""
    out = np.full(len(labels), null, dtype=object)
    out[k:] = labels[: len(labels) - k]
    return out


def fit_glm(haxby: dict, run: int, mask_img, smoothing_fwhm=None, confounds=None) -> FirstLevelModel:
    """nilearn's FirstLevelModel on one chunk, with the blocks of attributes_literal.txt."""
    idx = chunk(haxby, run)
    events = events_from_labels(haxby["labels"][idx], TR)
    glm = FirstLevelModel(mask_img=mask_img, smoothing_fwhm=smoothing_fwhm, **GLM)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Generation of a mask has been requested")
        glm.fit(index_img(haxby["bold_img"], idx), events=events, confounds=confounds)
    return glm


def direct_glm_betas(haxby: dict, run: int, smoothing_fwhm=None, confounds=None) -> dict:
    """Effect-size maps of one chunk from nilearn's FirstLevelModel, masked with nibabel."""
    glm = fit_glm(haxby, run, haxby["mask_img"], smoothing_fwhm, confounds)
    return {
        c: np.asanyarray(glm.compute_contrast(c, output_type="effect_size").dataobj)[haxby["mask_arr"]]
        for c in CATEGORIES
    }


def rows(bd, **criteria) -> np.ndarray:
    keep = np.ones(bd.n_obs, dtype=bool)
    for col, value in criteria.items():
        keep &= (bd.obs[col] == value).to_numpy()
    return bd.data[keep]


# ----------------------------------------------------------------------
# 1. volumes mode on bold.nii.gz
def test_haxby_volumes_counts(volumes):
    assert volumes.shape == (N_VOLS, N_VOXELS)
    assert volumes.modality == "fmri"
    counts = volumes.obs["condition"].value_counts()
    assert set(counts.index) == set(CATEGORIES) | {"rest"}
    assert all(counts[c] == N_PER_CATEGORY for c in CATEGORIES)
    assert counts["rest"] == N_REST
    assert volumes.obs["run"].nunique() == N_RUNS
    assert (volumes.obs.groupby("run").size() == N_PER_RUN).all()


def test_haxby_volumes_equal_nibabel_masking(volumes, haxby):
    expected = haxby["bold_arr"][haxby["mask_arr"]].T
    np.testing.assert_array_equal(volumes.data, expected)
    np.testing.assert_array_equal(volumes.obs["condition"].to_numpy(), haxby["labels"])
    np.testing.assert_array_equal(volumes.obs["run"].to_numpy(), haxby["runs"])
    np.testing.assert_array_equal(volumes.obs["volume"].to_numpy(), np.arange(N_VOLS))
    within_run = volumes.obs.groupby("run").cumcount().to_numpy()
    np.testing.assert_allclose(volumes.obs["onset"].to_numpy(), within_run * TR)


def test_haxby_features_are_mask_voxels(volumes, haxby):
    ijk = np.argwhere(haxby["mask_arr"])
    np.testing.assert_array_equal(volumes.features[["i", "j", "k"]].to_numpy(), ijk)
    assert volumes.features["name"].is_unique
    np.testing.assert_array_equal(volumes.mask, haxby["mask_arr"])
    np.testing.assert_array_equal(volumes.affine, haxby["mask_img"].affine)
    # Each feature column is the time course of its voxel.
    for f in (0, N_VOXELS // 2, N_VOXELS - 1):
        i, j, k = ijk[f]
        np.testing.assert_array_equal(volumes.data[:, f], haxby["bold_arr"][i, j, k, :])


def test_haxby_to_nifti_restores_volumes(volumes, haxby):
    img = volumes.to_nifti()
    assert img.shape == haxby["bold_img"].shape
    np.testing.assert_array_equal(img.affine, haxby["mask_img"].affine)
    expected = np.where(haxby["mask_arr"][..., None], haxby["bold_arr"], 0)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), expected)
    one = volumes.to_nifti(volumes.data[7])
    np.testing.assert_array_equal(np.asanyarray(one.dataobj), expected[..., 7])


def test_haxby_tr_from_header_and_metadata(haxby):
    bd = read_fmri(run_dir(haxby["bold"].parent, 1) / "bold_1slice.nii.gz", mask=haxby["mask"], subject="s1")
    assert bd.provenance[-1]["params"]["t_r"] == pytest.approx(float(haxby["bold_img"].header.get_zooms()[3]))
    np.testing.assert_allclose(bd.obs["onset"].to_numpy(), np.arange(N_PER_RUN) * TR)
    assert (bd.obs["subject"] == "s1").all()
    assert (bd.obs["condition"] == "rest").all()  # no labels: every volume is null_label


# ----------------------------------------------------------------------
# 2. betas mode
def test_haxby_betas_counts(betas):
    assert betas.shape == (len(CATEGORIES) * N_RUNS, N_VOXELS)
    assert set(betas.obs["condition"]) == set(CATEGORIES)
    table = pd.crosstab(betas.obs["condition"], betas.obs["run"])
    assert table.shape == (len(CATEGORIES), N_RUNS)
    assert (table.to_numpy() == 1).all()
    assert np.isfinite(betas.data).all()


@pytest.mark.parametrize("run", [0, N_RUNS - 1])
def test_haxby_betas_equal_first_level_model(betas, haxby, run):
    expected = direct_glm_betas(haxby, run)
    for cond in CATEGORIES:
        got = rows(betas, run=run, condition=cond)
        assert got.shape == (1, N_VOXELS)
        np.testing.assert_allclose(got[0], expected[cond], rtol=1e-10, atol=1e-12)


def test_betas_smoothing_applied_once(haxby):
    """smoothing_fwhm must equal FirstLevelModel(smoothing_fwhm=...) (it was applied twice)."""
    idx = chunk(haxby, 2)
    bd = read_fmri(
        index_img(haxby["bold_img"], idx),
        labels=haxby["labels"][idx],
        runs=haxby["runs"][idx],
        mask=haxby["mask"],
        mode="betas",
        smoothing_fwhm=6.0,
    )
    expected = direct_glm_betas(haxby, 2, smoothing_fwhm=6.0)
    for cond in ("face", "house", "chair"):
        np.testing.assert_allclose(rows(bd, condition=cond)[0], expected[cond], rtol=1e-10, atol=1e-12)


def test_betas_numeric_labels(haxby, betas):
    """Numeric labels (attributes.txt codes) give the same maps as the literal labels."""
    codes = np.loadtxt(haxby["bold"].parent / "attributes.txt")[:, 0].astype(int)
    literal = haxby["labels"]
    code_of = {name: int(codes[literal == name][0]) for name in CATEGORIES}
    assert len(set(code_of.values())) == len(CATEGORIES)
    idx = np.flatnonzero(haxby["runs"] <= 1)
    bd = read_fmri(
        index_img(haxby["bold_img"], idx),
        labels=codes[idx],
        runs=haxby["runs"][idx],
        mask=haxby["mask"],
        mode="betas",
        null_label=int(codes[literal == "rest"][0]),
    )
    assert bd.n_obs == 2 * len(CATEGORIES)
    for run in (0, 1):
        for name, code in code_of.items():
            np.testing.assert_allclose(
                rows(bd, run=run, condition=code), rows(betas, run=run, condition=name), rtol=1e-9, atol=1e-10
            )


# ----------------------------------------------------------------------
# 3. events input and per-run images
def test_openfmri_runs_are_chunks_of_bold(haxby, haxby_dir):
    """task001_runNNN/bold_1slice.nii.gz holds exactly chunk NNN-1 of bold.nii.gz."""
    for run in range(1, N_RUNS + 1):
        img = nib.load(run_dir(haxby_dir, run) / "bold_1slice.nii.gz")
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), haxby["bold_arr"][..., chunk(haxby, run - 1)])


def test_events_labels_match_attributes(haxby, haxby_dir, volumes):
    """Labels derived from the OpenFMRI onsets agree volume for volume with attributes_literal.txt.

    The mapping is OpenFMRI run NNN -> chunk NNN-1 (same data, see the test
    above). All onsets/durations are multiples of the TR, so the agreement is exact.
    """
    events = [openfmri_events(haxby_dir, run) for run in range(1, N_RUNS + 1)]
    for ev in events:
        assert len(ev) == len(CATEGORIES) and set(ev["trial_type"]) == set(CATEGORIES)
    bd = read_fmri(haxby["bold"], events=events, runs=haxby["runs"], mask=haxby["mask"])
    np.testing.assert_array_equal(bd.obs["condition"].to_numpy(), haxby["labels"])
    np.testing.assert_array_equal(bd.data, volumes.data)

    # One table with a run column gives the same labels.
    table = pd.concat([ev.assign(run=r) for r, ev in enumerate(events)], ignore_index=True)
    bd_table = read_fmri(haxby["bold"], events=table, runs=haxby["runs"], mask=haxby["mask"])
    np.testing.assert_array_equal(bd_table.obs["condition"].to_numpy(), haxby["labels"])


def test_events_from_labels_equal_onset_files(haxby, haxby_dir):
    for run in range(N_RUNS):
        got = events_from_labels(haxby["labels"][chunk(haxby, run)], TR)
        expected = openfmri_events(haxby_dir, run + 1)
        assert list(got.columns) == ["onset", "duration", "trial_type"]
        np.testing.assert_allclose(got["onset"].to_numpy(), expected["onset"].to_numpy())
        np.testing.assert_allclose(got["duration"].to_numpy(), expected["duration"].to_numpy())
        assert list(got["trial_type"]) == list(expected["trial_type"])


def test_per_run_image_list_with_event_files(haxby, haxby_dir, volumes, tmp_path):
    paths = [run_dir(haxby_dir, run) / "bold_1slice.nii.gz" for run in range(1, N_RUNS + 1)]
    event_files = []
    for run in range(1, N_RUNS + 1):
        path = tmp_path / f"run{run:02d}_events.tsv"
        openfmri_events(haxby_dir, run).to_csv(path, sep="\t", index=False)
        event_files.append(path)
    bd = read_fmri(paths, events=event_files, runs=list(range(N_RUNS)), mask=haxby["mask"])
    np.testing.assert_array_equal(bd.data, volumes.data)
    np.testing.assert_array_equal(bd.obs["condition"].to_numpy(), haxby["labels"])
    np.testing.assert_array_equal(bd.obs["run"].to_numpy(), haxby["runs"])
    np.testing.assert_array_equal(bd.obs["volume"].to_numpy(), np.arange(N_VOLS))
    # Without runs the images are numbered 1..n.
    two = read_fmri(paths[:2], mask=haxby["mask"])
    assert list(pd.unique(two.obs["run"])) == [1, 2]


def test_betas_from_events_equal_betas_from_labels(haxby, haxby_dir, betas):
    runs = [0, 5]
    paths = [run_dir(haxby_dir, r + 1) / "bold_1slice.nii.gz" for r in runs]
    # The explicit rest rows must be treated as baseline (null_label), not modelled.
    events = []
    for r in runs:
        ev = openfmri_events(haxby_dir, r + 1)
        events.append(pd.concat([ev, pd.DataFrame({"onset": [0.0], "duration": [15.0], "trial_type": ["rest"]})]))
    bd = read_fmri(paths, events=events, runs=runs, mask=haxby["mask"], mode="betas")
    assert set(bd.obs["condition"]) == set(CATEGORIES)
    for r in runs:
        for cond in CATEGORIES:
            np.testing.assert_allclose(
                rows(bd, run=r, condition=cond), rows(betas, run=r, condition=cond), rtol=1e-9, atol=1e-10
            )


# ----------------------------------------------------------------------
# 4. hrf_shift, events_from_labels, standardize, atlas, confounds
@pytest.mark.parametrize("hrf_shift", [5.0, 4.0, 3.0])
def test_hrf_shift_labels(haxby, volumes, hrf_shift):
    k = int(round(hrf_shift / TR))
    bd = read_fmri(haxby["bold"], labels=haxby["labels"], runs=haxby["runs"], mask=haxby["mask"], hrf_shift=hrf_shift)
    np.testing.assert_array_equal(bd.data, volumes.data)  # only labels move
    for run in range(N_RUNS):
        idx = chunk(haxby, run)
        got = bd.obs["condition"].to_numpy()[idx]
        np.testing.assert_array_equal(got, shifted(haxby["labels"][idx], k))
        assert (got[:k] == "rest").all()


def test_hrf_shift_null_label_and_events_agree(haxby, haxby_dir):
    idx = chunk(haxby, 3)
    img = index_img(haxby["bold_img"], idx)
    labels = haxby["labels"][idx]
    by_labels = read_fmri(img, labels=labels, mask=haxby["mask"], hrf_shift=5.0, null_label="none")
    expected = shifted(labels, 2, null="none")
    np.testing.assert_array_equal(by_labels.obs["condition"].to_numpy(), expected)
    # Events are shifted by the same 5 s (2 volumes): labels from the onset files agree.
    ev = openfmri_events(haxby_dir, 4)
    by_events = read_fmri(img, events=ev, mask=haxby["mask"], hrf_shift=5.0)
    np.testing.assert_array_equal(by_events.obs["condition"].to_numpy(), shifted(labels, 2))


def test_events_from_labels_blocks():
    labels = ["rest", "a", "a", "b", "rest", "rest", "a", "b", "b"]
    ev = events_from_labels(labels, 2.0)
    assert list(ev["trial_type"]) == ["a", "b", "a", "b"]
    np.testing.assert_allclose(ev["onset"], [2.0, 6.0, 12.0, 14.0])
    np.testing.assert_allclose(ev["duration"], [4.0, 2.0, 2.0, 4.0])
    assert events_from_labels(["rest"] * 3, 2.0).empty
    none_null = events_from_labels([0, 0, 1, 1], 1.5, null_label=None)
    assert list(none_null["trial_type"]) == [0, 1]
    np.testing.assert_allclose(none_null["onset"], [0.0, 3.0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    labels=st.lists(st.sampled_from(["rest", "a", "b", "c"]), min_size=1, max_size=30),
    t_r=st.sampled_from([0.5, 1.0, 2.5, 3.0]),
)
def test_events_from_labels_roundtrip(labels, t_r):
    """Expanding the blocks back to volumes gives the labels; blocks are maximal."""
    ev = events_from_labels(labels, t_r)
    times = np.arange(len(labels)) * t_r
    back = np.full(len(labels), "rest", dtype=object)
    for onset, duration, kind in ev.itertuples(index=False):
        sel = (times >= onset - 1e-9) & (times < onset + duration - 1e-9)
        assert sel.sum() == round(duration / t_r) > 0
        assert (back[sel] == "rest").all()  # blocks do not overlap
        back[sel] = kind
    np.testing.assert_array_equal(back, np.asarray(labels, dtype=object))
    ends = (ev["onset"] + ev["duration"]).to_numpy()
    touching = np.isclose(ends[:-1], ev["onset"].to_numpy()[1:])
    assert not np.any(touching & (ev["trial_type"].to_numpy()[:-1] == ev["trial_type"].to_numpy()[1:]))


@settings(max_examples=15, deadline=None)
@given(labels=st.lists(st.sampled_from(["rest", "a", "b"]), min_size=2, max_size=15))
def test_events_roundtrip_through_read_fmri(labels):
    """labels -> events_from_labels -> read_fmri(events=...) gives the labels back."""
    rng = np.random.default_rng(len(labels))
    img = nib.Nifti1Image(rng.normal(100, 5, (3, 2, 1, len(labels))).astype(np.float32), np.eye(4))
    mask = nib.Nifti1Image(np.ones((3, 2, 1), dtype=np.uint8), np.eye(4))
    bd = read_fmri(img, events=events_from_labels(labels, 2.0), mask=mask, t_r=2.0)
    assert list(bd.obs["condition"]) == labels
    np.testing.assert_allclose(bd.data, np.asarray(img.dataobj).reshape(6, -1).T, rtol=1e-6)


def test_standardize_per_run(haxby, volumes):
    bd = read_fmri(haxby["bold"], labels=haxby["labels"], runs=haxby["runs"], mask=haxby["mask"], standardize=True)
    raw = haxby["bold_arr"][haxby["mask_arr"]].T.astype(float)
    expected = signal.clean(raw, runs=haxby["runs"], detrend=False, standardize="zscore_sample", t_r=TR)
    np.testing.assert_allclose(bd.data, expected, rtol=1e-4, atol=1e-4)
    for run in range(N_RUNS):
        X = bd.data[chunk(haxby, run)].astype(float)
        np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(X.std(axis=0, ddof=1), 1.0, rtol=1e-4)
        own = raw[chunk(haxby, run)]
        np.testing.assert_allclose(X, (own - own.mean(0)) / own.std(0, ddof=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(bd.obs["condition"].to_numpy(), volumes.obs["condition"].to_numpy())


def test_high_pass_equals_nifti_masker(haxby):
    idx = np.flatnonzero(haxby["runs"] <= 1)
    img = index_img(haxby["bold_img"], idx)
    bd = read_fmri(img, runs=haxby["runs"][idx], mask=haxby["mask"], high_pass=0.01, detrend=True)
    masker = NiftiMasker(mask_img=haxby["mask_img"], t_r=TR, high_pass=0.01, detrend=True, standardize=None)
    masker.fit()
    expected = np.vstack([masker.transform(index_img(haxby["bold_img"], chunk(haxby, r))) for r in (0, 1)])
    np.testing.assert_allclose(bd.data, expected, rtol=1e-5, atol=1e-3)


@pytest.fixture(scope="module")
def halves_atlas(haxby):
    """Labels image from the mask: value 3 on the first 20 x-planes, 7 on the rest."""
    atlas = np.zeros(haxby["mask_arr"].shape, dtype=np.int16)
    atlas[:20][haxby["mask_arr"][:20]] = 3
    atlas[20:][haxby["mask_arr"][20:]] = 7
    assert (atlas == 3).any() and (atlas == 7).any()
    return nib.Nifti1Image(atlas, haxby["mask_img"].affine)


def test_atlas_equals_labels_masker(haxby, halves_atlas, tmp_path):
    path = tmp_path / "atlas.nii.gz"
    nib.save(halves_atlas, path)
    bd = read_fmri(haxby["bold"], labels=haxby["labels"], runs=haxby["runs"], atlas=path)
    expected = NiftiLabelsMasker(labels_img=halves_atlas, standardize=None).fit_transform(haxby["bold"])
    assert bd.shape == (N_VOLS, 2)
    np.testing.assert_allclose(bd.data, expected, rtol=1e-6)
    # Means of the voxels of each half, computed with nibabel.
    raw = haxby["bold_arr"].astype(float)
    for f, value in enumerate((3, 7)):
        np.testing.assert_allclose(bd.data[:, f], raw[np.asanyarray(halves_atlas.dataobj) == value].mean(0), rtol=1e-5)
    np.testing.assert_array_equal(bd.features["label_value"].to_numpy(), [3.0, 7.0])
    assert bd.mask is None and bd.affine is None
    with pytest.raises(ModalityError, match="mask"):
        bd.to_nifti()

    named = read_fmri(haxby["bold"], runs=haxby["runs"], atlas=halves_atlas, atlas_labels=["left", "right"])
    assert list(named.features["name"]) == ["left", "right"]
    np.testing.assert_array_equal(named.data, bd.data)


def test_atlas_standardize_per_run(haxby, halves_atlas):
    idx = np.flatnonzero(haxby["runs"] <= 1)
    img = index_img(haxby["bold_img"], idx)
    bd = read_fmri(img, runs=haxby["runs"][idx], atlas=halves_atlas, standardize=True)
    masker = NiftiLabelsMasker(labels_img=halves_atlas, standardize="zscore_sample", t_r=TR)
    expected = np.vstack([masker.fit_transform(index_img(haxby["bold_img"], chunk(haxby, r))) for r in (0, 1)])
    np.testing.assert_allclose(bd.data, expected, rtol=1e-5, atol=1e-5)


def test_atlas_betas_equal_first_level_model(haxby, halves_atlas):
    """Betas with an atlas: GLM on the atlas voxels, then the region means of each effect map."""
    runs = [4, 9]
    idx = np.flatnonzero(np.isin(haxby["runs"], runs))
    bd = read_fmri(
        index_img(haxby["bold_img"], idx),
        labels=haxby["labels"][idx],
        runs=haxby["runs"][idx],
        atlas=halves_atlas,
        mode="betas",
    )
    assert bd.shape == (len(runs) * len(CATEGORIES), 2)
    inside = nib.Nifti1Image((np.asanyarray(halves_atlas.dataobj) > 0).astype(np.uint8), halves_atlas.affine)
    regions = NiftiLabelsMasker(labels_img=halves_atlas, standardize=None).fit()
    for run in runs:
        glm = fit_glm(haxby, run, inside)
        for cond in CATEGORIES:
            expected = regions.transform(glm.compute_contrast(cond, output_type="effect_size"))
            np.testing.assert_allclose(rows(bd, run=run, condition=cond), np.atleast_2d(expected), rtol=1e-9)


def moest(haxby_dir: Path, run: int) -> np.ndarray:
    """OpenFMRI motion estimates of run ``run`` (1-based), one row per volume."""
    return np.loadtxt(run_dir(haxby_dir, run) / "bold_moest.txt")


def test_confounds_equal_nifti_masker(haxby, haxby_dir):
    """Motion confounds as one array for bold.nii.gz (runs concatenated) and as per-run files.

    ``bold_mc.par`` cannot serve here: it has fewer rows than bold.nii.gz has
    volumes (see test_confounds_length_mismatch), so the per-run OpenFMRI
    motion estimates of the same volumes are used.
    """
    runs = [0, 1]
    idx = np.flatnonzero(np.isin(haxby["runs"], runs))
    conf = [moest(haxby_dir, r + 1) for r in runs]
    assert [len(c) for c in conf] == [N_PER_RUN] * len(runs)
    masker = NiftiMasker(mask_img=haxby["mask_img"], t_r=TR, standardize=None).fit()
    expected = np.vstack(
        [masker.transform(index_img(haxby["bold_img"], chunk(haxby, r)), confounds=c) for r, c in zip(runs, conf)]
    )
    no_conf = haxby["bold_arr"][haxby["mask_arr"]].T[idx]
    assert not np.allclose(expected, no_conf)  # the confounds change the data

    img = index_img(haxby["bold_img"], idx)
    bd = read_fmri(img, runs=haxby["runs"][idx], mask=haxby["mask"], confounds=np.vstack(conf))
    np.testing.assert_allclose(bd.data, expected, rtol=1e-5, atol=1e-3)

    # Per-run images with per-run headerless motion files (paths), and one DataFrame.
    paths = [run_dir(haxby_dir, r + 1) / "bold_1slice.nii.gz" for r in runs]
    files = [run_dir(haxby_dir, r + 1) / "bold_moest.txt" for r in runs]
    by_files = read_fmri(paths, runs=runs, mask=haxby["mask"], confounds=files)
    np.testing.assert_allclose(by_files.data, expected, rtol=1e-5, atol=1e-3)
    one = read_fmri(paths[0], mask=haxby["mask"], confounds=files[0])
    np.testing.assert_allclose(one.data, expected[:N_PER_RUN], rtol=1e-5, atol=1e-3)
    frame = read_fmri(img, runs=haxby["runs"][idx], mask=haxby["mask"], confounds=pd.DataFrame(np.vstack(conf)))
    np.testing.assert_allclose(frame.data, expected, rtol=1e-5, atol=1e-3)


def test_betas_confounds_equal_first_level_model(haxby, haxby_dir):
    path = run_dir(haxby_dir, 1) / "bold_1slice.nii.gz"
    conf = moest(haxby_dir, 1)
    bd = read_fmri(
        path,
        labels=haxby["labels"][chunk(haxby, 0)],
        mask=haxby["mask"],
        mode="betas",
        confounds=conf,
        runs=[0] * N_PER_RUN,
    )
    expected = direct_glm_betas(haxby, 0, confounds=pd.DataFrame(conf, columns=[f"mc{i}" for i in range(6)]))
    plain = direct_glm_betas(haxby, 0)
    assert not np.allclose(expected["face"], plain["face"])
    for cond in CATEGORIES:
        np.testing.assert_allclose(rows(bd, condition=cond)[0], expected[cond], rtol=1e-9, atol=1e-10)


# ----------------------------------------------------------------------
# 5. nitime images with a computed mask
def test_nitime_computed_mask(nitime_dir):
    path = nitime_dir / "fmri1.nii.gz"
    img = nib.load(path)
    assert img.shape == NITIME_SHAPE
    bd = read_fmri(path)
    expected_mask = np.asanyarray(compute_epi_mask(path).dataobj) > 0
    assert expected_mask.any()
    np.testing.assert_array_equal(bd.mask, expected_mask)
    assert bd.shape == (NITIME_SHAPE[3], int(expected_mask.sum()))
    np.testing.assert_array_equal(bd.data, np.asanyarray(img.dataobj)[expected_mask].T)
    reference = NiftiMasker(mask_strategy="epi", standardize=None).fit_transform(path)
    np.testing.assert_array_equal(bd.data, reference)
    np.testing.assert_array_equal(bd.affine, img.affine)
    assert bd.provenance[-1]["params"]["t_r"] == pytest.approx(float(img.header.get_zooms()[3]))
    assert (bd.obs["condition"] == "rest").all() and bd.obs["run"].nunique() == 1


# ----------------------------------------------------------------------
# 6. bad input
@pytest.fixture(scope="module")
def run1(haxby_dir: Path) -> Path:
    return run_dir(haxby_dir, 1) / "bold_1slice.nii.gz"


def test_missing_image(haxby, tmp_path):
    missing = tmp_path / "nope.nii.gz"
    with pytest.raises(MissingFileError, match="not found.*nope.nii.gz"):
        read_fmri(missing, mask=haxby["mask"])
    with pytest.raises(MissingFileError, match="mask image not found"):
        read_fmri(haxby["bold"], mask=tmp_path / "nomask.nii.gz")


@pytest.mark.parametrize("keep", ["header", "data"])
@pytest.mark.parametrize("with_mask", [True, False])
def test_truncated_image(haxby, run1, tmp_path, keep, with_mask):
    raw = run1.read_bytes()
    cut = tmp_path / "truncated.nii.gz"
    # "header": the gzip stream ends inside the NIfTI header; "data": inside the volumes.
    cut.write_bytes(raw[:100] if keep == "header" else raw[: len(raw) // 2])
    kwargs = {"mask": haxby["mask"]} if with_mask else {}
    with pytest.raises(CorruptFileError, match=r"Cannot read (the data of )?truncated\.nii\.gz"):
        read_fmri(cut, **kwargs)
    with pytest.raises(CorruptFileError, match="Cannot (read|build)"):
        read_fmri([run1, cut], **kwargs)


def test_truncated_image_message_names_file(haxby, run1, tmp_path):
    cut = tmp_path / "half.nii.gz"
    cut.write_bytes(run1.read_bytes()[: run1.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="Cannot read the data of half.nii.gz"):
        read_fmri(cut, runs=[0] * N_PER_RUN, mask=haxby["mask"])


def test_labels_length_mismatch(haxby):
    with pytest.raises(LabelError, match=f"labels has {N_VOLS - 1} entries for {N_VOLS} volumes"):
        read_fmri(haxby["bold"], labels=haxby["labels"][:-1], runs=haxby["runs"], mask=haxby["mask"])


def test_runs_length_mismatch(haxby, run1):
    with pytest.raises(LabelError, match=f"runs has {N_VOLS - 1} entries for {N_VOLS} volumes"):
        read_fmri(haxby["bold"], labels=haxby["labels"], runs=haxby["runs"][:-1], mask=haxby["mask"])
    with pytest.raises(LabelError, match="1 run ids for 2 images"):
        read_fmri([run1, run1], runs=[0], mask=haxby["mask"])
    interleaved = np.tile([0, 1], N_VOLS // 2)
    with pytest.raises(LabelError, match="contiguous"):
        read_fmri(haxby["bold"], runs=interleaved, mask=haxby["mask"])


def test_mask_shape_mismatch(haxby, run1, tmp_path):
    other = tmp_path / "mask_other.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((40, 20, 2), dtype=np.uint8), haxby["mask_img"].affine), other)
    with pytest.raises(ShapeError, match=r"mask has shape \(40, 20, 2\), the data volumes \(40, 20, 1\)"):
        read_fmri(run1, mask=other)
    with pytest.raises(ShapeError, match="atlas has shape"):
        read_fmri(run1, atlas=other)


def test_empty_mask(haxby, run1):
    empty = nib.Nifti1Image(np.zeros(haxby["mask_arr"].shape, dtype=np.uint8), haxby["mask_img"].affine)
    with pytest.raises(EmptySelectionError, match="no voxel"):
        read_fmri(run1, mask=empty)


def test_events_without_trial_type(haxby, haxby_dir, run1, tmp_path):
    ev = openfmri_events(haxby_dir, 1).drop(columns="trial_type")
    with pytest.raises(LabelError, match="lacks column.*trial_type"):
        read_fmri(run1, events=ev, mask=haxby["mask"])
    path = tmp_path / "events.tsv"
    ev.rename(columns={"amplitude": "condition"}).to_csv(path, sep="\t", index=False)
    with pytest.raises(LabelError, match="trial_type"):
        read_fmri(run1, events=path, mask=haxby["mask"], mode="betas")


def test_events_run_mismatches(haxby, haxby_dir, run1):
    ev = openfmri_events(haxby_dir, 1)
    with pytest.raises(LabelError, match="1 events tables for 2 runs"):
        read_fmri([run1, run1], events=[ev], mask=haxby["mask"])
    with pytest.raises(LabelError, match="needs a 'run' column"):
        read_fmri([run1, run1], events=ev, mask=haxby["mask"])
    with pytest.raises(LabelError, match=r"runs \[9\]"):
        read_fmri([run1, run1], events=ev.assign(run=9), runs=[1, 2], mask=haxby["mask"])


def test_unknown_mode(haxby, run1):
    with pytest.raises(UnknownNameError, match="mode 'glm'.*'volumes', 'betas'"):
        read_fmri(run1, labels=haxby["labels"][:N_PER_RUN], mask=haxby["mask"], mode="glm")


def test_betas_without_labels_or_events(haxby, run1):
    with pytest.raises(LabelError, match="needs labels or events"):
        read_fmri(run1, mask=haxby["mask"], mode="betas")


def test_labels_and_events_both(haxby, haxby_dir, run1):
    with pytest.raises(LabelError, match="labels or events, not both"):
        read_fmri(run1, labels=haxby["labels"][:N_PER_RUN], events=openfmri_events(haxby_dir, 1), mask=haxby["mask"])


def test_three_d_image(haxby):
    with pytest.raises(ShapeError, match=r"mask.nii.gz has shape \(40, 20, 1\); expected a 4-D"):
        read_fmri(haxby["mask"])


def test_other_bad_arguments(haxby, run1, halves_atlas):
    with pytest.raises(ShapeError, match="mask or atlas, not both"):
        read_fmri(run1, mask=haxby["mask"], atlas=halves_atlas)
    with pytest.raises(ShapeError, match="hrf_shift applies to mode='volumes'"):
        read_fmri(run1, labels=haxby["labels"][:N_PER_RUN], mask=haxby["mask"], mode="betas", hrf_shift=5.0)
    with pytest.raises(ShapeError, match="t_r must be finite and > 0"):
        read_fmri(run1, mask=haxby["mask"], t_r=-1.0)
    with pytest.raises(EmptySelectionError, match="No image"):
        read_fmri([])
    with pytest.raises(EmptySelectionError, match="No run has any event"):
        read_fmri(run1, labels=["rest"] * N_PER_RUN, mask=haxby["mask"], mode="betas")


def test_confounds_length_mismatch(haxby, haxby_dir, run1):
    par = haxby["bold"].parent / "bold_mc.par"
    n_par = len(np.loadtxt(par))
    assert n_par != N_VOLS  # the README's "per volume" does not hold for this file
    with pytest.raises(LabelError, match=f"confounds has {n_par} rows for {N_VOLS} volumes"):
        read_fmri(haxby["bold"], runs=haxby["runs"], mask=haxby["mask"], confounds=par)
    short = moest(haxby_dir, 1)[:-1]
    with pytest.raises(LabelError, match=f"confounds of run #2 has {N_PER_RUN - 1} rows for {N_PER_RUN} volumes"):
        read_fmri([run1, run1], mask=haxby["mask"], confounds=[moest(haxby_dir, 1), short])


def test_empty_computed_mask_is_an_empty_selection(nitime_dir):
    # nilearn's EPI mask of this small image erodes to nothing.
    with pytest.raises(EmptySelectionError, match="computed from the data is empty.*pass mask="):
        read_fmri(nitime_dir / "fmri2.nii.gz")
