"""ID-card photos (身份证照片) and intake cases: photos.kind admits 'id_card', review_cases.case_type 'intake_mismatch',
and photos.origin_sha256 names the card scan a portrait was cut from.

SQLite cannot alter a CHECK constraint, and a batch recreate would DROP photos and review_cases, which the
foreign keys onto them refuse. Only the IN lists widen (every stored row still satisfies the new check), which
SQLite's documented procedure for schema changes that leave the stored format unchanged allows: rewrite the
table's CREATE statement in sqlite_schema under `writable_schema`, then check the file's integrity.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KINDS_OLD = "kind IN ('admission', 'graduation')"
KINDS_NEW = "kind IN ('admission', 'graduation', 'id_card')"
TYPES_OLD = "case_type IN ('comparison_failed', 'comparison_review', 'duplicate_face', 'photo_correction', 'identity_check')"
TYPES_NEW = "case_type IN ('comparison_failed', 'comparison_review', 'duplicate_face', 'photo_correction', 'identity_check', 'intake_mismatch')"
CHECKS = (('photos', 'ck_photos_kind', KINDS_OLD, KINDS_NEW), ('review_cases', 'ck_review_cases_case_type', TYPES_OLD, TYPES_NEW))


def _sqlite_rewrite(table: str, old: str, new: str) -> None:
    """Replace one CHECK expression in a SQLite table's stored CREATE statement."""
    conn = op.get_bind()
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar_one()
    if old not in sql:
        raise RuntimeError(f"{table}: expected check {old!r} not found in its schema")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (sql.replace(old, new), table))
        conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")
    result = conn.exec_driver_sql("PRAGMA integrity_check").scalar_one()
    if result != "ok":
        raise RuntimeError(f"integrity check after rewriting {table}: {result}")


def _change(forward: bool) -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, name, old, new in CHECKS:
        old, new = (old, new) if forward else (new, old)
        if sqlite:
            _sqlite_rewrite(table, old, new)
        else:
            op.drop_constraint(op.f(name), table, type_='check')
            op.create_check_constraint(op.f(name), table, sa.text(new))


def upgrade() -> None:
    """Widen the two checks; add photos.origin_sha256."""
    _change(True)
    op.add_column('photos', sa.Column('origin_sha256', sa.String(length=64), server_default=sa.text('NULL'), nullable=True))


def downgrade() -> None:
    """Narrow them again: refused while any id_card photo or intake case exists (the old check would not hold)."""
    conn = op.get_bind()
    if conn.exec_driver_sql("SELECT 1 FROM photos WHERE kind = 'id_card' UNION ALL SELECT 1 FROM review_cases WHERE case_type = 'intake_mismatch'").first():
        raise RuntimeError("ID-card photos or intake cases exist; purge them before downgrading past 0010")
    if conn.dialect.name == 'sqlite':
        op.execute("ALTER TABLE photos DROP COLUMN origin_sha256")
    else:
        op.drop_column('photos', 'origin_sha256')
    _change(False)
