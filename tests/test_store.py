"""Tests of the HDF5 store: BrainData.to_hdf5/from_hdf5 and neuroenc._h5."""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import mne
import numpy as np
import pandas as pd
import pytest
from conftest import make_braindata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import neuroenc
from neuroenc import BrainData, concatenate
from neuroenc._h5 import read_frame, read_rows, write_array, write_frame
from neuroenc.errors import (
    CorruptFileError,
    EmptySelectionError,
    MissingFileError,
    StoreError,
    UnknownNameError,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def assert_frames_identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """assert_frame_equal, plus what check_exact=True lets through.

    It treats None and NaN in object columns as equal and compares floats by
    value (-0.0 == 0.0); the store must keep both exactly.
    """
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for i in range(a.shape[1]):
        x, y = a.iloc[:, i], b.iloc[:, i]
        if x.dtype == object:
            assert [type(v) for v in x] == [type(v) for v in y], a.columns[i]
        elif isinstance(x.dtype, np.dtype):
            assert x.to_numpy().tobytes() == y.to_numpy().tobytes(), a.columns[i]


def assert_same(a: BrainData, b: BrainData, provenance: bool = True) -> None:
    """Exact equality of everything the store keeps."""
    assert a.data.dtype == b.data.dtype and a.data.shape == b.data.shape
    assert a.data.tobytes() == b.data.tobytes()  # bit-exact, -0.0 and subnormals included
    assert_frames_identical(a.obs, b.obs)
    assert_frames_identical(a.features, b.features)
    assert a.modality == b.modality
    assert a.sfreq == b.sfreq
    for name in ("times", "affine", "mask"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
    if provenance:
        assert a.provenance == b.provenance


def new_file(tmp_dir: Path) -> Path:
    return tmp_dir / f"store{next(_counter)}.h5"


# --------------------------------------------------------------------------
# hypothesis: exact round trip of data and tables
# --------------------------------------------------------------------------
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8)
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
TZS = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"]


def _int_values(dtype: str, n: int):
    info = np.iinfo(dtype)
    return st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n)


@st.composite
def column(draw, n: int) -> pd.Series:
    """One obs column of n rows, of a randomly chosen dtype."""
    kind = draw(
        st.sampled_from(
            INT_DTYPES
            + ["float32", "float64", "bool", "str", "string", "object", "category", "category_num"]
            + ["Int64", "Int8", "UInt16", "boolean", "Float64", "Float32", "datetime", "datetime_tz", "timedelta"]
        )
    )
    maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731
    if kind in INT_DTYPES:
        return pd.Series(np.array(draw(_int_values(kind, n)), dtype=kind))
    if kind in ("float32", "float64"):
        width = 32 if kind == "float32" else 64
        return pd.Series(np.array(draw(st.lists(st.floats(width=width), min_size=n, max_size=n)), dtype=kind))
    if kind == "bool":
        return pd.Series(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool))
    if kind in ("str", "string"):
        return pd.Series(draw(st.lists(maybe(TEXT), min_size=n, max_size=n)), dtype=kind)
    if kind == "object":
        values = draw(st.lists(st.one_of(TEXT, st.sampled_from([None, np.nan, pd.NA])), min_size=n, max_size=n))
        out = pd.Series(np.empty(n, dtype=object), dtype=object)
        for i, v in enumerate(values):
            out.iat[i] = v
        return out
    if kind == "category":
        cats = draw(st.lists(TEXT, min_size=1, max_size=5, unique=True))
        values = draw(st.lists(maybe(st.sampled_from(cats)), min_size=n, max_size=n))
        return pd.Series(pd.Categorical(values, categories=cats, ordered=draw(st.booleans())))
    if kind == "category_num":
        elem = st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False))
        cats = draw(st.lists(elem, min_size=1, max_size=5, unique=True))
        if len({type(c) for c in cats}) > 1:
            cats = [float(c) for c in cats]
        cats = list(dict.fromkeys(cats))
        values = draw(st.lists(maybe(st.sampled_from(cats)), min_size=n, max_size=n))
        return pd.Series(pd.Categorical(values, categories=cats, ordered=draw(st.booleans())))
    if kind in ("Int64", "Int8", "UInt16"):
        info = np.iinfo(kind.lower())
        values = draw(st.lists(maybe(st.integers(int(info.min), int(info.max))), min_size=n, max_size=n))
        return pd.Series(pd.array(values, dtype=kind))
    if kind == "boolean":
        return pd.Series(pd.array(draw(st.lists(maybe(st.booleans()), min_size=n, max_size=n)), dtype="boolean"))
    if kind in ("Float64", "Float32"):
        width = 64 if kind == "Float64" else 32
        values = draw(st.lists(maybe(st.floats(width=width, allow_nan=False)), min_size=n, max_size=n))
        return pd.Series(pd.array(values, dtype=kind))
    # datetimes and timedeltas: integers in the column's unit, with NaT
    unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
    bound = {"s": 10**11, "ms": 10**14, "us": 10**16, "ns": 2**62}[unit]  # beyond 1677-2262 except for ns
    ints = draw(st.lists(maybe(st.integers(-bound, bound)), min_size=n, max_size=n))
    raw = np.array([np.iinfo(np.int64).min if v is None else v for v in ints], dtype=np.int64)
    if kind == "timedelta":
        return pd.Series(raw.view(f"timedelta64[{unit}]"))
    naive = pd.Series(raw.view(f"datetime64[{unit}]"))
    if kind == "datetime":
        return naive
    return naive.dt.tz_localize("UTC").dt.tz_convert(draw(st.sampled_from(TZS)))


