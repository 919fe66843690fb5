"""`verifier lists --college X`: a 学院's work lists (missing photo, failing photo, in review, failed 身份复核, not compared)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FLAGGED = 0, 1


def cmd_lists(args: argparse.Namespace) -> int:
    """Print each list's count and rows, or write them to an XLSX with a sheet per list; exit 1 when any list has rows."""
    from verifier.common.reasons import VerifierError
    from verifier.common.settings import Settings
    from verifier.store import export, lists
    from verifier.store.connect import open_database

    settings = Settings.from_env()
    pack = None if args.pack == "any" else (args.pack or settings.pack)
    database = open_database(args.db, settings=settings)
    try:
        with database.session() as s:
            if not lists.has_college(s, args.college):
                raise VerifierError("STORE_COLLEGE_UNKNOWN", detail=args.college)
            found = lists.college_lists(s, args.college, pack)
    finally:
        database.dispose()
    say = sys.stderr if args.out == "-" else sys.stdout  # the XLSX itself may be going to standard output
    if args.out:
        n = export.write_sheets(lists.sheets(found), args.out)
        print(f"{n} rows -> {'standard output' if args.out == '-' else args.out}", file=say)
    for item in found:
        print(f"{item.title_zh} {item.kind}: {len(item.rows)}", file=say)
        if not args.out:
            for row in item.rows:
                print("  " + "\t".join("" if v is None else str(v) for v in row))
    return EXIT_FLAGGED if any(item.rows for item in found) else EXIT_OK


def register(subparsers: Any) -> None:
    """Add `lists` to the main parser."""
    p = subparsers.add_parser("lists", help="学院名单 / a college's lists: missing or failing photos, in review, impersonation, not compared")
    p.add_argument("--college", required=True, help="学院 name as on the roster")
    p.add_argument("--out", default=None, help="XLSX file to write, a sheet per list, or - for standard output (default: print the lists)")
    p.add_argument("--pack", default=None, help="count a pair as compared only under this model pack (default: the configured pack; any: under any pack)")
    p.add_argument("--db", default=None, help="database URL (default: $VERIFIER_DB, config, sqlite:///<home>/verifier.db)")
    p.set_defaults(func=cmd_lists)
