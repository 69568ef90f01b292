"""EEG/MEG loader: read_eeg and read_raw.

Every reference is computed with plain MNE-Python on the same files
(``mne.io.read_raw*``, ``events_from_annotations`` / ``find_events``,
``mne.Epochs``, ``make_fixed_length_epochs``), one run at a time as
``read_eeg`` does, so data must agree exactly. The only hard-coded numbers
are counts documented in ``shared/data/README.md`` and
``mne_formats/NOTICE.md``.
"""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuroenc.errors import (
    CorruptFileError,
    EmptySelectionError,
    LabelError,
    MissingFileError,
    ShapeError,
    UnknownNameError,
)
from neuroenc.io import read_eeg, read_raw

# README table: (T1, T2) events per run of S001.
README_COUNTS = {
    4: (8, 7),
    8: (8, 7),
    12: (7, 8),
    6: (7, 8),
    10: (7, 8),
    14: (7, 8),
}
EEGBCI_SFREQ = 160.0  # README snippet: 64 ch, 160 Hz
LEFT_RIGHT = {"left": "T1", "right": "T2"}
FISTS_FEET = {"fists": "T1", "feet": "T2"}


# ----------------------------------------------------------------------
# helpers: plain-MNE references
def edf_paths(eegbci_dir: Path, runs) -> list[Path]:
    return [eegbci_dir / f"S001R{r:02d}.edf" for r in runs]


def mne_raw(path, **kwargs) -> mne.io.BaseRaw:
    return mne.io.read_raw(path, preload=True, verbose="error", **kwargs)


def mne_annotation_epochs(raw, mapping: dict, *, tmin, tmax, baseline=None, l_freq=None, h_freq=None, picks=None):
    """MNE epochs around annotations; ``mapping`` is {condition: description}."""
    raw = raw.copy()
    if l_freq is not None or h_freq is not None:
        raw.filter(l_freq, h_freq, verbose="error")
    codes = {desc: i + 1 for i, desc in enumerate(mapping.values())}
    events, _ = mne.events_from_annotations(raw, event_id=codes, verbose="error")
    event_id = {cond: codes[desc] for cond, desc in mapping.items()}
    return mne.Epochs(
        raw, events, event_id, tmin=tmin, tmax=tmax, baseline=baseline, picks=picks, preload=True, verbose="error"
    )


def conditions_of(epochs) -> list[str]:
    inverse = {code: name for name, code in epochs.event_id.items()}
    return [inverse[c] for c in epochs.events[:, 2]]


def non_stim(raw) -> list[str]:
    """Names of the channels read_eeg keeps by default (no stim, no bads)."""
    return [
        name
        for name, kind in zip(raw.ch_names, raw.get_channel_types())
        if kind != "stim" and name not in raw.info["bads"]
    ]


def fixed_reference(raw, duration, picks=None):
    return mne.make_fixed_length_epochs(raw, duration=duration, preload=True, verbose="error").get_data(
        picks=picks if picks is not None else non_stim(raw)
    )


def assert_same_data(actual, expected):
    """Same epochs, to rounding (identical MNE operations give identical floats)."""
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


# ----------------------------------------------------------------------
# loads shared by several tests (read once per module)
@pytest.fixture(scope="module")
def left_right(eegbci_dir):
    runs = [4, 8, 12]
    bd = read_eeg(edf_paths(eegbci_dir, runs), LEFT_RIGHT, tmin=0.0, tmax=4.0, runs=runs, subject="S001")
    return bd, runs


@pytest.fixture(scope="module")
def r04_raw(eegbci_dir):
    return mne_raw(eegbci_dir / "S001R04.edf")


@pytest.fixture(scope="module")
def fif_raw(mne_formats_dir):
    return mne_raw(mne_formats_dir / "FIF" / "sample_audvis_trunc_raw_sss.fif")


