"""Paradigms: parity with MOABB's paradigms on FakeDataset, real data, HDF5 cache and bad input."""

from __future__ import annotations

import functools
import warnings

import mne
import numpy as np
import pandas as pd
import pytest

from neuroenc import BrainData
from neuroenc.datasets.local import load_haxby
from neuroenc.datasets.moabb_adapter import MoabbDataset, from_moabb_paradigm
from neuroenc.datasets.paradigms import ERP, P300, FMRICategory, LeftRightImagery, MotorImagery
from neuroenc.datasets.registry import Haxby, PhysionetMI
from neuroenc.errors import DataError, EmptySelectionError, ModalityError, ShapeError, UnknownNameError

moabb = pytest.importorskip("moabb")
import moabb.paradigms as mp  # noqa: E402
from moabb.datasets.fake import FakeDataset  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::RuntimeWarning")


@pytest.fixture(autouse=True)
def _mne_data(tmp_path, monkeypatch):
    # FakeDataset only writes a temp folder; keep MNE's config away from the home folder.
    monkeypatch.setenv("MNE_DATA", str(tmp_path / "mne_data"))


def fake(paradigm="imagery", events=("left_hand", "right_hand"), **kwargs):
    opts = dict(n_sessions=2, n_runs=2, n_subjects=2, seed=7, duration=40, n_events=16, paradigm=paradigm)
    opts.update(kwargs)
    return FakeDataset(event_list=list(events), **opts)


def assert_same(ours, theirs):
    X, y, meta = ours
    X2, y2, meta2 = theirs
    assert X.shape == X2.shape
    np.testing.assert_allclose(X, X2, rtol=0, atol=1e-10 * np.abs(X2).max())
    np.testing.assert_array_equal(y, y2)
    pd.testing.assert_frame_equal(meta, meta2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(fmin=7, fmax=30, tmin=0.5, tmax=2.5, resample=100),
        dict(baseline=(-0.2, 0.0), channels=["C4", "C3"]),
    ],
)
def test_left_right_matches_moabb(kwargs):
    ds = fake()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mp.LeftRightImagery(**kwargs).get_data(ds, [1, 2])
    ours = LeftRightImagery(**kwargs).get_data(ds, [1, 2])
    assert_same(ours, theirs)
    assert ours[0].shape[0] > 0


@pytest.mark.parametrize(
    "kwargs",
    [dict(n_classes=2), dict(events=["fake3", "fake1"]), dict(n_classes=2, events=["fake3", "fake2", "fake1"])],
)
def test_motor_imagery_matches_moabb(kwargs):
    ds = fake(events=("fake1", "fake2", "fake3"), n_subjects=1)
    moabb_kwargs = dict(kwargs)
    if "events" in kwargs and "n_classes" not in kwargs:
        moabb_kwargs["n_classes"] = len(kwargs["events"])  # MOABB needs n_classes with events
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mp.MotorImagery(**moabb_kwargs).get_data(ds)
    assert_same(MotorImagery(**kwargs).get_data(ds), theirs)


def test_annotation_events_and_interval_offset_match_moabb():
    # No stim channel: events come from annotations, which MOABB shifts by interval[0].
    ds = fake(stim=False, annotations=True, n_subjects=1)
    ds.interval = [0.5, 2.5]
    theirs = mp.LeftRightImagery(tmin=0.25).get_data(ds)
    assert_same(LeftRightImagery(tmin=0.25).get_data(MoabbDataset(ds)), theirs)


def test_p300_matches_moabb():
    ds = fake(paradigm="p300", events=("Target", "NonTarget"), n_sessions=1)
    theirs = mp.P300(resample=64).get_data(ds)
    ours = P300(resample=64).get_data(ds)
    assert_same(ours, theirs)
    assert P300().scoring == "roc_auc"


def test_return_epochs_matches_moabb():
    ds = fake(n_subjects=1, n_sessions=1)
    ep, y, meta = LeftRightImagery().get_data(ds, return_epochs=True)
    ep2, y2, meta2 = mp.LeftRightImagery().get_data(ds, return_epochs=True)
    assert isinstance(ep, mne.BaseEpochs)
    np.testing.assert_allclose(ep.get_data(), ep2.get_data(), rtol=0, atol=1e-20)
    np.testing.assert_array_equal(y, y2)
    pd.testing.assert_frame_equal(meta, meta2)


