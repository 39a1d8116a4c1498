"""The schema: the migrations build exactly what the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

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
