"""heartbeats: the listener's dead letters and refused batches, the executors its application holds;
servers: the Connect URL clients use

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('heartbeats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dead_letter_files', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('auth_failures', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('executors', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('executor_cores', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('max_executors', sa.Integer(), nullable=True))
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('connect_url', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_column('connect_url')
    with op.batch_alter_table('heartbeats', schema=None) as batch_op:
        for column in ('max_executors', 'executor_cores', 'executors', 'auth_failures', 'dead_letter_files'):
            batch_op.drop_column(column)
