"""Tests of the BrainData container and neuroenc.concatenate."""

from __future__ import annotations

import mne
import nibabel
import numpy as np
import pandas as pd
import pytest
from conftest import make_braindata
from hypothesis import given, settings
from hypothesis import strategies as st

import neuroenc
from neuroenc import BrainData, concatenate
from neuroenc.errors import (
    EmptySelectionError,
    LabelError,
    ModalityError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
)


def make_fmri(n_obs: int = 9, seed: int = 0, dtype=np.float64) -> BrainData:
    """Masked fMRI volumes: a 5x4x3 grid with about half the voxels in the mask."""
    rng = np.random.default_rng(seed)
    mask = rng.random((5, 4, 3)) < 0.5
    n_vox = int(mask.sum())
    affine = np.array([[2.0, 0, 0, -10], [0, 2.5, 0, 4], [0, 0, 3, 1], [0, 0, 0, 1]])
    ijk = np.argwhere(mask)
    features = pd.DataFrame(
        {"name": [f"v{i}_{j}_{k}" for i, j, k in ijk], "i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2]}
    )
    obs = pd.DataFrame(
        {"condition": [("face", "house", "cat")[i % 3] for i in range(n_obs)], "run": np.arange(n_obs) // 3}
    )
    data = rng.standard_normal((n_obs, n_vox)).astype(dtype)
    return BrainData(data, obs, "fmri", features=features, affine=affine, mask=mask)


def volume_from_mask(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reference scatter of (n, n_vox) values into (x, y, z, n) volumes, via explicit voxel loops."""
    out = np.zeros(mask.shape + (values.shape[0],), dtype=values.dtype)
    for col, (i, j, k) in enumerate(np.argwhere(mask)):
        out[i, j, k, :] = values[:, col]
    return out


def montage_name() -> str:
    names = mne.channels.get_builtin_montages()
    return "colin27_1005" if "colin27_1005" in names else "standard_1005"


@pytest.fixture
def bd() -> BrainData:
    return make_braindata(n_obs=12, n_features=5, n_times=7)


@pytest.fixture(scope="module")
def eeg_real(eegbci_dir) -> BrainData:
    """Imagined left/right fist, two runs, with standard electrode positions."""
    raws = []
    for run in (4, 8):
        raw = mne.io.read_raw_edf(eegbci_dir / f"S001R{run:02d}.edf", preload=True, verbose="error")
        mne.datasets.eegbci.standardize(raw)
        raw.set_montage(montage_name(), verbose="error")
        raws.append(raw)
    return neuroenc.io.read_eeg(raws, {"left": "T1", "right": "T2"}, tmin=0.0, tmax=1.0)


# --------------------------------------------------------------------------
# construction
# --------------------------------------------------------------------------
def test_construction_basics():
    data = np.arange(24.0).reshape(2, 3, 4)
    obs = pd.DataFrame({"condition": ["x", "y"], "run": [1, 2]}, index=[10, 20])
    b = BrainData(data, obs, "meg", sfreq=50)
    assert b.shape == (2, 3, 4) and (b.n_obs, b.n_features, b.n_times) == (2, 3, 4)
    assert len(b) == 2
    assert b.feature_names == ["f0", "f1", "f2"]
    assert list(b.obs.index) == [0, 1]  # fresh RangeIndex
    np.testing.assert_array_equal(b.times, np.arange(4) / 50)
    assert b.sfreq == 50.0
    assert list(b.conditions) == ["x", "y"]
    assert b.provenance == [] and b.info is None and b.mask is None
    assert "meg, 2 obs x 3 features x 4 times, sfreq=50 Hz" in repr(b)
    b2 = BrainData(np.ones((3, 2), dtype=np.int32), ["a", "b", "a"], "spikes")
    assert b2.data.dtype == np.float64 and b2.n_times is None and b2.times is None and b2.sfreq is None


@pytest.mark.parametrize(
    "conditions",
    [["a", "b", "a"], ("a", "b", "a"), np.array(["a", "b", "a"]), pd.Series(["a", "b", "a"], index=[5, 6, 7])],
    ids=["list", "tuple", "ndarray", "series"],
)
def test_conditions_given_as_sequence(conditions):
    b = BrainData(np.zeros((3, 2)), conditions, "eeg")
    assert list(b.obs.columns) == ["condition"]
    assert list(b.conditions) == ["a", "b", "a"]
    assert list(b.obs.index) == [0, 1, 2]


def test_obs_without_condition_column():
    with pytest.raises(LabelError, match=r"obs needs a 'condition' column; it has: label, run\."):
        BrainData(np.zeros((2, 3)), pd.DataFrame({"label": ["a", "b"], "run": [1, 1]}), "eeg")


@pytest.mark.parametrize("n_labels", [2, 4])
def test_obs_length_mismatch(n_labels):
    with pytest.raises(LabelError, match=rf"obs has {n_labels} entries but there are 3 observations"):
        BrainData(np.zeros((3, 2)), ["a"] * n_labels, "eeg")


@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_nonfinite_data_position(bad, kind):
    data = np.zeros((3, 4, 5))
    data[1, 2, 3] = bad
    with pytest.raises(NonFiniteError, match=rf"data contains {kind} at index \(1, 2, 3\)"):
        BrainData(data, ["a"] * 3, "eeg", sfreq=10)
    data2 = np.zeros((3, 4), dtype=np.float32)
    data2[2, 0] = bad
    with pytest.raises(NonFiniteError, match=rf"{kind} at index \(2, 0\)"):
        BrainData(data2, ["a"] * 3, "fmri")


def test_data_dimensions():
    with pytest.raises(ShapeError, match=r"data has 1 dimension\(s\).*expected 2 or 3"):
        BrainData(np.zeros(3), ["a"] * 3, "eeg")
    with pytest.raises(ShapeError, match=r"expected 2 or 3"):
        BrainData(np.zeros((3, 1, 1, 1)), ["a"] * 3, "eeg")
    with pytest.raises(ShapeError, match="numeric"):
        BrainData(np.array([["a"], ["b"]]), ["a"] * 2, "eeg")


def test_3d_data_needs_times_or_sfreq():
    with pytest.raises(ShapeError, match="3-D data needs times or sfreq"):
        BrainData(np.zeros((2, 3, 4)), ["a", "b"], "eeg")


def test_times_length_mismatch():
    with pytest.raises(LabelError, match="times has 3 entries but there are 4 time samples in data"):
        BrainData(np.zeros((2, 3, 4)), ["a", "b"], "eeg", times=[0.0, 0.1, 0.2])


@pytest.mark.parametrize("times", [[0.0, 0.1, 0.1, 0.2], [0.3, 0.2, 0.1, 0.0], [0.0, 0.2, 0.1, 0.3]])
def test_times_not_increasing(times):
    with pytest.raises(ShapeError, match="times must be strictly increasing"):
        BrainData(np.zeros((2, 3, 4)), ["a", "b"], "eeg", times=times)


def test_times_with_2d_data_and_bad_sfreq():
    with pytest.raises(ShapeError, match="no time axis"):
        BrainData(np.zeros((2, 3)), ["a", "b"], "eeg", times=[0.0, 1.0, 2.0])
    for sfreq in (0, -100, np.inf, np.nan):
        with pytest.raises(ShapeError, match="sfreq must be positive and finite"):
            BrainData(np.zeros((2, 3, 4)), ["a", "b"], "eeg", sfreq=sfreq)


def test_sfreq_inferred_checked_against_times():
    times = -0.2 + np.arange(50) / 250.0
    b = BrainData(np.zeros((1, 1, 50)), ["a"], "eeg", times=times)
    assert b.sfreq == pytest.approx(250.0, rel=1e-9)
    # irregular sampling: no sampling frequency
    b = BrainData(np.zeros((1, 1, 3)), ["a"], "spikes", times=[0.0, 0.1, 0.3])
    assert b.sfreq is None
    # a given sfreq must describe the given times
    with pytest.raises(ShapeError, match="sfreq 50 Hz does not match the spacing of times"):
        BrainData(np.zeros((1, 1, 50)), ["a"], "eeg", times=times, sfreq=50)
    assert BrainData(np.zeros((1, 1, 50)), ["a"], "eeg", times=times, sfreq=250).sfreq == 250.0


def test_duplicate_feature_names():
    with pytest.raises(LabelError, match="Feature names must be unique; 'Cz' is repeated"):
        BrainData(np.zeros((2, 3)), ["a", "b"], "eeg", features=["Fz", "Cz", "Cz"])
    with pytest.raises(LabelError, match="features has 2 entries but there are 3 features in data"):
        BrainData(np.zeros((2, 3)), ["a", "b"], "eeg", features=["Fz", "Cz"])
    with pytest.raises(LabelError, match="'name' column"):
        BrainData(np.zeros((2, 3)), ["a", "b"], "eeg", features=pd.DataFrame({"label": ["x", "y", "z"]}))


def test_mask_and_affine_checks():
    mask = np.zeros((2, 2, 2), bool)
    mask[0, 0, :] = True
    with pytest.raises(LabelError, match="mask has 2 voxels but data has 3 features"):
        BrainData(np.zeros((2, 3)), ["a", "b"], "fmri", mask=mask, affine=np.eye(4))
    with pytest.raises(ShapeError, match="A mask needs its affine"):
        BrainData(np.zeros((2, 2)), ["a", "b"], "fmri", mask=mask)
    with pytest.raises(ShapeError, match="mask must be a 3-D volume"):
        BrainData(np.zeros((2, 2)), ["a", "b"], "fmri", mask=np.ones((2, 1)), affine=np.eye(4))
    with pytest.raises(ShapeError, match=r"affine must be 4x4, got shape \(3, 3\)"):
        BrainData(np.zeros((2, 2)), ["a", "b"], "fmri", mask=mask, affine=np.eye(3))
    b = BrainData(np.zeros((2, 2)), ["a", "b"], "fmri", mask=mask.astype(int), affine=np.eye(4))
    assert b.mask.dtype == bool


def test_unknown_modality_lists_choices():
    with pytest.raises(UnknownNameError) as info:
        BrainData(np.zeros((2, 3)), ["a", "b"], "pet")
    msg = str(info.value)
    assert "Unknown modality 'pet'" in msg
    for m in neuroenc.braindata.MODALITIES:
        assert repr(m) in msg


def test_info_must_match_features():
    info = mne.create_info(["Fz", "Cz", "Pz"], 100.0, "eeg")
    b = BrainData(np.zeros((2, 3, 4)), ["a", "b"], "eeg", features=["Fz", "Cz", "Pz"], info=info, sfreq=100)
    assert b.info is info
    with pytest.raises(LabelError, match=r"info\['ch_names'\] must equal the feature names"):
        BrainData(np.zeros((2, 3, 4)), ["a", "b"], "eeg", features=["Cz", "Fz", "Pz"], info=info, sfreq=100)
    with pytest.raises(LabelError, match=r"info\['ch_names'\]"):
        BrainData(np.zeros((2, 3, 4)), ["a", "b"], "eeg", info=info, sfreq=100)  # default names f0..f2
    with pytest.raises(ModalityError, match="only meaningful for EEG/MEG/iEEG, not fmri"):
        BrainData(np.zeros((2, 3)), ["a", "b"], "fmri", features=["Fz", "Cz", "Pz"], info=info)


# --------------------------------------------------------------------------
# selection
# --------------------------------------------------------------------------
def test_select_by_criteria(bd):
    out = bd.select(condition="a")
    keep = bd.obs["condition"].to_numpy() == "a"
    np.testing.assert_array_equal(out.data, bd.data[keep])
    pd.testing.assert_frame_equal(out.obs, bd.obs[keep].reset_index(drop=True))

    out = bd.select(condition=["a", "c"], run=2)
    keep = bd.obs["condition"].isin(["a", "c"]).to_numpy() & (bd.obs["run"].to_numpy() == 2)
    assert keep.sum() == out.n_obs > 0
    np.testing.assert_array_equal(out.data, bd.data[keep])
    assert set(out.obs["condition"]) == {"a", "c"} and set(out.obs["run"]) == {2}

    out = bd.select(run=np.int64(1), condition=("b",))
    np.testing.assert_array_equal(out.data, bd.data[(bd.obs["run"] == 1).to_numpy() & (bd.conditions == "b")])


def test_select_by_query(bd):
    out = bd.select("run == 2 and condition != 'a'")
    ref = bd.obs.query("run == 2 and condition != 'a'")
    np.testing.assert_array_equal(out.data, bd.data[ref.index.to_numpy()])
    pd.testing.assert_frame_equal(out.obs, ref.reset_index(drop=True))
    both = bd.select("run == 2", condition="b")
    assert list(both.obs["condition"]) == ["b"] * both.n_obs and set(both.obs["run"]) == {2}


def test_select_errors(bd):
    with pytest.raises(UnknownNameError, match=r"Unknown obs column: 'subject'\. Available: 'condition', 'run'"):
        bd.select(subject="01")
    with pytest.raises(UnknownNameError, match="Cannot evaluate query 'subject == 1'"):
        bd.select("subject == 1")
    with pytest.raises(EmptySelectionError, match="No observation matches"):
        bd.select(condition="zzz")
    with pytest.raises(EmptySelectionError):
        bd.select("run > 10")
    with pytest.raises(EmptySelectionError):
        bd.select("run == 1", run=2)


@given(
    conds=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=20),
    wanted=st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=3),
)
@settings(max_examples=40, deadline=None)
def test_select_matches_numpy_mask(conds, wanted):
    n = len(conds)
    b = BrainData(np.arange(n * 2.0).reshape(n, 2), conds, "fmri")
    keep = np.isin(np.array(conds), wanted)
    if not keep.any():
        with pytest.raises(EmptySelectionError):
            b.select(condition=wanted)
        return
    out = b.select(condition=wanted)
    np.testing.assert_array_equal(out.data, b.data[keep])
    assert list(out.conditions) == [c for c in conds if c in wanted]


def test_getitem(bd):
    one = bd[3]
    assert one.n_obs == 1
    np.testing.assert_array_equal(one.data, bd.data[[3]])
    assert bd[-1].obs.iloc[0].to_dict() == bd.obs.iloc[-1].to_dict()
    part = bd[2:8:2]
    np.testing.assert_array_equal(part.data, bd.data[2:8:2])
    pd.testing.assert_frame_equal(part.obs, bd.obs.iloc[2:8:2].reset_index(drop=True))
    mask = bd.conditions == "b"
    np.testing.assert_array_equal(bd[mask].data, bd.data[mask])
    assert list(bd[mask].conditions) == ["b"] * int(mask.sum())
    idx = np.array([5, 0, 5])
    np.testing.assert_array_equal(bd[idx].data, bd.data[idx])
    assert bd[np.int64(2)].n_obs == 1
    with pytest.raises(EmptySelectionError, match="matched no observation"):
        bd[np.zeros(bd.n_obs, bool)]
    with pytest.raises(EmptySelectionError):
        bd[5:5]
    with pytest.raises(IndexError):
        bd[bd.n_obs]


def test_operations_do_not_change_the_original(bd):
    before = bd.data.copy()
    obs_before = bd.obs.copy()
    results = [bd.select(condition="a"), bd[1:4], bd.pick_features([0, 2]), bd.crop(0.0, 0.03), bd.average()]
    for r in results:
        r.data[...] = 1e6
        r.obs["condition"] = "zz"
    np.testing.assert_array_equal(bd.data, before)
    pd.testing.assert_frame_equal(bd.obs, obs_before)
    assert bd.provenance == []


# --------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------
def test_pick_features_by_name_and_index(bd):
    by_name = bd.pick_features(["ch3", "ch0"])
    assert by_name.feature_names == ["ch3", "ch0"]
    np.testing.assert_array_equal(by_name.data, bd.data[:, [3, 0]])
    assert list(by_name.features.index) == [0, 1]
    by_idx = bd.pick_features([3, 0])
    np.testing.assert_array_equal(by_idx.data, by_name.data)
    pd.testing.assert_frame_equal(by_idx.features, by_name.features)
    assert bd.pick_features(np.array([-1])).feature_names == ["ch4"]
    assert bd.pick_features(np.array(["ch2"])).feature_names == ["ch2"]
    np.testing.assert_array_equal(bd.pick_features(range(2)).data, bd.data[:, :2])


def test_pick_features_errors(bd):
    with pytest.raises(UnknownNameError, match=r"Unknown feature: 'Cz'\. Available: 'ch0', 'ch1'"):
        bd.pick_features(["ch1", "Cz"])
    with pytest.raises(ShapeError, match="Feature index out of range for 5 features"):
        bd.pick_features([0, 5])
    with pytest.raises(ShapeError, match="out of range"):
        bd.pick_features([-6])
    with pytest.raises(EmptySelectionError, match="No feature picked"):
        bd.pick_features([])


def test_pick_features_fmri_updates_mask():
    full = make_fmri()
    picks = [1, 4, 5, 9, full.n_features - 1]
    sub = full.pick_features(picks)
    assert int(sub.mask.sum()) == len(picks)
    assert not np.any(sub.mask & ~full.mask)
    # voxel indices of the features agree with the new mask (C order)
    np.testing.assert_array_equal(np.argwhere(sub.mask), sub.features[["i", "j", "k"]].to_numpy())
    # to_nifti of the picked data == the full image restricted to the picked voxels
    img_full = full.to_nifti().get_fdata()
    img_sub = sub.to_nifti().get_fdata()
    np.testing.assert_array_equal(img_sub, np.where(sub.mask[..., None], img_full, 0.0))
    np.testing.assert_array_equal(sub.affine, full.affine)
    # by names gives the same
    by_name = full.pick_features([full.feature_names[i] for i in picks])
    np.testing.assert_array_equal(by_name.mask, sub.mask)
    with pytest.raises(ShapeError, match="in mask order"):
        full.pick_features([4, 1])


def test_pick_features_picks_mne_info():
    names = ["Fz", "Cz", "Pz", "Oz"]
    info = mne.create_info(names, 100.0, ["eeg", "eeg", "eeg", "eog"])
    info.set_montage(montage_name(), on_missing="ignore", verbose="error")
    data = np.random.default_rng(1).standard_normal((4, 4, 10))
    b = BrainData(data, ["a", "b", "a", "b"], "eeg", features=names, info=info, sfreq=100)
    sub = b.pick_features(["Pz", "Fz"])
    assert sub.info["ch_names"] == ["Pz", "Fz"]
    np.testing.assert_array_equal(sub.info["chs"][0]["loc"], info["chs"][2]["loc"])
    assert np.all(np.isfinite(sub.info["chs"][0]["loc"][:3]))
    assert b.info["ch_names"] == names  # original info untouched
    ep = sub.to_mne()
    assert ep.ch_names == ["Pz", "Fz"]
    np.testing.assert_array_equal(ep.get_data(), data[:, [2, 0]])


# --------------------------------------------------------------------------
# crop
# --------------------------------------------------------------------------
def test_crop(bd):
    out = bd.crop(0.02, 0.05)
    keep = (bd.times >= 0.02 - 1e-9) & (bd.times <= 0.05 + 1e-9)
    assert keep.sum() == 4
    np.testing.assert_array_equal(out.times, bd.times[keep])
    np.testing.assert_array_equal(out.data, bd.data[:, :, keep])
    assert out.sfreq == bd.sfreq
    assert bd.crop(tmax=0.01).n_times == 2
    assert bd.crop(tmin=0.05).n_times == 2
    assert bd.crop().n_times == bd.n_times
    with pytest.raises(EmptySelectionError, match=r"No sample in \[1, 2\]; times span 0 to 0.06 s"):
        bd.crop(1, 2)
    with pytest.raises(ModalityError, match="time axis"):
        make_braindata(n_times=None).crop(0, 1)


# --------------------------------------------------------------------------
# average
# --------------------------------------------------------------------------
def groupby_reference(b: BrainData, keys: list[str]):
    flat = pd.DataFrame(b.data.reshape(b.n_obs, -1))
    for k in keys:
        flat[k] = b.obs[k].to_numpy()
    grouped = flat.groupby(keys, sort=True)
    mean = grouped.mean()
    size = grouped.size()
    return mean.to_numpy().reshape((len(mean),) + b.data.shape[1:]), mean.index.to_frame(index=False), size.to_numpy()


@pytest.mark.parametrize("n_times", [7, None])
def test_average_by_condition_equals_groupby_mean(n_times):
    b = make_braindata(n_obs=17, n_times=n_times, seed=3)
    avg = b.average()
    ref, keys, size = groupby_reference(b, ["condition"])
    np.testing.assert_allclose(avg.data, ref, rtol=1e-12, atol=1e-12)
    assert list(avg.obs.columns) == ["condition", "n_averaged"]
    assert list(avg.conditions) == list(keys["condition"]) == ["a", "b", "c"]
    np.testing.assert_array_equal(avg.obs["n_averaged"], size)
    assert avg.obs["n_averaged"].sum() == b.n_obs
    assert avg.times is b.times or np.array_equal(avg.times, b.times)


def test_average_within_run():
    b = make_braindata(n_obs=18, n_runs=3, seed=4)
    b.obs["subject"] = "s1"
    avg = b.average(within="run")
    ref, keys, size = groupby_reference(b, ["condition", "run"])
    np.testing.assert_allclose(avg.data, ref, rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(avg.obs[["condition", "run"]], keys, check_dtype=False)
    np.testing.assert_array_equal(avg.obs["n_averaged"], size)
    assert avg.n_obs == 9 and list(avg.obs.columns) == ["condition", "run", "n_averaged"]
    # the same groups through ``by``
    avg2 = b.average(by=["run", "condition"])
    ref2, keys2, _ = groupby_reference(b, ["run", "condition"])
    np.testing.assert_allclose(avg2.data, ref2, rtol=1e-12, atol=1e-12)
    assert list(avg2.obs["run"]) == list(keys2["run"])


@given(
    conds=st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=25),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_average_property(conds, seed):
    n = len(conds)
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({"condition": conds, "run": rng.integers(0, 3, n)})
    b = BrainData(rng.standard_normal((n, 3, 2)), obs, "eeg", sfreq=10)
    avg = b.average(within="run")
    ref, keys, size = groupby_reference(b, ["condition", "run"])
    np.testing.assert_allclose(avg.data, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(avg.obs["n_averaged"], size)
    assert list(avg.obs["condition"]) == list(keys["condition"])


def test_average_preserves_float32():
    b = make_fmri(n_obs=12, dtype=np.float32)
    avg = b.average()
    assert avg.data.dtype == np.float32
    ref = pd.DataFrame(b.data.astype(np.float64)).groupby(b.obs["condition"].to_numpy()).mean().to_numpy()
    np.testing.assert_allclose(avg.data, ref, rtol=1e-5, atol=1e-6)
    # mask and affine carried over, so the averages are images again
    assert avg.to_nifti().shape == b.mask.shape + (3,)


def test_average_errors(bd):
    with pytest.raises(LabelError, match="average needs 'condition'"):
        bd.average(by="run")
    with pytest.raises(UnknownNameError, match="Unknown obs column: 'session'"):
        bd.average(within="session")


# --------------------------------------------------------------------------
# concatenate
# --------------------------------------------------------------------------
def test_concatenate_with_keys_and_obs_union():
    a = make_braindata(n_obs=6, seed=1)
    b = make_braindata(n_obs=4, seed=2)
    b.obs["rt"] = np.linspace(0.3, 0.6, 4)
    out = concatenate([a, b], keys=["s01", "s02"], key_name="subject")
    np.testing.assert_array_equal(out.data, np.concatenate([a.data, b.data]))
    assert list(out.obs.columns) == ["condition", "run", "subject", "rt"]
    assert list(out.obs["subject"]) == ["s01"] * 6 + ["s02"] * 4
    assert out.obs["rt"].iloc[:6].isna().all()
    np.testing.assert_array_equal(out.obs["rt"].iloc[6:], b.obs["rt"])
    assert list(out.obs.index) == list(range(10))
    assert out.feature_names == a.feature_names and out.sfreq == a.sfreq
    np.testing.assert_array_equal(out.times, a.times)
    # the method form is the same function
    same = BrainData.concatenate([a, b], keys=["s01", "s02"], key_name="subject")
    pd.testing.assert_frame_equal(same.obs, out.obs)
    without = concatenate([a, b])
    assert "subject" not in without.obs


def test_concatenate_fmri_keeps_space():
    a, b = make_fmri(seed=0), make_fmri(seed=0)
    b.data = b.data + 1
    out = concatenate([a, b], keys=[1, 2], key_name="session")
    np.testing.assert_array_equal(out.mask, a.mask)
    np.testing.assert_array_equal(out.affine, a.affine)
    assert out.n_obs == a.n_obs + b.n_obs and list(out.obs["session"].unique()) == [1, 2]


def test_concatenate_errors():
    a = make_braindata(seed=1)
    with pytest.raises(ModalityError, match="Item 1 is meg, item 0 is eeg"):
        concatenate([a, make_braindata(modality="meg")])
    with pytest.raises(ShapeError, match=r"Item 1 has feature/time shape \(4, 7\), item 0 has \(5, 7\)"):
        concatenate([a, make_braindata(n_features=4)])
    with pytest.raises(ShapeError, match="feature/time shape"):
        concatenate([a, make_braindata(n_times=6)])
    renamed = BrainData(a.data, a.obs, "eeg", features=[f"x{i}" for i in range(5)], sfreq=100)
    with pytest.raises(LabelError, match="other feature names"):
        concatenate([a, renamed])
    shifted = BrainData(a.data, a.obs, "eeg", features=a.features, times=a.times + 0.5)
    with pytest.raises(ShapeError, match="other sample times"):
        concatenate([a, shifted])
    other_rate = BrainData(a.data, a.obs, "eeg", features=a.features, times=np.arange(7) / 100.0 * 2)
    with pytest.raises(ShapeError, match="other sample times"):
        concatenate([a, other_rate])
    f2 = [make_braindata(n_times=None, seed=s) for s in (1, 2)]
    with_rate = BrainData(f2[1].data, f2[1].obs, "eeg", features=f2[1].features, sfreq=10)
    with pytest.raises(ShapeError, match="Item 1 has sfreq 10.0, item 0 has None"):
        concatenate([f2[0], with_rate])
    fm = make_fmri(seed=0)
    other_mask = make_fmri(seed=0)
    m2 = other_mask.mask.copy()
    on, off = np.argwhere(m2)[0], np.argwhere(~m2)[0]
    m2[tuple(on)], m2[tuple(off)] = False, True
    moved = BrainData(fm.data, fm.obs, "fmri", features=fm.features, affine=fm.affine, mask=m2)
    with pytest.raises(ShapeError, match="another mask"):
        concatenate([fm, moved])
    other_affine = BrainData(fm.data, fm.obs, "fmri", features=fm.features, affine=np.eye(4), mask=fm.mask)
    with pytest.raises(ShapeError, match="another affine"):
        concatenate([fm, other_affine])
    no_space = BrainData(fm.data, fm.obs, "fmri", features=fm.features)
    with pytest.raises(ShapeError, match="another mask"):
        concatenate([fm, no_space])
    with pytest.raises(LabelError, match="keys need a key_name"):
        concatenate([a, a], keys=[1, 2])
    with pytest.raises(LabelError, match="keys has 3 entries but there are 2 items"):
        concatenate([a, a], keys=[1, 2, 3], key_name="s")
    with pytest.raises(EmptySelectionError, match="Nothing to concatenate"):
        concatenate([])
    with pytest.raises(ShapeError, match="Item 1 is a ndarray, not a BrainData"):
        concatenate([a, a.data])


# --------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------
def test_to_mne_synthetic(bd):
    bd.obs["rt"] = np.linspace(0.1, 1.2, bd.n_obs)
    ep = bd.to_mne()
    assert isinstance(ep, mne.EpochsArray)
    np.testing.assert_array_equal(ep.get_data(), bd.data)
    np.testing.assert_allclose(ep.times, bd.times, atol=1e-12)
    assert ep.info["sfreq"] == bd.sfreq
    assert ep.ch_names == bd.feature_names
    assert ep.event_id == {"a": 1, "b": 2, "c": 3}
    inverse = {v: k for k, v in ep.event_id.items()}
    assert [inverse[c] for c in ep.events[:, 2]] == list(bd.conditions)
    pd.testing.assert_frame_equal(ep.metadata.reset_index(drop=True), bd.obs, check_dtype=False)
    assert set(ep.get_channel_types()) == {"eeg"}
    # MNE's own condition average agrees with BrainData.average
    np.testing.assert_allclose(ep["b"].average().data, bd.average().select(condition="b").data[0], atol=1e-12)


def test_to_mne_channel_types():
    meg = make_braindata(modality="meg")
    assert set(meg.to_mne().get_channel_types()) == {"mag"}
    ieeg = make_braindata(modality="ieeg")
    assert set(ieeg.to_mne().get_channel_types()) == {"seeg"}
    feats = pd.DataFrame({"name": ["Fz", "Cz", "EOG"], "ch_type": ["eeg", "eeg", "eog"]})
    b = BrainData(np.zeros((2, 3, 5)), ["a", "b"], "eeg", features=feats, sfreq=100)
    assert b.to_mne().get_channel_types() == ["eeg", "eeg", "eog"]


def test_to_mne_errors():
    with pytest.raises(ModalityError, match="to_mne works for EEG/MEG/iEEG data, not fmri"):
        make_fmri().to_mne()
    with pytest.raises(ModalityError, match="time axis"):
        make_braindata(n_times=None).to_mne()
    irregular = BrainData(np.zeros((2, 1, 3)), ["a", "b"], "eeg", times=[0.0, 0.1, 0.3])
    with pytest.raises(ModalityError, match="sampling frequency"):
        irregular.to_mne()


def test_to_mne_real_eeg(eeg_real):
    b = eeg_real
    ep = b.to_mne()
    np.testing.assert_array_equal(ep.get_data(), b.data)
    np.testing.assert_allclose(ep.times, b.times, atol=1e-12)
    assert ep.event_id == {"left": 1, "right": 2}
    assert list(ep.metadata["condition"]) == list(b.conditions)
    assert ep.ch_names == b.feature_names
    locs = np.array([ch["loc"][:3] for ch in ep.info["chs"]])
    assert np.isfinite(locs).all()
    np.testing.assert_allclose(locs, b.features[["x", "y", "z"]].to_numpy())
    assert len(ep["left"]) == int((b.conditions == "left").sum()) == 16


def test_to_nifti_synthetic():
    b = make_fmri()
    img = b.to_nifti()
    assert isinstance(img, nibabel.Nifti1Image)
    assert img.shape == b.mask.shape + (b.n_obs,)
    np.testing.assert_array_equal(img.affine, b.affine)
    vol = np.asanyarray(img.dataobj)
    np.testing.assert_array_equal(vol, volume_from_mask(b.data, b.mask))
    one = b.to_nifti(b.data[2])
    assert one.shape == b.mask.shape
    np.testing.assert_array_equal(np.asanyarray(one.dataobj), volume_from_mask(b.data[2:3], b.mask)[..., 0])
    ints = b.to_nifti(np.arange(b.n_features))
    assert np.asanyarray(ints.dataobj)[b.mask].tolist() == list(range(b.n_features))


def test_to_nifti_errors():
    b = make_fmri()
    with pytest.raises(ShapeError, match=rf"values have 3 features, the mask has {b.n_features}"):
        b.to_nifti(np.zeros(3))
    with pytest.raises(ShapeError, match="expected 1 or 2"):
        b.to_nifti(np.zeros((2, 2, b.n_features)))
    with pytest.raises(ModalityError, match="needs voxel features with a mask"):
        make_braindata(modality="fmri", n_times=None).to_nifti()


def test_to_nifti_haxby_matches_nibabel(haxby_dir):
    bold = nibabel.load(haxby_dir / "bold.nii.gz")
    mask = np.asanyarray(nibabel.load(haxby_dir / "mask.nii.gz").dataobj) > 0
    labels, runs = np.loadtxt(haxby_dir / "attributes_literal.txt", dtype=str).T
    b = neuroenc.io.read_fmri(bold, labels=labels, runs=runs.astype(int), mask=haxby_dir / "mask.nii.gz")
    assert b.n_features == 530 == int(mask.sum())
    np.testing.assert_array_equal(b.mask, mask)
    np.testing.assert_allclose(b.affine, bold.affine)
    vols = np.asanyarray(bold.dataobj)
    sel = [0, 100, 1451]
    img = b.to_nifti(b.data[sel])
    expected = np.where(mask[..., None], vols[..., sel], 0).astype(b.data.dtype)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), expected)
    # picking voxels keeps images consistent with the full volume
    picks = np.arange(0, 530, 7)
    sub = b.pick_features(picks)
    sub_img = np.asanyarray(sub.to_nifti(sub.data[sel]).dataobj)
    np.testing.assert_array_equal(sub_img, np.where(sub.mask[..., None], expected, 0))
    assert int(sub.mask.sum()) == len(picks)


# --------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------
def test_provenance_grows(bd):
    step1 = bd.select(condition=["a", "b"])
    step2 = step1.crop(0.0, 0.04)
    step3 = step2.pick_features(["ch1", "ch2"])
    step4 = step3.average(within="run")
    step5 = concatenate([step4, step4], keys=[1, 2], key_name="rep")
    assert [len(s.provenance) for s in (bd, step1, step2, step3, step4)] == [0, 1, 2, 3, 4]
    assert [p["step"] for p in step5.provenance] == ["select", "crop", "pick_features", "average", "concatenate"]
    p = step5.provenance
    assert p[0]["params"] == {"query": None, "criteria": {"condition": ["a", "b"]}}
    assert p[1]["params"] == {"tmin": 0.0, "tmax": 0.04}
    assert p[2]["params"] == {"n_picked": 2}
    assert p[3]["params"] == {"by": ["condition"], "within": ["run"]}
    assert p[4]["params"] == {"n_items": 2, "key_name": "rep", "keys": [1, 2]}
    for rec in p:
        assert rec["neuroenc_version"] == neuroenc.__version__
        assert pd.Timestamp(rec["time"]).tzinfo is not None
    # earlier objects keep their own history
    assert len(step1.provenance) == 1 and len(bd.provenance) == 0


def test_copy_is_deep(bd):
    c = bd.copy()
    c.data[0, 0, 0] = 123.0
    c.obs.loc[0, "condition"] = "zz"
    assert bd.data[0, 0, 0] != 123.0 and bd.obs.loc[0, "condition"] == "a"


def test_pick_features_by_boolean_mask():
    bd = make_braindata(n_features=5)
    mask = np.array([True, False, True, False, True])
    picked = bd.pick_features(mask)
    assert picked.feature_names == ["ch0", "ch2", "ch4"]
    assert np.array_equal(picked.data, bd.data[:, mask])
    assert bd.pick_features(list(mask)).feature_names == picked.feature_names
    with pytest.raises(LabelError, match="boolean feature mask has 2 entries but there are 5 features"):
        bd.pick_features([True, False])
    with pytest.raises(EmptySelectionError, match="selects no feature"):
        bd.pick_features(np.zeros(5, dtype=bool))


def test_to_mne_numbers_numeric_conditions_in_numeric_order():
    bd = make_braindata(n_obs=6)
    bd.obs["condition"] = [10, 2, 1, 10, 2, 1]
    epochs = bd.to_mne()
    assert epochs.event_id == {"1": 1, "2": 2, "10": 3}
    assert list(epochs.events[:, 2]) == [3, 2, 1, 3, 2, 1]