@st.composite
def frames(draw, n: int, first: tuple[str, pd.Series]) -> pd.DataFrame:
    labels = draw(st.lists(TEXT.filter(lambda s: s != first[0]), max_size=6, unique=True))
    cols = {first[0]: first[1]}
    for label in labels:
        cols[label] = draw(column(n))
    return pd.DataFrame(cols)


@st.composite
def braindatas(draw) -> BrainData:
    n_obs = draw(st.integers(1, 6))
    n_features = draw(st.integers(1, 4))
    three_d = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (n_obs, n_features) + ((draw(st.integers(1, 5)),) if three_d else ())
    width = 32 if dtype == np.float32 else 64
    data = draw(hnp.arrays(dtype, shape, elements=st.floats(width=width, allow_nan=False, allow_infinity=False)))
    conditions = pd.Series(draw(st.lists(TEXT, min_size=n_obs, max_size=n_obs)), dtype="str")
    obs = draw(frames(n_obs, ("condition", conditions)))
    names = pd.Series(draw(st.lists(TEXT, min_size=n_features, max_size=n_features, unique=True)), dtype="str")
    features = draw(frames(n_features, ("name", names)))
    kwargs = {}
    if three_d:
        kwargs["sfreq"] = draw(st.sampled_from([100.0, 512.0, 1.0 / 3.0]))
    prov = draw(st.lists(st.dictionaries(TEXT, st.one_of(st.integers(), TEXT, st.none())), max_size=2))
    modality = draw(st.sampled_from(["eeg", "meg", "fmri", "spikes"]))
    return BrainData(data, obs, modality, features=features, provenance=prov, **kwargs)


@given(bd=braindatas())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_roundtrip_property(tmp_path_factory, bd):
    path = new_file(tmp_path_factory.getbasetemp())
    bd.to_hdf5(path, "entry")
    back = BrainData.from_hdf5(path, "entry")
    assert_same(bd, back)
    path.unlink()


@given(df=st.integers(0, 5).flatmap(lambda n: frames(n, ("first", pd.Series(range(n), dtype="int64")))))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_frame_roundtrip_property(tmp_path_factory, df):
    """write_frame/read_frame alone, including empty tables."""
    path = new_file(tmp_path_factory.getbasetemp())
    with h5py.File(path, "w") as f:
        write_frame(f, "df", df)
    with h5py.File(path, "r") as f:
        back = read_frame(f, "df")
    assert_frames_identical(df, back)
    path.unlink()


def per_dataset_layout(group: h5py.Group, without: tuple[str, ...] = ()) -> None:
    """Rewrite a frame group the way older versions did: each column's encoding on its dataset."""
    for name, encoding in json.loads(group.attrs["encodings"]).items():
        for attr, value in encoding.items():
            if attr not in without:
                group[name].attrs[attr] = value
    del group.attrs["encodings"]


def test_frames_written_with_per_dataset_encodings_still_read(tmp_path):
    """Files from before the column encodings moved to one group attribute."""
    df = pd.DataFrame(
        {
            "cat": pd.Categorical(["lo", "hi", None], categories=["lo", "hi"], ordered=True),
            "dt_tz": pd.to_datetime(["2020-03-29 01:30", None, "1600-01-01"], format="ISO8601")
            .as_unit("us")
            .tz_localize("UTC"),
            "s": pd.Series(["a", None, "b"], dtype=object),
            "i": pd.array([1, None, 3], dtype="Int64"),
        },
        index=pd.Index([5, 6, 7], name="trial"),
    )
    with h5py.File(tmp_path / "old.h5", "w") as f:
        group = write_frame(f, "df", df)
        assert set(json.loads(group.attrs["encodings"])) == {"c0", "c0__categories", "c1", "c2", "c3", "index"}
        per_dataset_layout(group)
    with h5py.File(tmp_path / "old.h5", "r") as f:
        assert_frames_identical(df, read_frame(f, "df"))