# ----------------------------------------------------------------------
# 1. PhysioNet EEG motor imagery, subject 1
@pytest.mark.parametrize(
    ("runs", "event_id", "totals"),
    [
        ([4, 8, 12], LEFT_RIGHT, {"left": 23, "right": 22}),  # README snippet
        ([6, 10, 14], FISTS_FEET, {"fists": 21, "feet": 24}),
    ],
    ids=["left_right", "fists_feet"],
)
def test_eegbci_counts_and_data_match_mne(eegbci_dir, runs, event_id, totals):
    bd = read_eeg(edf_paths(eegbci_dir, runs), event_id, tmin=0.0, tmax=4.0, runs=runs)

    assert bd.obs["condition"].value_counts().to_dict() == totals
    first, second = event_id
    per_run = bd.obs.groupby(["run", "condition"]).size()
    for run in runs:
        assert (per_run[(run, first)], per_run[(run, second)]) == README_COUNTS[run]

    references = []
    for path in edf_paths(eegbci_dir, runs):
        references.append(mne_annotation_epochs(mne_raw(path), event_id, tmin=0.0, tmax=4.0))
    expected = np.concatenate([ep.get_data() for ep in references])
    assert np.array_equal(bd.data, expected)
    assert list(bd.conditions) == sum((conditions_of(ep) for ep in references), [])
    assert np.array_equal(bd.obs["sample"], np.concatenate([ep.events[:, 0] for ep in references]))
    np.testing.assert_allclose(bd.times, references[0].times, rtol=0, atol=1e-12)
    assert bd.sfreq == references[0].info["sfreq"] == EEGBCI_SFREQ


def test_eegbci_obs_columns(left_right, eegbci_dir):
    bd, runs = left_right
    obs = bd.obs
    assert list(obs.columns[:5]) == ["condition", "run", "onset", "sample", "event"]
    # run column holds the labels given in `runs`, in file order
    assert list(pd.unique(obs["run"])) == runs
    assert (obs["subject"] == "S001").all()
    # original annotation description, consistent with the condition
    assert (obs["event"] == obs["condition"].map(LEFT_RIGHT)).all()
    # onset (s from run start) and sample agree (first_samp is 0 for EDF) ...
    np.testing.assert_allclose(obs["onset"], obs["sample"] / EEGBCI_SFREQ, rtol=0, atol=1e-12)
    # ... and are the annotations' own onsets
    for run in runs:
        raw = mne.io.read_raw_edf(eegbci_dir / f"S001R{run:02d}.edf", verbose="error")
        ann = raw.annotations
        wanted = np.isin(ann.description, ["T1", "T2"])
        expected = np.round(ann.onset[wanted] * EEGBCI_SFREQ) / EEGBCI_SFREQ
        np.testing.assert_allclose(obs.loc[obs["run"] == run, "onset"], expected, rtol=0, atol=1e-9)
        assert list(obs.loc[obs["run"] == run, "event"]) == list(ann.description[wanted])


def test_eegbci_channels_info_and_provenance(left_right, r04_raw):
    bd, runs = left_right
    assert bd.modality == "eeg"
    assert bd.shape == (45, 64, 641)  # 64 channels, 4 s at 160 Hz inclusive
    assert bd.feature_names == r04_raw.ch_names
    assert list(bd.info["ch_names"]) == bd.feature_names
    assert bd.info["sfreq"] == bd.sfreq
    assert set(bd.features["ch_type"]) == {"eeg"}
    record = bd.provenance[-1]
    assert record["step"] == "read_eeg"
    assert [s["file"] for s in record["params"]["sources"]] == [f"S001R{r:02d}.edf" for r in runs]
    assert [s["n_epochs"] for s in record["params"]["sources"]] == [sum(README_COUNTS[r]) for r in runs]


def test_eegbci_to_mne_round_trip(left_right):
    bd, _ = left_right
    epochs = bd.to_mne()
    assert np.array_equal(epochs.get_data(), bd.data)
    assert epochs.ch_names == bd.feature_names
    assert epochs.info["sfreq"] == bd.sfreq
    np.testing.assert_allclose(epochs.times, bd.times, rtol=0, atol=1e-12)
    assert conditions_of(epochs) == list(bd.conditions)
    pd.testing.assert_frame_equal(epochs.metadata.reset_index(drop=True), bd.obs)


# ----------------------------------------------------------------------
# 2. processing options against MNE
@pytest.mark.parametrize(("l_freq", "h_freq"), [(8.0, 30.0), (1.0, None), (None, 40.0)])
def test_filter_matches_mne_per_run(eegbci_dir, l_freq, h_freq):
    runs = [4, 8]
    bd = read_eeg(edf_paths(eegbci_dir, runs), LEFT_RIGHT, tmin=0.0, tmax=4.0, l_freq=l_freq, h_freq=h_freq)
    expected = np.concatenate(
        [
            mne_annotation_epochs(mne_raw(p), LEFT_RIGHT, tmin=0.0, tmax=4.0, l_freq=l_freq, h_freq=h_freq).get_data()
            for p in edf_paths(eegbci_dir, runs)
        ]
    )
    assert_same_data(bd.data, expected)
    unfiltered = read_eeg(edf_paths(eegbci_dir, runs[:1]), LEFT_RIGHT, tmin=0.0, tmax=4.0)
    assert not np.allclose(bd.data[: len(unfiltered)], unfiltered.data)


