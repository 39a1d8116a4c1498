"""Apps: creating the row of an app seen for the first time, locking it, and what admins and the compatibility
check record on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from client_runtime.protocol import Mode
from service.db.models import App, utcnow
from service.errors import UnknownApp


def dialect_insert(session: Session, table):
    """INSERT with ON CONFLICT support, for the two databases we run on."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _new_rows(app_ids, now) -> list[dict]:
    # Sorted: concurrent callers then lock app rows in the same order.
    return [{"app_id": app_id, "created_at": now, "last_seen_at": now, "recent_runs": []}
            for app_id in sorted(set(app_ids))]


def mark_seen(session: Session, app_ids: list[str]) -> None:
    """Create the apps not seen before and mark all of them seen now."""
    now = utcnow()
    session.execute(dialect_insert(session, App)
                    .on_conflict_do_update(index_elements=["app_id"], set_={"last_seen_at": now}),
                    _new_rows(app_ids, now))


def note_connect_out_of_memory(session: Session, app_ids: list[str], at: datetime) -> None:
    """A task of each of these apps ran out of memory on a Connect server at `at` (rules.connect_out_of_memory
    reads it). Their rows are locked already when ingest calls this: it marked them seen first."""
    session.execute(update(App).where(App.app_id.in_(sorted(set(app_ids)))).values(last_connect_oom_at=at))


def lock_app(session: Session, app_id: str) -> App | None:
    """The app's row, locked until commit so that concurrent updates and decisions see each other."""
    return session.scalars(select(App).where(App.app_id == app_id).with_for_update()).one_or_none()


def ensure_app(session: Session, app_id: str) -> App:
    """The app's row, locked until commit; created if the app was never seen."""
    session.execute(dialect_insert(session, App).on_conflict_do_nothing(index_elements=["app_id"]),
                    _new_rows([app_id], utcnow()))
    app = lock_app(session, app_id)
    assert app is not None, "inserted above, in this transaction"
    return app


def record_compatibility(session: Session, app_id: str, findings: list) -> str | None:
    """Store the compatibility check's outcome with the app: a one-line summary, or None if it found
    nothing."""
    app = ensure_app(session, app_id)
    shown = "; ".join(f"{f.path.rsplit('/', 1)[-1]}:{f.line} {f.what}" for f in findings[:3])
    more = f" and {len(findings) - 3} more" if len(findings) > 3 else ""
    app.connect_incompatible = (shown + more) or None
    app.compat_checked_at = utcnow()
    session.commit()
    return app.connect_incompatible


def pin(session: Session, app_id: str, mode: Mode, reason: str | None, server_id: str | None = None) -> App:
    app = ensure_app(session, app_id)
    app.pinned_mode, app.pin_reason, app.pinned_at, app.pinned_server_id = mode, reason, utcnow(), server_id
    session.commit()
    return app


def unpin(session: Session, app_id: str) -> None:
    app = lock_app(session, app_id)
    if app is None:
        raise UnknownApp(app_id)
    app.pinned_mode = app.pin_reason = app.pinned_at = app.pinned_server_id = None
    session.commit()