def test_numeric_columns_of_one_dtype_share_a_dataset(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "a": np.arange(5),
            "s": pd.Series(list("vwxyz"), dtype="str"),
            "x": rng.standard_normal(5),
            "b": np.arange(5) * -3,
            "flag": np.array([True, False, True, True, False]),
            "y": np.array([np.nan, -0.0, np.inf, 1e-300, 2.5]),
            "z": rng.standard_normal(5) + 1j,
            "n": np.array([1, 2, 3, 4, 5], dtype=np.int8),
        },
        index=pd.Index([10, 11, 12, 13, 14], name="trial"),
    )
    with h5py.File(tmp_path / "f.h5", "w") as f:
        group = write_frame(f, "df", df)
        shapes = sorted(group[name].shape for name in group if name.startswith("block"))
        assert shapes == [(5, 2), (5, 2)]  # int64 a and b, float64 x and y; the rest one dataset each
    with h5py.File(tmp_path / "f.h5", "r") as f:
        back = read_frame(f, "df")
    assert_frames_identical(df, back)
    assert back["a"].to_numpy().flags.c_contiguous


def test_roundtrip_explicit_dtypes(tmp_path):
    """One of each encoding, including the cases that used to lose information."""
    obs = pd.DataFrame(
        {
            "condition": pd.Series(["fäce", "ハウス", None, ""], dtype="str"),
            "obj_none": pd.Series(["a", None, "b", None], dtype=object),
            "obj_nan": pd.Series(["a", np.nan, "b", np.nan], dtype=object),  # as pd.concat fills
            "obj_mixed_na": pd.Series(["a", None, np.nan, pd.NA], dtype=object),
            "string": pd.Series(["x", pd.NA, "", "y"], dtype="string"),
            "cat": pd.Categorical(["lo", "hi", None, "lo"], categories=["lo", "hi"], ordered=True),
            "cat_int": pd.Categorical([3, 1, 3, None]),
            "u64": np.array([0, 1, 2**64 - 1, 5], dtype=np.uint64),
            "i8": np.array([-128, 0, 127, 1], dtype=np.int8),
            "f32": np.array([np.nan, -0.0, np.inf, 1e-40], dtype=np.float32),
            "Int64": pd.array([1, None, -(2**63), 2**63 - 1], dtype="Int64"),
            "boolean": pd.array([True, None, False, None], dtype="boolean"),
            "Float64": pd.array([0.5, None, -1.0, 1e300], dtype="Float64"),
            "dt": pd.to_datetime(["2020-01-01", None, "1066-10-14", "9999-12-31"], format="ISO8601").as_unit("s"),
            "dt_tz": pd.to_datetime(["2020-03-29 01:30", None, "1600-01-01", "2500-07-01"], format="ISO8601")
            .as_unit("us")
            .tz_localize("UTC")
            .tz_convert("Europe/Paris"),
            "td": pd.to_timedelta([1.5, None, -3, 1e6], unit="s"),
        }
    )
    bd = BrainData(np.arange(8.0).reshape(4, 2), obs, "fmri")
    bd.to_hdf5(tmp_path / "x.h5")
    back = BrainData.from_hdf5(tmp_path / "x.h5")
    assert_same(bd, back)
    assert back.obs["obj_mixed_na"].iloc[1] is None and back.obs["obj_mixed_na"].iloc[3] is pd.NA
    assert back.obs["dt_tz"].iloc[2] == pd.Timestamp("1600-01-01", tz="UTC")


def test_concatenated_obs_roundtrip(tmp_path):
    """The union of obs columns has NaN in object columns; they must come back as NaN."""
    a = make_braindata(n_obs=3, seed=1)
    b = make_braindata(n_obs=3, seed=2)
    b.obs["note"] = pd.Series(["x", "y", "z"], dtype=object)
    b.obs["count"] = pd.array([1, 2, None], dtype="Int64")
    both = concatenate([a, b], keys=["s1", "s2"], key_name="subject")
    both.to_hdf5(tmp_path / "c.h5", "both")
    assert_same(both, BrainData.from_hdf5(tmp_path / "c.h5", "both"))


