"""Reading and storing a batch of decisions: the router's hot path.

PostgreSQL reads in one statement and writes in one (CTEs, rows as JSON, through the driver: SQLAlchemy's own
per-statement work costs more than the database's here). SQLite goes through SQLAlchemy Core, statement by
statement, to the same effect. Both lock the batch's app rows until the caller commits.

The read also gives the pool of Connect servers (``read_pool``): every Connect server that reports where its
clients connect, and the default server (SPARK_ROUTER_CONNECT_SERVER_ID) whether it reported or not, each with
its health, drain flag, latest executor figures and the predicted load of the Connect runs in flight on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Row, and_, bindparam, func, insert, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from client_runtime import protocol
from service.db import engine as db
from service.db.models import AdmissionQueueEntry, App, Decision, Heartbeat, Run, Server, as_utc
from service.history.queries import connect_in_flight
from service.routing import admission, rules


# An app's row as a decision reads it (the App columns): the App, or the batch read's row of the apps table
# (SQLAlchemy's Row on SQLite; psycopg's named tuple on PostgreSQL, which is untyped).
AppRow = App | Row[Any]


class NewRun(TypedDict):
    """A run the batch decided, as ``write`` inserts it (the runs table's columns; created at the batch's
    time)."""

    run_id: str
    app_id: str
    mode: protocol.Mode | Literal["queued"]
    status: Literal["decided", "queued"]
    created_at: datetime
    predicted_cores: float
    server_id: str | None
    dag_id: str | None
    task_id: str | None
    airflow_run_id: str | None
    try_number: int | None
    executor_memory: int | None
    executor_cores: int | None
    num_executors: int | None
    driver_memory: int | None


class NewDecision(TypedDict):
    """A decision of the batch, as ``write`` inserts it (the decisions table's columns)."""

    run_id: str
    app_id: str
    created_at: datetime
    requested_mode: protocol.RequestedMode
    mode: protocol.Mode | Literal["queued"]
    rule: str
    reasons: list[dict[str, Any]]  # rules.reasons_json
    policy_version: str
    request: dict[str, Any]  # the DecisionRequest as JSON
    predictions: dict[str, Any] | None  # predict.Predictions.as_json
    sizing_reason: str | None


@dataclass
class BatchState:
    """What the policy needs besides the request: the apps' rows and the pool of Connect servers."""

    apps: dict[str, AppRow]  # app_id -> the app's row (App columns)
    servers: tuple[rules.ServerFacts, ...]  # the default server first
    queued: tuple[admission.Queued, ...] = ()  # the runs waiting in the admission queue, first come first


@dataclass(frozen=True)
class DefaultServer:
    """The server of SPARK_ROUTER_CONNECT_SERVER_ID and SPARK_ROUTER_CONNECT_URL: always in the pool; its URL
    is the settings' until its listener reports one."""

    server_id: str
    connect_url: str


def read(connection: Connection, app_ids: list[str], default: DefaultServer, now: datetime, since: datetime,
         decided_since: datetime, polled_since: datetime) -> BatchState:
    """Creates the apps not seen before, marks all seen, locks their rows until commit and reads them, with
    the pool of Connect servers and the load of the Connect runs in flight on each (``queries.in_flight``:
    running since `since`, decided since `decided_since`), and the admission queue (its runs whose clients
    asked since `polled_since`). `app_ids` sorted: concurrent batches then lock rows in the same order and
    cannot deadlock."""
    if connection.dialect.name == "postgresql":
        return _read_postgresql(connection, app_ids, default, now, since, decided_since, polled_since)
    return _read_sqlite(connection, app_ids, default, now, since, decided_since, polled_since)


def write(connection: Connection, runs: list[NewRun], decisions: list[NewDecision],
          retries_granted: list[str], now: datetime) -> None:
    """Insert the batch's runs and decisions (rows as dicts of their columns; all created `now`, the runs
    "decided", the decisions under one policy version) and mark the apps whose cool-down try was granted."""
    if connection.dialect.name == "postgresql":
        _write_postgresql(connection, runs, decisions, retries_granted, now)
    else:
        _write_sqlite(connection, runs, decisions, retries_granted, now)


def pool_facts(rows: Iterable[Mapping[str, Any]], load: Mapping[str, Sequence[float]],
               default: DefaultServer) -> tuple[rules.ServerFacts, ...]:
    """The pool from the servers' rows (with their latest heartbeat's executor figures) and the load per
    server ([predicted cores, runs]): the default server first (known to the router or not), then the others
    by id."""
    by_id = {row["server_id"]: row for row in rows}
    ordered = [default.server_id, *sorted(server_id for server_id in by_id if server_id != default.server_id)]
    facts = []
    for server_id in ordered:
        row: Mapping[str, Any] = by_id.get(server_id) or {"last_heartbeat_at": None, "draining": False}
        facts.append(rules.ServerFacts(
            as_utc(row["last_heartbeat_at"]), bool(row["draining"]), executors=row.get("executors") or 0,
            executor_cores=row.get("executor_cores") or 0, max_executors=row.get("max_executors"),
            server_id=server_id,
            connect_url=row.get("connect_url")
            or (default.connect_url if server_id == default.server_id else None),
            in_flight_cores=float((load.get(server_id) or [0.0])[0] or 0.0),
            in_flight_runs=int((load.get(server_id) or [0, 0])[1] or 0)))
    return tuple(facts)


# ------------------------------------------------------------------------------------------------ PostgreSQL
# The batch's rows travel as one JSON parameter each: encoding them is one call to the json module, and the
# database unpacks them (json_populate_recordset), where arrays of 15 columns cost the driver far more.

_CONNECT_IN_FLIGHT = connect_in_flight(literal_column("%(since)s"),
                                       literal_column("%(decided_since)s")).compile(
    # (SQLAlchemy's PostgreSQL dialects have untyped constructors)
    dialect=postgresql.dialect(paramstyle="named"),  # type: ignore[no-untyped-call]
    compile_kwargs={"literal_binds": True})

# New apps are created here as in history.apps.mark_seen, in the same statement as the read. The pool and the
# load per server come once, as JSON (runs placed before the pool existed have no server: the default's).
_READ_POSTGRESQL = f"""
WITH seen AS (
    INSERT INTO apps (app_id, created_at, last_seen_at, recent_runs, connect_failure_streak)
    SELECT app_id, %(now)s, %(now)s, '[]', 0 FROM json_array_elements_text(%(app_ids)s) AS app_id
    ORDER BY app_id
    ON CONFLICT (app_id) DO UPDATE SET last_seen_at = excluded.last_seen_at
    RETURNING *),
load AS (
    SELECT coalesce(server_id, %(server_id)s) AS server_id,
           json_build_array(sum(predicted_cores), count(*)) AS cores
    FROM runs WHERE {_CONNECT_IN_FLIGHT} GROUP BY 1),
pool AS (
    SELECT server.server_id, server.connect_url, server.last_heartbeat_at, server.draining,
           beat.executors, beat.executor_cores, beat.max_executors
    FROM servers AS server
    LEFT JOIN LATERAL (SELECT executors, executor_cores, max_executors FROM heartbeats
                       WHERE heartbeats.server_id = server.server_id
                       ORDER BY received_at DESC, id DESC LIMIT 1) AS beat ON true
    WHERE server.server_id = %(server_id)s OR (server.kind = 'connect' AND server.connect_url IS NOT NULL))
SELECT seen.*, (SELECT json_agg(pool) FROM pool) AS pool,
       (SELECT json_object_agg(server_id, cores) FROM load) AS load,
       (SELECT json_agg(json_build_array(run_id, predicted_cores, expected_s, enqueued_at) ORDER BY id)
        FROM admission_queue WHERE last_polled_at >= %(polled_since)s) AS queued
FROM seen
"""

_WRITE_POSTGRESQL = """
WITH granted AS (
    UPDATE apps SET retry_granted_at = %(now)s
    WHERE app_id IN (SELECT json_array_elements_text(%(granted)s))),
new_runs AS (
    INSERT INTO runs (run_id, app_id, mode, status, created_at, predicted_cores, server_id, dag_id, task_id,
                      airflow_run_id, try_number, executor_memory, executor_cores, num_executors,
                      driver_memory)
    SELECT run_id, app_id, mode, status, %(now)s, predicted_cores, server_id, dag_id, task_id, airflow_run_id,
           try_number, executor_memory, executor_cores, num_executors, driver_memory
    FROM json_populate_recordset(NULL::runs, %(runs)s))
INSERT INTO decisions (run_id, app_id, created_at, requested_mode, mode, rule, reasons, policy_version,
                       request, predictions, sizing_reason)
SELECT run_id, app_id, %(now)s, requested_mode, mode, rule, reasons, policy_version, request, predictions,
       sizing_reason
FROM json_populate_recordset(NULL::decisions, %(decisions)s)
"""


@contextmanager
def _cursor(connection: Connection) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor of the driver itself (rows as named tuples), whose errors come out as SQLAlchemy's (a timeout
    or a deadlock: 503)."""
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"the decisions' PostgreSQL statements need psycopg, not {type(driver).__name__}")
    with db.driver_errors(connection, "decisions"), driver.cursor(row_factory=namedtuple_row) as cursor:
        yield cursor


def _read_postgresql(connection: Connection, app_ids: list[str], default: DefaultServer, now: datetime,
                     since: datetime, decided_since: datetime, polled_since: datetime) -> BatchState:
    with _cursor(connection) as cursor:
        rows = cursor.execute(_READ_POSTGRESQL, {"now": now, "app_ids": json.dumps(app_ids), "since": since,
                                                 "decided_since": decided_since, "polled_since": polled_since,
                                                 "server_id": default.server_id}).fetchall()
    first = rows[0]
    servers = [{**server, "last_heartbeat_at": server["last_heartbeat_at"] and
                datetime.fromisoformat(server["last_heartbeat_at"])} for server in first.pool or ()]
    return BatchState({row.app_id: row for row in rows}, pool_facts(servers, first.load or {}, default),
                      queued_facts(first.queued or ()))


def _write_postgresql(connection: Connection, runs: list[NewRun], decisions: list[NewDecision],
                      retries_granted: list[str], now: datetime) -> None:
    # created_at is `now` for all: it goes once, as a timestamp
    def as_json(rows: Sequence[Mapping[str, Any]]) -> str:
        return json.dumps([{key: value for key, value in row.items() if key != "created_at"} for row in rows])

    params = {"now": now, "granted": json.dumps(retries_granted), "runs": as_json(runs),
              "decisions": as_json(decisions)}
    with _cursor(connection) as cursor:
        cursor.execute(_WRITE_POSTGRESQL, params)


# ---------------------------------------------------------------------------------------------------- SQLite
# (The pool's two statements are plain SQLAlchemy Core: ``read_pool`` runs them on either database.)

_APPS, _RUNS, _SERVERS, _BEATS = App.__table__, Run.__table__, Server.__table__, Heartbeat.__table__
_UPSERT_APPS = sqlite.insert(_APPS)
_SEEN_AND_LOCKED_APPS = _UPSERT_APPS.on_conflict_do_update(
    index_elements=["app_id"], set_={"last_seen_at": _UPSERT_APPS.excluded.last_seen_at}).returning(*_APPS.c)
_LATEST_BEAT = (select(_BEATS.c.id).where(_BEATS.c.server_id == _SERVERS.c.server_id)
                .order_by(_BEATS.c.received_at.desc(), _BEATS.c.id.desc()).limit(1)
                .correlate(_SERVERS).scalar_subquery())
_POOL = (
    select(_SERVERS.c.server_id, _SERVERS.c.connect_url, _SERVERS.c.last_heartbeat_at, _SERVERS.c.draining,
           _BEATS.c.executors, _BEATS.c.executor_cores, _BEATS.c.max_executors)
    .select_from(_SERVERS.outerjoin(_BEATS, _BEATS.c.id == _LATEST_BEAT))
    .where(or_(_SERVERS.c.server_id == bindparam("server_id"),
               and_(_SERVERS.c.kind == "connect", _SERVERS.c.connect_url.is_not(None)))))
_LOAD = (select(_RUNS.c.server_id, func.sum(_RUNS.c.predicted_cores), func.count())
         .where(connect_in_flight(bindparam("since"),
                                  bindparam("decided_since"))).group_by(_RUNS.c.server_id))
_GRANT_RETRY = (update(_APPS).where(_APPS.c.app_id == bindparam("b_app_id"))
                .values(retry_granted_at=bindparam("b_granted_at")))


def read_pool(connection: Connection, default: DefaultServer, since: datetime,
              decided_since: datetime) -> tuple[rules.ServerFacts, ...]:
    """The pool of Connect servers with their load, as a decision sees it (two statements, either
    database)."""
    params = {"server_id": default.server_id, "since": since, "decided_since": decided_since}
    rows = [row._asdict() for row in connection.execute(_POOL, params)]
    load: dict[str, tuple[float, int]] = {}
    for server_id, cores, runs in connection.execute(_LOAD, params):
        # runs placed before the pool: the default's
        cores_before, runs_before = load.get(server_id or default.server_id, (0.0, 0))
        load[server_id or default.server_id] = (cores_before + float(cores or 0.0), runs_before + runs)
    return pool_facts(rows, load, default)


_QUEUE = AdmissionQueueEntry.__table__
_QUEUED = (select(_QUEUE.c.run_id, _QUEUE.c.predicted_cores, _QUEUE.c.expected_s, _QUEUE.c.enqueued_at)
           .where(_QUEUE.c.last_polled_at >= bindparam("polled_since")).order_by(_QUEUE.c.id))


def read_queue(connection: Connection, polled_since: datetime) -> tuple[admission.Queued, ...]:
    """The runs waiting in the admission queue whose clients asked since `polled_since`, first come first."""
    return queued_facts(connection.execute(_QUEUED, {"polled_since": polled_since}))


def queued_facts(rows: Iterable[Sequence[Any]]) -> tuple[admission.Queued, ...]:
    """The queue's runs from rows of (run id, predicted cores, expected wall time, enqueued at)."""
    return tuple(admission.Queued(run_id, float(cores or 0.0), expected_s, as_utc(enqueued_at))
                 for run_id, cores, expected_s, enqueued_at in rows)


def _read_sqlite(connection: Connection, app_ids: list[str], default: DefaultServer, now: datetime,
                 since: datetime, decided_since: datetime, polled_since: datetime) -> BatchState:
    rows = connection.execute(_SEEN_AND_LOCKED_APPS,
                              [{"app_id": app_id, "created_at": now, "last_seen_at": now,
                               "recent_runs": []} for app_id in app_ids])
    apps: dict[str, AppRow] = {row.app_id: row for row in rows}
    return BatchState(apps, read_pool(connection, default, since, decided_since),
                      read_queue(connection, polled_since))


def _write_sqlite(connection: Connection, runs: list[NewRun], decisions: list[NewDecision],
                  retries_granted: list[str], now: datetime) -> None:
    if retries_granted:
        connection.execute(_GRANT_RETRY,
                           [{"b_app_id": app_id, "b_granted_at": now} for app_id in retries_granted])
    connection.execute(insert(_RUNS), runs)
    connection.execute(insert(Decision.__table__), decisions)
