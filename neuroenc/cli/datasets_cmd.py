"""``neuroenc datasets list``: the datasets that ``neuroenc bench --datasets`` accepts."""

from __future__ import annotations

import argparse

from neuroenc.cli.main import frame_records, print_json, print_table


def run_datasets(args: argparse.Namespace) -> int:
    """Print the registered and YAML-defined datasets (table, or records with ``--json``)."""
    from neuroenc.datasets.registry import dataset_search_path, list_datasets

    table = list_datasets()
    if args.json:
        print_json(frame_records(table))
        return 0
    if table.empty:
        print("no dataset registered")
    else:
        print_table(table)
    folders = ", ".join(str(f) for f in dataset_search_path()) or "none"
    print(
        f"\nAlso: 'moabb:<ClassName>' for any MOABB dataset, or a path to a dataset .yml file "
        f"(.yml definitions are read from: {folders})."
    )
    return 0
