"""`verifier serve`, `verifier keys create|list|revoke` and `verifier openapi`: thin CLI over the api package."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from verifier.common.reasons import VerifierError

ROLES = ("admissions", "academic_affairs", "reviewer", "admin")


def _actor() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP service with uvicorn (one process; inference concurrency bounded inside; limits from Settings)."""
    import uvicorn

    from api.app import create_app
    from api.server import uvicorn_config
    from verifier.common.settings import Settings

    settings = Settings.from_env()
    app = create_app(settings, db_url=args.db)
    uvicorn.Server(uvicorn_config(app, settings, args.host, args.port, args.log_level)).run()
    return 0


def _open(args: argparse.Namespace) -> Any:
    from verifier.common.settings import Settings
    from verifier.store.connect import open_database

    return open_database(args.db, settings=Settings.from_env())


def cmd_keys(args: argparse.Namespace) -> int:
    """Create (secret printed once), list or revoke API keys."""
    from api import keys
    from verifier.common.text import escape_unsafe

    database = _open(args)
    try:
        if args.keys_cmd == "create":
            expires = None
            if args.expires:
                try:
                    expires = dt.datetime.combine(dt.date.fromisoformat(args.expires), dt.time(), dt.UTC)
                except ValueError:
                    raise VerifierError("STORE_DATE_INVALID", detail=args.expires) from None
            issued = database.transaction(lambda s: keys.create_key(s, args.role, args.name, args.college, expires, _actor()))
            print(issued.secret)
            scope = escape_unsafe(",".join(issued.key.scopes)) or "全部 / all"
            print(f"key {issued.key.id} ({escape_unsafe(issued.key.name)}, {issued.key.role}, scope: {scope}). 仅显示一次，请妥善保存 / shown once: store it now.", file=sys.stderr)
            return 0
        if args.keys_cmd == "list":
            with database.session() as s:
                rows = keys.list_keys(s)
                for k in rows:
                    item = {
                        "id": k.id, "name": k.name, "role": k.role, "scopes": list(k.scopes or []), "state": keys.key_state(k),
                        "created_at": k.created_at.isoformat(timespec="seconds"), "expires_at": k.expires_at.isoformat(timespec="seconds") if k.expires_at else None,
                    }
                    if args.json:
                        print(json.dumps(item, ensure_ascii=False))
                    else:
                        cells = (str(k.id), k.name, k.role, ",".join(item["scopes"]) or "*", item["state"], item["expires_at"] or "-")
                        print("\t".join(escape_unsafe(c) for c in cells))
            return 0
        row = database.transaction(lambda s: keys.revoke_key(s, args.id, _actor()))
        print(f"key {row.id} ({escape_unsafe(row.name)}) revoked / 已吊销")
        return 0
    finally:
        database.dispose()


def openapi_json() -> str:
    """The OpenAPI document as committed in docs/openapi.json (sorted keys, UTF-8, trailing newline)."""
    from api.app import create_app

    return json.dumps(create_app(load=False).openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def cmd_openapi(args: argparse.Namespace) -> int:
    """Print or write the OpenAPI document."""
    from verifier.common.files import write_output

    write_output(args.out or "-", openapi_json().encode("utf-8"), 0o644)
    return 0


def register(subparsers: Any) -> None:
    """Add `serve`, `keys` and `openapi`."""
    s = subparsers.add_parser("serve", help="HTTP 服务 / run the HTTP API and the reviewer page")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--db", default=None, help="database URL (default: VERIFIER_DB, config, sqlite under VERIFIER_HOME)")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(func=cmd_serve)

    k = subparsers.add_parser("keys", help="API 密钥 / API keys")
    ksub = k.add_subparsers(dest="keys_cmd", required=True)
    c = ksub.add_parser("create", help="create a key (printed once)")
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--name", required=True)
    c.add_argument("--college", action="append", default=[], help="limit to this 学院 (or 学习中心:<name> for a 学习中心; repeatable)")
    c.add_argument("--expires", default=None, help="YYYY-MM-DD (UTC midnight)")
    lst = ksub.add_parser("list", help="list keys (never secrets)")
    lst.add_argument("--json", action="store_true")
    r = ksub.add_parser("revoke", help="revoke a key by id")
    r.add_argument("id", type=int)
    for sp in (c, lst, r):
        sp.add_argument("--db", default=None)
        sp.set_defaults(func=cmd_keys)

    o = subparsers.add_parser("openapi", help="print the OpenAPI document (regenerate docs/openapi.json)")
    o.add_argument("--out", default=None)
    o.set_defaults(func=cmd_openapi)
