"""Helpers shared by the loaders: source descriptions and parameter checks."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

from neuroenc.errors import ShapeError
from neuroenc.validation import check_file


def describe_source(path: str | os.PathLike) -> dict:
    """Name, absolute path, size and modification time of a source file."""
    p = Path(path).resolve()
    st = p.stat()
    return {
        "file": p.name,
        "path": str(p),
        "size": st.st_size,
        "modified": _dt.datetime.fromtimestamp(st.st_mtime, _dt.timezone.utc).isoformat(timespec="seconds"),
    }


def check_files(paths: list[Any], what: str) -> list[Path]:
    """Check that every path exists before any file is read."""
    return [check_file(p, what) for p in paths]


def check_window(tmin: float, tmax: float) -> None:
    """Check an epoch window."""
    if not (float(tmin) < float(tmax)):
        raise ShapeError(f"tmin ({tmin}) must be smaller than tmax ({tmax}).")


def check_band(l_freq: float | None, h_freq: float | None) -> None:
    """Check band-pass edges (either may be None)."""
    for name, value in (("l_freq", l_freq), ("h_freq", h_freq)):
        if value is not None and not float(value) > 0:
            raise ShapeError(f"{name} must be positive, got {value}.")
    if l_freq is not None and h_freq is not None and float(l_freq) >= float(h_freq):
        raise ShapeError(f"l_freq ({l_freq}) must be below h_freq ({h_freq}).")


def as_list(source: Any) -> list[Any]:
    """A single source or a list/tuple of sources, as a list."""
    return list(source) if isinstance(source, (list, tuple)) else [source]
