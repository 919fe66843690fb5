"""Migrations up from empty, `alembic check` clean, and refusal of un-migrated or newer-than-known databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from verifier.cli import main as cli
from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings
from verifier.store import schema
from verifier.store.db import make_engine, normalise_url, resolve_url
from verifier.store.connect import open_database

TABLES = {"students", "photos", "embeddings", "runs", "comparisons", "duplicate_candidates", "review_cases", "audit_events"}


def test_upgrade_from_empty_and_alembic_check_clean(db_url: str) -> None:
    state = schema.upgrade(db_url)
    assert state.current == schema.head_revision() and state.up_to_date
    engine = make_engine(db_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
        assert schema.schema_diff(engine) == []
    finally:
        engine.dispose()
    schema.check(db_url)  # Alembic's own `alembic check`: raises if models and migrations differ
    assert schema.upgrade(db_url).current == state.current  # idempotent


def test_unmigrated_database_refused(db_url: str) -> None:
    make_engine(db_url, create=True).dispose()  # an empty database / schema exists
    with pytest.raises(VerifierError) as exc:
        open_database(db_url)
    assert exc.value.reason.code == "STORE_DB_NOT_MIGRATED"
    assert "verifier db upgrade" in str(exc.value.detail)


def test_missing_sqlite_file_created_and_migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "none" / "v.db"
    db = open_database(f"sqlite:///{target}")
    try:
        assert target.is_file() and (target.stat().st_mode & 0o777) == 0o600
        assert schema.schema_state(db.engine).up_to_date
    finally:
        db.dispose()
    assert f"created a new SQLite store at {target}" in capsys.readouterr().err
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".")) == []  # no temporary left
    open_database(f"sqlite:///{target}").dispose()  # the second open just opens it
    assert "created" not in capsys.readouterr().err


def test_existing_sqlite_at_older_schema_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    schema.upgrade(url, "0001")
    with pytest.raises(VerifierError) as exc:
        open_database(url)
    assert exc.value.reason.code == "STORE_DB_NOT_MIGRATED"
    assert "verifier db upgrade" in str(exc.value.detail)


def test_batch_on_a_new_sqlite_url_needs_no_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A new user's first command: the SQLite file named by --db does not exist yet."""
    roster = tmp_path / "roster.csv"
    roster.write_text("考生号,学号,姓名\n21110101000001,S1,张三\n", encoding="utf-8")
    (tmp_path / "adm").mkdir()
    (tmp_path / "grad").mkdir()
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code = cli.main(["batch", "compare", "--roster", str(roster), "--admission-dir", str(tmp_path / "adm"),
                     "--graduation-dir", str(tmp_path / "grad"), "--db", url, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "STORE_DB_NOT_MIGRATED" not in err and "created a new SQLite store" in err
    assert (tmp_path / "out" / "report.csv").is_file()


def test_newer_than_known_database_refused(db_url: str) -> None:
    schema.upgrade(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    engine.dispose()
    for attempt in (lambda: open_database(db_url), lambda: schema.upgrade(db_url)):
        with pytest.raises(VerifierError) as exc:
            attempt()
        assert exc.value.reason.code == "STORE_DB_TOO_NEW"


def test_cli_db_upgrade_and_current(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["db", "current", "--db", db_url]) == 1
    assert cli.main(["db", "upgrade", "--db", db_url]) == 0
    assert cli.main(["db", "current", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert f"current: {schema.head_revision()}" in out and "up to date" in out
    assert cli.main(["export", "students", "--format", "csv", "--out", "/dev/null", "--db", db_url]) == 0


def test_cli_refuses_unmigrated(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    make_engine(db_url, create=True).dispose()
    assert cli.main(["export", "cases", "--format", "csv", "--out", "/dev/null", "--db", db_url]) == 2
    assert "verifier db upgrade" in capsys.readouterr().err


def test_sqlite_pragmas(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'v.db'}"
    schema.upgrade(db_url)
    db = open_database(db_url)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    db.dispose()


def test_url_resolution_order(tmp_path: Path) -> None:
    home = tmp_path / "h"
    s = Settings(home=home)
    assert resolve_url(None, s) == f"sqlite:///{(home / 'verifier.db').resolve()}"
    home.mkdir()
    (home / "config.toml").write_text('db_url = "sqlite:////tmp/from-config.db"\n')
    assert resolve_url(None, s) == "sqlite:////tmp/from-config.db"
    s_env = Settings.from_env({"VERIFIER_HOME": str(home), "VERIFIER_DB": "postgresql://u@h/d"})
    assert resolve_url(None, s_env) == "postgresql+psycopg://u@h/d"
    assert resolve_url("sqlite:////x.db", s_env) == "sqlite:////x.db"
    assert normalise_url("postgres://a@b/c") == "postgresql+psycopg://a@b/c"
    with pytest.raises(VerifierError) as exc:
        make_engine("mysql://a@b/c")
    assert exc.value.reason.code == "STORE_DB_URL_INVALID"


def test_id_key_file_created_private(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    key = s.id_key_bytes()
    assert len(key) >= 32 and s.id_key_bytes() == key
    assert ((tmp_path / "h" / "id.key").stat().st_mode & 0o777) == 0o600
    assert Settings(home=tmp_path / "h", id_key="k" * 20).id_key_bytes() == b"k" * 20
    with pytest.raises(VerifierError):
        Settings(home=tmp_path / "h", id_key="short").id_key_bytes()