def test_resample_matches_mne(eegbci_dir, r04_raw):
    bd = read_eeg(eegbci_dir / "S001R04.edf", LEFT_RIGHT, tmin=0.0, tmax=4.0, resample=80.0)
    ref = mne_annotation_epochs(r04_raw, LEFT_RIGHT, tmin=0.0, tmax=4.0)
    n_times_before = len(ref.times)
    ref.resample(80.0, verbose="error")
    assert bd.sfreq == ref.info["sfreq"] == 80.0
    assert bd.n_times == len(ref.times) < n_times_before
    np.testing.assert_allclose(bd.times, ref.times, rtol=0, atol=1e-12)
    assert bd.info["sfreq"] == 80.0
    assert_same_data(bd.data, ref.get_data())
    # onsets and samples still refer to the original recording
    np.testing.assert_allclose(bd.obs["onset"], bd.obs["sample"] / EEGBCI_SFREQ, rtol=0, atol=1e-12)


@pytest.mark.parametrize("baseline", [(None, 0.0), (-0.5, -0.1)])
def test_baseline_matches_mne(eegbci_dir, r04_raw, baseline):
    bd = read_eeg(eegbci_dir / "S001R04.edf", LEFT_RIGHT, tmin=-0.5, tmax=1.0, baseline=baseline)
    ref = mne_annotation_epochs(r04_raw, LEFT_RIGHT, tmin=-0.5, tmax=1.0, baseline=baseline)
    assert_same_data(bd.data, ref.get_data())
    window = (bd.times >= -0.5) & (bd.times <= (baseline[1] + 1e-9))
    if baseline[0] is not None:
        window &= bd.times >= baseline[0] - 1e-9
    np.testing.assert_allclose(bd.data[:, :, window].mean(axis=2), 0.0, atol=1e-18)
    plain = read_eeg(eegbci_dir / "S001R04.edf", LEFT_RIGHT, tmin=-0.5, tmax=1.0)
    assert not np.allclose(plain.data, bd.data)


def test_picks_by_name_match_mne(eegbci_dir, r04_raw):
    names = [r04_raw.ch_names[i] for i in (10, 3, 40)]
    bd = read_eeg(eegbci_dir / "S001R04.edf", LEFT_RIGHT, tmin=0.0, tmax=4.0, picks=names)
    ref = mne_annotation_epochs(r04_raw, LEFT_RIGHT, tmin=0.0, tmax=4.0, picks=names)
    assert bd.feature_names == ref.ch_names
    assert set(bd.feature_names) == set(names)
    assert list(bd.info["ch_names"]) == bd.feature_names
    assert np.array_equal(bd.data, ref.get_data())


@pytest.mark.parametrize(("picks", "modality"), [("eeg", "eeg"), ("grad", "meg"), ("mag", "meg")])
def test_picks_by_type_fif(mne_formats_dir, fif_raw, picks, modality):
    bd = read_eeg(mne_formats_dir / "FIF" / "sample_audvis_trunc_raw_sss.fif", fixed_length=0.25, picks=picks)
    expected_names = [name for name, kind in zip(fif_raw.ch_names, fif_raw.get_channel_types()) if kind == picks]
    assert expected_names  # the file has channels of this type
    assert bd.feature_names == expected_names
    assert set(bd.features["ch_type"]) == {picks}
    assert bd.modality == modality
    # the inactive average-EEG-reference projector is applied on a 60- instead of a 367-channel
    # matrix: same numbers up to float rounding
    assert_same_data(bd.data, fixed_reference(fif_raw, 0.25, picks=expected_names))


