"""The `--ray ADDRESS` option, the same on every command that can run its workers on a Ray cluster."""

from __future__ import annotations

import argparse


def add_ray_option(parser: argparse.ArgumentParser) -> None:
    """Add `--ray ADDRESS|local` (stored as `args.ray`, None without it)."""
    parser.add_argument(
        "--ray", metavar="ADDRESS", default=None,
        help="run the workers on the Ray cluster at ADDRESS, or on a loopback one started for this command with 'local'"
             " (needs verifier[cluster]; photo bytes are sent, no shared file system needed)",
    )
