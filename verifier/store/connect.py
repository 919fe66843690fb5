"""Open the store: resolve the URL, create a missing SQLite store, refuse a schema this verifier does not run on.

The one place that joins the engine (db) and the migrations (schema), so neither imports the other.
"""

from __future__ import annotations

import os
import sys

from verifier.common.settings import Settings
from verifier.store.db import Database, sqlite_path, make_engine, normalise_url, resolve_url
from verifier.store.schema import require_current, upgrade


def open_database(url: str | None = None, *, settings: Settings | None = None, check: bool = True) -> Database:
    """Open the database at url (or the resolved default) and refuse an un-migrated or newer-than-known schema.

    A SQLite store whose file does not exist yet is the embedded default: it is created and migrated, and
    stderr says so. An existing database at an older schema is refused (`verifier db upgrade` migrates it),
    and a PostgreSQL database is never created or migrated here.
    """
    resolved = normalise_url(url) if url else resolve_url(None, settings)
    create_sqlite_store(resolved)
    engine = make_engine(resolved)
    try:
        if check:
            require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    s = settings or Settings.from_env()
    return Database(resolved, engine, retry_s=s.db_retry_s, retry_base_s=s.db_retry_base_s)


def create_sqlite_store(url: str) -> bool:
    """Create and migrate the SQLite file of url when it does not exist yet; True when this call created it.

    The store is built under a temporary name and linked into place, so another process never opens a
    half-migrated file, and of two processes starting on a fresh home one creates it and the other uses it.
    """
    path = sqlite_path(normalise_url(url))
    if path is None or path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
    try:
        state = upgrade(f"sqlite:///{tmp}")
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
    print(f"新建数据库 / created a new SQLite store at {path} (schema {state.current})", file=sys.stderr)
    return True
