"""Entry point of the ``neuroenc`` command.

Subcommand modules are imported only when run so that ``neuroenc --help``
stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from neuroenc._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuroenc",
        description="Compare brain responses with the activations of artificial neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"neuroenc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the end-to-end demo on the real data folder")
    demo.add_argument("--data-dir", help="data folder (default: $NEUROENC_DATA, then ../shared/data)")
    demo.add_argument("--out", default="neuroenc_demo_output", help="folder for the demo's files")
    demo.add_argument("--no-download", action="store_true", help="never fetch PhysioNet data from the internet")

    info = sub.add_parser("info", help="list the entries of a neuroenc HDF5 file")
    info.add_argument("path", help="HDF5 file written by neuroenc")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from neuroenc.errors import NeuroencError

    try:
        if args.command == "demo":
            from neuroenc.cli.demo import run_demo

            return run_demo(data_dir=args.data_dir, out=args.out, allow_download=not args.no_download)
        if args.command == "info":
            from neuroenc.cli.info import run_info

            return run_info(args.path)
    except NeuroencError as exc:
        print(f"neuroenc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