def test_return_raws_matches_moabb():
    ds = fake(n_subjects=1, n_sessions=1)
    raws, y, meta = LeftRightImagery().get_data(ds, return_raws=True)
    raws2, y2, meta2 = mp.LeftRightImagery().get_data(ds, return_raws=True)
    assert len(raws) == len(raws2) == 2
    for a, b in zip(raws, raws2):
        np.testing.assert_allclose(a.get_data(), b.get_data(), rtol=0, atol=1e-20)
    np.testing.assert_array_equal(y, y2)
    pd.testing.assert_frame_equal(meta, meta2)


def test_moabb_paradigm_converts():
    ds = fake(n_subjects=1, n_sessions=1)
    theirs_p = mp.LeftRightImagery(fmin=9, fmax=25, tmax=2.0)
    ours_p = from_moabb_paradigm(theirs_p)
    assert isinstance(ours_p, LeftRightImagery) and (ours_p.fmin, ours_p.fmax, ours_p.tmax) == (9, 25, 2.0)
    assert_same(ours_p.get_data(ds), theirs_p.get_data(ds))
    with pytest.raises(DataError, match="MOABB paradigm"):
        from_moabb_paradigm(LeftRightImagery())
    with pytest.raises(UnknownNameError, match="no neuroenc equivalent"):
        from_moabb_paradigm(mp.FilterBankLeftRightImagery())


def test_scoring_and_validity():
    imagery, p300 = fake(n_subjects=1), fake(paradigm="p300", events=("Target", "NonTarget"), n_subjects=1)
    assert LeftRightImagery().scoring == "roc_auc"
    assert MotorImagery(n_classes=3).scoring == "accuracy"
    assert LeftRightImagery().is_valid(imagery) and not LeftRightImagery().is_valid(p300)
    assert P300().is_valid(p300) and not P300().is_valid(imagery)
    assert "PhysionetMI" in LeftRightImagery().datasets and "Haxby" in FMRICategory().datasets


def test_cache_second_call_does_not_load(tmp_path):
    ds = fake(n_subjects=2)
    calls = []
    original = ds._get_single_subject_data

    def counting(subject):
        calls.append(subject)
        return original(subject)

    ds._get_single_subject_data = counting
    paradigm = LeftRightImagery(resample=64, cache=tmp_path / "cache")
    first = paradigm.get_data(ds)
    assert calls == [1, 2]
    files = sorted((tmp_path / "cache").rglob("*.h5"))
    assert len(files) == 2 and all(f.name.startswith(("sub-1_", "sub-2_")) for f in files)
    second = LeftRightImagery(resample=64, cache=tmp_path / "cache").get_data(ds)
    assert calls == [1, 2]  # nothing reloaded
    for a, b in zip(first, second):
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b)
        else:
            np.testing.assert_array_equal(a, b)
    bd = paradigm.get_braindata(ds, 2)
    assert calls == [1, 2] and list(bd.obs.columns) == ["subject", "session", "run", "condition"]
    # Other parameters -> other digest -> recomputed.
    LeftRightImagery(resample=50, cache=tmp_path / "cache").get_data(ds, [1])
    assert calls == [1, 2, 1]
    assert paradigm.cache_file(ds, 1) != LeftRightImagery(resample=50, cache=tmp_path / "cache").cache_file(ds, 1)
    # A damaged cache file is rebuilt, not fatal.
    paradigm.cache_file(ds, 1).write_bytes(b"not hdf5")
    X, _, _ = paradigm.get_data(ds, [1])
    assert calls == [1, 2, 1, 1]
    np.testing.assert_array_equal(X, first[0][: len(X)])


def test_get_braindata_schema():
    ds = fake(n_subjects=1)
    bd = LeftRightImagery().get_braindata(ds, 1)
    X, y, meta = LeftRightImagery().get_data(ds)
    assert isinstance(bd, BrainData) and bd.modality == "eeg" and bd.sfreq == 128
    np.testing.assert_array_equal(bd.data, X)
    np.testing.assert_array_equal(bd.obs["condition"], y)
    assert bd.feature_names == ["C3", "Cz", "C4"]


