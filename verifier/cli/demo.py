"""`verifier demo`: the main job on sample data, from the installed program (the Makefile's `make demo` calls it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo batch comparison in --out."""
    from verifier.demo.run import main

    return main(args.out)


def register(subparsers: Any) -> None:
    """Add `demo`."""
    d = subparsers.add_parser("demo", help="示例 / run the batch comparison on a sample cohort (face set, or the photos shipped)")
    d.add_argument("--out", type=Path, default=Path("demo-out"), help="folder for the cohort, the store and the reports (default ./demo-out)")
    d.set_defaults(func=cmd_demo)