# ----------------------------------------------------------------------
# 3. one real file per MNE reader
def test_edf_annotations_match_mne(mne_formats_dir):
    path = mne_formats_dir / "EDF" / "test_reduced.edf"
    raw = mne_raw(path)
    described = pd.Series(raw.annotations.description).value_counts()
    assert (described["type A"], described["type B"]) == (3, 1)  # NOTICE
    bd = read_eeg(path, ["type A", "type B"])
    ref = mne_annotation_epochs(raw, {"type A": "type A", "type B": "type B"}, tmin=-0.2, tmax=0.5, picks=non_stim(raw))
    assert len(ref) < 4  # the 'type A' at 0.13 s has no 0.2 s of data before it
    assert list(bd.conditions) == conditions_of(ref)
    assert np.array_equal(bd.obs["sample"], ref.events[:, 0])
    assert np.array_equal(bd.data, ref.get_data())
    assert bd.provenance[-1]["params"]["sources"][0]["n_dropped"] == 4 - len(ref)
    assert "Status" not in bd.feature_names and bd.n_features == 138  # stim channel dropped by default


def test_edf_status_channel_codes_match_mne(mne_formats_dir):
    path = mne_formats_dir / "EDF" / "test_reduced.edf"
    raw = mne_raw(path)
    events = mne.find_events(raw, verbose="error")
    assert len(events) == 13 and set(events[:, 2]) == {4096, 4100}  # NOTICE
    bd = read_eeg(path, {"a": 4096, "b": 4100})
    ref = mne.Epochs(
        raw,
        events,
        {"a": 4096, "b": 4100},
        tmin=-0.2,
        tmax=0.5,
        baseline=None,
        picks=non_stim(raw),
        preload=True,
        verbose="error",
    )
    assert list(bd.conditions) == conditions_of(ref)
    assert list(bd.obs["event"]) == [str(c) for c in ref.events[:, 2]]
    assert np.array_equal(bd.obs["sample"], ref.events[:, 0])
    assert np.array_equal(bd.data, ref.get_data())


def test_edf_chtypes_fixed_length(mne_formats_dir):
    path = mne_formats_dir / "EDF" / "chtypes_edf.edf"
    raw = mne_raw(path, infer_types=True)
    bd = read_eeg(path, fixed_length=1.0, reader_kwargs={"infer_types": True})
    assert bd.features["ch_type"].value_counts().to_dict() == {"eeg": 38, "ecg": 2, "bio": 2}  # NOTICE
    assert bd.modality == "eeg"
    assert bd.shape == (5, 42, 200)  # 5 s at 200 Hz in 1-s windows
    assert set(bd.conditions) == {"window"}
    np.testing.assert_allclose(bd.obs["onset"], np.arange(5.0), rtol=0, atol=1e-12)
    assert np.array_equal(bd.data, fixed_reference(raw, 1.0))


def test_filter_applies_to_every_kept_channel(mne_formats_dir):
    """ECG and bio channels that are kept are filtered too, not only EEG."""
    path = mne_formats_dir / "EDF" / "chtypes_edf.edf"
    raw = mne_raw(path, infer_types=True)
    bd = read_eeg(path, fixed_length=1.0, l_freq=1.0, h_freq=30.0, reader_kwargs={"infer_types": True})
    raw.filter(1.0, 30.0, picks="all", verbose="error")
    assert_same_data(bd.data, fixed_reference(raw, 1.0))


def test_events_sharing_a_sample_warn_at_caller(mne_formats_dir):
    path = mne_formats_dir / "EDF" / "chtypes_edf.edf"
    raw = mne_raw(path)
    with pytest.warns(UserWarning, match="5 event.*share a sample") as record:
        bd = read_eeg(path)
    assert record[0].filename == __file__  # stacklevel points at the caller
    events, event_id = mne.events_from_annotations(raw, verbose="error")
    ref = mne.Epochs(
        raw, events, event_id, tmin=-0.2, tmax=0.5, baseline=None, event_repeated="drop", preload=True, verbose="error"
    )
    assert np.array_equal(bd.obs["sample"], ref.events[:, 0])
    assert list(bd.conditions) == conditions_of(ref)
    assert np.array_equal(bd.data, ref.get_data())


@pytest.mark.parametrize("event_id", [[1], {"one": 1, "two": 2, "four": 4}, None], ids=["list", "dict", "default"])
def test_bdf_stim_codes_match_mne(mne_formats_dir, event_id):
    path = mne_formats_dir / "BDF" / "test_bdf_stim_channel.bdf"
    raw = mne_raw(path)
    events = mne.find_events(raw, verbose="error")
    assert pd.Series(events[:, 2]).value_counts().to_dict() == {1: 7, 2: 1, 4: 1}  # NOTICE
    bd = read_eeg(path, event_id)
    mapping = {str(c): c for c in (1, 2, 4)} if event_id is None else event_id
    mapping = {str(c): c for c in mapping} if isinstance(mapping, list) else mapping
    ref = mne.Epochs(
        raw, events, mapping, tmin=-0.2, tmax=0.5, baseline=None, picks=non_stim(raw), preload=True, verbose="error"
    )
    assert bd.feature_names == ["C3", "C4", "Cz"]
    assert list(bd.conditions) == conditions_of(ref)
    assert np.array_equal(bd.obs["sample"], ref.events[:, 0])
    assert np.array_equal(bd.data, ref.get_data())


