"""runs: executors held and executor core-seconds, an index for the cluster's recent start-ups; decisions: the
predictions made for the run; apps: recent run summaries get their mode and start-up

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('executors_held', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('executor_cores_held', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('executor_core_s', sa.Float(), nullable=True))
        batch_op.create_index('ix_runs_mode_finished', ['mode', 'finished_at'], unique=False)
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('predictions', sa.JSON(), nullable=True))
    _fill_in_summaries()


def _fill_in_summaries() -> None:
    """The apps' kept summaries of successful runs get the mode and start-up of their runs, so predictions can
    use the history there is (a Connect run's core-seconds are its task time; a standalone run's executors
    were not measured then)."""
    bind = op.get_bind()
    apps = sa.table('apps', sa.column('app_id', sa.String), sa.column('recent_runs', sa.JSON))
    runs = sa.table('runs', sa.column('run_id', sa.String), sa.column('app_id', sa.String),
                    sa.column('mode', sa.String), sa.column('started_at', sa.DateTime(timezone=True)),
                    sa.column('first_stage_at', sa.DateTime(timezone=True)))
    for app_id, summaries in bind.execute(sa.select(apps.c.app_id, apps.c.recent_runs)).all():
        if not summaries:
            continue
        known = {row.run_id: row for row in bind.execute(
            sa.select(runs.c.run_id, runs.c.mode, runs.c.started_at, runs.c.first_stage_at)
            .where(runs.c.app_id == app_id))}
        filled = []
        for entry in summaries:
            run = known.get(entry.get('run_id'))
            entry = dict(entry)
            if run is not None and 'mode' not in entry:
                entry['mode'] = run.mode if run.mode in ('connect', 'standalone') else None
                entry['startup_ms'] = _startup_ms(run.started_at, run.first_stage_at)
                entry['executors'] = None
                entry['executor_core_s'] = (round(entry.get('task_time_ms', 0) / 1000, 1)
                                            if run.mode == 'connect' else None)
            filled.append(entry)
        bind.execute(apps.update().where(apps.c.app_id == app_id).values(recent_runs=filled))


def _startup_ms(started_at, first_stage_at):
    from datetime import datetime, timezone

    def aware(value):
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value

    started_at, first_stage_at = aware(started_at), aware(first_stage_at)
    if started_at is None or first_stage_at is None:
        return None
    return max(int((first_stage_at - started_at).total_seconds() * 1000), 0)


def downgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('predictions')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_mode_finished')
        batch_op.drop_column('executor_core_s')
        batch_op.drop_column('executor_cores_held')
        batch_op.drop_column('executors_held')
