"""`verifier batch compare`: thin CLI over BatchRunner."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from verifier.cli.ray_option import add_ray_option

if TYPE_CHECKING:
    from verifier.batch.runner import BatchSummary


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `batch` command group."""
    batch = subparsers.add_parser("batch", help="毕业照片与录取照片批量比对 / batch comparison")
    sub = batch.add_subparsers(dest="batch_cmd", required=True)
    c = sub.add_parser("compare", help="compare every graduate's graduation photo with the admission photo")
    c.add_argument("--roster", type=Path, required=True, help="roster CSV/XLSX (考生号, 姓名, 学号, 学院, 学习中心 …)")
    c.add_argument("--admission-dir", type=Path, required=True, help="admission photos named <考生号>.jpg")
    c.add_argument("--graduation-dir", type=Path, required=True, help="graduation photos named by 考生号 or 学号")
    c.add_argument("--graduation-key", choices=["ksh", "student_no"], default="ksh")
    c.add_argument("--db", default=None, help="database URL (default: VERIFIER_DB, config, or SQLite under VERIFIER_HOME)")
    c.add_argument("--out", type=Path, default=None, help="report folder (default: a dated folder under the home)")
    c.add_argument("--workers", type=int, default=None, help="workers (default: all cores; with --ray, one per cluster CPU)")
    c.add_argument("--pack", default=None, help="model pack id")
    c.add_argument("--admission-profile", default="admission")
    c.add_argument("--graduation-profile", default=None, help="graduation photos' profile (default: graduation)")
    add_ray_option(c)
    c.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Run the graduation comparison."""
    from verifier.batch.runner import BatchOptions, BatchRunner

    options = BatchOptions(
        roster=args.roster,
        admission_dir=args.admission_dir,
        graduation_dir=args.graduation_dir,
        out_dir=args.out,
        db_url=args.db,
        workers=args.workers,
        pack_id=args.pack,
        graduation_key=args.graduation_key,
        admission_profile=args.admission_profile,
        graduation_profile=args.graduation_profile,
        ray_address=args.ray,
    )
    return print_summary(BatchRunner(options).run())


def print_summary(summary: "BatchSummary") -> int:
    """What a batch or intake run did, on stdout (the resume hint on stderr); the exit status."""
    from verifier.batch.decision import DECISION_ZH, StudentDecision

    if summary.interrupted:
        print(
            f"已中断：已处理 {summary.processed} 人。用同一命令重新运行即可继续 / interrupted after {summary.processed} students; "
            "run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    counts = " ".join(f"{DECISION_ZH[d]}({d.value})={summary.decisions.get(d.value, 0)}" for d in StudentDecision)
    print(f"run {summary.run_id}{' (resumed)' if summary.resumed else ''}: {summary.students} students, "
          f"{summary.processed} processed, {summary.unchanged} unchanged, {summary.seconds:.1f} s")
    print(counts)
    print(f"报告 reports: {summary.out_dir}")
    for p in summary.reports:
        print(f"  {p}")
    return 0
