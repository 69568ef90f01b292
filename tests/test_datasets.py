"""Dataset loaders of the real data folder and data-folder resolution."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import neuroenc.datapath
from neuroenc.datapath import ENV_VAR, data_path, find_data_dir
from neuroenc.datasets import PHYSIONET_MI_TASKS, load_grasshopper, load_haxby, load_physionet_mi
from neuroenc.datasets.local import physionet_mi_files
from neuroenc.errors import MissingFileError, ShapeError, UnknownNameError
from neuroenc.io import read_spikes

# T1/T2 cues per run of S001, transcribed from the README table of the data folder.
README_CUES = {
    3: (8, 7),
    4: (8, 7),
    5: (8, 7),
    6: (7, 8),
    7: (8, 7),
    8: (8, 7),
    9: (8, 7),
    10: (7, 8),
    11: (7, 8),
    12: (7, 8),
    13: (7, 8),
    14: (7, 8),
}
# task -> (runs, T1 condition, T2 condition, total T1, total T2), as stated in the README overview.
TASKS = {
    "imagery_lr": ((4, 8, 12), "left_fist", "right_fist", 23, 22),
    "imagery_ff": ((6, 10, 14), "both_fists", "both_feet", 21, 24),
    "movement_lr": ((3, 7, 11), "left_fist", "right_fist", 23, 22),
    "movement_ff": ((5, 9, 13), "both_fists", "both_feet", 23, 22),
}
HAXBY_CATEGORIES = {"face", "house", "cat", "shoe", "bottle", "scissors", "chair", "scrambledpix"}


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


# ----------------------------------------------------------------------
# PhysioNet motor movement / imagery


def test_readme_table_agrees_with_task_totals():
    for runs, _, _, n1, n2 in TASKS.values():
        assert sum(README_CUES[r][0] for r in runs) == n1
        assert sum(README_CUES[r][1] for r in runs) == n2
        assert all(sum(README_CUES[r]) == 15 for r in runs)  # 30 cues per run, 15 of them T0


@pytest.mark.parametrize("task", list(TASKS))
def test_load_physionet_mi(task, eegbci_dir):
    runs, cond1, cond2, n1, n2 = TASKS[task]
    assert PHYSIONET_MI_TASKS[task][0] == runs
    bd = load_physionet_mi(1, task)
    assert bd.modality == "eeg"
    assert bd.shape == (n1 + n2, 64, 641)  # 0-4 s at 160 Hz, both ends included
    assert bd.sfreq == pytest.approx(160.0)
    counts = bd.obs["condition"].value_counts()
    assert counts.to_dict() == {cond1: n1, cond2: n2}
    assert sorted(bd.obs["run"].unique()) == list(runs)
    assert set(bd.obs["subject"]) == {1}
    for run in runs:
        events = bd.obs.loc[bd.obs["run"] == run, "event"]
        assert (int((events == "T1").sum()), int((events == "T2").sum())) == README_CUES[run]
    # T1/T2 are the first/second condition of the task
    assert set(bd.obs.loc[bd.obs["event"] == "T1", "condition"]) == {cond1}
    assert set(bd.obs.loc[bd.obs["event"] == "T2", "condition"]) == {cond2}
    # onsets are seconds from the start of each 125-s run, at the cue samples
    assert bd.obs["onset"].between(0, 125).all()
    np.testing.assert_allclose(bd.obs["onset"] * 160, bd.obs["sample"])


def test_physionet_mi_files(eegbci_dir):
    files, origin = physionet_mi_files(1, "movement_ff")
    assert [f.name for f in files] == ["S001R05.edf", "S001R09.edf", "S001R13.edf"]
    assert all(f.is_file() for f in files)
    assert Path(origin).resolve() == eegbci_dir.resolve()


def test_load_physionet_mi_passes_window_and_data_dir(data_dir, eegbci_dir):
    bd = load_physionet_mi(1, "imagery_lr", data_dir=data_dir, tmin=0.5, tmax=2.5)
    assert bd.shape == (45, 64, 321)
    np.testing.assert_allclose(bd.times[[0, -1]], [0.5, 2.5])


def test_load_physionet_mi_bad_task_and_subject(eegbci_dir):
    with pytest.raises(UnknownNameError, match="imagery_lr"):
        load_physionet_mi(1, "imagery")
    with pytest.raises(MissingFileError, match="S002R04.edf"):
        load_physionet_mi(2, "imagery_lr")  # only S001 is in the data folder; no download


# ----------------------------------------------------------------------
# Haxby


@pytest.fixture(scope="module")
def haxby_reference(haxby_dir):
    nib = pytest.importorskip("nibabel")
    bold = np.asanyarray(nib.load(haxby_dir / "bold.nii.gz").dataobj)
    mask = np.asanyarray(nib.load(haxby_dir / "mask.nii.gz").dataobj) > 0
    labels, runs = np.loadtxt(haxby_dir / "attributes_literal.txt", dtype=str).T
    return bold[mask].T.astype(float), mask, labels, runs.astype(int)


def test_load_haxby_betas(haxby_dir):
    bd = load_haxby("betas")
    assert bd.modality == "fmri"
    assert bd.shape == (96, 530)
    assert bd.obs["condition"].value_counts().to_dict() == dict.fromkeys(HAXBY_CATEGORIES, 12)
    assert sorted(bd.obs["run"].unique()) == list(range(12))
    for _, group in bd.obs.groupby("run"):
        assert set(group["condition"]) == HAXBY_CATEGORIES  # one estimate per category and run
    assert bd.mask.sum() == 530 and bd.affine.shape == (4, 4)
    assert np.isfinite(bd.data).all()


def test_load_haxby_volumes(haxby_reference):
    X, mask, labels, runs = haxby_reference
    bd = load_haxby("volumes")
    assert bd.shape == (1452, 530)
    counts = bd.obs["condition"].value_counts().to_dict()
    assert counts == {"rest": 588, **dict.fromkeys(HAXBY_CATEGORIES, 108)}
    assert list(bd.conditions) == list(labels)
    np.testing.assert_array_equal(bd.obs["run"], runs)
    assert bd.obs.groupby("run").size().tolist() == [121] * 12
    np.testing.assert_array_equal(bd.mask, mask)
    np.testing.assert_allclose(bd.data, X)  # no cleaning by default: the raw voxel values


def test_load_haxby_unknown_mode(haxby_dir):
    with pytest.raises(UnknownNameError, match="betas"):
        load_haxby("glm")


# ----------------------------------------------------------------------
# grasshopper


def test_load_grasshopper(nitime_dir):
    bd = load_grasshopper()
    assert bd.modality == "spikes"
    assert bd.shape == (10, 2, 100)
    assert bd.feature_names == ["recording1", "recording2"]
    assert list(bd.conditions) == [f"seg{i}" for i in range(10)]
    np.testing.assert_allclose(bd.obs["onset"], np.arange(10.0))
    np.testing.assert_array_equal(bd.data.sum(axis=(0, 2)), [929, 868])
    assert bd.sfreq == pytest.approx(100.0)
    # same as binning the files directly, in µs with np.histogram
    for u, i in enumerate((1, 2)):
        train = np.loadtxt(nitime_dir / f"grasshopper_spike_times{i}.txt")
        ref = np.stack([np.histogram(train - j * 1e6, bins=np.arange(101) * 1e4)[0] for j in range(10)])
        np.testing.assert_array_equal(bd.data[:, u], ref)


def test_load_grasshopper_segments(nitime_dir):
    half = load_grasshopper(segment=0.5, bin_size=0.05)
    assert half.shape == (20, 2, 10)
    np.testing.assert_array_equal(half.data.sum(axis=(0, 2)), [929, 868])
    # each half-second segment with 50-ms bins = half of a 1-s segment, 5 x 10-ms bins merged
    whole = load_grasshopper()
    merged = whole.data.reshape(10, 2, 2, 10, 5).sum(axis=4).transpose(0, 2, 1, 3).reshape(20, 2, 10)
    np.testing.assert_array_equal(half.data, merged)
    np.testing.assert_allclose(half.obs["onset"], np.arange(20) * 0.5)
    # segments of 3 s: the last incomplete second is dropped
    three = load_grasshopper(segment=3.0, bin_size=1.0)
    assert three.shape == (3, 2, 3)
    trains = [np.loadtxt(nitime_dir / f"grasshopper_spike_times{i}.txt") for i in (1, 2)]
    np.testing.assert_array_equal(three.data.sum(axis=(0, 2)), [np.count_nonzero(t < 9e6) for t in trains])


@pytest.mark.parametrize("segment", [0.0, -1.0, float("nan"), 20.0])
def test_load_grasshopper_bad_segment(segment, tmp_path):
    # checked before any file is looked for (tmp_path holds no data)
    with pytest.raises(ShapeError, match="segment"):
        load_grasshopper(segment=segment, data_dir=tmp_path)


def test_load_grasshopper_bin_size_must_divide_segment(nitime_dir):
    with pytest.raises(ShapeError, match="whole number"):
        load_grasshopper(segment=1.0, bin_size=0.3)


def test_load_grasshopper_equals_read_spikes(nitime_dir):
    trains = {f"recording{i}": np.loadtxt(nitime_dir / f"grasshopper_spike_times{i}.txt") for i in (1, 2)}
    ref = read_spikes(trains, np.arange(10) * 1e6, [f"seg{i}" for i in range(10)], 0, 1, 0.01, time_unit="us")
    np.testing.assert_array_equal(load_grasshopper().data, ref.data)


# ----------------------------------------------------------------------
# missing data


LOADERS = {
    "physionet": lambda **kw: load_physionet_mi(1, "imagery_lr", **kw),
    "haxby": lambda **kw: load_haxby("betas", **kw),
    "grasshopper": lambda **kw: load_grasshopper(**kw),
}


@pytest.mark.parametrize("name", list(LOADERS))
def test_env_var_to_missing_folder_raises(name, monkeypatch, tmp_path):
    missing = tmp_path / "no_such_folder"
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(MissingFileError):
        LOADERS[name]()
    assert not missing.exists()


def test_env_var_to_missing_folder_in_datapath(monkeypatch, tmp_path):
    missing = tmp_path / "no_such_folder"
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(MissingFileError, match="no_such_folder"):
        find_data_dir()
    with pytest.raises(MissingFileError, match=ENV_VAR):
        data_path("nitime")
    # a file is not a folder either
    a_file = tmp_path / "data.txt"
    a_file.write_text("not a folder")
    monkeypatch.setenv(ENV_VAR, str(a_file))
    with pytest.raises(MissingFileError, match="not a folder"):
        find_data_dir()


@pytest.mark.parametrize(
    "name, files",
    [
        ("physionet", ["S001R04.edf", "S001R08.edf", "S001R12.edf"]),
        ("haxby", ["attributes_literal.txt"]),
        ("grasshopper", ["grasshopper_spike_times1.txt"]),
    ],
)
def test_data_dir_empty_folder_names_missing_files(name, files, tmp_path):
    with pytest.raises(MissingFileError) as info:
        LOADERS[name](data_dir=tmp_path)
    for f in files:
        assert f in str(info.value)
    with pytest.raises(MissingFileError, match="not found"):
        LOADERS[name](data_dir=tmp_path / "absent")


def test_data_dir_with_partial_haxby(tmp_path, haxby_dir):
    (tmp_path / "haxby").mkdir()
    shutil.copy(haxby_dir / "attributes_literal.txt", tmp_path / "haxby")
    with pytest.raises(MissingFileError, match="bold.nii.gz"):
        load_haxby(data_dir=tmp_path)


def test_explicit_data_dir_beats_env_var(monkeypatch, tmp_path, data_dir, nitime_dir):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "no_such_folder"))
    bd = load_grasshopper(data_dir=data_dir)
    assert bd.shape == (10, 2, 100)


# ----------------------------------------------------------------------
# find_data_dir and NEUROENC_DATA


def test_find_data_dir_env_real_folder(monkeypatch, data_dir):
    monkeypatch.setenv(ENV_VAR, str(data_dir))
    path, origin = find_data_dir()
    assert path == data_dir.resolve()
    assert origin == f"${ENV_VAR}"
    assert data_path("nitime", "grasshopper_spike_times1.txt").is_file()
    with pytest.raises(MissingFileError, match="nope.txt"):
        data_path("nitime", "nope.txt")


def test_find_data_dir_env_symlink(monkeypatch, tmp_path, data_dir, nitime_dir):
    link = tmp_path / "linked_data"
    try:
        link.symlink_to(data_dir, target_is_directory=True)
    except OSError:
        pytest.skip("symlinks not supported here")
    monkeypatch.setenv(ENV_VAR, str(link))
    path, origin = find_data_dir()
    assert origin == f"${ENV_VAR}"
    assert path == link.resolve() == data_dir.resolve()
    assert load_grasshopper().shape == (10, 2, 100)


def test_find_data_dir_env_copy_is_used(monkeypatch, tmp_path, nitime_dir):
    copy = tmp_path / "my data"
    (copy / "nitime").mkdir(parents=True)
    first = np.loadtxt(nitime_dir / "grasshopper_spike_times1.txt")[:100]
    np.savetxt(copy / "nitime" / "grasshopper_spike_times1.txt", first)
    shutil.copy(nitime_dir / "grasshopper_spike_times2.txt", copy / "nitime")
    monkeypatch.setenv(ENV_VAR, str(copy))
    assert find_data_dir() == (copy.resolve(), f"${ENV_VAR}")
    bd = load_grasshopper()  # reads the (modified) copy, not the real folder
    np.testing.assert_array_equal(bd.data.sum(axis=(0, 2)), [100, 868])
    assert str(copy.resolve()) in str(bd.provenance[0]["params"]["source"])
    with pytest.raises(MissingFileError):
        load_haxby()  # the copy has no haxby folder: no fallback to the real one


def test_find_data_dir_env_user_home(monkeypatch, tmp_path):
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(ENV_VAR, "~/data")
    assert find_data_dir() == ((tmp_path / "data").resolve(), f"${ENV_VAR}")


def test_find_data_dir_relative_to_cwd(monkeypatch, tmp_path, no_env):
    work = tmp_path / "checkout"
    work.mkdir()
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert find_data_dir() == (shared.resolve(), "../shared/data")


def test_find_data_dir_beside_repository(monkeypatch, tmp_path, no_env):
    monkeypatch.chdir(tmp_path)  # tmp_path/../shared/data does not exist
    assert not (tmp_path.parent / "shared" / "data").exists()
    beside = Path(neuroenc.datapath.__file__).resolve().parents[1].parent / "shared" / "data"
    expected = (beside.resolve(), "shared/data beside the repository") if beside.is_dir() else None
    assert find_data_dir() == expected


def test_empty_env_var_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, "")
    work = tmp_path / "checkout"
    work.mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert find_data_dir() == ((tmp_path / "shared" / "data").resolve(), "../shared/data")
    assert os.environ[ENV_VAR] == ""
