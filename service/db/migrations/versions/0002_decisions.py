"""decisions, run lifecycle, app aggregates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:16:09.365236
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=100), nullable=False),
    sa.Column('app_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested_mode', sa.String(length=20), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('rule', sa.String(length=50), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('policy_version', sa.String(length=100), nullable=False),
    sa.Column('request', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id')
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_decisions_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pinned_mode', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('pin_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('pinned_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('connect_incompatible', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('compat_checked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('connect_failure_streak', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('last_connect_failure_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_connect_success_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('retry_granted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('recent_runs', sa.JSON(), server_default='[]', nullable=False))

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failure_kind', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('failure_message', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('exit_code', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('fallback_of', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('fell_back_to', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('predicted_cores', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('dag_id', sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column('task_id', sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column('airflow_run_id', sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column('try_number', sa.Integer(), nullable=True))
        batch_op.create_index('ix_runs_mode_status', ['mode', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_mode_status')
        batch_op.drop_column('try_number')
        batch_op.drop_column('airflow_run_id')
        batch_op.drop_column('task_id')
        batch_op.drop_column('dag_id')
        batch_op.drop_column('predicted_cores')
        batch_op.drop_column('fell_back_to')
        batch_op.drop_column('fallback_of')
        batch_op.drop_column('exit_code')
        batch_op.drop_column('failure_message')
        batch_op.drop_column('failure_kind')
        batch_op.drop_column('finished_at')
        batch_op.drop_column('started_at')

    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('recent_runs')
        batch_op.drop_column('retry_granted_at')
        batch_op.drop_column('last_connect_success_at')
        batch_op.drop_column('last_connect_failure_at')
        batch_op.drop_column('connect_failure_streak')
        batch_op.drop_column('compat_checked_at')
        batch_op.drop_column('connect_incompatible')
        batch_op.drop_column('pinned_at')
        batch_op.drop_column('pin_reason')
        batch_op.drop_column('pinned_mode')

    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_created_at'))
        batch_op.drop_index(batch_op.f('ix_decisions_app_id'))

    op.drop_table('decisions')
