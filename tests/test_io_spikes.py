"""Spike loaders: read_spikes, read_nwb and bin_spikes.

References are computed independently: ``np.histogram`` per trial and unit
on relative spike times. Where times are whole numbers (integer µs or ms)
the reference is computed in those units, so that it is exact and bins are
exactly ``[a, b)``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroenc.errors import (
    CorruptFileError,
    LabelError,
    MissingFileError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
)
from neuroenc.io import bin_spikes, read_nwb, read_spikes

N_SPIKES = {"recording1": 929, "recording2": 868}  # README: 929 and 868 spikes over 10 s
ONSETS_US = np.arange(10) * 1_000_000.0
LABELS = [f"seg{i}" for i in range(10)]
EDGES_US = np.arange(101) * 10_000.0  # 10-ms bins over 1 s, in µs


def hist_reference(spikes, starts, edges) -> np.ndarray:
    """Counts per trial with ``np.histogram`` on relative times, bins ``[a, b)``.

    ``np.histogram`` closes its last bin, so spikes exactly on the last
    edge are taken out of it.
    """
    spikes = np.asarray(spikes, dtype=float)
    edges = np.asarray(edges, dtype=float)
    rows = []
    for start in np.asarray(starts, dtype=float):
        rel = spikes - start
        counts, _ = np.histogram(rel, bins=edges)
        counts[-1] -= np.count_nonzero(rel == edges[-1])
        rows.append(counts)
    return np.array(rows, dtype=float).reshape(len(starts), len(edges) - 1)


@pytest.fixture(scope="module")
def grasshopper(nitime_dir: Path) -> dict[str, np.ndarray]:
    """The two grasshopper recordings, spike times in µs."""
    return {f"recording{i}": np.loadtxt(nitime_dir / f"grasshopper_spike_times{i}.txt", comments="#") for i in (1, 2)}


@pytest.fixture(scope="module")
def grass_bd(grasshopper):
    return read_spikes(grasshopper, ONSETS_US, LABELS, 0.0, 1.0, 0.01, time_unit="us")


# ----------------------------------------------------------------------
# grasshopper recordings through read_spikes


def test_grasshopper_files_match_readme(grasshopper):
    assert {k: len(v) for k, v in grasshopper.items()} == N_SPIKES
    for train in grasshopper.values():
        assert train.min() >= 0 and train.max() < 10_000_000  # within [0, 10 s)
        assert np.all(train == np.round(train))  # whole µs: integer references are exact


def test_grasshopper_counts_sum_to_spikes_in_window(grasshopper, grass_bd):
    assert grass_bd.modality == "spikes"
    assert grass_bd.shape == (10, 2, 100)
    assert grass_bd.feature_names == ["recording1", "recording2"]
    assert list(grass_bd.features["n_spikes"]) == [929, 868]
    totals = grass_bd.data.sum(axis=(0, 2))
    expected = [np.count_nonzero((t >= 0) & (t < 10_000_000)) for t in grasshopper.values()]
    np.testing.assert_array_equal(totals, expected)
    np.testing.assert_array_equal(totals, [929, 868])
    assert list(grass_bd.conditions) == LABELS
    np.testing.assert_allclose(grass_bd.obs["onset"], np.arange(10.0))


def test_grasshopper_bins_equal_histogram(grasshopper, grass_bd):
    # The recordings hold spikes exactly on 10-ms edges (e.g. 690000 µs), which
    # float conversion to seconds must not move to the previous bin.
    on_edges = sum(np.count_nonzero(t % 10_000 == 0) for t in grasshopper.values())
    assert on_edges > 0
    for u, train in enumerate(grasshopper.values()):
        ref = hist_reference(train, ONSETS_US, EDGES_US)
        np.testing.assert_array_equal(grass_bd.data[:, u, :], ref)


@pytest.mark.parametrize("time_unit, factor", [("s", 1e-6), ("ms", 1e-3), ("us", 1.0)])
def test_time_units_give_same_counts(grasshopper, grass_bd, time_unit, factor):
    trains = {k: v * factor for k, v in grasshopper.items()}
    bd = read_spikes(trains, ONSETS_US * factor, LABELS, 0.0, 1.0, 0.01, time_unit=time_unit)
    np.testing.assert_array_equal(bd.data, grass_bd.data)
    np.testing.assert_allclose(bd.obs["onset"], np.arange(10.0))


def test_rates_are_counts_over_bin_size(grasshopper, grass_bd):
    rates = read_spikes(grasshopper, ONSETS_US, LABELS, 0.0, 1.0, 0.01, time_unit="us", output="rates")
    np.testing.assert_allclose(rates.data, grass_bd.data / 0.01, rtol=1e-12)
    # mean rate over the 10 s equals the spike count / 10 s
    np.testing.assert_allclose(rates.data.mean(axis=(0, 2)), [92.9, 86.8])


def test_without_bin_size_data_are_2d_totals(grasshopper, grass_bd):
    bd = read_spikes(grasshopper, ONSETS_US, LABELS, 0.0, 1.0, time_unit="us")
    assert bd.shape == (10, 2)
    assert bd.times is None and bd.n_times is None
    np.testing.assert_array_equal(bd.data, grass_bd.data.sum(axis=2))
    for u, train in enumerate(grasshopper.values()):
        ref = hist_reference(train, ONSETS_US, [0.0, 1e6])[:, 0]
        np.testing.assert_array_equal(bd.data[:, u], ref)
    # 2-s windows on 5 onsets: rates are totals / 2 s
    onsets = ONSETS_US[::2]
    totals = read_spikes(grasshopper, onsets, LABELS[:5], 0.0, 2.0, time_unit="us")
    rates = read_spikes(grasshopper, onsets, LABELS[:5], 0.0, 2.0, time_unit="us", output="rates")
    np.testing.assert_array_equal(totals.data.sum(axis=0), [929, 868])
    np.testing.assert_allclose(rates.data, totals.data / 2.0)


def test_times_are_bin_centres(grasshopper, grass_bd):
    np.testing.assert_allclose(grass_bd.times, (np.arange(100) + 0.5) * 0.01, atol=1e-12)
    assert grass_bd.sfreq == pytest.approx(100.0)
    bd = read_spikes(grasshopper, ONSETS_US[1:], LABELS[1:], -0.2, 0.3, 0.05, time_unit="us")
    assert bd.shape == (9, 2, 10)
    np.testing.assert_allclose(bd.times, -0.175 + 0.05 * np.arange(10), atol=1e-12)
    assert bd.sfreq == pytest.approx(20.0)
    # windows starting before the onset: reference on the same negative edges
    edges_us = -200_000.0 + 50_000.0 * np.arange(11)
    for u, train in enumerate(grasshopper.values()):
        np.testing.assert_array_equal(bd.data[:, u], hist_reference(train, ONSETS_US[1:], edges_us))


def test_overlapping_windows_count_a_spike_in_each(grasshopper):
    train = grasshopper["recording1"]
    onsets = np.array([0.0, 250_000.0, 500_000.0])  # 1-s windows overlapping by 750 ms
    bd = read_spikes([train], onsets, ["a", "b", "c"], 0.0, 1.0, 0.25, time_unit="us")
    ref = hist_reference(train, onsets, np.arange(5) * 250_000.0)
    np.testing.assert_array_equal(bd.data[:, 0], ref)
    # the shifted windows see the same spikes, one bin later
    np.testing.assert_array_equal(bd.data[0, 0, 1:], bd.data[1, 0, :-1])


def test_dict_list_and_unit_ids(grasshopper, grass_bd):
    as_list = read_spikes(list(grasshopper.values()), ONSETS_US, LABELS, 0.0, 1.0, 0.01, time_unit="us")
    np.testing.assert_array_equal(as_list.data, grass_bd.data)
    assert as_list.feature_names == ["0", "1"]
    named = read_spikes(list(grasshopper.values()), ONSETS_US, LABELS, 0.0, 1.0, 0.01, time_unit="us", units=["u7", 42])
    assert named.feature_names == ["u7", "42"]
    np.testing.assert_array_equal(named.data, grass_bd.data)
    renamed = read_spikes(grasshopper, ONSETS_US, LABELS, 0.0, 1.0, 0.01, time_unit="us", units=["a", "b"])
    assert renamed.feature_names == ["a", "b"]
    # reversed dict order reverses the units
    rev = read_spikes(dict(reversed(list(grasshopper.items()))), ONSETS_US, LABELS, 0, 1, 0.01, time_unit="us")
    assert rev.feature_names == ["recording2", "recording1"]
    np.testing.assert_array_equal(rev.data, grass_bd.data[:, ::-1])
    with pytest.raises(LabelError, match="units"):
        read_spikes(grasshopper, ONSETS_US, LABELS, 0.0, 1.0, 0.01, time_unit="us", units=["only_one"])


def test_single_unit_array(grasshopper, grass_bd):
    bd = read_spikes(grasshopper["recording2"], ONSETS_US, LABELS, 0.0, 1.0, 0.01, time_unit="us")
    assert bd.shape == (10, 1, 100)
    assert bd.feature_names == ["0"]
    np.testing.assert_array_equal(bd.data[:, 0], grass_bd.data[:, 1])


def test_labels_dataframe_keeps_extra_columns(grasshopper, grass_bd):
    table = pd.DataFrame(
        {
            "condition": ["odd" if i % 2 else "even" for i in range(10)],
            "stim_db": np.arange(10) * 5.0,
            "note": list("abcdefghij"),
        },
        index=np.arange(100, 110),
    )
    before = table.copy()
    bd = read_spikes(grasshopper, ONSETS_US, table, 0.0, 1.0, 0.01, time_unit="us", subject="gh", session=3)
    assert {"condition", "stim_db", "note", "onset", "subject", "session"} <= set(bd.obs.columns)
    assert list(bd.obs.index) == list(range(10))
    np.testing.assert_array_equal(bd.obs["stim_db"], before["stim_db"].to_numpy())
    assert list(bd.obs["note"]) == list("abcdefghij")
    assert list(bd.conditions) == list(before["condition"])
    assert set(bd.obs["subject"]) == {"gh"} and set(bd.obs["session"]) == {3}
    pd.testing.assert_frame_equal(table, before)  # the caller's table is not modified
    np.testing.assert_array_equal(bd.data, grass_bd.data)
    with pytest.raises(LabelError, match="condition"):
        read_spikes(grasshopper, ONSETS_US, table.drop(columns="condition"), 0.0, 1.0, 0.01, time_unit="us")


def test_provenance_records_parameters(grass_bd):
    (record,) = grass_bd.provenance
    assert record["step"] == "read_spikes"
    assert record["params"]["n_units"] == 2 and record["params"]["n_trials"] == 10
    assert record["params"]["bin_size"] == 0.01 and record["params"]["time_unit"] == "us"


def test_spike_exactly_on_edge_goes_to_later_bin():
    # 690000 µs * 1e-6 and 69 * 0.01 differ in the last bit; the spike starts bin 69.
    spikes = np.array([690_000.0, 689_999.0, 1_000_000.0, 0.0])
    bd = read_spikes(spikes, [0.0], ["a"], 0.0, 1.0, 0.01, time_unit="us")
    expected = np.zeros(100)
    expected[[0, 68, 69]] = 1  # 1 s (== tmax) is outside [0, 1)
    np.testing.assert_array_equal(bd.data[0, 0], expected)
    # same in seconds with decimal values
    bd = read_spikes([np.array([0.3, 0.7, 0.29999])], [0.0], ["a"], 0.0, 1.0, 0.1)
    np.testing.assert_array_equal(bd.data[0, 0], [0, 0, 1, 1, 0, 0, 0, 1, 0, 0])


def test_empty_train_gives_zero_counts(grasshopper):
    bd = read_spikes({"silent": [], "r1": grasshopper["recording1"]}, ONSETS_US, LABELS, 0, 1, 0.1, time_unit="us")
    assert bd.shape == (10, 2, 10)
    assert not bd.data[:, 0].any()
    assert list(bd.features["n_spikes"]) == [0, 929]
    assert bd.data[:, 1].sum() == 929


# ----------------------------------------------------------------------
# bad input


def test_window_not_whole_number_of_bins():
    with pytest.raises(ShapeError, match="whole number"):
        read_spikes([np.array([0.1])], [0.0], ["a"], 0.0, 1.0, 0.3)


def test_tmax_required():
    with pytest.raises(ShapeError, match="tmax"):
        read_spikes([np.array([0.1])], [0.0], ["a"], 0.0)


@pytest.mark.parametrize("tmin, tmax", [(1.0, 1.0), (1.0, 0.5)])
def test_tmin_not_below_tmax(tmin, tmax):
    with pytest.raises(ShapeError, match="tmin"):
        read_spikes([np.array([0.1])], [0.0], ["a"], tmin, tmax)


@pytest.mark.parametrize("bin_size", [0.0, -0.1, np.nan])
def test_bad_bin_size(bin_size):
    with pytest.raises(ShapeError, match="bin_size"):
        read_spikes([np.array([0.1])], [0.0], ["a"], 0.0, 1.0, bin_size)


def test_labels_length_mismatch():
    with pytest.raises(LabelError, match="labels has 2 entries but there are 3"):
        read_spikes([np.array([0.1])], [0.0, 1.0, 2.0], ["a", "b"], 0.0, 1.0)
    with pytest.raises(LabelError):
        read_spikes([np.array([0.1])], [0.0, 1.0], pd.DataFrame({"condition": ["a"]}), 0.0, 1.0)


def test_nan_spike_time_names_unit_and_position():
    trains = {"good": np.array([0.1, 0.2]), "bad": np.array([0.1, 0.2, 0.3, np.nan, 0.5])}
    with pytest.raises(NonFiniteError, match=r"'bad'.*NaN at index 3"):
        read_spikes(trains, [0.0], ["a"], 0.0, 1.0)
    with pytest.raises(NonFiniteError, match="trial_onsets.*index 1"):
        read_spikes([np.array([0.1])], [0.0, np.inf], ["a", "b"], 0.0, 1.0)


@pytest.mark.parametrize(
    "kwargs, word, choice", [({"time_unit": "ns"}, "time_unit", "'us'"), ({"output": "spikes"}, "output", "'rates'")]
)
def test_unknown_time_unit_or_output(kwargs, word, choice):
    with pytest.raises(UnknownNameError, match=word) as info:
        read_spikes([np.array([0.1])], [0.0], ["a"], 0.0, 1.0, **kwargs)
    assert choice in str(info.value)  # the valid choices are listed


def test_no_spike_train():
    with pytest.raises(ShapeError, match="No spike train"):
        read_spikes({}, [0.0], ["a"], 0.0, 1.0)
    with pytest.raises(ShapeError):
        read_spikes([np.zeros((2, 2))], [0.0], ["a"], 0.0, 1.0)  # a 2-D train


# ----------------------------------------------------------------------
# bin_spikes and read_spikes against np.histogram (property tests)

GRID = 8  # times are multiples of 1/8: sums and differences are exact in float
_ticks = st.integers(min_value=-40 * GRID, max_value=40 * GRID)


@st.composite
def binning_case(draw):
    edges = np.array(sorted(draw(st.sets(st.integers(-10 * GRID, 10 * GRID), min_size=2, max_size=8)))) / GRID
    starts = np.array(draw(st.lists(_ticks, min_size=1, max_size=5))) / GRID
    free = [t / GRID for t in draw(st.lists(_ticks, max_size=30))]
    # spikes exactly on a bin edge of some trial
    n_on = draw(st.integers(0, 10))
    on_edge = [draw(st.sampled_from(list(starts))) + draw(st.sampled_from(list(edges))) for _ in range(n_on)]
    spikes = np.array(free + on_edge, dtype=float)
    order = draw(st.permutations(range(len(spikes))))  # unsorted spike times
    return spikes[list(order)], starts, edges


@settings(max_examples=150, deadline=None)
@given(binning_case())
def test_bin_spikes_matches_histogram(case):
    spikes, starts, edges = case
    counts = bin_spikes(spikes, starts, edges)
    assert counts.shape == (len(starts), len(edges) - 1)
    np.testing.assert_array_equal(counts, hist_reference(spikes, starts, edges))
    # a spike lies in at most one bin of a trial
    for row, start in zip(counts, starts):
        inside = np.count_nonzero((spikes >= start + edges[0]) & (spikes < start + edges[-1]))
        assert row.sum() == inside


@settings(max_examples=30, deadline=None)
@given(st.lists(_ticks, min_size=1, max_size=4))
def test_bin_spikes_empty_train(starts):
    starts = np.array(starts) / GRID
    counts = bin_spikes(np.array([]), starts, np.array([0.0, 0.5, 1.0]))
    assert counts.shape == (len(starts), 2)
    assert not counts.any()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    bin_ms=st.sampled_from([1, 2, 5, 10, 20, 25, 50, 100]),
    n_bins=st.integers(1, 12),
    tmin_bins=st.integers(-5, 5),
    time_unit=st.sampled_from(["ms", "us"]),
    output=st.sampled_from(["counts", "rates"]),
)
def test_read_spikes_matches_integer_reference(data, bin_ms, n_bins, tmin_bins, time_unit, output):
    """Whole-ms spike times and decimal bin sizes: edges are hit exactly in ms."""
    per = 1 if time_unit == "ms" else 1000  # input units per ms
    tmin_ms = tmin_bins * bin_ms
    edges_ms = tmin_ms + bin_ms * np.arange(n_bins + 1)
    onsets_ms = np.array(data.draw(st.lists(st.integers(0, 3000), min_size=1, max_size=4)))
    span = st.integers(-1000, 4500)
    free = data.draw(st.lists(span, max_size=40))
    on_edge = data.draw(
        st.lists(st.tuples(st.sampled_from(list(onsets_ms)), st.sampled_from(list(edges_ms))), max_size=15)
    )
    units = [np.array(free + [int(a + b) for a, b in on_edge], dtype=float)[::-1]]
    units.append(np.array(data.draw(st.lists(span, max_size=10)), dtype=float))
    labels = [f"t{i}" for i in range(len(onsets_ms))]
    bd = read_spikes(
        [u * per for u in units],
        onsets_ms * per,
        labels,
        tmin_ms / 1000,
        (tmin_ms + n_bins * bin_ms) / 1000,
        bin_ms / 1000,
        time_unit=time_unit,
        output=output,
    )
    assert bd.shape == (len(onsets_ms), 2, n_bins)
    for u, train in enumerate(units):
        ref = hist_reference(train, onsets_ms, edges_ms)
        if output == "rates":
            ref = ref / (bin_ms / 1000)
        np.testing.assert_allclose(bd.data[:, u], ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(bd.times, (edges_ms[:-1] + edges_ms[1:]) / 2000, atol=1e-12)


# ----------------------------------------------------------------------
# NWB


def write_nwb(
    path: Path,
    trains_s: list[np.ndarray] | None,
    *,
    trials: bool = True,
    subject: str | None = "gh1",
    session_id: str | None = "sess7",
) -> Path:
    pynwb = pytest.importorskip("pynwb")
    from pynwb.file import Subject

    nwb = pynwb.NWBFile(
        session_description="grasshopper auditory receptor (nitime sample)",
        identifier=f"neuroenc-test-{path.stem}",
        session_start_time=dt.datetime(2006, 1, 1, tzinfo=dt.timezone.utc),
        session_id=session_id,
        subject=Subject(subject_id=subject, species="Chorthippus biguttulus") if subject else None,
    )
    for train in trains_s or []:
        nwb.add_unit(spike_times=train)
    if trials:
        nwb.add_trial_column(name="condition", description="stimulus condition")
        nwb.add_trial_column(name="stimulus", description="stimulus name")
        nwb.add_trial_column(name="level_db", description="sound level")
        for j in range(10):
            nwb.add_trial(
                start_time=float(j),
                stop_time=float(j + 1),
                condition="odd" if j % 2 else "even",
                stimulus=f"noise{j % 3}",
                level_db=50.0 + j,
            )
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


@pytest.fixture(scope="module")
def nwb_path(grasshopper, tmp_path_factory) -> Path:
    trains_s = [t * 1e-6 for t in grasshopper.values()]
    return write_nwb(tmp_path_factory.mktemp("nwb") / "grasshopper.nwb", trains_s)


def test_read_nwb_matches_read_spikes(grasshopper, grass_bd, nwb_path):
    bd = read_nwb(nwb_path, 0.0, 1.0, 0.01)
    assert bd.modality == "spikes"
    assert bd.shape == (10, 2, 100)
    assert bd.feature_names == ["0", "1"]
    assert list(bd.features["n_spikes"]) == [929, 868]
    np.testing.assert_array_equal(bd.data, grass_bd.data)
    for u, train in enumerate(grasshopper.values()):
        np.testing.assert_array_equal(bd.data[:, u], hist_reference(train, ONSETS_US, EDGES_US))
    np.testing.assert_allclose(bd.times, grass_bd.times)
    assert bd.sfreq == pytest.approx(100.0)
    assert bd.provenance[0]["step"] == "read_nwb"
    assert bd.provenance[0]["params"]["source"]["file"] == "grasshopper.nwb"


def test_read_nwb_keeps_trials_columns_and_metadata(nwb_path):
    bd = read_nwb(nwb_path, 0.0, 1.0)
    assert bd.shape == (10, 2)
    np.testing.assert_array_equal(bd.data.sum(axis=0), [929, 868])
    obs = bd.obs
    assert {"start_time", "stop_time", "condition", "stimulus", "level_db", "onset"} <= set(obs.columns)
    assert list(obs["condition"]) == ["odd" if j % 2 else "even" for j in range(10)]
    assert list(obs["stimulus"]) == [f"noise{j % 3}" for j in range(10)]
    np.testing.assert_array_equal(obs["level_db"], 50.0 + np.arange(10))
    np.testing.assert_array_equal(obs["onset"], obs["start_time"])
    np.testing.assert_array_equal(obs["stop_time"], np.arange(1.0, 11.0))
    assert set(obs["subject"]) == {"gh1"}
    assert set(obs["session"]) == {"sess7"}
    given = read_nwb(nwb_path, 0.0, 1.0, subject="S9", session=2)
    assert set(given.obs["subject"]) == {"S9"} and set(given.obs["session"]) == {2}


def test_read_nwb_without_subject_or_session(grasshopper, tmp_path):
    path = write_nwb(tmp_path / "bare.nwb", [grasshopper["recording1"] * 1e-6], subject=None, session_id=None)
    bd = read_nwb(path, 0.0, 1.0, 0.5)
    assert "subject" not in bd.obs and "session" not in bd.obs
    assert bd.data.sum() == 929


def test_read_nwb_custom_condition_column(nwb_path):
    bd = read_nwb(nwb_path, 0.0, 1.0, condition="stimulus")
    assert list(bd.conditions) == [f"noise{j % 3}" for j in range(10)]
    # the file's own condition column is kept under another name
    assert list(bd.obs["condition_nwb"]) == ["odd" if j % 2 else "even" for j in range(10)]
    assert "stimulus" not in bd.obs


def test_read_nwb_align_and_rates(nwb_path, grass_bd):
    stop = read_nwb(nwb_path, -1.0, 0.0, 0.01, align="stop_time")
    np.testing.assert_array_equal(stop.data, grass_bd.data)
    np.testing.assert_array_equal(stop.obs["onset"], np.arange(1.0, 11.0))
    rates = read_nwb(nwb_path, 0.0, 1.0, 0.01, output="rates")
    np.testing.assert_allclose(rates.data, grass_bd.data / 0.01, rtol=1e-12)


def test_read_nwb_without_trials_table(grasshopper, tmp_path):
    path = write_nwb(tmp_path / "notrials.nwb", [grasshopper["recording1"] * 1e-6], trials=False)
    with pytest.raises(LabelError, match="trials table"):
        read_nwb(path, 0.0, 1.0)


def test_read_nwb_without_units_table(tmp_path):
    path = write_nwb(tmp_path / "nounits.nwb", None)
    with pytest.raises(LabelError, match="units table"):
        read_nwb(path, 0.0, 1.0)


def test_read_nwb_unknown_condition_column(nwb_path):
    with pytest.raises(LabelError, match="'cue'") as info:
        read_nwb(nwb_path, 0.0, 1.0, condition="cue")
    for col in ("start_time", "stop_time", "condition", "stimulus", "level_db"):
        assert col in str(info.value)
    with pytest.raises(LabelError, match="'go_time'"):
        read_nwb(nwb_path, 0.0, 1.0, align="go_time")


def test_read_nwb_corrupt_files(tmp_path, nwb_path):
    pytest.importorskip("pynwb")
    garbage = tmp_path / "garbage.nwb"
    garbage.write_bytes(b"this is not an HDF5 file\n" * 20)
    truncated = tmp_path / "truncated.nwb"
    truncated.write_bytes(nwb_path.read_bytes()[:2048])
    h5py = pytest.importorskip("h5py")
    plain = tmp_path / "plain.nwb"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    for path in (garbage, truncated, plain):
        with pytest.raises(CorruptFileError, match=path.name):
            read_nwb(path, 0.0, 1.0)


def test_read_nwb_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="absent.nwb") as info:
        read_nwb(tmp_path / "absent.nwb", 0.0, 1.0)
    assert isinstance(info.value, FileNotFoundError)


def test_read_nwb_bad_window_is_checked(nwb_path):
    with pytest.raises(ShapeError, match="tmax"):
        read_nwb(nwb_path, 0.0)
    with pytest.raises(ShapeError, match="whole number"):
        read_nwb(nwb_path, 0.0, 1.0, 0.3)
