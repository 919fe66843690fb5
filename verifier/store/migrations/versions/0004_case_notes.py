"""Case notes as rows (author, time, text) instead of one text column a newline could forge lines in.

Existing notes are split into entries: lines written as `[time author] text` (the API) or
`[time] author: text` (the sweep) become one entry each; any other line continues the entry above it.

Revision ID: 0004
Revises: 0003_case_members
Create Date: 2026-12-03 17:40:00.000000

"""
import datetime as dt
import re
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003_case_members'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_API_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\S+) (.*?)\] (.*)$")
_SWEEP_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d)\] (.*?): (.*)$")


def _when(text: str, fallback: dt.datetime) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return fallback
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def split_notes(notes: str, opened: dt.datetime) -> list[dict]:
    """The old text column as entries (at, author, text)."""
    entries: list[dict] = []
    for line in (notes or "").splitlines():
        m = _API_LINE.match(line) or _SWEEP_LINE.match(line)
        if m:
            entries.append({"at": _when(m.group(1), opened), "author": m.group(2)[:100], "text": m.group(3)})
        elif entries:
            entries[-1]["text"] += "\n" + line
        elif line.strip():
            entries.append({"at": opened, "author": "", "text": line})
    return [e for e in entries if e["text"].strip()]


def upgrade() -> None:
    """Create case_notes, move every case's notes into it, drop review_cases.notes."""
    notes = op.create_table('case_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['review_cases.id'], name=op.f('fk_case_notes_case_id_review_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_notes'))
    )
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_notes_case_id'), ['case_id'], unique=False)
    conn = op.get_bind()
    cases = sa.table('review_cases', sa.column('id', sa.Integer), sa.column('notes', sa.Text), sa.column('created_at', sa.DateTime(timezone=True)))
    rows = []
    for case_id, text, created in conn.execute(sa.select(cases.c.id, cases.c.notes, cases.c.created_at).where(cases.c.notes != '')):
        opened = created if created is None or created.tzinfo else created.replace(tzinfo=dt.UTC)
        rows += [{"case_id": case_id, **e} for e in split_notes(text, opened or dt.datetime.now(dt.UTC))]
    if rows:
        op.bulk_insert(notes, rows)
    # SQLite >= 3.35 and PostgreSQL both drop a plain column in place (no table rebuild that could lose partial indexes).
    op.execute("ALTER TABLE review_cases DROP COLUMN notes")


def downgrade() -> None:
    """Put the notes back into review_cases.notes as `[time author] text` lines, drop case_notes."""
    op.add_column('review_cases', sa.Column('notes', sa.Text(), nullable=False, server_default=''))
    conn = op.get_bind()
    notes = sa.table('case_notes', sa.column('case_id', sa.Integer), sa.column('at', sa.DateTime(timezone=True)),
                     sa.column('author', sa.String), sa.column('text', sa.Text), sa.column('id', sa.Integer))
    cases = sa.table('review_cases', sa.column('id', sa.Integer), sa.column('notes', sa.Text))
    text: dict[int, str] = {}
    for case_id, at, author, body in conn.execute(sa.select(notes.c.case_id, notes.c.at, notes.c.author, notes.c.text).order_by(notes.c.id)):
        stamp = at.isoformat(timespec='seconds') if hasattr(at, 'isoformat') else str(at)
        text[case_id] = text.get(case_id, "") + f"[{stamp} {author}] {body}\n"
    for case_id, joined in text.items():
        conn.execute(cases.update().where(cases.c.id == case_id).values(notes=joined))
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_notes_case_id'))
    op.drop_table('case_notes')
