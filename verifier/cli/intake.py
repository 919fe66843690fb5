"""`verifier intake check`: the ID-card photo (身份证照片) against the admission photo, before the admission photo is uploaded.

A thin CLI over the batch runner with the INTAKE pairing: the same store, resumability and reports as
`verifier batch compare`; failed and borderline pairs open intake_mismatch cases.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from verifier.cli.ray_option import add_ray_option


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `intake` command group."""
    intake = subparsers.add_parser("intake", help="入学身份核验：身份证照片与录取照片比对 / intake identity check")
    sub = intake.add_subparsers(dest="intake_cmd", required=True)
    c = sub.add_parser("check", help="check every admission photo, then compare it with the student's ID-card photo")
    c.add_argument("--roster", type=Path, required=True, help="roster CSV/XLSX (考生号, 姓名, 学号, 身份证号, 学院, 学习中心 …)")
    c.add_argument("--id-card-dir", type=Path, required=True, help="ID-card photos named <考生号>.bmp/.jpg/.png (chip exports or scans of the card's front)")
    c.add_argument("--admission-dir", type=Path, required=True, help="admission photos named <考生号>.jpg")
    c.add_argument("--db", default=None, help="database URL (default: VERIFIER_DB, config, or SQLite under VERIFIER_HOME)")
    c.add_argument("--out", type=Path, default=None, help="report folder (default: a dated folder under the home)")
    c.add_argument("--workers", type=int, default=None, help="workers (default: all cores; with --ray, one per cluster CPU)")
    c.add_argument("--pack", default=None, help="model pack id (needs thresholds.id_card in its manifest)")
    c.add_argument("--admission-profile", default="admission")
    c.add_argument("--id-card-profile", default="id_card")
    add_ray_option(c)
    c.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Run the intake check."""
    from verifier.batch.pairing import INTAKE
    from verifier.batch.runner import BatchOptions, BatchRunner
    from verifier.cli.batch import print_summary

    options = BatchOptions(
        roster=args.roster,
        admission_dir=args.admission_dir,
        graduation_dir=args.id_card_dir,
        out_dir=args.out,
        db_url=args.db,
        workers=args.workers,
        pack_id=args.pack,
        admission_profile=args.admission_profile,
        graduation_profile=args.id_card_profile,
        actor="intake",
        pairing=INTAKE,
        ray_address=args.ray,
    )
    return print_summary(BatchRunner(options).run())
