"""`verifier db|purge|export` and `verifier roster import|graduate`: thin CLI over verifier.store."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from verifier.common.choices import DEFAULT_KSH_PATTERN, EXPORT_FORMATS, EXPORT_KINDS
from verifier.common.reasons import VerifierError

EXIT_OK, EXIT_FLAGGED, EXIT_UNUSABLE = 0, 1, 2


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _actor(args: argparse.Namespace) -> str:
    """Who the audit log names: --actor, else the login name."""
    if getattr(args, "actor", None):
        return str(args.actor)
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise VerifierError("STORE_DATE_INVALID", detail=text) from None


def _settings() -> Any:
    from verifier.common.settings import Settings

    return Settings.from_env()


def cmd_db(args: argparse.Namespace) -> int:
    """Apply migrations, or show where the database stands."""
    from verifier.store import db, schema

    url = db.resolve_url(args.db)
    if args.db_cmd == "upgrade":
        state = schema.upgrade(url)
        print(f"数据库已是最新版本 / database is at revision {state.current} (head {state.head}): {db.safe_url(url)}")
        return EXIT_OK
    try:
        engine = db.make_engine(url)
    except VerifierError as exc:
        if exc.reason.code != "STORE_DB_NOT_MIGRATED":
            raise
        print(f"current: none (no database yet)\nhead: {schema.head_revision()}\nurl: {db.safe_url(url)}")
        return EXIT_FLAGGED
    try:
        state = schema.schema_state(engine)
    finally:
        engine.dispose()
    note = "up to date" if state.up_to_date else ("NEWER than this verifier" if not state.known else "run: verifier db upgrade")
    print(f"current: {state.current or 'none'}\nhead: {state.head}\nurl: {db.safe_url(url)}\nstatus: {note}")
    return EXIT_OK if state.up_to_date else EXIT_FLAGGED


def cmd_roster_import(args: argparse.Namespace) -> int:
    """Upsert a roster file into the students table and report what happened to each row."""
    from verifier.photos.roster import load_roster
    from verifier.store.connect import open_database
    from verifier.store.students import import_roster

    settings = _settings()
    roster = load_roster(Path(args.roster), ksh_pattern=args.ksh_pattern)
    key = settings.id_key_bytes()
    database = open_database(args.db, settings=settings)
    try:
        report = database.transaction(lambda s: import_roster(s, roster, key, _actor(args)))
    finally:
        database.dispose()
    if args.json:
        print(json.dumps({"counts": report.counts(), "rejected": [r.to_dict() for r in report.rejected]}, ensure_ascii=False))
    else:
        c = report.counts()
        print(f"新增 inserted: {c['inserted']}  更新 updated: {c['updated']}  未变 unchanged: {c['unchanged']}  拒绝 rejected: {c['rejected']}")
        for r in report.rejected:
            d = r.to_dict()
            line = f"line {d['line']} " if d["line"] else ""
            print(f"  {line}{d['ksh']} [{d['code']}] {d['message_zh']} / {d['message_en']}" + (f": {d['detail']}" if d["detail"] else ""))
    return EXIT_FLAGGED if report.rejected else EXIT_OK


def cmd_roster_graduate(args: argparse.Namespace) -> int:
    """Mark the students of a roster file as graduated on a date (retention counts from it)."""
    from verifier.photos.roster import load_roster
    from verifier.store.connect import open_database
    from verifier.store.students import mark_graduated

    on = _date(args.on)
    roster = load_roster(Path(args.roster), ksh_pattern=args.ksh_pattern)
    database = open_database(args.db, settings=_settings())
    try:
        marked, unknown = database.transaction(lambda s: mark_graduated(s, sorted(roster.students), on, _actor(args)))
    finally:
        database.dispose()
    print(f"已标记毕业 marked graduated: {len(marked)}  库中没有 not in database: {len(unknown)}")
    for ksh in unknown:
        print(f"  {ksh} [STORE_STUDENT_UNKNOWN]")
    return EXIT_FLAGGED if unknown else EXIT_OK


def cmd_purge(args: argparse.Namespace) -> int:
    """Delete photo files and embeddings past retention (or list them with --dry-run)."""
    from verifier.store.connect import open_database
    from verifier.store.photostore import PhotoStore
    from verifier.store.purge import run_purge

    before = _date(args.graduated_before) if args.graduated_before else None
    settings = _settings()
    database = open_database(args.db, settings=settings)
    try:
        report = run_purge(database, PhotoStore.for_home(settings.home), before, args.intake, args.dry_run, _actor(args))
    finally:
        database.dispose()
    if args.json:
        items = [{**i.__dict__, "graduated_on": i.graduated_on.isoformat() if i.graduated_on else None} for i in report.items]
        print(json.dumps({"dry_run": report.dry_run, "criteria": report.criteria, "counts": report.counts(), "items": items}, ensure_ascii=False))
    else:
        head = "将清除（试运行，未删除）/ would purge (dry run)" if report.dry_run else "已清除 / purged"
        print(f"{head}: " + ", ".join(f"{k}={v}" for k, v in report.counts().items()))
        for i in report.items:
            grad = i.graduated_on.isoformat() if i.graduated_on else "-"
            print(f"  {i.ksh}\t{i.college}\t{i.intake}\t{grad}\tphotos={i.photos}\tembeddings={i.embeddings}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write cases, comparisons or students to CSV or XLSX."""
    from verifier.store import export
    from verifier.store.connect import open_database

    database = open_database(args.db, settings=_settings())
    try:
        with database.session() as s:
            n = export.export(s, args.what, args.format, args.out, state=args.state, college=args.college)
    finally:
        database.dispose()
    print(f"{n} rows -> {'standard output' if args.out == '-' else args.out}", file=sys.stderr if args.out == "-" else sys.stdout)
    return EXIT_OK


