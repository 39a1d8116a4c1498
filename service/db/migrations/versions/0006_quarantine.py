"""quarantined_records: stage records a listener sent that cannot be stored, kept aside with the reason

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'quarantined_records',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('server_id', sa.String(length=200), nullable=False),
        sa.Column('spark_app_id', sa.String(length=200), nullable=False),
        sa.Column('batch_id', sa.String(length=100), nullable=True),
        sa.Column('app_id', sa.String(length=200), nullable=True),
        sa.Column('run_id', sa.String(length=100), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('record', sa.Text(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('spark_app_id', 'digest', name='uq_quarantined_record'),
    )
    with op.batch_alter_table('quarantined_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantined_records_received_at'), ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('quarantined_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantined_records_received_at'))
    op.drop_table('quarantined_records')
