"""The persistent store: SQLAlchemy models, shipped Alembic migrations, a content-addressed photo store, services.

Modules: db (open, check, retried transactions), schema (migrations), models, photostore, students,
photos, embeddings, comparisons, duplicates, cases, audit, runs, purge, export.
"""

from __future__ import annotations

from verifier.store import audit as _audit  # noqa: F401  (registers the ORM guards that keep audit rows append-only)
