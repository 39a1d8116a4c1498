"""Reading run history: apps, their runs with metrics, servers and their load, restarts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, TypedDict

from sqlalchemy import ColumnElement, Connection, func, select
from sqlalchemy.orm import Session

from service.db.models import (
    IN_FLIGHT,
    App,
    Decision,
    Heartbeat,
    QuarantinedRecord,
    Restart,
    Run,
    Server,
    as_utc,
    utcnow,
)


# A cutoff: a time, or a placeholder for one in a statement compiled once (decision_store).
Cutoff = datetime | ColumnElement[Any]


def in_flight(since: Cutoff, decided_since: Cutoff) -> ColumnElement[bool]:
    """Runs decided or running, not reported finished: running ones created since `since`, decided ones that
    never started created since `decided_since` (a decision nobody ran, e.g. `spark-router decide --record`,
    stops holding capacity after a few minutes; older runs of either kind no longer count)."""
    return (Run.status.in_(IN_FLIGHT) & (Run.created_at >= since)
            & ((Run.status == "running") | (Run.created_at >= decided_since)))


def connect_in_flight(since: Cutoff, decided_since: Cutoff) -> ColumnElement[bool]:
    """The Connect runs in flight: the load of the pool."""
    return (Run.mode == "connect") & in_flight(since, decided_since)


def placed_on(server_id: str, default_server_id: str):
    """Runs placed on the server (runs decided before the pool have no server: they are the default
    server's)."""
    if server_id == default_server_id:
        return (Run.server_id == server_id) | Run.server_id.is_(None)
    return Run.server_id == server_id


class InFlightCutoffs(TypedDict):
    """The keyword arguments of `in_flight` and `connect_in_flight`."""

    since: datetime
    decided_since: datetime


class CapacityKnobs(Protocol):
    """What `in_flight_cutoffs` reads of the policy's capacity (routing.policy.Capacity)."""

    @property
    def in_flight_max_age_s(self) -> float: ...
    @property
    def decided_max_age_s(self) -> float: ...


def in_flight_cutoffs(capacity: CapacityKnobs, now: datetime) -> InFlightCutoffs:
    """The creation times `in_flight` counts from, by the policy's capacity knobs: {since, decided_since}."""
    return {"since": now - timedelta(seconds=capacity.in_flight_max_age_s),
            "decided_since": now - timedelta(seconds=capacity.decided_max_age_s)}


def in_flight_runs_by_server(session: Session, cutoffs: InFlightCutoffs,
                             default_server_id: str) -> dict[str, int]:
    """How many Connect runs are in flight on each server."""
    counts: dict[str, int] = {}
    query = select(Run.server_id, func.count()).where(connect_in_flight(**cutoffs)).group_by(Run.server_id)
    for server_id, count in session.execute(query):
        key = server_id or default_server_id
        counts[key] = counts.get(key, 0) + count
    return counts


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


def list_servers(session: Session, kind: str = "connect") -> list[Server]:
    """Connect servers (with those no heartbeat has named yet: known only from their stages), or the listeners
    of standalone applications (one per run)."""
    which = Server.kind == "standalone" if kind == "standalone" else Server.kind != "standalone"
    return list(session.scalars(select(Server).where(which).order_by(Server.server_id)))


def is_connect_server(session: Session, server_id: str, default_server_id: str) -> bool:
    """A Connect server the router knows (from its heartbeats), or the default one
    (SPARK_ROUTER_CONNECT_SERVER_ID)."""
    return server_id == default_server_id or session.execute(
        select(func.count()).where(Server.server_id == server_id, Server.kind == "connect")).scalar_one() > 0


def server_activity(session: Session, server_id: str, policy, default_server_id: str) -> dict | None:
    """The server's row, its last heartbeat, and the router's Connect runs in flight on it."""
    server = session.get(Server, server_id)
    if server is None:
        return None
    beat = session.scalars(select(Heartbeat).where(Heartbeat.server_id == server_id)
                           .order_by(Heartbeat.received_at.desc(), Heartbeat.id.desc()).limit(1)).first()
    now = utcnow()
    cutoffs = in_flight_cutoffs(policy.capacity, now)
    runs = list(session.scalars(select(Run.run_id).where(connect_in_flight(**cutoffs),
                                                         placed_on(server_id, default_server_id))
                                .order_by(Run.created_at)))
    return {"server": server, "last_heartbeat": beat,
            "heartbeat_age_s": (now - beat.received_at).total_seconds() if beat else None,
            "in_flight_connect_runs": len(runs), "in_flight_run_ids": runs[:10]}


def list_restarts(session: Session, server_id: str | None, limit: int) -> list[Restart]:
    query = select(Restart).order_by(Restart.requested_at.desc(), Restart.id.desc()).limit(limit)
    if server_id:
        query = query.where(Restart.server_id == server_id)
    return list(session.scalars(query))


def list_quarantined(session: Session, server_id: str | None, limit: int,
                     offset: int) -> list[QuarantinedRecord]:
    """Quarantined stage records, newest first."""
    query = (select(QuarantinedRecord).order_by(QuarantinedRecord.received_at.desc(),
                                                QuarantinedRecord.id.desc())
             .limit(limit).offset(offset))
    if server_id:
        query = query.where(QuarantinedRecord.server_id == server_id)
    return list(session.scalars(query))


def count_quarantined(session: Session) -> int:
    return session.execute(select(func.count()).select_from(QuarantinedRecord)).scalar_one()


def recent_startups(connection: Connection, mode: str, limit: int) -> list[tuple]:
    """The last `limit` successful runs of `mode` that reported a start and have a first stage, newest first:
    (mode, started_at, first_stage_at, executor_cores_held). Walks the runs' (mode, finished_at) index."""
    rows = connection.execute(
        select(Run.mode, Run.started_at, Run.first_stage_at, Run.executor_cores_held)
        .where(Run.mode == mode, Run.status == "succeeded", Run.finished_at.is_not(None),
               Run.started_at.is_not(None), Run.first_stage_at.is_not(None))
        .order_by(Run.finished_at.desc()).limit(limit))
    return [(row[0], as_utc(row[1]), as_utc(row[2]), row[3]) for row in rows]


def recent_predicted_walls(connection: Connection, mode: str, limit: int) -> list[tuple]:
    """The last `limit` successful runs of `mode` whose decision stored predictions, newest first:
    (started_at, finished_at, predictions). Walks the runs' (mode, finished_at) index, as recent_startups."""
    rows = connection.execute(
        select(Run.started_at, Run.finished_at, Decision.predictions)
        .join(Decision, Decision.run_id == Run.run_id)
        .where(Run.mode == mode, Run.status == "succeeded", Run.finished_at.is_not(None),
               Run.started_at.is_not(None), Decision.predictions.is_not(None))
        .order_by(Run.finished_at.desc()).limit(limit))
    return [(as_utc(row[0]), as_utc(row[1]), row[2]) for row in rows]
