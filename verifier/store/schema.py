"""The schema's version: upgrade with the shipped Alembic migrations, report it, check it, refuse mismatches."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from verifier.common.reasons import VerifierError
from verifier.store.db import connect_error, make_engine, normalise_url, safe_url
from verifier.store.models import Base

MIGRATIONS = Path(str(resources.files("verifier.store.migrations")))  # shipped in the package; Alembic wants a folder


def alembic_config() -> Config:
    """An Alembic Config pointing at the migrations shipped inside the package (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision this verifier knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands against the migrations this verifier ships."""

    current: str | None
    head: str
    known: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_state(engine: Engine) -> SchemaState:
    """Read the database's Alembic revision and compare it with the shipped head."""
    script = ScriptDirectory.from_config(alembic_config())
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    except OperationalError as exc:
        raise connect_error(exc, str(engine.url)) from None
    current = heads[0] if heads else None
    known = current is None or current in {r.revision for r in script.walk_revisions()}
    return SchemaState(current, script.get_current_head() or "", known)


def require_current(engine: Engine) -> SchemaState:
    """Refuse to work on an un-migrated, outdated or newer-than-known database, naming `verifier db upgrade`."""
    state = schema_state(engine)
    where = safe_url(engine.url.render_as_string(hide_password=False))
    if state.current is None:
        raise VerifierError("STORE_DB_NOT_MIGRATED", detail=f"{where} has no schema; run: verifier db upgrade")
    if not state.known:
        raise VerifierError(
            "STORE_DB_TOO_NEW",
            detail=f"{where} is at revision {state.current}, unknown to this verifier (head {state.head}); "
            "upgrade verifier instead of running `verifier db upgrade`",
        )
    if not state.up_to_date:
        raise VerifierError(
            "STORE_DB_NOT_MIGRATED", detail=f"{where} is at {state.current}, head is {state.head}; run: verifier db upgrade"
        )
    return state


def upgrade(url: str, revision: str = "head") -> SchemaState:
    """Apply the migrations up to revision (creating a SQLite file 0600 when needed); refuse a newer database."""
    engine = make_engine(normalise_url(url), create=True)
    try:
        state = schema_state(engine)
        if not state.known:
            require_current(engine)
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return schema_state(engine)
    finally:
        engine.dispose()


def schema_diff(engine: Engine) -> list[tuple]:
    """What `alembic check` would report: differences between the migrated database and the models (empty when clean)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "target_metadata": Base.metadata})
        return list(compare_metadata(ctx, Base.metadata))


def check(url: str) -> None:
    """Run Alembic's own `check` command against the database (raises when the models and migrations differ)."""
    engine = make_engine(normalise_url(url))
    try:
        cfg = alembic_config()
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.check(cfg)
    finally:
        engine.dispose()
