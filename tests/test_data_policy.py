"""Real-data tests skip on a user's machine without data, and fail in CI."""

from __future__ import annotations

import pytest
from conftest import resolve_data_dir

import neuroenc.datapath


def test_missing_data_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr("conftest.find_data_dir", lambda: None)
    with pytest.raises(pytest.skip.Exception, match="No data folder: set NEUROENC_DATA"):
        resolve_data_dir(in_ci=False)
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        resolve_data_dir(in_ci=True)


def test_present_data_is_returned(data_dir):
    assert resolve_data_dir(in_ci=True) == data_dir
    assert (data_dir / "README.md").exists()


def test_wrong_environment_variable_is_an_error_not_a_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROENC_DATA", str(tmp_path / "absent"))
    with pytest.raises(neuroenc.errors.MissingFileError, match="NEUROENC_DATA points to"):
        resolve_data_dir(in_ci=False)
    assert neuroenc.datapath.ENV_VAR == "NEUROENC_DATA"