def test_brainvision_fixed_length(mne_formats_dir):
    path = mne_formats_dir / "BrainVision" / "bv_dig_test.vhdr"
    raw = mne_raw(path)
    bd = read_eeg(path, fixed_length=0.1)
    assert bd.shape == (10, 67, 500)  # NOTICE: 67 channels, 5000 Hz, 1 s
    assert bd.feature_names == raw.ch_names
    assert np.array_equal(bd.data, fixed_reference(raw, 0.1))
    # its only annotation is at sample 0: epochs starting 0.2 s earlier cannot be cut
    with pytest.raises(EmptySelectionError, match="outside the recording"):
        read_eeg(path)


def test_eeglab_counts_match_mne(mne_formats_dir):
    path = mne_formats_dir / "EEGLAB" / "test_raw.set"
    raw = mne_raw(path)
    described = pd.Series(raw.annotations.description).value_counts().to_dict()
    assert described == {"square": 80, "rt": 74}  # NOTICE
    bd = read_eeg(path)  # default: every annotation
    ref = mne_annotation_epochs(raw, {"square": "square", "rt": "rt"}, tmin=-0.2, tmax=0.5)
    assert bd.obs["condition"].value_counts().to_dict() == pd.Series(conditions_of(ref)).value_counts().to_dict()
    assert list(bd.conditions) == conditions_of(ref)
    assert np.array_equal(bd.data, ref.get_data())


def test_gdf_single_ecg_channel(mne_formats_dir):
    path = mne_formats_dir / "GDF" / "test_1ch.gdf"
    raw = mne_raw(path)
    bd = read_eeg(path, fixed_length=1.0)
    # default picks keep the only channel; MNE's GDF reader types it as EEG
    assert bd.feature_names == ["ECG"] == raw.ch_names
    assert list(bd.features["ch_type"]) == raw.get_channel_types()
    assert bd.modality == "eeg"
    assert bd.shape == (30, 1, 150)  # NOTICE: 150 Hz, 30 s
    # consecutive windows are exactly the continuous signal
    assert np.array_equal(bd.data[:, 0, :].ravel(), raw.get_data()[0])
    # without events or windows there is nothing to epoch: a clear error
    with pytest.raises(EmptySelectionError, match="fixed_length"):
        read_eeg(path)


def test_ecg_only_recording_can_be_filtered(mne_formats_dir):
    raw = mne_raw(mne_formats_dir / "GDF" / "test_1ch.gdf").set_channel_types({"ECG": "ecg"})
    bd = read_eeg(raw, fixed_length=1.0, l_freq=1.0, h_freq=20.0)
    assert list(bd.features["ch_type"]) == ["ecg"]
    filtered = raw.copy().filter(1.0, 20.0, picks="all", verbose="error")
    assert_same_data(bd.data[:, 0, :].ravel(), filtered.get_data()[0])


def test_cnt_with_reader_kwargs(mne_formats_dir):
    path = mne_formats_dir / "CNT" / "scan41_short.cnt"
    raw = mne.io.read_raw_cnt(path, data_format="int16", preload=True, verbose="error")
    described = pd.Series(raw.annotations.description).value_counts().to_dict()
    assert (described["7"], described["109"]) == (3, 2)  # NOTICE
    bd = read_eeg(path, ["7", "109"], reader_kwargs={"data_format": "int16"})
    ref = mne_annotation_epochs(raw, {"7": "7", "109": "109"}, tmin=-0.2, tmax=0.5, picks=non_stim(raw))
    assert bd.feature_names == non_stim(raw) and len(raw.info["bads"]) > 0  # bad channels dropped
    assert list(bd.conditions) == conditions_of(ref)
    assert np.array_equal(bd.data, ref.get_data())
    assert np.array_equal(read_raw(path, data_format="int16").get_data(), raw.get_data())
    with pytest.raises(CorruptFileError, match="scan41_short.cnt"):
        read_eeg(path, ["7"])


