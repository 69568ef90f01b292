"""The documentation builds without warnings and its examples run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))


def test_docs_build_with_warnings_as_errors(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert (tmp_path / "html" / "loading.html").exists()
    assert (tmp_path / "html" / "generated" / "neuroenc.io.read_eeg.html").exists()


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, data_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NEUROENC_DATA": str(data_dir)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    recorded = script.with_suffix(".out")
    if recorded.exists():
        # the output shown in the docs must be what the example prints
        assert out.stdout == recorded.read_text()
    else:
        assert "<BrainData |" in out.stdout
