"""Store fixtures: every test that asks for `db_url` or `db` runs once on SQLite and once on PostgreSQL.

PostgreSQL comes from VERIFIER_TEST_PG_URL; each test gets a fresh schema (search_path) that is dropped
afterwards. Without that variable, or when the server does not answer, the PostgreSQL half skips with why —
except where VERIFIER_TEST_PG_REQUIRED=1 (set by .ci/run): there it fails, so CI never passes without PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from verifier.store import schema
from verifier.store.db import Database, normalise_url
from verifier.store.connect import open_database
from verifier.store.photostore import PhotoStore

RUN_TAG = uuid.uuid4().hex[:8]


def _skip_or_fail(why: str) -> None:
    """Skip a PostgreSQL test with the reason, or fail it where PostgreSQL is required (CI)."""
    if os.environ.get("VERIFIER_TEST_PG_REQUIRED") == "1":
        pytest.fail(f"{why} (VERIFIER_TEST_PG_REQUIRED=1: PostgreSQL tests may not skip here)", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URL of the test PostgreSQL server; schemas this run created are dropped at the end."""
    raw = os.environ.get("VERIFIER_TEST_PG_URL")
    if not raw:
        _skip_or_fail("PostgreSQL tests need VERIFIER_TEST_PG_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    url = normalise_url(raw)
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: skip with the reason
        engine.dispose()
        _skip_or_fail(f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)} does not answer: {type(exc).__name__}")
    yield url
    with engine.begin() as conn:
        names = conn.exec_driver_sql(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %(p)s", {"p": f"vt_{RUN_TAG}_%"}
        ).scalars().all()
        for name in names:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    engine.dispose()


@contextmanager
def pg_schema(server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema on the test server; the schema is dropped afterwards."""
    name = f"vt_{RUN_TAG}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(server)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield make_url(server).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty, un-migrated database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'home' / 'verifier.db'}"
        return
    with pg_schema(request.getfixturevalue("pg_server")) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database."""
    schema.upgrade(db_url)
    database = open_database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> PhotoStore:
    return PhotoStore.for_home(home)
