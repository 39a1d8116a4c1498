"""heartbeats: index on received_at, for pruning past the retention

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 15:40:00
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('heartbeats', schema=None) as batch_op:
        batch_op.create_index('ix_heartbeats_received_at', ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('heartbeats', schema=None) as batch_op:
        batch_op.drop_index('ix_heartbeats_received_at')
