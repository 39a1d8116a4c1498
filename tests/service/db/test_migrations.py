"""The schema: the migrations build exactly what the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.db import engine as db
from service.db.models import Base


def test_migrations_match_the_models(database_url):
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine)
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_0008_gives_kept_run_summaries_their_mode_and_startup(database_url):
    """Apps' summaries kept before 0008 get the mode and start-up of their runs, so predictions use them."""
    from alembic import command
    from sqlalchemy import text

    engine = db.make_engine(database_url)
    try:
        with engine.begin() as connection:
            config = db.alembic_config(engine.url.render_as_string(hide_password=False))
            config.attributes["connection"] = connection
            command.upgrade(config, "0007")
            summary = {"run_id": "r1", "task_time_ms": 4000, "shuffle_write_bytes": 0,
                       "disk_spilled_bytes": 0, "peak_execution_memory_bytes": 0, "duration_ms": 9000}
            gone = {**summary, "run_id": "gone"}
            connection.execute(text("INSERT INTO apps (app_id, created_at, last_seen_at, recent_runs, "
                                    "connect_failure_streak) VALUES ('a', :t, :t, :runs, 0)"),
                               {"t": "2026-12-01 10:00:00", "runs": json.dumps([gone, summary])})
            connection.execute(text("INSERT INTO runs (run_id, app_id, mode, status, created_at, started_at, "
                                    "first_stage_at, predicted_cores) VALUES ('r1', 'a', 'connect', "
                                    "'succeeded', :t, :t, :first, 0)"),
                               {"t": "2026-12-01 10:00:00", "first": "2026-12-01 10:00:02.500"})
            command.upgrade(config, "head")
            kept = connection.execute(text("SELECT recent_runs FROM apps")).scalar_one()
        kept = json.loads(kept) if isinstance(kept, str) else kept
        assert kept[0] == gone  # its run is gone: nothing to fill in
        assert kept[1] == {**summary, "mode": "connect", "startup_ms": 2500, "executors": None,
                           "executor_core_s": 4.0}
    finally:
        engine.dispose()