def test_tz_column_from_older_files_reads_as_nanoseconds(tmp_path):
    """Files written before the unit attribute existed stored tz-aware times in ns."""
    col = pd.Series(pd.to_datetime(["2020-01-01 12:00", None]).as_unit("ns").tz_localize("Asia/Tokyo"))
    df = pd.DataFrame({"t": col})
    with h5py.File(tmp_path / "old.h5", "w") as f:
        per_dataset_layout(write_frame(f, "df", df), without=("unit",))
    with h5py.File(tmp_path / "old.h5", "r") as f:
        pd.testing.assert_frame_equal(read_frame(f, "df"), df)


@pytest.mark.parametrize(
    "column, message",
    [
        (pd.Series(["ok", "a\x00b"], dtype="str"), "NUL character"),
        (pd.Series(["a", 1], dtype=object), "mixes strings with int"),
        (pd.Series(pd.period_range("2020", periods=2, freq="M")), "cannot be stored"),
    ],
)
def test_unstorable_column_raises_and_leaves_file(tmp_path, column, message):
    path = tmp_path / "s.h5"
    make_braindata().to_hdf5(path, "keep")
    before = path.read_bytes()
    bd = make_braindata(n_obs=2)
    bd.obs["bad"] = column.to_numpy() if column.dtype == object else column
    with pytest.raises(StoreError, match=message):
        bd.to_hdf5(path, "new")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


# --------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def eeg_real(eegbci_dir) -> BrainData:
    names = mne.channels.get_builtin_montages()
    montage = "colin27_1005" if "colin27_1005" in names else "standard_1005"
    raws = []
    for run in (4, 8):
        raw = mne.io.read_raw_edf(eegbci_dir / f"S001R{run:02d}.edf", preload=True, verbose="error")
        mne.datasets.eegbci.standardize(raw)
        raw.set_montage(montage, verbose="error")
        raws.append(raw)
    return neuroenc.io.read_eeg(raws, {"left": "T1", "right": "T2"}, tmin=-0.5, tmax=2.0)


def test_roundtrip_physionet_eeg(tmp_path, eeg_real):
    bd = eeg_real
    path = tmp_path / "eeg.h5"
    bd.to_hdf5(path, "S001/imagery")
    back = BrainData.from_hdf5(path, "S001/imagery")
    assert_same(bd, back)
    assert back.info is not None
    assert back.info["ch_names"] == bd.info["ch_names"] == back.feature_names
    assert back.info["sfreq"] == bd.info["sfreq"] == 160.0
    for c0, c1 in zip(bd.info["chs"], back.info["chs"]):
        assert (c0["ch_name"], c0["kind"], c0["coil_type"], c0["unit"]) == (
            c1["ch_name"],
            c1["kind"],
            c1["coil_type"],
            c1["unit"],
        )
        np.testing.assert_array_equal(c0["loc"], c1["loc"])
    assert np.isfinite(np.array([c["loc"][:3] for c in back.info["chs"]])).all()
    assert len(back.info["dig"]) == len(bd.info["dig"]) > 0
    for d0, d1 in zip(bd.info["dig"], back.info["dig"]):
        np.testing.assert_array_equal(d0["r"], d1["r"])
    # the restored info is usable: MNE epochs carry the positions
    ep = back.to_mne()
    np.testing.assert_array_equal(ep.get_data(), bd.data)
    np.testing.assert_allclose(
        ep.get_montage().get_positions()["ch_pos"]["Cz"], bd.info.get_montage().get_positions()["ch_pos"]["Cz"]
    )


def test_roundtrip_haxby_fmri(tmp_path, haxby_dir):
    labels, runs = np.loadtxt(haxby_dir / "attributes_literal.txt", dtype=str).T
    bd = neuroenc.io.read_fmri(
        haxby_dir / "bold.nii.gz", labels=labels, runs=runs.astype(int), mask=haxby_dir / "mask.nii.gz"
    )
    path = tmp_path / "haxby.h5"
    bd.to_hdf5(path, "sub-1")
    back = BrainData.from_hdf5(path, "sub-1")
    assert_same(bd, back)
    assert back.mask.dtype == bool and int(back.mask.sum()) == 530
    np.testing.assert_array_equal(np.asanyarray(back.to_nifti().dataobj), np.asanyarray(bd.to_nifti().dataobj))
    faces = BrainData.from_hdf5(path, "sub-1", obs_query="condition == 'face' and run < 3")
    ref = bd.select("condition == 'face' and run < 3")
    assert faces.n_obs == 27
    assert faces.data.tobytes() == ref.data.tobytes()
    pd.testing.assert_frame_equal(faces.obs, ref.obs)
    np.testing.assert_array_equal(faces.mask, bd.mask)


