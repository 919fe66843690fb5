"""Initial store schema: students, photos with history, embeddings, runs, comparisons, duplicates, cases, audit.

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 10:19:01.050938

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create every table, then make audit_events append-only in the database itself."""
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_events_object', ['object_type', 'object_id'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.CheckConstraint("status IN ('running', 'completed', 'failed', 'interrupted')", name=op.f('ck_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_kind'), ['kind'], unique=False)

    op.create_table('students',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ksh', sa.String(length=32), nullable=False),
    sa.Column('student_no', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('id_hash', sa.String(length=64), nullable=True),
    sa.Column('id_masked', sa.String(length=32), nullable=False),
    sa.Column('college', sa.String(length=200), nullable=False),
    sa.Column('centre', sa.String(length=200), nullable=False),
    sa.Column('intake', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('graduated_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status <> 'graduated' OR graduated_on IS NOT NULL", name=op.f('ck_students_graduated_has_date')),
    sa.CheckConstraint("status IN ('enrolled', 'graduated', 'withdrawn')", name=op.f('ck_students_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_students')),
    sa.UniqueConstraint('ksh', name=op.f('uq_students_ksh'))
    )
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_students_college'), ['college'], unique=False)
        batch_op.create_index(batch_op.f('ix_students_graduated_on'), ['graduated_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_students_id_hash'), ['id_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_students_intake'), ['intake'], unique=False)
        batch_op.create_index(batch_op.f('ix_students_student_no'), ['student_no'], unique=False)

    op.create_table('photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('byte_size', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('check_status', sa.String(length=16), nullable=False),
    sa.Column('check_codes', sa.JSON(), nullable=False),
    sa.Column('file_path', sa.String(length=200), nullable=True),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.Column('replaces_id', sa.Integer(), nullable=True),
    sa.Column('replaced_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("check_status IN ('unchecked', 'pass', 'warn', 'fail')", name=op.f('ck_photos_check_status')),
    sa.CheckConstraint("kind IN ('admission', 'graduation')", name=op.f('ck_photos_kind')),
    sa.ForeignKeyConstraint(['replaced_by_id'], ['photos.id'], name=op.f('fk_photos_replaced_by_id_photos')),
    sa.ForeignKeyConstraint(['replaces_id'], ['photos.id'], name=op.f('fk_photos_replaces_id_photos')),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_photos_student_id_students')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photos')),
    sa.UniqueConstraint('replaced_by_id', name=op.f('uq_photos_replaced_by_id')),
    sa.UniqueConstraint('replaces_id', name=op.f('uq_photos_replaces_id'))
    )
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_photos_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_photos_student_id'), ['student_id'], unique=False)
        batch_op.create_index('uq_photos_one_current', ['student_id', 'kind'], unique=True, sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))

    op.create_table('review_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_type', sa.String(length=32), nullable=False),
    sa.Column('subject_type', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('assignee', sa.String(length=100), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('review_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(state = 'resolved') = (outcome IS NOT NULL)", name=op.f('ck_review_cases_resolved_has_outcome')),
    sa.CheckConstraint("case_type IN ('comparison_failed', 'comparison_review', 'duplicate_face', 'photo_correction', 'identity_check')", name=op.f('ck_review_cases_case_type')),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('same_person', 'impersonation', 'photo_replaced', 'dismissed')", name=op.f('ck_review_cases_outcome')),
    sa.CheckConstraint("state IN ('open', 'in_review', 'resolved')", name=op.f('ck_review_cases_state')),
    sa.CheckConstraint("subject_type IN ('student', 'photo', 'comparison', 'duplicate')", name=op.f('ck_review_cases_subject_type')),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_review_cases_student_id_students')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_cases'))
    )
    with op.batch_alter_table('review_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_cases_assignee'), ['assignee'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_cases_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_cases_student_id'), ['student_id'], unique=False)
        batch_op.create_index('uq_review_cases_one_open', ['case_type', 'subject_type', 'subject_id'], unique=True, sqlite_where=sa.text("state <> 'resolved'"), postgresql_where=sa.text("state <> 'resolved'"))

    op.create_table('comparisons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('admission_photo_id', sa.Integer(), nullable=False),
    sa.Column('graduation_photo_id', sa.Integer(), nullable=False),
    sa.Column('pack_id', sa.String(length=64), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("decision IN ('match', 'review', 'mismatch', 'unusable')", name=op.f('ck_comparisons_decision')),
    sa.ForeignKeyConstraint(['admission_photo_id'], ['photos.id'], name=op.f('fk_comparisons_admission_photo_id_photos')),
    sa.ForeignKeyConstraint(['graduation_photo_id'], ['photos.id'], name=op.f('fk_comparisons_graduation_photo_id_photos')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_comparisons_run_id_runs')),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_comparisons_student_id_students')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comparisons')),
    sa.UniqueConstraint('admission_photo_id', 'graduation_photo_id', 'pack_id', name=op.f('uq_comparisons_admission_photo_id'))
    )
    with op.batch_alter_table('comparisons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparisons_decision'), ['decision'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparisons_graduation_photo_id'), ['graduation_photo_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparisons_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparisons_student_id'), ['student_id'], unique=False)

    op.create_table('duplicate_candidates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('photo_a_id', sa.Integer(), nullable=False),
    sa.Column('photo_b_id', sa.Integer(), nullable=False),
    sa.Column('student_a_id', sa.Integer(), nullable=False),
    sa.Column('student_b_id', sa.Integer(), nullable=False),
    sa.Column('pack_id', sa.String(length=64), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('sweep_id', sa.Integer(), nullable=True),
    sa.Column('last_sweep_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('photo_a_id < photo_b_id', name=op.f('ck_duplicate_candidates_ordered')),
    sa.CheckConstraint('student_a_id <> student_b_id', name=op.f('ck_duplicate_candidates_two_students')),
    sa.ForeignKeyConstraint(['last_sweep_id'], ['runs.id'], name=op.f('fk_duplicate_candidates_last_sweep_id_runs')),
    sa.ForeignKeyConstraint(['photo_a_id'], ['photos.id'], name=op.f('fk_duplicate_candidates_photo_a_id_photos')),
    sa.ForeignKeyConstraint(['photo_b_id'], ['photos.id'], name=op.f('fk_duplicate_candidates_photo_b_id_photos')),
    sa.ForeignKeyConstraint(['student_a_id'], ['students.id'], name=op.f('fk_duplicate_candidates_student_a_id_students')),
    sa.ForeignKeyConstraint(['student_b_id'], ['students.id'], name=op.f('fk_duplicate_candidates_student_b_id_students')),
    sa.ForeignKeyConstraint(['sweep_id'], ['runs.id'], name=op.f('fk_duplicate_candidates_sweep_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_candidates')),
    sa.UniqueConstraint('photo_a_id', 'photo_b_id', 'pack_id', name=op.f('uq_duplicate_candidates_photo_a_id'))
    )
    with op.batch_alter_table('duplicate_candidates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duplicate_candidates_photo_b_id'), ['photo_b_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_candidates_student_a_id'), ['student_a_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_candidates_student_b_id'), ['student_b_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_candidates_sweep_id'), ['sweep_id'], unique=False)

    op.create_table('embeddings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('photo_id', sa.Integer(), nullable=False),
    sa.Column('pack_id', sa.String(length=64), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_embeddings_photo_id_photos')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_embeddings')),
    sa.UniqueConstraint('photo_id', 'pack_id', name=op.f('uq_embeddings_photo_id'))
    )
    with op.batch_alter_table('embeddings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_embeddings_pack_id'), ['pack_id'], unique=False)

    _create_audit_guard()


def downgrade() -> None:
    """Drop everything (only for development: it destroys the record)."""
    _drop_audit_guard()
    with op.batch_alter_table('embeddings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_embeddings_pack_id'))

    op.drop_table('embeddings')
    with op.batch_alter_table('duplicate_candidates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duplicate_candidates_sweep_id'))
        batch_op.drop_index(batch_op.f('ix_duplicate_candidates_student_b_id'))
        batch_op.drop_index(batch_op.f('ix_duplicate_candidates_student_a_id'))
        batch_op.drop_index(batch_op.f('ix_duplicate_candidates_photo_b_id'))

    op.drop_table('duplicate_candidates')
    with op.batch_alter_table('comparisons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparisons_student_id'))
        batch_op.drop_index(batch_op.f('ix_comparisons_run_id'))
        batch_op.drop_index(batch_op.f('ix_comparisons_graduation_photo_id'))
        batch_op.drop_index(batch_op.f('ix_comparisons_decision'))

    op.drop_table('comparisons')
    with op.batch_alter_table('review_cases', schema=None) as batch_op:
        batch_op.drop_index('uq_review_cases_one_open', sqlite_where=sa.text("state <> 'resolved'"), postgresql_where=sa.text("state <> 'resolved'"))
        batch_op.drop_index(batch_op.f('ix_review_cases_student_id'))
        batch_op.drop_index(batch_op.f('ix_review_cases_state'))
        batch_op.drop_index(batch_op.f('ix_review_cases_assignee'))

    op.drop_table('review_cases')
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_index('uq_photos_one_current', sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))
        batch_op.drop_index(batch_op.f('ix_photos_student_id'))
        batch_op.drop_index(batch_op.f('ix_photos_sha256'))

    op.drop_table('photos')
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_students_student_no'))
        batch_op.drop_index(batch_op.f('ix_students_intake'))
        batch_op.drop_index(batch_op.f('ix_students_id_hash'))
        batch_op.drop_index(batch_op.f('ix_students_graduated_on'))
        batch_op.drop_index(batch_op.f('ix_students_college'))

    op.drop_table('students')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_kind'))

    op.drop_table('runs')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_object')
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))
        batch_op.drop_index(batch_op.f('ix_audit_events_action'))

    op.drop_table('audit_events')


_AUDIT_MESSAGE = "audit_events is append-only (STORE_AUDIT_IMMUTABLE)"


def _create_audit_guard() -> None:
    """Triggers that reject UPDATE and DELETE (and TRUNCATE on PostgreSQL) of audit rows."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{_AUDIT_MESSAGE}' USING ERRCODE = 'P0001'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, '{_AUDIT_MESSAGE}'); END"
            )


def _drop_audit_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
