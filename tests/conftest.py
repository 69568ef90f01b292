"""Shared fixtures.

Real-data tests use the data folder found by :func:`neuroenc.datapath.find_data_dir`
(``NEUROENC_DATA`` or ``../shared/data``). On a user's machine a missing
folder skips those tests with a reason; in CI (``CI=true``) it fails them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import neuroenc
from neuroenc.datapath import find_data_dir

IN_CI = os.environ.get("CI", "").lower() == "true"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        message = f"{what} not found at {path}"
        if IN_CI:
            pytest.fail(f"{message}; the data folder must be present in CI.")
        pytest.skip(f"{message} (set NEUROENC_DATA to the data folder)")
    return path


def resolve_data_dir(in_ci: bool) -> Path:
    """The data folder; without one, fail in CI and skip elsewhere."""
    found = find_data_dir()
    if found is None:
        message = "No data folder: set NEUROENC_DATA or place the data in ../shared/data"
        if in_ci:
            pytest.fail(message + " (required in CI).")
        pytest.skip(message)
    return found[0]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data folder (``../shared/data``)."""
    return resolve_data_dir(IN_CI)


@pytest.fixture(scope="session")
def eegbci_dir(data_dir: Path) -> Path:
    """PhysioNet EEG motor imagery, subject 1."""
    return _require(data_dir / "eegbci" / "S001", "PhysioNet eegbci data")


@pytest.fixture(scope="session")
def mne_formats_dir(data_dir: Path) -> Path:
    return _require(data_dir / "mne_formats", "MNE format samples")


@pytest.fixture(scope="session")
def haxby_dir(data_dir: Path) -> Path:
    return _require(data_dir / "haxby", "Haxby fMRI data")


@pytest.fixture(scope="session")
def nitime_dir(data_dir: Path) -> Path:
    return _require(data_dir / "nitime", "nitime data")


@pytest.fixture(scope="session")
def rsa92_dir(data_dir: Path) -> Path:
    return _require(data_dir / "rsa92", "92-image RDMs")


def make_braindata(
    n_obs: int = 12,
    n_features: int = 5,
    n_times: int | None = 7,
    modality: str = "eeg",
    n_runs: int = 2,
    seed: int = 0,
) -> neuroenc.BrainData:
    """Small synthetic BrainData with conditions a/b/c and runs."""
    rng = np.random.default_rng(seed)
    shape = (n_obs, n_features) if n_times is None else (n_obs, n_features, n_times)
    obs = pd.DataFrame(
        {
            "condition": [("a", "b", "c")[i % 3] for i in range(n_obs)],
            "run": [i * n_runs // n_obs + 1 for i in range(n_obs)],
        }
    )
    return neuroenc.BrainData(
        rng.standard_normal(shape),
        obs,
        modality,
        features=[f"ch{i}" for i in range(n_features)],
        sfreq=100.0 if n_times is not None else None,
    )
