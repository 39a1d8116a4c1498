"""admission_queue: runs waiting for room on a Connect server (issue 22)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admission_queue',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('run_id', sa.String(length=100), nullable=False),
        sa.Column('app_id', sa.String(length=200), nullable=False),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_polled_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('predicted_cores', sa.Float(), nullable=False),
        sa.Column('expected_s', sa.Float(), nullable=True),
        sa.Column('predicted_wait_s', sa.Float(), nullable=True),
        sa.Column('request', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.run_id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id'),
    )


def downgrade() -> None:
    op.drop_table('admission_queue')
