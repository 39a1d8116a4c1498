"""runs: the Connect server a run was placed on; apps: the server an admin pinned the app to

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('server_id', sa.String(length=200), nullable=True))
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pinned_server_id', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('pinned_server_id')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('server_id')
