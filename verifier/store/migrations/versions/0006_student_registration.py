"""Registration status on students (学位注册): pending until a re-review outcome clears or blocks the student.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-04 11:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


CHECK = "registration IN ('pending', 'cleared', 'blocked')"


def upgrade() -> None:
    """Add students.registration (pending|cleared|blocked), every existing student pending.

    SQLite gets a plain ADD COLUMN with its CHECK inline: a batch recreate would DROP students, which the
    foreign keys onto it refuse."""
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE students ADD COLUMN registration VARCHAR(16) DEFAULT 'pending' NOT NULL "
                   f"CONSTRAINT ck_students_registration CHECK ({CHECK})")
        return
    op.add_column('students', sa.Column('registration', sa.String(length=16), server_default='pending', nullable=False))
    op.create_check_constraint(op.f('ck_students_registration'), 'students', CHECK)


def downgrade() -> None:
    """Drop students.registration (SQLite: its inline CHECK goes with the column, via DROP COLUMN)."""
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE students DROP COLUMN registration")
        return
    op.drop_constraint(op.f('ck_students_registration'), 'students', type_='check')
    op.drop_column('students', 'registration')