def test_fif_meg_fixed_length(mne_formats_dir, fif_raw):
    bd = read_eeg(mne_formats_dir / "FIF" / "sample_audvis_trunc_raw_sss.fif", fixed_length=0.25)
    assert bd.modality == "meg"
    assert bd.feature_names == non_stim(fif_raw)
    assert bd.n_features == 204 + 102 + 60 + 1  # NOTICE: grad + mag + EEG + EOG, stim dropped
    assert bd.obs["sample"].iloc[0] == fif_raw.first_samp == 12900  # NOTICE
    np.testing.assert_allclose(
        bd.obs["onset"], (bd.obs["sample"] - fif_raw.first_samp) / fif_raw.info["sfreq"], rtol=0, atol=1e-12
    )
    assert np.array_equal(bd.data, fixed_reference(fif_raw, 0.25))


def test_fif_filter_includes_eog(mne_formats_dir, fif_raw):
    path = mne_formats_dir / "FIF" / "sample_audvis_trunc_raw_sss.fif"
    bd = read_eeg(path, fixed_length=0.25, l_freq=2.0, h_freq=40.0)
    filtered = fif_raw.copy().pick(non_stim(fif_raw)).filter(2.0, 40.0, picks="all", verbose="error")
    assert_same_data(bd.data, fixed_reference(filtered, 0.25))
    eog = bd.feature_names.index("EOG 061")
    plain = read_eeg(path, fixed_length=0.25)
    assert not np.allclose(bd.data[:, eog], plain.data[:, eog])


@pytest.mark.parametrize("as_list", [False, True])
def test_fif_event_file_outside_recording(mne_formats_dir, as_list):
    fif = mne_formats_dir / "FIF"
    eve = fif / "sample_audvis_trunc_raw-eve.fif"
    assert mne.read_events(eve).shape == (50, 3)  # NOTICE
    with pytest.raises(EmptySelectionError, match=r"all 50 event\(s\).*outside the recording") as info:
        read_eeg(fif / "sample_audvis_trunc_raw_sss.fif", events=[eve] if as_list else eve)
    assert "13988" in str(info.value) and "12900" in str(info.value)


def test_explicit_events_array_and_single_run_list(mne_formats_dir):
    path = mne_formats_dir / "BDF" / "test_bdf_stim_channel.bdf"
    raw = mne_raw(path)
    events = np.array([[1000, 0, 7], [2000, 0, 8], [3000, 0, 7]])
    bd = read_eeg(path, {"x": 7, "y": 8}, events=events)
    bd_list = read_eeg(path, {"x": 7, "y": 8}, events=[events])
    ref = mne.Epochs(
        raw, events, {"x": 7, "y": 8}, tmin=-0.2, tmax=0.5, baseline=None, picks=non_stim(raw), verbose="error"
    )
    assert list(bd.conditions) == ["x", "y", "x"]
    assert np.array_equal(bd.data, ref.get_data())
    assert np.array_equal(bd_list.data, bd.data)
    # stimulus-channel codes are not used once events are given
    with pytest.raises(UnknownNameError, match="Available annotations/codes: '7', '8'"):
        read_eeg(path, [1], events=events)


# ----------------------------------------------------------------------
# 4. MNE objects as input
def test_raw_object_matches_path_and_is_not_modified(eegbci_dir, r04_raw):
    before = r04_raw.get_data()
    kwargs = dict(tmin=0.0, tmax=4.0, l_freq=8.0, h_freq=30.0)
    from_raw = read_eeg(r04_raw, LEFT_RIGHT, **kwargs)
    from_path = read_eeg(eegbci_dir / "S001R04.edf", LEFT_RIGHT, **kwargs)
    assert np.array_equal(from_raw.data, from_path.data)
    pd.testing.assert_frame_equal(from_raw.obs, from_path.obs)
    assert np.array_equal(r04_raw.get_data(), before)  # the caller's Raw is left alone
    assert from_raw.provenance[-1]["params"]["sources"][0]["file"] == "mne.io.Raw"


def test_list_of_raw_objects(eegbci_dir):
    paths = edf_paths(eegbci_dir, [4, 8])
    raws = [mne.io.read_raw_edf(p, verbose="error") for p in paths]  # not preloaded
    bd = read_eeg(raws, LEFT_RIGHT, tmin=0.0, tmax=4.0, runs=["a", "b"])
    ref = read_eeg(paths, LEFT_RIGHT, tmin=0.0, tmax=4.0, runs=["a", "b"])
    assert np.array_equal(bd.data, ref.data)
    pd.testing.assert_frame_equal(bd.obs, ref.obs)
    assert bd.obs.groupby("run").size().to_dict() == {"a": sum(README_COUNTS[4]), "b": sum(README_COUNTS[8])}


