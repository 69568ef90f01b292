"""Tests of the Activations container: validation, selection, alignment, HDF5 round trips."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import make_braindata

from neuroenc.activationdata import Activations, H5Layer, glob_matcher, per_layer
from neuroenc.errors import (
    EmptySelectionError,
    LabelError,
    NonFiniteError,
    ShapeError,
    StoreError,
    UnknownNameError,
)


def make_acts(n: int = 6, ids=None, seed: int = 0) -> Activations:
    rng = np.random.default_rng(seed)
    return Activations(
        {"conv": rng.standard_normal((n, 2, 3, 3)).astype(np.float32), "fc": rng.standard_normal((n, 4))},
        ids,
        model="TinyNet",
        metadata={"reduce": {"conv": None}},
    )


def assert_same_acts(a: Activations, b: Activations) -> None:
    assert a.layer_names == b.layer_names
    assert a.stimulus_ids.tolist() == b.stimulus_ids.tolist()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape
        assert a[name].tobytes() == b[name].tobytes()


# ----------------------------------------------------------------------
# construction


def test_mapping_interface_and_defaults():
    act = make_acts()
    assert act.layer_names == ["conv", "fc"] and list(act) == ["conv", "fc"] and len(act) == 2
    assert act.n_stimuli == 6 and act.stimulus_ids.tolist() == list(range(6))
    assert act.shapes == {"conv": (6, 2, 3, 3), "fc": (6, 4)}
    assert "fc" in act and "nope" not in act
    assert [k for k, _ in act.items()] == ["conv", "fc"]
    assert act.flattened("conv").shape == (6, 18)
    np.testing.assert_array_equal(act.flattened("conv")[2], act["conv"][2].ravel())
    assert act["conv"].dtype == np.float32  # dtype kept
    with pytest.raises(ValueError, match="read-only"):
        act["fc"][0, 0] = 1.0
    assert act.model == "TinyNet" and act.metadata == {"reduce": {"conv": None}}
    assert not act.is_lazy
    assert "2 layer(s), 6 stimuli" in repr(act)
    assert dict(act).keys() == {"conv", "fc"}
    assert act == act and act != make_acts()  # identity, no elementwise comparison


def test_string_ids_and_npz_input(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "acts.npz", layer1=rng.standard_normal((3, 5)), layer2=np.arange(6).reshape(3, 2))
    act = Activations(np.load(tmp_path / "acts.npz"), ["img_a", "img_b", "img_c"])
    assert act.stimulus_ids.tolist() == ["img_a", "img_b", "img_c"]
    assert act["layer2"].dtype == np.float64  # integers become float64
    assert Activations({"x": np.ones((2, 1))}, np.array([4, 9], dtype=np.int32)).stimulus_ids.dtype == np.int64


def test_torch_tensor_layers():
    torch = pytest.importorskip("torch")
    t = torch.arange(6.0).reshape(3, 2).requires_grad_()
    act = Activations({"h": t * 2})
    np.testing.assert_array_equal(act["h"], np.arange(6.0).reshape(3, 2) * 2)


@pytest.mark.parametrize(
    "layers, ids, error, match",
    [
        ([np.ones((2, 2))], None, ShapeError, "mapping"),
        ({}, None, EmptySelectionError, "at least one layer"),
        ({"a": np.ones((3, 2)), "b": np.ones((4, 2))}, None, ShapeError, "'b' holds 4 stimuli but layer 'a' holds 3"),
        ({"a": np.ones((0, 2))}, None, ShapeError, r"0 row\(s\)"),
        ({"a": np.array(1.0)}, None, ShapeError, "scalar"),
        ({"a": np.array([[1.0, np.nan]])}, None, NonFiniteError, "NaN"),
        ({"a": np.array([["x"]])}, None, ShapeError, "numeric"),
        ({3: np.ones((2, 2))}, None, UnknownNameError, "non-empty strings"),
        ({"a": np.ones((3, 2))}, [1, 2], LabelError, "2 entries but the layers hold 3"),
        ({"a": np.ones((3, 2))}, [1, 2, 1], LabelError, "1 is repeated"),
        ({"a": np.ones((3, 2))}, [1, "b", 2], LabelError, "all integers or all strings"),
        ({"a": np.ones((3, 2))}, [0.5, 1.5, 2.5], LabelError, "all integers or all strings"),
        ({"a": np.ones((3, 2))}, "abc", LabelError, "not one string"),
        ({"a": np.ones((2, 2))}, [[1], [2]], LabelError, "one-dimensional"),
    ],
)
def test_bad_input(layers, ids, error, match):
    with pytest.raises(error, match=match):
        Activations(layers, ids)


def test_unknown_layer_lists_available():
    with pytest.raises(UnknownNameError, match="Available: 'conv', 'fc'"):
        make_acts()["conv2"]


# ----------------------------------------------------------------------
# selection and alignment


def test_select_reorders_and_subsets():
    act = make_acts(ids=["a", "b", "c", "d", "e", "f"])
    sub = act.select(["e", "a"])
    assert sub.stimulus_ids.tolist() == ["e", "a"]
    np.testing.assert_array_equal(sub["fc"], act["fc"][[4, 0]])
    np.testing.assert_array_equal(sub["conv"], act["conv"][[4, 0]])
    assert sub.model == act.model and sub.metadata == act.metadata
    np.testing.assert_array_equal(act.index_of(["b", "b", "f"]), [1, 1, 5])
    with pytest.raises(LabelError, match="at most once"):
        act.select(["a", "a"])
    with pytest.raises(EmptySelectionError):
        act.select([])


def test_missing_ids_are_named():
    act = make_acts(ids=["a", "b", "c", "d", "e", "f"])
    with pytest.raises(UnknownNameError, match=r"2 stimulus id\(s\) not in the activations: 'x', 'y'"):
        act.select(["a", "x", "y"])
    with pytest.raises(UnknownNameError, match="stimulus ids are integers but the requested ids are of type str"):
        make_acts().select(["0", "1"])
    with pytest.raises(UnknownNameError, match="are strings but the requested ids are of type int"):
        act.select([0])


def test_align_to_braindata_repeated_and_averaged_conditions():
    brain = make_braindata(n_obs=12, n_times=None, modality="fmri")  # conditions a, b, c repeated
    act = make_acts(n=4, ids=["c", "x", "a", "b"])
    aligned = act.align(brain)
    averaged = brain.average("condition")
    assert aligned.stimulus_ids.tolist() == averaged.obs["condition"].tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(aligned["fc"], act["fc"][[2, 3, 0]])
    # Unique labels keep their order (here a reversed averaged data set).
    rev = averaged[::-1]
    assert act.align(rev).stimulus_ids.tolist() == ["c", "b", "a"]
    # Labels from a table or a plain sequence, and another column.
    assert act.align(pd.DataFrame({"image": ["b", "x"]}), by="image").stimulus_ids.tolist() == ["b", "x"]
    assert act.align(["x", "a"]).stimulus_ids.tolist() == ["x", "a"]
    trials = act.index_of(brain.conditions)
    np.testing.assert_array_equal(act.stimulus_ids[trials], brain.conditions)


def test_align_errors():
    brain = make_braindata(n_obs=6, n_times=None, modality="fmri")
    act = make_acts(n=2, ids=["a", "b"])
    with pytest.raises(UnknownNameError, match=r"1 stimulus id\(s\) not in the activations: 'c'"):
        act.align(brain)
    with pytest.raises(UnknownNameError, match="obs column"):
        act.align(brain, by="image")
    with pytest.raises(LabelError, match="missing values"):
        act.align(pd.DataFrame({"condition": ["a", None]}))
    with pytest.raises(LabelError, match="not one string"):
        act.align("ab")


def test_align_to_real_haxby_betas(haxby_dir):
    from neuroenc.datasets import load_haxby

    brain = load_haxby("betas")  # 8 categories x 12 runs
    categories = sorted(brain.obs["condition"].unique())
    rng = np.random.default_rng(2)
    act = Activations({"fc": rng.standard_normal((8, 16))}, categories[::-1])
    aligned = act.align(brain)
    assert aligned.stimulus_ids.tolist() == brain.average("condition").obs["condition"].tolist()
    rows = act.index_of(brain.conditions)
    assert rows.shape == (96,) and act.stimulus_ids[rows].tolist() == brain.conditions.tolist()
    with pytest.raises(UnknownNameError, match="'scrambledpix'"):
        Activations({"fc": np.ones((7, 2))}, [c for c in categories if c != "scrambledpix"]).align(brain)


# ----------------------------------------------------------------------
# HDF5


def test_hdf5_round_trip_exact(tmp_path):
    path = tmp_path / "acts.h5"
    act = Activations(
        {
            "features/0": np.random.default_rng(3).standard_normal((5, 3, 2)),
            "50%": np.arange(5.0)[:, None],
            ".": -np.zeros((5, 1)),
        },
        ["s1", "s2", "s3", "s4", "s5"],
        model="Net",
        metadata={"reduce": {"50%": {"name": "srp"}}, "k": 3},
    )
    act.to_hdf5(path)
    back = Activations.from_hdf5(path)
    assert back.is_lazy and "on disk" in repr(back)
    assert_same_acts(act, back)
    assert back.model == "Net" and back.metadata == act.metadata
    assert np.signbit(back["."]).all()  # -0.0 kept bit for bit
    eager = Activations.from_hdf5(path, lazy=False)
    assert not eager.is_lazy
    assert_same_acts(act, eager)
    int_ids = make_acts()
    int_ids.to_hdf5(path, key="group/int")
    back = Activations.from_hdf5(path, key="group/int")
    assert back.stimulus_ids.dtype == np.int64
    assert_same_acts(int_ids, back)


def test_hdf5_partial_read_and_lazy_select(tmp_path):
    path = tmp_path / "acts.h5"
    act = Activations({f"block{i}.conv": np.full((4, 2), float(i)) for i in range(3)} | {"head": np.eye(4)})
    act.to_hdf5(path)
    part = Activations.from_hdf5(path, layers=["block*.conv"])
    assert part.layer_names == ["block0.conv", "block1.conv", "block2.conv"]
    sub = Activations.from_hdf5(path, layers="head").select([3, 1])
    assert not sub.is_lazy
    np.testing.assert_array_equal(sub["head"], np.eye(4)[[3, 1]])
    with pytest.raises(UnknownNameError, match=r"'heads' \(closest: 'head'\)"):
        Activations.from_hdf5(path, layers="heads")
    loaded = Activations.from_hdf5(path).load()
    assert not loaded.is_lazy and loaded.layer_names == act.layer_names


def test_hdf5_store_rules(tmp_path):
    path = tmp_path / "acts.h5"
    act = make_acts()
    act.to_hdf5(path)
    with pytest.raises(StoreError, match="already exists"):
        act.to_hdf5(path)
    make_acts(seed=5).to_hdf5(path, overwrite=True)
    assert_same_acts(make_acts(seed=5), Activations.from_hdf5(path))
    make_braindata().to_hdf5(path, key="brain")
    assert_same_acts(make_acts(seed=5), Activations.from_hdf5(path))  # other entries kept
    with pytest.raises(StoreError, match="is a BrainData, not Activations"):
        Activations.from_hdf5(path, key="brain")
    with pytest.raises(StoreError, match="No group 'acts'.*Activations entries: 'activations'"):
        Activations.from_hdf5(path, key="acts")
    with pytest.raises(UnknownNameError, match="compression"):
        act.to_hdf5(path, key="x", compression="zstd")


def test_plain_hdf5_from_another_tool(tmp_path):
    path = tmp_path / "external.h5"
    rng = np.random.default_rng(4)
    with h5py.File(path, "w") as f:
        g = f.create_group("resnet")
        g["layer1"] = rng.standard_normal((3, 8)).astype(np.float32)
        g["avgpool"] = rng.standard_normal((3, 2))
        g["stimulus_ids"] = np.array([b"a.png", b"b.png", b"c.png"], dtype=h5py.string_dtype())
        g["notes"] = np.array(b"text", dtype=h5py.string_dtype())
        f["root_layer"] = np.ones((2, 2))
    act = Activations.from_hdf5(path, key="resnet")
    assert act.layer_names == ["avgpool", "layer1"]  # the group's (alphabetical) order
    assert act.stimulus_ids.tolist() == ["a.png", "b.png", "c.png"]
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(act["layer1"], f["resnet/layer1"][()])
    root = Activations.from_hdf5(path, key="/")
    assert root.layer_names == ["root_layer"] and root.stimulus_ids.tolist() == [0, 1]
    with h5py.File(path, "a") as f:
        f.create_group("empty")
    with pytest.raises(StoreError, match="no numeric dataset"):
        Activations.from_hdf5(path, key="empty")


def test_h5py_dataset_values_are_lazy_and_copied_by_to_hdf5(tmp_path):
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["big"] = np.arange(40.0).reshape(10, 4)
    with h5py.File(src, "r") as f:
        act = Activations({"big": f["big"], "small": np.zeros((10, 1))})
    assert act.is_lazy and isinstance(act._layers["big"], H5Layer)
    np.testing.assert_array_equal(act["big"], np.arange(40.0).reshape(10, 4))  # read after the file closed
    dst = tmp_path / "dst.h5"
    act.to_hdf5(dst)
    assert_same_acts(act, Activations.from_hdf5(dst))
    with h5py.File(src, "a") as f:
        del f["big"]
        f["big"] = np.zeros((3, 4))
    with pytest.raises(StoreError, match="changed shape"):
        act["big"]


def test_incomplete_stream_is_refused(tmp_path):
    path = tmp_path / "acts.h5"
    make_acts().to_hdf5(path)
    with h5py.File(path, "a") as f:
        f["activations/n_done"] = np.array([2])
    with pytest.raises(StoreError, match=r"incomplete \(2 of 6 stimuli written\).*resume"):
        Activations.from_hdf5(path)


def test_header_attributes_are_json(tmp_path):
    path = tmp_path / "acts.h5"
    make_acts().to_hdf5(path)
    with h5py.File(path, "r") as f:
        g = f["activations"]
        assert g.attrs["neuroenc_type"] == "Activations"
        assert json.loads(g.attrs["layer_names"]) == ["conv", "fc"]
        assert sorted(g["layers"]) == ["conv", "fc"]  # one dataset per layer


def test_per_layer_spreads_specs():
    names = ["a.0", "a.1", "b"]
    assert per_layer(None, names, "output") == dict.fromkeys(names)
    assert per_layer({"a.*": 1, "a.1": 2}, names, "output") == {"a.0": 1, "a.1": 2, "b": None}
    with pytest.raises(UnknownNameError, match="matches no selected layer"):
        per_layer({"c": 1}, names, "output")


@pytest.mark.parametrize(
    "pattern, name, hit",
    [
        ("features.*", "features.0", True),
        ("features.*", "features.0.conv", False),  # * stays within one segment
        ("features.**", "features.0.conv", True),
        ("encoder.**.linear2", "encoder.layers.3.linear2", True),
        ("**.relu", "block.0.relu", True),
        ("layer?", "layer1", True),
        ("layer?", "layer.", False),
        ("layer[12]", "layer2", True),
        ("layer[!12]", "layer2", False),
        ("a+b(c)", "a+b(c)", True),  # regex characters are literal
        ("x[", "x[", True),
    ],
)
def test_glob_matcher(pattern, name, hit):
    assert glob_matcher(pattern)(name) is hit
