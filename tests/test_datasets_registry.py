"""Dataset registry, built-in datasets, MOABB adapter and YAML user datasets."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuroenc.datasets.moabb_adapter import MoabbDataset, is_moabb_dataset
from neuroenc.datasets.paradigms import ERP, FMRICategory, LeftRightImagery
from neuroenc.datasets.registry import (
    Dataset,
    Haxby,
    PhysionetMI,
    as_dataset,
    dataset_search_path,
    get_dataset,
    list_datasets,
    register_dataset,
)
from neuroenc.datasets.user import UserDataset
from neuroenc.errors import CorruptFileError, DataError, MissingFileError, ModalityError, UnknownNameError

REPO_DATASETS = Path(__file__).resolve().parents[1] / "datasets"

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::RuntimeWarning")


@pytest.fixture(autouse=True)
def _mne_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MNE_DATA", str(tmp_path / "mne_data"))


def fake(**kwargs):
    from moabb.datasets.fake import FakeDataset

    opts = dict(
        event_list=["left_hand", "right_hand"], n_sessions=2, n_runs=2, n_subjects=3, seed=3, duration=30, n_events=10
    )
    opts.update(kwargs)
    return FakeDataset(**opts)


# ----------------------------------------------------------------------
# registry


def test_list_datasets_has_builtins_and_yaml(data_dir):
    table = list_datasets()
    assert list(table.columns) == ["name", "paradigm", "subjects", "sessions", "source", "available"]
    rows = table.set_index("name")
    assert rows.loc["PhysionetMI", "paradigm"] == "imagery" and bool(rows.loc["PhysionetMI", "available"])
    assert rows.loc["Haxby", "paradigm"] == "fmri_category" and rows.loc["Haxby", "subjects"] == 1
    for name in ("physionet_mi", "haxby", "eeglab_erp"):
        assert bool(rows.loc[name, "available"]), name


def test_get_dataset_unknown_lists_known():
    with pytest.raises(UnknownNameError, match="PhysionetMI.*Haxby|Haxby.*PhysionetMI"):
        get_dataset("NoSuchData")
    with pytest.raises(UnknownNameError, match="MOABB"):
        get_dataset("moabb:NoSuchData")
    with pytest.raises(UnknownNameError):
        get_dataset(3)


def test_get_dataset_moabb_prefix_and_adapter():
    ds = get_dataset("moabb:FakeDataset", event_list=["left_hand", "right_hand"], n_subjects=2, seed=1)
    assert isinstance(ds, MoabbDataset)
    assert ds.subject_list == [1, 2] and ds.paradigm == "imagery" and ds.interval == (0.0, 3.0)
    assert ds.events == {"left_hand": 1, "right_hand": 2} and ds.event_id is ds.events
    assert ds.available() and ds.unit_factor == 1e6


def test_moabb_adapter_get_data_structure():
    raw_ds = fake()
    assert is_moabb_dataset(raw_ds) and not is_moabb_dataset(PhysionetMI())
    ds = as_dataset(raw_ds)
    data = ds.get_data([2])
    assert list(data) == [2] and list(data[2]) == ["0", "1"] and list(data[2]["0"]) == ["0", "1"]
    assert isinstance(data[2]["0"]["0"], mne.io.BaseRaw)
    with pytest.raises(UnknownNameError, match="subject"):
        ds.get_data([4])
    with pytest.raises(DataError, match="MOABB dataset"):
        MoabbDataset(PhysionetMI())


def test_register_dataset_class_and_instance():
    class Tiny(Dataset):
        code = "TinyTest"
        subject_list = [1]

        def _get_single_subject_data(self, subject):
            return {"0": {"0": None}}

    try:
        assert register_dataset(Tiny) is Tiny
        assert isinstance(get_dataset("TinyTest"), Tiny)
        inst = Tiny()
        register_dataset(inst, name="TinyInstance")
        assert get_dataset("TinyInstance") is inst
        with pytest.raises(DataError, match="no arguments"):
            get_dataset("TinyInstance", x=1)
        assert "TinyTest" in set(list_datasets()["name"])
    finally:
        from neuroenc.datasets import registry

        registry._REGISTRY.pop("TinyTest", None)
        registry._REGISTRY.pop("TinyInstance", None)
    with pytest.raises(DataError, match="Dataset class or instance"):
        register_dataset(object)


def test_as_dataset_inputs(data_dir):
    assert isinstance(as_dataset("PhysionetMI"), PhysionetMI)
    assert isinstance(as_dataset(REPO_DATASETS / "haxby.yml"), UserDataset)
    with pytest.raises(DataError, match="Expected"):
        as_dataset(3.5)


# ----------------------------------------------------------------------
# built-in datasets on the real data


def test_physionet_structure_and_events(eegbci_dir):
    ds = PhysionetMI(data_dir=eegbci_dir.parent.parent)
    assert ds.subject_list == [1]
    data = ds.get_data([1])
    assert list(data[1]["0"]) == ["4", "6", "8", "10", "12", "14"]
    raw = data[1]["0"]["4"]
    assert raw.info["sfreq"] == 160 and len(raw.ch_names) == 64 and "C3" in raw.ch_names
    counts = pd.Series(raw.annotations.description).value_counts()
    assert counts["left_hand"] == 8 and counts["right_hand"] == 7 and counts["rest"] == 15
    assert set(data[1]["0"]["6"].annotations.description) == {"rest", "hands", "feet"}
    executed = PhysionetMI(imagined=False, executed=True)
    assert executed.tasks == ["movement_lr", "movement_ff"]
    with pytest.raises(MissingFileError, match="allow_download"):
        ds.get_data([2])
    with pytest.raises(UnknownNameError, match="subject"):
        ds.get_data([500])
    with pytest.raises(DataError, match="imagined"):
        PhysionetMI(imagined=False)


def test_physionet_without_data_folder_has_no_subjects(tmp_path):
    ds = PhysionetMI(data_dir=tmp_path)
    assert ds.subject_list == [] and not ds.available()


@pytest.fixture(scope="module")
def haxby_runs(haxby_dir):
    return Haxby(data_dir=haxby_dir.parent).get_data()[1]["0"]


def test_haxby_runs(haxby_runs):
    runs = haxby_runs
    assert list(runs) == [str(r) for r in range(12)]
    assert all(bd.modality == "fmri" and bd.data.shape == (8, 530) for bd in runs.values())
    with pytest.raises(UnknownNameError, match="mode"):
        Haxby(mode="slices")


# ----------------------------------------------------------------------
# YAML user datasets


def write(tmp_path, text, name="d.yml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_physionet_matches_builtin(eegbci_dir):
    user = get_dataset("physionet_mi")
    assert user.code == "physionet_mi" and user.events == {"left_hand": 1, "right_hand": 2}
    X, y, meta = LeftRightImagery().get_data(user)
    X2, y2, _ = LeftRightImagery().get_data(PhysionetMI())
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert list(meta["run"].unique()) == ["04", "08", "12"]


def test_yaml_haxby_matches_builtin(haxby_runs):
    X, y, meta = FMRICategory(categories=["face", "cat"]).get_data(get_dataset("haxby"))
    runs = haxby_runs
    ref = np.concatenate([bd.data[bd.obs["condition"].isin(["face", "cat"]).to_numpy()] for bd in runs.values()])
    np.testing.assert_array_equal(X, ref)
    assert X.shape == (24, 530) and meta["run"].nunique() == 12


def test_yaml_eeglab_erp(mne_formats_dir):
    ds = get_dataset("eeglab_erp")
    X, y, meta = ERP(events=["square"], tmax=0.4).get_data(ds)
    raw = mne.io.read_raw(mne_formats_dir / "EEGLAB" / "test_raw.set", preload=True, verbose="error")
    raw.filter(1, 24, method="iir", picks="data", verbose=False)
    events, _ = mne.events_from_annotations(raw, event_id={"square": 1}, verbose=False)
    ref = mne.Epochs(raw, events, [1], 0.0, 0.4, baseline=None, preload=True, verbose=False).get_data() * 1e6
    np.testing.assert_allclose(X, ref, rtol=1e-12, atol=1e-9)
    assert list(np.unique(y)) == ["square"] and len(y) == 80


def test_yaml_env_var_and_template(tmp_path, monkeypatch, eegbci_dir):
    monkeypatch.setenv("MY_EEG", str(eegbci_dir))
    path = write(
        tmp_path,
        "name: mine\nparadigm: imagery\ninterval: [0, 3]\nevents: {left_hand: T1, right_hand: T2}\n"
        "subjects: [1]\nruns: [4]\npath: ${MY_EEG}/S{subject:03d}R{run:02d}.edf\n",
    )
    ds = UserDataset.from_yaml(path)
    assert ds.available() and ds.sessions == ["0"]
    X, y, meta = LeftRightImagery().get_data(ds)
    assert X.shape == (15, 64, 481) and list(meta["run"].unique()) == ["4"]


def test_yaml_bids(tmp_path):
    root = tmp_path / "bids"
    folder = root / "sub-01" / "ses-a" / "eeg"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    info = mne.create_info(["C3", "Cz", "C4"], 100.0, "eeg")
    raw = mne.io.RawArray(rng.standard_normal((3, 3000)) * 1e-5, info, verbose=False)
    stem = "sub-01_ses-a_task-mi_run-1"
    raw.save(folder / f"{stem}_eeg.fif", verbose=False)
    onsets = np.arange(2.0, 26.0, 3.0)
    kinds = ["left", "right"] * (len(onsets) // 2)
    pd.DataFrame({"onset": onsets, "duration": 2.0, "trial_type": kinds}).to_csv(
        folder / f"{stem}_events.tsv", sep="\t", index=False
    )
    path = write(
        tmp_path,
        f"name: bids_mi\nformat: bids\nroot: {root}\ntask: mi\nparadigm: imagery\ninterval: [0, 2]\n"
        "events: {left_hand: left, right_hand: right}\nsubjects: ['01']\nsessions: [a]\nruns: [1]\n",
    )
    ds = get_dataset(str(path))
    X, y, meta = LeftRightImagery(fmin=None, fmax=None).get_data(ds)
    assert X.shape == (len(onsets), 3, 201)
    np.testing.assert_array_equal(y, ["left_hand", "right_hand"] * (len(onsets) // 2))
    start = int(onsets[0] * 100)
    np.testing.assert_allclose(X[0], raw.get_data()[:, start : start + 201] * 1e6, rtol=1e-6)
    assert meta.iloc[0].to_dict() == {"subject": "01", "session": "a", "run": "1"}


VALID = "name: x\nparadigm: imagery\ninterval: [0, 1]\nevents: {a: 1}\nsubjects: [1]\npath: f\n"


@pytest.mark.parametrize(
    "text, error, match",
    [
        ("name: [unclosed\n", CorruptFileError, "not valid YAML"),
        ("- a\n- b\n", DataError, "mapping"),
        ("name: x\nparadigm: imagery\n", DataError, "missing key.*events"),
        (VALID + "foo: 1\n", DataError, "unknown key.*'foo'"),
        (VALID.replace("imagery", "ssvep"), DataError, "key 'paradigm'"),
        (VALID.replace("[0, 1]", "[2, 1]"), DataError, "key 'interval'"),
        (VALID.replace("{a: 1}", "{}"), DataError, "key 'events'"),
        (VALID.replace("{a: 1}", "{a: [1]}"), DataError, "key 'events.a'"),
        (VALID.replace("[1]", "[]"), DataError, "key 'subjects'"),
        (VALID.replace("name: x", "name: x y"), DataError, "key 'name'"),
        ("name: x\nformat: csv\n", DataError, "key 'format'"),
        (VALID.replace("path: f", "path: ${NO_SUCH_VAR_NE}/f"), DataError, "NO_SUCH_VAR_NE"),
    ],
)
def test_yaml_malformed(tmp_path, text, error, match):
    path = write(tmp_path, text)
    with pytest.raises(error, match=match) as info:
        UserDataset.from_yaml(path)
    assert str(path) in str(info.value)


def test_yaml_missing_file_and_bad_template(tmp_path):
    with pytest.raises(MissingFileError, match="not found"):
        UserDataset.from_yaml(tmp_path / "none.yml")
    path = write(
        tmp_path,
        VALID.replace("path: f", "path: '{nope}.edf'"),
    )
    ds = UserDataset.from_yaml(path)
    assert not ds.available()
    with pytest.raises(DataError, match="key 'path'"):
        ds.get_data()
    path = write(
        tmp_path,
        VALID.replace("path: f", f"path: {tmp_path}/s{{subject}}.edf"),
        "e.yml",
    )
    with pytest.raises(MissingFileError, match="s1.edf"):
        UserDataset.from_yaml(path).get_data()
    with pytest.raises(ModalityError, match="erp"):
        LeftRightImagery().get_data(get_dataset("eeglab_erp"))


def test_yaml_search_path_env(tmp_path, monkeypatch):
    write(
        tmp_path,
        "name: elsewhere\nparadigm: erp\ninterval: [0, 1]\nevents: [s]\nsubjects: [1]\npath: f.edf\n",
        "elsewhere.yml",
    )
    monkeypatch.setenv("NEUROENC_DATASETS", str(tmp_path))
    assert tmp_path in dataset_search_path()
    ds = get_dataset("elsewhere")
    assert ds.events == {"s": 1} and ds.paradigm == "erp"
    with pytest.raises(DataError, match="no arguments"):
        get_dataset("elsewhere", subjects=[1])
    write(tmp_path, "name: [broken\n", "broken.yml")
    table = list_datasets().set_index("name")
    assert "invalid" in table.loc["broken", "source"] and not table.loc["broken", "available"]
