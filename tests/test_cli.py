"""The ``neuroenc`` command: help, demo and info, run as a user would (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuroenc import BrainData

EXE = [sys.executable, "-m", "neuroenc.cli.main"]


def run(args, cwd, env_extra=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(EXE + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_console_script_is_installed_and_lists_subcommands(tmp_path):
    exe = Path(sys.executable).with_name("neuroenc")
    assert exe.exists(), "the neuroenc console script is not installed next to python"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0
    for sub in ("demo", "info"):
        assert sub in out.stdout


def test_demo_runs_end_to_end_on_real_data(data_dir, tmp_path):
    out = run(["demo", "--out", str(tmp_path / "out"), "--no-download"], tmp_path, {"NEUROENC_DATA": str(data_dir)})
    assert out.returncode == 0, out.stderr
    assert f"Data folder: {data_dir}" in out.stdout and "NEUROENC_DATA" in out.stdout
    for name in ("PhysioNet MI", "Haxby 2001", "Grasshopper"):
        assert name in out.stdout
    store = tmp_path / "out" / "demo.h5"
    eeg = BrainData.from_hdf5(store, "eeg")
    assert eeg.n_obs == 45 and eeg.shape[1] == 64
    assert sorted(eeg.obs["condition"].value_counts().tolist()) == [22, 23]
    fmri = BrainData.from_hdf5(store, "fmri")
    assert fmri.shape == (96, 530)
    spikes = BrainData.from_hdf5(store, "spikes")
    assert np.isclose(spikes.data.sum(), 929 + 868)

    # the decoding table reports what the pipeline really scores
    assert "Riemannian decoding, PhysioNet S001" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("Covariances(oas) + MDM"))
    printed = float(line.split()[3])
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    from neuroenc.datasets import load_physionet_mi
    from neuroenc.riemann import MDM, Covariances

    epochs = load_physionet_mi(1, "imagery_lr", data_dir=data_dir, l_freq=8.0, h_freq=30.0)
    motor = [n for n in epochs.feature_names if n[:2] in ("Fc", "C1", "C2", "C3", "C4", "C5", "C6", "Cz", "Cp")]
    epochs = epochs.pick_features(motor).crop(0.5, 3.5)
    cv = StratifiedKFold(5, shuffle=True, random_state=42)
    expected = cross_val_score(make_pipeline(Covariances("oas"), MDM()), epochs.data, epochs.conditions, cv=cv)
    assert printed == round(float(expected.mean()), 3)
    assert sum(ln.startswith(("Covariances(oas) + ", "AugmentedCovariances(")) for ln in out.stdout.splitlines()) == 3

    info = run(["info", str(store)], tmp_path)
    assert info.returncode == 0
    assert "eeg" in info.stdout and "45 x 64 x 641" in info.stdout and "read_fmri" in info.stdout


def test_demo_with_missing_data_dir_fails_with_one_line(tmp_path):
    out = run(["demo", "--data-dir", str(tmp_path / "nowhere"), "--no-download"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "nowhere" in out.stderr and "not a folder" in out.stderr


def test_demo_without_any_data_and_no_download_exits_1(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run(["demo", "--data-dir", str(empty), "--no-download", "--out", str(tmp_path / "o")], tmp_path)
    assert out.returncode == 1
    assert "skipped PhysioNet" in out.stdout and "no dataset could be loaded" in out.stdout


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file at all"])
def test_info_on_corrupt_file_is_a_clear_error(tmp_path, content):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(content)
    out = run(["info", str(bad)], tmp_path)
    assert out.returncode == 2
    assert "bad.h5" in out.stderr and "not an HDF5 file" in out.stderr


def test_info_on_missing_file(tmp_path):
    out = run(["info", str(tmp_path / "missing.h5")], tmp_path)
    assert out.returncode == 2 and "not found" in out.stderr
