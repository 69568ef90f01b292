"""Where the real test/demo data live.

Resolution order: the ``NEUROENC_DATA`` environment variable, then
``../shared/data`` relative to the working directory, then ``shared/data``
beside the repository checkout this package was imported from.
"""

from __future__ import annotations

import os
from pathlib import Path

from neuroenc.errors import MissingFileError

__all__ = ["ENV_VAR", "find_data_dir", "data_path"]

ENV_VAR = "NEUROENC_DATA"


def _candidates() -> list[tuple[Path, str]]:
    found = []
    env = os.environ.get(ENV_VAR)
    if env:
        found.append((Path(env).expanduser(), f"${ENV_VAR}"))
    found.append((Path.cwd() / ".." / "shared" / "data", "../shared/data"))
    repo_root = Path(__file__).resolve().parents[1]
    found.append((repo_root.parent / "shared" / "data", "shared/data beside the repository"))
    return found


def find_data_dir() -> tuple[Path, str] | None:
    """The data folder and how it was found, or None.

    Raises
    ------
    MissingFileError
        If ``NEUROENC_DATA`` is set but does not point to a folder (a wrong
        explicit setting is an error, not a reason to look elsewhere).
    """
    for path, origin in _candidates():
        if origin.startswith("$") and not path.is_dir():
            raise MissingFileError(f"{ENV_VAR} points to {path}, which is not a folder.")
        if path.is_dir():
            return path.resolve(), origin
    return None


def data_path(*parts: str) -> Path:
    """Path of a file or folder inside the data folder; raises if missing."""
    found = find_data_dir()
    if found is None:
        raise MissingFileError(f"No data folder found. Set {ENV_VAR} or place the data in ../shared/data.")
    path = found[0].joinpath(*parts)
    if not path.exists():
        raise MissingFileError(f"{'/'.join(parts)} not found in the data folder {found[0]}.")
    return path