# --------------------------------------------------------------------------
# keys, overwrite, errors
# --------------------------------------------------------------------------
def test_several_and_nested_keys(tmp_path):
    path = tmp_path / "multi.h5"
    items = {
        "data": make_braindata(seed=0),
        "sub-01/run-1": make_braindata(seed=1, n_times=None),
        "sub-01/run-2": make_braindata(seed=2, modality="meg"),
        "sub-02/ses-1/run-1": make_braindata(seed=3, n_obs=4),
    }
    for key, bd in items.items():
        bd.to_hdf5(path, key)
    for key, bd in items.items():
        assert_same(bd, BrainData.from_hdf5(path, key))
    with pytest.raises(StoreError, match="'sub-01' in .* is not a BrainData"):
        BrainData.from_hdf5(path, "sub-01")
    with pytest.raises(StoreError, match="inside the entry 'data'"):
        make_braindata().to_hdf5(path, "data/extra")


def test_overwrite(tmp_path):
    path = tmp_path / "o.h5"
    first, second = make_braindata(seed=1), make_braindata(seed=2, n_obs=5)
    first.to_hdf5(path, "x")
    make_braindata(seed=9).to_hdf5(path, "other")
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    with pytest.raises(StoreError, match=r"Entry 'x' already exists in .*; pass overwrite=True"):
        second.to_hdf5(path, "x")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert_same(first, BrainData.from_hdf5(path, "x"))
    second.to_hdf5(path, "x", overwrite=True)
    assert_same(second, BrainData.from_hdf5(path, "x"))
    assert_same(make_braindata(seed=9), BrainData.from_hdf5(path, "other"))
    assert not list(tmp_path.glob("*.tmp"))


def test_overwrite_refuses_to_drop_a_group_of_entries(tmp_path):
    path = tmp_path / "g.h5"
    make_braindata(seed=1).to_hdf5(path, "sub-01/run-1")
    make_braindata(seed=2).to_hdf5(path, "sub-01/run-2")
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"'sub-01' .* is not an entry.*'sub-01/run-1', 'sub-01/run-2'"):
        make_braindata().to_hdf5(path, "sub-01", overwrite=True)
    assert path.read_bytes() == before
    with h5py.File(path, "a") as f:
        f.create_dataset("table", data=[1, 2, 3])
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"'table' .* is not an entry.*entries inside: none"):
        make_braindata().to_hdf5(path, "table", overwrite=True)
    assert path.read_bytes() == before
    assert_same(make_braindata(seed=2), BrainData.from_hdf5(path, "sub-01/run-2"))


def test_repeated_overwrites_do_not_grow_the_file(tmp_path):
    """HDF5 never reclaims deleted space; an overwrite must rebuild the file without the old entry."""
    path = tmp_path / "grow.h5"
    make_braindata(seed=5, n_obs=6).to_hdf5(path, "sub-01/keep")
    make_braindata(seed=6, n_obs=8).to_hdf5(path, "sub-02/keep")
    big = make_braindata(seed=1, n_obs=400, n_features=32, n_times=100)
    big.to_hdf5(path, "sub-01/run-1")
    size_once = path.stat().st_size
    for seed in range(2, 7):
        latest = make_braindata(seed=seed, n_obs=400, n_features=32, n_times=100)
        latest.to_hdf5(path, "sub-01/run-1", overwrite=True)
    assert path.stat().st_size <= size_once * 1.02
    assert_same(latest, BrainData.from_hdf5(path, "sub-01/run-1"))
    # the rebuild keeps the siblings of the replaced entry, at every nesting level, and root attributes
    assert_same(make_braindata(seed=5, n_obs=6), BrainData.from_hdf5(path, "sub-01/keep"))
    assert_same(make_braindata(seed=6, n_obs=8), BrainData.from_hdf5(path, "sub-02/keep"))


@pytest.mark.parametrize("compression", ["lzf", "gzip", None])
def test_compression_options_round_trip(tmp_path, compression):
    path = tmp_path / "c.h5"
    bd = make_braindata(seed=3, n_obs=50, n_features=16, n_times=40)
    bd.to_hdf5(path, "x", compression=compression)
    with h5py.File(path, "r") as f:
        assert f["x/data"].compression == compression
        assert f["x/data"].chunks is not None
    assert_same(bd, BrainData.from_hdf5(path, "x"))


def test_unknown_compression_is_refused_before_writing(tmp_path):
    path = tmp_path / "c.h5"
    with pytest.raises(UnknownNameError, match="compression 'zstd'.*'lzf', 'gzip', None"):
        make_braindata().to_hdf5(path, "x", compression="zstd")
    assert not path.exists()