def test_bad_input():
    imagery = fake(n_subjects=2)
    with pytest.raises(ModalityError, match="p300"):
        P300().get_data(imagery)
    with pytest.raises(ModalityError, match="fmri_category"):
        FMRICategory().get_data(imagery)
    with pytest.raises(UnknownNameError, match="feet"):
        MotorImagery(events=["left_hand", "feet"]).get_data(imagery)
    with pytest.raises(UnknownNameError, match="subject"):
        LeftRightImagery().get_data(imagery, subjects=[3])
    with pytest.raises(UnknownNameError, match="3 classes"):
        MotorImagery(n_classes=3).get_data(imagery)
    with pytest.raises(UnknownNameError, match="channel"):
        LeftRightImagery(channels=["C3", "Oz"]).get_data(imagery, [1])
    with pytest.raises(ShapeError, match="tmax"):
        LeftRightImagery(tmin=2, tmax=1)
    with pytest.raises(ShapeError, match="fmin"):
        MotorImagery(fmin=30, fmax=8)
    with pytest.raises(ShapeError, match="n_classes"):
        MotorImagery(n_classes=3, events=["a", "b"])
    with pytest.raises(DataError, match="events"):
        ERP(events="Target")
    with pytest.raises(DataError, match="only"):
        LeftRightImagery().get_data(imagery, return_epochs=True, return_raws=True)
    with pytest.raises(DataError, match="Expected"):
        LeftRightImagery().get_data(object())


def test_run_without_events_is_skipped_and_all_empty_raises():
    ds = fake(events=("left_hand", "right_hand", "feet"), n_subjects=1, n_sessions=1, n_runs=1, n_events=[1])
    # Only one event (left_hand) in the single run: the paradigm still works for it ...
    X, y, _ = MotorImagery(events=["left_hand"]).get_data(ds)
    assert list(y) == ["left_hand"]
    # ... but no feet cue exists at all.
    with pytest.raises(EmptySelectionError, match="feet"):
        MotorImagery(events=["feet"]).get_data(ds)


# ----------------------------------------------------------------------
# real data


def _mne_reference(eegbci_dir, runs, codes):
    raws = []
    for r in runs:
        raw = mne.io.read_raw_edf(eegbci_dir / f"S001R{r:02d}.edf", preload=True, verbose="error")
        raw.filter(8, 32, method="iir", picks="data", verbose=False)
        raws.append(raw)
    out = []
    for raw in raws:
        events, _ = mne.events_from_annotations(raw, event_id=codes, verbose=False)
        ep = mne.Epochs(raw, events, list(codes.values()), 0.0, 3.0, baseline=None, preload=True, verbose=False)
        out.append(ep.get_data() * 1e6)
    return np.concatenate(out)


def test_physionet_left_right_real(eegbci_dir, tmp_path):
    ds = PhysionetMI(data_dir=eegbci_dir.parent.parent)
    X, y, meta = LeftRightImagery(cache=tmp_path).get_data(ds)
    assert X.shape == (45, 64, 481)
    assert (y == "left_hand").sum() == 23 and (y == "right_hand").sum() == 22
    assert list(meta["run"].unique()) == ["4", "8", "12"] and set(meta["subject"]) == {1}
    np.testing.assert_allclose(X, _mne_reference(eegbci_dir, (4, 8, 12), {"T1": 2, "T2": 3}), rtol=1e-12, atol=1e-9)
    X2, y2, _ = LeftRightImagery(cache=tmp_path).get_data(ds)  # from the cache
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_physionet_motor_imagery_feet_hands_real(eegbci_dir):
    X, y, meta = MotorImagery(events=["hands", "feet"], tmax=2.0, resample=80).get_data(PhysionetMI())
    assert X.shape == (45, 64, 160)  # 321 samples at 160 Hz resampled to 80 Hz
    assert (y == "hands").sum() == 21 and (y == "feet").sum() == 24
    assert list(meta["run"].unique()) == ["6", "10", "14"]


def test_haxby_fmri_category_real(haxby_dir):
    ref = load_haxby("betas", data_dir=haxby_dir.parent)
    ds = Haxby(data_dir=haxby_dir.parent)
    ds._get_single_subject_data = functools.lru_cache(ds._get_single_subject_data)  # estimate the betas once
    X, y, meta = FMRICategory().get_data(ds)
    assert X.shape == (96, 530)
    order = np.lexsort((np.arange(len(ref.obs)), ref.obs["run"].to_numpy()))
    np.testing.assert_array_equal(X, ref.data[order])
    np.testing.assert_array_equal(y, ref.obs["condition"].to_numpy()[order])
    assert meta["run"].nunique() == 12
    X2, y2, _ = FMRICategory(categories=["face", "house"]).get_data(ds)
    assert X2.shape == (24, 530) and set(y2) == {"face", "house"}
    assert FMRICategory(categories=["face", "house"]).scoring == "roc_auc"
    with pytest.raises(UnknownNameError, match="dog"):
        FMRICategory(categories=["dog"]).get_data(Haxby())
    with pytest.raises(ModalityError, match="imagery"):
        LeftRightImagery().get_data(Haxby())
