"""`verifier roster ...`: roster commands for the command line (reconcile a roster with photo folders)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from verifier.common.choices import DEFAULT_KSH_PATTERN, FINE_MAX_DISTANCE
from verifier.common.reasons import VerifierError

EXIT_OK, EXIT_UNUSABLE = 0, 2

_COUNT_LABELS = (
    ("roster_students", "名单人数 / students on roster"),
    ("roster_rows_rejected", "名单错误行 / roster rows rejected"),
    ("roster_rows_warned", "名单警告行 / roster rows with warnings"),
    ("photos", "照片文件 / photo files"),
    ("students_with_photo", "有照片的考生 / students with a photo"),
    ("missing_photo", "缺少照片 / students without photo"),
    ("not_on_roster", "名单外照片 / photos not on roster"),
    ("multiple_files", "一人多个文件 / students with several files"),
    ("same_bytes", "相同文件组 / byte-identical groups"),
    ("same_picture", "疑似同一照片组 / near-identical groups"),
    ("unreadable", "无法读取的照片 / unreadable photos"),
)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Load the roster, fingerprint every photo under the folders, print counts and write the report."""
    from tqdm import tqdm

    from verifier.photos.reconcile import iter_photo_files, reconcile, write_reconciliation
    from verifier.photos.roster import load_roster

    try:
        roster = load_roster(Path(args.roster), ksh_pattern=args.ksh_pattern)
    except VerifierError as exc:
        r = exc.reason
        _err(f"名单无法使用 / roster unusable [{r.code}] {r.message_zh} / {r.message_en}" + (f": {exc.detail}" if exc.detail else ""))
        return EXIT_UNUSABLE
    roots = [Path(p) for p in args.photo_dirs]
    missing = [str(p) for p in roots if not p.exists()]
    if missing:
        _err("照片路径不存在 / photo path not found: " + ", ".join(missing))
        return EXIT_UNUSABLE
    files = list(iter_photo_files(roots))
    with tqdm(total=len(files), unit="photo", file=sys.stderr, disable=None if not args.json else True, desc="reconcile") as bar:
        rec = reconcile(roster, files, fine_max_distance=args.max_distance, workers=args.workers, progress=lambda: bar.update(1))
    counts = rec.counts()
    written: dict[str, Path] = {}
    if args.out:
        written = write_reconciliation(rec, Path(args.out))
    if args.json:
        out: dict[str, Any] = rec.to_dict()
        out["written"] = {k: str(v) for k, v in written.items()}
        print(json.dumps(out, ensure_ascii=False))
    else:
        summary = rec.roster.summary()
        print(f"名单 / roster: {summary['format']}, {summary['encoding']}, {summary['students']} students")
        for key, label in _COUNT_LABELS:
            print(f"  {label}: {counts[key]}")
        for path in written.values():
            print(f"  -> {path}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add the `roster` command group to the main parser's subparsers."""
    r = subparsers.add_parser("roster", help="名单核对 / roster reconciliation")
    rsub = r.add_subparsers(dest="roster_cmd", required=True)
    rc = rsub.add_parser(
        "reconcile",
        help="compare a roster with photo folders: missing photos, photos with no student, duplicates",
    )
    rc.add_argument("--roster", required=True, help="roster CSV or XLSX (columns 考生号, 姓名; optional 学号, 学院, 学习中心, 入学批次)")
    rc.add_argument("photo_dirs", nargs="+", metavar="PHOTO_DIR", help="folders (recursive) or files of photos named <考生号>.jpg")
    rc.add_argument("--out", default=None, help="write reconciliation.csv and reconciliation.xlsx here")
    rc.add_argument("--json", action="store_true", help="print counts and every finding as one JSON object")
    rc.add_argument("--ksh-pattern", default=DEFAULT_KSH_PATTERN, help=f"regular expression for a valid 考生号 (default {DEFAULT_KSH_PATTERN})")
    rc.add_argument(
        "--max-distance",
        type=int,
        default=FINE_MAX_DISTANCE,
        help=f"of the 256 pHash bits, how many may differ for 'same picture' (default {FINE_MAX_DISTANCE})",
    )
    rc.add_argument("--workers", type=int, default=None, help="decoding threads (default: up to 4)")
    rc.set_defaults(func=cmd_reconcile)
