"""runs: the resources a standalone run was given and its out-of-memory rerun; decisions: why it was sized so

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oom_rerun_of', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('oom_rerun_to', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('executor_memory', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('executor_cores', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('num_executors', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('driver_memory', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sizing_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('sizing_reason')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        for column in ('driver_memory', 'num_executors', 'executor_cores', 'executor_memory', 'oom_rerun_to',
                       'oom_rerun_of'):
            batch_op.drop_column(column)
