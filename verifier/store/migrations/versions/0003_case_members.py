"""Group cases' members and pairs: who is in a duplicate_face case, which photo pairs it covers, each member's verdict.

Existing duplicate_face cases are backfilled from their subject and `duplicate.members` audit entries. A case
resolved before this revision gives its outcome only to members its resolver could see: a key with scopes saw
none of the students outside them, so those members stay undecided and the next sweep raises their pairs again.

Revision ID: 0003_case_members
Revises: 0002
Create Date: 2026-12-03 17:30:00.000000

"""
import re
from typing import Any, Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003_case_members'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CONFIRMING = ("same_person", "impersonation")
KEY_ACTOR = re.compile(r"^key:(\d+):")
CENTRE_PREFIX = "学习中心:"  # as api.keys: a scope naming a 学习中心; any other scope names a 学院


def upgrade() -> None:
    """Create case_members and case_pairs, then backfill them from the existing duplicate_face cases."""
    op.create_table('case_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('photo_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('confirmed', 'dismissed')", name=op.f('ck_case_members_outcome')),
    sa.CheckConstraint('(outcome IS NULL) = (decided_at IS NULL)', name=op.f('ck_case_members_decided_has_time')),
    sa.ForeignKeyConstraint(['case_id'], ['review_cases.id'], name=op.f('fk_case_members_case_id_review_cases')),
    sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_case_members_photo_id_photos')),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_case_members_student_id_students')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_members')),
    sa.UniqueConstraint('case_id', 'student_id', name=op.f('uq_case_members_case_id'))
    )
    with op.batch_alter_table('case_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_members_student_id'), ['student_id'], unique=False)

    op.create_table('case_pairs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['duplicate_candidates.id'], name=op.f('fk_case_pairs_candidate_id_duplicate_candidates')),
    sa.ForeignKeyConstraint(['case_id'], ['review_cases.id'], name=op.f('fk_case_pairs_case_id_review_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_pairs')),
    sa.UniqueConstraint('case_id', 'candidate_id', name=op.f('uq_case_pairs_case_id'))
    )
    with op.batch_alter_table('case_pairs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_pairs_candidate_id'), ['candidate_id'], unique=False)

    _backfill(op.get_bind())


def _backfill(conn: Any) -> None:
    """Members and pairs of every duplicate_face case; verdicts of resolved ones limited to what the resolver could see."""
    import datetime as dt

    meta = sa.MetaData()
    cases = sa.Table('review_cases', meta, sa.Column('id', sa.Integer), sa.Column('case_type', sa.String), sa.Column('subject_type', sa.String),
                     sa.Column('subject_id', sa.Integer), sa.Column('state', sa.String), sa.Column('outcome', sa.String),
                     sa.Column('resolved_by', sa.String), sa.Column('resolved_at', sa.DateTime(timezone=True)))
    events = sa.Table('audit_events', meta, sa.Column('action', sa.String), sa.Column('object_type', sa.String), sa.Column('object_id', sa.String),
                      sa.Column('summary', sa.JSON))
    cands = sa.Table('duplicate_candidates', meta, sa.Column('id', sa.Integer), sa.Column('photo_a_id', sa.Integer), sa.Column('photo_b_id', sa.Integer),
                     sa.Column('student_a_id', sa.Integer), sa.Column('student_b_id', sa.Integer))
    students = sa.Table('students', meta, sa.Column('id', sa.Integer), sa.Column('college', sa.String), sa.Column('centre', sa.String))
    keys = sa.Table('api_keys', meta, sa.Column('id', sa.Integer), sa.Column('scopes', sa.JSON))
    members = sa.Table('case_members', meta, sa.Column('case_id', sa.Integer), sa.Column('student_id', sa.Integer), sa.Column('photo_id', sa.Integer),
                       sa.Column('outcome', sa.String), sa.Column('decided_by', sa.String), sa.Column('decided_at', sa.DateTime(timezone=True)),
                       sa.Column('created_at', sa.DateTime(timezone=True)))
    pairs = sa.Table('case_pairs', meta, sa.Column('case_id', sa.Integer), sa.Column('candidate_id', sa.Integer), sa.Column('created_at', sa.DateTime(timezone=True)))
    now = dt.datetime.now(dt.timezone.utc)
    scopes_of = {kid: list(sc or []) for kid, sc in conn.execute(sa.select(keys.c.id, keys.c.scopes))}
    rows = conn.execute(sa.select(cases).where(cases.c.case_type == 'duplicate_face', cases.c.subject_type == 'duplicate').order_by(cases.c.id)).all()
    for case in rows:
        wanted = {case.subject_id}
        q = sa.select(events.c.summary).where(events.c.action == 'duplicate.members', events.c.object_type == 'case', events.c.object_id == str(case.id))
        for (summary,) in conn.execute(q):
            wanted.update(int(c) for c in ((summary or {}).get('after') or {}).get('candidates', []))
        found = conn.execute(sa.select(cands).where(cands.c.id.in_(sorted(wanted))).order_by(cands.c.id)).all()
        if not found:
            continue
        photo_of: dict[int, int] = {}
        for c in found:
            for sid, pid in ((c.student_a_id, c.photo_a_id), (c.student_b_id, c.photo_b_id)):
                photo_of[sid] = min(pid, photo_of.get(sid, pid))
        seen = _seen_by(conn, students, scopes_of, case.resolved_by, sorted(photo_of))
        verdict = None if case.state != 'resolved' else ('confirmed' if case.outcome in CONFIRMING else 'dismissed')
        conn.execute(pairs.insert(), [{'case_id': case.id, 'candidate_id': c.id, 'created_at': now} for c in found])
        conn.execute(members.insert(), [
            {'case_id': case.id, 'student_id': sid, 'photo_id': pid, 'created_at': now,
             'outcome': verdict if sid in seen else None,
             'decided_by': case.resolved_by if verdict and sid in seen else None,
             'decided_at': (case.resolved_at or now) if verdict and sid in seen else None}
            for sid, pid in sorted(photo_of.items())
        ])


def _seen_by(conn: Any, students: sa.Table, scopes_of: dict[int, list[str]], resolver: str | None, ids: list[int]) -> set[int]:
    """Students a case's resolver could see: all for the CLI or an unscoped key, only those in scope for a scoped key."""
    m = KEY_ACTOR.match(resolver or '')
    scopes = set(scopes_of.get(int(m.group(1)), [])) if m else set()
    if not scopes:
        return set(ids)
    centres = {s[len(CENTRE_PREFIX):] for s in scopes if s.startswith(CENTRE_PREFIX)}
    colleges = {s for s in scopes if not s.startswith(CENTRE_PREFIX)}
    rows = conn.execute(sa.select(students.c.id, students.c.college, students.c.centre).where(students.c.id.in_(ids)))
    return {sid for sid, college, centre in rows if (college and college in colleges) or (centre and centre in centres)}


def downgrade() -> None:
    """Drop case_pairs and case_members (the audit log keeps the history)."""
    with op.batch_alter_table('case_pairs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_pairs_candidate_id'))
    op.drop_table('case_pairs')
    with op.batch_alter_table('case_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_members_student_id'))
    op.drop_table('case_members')
