"""API keys are looked up by the SHA-256 of the whole key (a wrong key's timing then says nothing): make it unique.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-04 12:30:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """A unique index on api_keys.secret_hash (two keys cannot share a 256-bit secret's digest)."""
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_api_keys_secret_hash'), ['secret_hash'])


def downgrade() -> None:
    """Drop the unique index."""
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_api_keys_secret_hash'), type_='unique')
