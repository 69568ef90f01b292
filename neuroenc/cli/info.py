"""``neuroenc info FILE``: what a neuroenc HDF5 file holds."""

from __future__ import annotations

import json

from neuroenc._h5 import list_entries, open_h5_read


def describe_store(path: str) -> list[dict]:
    """One dict per neuroenc entry: key, type, shape, modality, steps."""
    rows = []
    with open_h5_read(path) as f:
        for key in list_entries(f):
            g = f[key]
            rows.append(
                {
                    "key": key,
                    "type": str(g.attrs["neuroenc_type"]),
                    "shape": tuple(g["data"].shape) if "data" in g else None,
                    "modality": str(g.attrs.get("modality", "")),
                    "steps": [p["step"] for p in json.loads(g.attrs.get("provenance", "[]"))],
                }
            )
    return rows


def run_info(path: str) -> int:
    rows = describe_store(path)
    if not rows:
        print(f"{path}: no neuroenc entry")
        return 0
    for row in rows:
        shape = " x ".join(map(str, row["shape"])) if row["shape"] else "-"
        print(f"{row['key']:<24} {row['type']:<10} {row['modality']:<7} {shape:<20} {' > '.join(row['steps'])}")
    return 0
