"""`verifier cases dossier`: the filing dossiers (备案材料) of resolved re-review cases as PDF (a zip for several)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from verifier.cli.store import _actor, _db_opt, _settings, command_group

EXIT_OK, EXIT_FLAGGED = 0, 1


def cmd_dossier(args: argparse.Namespace) -> int:
    """Write one PDF per case into --out (several cases: one zip of them), files 0600."""
    from verifier.batch.dossier_pdf import package
    from verifier.common.files import writable_dir, write_output
    from verifier.common.reasons import REASONS
    from verifier.store import audit
    from verifier.store.connect import open_database
    from verifier.store.models import ReviewCase
    from verifier.store.photostore import PhotoStore

    settings = _settings()
    database = open_database(args.db, settings=settings)
    try:
        with database.session() as s:
            known = [i for i in args.case_ids if s.get(ReviewCase, i) is not None]
            unknown = [i for i in args.case_ids if i not in known]
            if known:
                name, data = package(s, PhotoStore.for_home(settings.home), known)
        if known:
            database.transaction(lambda s: [audit.record(s, _actor(args), "case.dossier", "case", i, after={"file": name}) for i in dict.fromkeys(known)])
    finally:
        database.dispose()
    for i in unknown:
        print(f"case {i} [STORE_CASE_UNKNOWN] {REASONS['STORE_CASE_UNKNOWN'].zh} / {REASONS['STORE_CASE_UNKNOWN'].en}", file=sys.stderr)
    if known:
        out = writable_dir(Path(args.out), "OUTPUT_NOT_WRITABLE")
        write_output(out / name, data)
        print(f"{len(set(known))} 份备案材料 dossiers -> {out / name}")
    return EXIT_FLAGGED if unknown else EXIT_OK


def register(subparsers: Any) -> None:
    cases = command_group(subparsers, "cases", "复核案件 / review cases")
    d = cases.add_parser("dossier", help="备案材料 PDF / filing dossier of cases for the provincial authority")
    d.add_argument("case_ids", metavar="CASE_ID", nargs="+", type=int)
    d.add_argument("--out", required=True, help="folder to write the PDF (or dossiers.zip for several cases) into")
    d.add_argument("--actor", default=None, help="who the audit log names (default: the login name)")
    _db_opt(d)
    d.set_defaults(func=cmd_dossier)
