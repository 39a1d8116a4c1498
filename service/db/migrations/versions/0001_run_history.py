"""run history: apps, runs, stage metrics, servers, heartbeats

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 23:08:11.632727
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('apps',
    sa.Column('app_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id')
    )
    op.create_table('servers',
    sa.Column('server_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('spark_app_id', sa.String(length=200), nullable=False),
    sa.Column('spark_version', sa.String(length=40), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ui_url', sa.String(length=300), nullable=True),
    sa.Column('last_heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('draining', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('unattributed_stages', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('server_id')
    )
    op.create_table('stage_metrics',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('spark_app_id', sa.String(length=200), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('server_id', sa.String(length=200), nullable=False),
    sa.Column('app_id', sa.String(length=200), nullable=True),
    sa.Column('run_id', sa.String(length=100), nullable=True),
    sa.Column('connect_session_id', sa.String(length=100), nullable=True),
    sa.Column('connect_operation_id', sa.String(length=100), nullable=True),
    sa.Column('connect_user_id', sa.String(length=200), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('submission_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completion_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_ms', sa.BigInteger(), nullable=True),
    sa.Column('median_task_duration_ms', sa.BigInteger(), nullable=False),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('num_tasks', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('num_failed_tasks', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('executor_run_time_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('executor_cpu_time_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('jvm_gc_time_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('shuffle_read_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('shuffle_read_records', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('shuffle_write_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('shuffle_write_records', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('memory_spilled_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('disk_spilled_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('input_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('input_records', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('output_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('output_records', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('peak_execution_memory_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('max_task_duration_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('spark_app_id', 'stage_id', 'attempt', name='uq_stage_attempt')
    )
    with op.batch_alter_table('stage_metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stage_metrics_run_id'), ['run_id'], unique=False)

    op.create_table('heartbeats',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('server_id', sa.String(length=200), nullable=False),
    sa.Column('spark_app_id', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active_sessions', sa.Integer(), nullable=False),
    sa.Column('active_operations', sa.Integer(), nullable=False),
    sa.Column('running_jobs', sa.Integer(), nullable=False),
    sa.Column('queue_size', sa.Integer(), nullable=False),
    sa.Column('spool_files', sa.Integer(), nullable=False),
    sa.Column('spool_bytes', sa.BigInteger(), nullable=False),
    sa.Column('dropped_records', sa.BigInteger(), nullable=False),
    sa.Column('unattributed_stages', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['server_id'], ['servers.server_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('heartbeats', schema=None) as batch_op:
        batch_op.create_index('ix_heartbeats_server_received', ['server_id', 'received_at'], unique=False)

    op.create_table('runs',
    sa.Column('run_id', sa.String(length=100), nullable=False),
    sa.Column('app_id', sa.String(length=200), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_stage_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_stage_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('num_stages', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('num_failed_stages', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('num_tasks', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('num_failed_tasks', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('executor_run_time_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('executor_cpu_time_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('jvm_gc_time_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('shuffle_read_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('shuffle_read_records', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('shuffle_write_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('shuffle_write_records', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('memory_spilled_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('disk_spilled_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('input_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('input_records', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('output_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('output_records', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('peak_execution_memory_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('max_task_duration_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.app_id'], ),
    sa.PrimaryKeyConstraint('run_id')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_app_created', ['app_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_app_id'), ['app_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_app_id'))
        batch_op.drop_index('ix_runs_app_created')

    op.drop_table('runs')
    with op.batch_alter_table('heartbeats', schema=None) as batch_op:
        batch_op.drop_index('ix_heartbeats_server_received')

    op.drop_table('heartbeats')
    with op.batch_alter_table('stage_metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stage_metrics_run_id'))

    op.drop_table('stage_metrics')
    op.drop_table('servers')
    op.drop_table('apps')