@pytest.fixture(scope="module")
def eeglab_epochs(mne_formats_dir):
    raw = mne_raw(mne_formats_dir / "EEGLAB" / "test_raw.set")
    events, event_id = mne.events_from_annotations(raw, verbose="error")
    inverse = {code: name for name, code in event_id.items()}
    metadata = pd.DataFrame({"trial": np.arange(len(events)), "label": [inverse[c] for c in events[:, 2]]})
    return mne.Epochs(
        raw, events, event_id, tmin=-0.2, tmax=0.6, metadata=metadata, baseline=None, preload=True, verbose="error"
    )


def test_epochs_input_keeps_metadata(eeglab_epochs):
    bd = read_eeg(eeglab_epochs, subject="s1")
    assert np.array_equal(bd.data, eeglab_epochs.get_data())
    assert bd.feature_names == eeglab_epochs.ch_names
    np.testing.assert_allclose(bd.times, eeglab_epochs.times, rtol=0, atol=1e-12)
    metadata = eeglab_epochs.metadata.reset_index(drop=True)
    pd.testing.assert_frame_equal(bd.obs[["trial", "label"]], metadata)
    assert list(bd.conditions) == conditions_of(eeglab_epochs) == list(metadata["label"])
    assert np.array_equal(bd.obs["sample"], eeglab_epochs.events[:, 0])
    assert (bd.obs["subject"] == "s1").all()
    assert bd.modality == "eeg"


def test_epochs_input_processing_matches_mne(eeglab_epochs):
    bd = read_eeg(
        eeglab_epochs, tmin=0.0, tmax=0.4, l_freq=1.0, h_freq=20.0, resample=64.0, picks=["EEG 003", "EEG 001"]
    )
    ref = eeglab_epochs.copy().pick(["EEG 003", "EEG 001"]).filter(1.0, 20.0, verbose="error").crop(0.0, 0.4)
    ref.resample(64.0, verbose="error")
    assert bd.feature_names == ["EEG 003", "EEG 001"]
    assert bd.sfreq == 64.0
    np.testing.assert_allclose(bd.times, ref.times, rtol=0, atol=1e-12)
    assert_same_data(bd.data, ref.get_data())
    assert eeglab_epochs.info["sfreq"] == 128.0  # the input is left alone


# ----------------------------------------------------------------------
# 5. bad input gives clear neuroenc errors
def test_missing_file_before_anything_is_read(eegbci_dir, tmp_path, monkeypatch):
    calls = []
    original = mne.io.read_raw
    monkeypatch.setattr(mne.io, "read_raw", lambda *a, **k: calls.append(a) or original(*a, **k))
    missing = tmp_path / "S001R99.edf"
    paths = edf_paths(eegbci_dir, [4, 8]) + [missing]
    with pytest.raises(MissingFileError, match="S001R99.edf") as info:
        read_eeg(paths, LEFT_RIGHT, tmin=0.0, tmax=4.0)
    assert isinstance(info.value, FileNotFoundError)
    assert calls == []
    with pytest.raises(MissingFileError, match="S001R99.edf"):
        read_raw(missing)


def test_unknown_event_name_lists_annotations(eegbci_dir):
    with pytest.raises(UnknownNameError) as info:
        read_eeg(eegbci_dir / "S001R04.edf", {"left": "T1", "up": "T7"}, tmin=0.0, tmax=4.0)
    message = str(info.value)
    assert "'up' ('T7')" in message
    assert all(f"'{name}'" in message for name in ("T0", "T1", "T2"))
    assert "'left'" not in message.split("Available")[0]  # found names are not reported missing


