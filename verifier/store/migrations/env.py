"""Alembic environment: runs on the connection verifier.store.schema hands over, or opens the configured URL.

`verifier db upgrade` passes config.attributes["connection"]. Run by the alembic CLI instead, it uses
sqlalchemy.url from the ini file, else the URL verifier resolves (--db is not available there: VERIFIER_DB, config, default).
"""

from __future__ import annotations

from alembic import context

from verifier.store.db import make_engine, resolve_url
from verifier.store.models import Base

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or resolve_url(), create=True)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()
