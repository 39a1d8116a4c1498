"""Reading run history: apps, their runs with metrics, servers."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.ingest import dialect_insert
from service.models import App, Run, Server, utcnow


def list_apps(session: Session, limit: int, offset: int) -> list[dict]:
    runs = (select(Run.app_id, func.count().label("num_runs")).group_by(Run.app_id).subquery())
    rows = session.execute(
        select(App, func.coalesce(runs.c.num_runs, 0))
        .outerjoin(runs, runs.c.app_id == App.app_id)
        .order_by(App.app_id).limit(limit).offset(offset)).all()
    return [{"app_id": app.app_id, "created_at": app.created_at, "last_seen_at": app.last_seen_at,
             "num_runs": num_runs} for app, num_runs in rows]


def get_app(session: Session, app_id: str) -> App | None:
    return session.get(App, app_id)


def list_runs(session: Session, app_id: str, limit: int, offset: int) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.app_id == app_id)
                                .order_by(Run.created_at.desc(), Run.run_id).limit(limit).offset(offset)))


def list_servers(session: Session) -> list[Server]:
    return list(session.scalars(select(Server).order_by(Server.server_id)))


def record_compatibility(session: Session, app_id: str, findings: list) -> str | None:
    """Store the compatibility check's outcome with the app: a one-line summary, or None if it found nothing."""
    now = utcnow()
    session.execute(dialect_insert(session, App).on_conflict_do_nothing(index_elements=["app_id"]),
                    {"app_id": app_id, "created_at": now, "last_seen_at": now, "recent_runs": []})
    app = session.get(App, app_id)
    shown = "; ".join(f"{f.path.rsplit('/', 1)[-1]}:{f.line} {f.what}" for f in findings[:3])
    app.connect_incompatible = (shown + (f" and {len(findings) - 3} more" if len(findings) > 3 else "")) or None
    app.compat_checked_at = now
    session.commit()
    return app.connect_incompatible
