"""Open the database: URL resolution, SQLite pragmas, the schema-version gate, and retried write transactions."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_S = 30.0
WRITE_RETRIES = 10
_PG_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
# admin/crash shutdown, cannot connect now (starting up / shutting down), and the connection-exception class
_PG_AWAY_SQLSTATES = {"57P01", "57P02", "57P03"}


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// (and postgres://) URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def resolve_url(cli_url: str | None = None, settings: Settings | None = None) -> str:
    """The database URL from --db, VERIFIER_DB, config, or the default SQLite file under home."""
    s = settings or Settings.from_env()
    return normalise_url(s.resolve_db_url(cli_url))


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" or u.database.startswith("file:"):
        return None
    return Path(u.database)


def _prepare_sqlite_file(path: Path) -> None:
    """Create the folder 0700 and the database file 0600 before SQLite does (its -wal/-shm files copy the mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)


def make_engine(url: str, *, create: bool = False) -> Engine:
    """An Engine for the URL; SQLite gets WAL, foreign keys, a busy timeout and real BEGIN / BEGIN IMMEDIATE."""
    url = normalise_url(url)
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise VerifierError("STORE_DB_URL_INVALID", detail=str(exc)) from None
    backend = u.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise VerifierError("STORE_DB_URL_INVALID", detail=f"backend {backend!r}")
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    path = sqlite_path(url)
    if path is not None:
        if create:
            _prepare_sqlite_file(path)
        elif not path.exists():
            raise VerifierError("STORE_DB_NOT_MIGRATED", detail=f"no database file at {path}")
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else "BEGIN")

    return engine


def is_retryable(exc: BaseException) -> bool:
    """True for SQLite "database is locked"/busy and PostgreSQL serialization failures or deadlocks."""
    if not isinstance(exc, DBAPIError):
        return False
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        if "database is locked" in text or "database table is locked" in text:
            return True
    return getattr(exc.orig, "sqlstate", None) in _PG_RETRY_SQLSTATES


def is_server_away(exc: BaseException) -> bool:
    """True when the database server went away or cannot be reached now (restart, terminated backend, refused).

    Such an error says nothing about the data: the unit of work was rolled back and may be run again.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None) or ""
    if state in _PG_AWAY_SQLSTATES or state.startswith("08"):
        return True
    return isinstance(exc, OperationalError) and not state and type(exc.orig).__module__.startswith("psycopg")


def backoff_s(attempt: int, base_s: float) -> float:
    """The pause before retry `attempt` (0-based): doubling from base_s, capped at 2 s, with jitter."""
    return min(2.0, base_s * 2**attempt) * (0.5 + random.random())


@dataclass
class Database:
    """An opened, schema-checked database: sessions for reading, `transaction` for retried writes.

    A write is retried on lock or serialization errors (`retries` times) and, while the server is away,
    for up to `retry_s` seconds; then it stops with STORE_DB_BUSY or STORE_DB_UNREACHABLE.
    """

    url: str
    engine: Engine
    retry_s: float = 30.0
    retry_base_s: float = 0.1
    retries_done: int = 0

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A plain session (deferred transaction); the caller commits."""
        return self._sessions()

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """One write transaction (BEGIN IMMEDIATE on SQLite), committed on success, rolled back on error."""
        with self._write_sessions() as s, s.begin():
            yield s

    def transaction(self, fn: Callable[[Session], T], retries: int = WRITE_RETRIES) -> T:
        """Run fn(session) in a write transaction and commit; retry the whole unit as the class doc says."""
        return self._retried(fn, self.write_session, retries)

    def read(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in a read-only unit; retried like a write while the server is away."""
        return self._retried(fn, self._read_session, 0)

    @contextmanager
    def _read_session(self) -> Iterator[Session]:
        with self._sessions() as s:
            yield s

    def _retried(self, fn: Callable[[Session], T], opener: Callable[[], Any], retries: int) -> T:
        busy = away = 0
        deadline = time.monotonic() + self.retry_s
        while True:
            try:
                with opener() as s:
                    return fn(s)
            except DBAPIError as exc:
                if is_server_away(exc):
                    if time.monotonic() >= deadline:
                        raise connect_error(exc, self.url, f"still away after {away} retries in {self.retry_s:g} s") from exc
                    pause = min(backoff_s(away, self.retry_base_s), max(0.0, deadline - time.monotonic()))
                    away += 1
                elif is_retryable(exc):
                    if busy >= retries:
                        raise VerifierError("STORE_DB_BUSY", detail=f"{retries} retries") from exc
                    pause = backoff_s(busy, 0.05)
                    busy += 1
                else:
                    raise
                self.retries_done += 1
                time.sleep(pause)

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def connect_error(exc: DBAPIError, url: str, note: str = "") -> VerifierError:
    """Map a connection failure to STORE_DB_UNREACHABLE without leaking the password."""
    lines = str(exc.orig).strip().splitlines() if exc.orig else []
    first = lines[0] if lines else type(exc).__name__
    return VerifierError("STORE_DB_UNREACHABLE", detail=f"{safe_url(url)}: {first}" + (f" ({note})" if note else ""))
