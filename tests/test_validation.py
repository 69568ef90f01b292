"""Tests of neuroenc.validation and the exception hierarchy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neuroenc import errors
from neuroenc.validation import (
    check_array,
    check_choice,
    check_file,
    check_finite,
    check_length,
    check_names,
    check_positive,
)


# --------------------------------------------------------------------------
# exception hierarchy
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls, builtin",
    [
        (errors.DataError, ValueError),
        (errors.ShapeError, ValueError),
        (errors.NonFiniteError, ValueError),
        (errors.LabelError, ValueError),
        (errors.EmptySelectionError, ValueError),
        (errors.UnknownNameError, ValueError),
        (errors.ModalityError, ValueError),
        (errors.NotSPDError, ValueError),
        (errors.FileError, OSError),
        (errors.MissingFileError, FileNotFoundError),
        (errors.CorruptFileError, OSError),
        (errors.StoreError, OSError),
    ],
)
def test_error_hierarchy(cls, builtin):
    assert issubclass(cls, errors.NeuroencError)
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("boom")


def test_data_and_file_errors_are_distinct():
    assert issubclass(errors.DataError, ValueError)
    assert not issubclass(errors.DataError, OSError)
    assert issubclass(errors.FileError, OSError)
    assert not issubclass(errors.FileError, ValueError)
    assert issubclass(errors.MissingFileError, errors.FileError)
    assert not issubclass(errors.CorruptFileError, FileNotFoundError)
    assert set(errors.__all__) == {n for n in dir(errors) if n.endswith("Error")}


# --------------------------------------------------------------------------
# check_array
# --------------------------------------------------------------------------
@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_check_array_nonfinite_position_in_message(bad, kind):
    X = np.zeros((4, 5, 6))
    X[2, 3, 1] = bad
    X[3, 0, 0] = bad  # a later one: the first in C order is reported
    with pytest.raises(errors.NonFiniteError, match=rf"X contains {kind} at index \(2, 3, 1\) \(2 non-finite"):
        check_array(X, "X")


def test_check_array_nonfinite_1d_and_float32_and_complex():
    with pytest.raises(errors.NonFiniteError, match=r"v contains NaN at index 3 "):
        check_array([0.0, 1.0, 2.0, np.nan], "v")
    X = np.ones((3, 3), dtype=np.float32)
    X[1, 2] = np.inf
    with pytest.raises(errors.NonFiniteError, match=r"at index \(1, 2\)"):
        check_array(X)
    Z = np.ones(3, dtype=complex)
    Z[1] = complex(0, np.nan)
    with pytest.raises(errors.NonFiniteError, match="at index 1"):
        check_array(Z)


def test_check_finite_contiguous_and_strided_arrays():
    # contiguous arrays are checked through their sum of squares, others through their sum
    X = np.random.default_rng(0).standard_normal((50, 22, 301))
    check_finite(X)
    for view in (X, X[:, ::2], X.transpose(2, 0, 1)):
        bad = view.copy() if view is X else view
        bad[(7, 3, 4)] = np.nan
        with pytest.raises(errors.NonFiniteError, match=r"NaN at index \(7, 3, 4\) \(1 non-finite"):
            check_finite(bad)
        bad[(7, 3, 4)] = 0.0
    tiny = np.full(1000, 1e-200)  # squares underflow to 0: still finite
    check_finite(tiny)


def test_check_array_huge_finite_values_are_accepted():
    # The fast sum overflows to inf; the exact scan must then find no bad value.
    X = np.full((10, 3), np.finfo(np.float64).max)
    out = check_array(X)
    assert out is X
    X32 = np.full(4, np.finfo(np.float32).max, dtype=np.float32)
    assert check_array(X32).dtype == np.float32


def test_check_array_allow_nonfinite():
    X = np.array([1.0, np.nan, np.inf])
    out = check_array(X, allow_nonfinite=True)
    np.testing.assert_array_equal(out, X)


@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    )
)
@settings(max_examples=60, deadline=None)
def test_check_finite_matches_numpy(X):
    bad = ~np.isfinite(X)
    if not bad.any():
        check_finite(X, "X")
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    where = first[0] if X.ndim == 1 else first
    with pytest.raises(errors.NonFiniteError) as info:
        check_finite(X, "X")
    msg = str(info.value)
    assert f"at index {where} " in msg
    assert f"({int(bad.sum())} non-finite" in msg
    assert ("NaN" if np.isnan(X[first]) else "Inf") in msg


def test_check_array_ndim():
    with pytest.raises(errors.ShapeError, match=r"data has 1 dimension\(s\) with shape \(3,\); expected 2 or 3"):
        check_array([1.0, 2.0, 3.0], "data", ndim=(2, 3))
    with pytest.raises(errors.ShapeError, match="expected 1"):
        check_array(np.zeros((2, 2)), ndim=1)
    assert check_array(np.zeros((2, 2, 2)), ndim=3).ndim == 3


def test_check_array_ragged_and_object_input():
    with pytest.raises(errors.ShapeError, match="X"):
        check_array([[1.0, 2.0], [3.0]])
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.array([1.0, 2.0]), np.array([3.0])
    with pytest.raises(errors.ShapeError, match="ragged or holds non-numeric"):
        check_array(ragged)
    with pytest.raises(errors.ShapeError, match="ragged or holds non-numeric"):
        check_array(np.array([1.0, "a"], dtype=object))
    # An object array of numbers is fine and becomes float64.
    out = check_array(np.array([1, 2.5, 3], dtype=object))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 2.5, 3.0])


@pytest.mark.parametrize(
    "X, dtype_text",
    [
        (np.array(["a", "b"]), "<U1"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64"),
        (np.array([b"x"]), r"\|S1"),
    ],
)
def test_check_array_rejects_non_numeric(X, dtype_text):
    with pytest.raises(errors.ShapeError, match=rf"has dtype {dtype_text}.*expected a numeric array"):
        check_array(X)


def test_check_array_int_and_bool_become_float64_float_kept():
    for X in (np.arange(6, dtype=np.int16).reshape(2, 3), np.array([True, False]), np.array([1, 2], dtype=np.uint8)):
        out = check_array(X)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, X.astype(np.float64))
    for dt in (np.float32, np.float64, np.complex128):
        X = np.ones(3, dtype=dt)
        assert check_array(X).dtype == dt
    # A list of ints also becomes float64.
    assert check_array([1, 2, 3]).dtype == np.float64


def test_check_array_explicit_dtype_and_none():
    assert check_array([1, 2], dtype=np.float32).dtype == np.float32
    X = np.array(["1.5", "2"])
    np.testing.assert_array_equal(check_array(X, dtype=np.float64), [1.5, 2.0])
    assert check_array(np.array([1, 2], dtype=np.int8), dtype=None).dtype == np.int8
    with pytest.raises(errors.ShapeError, match=r"values.*cannot be converted"):
        check_array(["a", "b"], "values", dtype=np.float64)


def test_check_array_min_rows():
    with pytest.raises(errors.ShapeError, match=r"X has 0 row\(s\); at least 1 required"):
        check_array(np.zeros((0, 3)))
    with pytest.raises(errors.ShapeError, match=r"has 2 row\(s\); at least 3 required"):
        check_array(np.zeros((2, 3)), min_rows=3)
    assert check_array(np.zeros((3, 3)), min_rows=3).shape == (3, 3)
    assert check_array(np.zeros((0, 3)), min_rows=0).shape == (0, 3)


def test_check_array_none_and_copy():
    with pytest.raises(errors.ShapeError, match="X is None"):
        check_array(None)
    X = np.ones(3)
    assert check_array(X) is X
    Y = check_array(X, copy=True)
    assert Y is not X and not np.shares_memory(X, Y)


def test_check_array_accepts_dataframe():
    df = pd.DataFrame({"a": [1, 2], "b": [3.5, 4.0]})
    np.testing.assert_array_equal(check_array(df), df.to_numpy(dtype=float))


# --------------------------------------------------------------------------
# other checks
# --------------------------------------------------------------------------
def test_check_length():
    check_length(3, [1, 2, 3], "obs")
    with pytest.raises(errors.LabelError, match="obs has 2 entries but there are 3 observations"):
        check_length(3, [1, 2], "obs")
    with pytest.raises(errors.LabelError, match="there are 4 features"):
        check_length(4, "abc", "names", of="features")


def test_check_choice():
    assert check_choice("eeg", ("eeg", "meg"), "modality") == "eeg"
    with pytest.raises(errors.UnknownNameError, match=r"Unknown modality 'pet'; choose one of: 'eeg', 'meg'\."):
        check_choice("pet", ("eeg", "meg"), "modality")
    with pytest.raises(errors.UnknownNameError, match="choose one of: 1, 2"):
        check_choice(3, iter([1, 2]), "k")


def test_check_names_lists_available():
    assert check_names(["b", "a"], ["a", "b", "c"], "column") == ["b", "a"]
    assert check_names({"a": 1}, ["a"], "column") == ["a"]
    with pytest.raises(errors.UnknownNameError) as info:
        check_names(["a", "zz", "yy"], ["a", "b"], "obs column")
    msg = str(info.value)
    assert "Unknown obs column: 'zz', 'yy'." in msg
    assert "Available: 'a', 'b'." in msg
    with pytest.raises(errors.UnknownNameError, match="Available: none"):
        check_names(["x"], [], "feature")


def test_check_names_single_string_is_one_name():
    assert check_names("condition", ["condition"], "column") == ["condition"]
    with pytest.raises(errors.UnknownNameError, match="'cond'"):
        check_names("cond", ["c", "o", "n", "d"], "column")


def test_check_file(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hi")
    assert check_file(str(f)) == f
    assert check_file(tmp_path) == tmp_path
    with pytest.raises(errors.MissingFileError, match=r"EEG file not found: .*nope\.edf") as info:
        check_file(tmp_path / "nope.edf", "EEG file")
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("value", [1, 0.5, "2.5", np.float32(3)])
def test_check_positive_accepts(value):
    assert check_positive(value, "x") == float(value)


@pytest.mark.parametrize("value", [0, -1, np.nan, np.inf, -np.inf])
def test_check_positive_rejects(value):
    with pytest.raises(errors.ShapeError, match=r"sfreq must be finite and > 0"):
        check_positive(value, "sfreq")


def test_check_positive_non_strict_and_non_numbers():
    assert check_positive(0, "x", strict=False) == 0.0
    with pytest.raises(errors.ShapeError, match=">= 0"):
        check_positive(-0.1, "x", strict=False)
    for bad in ("abc", None, [1, 2]):
        with pytest.raises(errors.ShapeError, match="x must be a number"):
            check_positive(bad, "x")


def test_complex_input_is_not_silently_made_real():
    from neuroenc.errors import ShapeError
    from neuroenc.validation import check_epochs

    X = np.ones((2, 3, 4), dtype=complex)
    with pytest.raises(ShapeError, match="complex; a real array of dtype float64"):
        check_array(X, "X", dtype=np.float64)
    with pytest.raises(ShapeError, match="complex"):
        check_epochs(X)