def command_group(subparsers: Any, name: str, help: str) -> Any:
    """The sub-command action of group `name`, created when absent, so several modules can add commands to one group."""
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help)
        return parser.add_subparsers(dest=f"{name}_cmd", required=True)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_cmd", required=True)


def _db_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, help="database URL (default: $VERIFIER_DB, config, sqlite:///<home>/verifier.db)")


def register(subparsers: Any) -> None:
    """Add `db`, `purge`, `export` and the `roster import|graduate` commands to the main parser."""
    d = subparsers.add_parser("db", help="数据库 / database schema")
    dsub = d.add_subparsers(dest="db_cmd", required=True)
    for name, text in (("upgrade", "apply the migrations (creates the database)"), ("current", "show the schema revision")):
        sp = dsub.add_parser(name, help=text)
        _db_opt(sp)
        sp.set_defaults(func=cmd_db)

    rsub = command_group(subparsers, "roster", "名单 / rosters")
    ri = rsub.add_parser("import", help="导入名单到数据库 / upsert a roster into the database by 考生号")
    ri.add_argument("roster", help="roster CSV or XLSX")
    ri.add_argument("--ksh-pattern", default=DEFAULT_KSH_PATTERN)
    ri.add_argument("--json", action="store_true")
    ri.add_argument("--actor", default=None, help="name recorded in the audit log")
    _db_opt(ri)
    ri.set_defaults(func=cmd_roster_import)
    rg = rsub.add_parser("graduate", help="标记毕业 / mark the roster's students graduated on a date")
    rg.add_argument("roster", help="roster CSV or XLSX of the graduates")
    rg.add_argument("--on", required=True, help="graduation date YYYY-MM-DD")
    rg.add_argument("--ksh-pattern", default=DEFAULT_KSH_PATTERN)
    rg.add_argument("--actor", default=None)
    _db_opt(rg)
    rg.set_defaults(func=cmd_roster_graduate)

    p = subparsers.add_parser("purge", help="按保存期限清除照片与特征 / delete photos and embeddings past retention")
    p.add_argument("--graduated-before", default=None, help="students graduated before YYYY-MM-DD")
    p.add_argument("--intake", default=None, help="one 入学批次, e.g. 2019秋")
    p.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--actor", default=None)
    _db_opt(p)
    p.set_defaults(func=cmd_purge)

    e = subparsers.add_parser("export", help="导出 / export cases, comparisons or students")
    e.add_argument("what", choices=EXPORT_KINDS)
    e.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    e.add_argument("--out", required=True, help="file to write, or - for standard output")
    e.add_argument("--state", default=None, help="cases: open|in_review|resolved; comparisons: match|review|mismatch|unusable; students: enrolled|graduated|withdrawn")
    e.add_argument("--college", default=None)
    _db_opt(e)
    e.set_defaults(func=cmd_export)
