"""restarts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:49:09.848712
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('restarts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('server_id', sa.String(length=200), nullable=False),
    sa.Column('backend', sa.String(length=20), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idle_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('restarted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('waited_s', sa.Float(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('restarts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_restarts_server_id'), ['server_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('restarts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_restarts_server_id'))

    op.drop_table('restarts')