def test_missing_key_lists_entries(tmp_path):
    path = tmp_path / "k.h5"
    make_braindata().to_hdf5(path, "alpha")
    make_braindata().to_hdf5(path, "grp/beta")
    with h5py.File(path, "a") as f:
        f.create_dataset("not_an_entry", data=[1, 2])
    with pytest.raises(StoreError, match=r"No entry 'gamma' in .*k\.h5\. BrainData entries: 'alpha', 'grp/beta'\."):
        BrainData.from_hdf5(path, "gamma")
    with pytest.raises(StoreError, match="is not a BrainData"):
        BrainData.from_hdf5(path, "not_an_entry")
    with pytest.raises(StoreError, match="non-empty"):
        make_braindata().to_hdf5(path, "")


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "v.h5"
    make_braindata().to_hdf5(path)
    with h5py.File(path, "a") as f:
        f["data"].attrs["format_version"] = 99
    with pytest.raises(StoreError, match="format version 99.*Upgrade neuroenc"):
        BrainData.from_hdf5(path)


def test_bad_files(tmp_path):
    bd = make_braindata()
    good = tmp_path / "good.h5"
    bd.to_hdf5(good)
    raw = good.read_bytes()

    missing = tmp_path / "missing.h5"
    with pytest.raises(MissingFileError, match="HDF5 file not found"):
        BrainData.from_hdf5(missing)
    with pytest.raises(MissingFileError, match="Folder does not exist"):
        bd.to_hdf5(tmp_path / "no" / "dir.h5")

    text = tmp_path / "text.h5"
    text.write_text("this is not HDF5\n" * 100)
    with pytest.raises(CorruptFileError, match="not an HDF5 file"):
        BrainData.from_hdf5(text)
    with pytest.raises(CorruptFileError, match="not an HDF5 file"):
        bd.to_hdf5(text, "x")
    assert text.read_text() == "this is not HDF5\n" * 100
    with pytest.raises(CorruptFileError):
        BrainData.from_hdf5(io.BytesIO(b"garbage" * 100))

    for cut in (len(raw) // 2, len(raw) - 16):
        trunc = tmp_path / f"trunc{cut}.h5"
        trunc.write_bytes(raw[:cut])
        with pytest.raises(CorruptFileError, match="truncated"):
            BrainData.from_hdf5(trunc)
        with pytest.raises(CorruptFileError):
            BrainData.from_hdf5(io.BytesIO(raw[:cut]))
        with pytest.raises(CorruptFileError, match="truncated"):
            bd.to_hdf5(trunc, "more")
        assert trunc.read_bytes() == raw[:cut]
    assert not list(tmp_path.glob(".*.tmp"))


def test_read_from_file_objects(tmp_path):
    bd = make_braindata(n_obs=9)
    path = tmp_path / "f.h5"
    bd.to_hdf5(path, "e")
    with open(path, "rb") as fh:
        assert_same(bd, BrainData.from_hdf5(fh, "e"))
    assert_same(bd, BrainData.from_hdf5(io.BytesIO(path.read_bytes()), "e"))
    with pytest.raises(StoreError, match="No entry 'x'"):
        BrainData.from_hdf5(io.BytesIO(path.read_bytes()), "x")


# --------------------------------------------------------------------------
# partial reads
# --------------------------------------------------------------------------
class CountingFile:
    """A binary file object that counts the bytes read through it."""

    def __init__(self, fh):
        self.fh = fh
        self.bytes_read = 0

    def read(self, size=-1):
        out = self.fh.read(size)
        self.bytes_read += len(out)
        return out

    def readinto(self, buf):
        n = self.fh.readinto(buf)
        self.bytes_read += n
        return n

    def seek(self, *args):
        return self.fh.seek(*args)

    def tell(self):
        return self.fh.tell()


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    n_obs = 600
    rng = np.random.default_rng(5)
    obs = pd.DataFrame(
        {
            "condition": np.array(["a", "b", "c"])[rng.integers(0, 3, n_obs)],
            "trial": np.arange(n_obs),
            "run": np.repeat(np.arange(6), 100),
        }
    )
    bd = BrainData(rng.standard_normal((n_obs, 40, 50)), obs, "eeg", sfreq=250)
    path = tmp_path_factory.mktemp("big") / "big.h5"
    bd.to_hdf5(path, "big")
    with h5py.File(path, "r") as f:
        ds = f["big/data"]
        stored = ds.id.get_storage_size()
        chunk_rows = ds.chunks[0]
    return bd, path, stored, chunk_rows


def counted_read(path, query):
    with open(path, "rb") as fh:
        counter = CountingFile(fh)
        out = BrainData.from_hdf5(counter, "big", obs_query=query)
    return out, counter.bytes_read


def test_obs_query_reads_only_selected_chunks(big_store):
    bd, path, stored, chunk_rows = big_store
    n_chunks = -(-bd.n_obs // chunk_rows)
    assert n_chunks >= 10, "the data must span many chunks for this test to mean something"
    per_chunk = stored / n_chunks

    full, n_full = counted_read(path, None)
    assert_same(full, bd)
    assert n_full >= 0.95 * stored

    one, n_one = counted_read(path, "trial == 123")
    assert_same(one, bd.select(trial=123), provenance=False)
    assert n_one < 2 * per_chunk < 0.25 * stored

    two, n_two = counted_read(path, {"trial": [3, 598]})  # first and last chunk
    assert_same(two, bd.select(trial=[3, 598]), provenance=False)
    assert n_two < 3 * per_chunk

    run, n_run = counted_read(path, {"run": 2, "condition": ["a", "b"]})  # 100 contiguous rows
    assert_same(run, bd.select(run=2, condition=["a", "b"]), provenance=False)
    assert n_run < (100 / chunk_rows + 3) * per_chunk < 0.5 * stored


def test_obs_query_errors(big_store):
    _, path, _, _ = big_store
    with pytest.raises(EmptySelectionError, match="matched no observation"):
        BrainData.from_hdf5(path, "big", obs_query="trial > 10000")
    with pytest.raises(EmptySelectionError):
        BrainData.from_hdf5(path, "big", obs_query={"condition": "zz"})
    with pytest.raises(UnknownNameError, match="Unknown obs column: 'subject'"):
        BrainData.from_hdf5(path, "big", obs_query={"subject": 1})
    with pytest.raises(UnknownNameError, match="Cannot evaluate obs_query"):
        BrainData.from_hdf5(path, "big", obs_query="subject == 1")


@pytest.fixture(scope="module")
def row_datasets(tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / "rows.h5"
    rng = np.random.default_rng(0)
    arrays = {
        "1d": rng.standard_normal(97),
        "2d": rng.integers(0, 1000, (97, 5)).astype(np.int32),
        "3d": rng.standard_normal((97, 3, 4)).astype(np.float32),
    }
    with h5py.File(path, "w") as f:
        for name, arr in arrays.items():
            write_array(f, name, arr, chunk_bytes=64)  # a few rows per chunk
    f = h5py.File(path, "r")
    yield f, arrays
    f.close()


@given(
    name=st.sampled_from(["1d", "2d", "3d"]),
    rows=st.lists(st.integers(0, 96), unique=True, max_size=60).flatmap(st.permutations),
)
@settings(max_examples=150, deadline=None)
def test_read_rows_equals_fancy_indexing(row_datasets, name, rows):
    f, arrays = row_datasets
    ds, arr = f[name], arrays[name]
    assert ds.chunks is not None and ds.chunks[0] < 20
    idx = np.array(rows, dtype=np.int64)
    out = read_rows(ds, idx)
    expected = arr[idx]
    assert out.dtype == arr.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


def test_read_rows_none_reads_all(row_datasets):
    f, arrays = row_datasets
    for name, arr in arrays.items():
        np.testing.assert_array_equal(read_rows(f[name], None), arr)


# --------------------------------------------------------------------------
# crash safety and concurrency (separate processes)
# --------------------------------------------------------------------------
# Content of entry k, shared by the writer processes and the checks.
ENTRY_SRC = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd
    from neuroenc import BrainData

    def make_entry(k, n_obs=120):
        rng = np.random.default_rng(k)
        obs = pd.DataFrame({"condition": np.array(["l", "r"])[rng.integers(0, 2, n_obs)], "version": k})
        return BrainData(rng.standard_normal((n_obs, 64, 100)), obs, "eeg", sfreq=100.0)
    """
)
_entry_ns: dict = {}
exec(ENTRY_SRC, _entry_ns)
make_entry = _entry_ns["make_entry"]

# Even k: a new key e<k>; odd k: overwrite the key "latest" with version k.
WRITER_SRC = ENTRY_SRC + textwrap.dedent(
    """
    import sys
    path, k = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    while True:
        bd = make_entry(k)
        print(f"start {k}", flush=True)
        # gzip keeps each write a few tenths of a second long, so kills land mid-write.
        if k % 2 == 0:
            bd.to_hdf5(path, f"e{k:03d}", compression="gzip")
        else:
            bd.to_hdf5(path, "latest", overwrite=True, compression="gzip")
        print(f"done {k}", flush=True)
        k += 1
    """
)


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return env


def temp_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def check_store(path: Path, started: set[int], done: set[int], fixed: dict[str, BrainData]) -> None:
    """The file opens; every visible entry is complete and exact; every finished one is there."""
    with h5py.File(path, "r") as f:
        keys = set(neuroenc._h5.list_entries(f))
    for key, bd in fixed.items():
        assert_same(bd, BrainData.from_hdf5(path, key))
    for k in sorted(done):
        if k % 2 == 0:
            assert f"e{k:03d}" in keys, f"entry {k} was reported written but is missing"
    for key in keys - set(fixed) - {"latest"}:
        k = int(key[1:])
        assert k in started
        assert_same(make_entry(k), BrainData.from_hdf5(path, key))
    odd_done = [k for k in done if k % 2]
    if odd_done:
        assert "latest" in keys
    if "latest" in keys:
        back = BrainData.from_hdf5(path, "latest")
        version = int(back.obs["version"].iloc[0])
        assert version in started and version % 2 == 1
        assert version >= max(odd_done, default=-1)
        assert_same(make_entry(version), back)


@pytest.mark.slow
def test_sigkill_during_writes_never_damages_the_file(tmp_path):
    path = tmp_path / "crash.h5"
    fixed = {"base": make_entry(999, n_obs=3)}
    fixed["base"].to_hdf5(path, "base")
    rng = random.Random(1234)
    started: set[int] = set()
    done: set[int] = set()
    next_k = 0
    kills_mid_write = 0
    n_kills = 7
    for round_ in range(n_kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER_SRC, str(path), str(next_k)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        try:
            assert proc.stdout.readline().strip() == "ready"
            if round_ % 2 == 0 or round_ == n_kills - 1:
                # kill shortly after a write has begun: a write takes a few tenths of a second
                wait_for = f"start {next_k + rng.randint(0, 2)}"
                for line in proc.stdout:
                    line = line.strip()
                    if line.startswith("start "):
                        started.add(int(line.split()[1]))
                    elif line.startswith("done "):
                        done.add(int(line.split()[1]))
                    if line == wait_for:
                        break
                time.sleep(rng.uniform(0.02, 0.12))
            else:
                time.sleep(rng.uniform(0.1, 1.0))  # at any moment
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL, err
        for line in out.split("\n"):
            if line.startswith("start "):
                started.add(int(line.split()[1]))
            elif line.startswith("done "):
                done.add(int(line.split()[1]))
        stale = temp_files(path)
        assert len(stale) <= 1, "temporary files of earlier killed writers must have been removed"
        kills_mid_write += len(stale)
        check_store(path, started, done, fixed)
        next_k = max(started) + 1
    assert kills_mid_write >= 2, "the kills should interrupt some writes"
    assert len(done) >= 2
    # the last kill interrupted a write; the next write removes its temporary file
    assert temp_files(path)
    fixed["after"] = make_entry(5000, n_obs=2)
    fixed["after"].to_hdf5(path, "after")
    assert temp_files(path) == []
    check_store(path, started, done, fixed)


CONCURRENT_SRC = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import pandas as pd
    from neuroenc import BrainData
    path, writer, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    for j in range(3):
        rng = np.random.default_rng(100 * writer + j)
        obs = pd.DataFrame({"condition": ["a", "b"] * 20, "writer": writer, "j": j})
        BrainData(rng.standard_normal((40, 32, 100)), obs, "eeg", sfreq=100.0).to_hdf5(path, f"w{writer}/k{j}")
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_concurrent_writers_keep_every_entry(tmp_path):
    path = tmp_path / "shared.h5"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SRC, str(path), str(w), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for w in range(4)
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        go.touch()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            assert out.strip() == "finished"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    with h5py.File(path, "r") as f:
        keys = sorted(neuroenc._h5.list_entries(f))
    assert keys == sorted(f"w{w}/k{j}" for w in range(4) for j in range(3))
    for w in range(4):
        for j in range(3):
            back = BrainData.from_hdf5(path, f"w{w}/k{j}")
            rng = np.random.default_rng(100 * w + j)
            np.testing.assert_array_equal(back.data, rng.standard_normal((40, 32, 100)))
            assert set(back.obs["writer"]) == {w} and set(back.obs["j"]) == {j}
    assert temp_files(path) == []


def test_partial_read_is_recorded_in_provenance(tmp_path):
    path = tmp_path / "p.h5"
    bd = make_braindata(n_obs=12)
    bd.to_hdf5(path, "x")
    part = BrainData.from_hdf5(path, "x", obs_query={"condition": "a"})
    assert part.provenance[:-1] == bd.provenance
    last = part.provenance[-1]
    assert last["step"] == "from_hdf5"
    assert last["params"] == {"key": "x", "obs_query": {"condition": "a"}, "n_obs": 4, "of": 12}
    assert BrainData.from_hdf5(path, "x").provenance == bd.provenance