@pytest.mark.parametrize("keep", ["half", "header"])
def test_truncated_edf(eegbci_dir, tmp_path, keep):
    content = (eegbci_dir / "S001R04.edf").read_bytes()
    target = tmp_path / "S001R04_truncated.edf"
    target.write_bytes(content[: len(content) // 2] if keep == "half" else content[:5000])
    with pytest.raises(CorruptFileError, match="S001R04_truncated.edf") as info:
        read_eeg(target, LEFT_RIGHT, tmin=0.0, tmax=4.0)
    if keep == "half":  # MNE alone would read it, shorter, with only a warning
        assert "truncated" in str(info.value) and "125 data records" in str(info.value)


def test_edf_with_open_record_count_still_loads(eegbci_dir, tmp_path):
    """A header count of -1 (recording never closed) is not taken for truncation."""
    content = bytearray((eegbci_dir / "S001R04.edf").read_bytes())
    content[236:244] = b"-1      "
    target = tmp_path / "open.edf"
    target.write_bytes(bytes(content))
    bd = read_eeg(target, LEFT_RIGHT, tmin=0.0, tmax=4.0)
    ref = read_eeg(eegbci_dir / "S001R04.edf", LEFT_RIGHT, tmin=0.0, tmax=4.0)
    assert np.array_equal(bd.data, ref.data)


def test_random_bytes_edf(tmp_path):
    target = tmp_path / "noise.edf"
    target.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CorruptFileError, match="noise.edf"):
        read_eeg(target)
    with pytest.raises(CorruptFileError, match="noise.edf"):
        read_raw(target)


def test_parameter_errors(eegbci_dir, eeglab_epochs):
    path = eegbci_dir / "S001R04.edf"
    with pytest.raises(ShapeError, match=r"tmin \(4.0\) must be smaller than tmax \(4.0\)"):
        read_eeg(path, LEFT_RIGHT, tmin=4.0, tmax=4.0)
    with pytest.raises(ShapeError, match="tmin"):
        read_eeg(path, LEFT_RIGHT, tmin=1.0, tmax=0.0)
    with pytest.raises(ShapeError, match="tmin"):
        read_eeg(eeglab_epochs, tmin=0.3, tmax=0.1)
    with pytest.raises(ShapeError, match=r"l_freq \(30\) must be below h_freq \(8\)"):
        read_eeg(path, LEFT_RIGHT, l_freq=30, h_freq=8)
    with pytest.raises(ShapeError, match="l_freq"):
        read_eeg(path, LEFT_RIGHT, l_freq=10, h_freq=10)
    with pytest.raises(LabelError, match="3 run labels for 2 sources"):
        read_eeg(edf_paths(eegbci_dir, [4, 8]), LEFT_RIGHT, runs=[1, 2, 3])
    with pytest.raises(ShapeError, match="fixed_length"):
        read_eeg(path, LEFT_RIGHT, fixed_length=1.0)
    with pytest.raises(ShapeError, match="fixed_length"):
        read_eeg(eeglab_epochs, fixed_length=1.0)


def test_unknown_picks(eegbci_dir, eeglab_epochs):
    with pytest.raises(UnknownNameError, match="NOPE") as info:
        read_eeg(eegbci_dir / "S001R04.edf", LEFT_RIGHT, tmin=0.0, tmax=4.0, picks=["NOPE"])
    assert "Channels:" in str(info.value) and "types: ['eeg']" in str(info.value)
    with pytest.raises(UnknownNameError, match="NOPE"):
        read_eeg(eeglab_epochs, picks=["NOPE"])


def test_status_channel_initial_value_is_not_an_event(mne_formats_dir):
    # The Status channel starts at a non-zero level; that level is not a trigger (NOTICE: 13 events).
    with pytest.raises(UnknownNameError) as err:
        read_eeg(mne_formats_dir / "EDF" / "test_reduced.edf", {"x": 4352})
    assert "4096" in str(err.value) and "4352" not in str(err.value).split("Available")[1]


def test_epochs_input_gets_run_onset_and_event_columns(eeglab_epochs):
    bd = read_eeg(eeglab_epochs)
    assert (bd.obs["run"] == 1).all()
    np.testing.assert_allclose(bd.obs["onset"], eeglab_epochs.events[:, 0] / eeglab_epochs.info["sfreq"])
    assert list(bd.obs["event"]) == list(bd.conditions)


def test_band_edge_at_or_above_nyquist_is_a_clear_error(eegbci_dir, eeglab_epochs):
    with pytest.raises(ShapeError, match="Nyquist frequency of run 1 .*80 Hz"):
        read_eeg(edf_paths(eegbci_dir, [4]), ["T1"], h_freq=80.0)
    with pytest.raises(ShapeError, match="Nyquist"):
        read_eeg(eeglab_epochs, l_freq=70.0)


def test_fixed_length_rejects_an_explicit_window(mne_formats_dir):
    with pytest.raises(ShapeError, match="fixed_length sets the window"):
        read_eeg(mne_formats_dir / "GDF" / "test_1ch.gdf", fixed_length=2.0, tmax=1.0)
