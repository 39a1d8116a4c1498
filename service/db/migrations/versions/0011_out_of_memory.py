"""stage_metrics and runs: tasks that failed out of memory; apps: when one last did on Connect

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 13:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('stage_metrics', 'runs'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('num_oom_failed_tasks', sa.BigInteger(), server_default='0',
                                          nullable=False))
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_connect_oom_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('last_connect_oom_at')
    for table in ('runs', 'stage_metrics'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('num_oom_failed_tasks')
