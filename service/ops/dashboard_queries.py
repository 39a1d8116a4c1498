"""The queries behind the ops dashboard: server status, decisions over time, fallbacks, the heaviest apps,
an app's recent runs with their decisions, one run in full.

Every function takes a session and returns plain JSON-able dicts; the routes in
``service/api/dashboard_routes.py`` only pass parameters through. Windows are counted back from now; time
buckets are UTC.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, func, literal_column, or_, select
from sqlalchemy.orm import Session

from service.db.models import (
    HEARTBEAT_FIELDS,
    METRICS,
    App,
    Decision,
    Heartbeat,
    Run,
    Server,
    StageMetric,
    as_bigint,
    as_utc,
    safe_sum,
    utcnow,
)
from service.history.lifecycle import run_duration_ms
from service.history.queries import (
    count_quarantined,
    in_flight,
    in_flight_cutoffs,
    list_quarantined,
    list_restarts,
)
from service.routing.accuracy import prediction_accuracy
from service.routing.decider import actual_outcome, values
from service.routing.policy import Policy
from service.routing.pool import pool_status
from service.routing.rules import HISTORY_METRICS

# Listeners of standalone runs are servers too (one per run); the dashboard and /metrics show them only
# while they report. Connect servers are always shown, so one that went silent shows as down.
RECENT_SERVER_S = 15 * 60
BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}

def _age_s(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round((now - then).total_seconds(), 1)


# ------------------------------------------------------------------------------------------------ servers

def latest_heartbeats(session: Session, now: datetime | None = None) -> list[tuple[Server, Heartbeat | None]]:
    """Each Connect server, and each other listener heard from lately, with its newest heartbeat."""
    now = now or utcnow()
    newest = (select(Heartbeat.id).where(Heartbeat.server_id == Server.server_id)
              .order_by(Heartbeat.received_at.desc(), Heartbeat.id.desc()).limit(1)
              .correlate(Server).scalar_subquery())
    rows = session.execute(
        select(Server, Heartbeat).outerjoin(Heartbeat, Heartbeat.id == newest)
        .where(or_(Server.kind == "connect",
                   Server.last_heartbeat_at >= now - timedelta(seconds=RECENT_SERVER_S)))
        .order_by(case((Server.kind == "connect", 0), else_=1), Server.server_id)).all()
    return [(server, beat) for server, beat in rows]


def server_status(server: Server, beat: Heartbeat | None, policy: Policy, now: datetime) -> dict:
    age = _age_s(now, server.last_heartbeat_at)
    up = age is not None and age <= policy.server.heartbeat_timeout_s
    return {
        "server_id": server.server_id, "kind": server.kind, "spark_app_id": server.spark_app_id,
        "spark_version": server.spark_version, "ui_url": server.ui_url,
        "status": ("draining" if server.draining else "up") if up else "down",
        "up": up, "draining": server.draining,
        "last_heartbeat_at": server.last_heartbeat_at, "heartbeat_age_s": age,
        "heartbeat_timeout_s": policy.server.heartbeat_timeout_s,
        "started_at": server.started_at,
        "uptime_s": _age_s(now, server.started_at) if up else None,
        "unattributed_stages": server.unattributed_stages,
        "heartbeat": None if beat is None else {field: getattr(beat, field) for field in HEARTBEAT_FIELDS},
    }


POOL_FIELDS = ("default", "connect_url", "available", "unavailable_reason", "capacity_cores",
               "capacity_source", "in_flight_cores", "free_cores", "in_flight_runs")


def servers(session: Session, policy: Policy, settings) -> list[dict]:
    """Server status for the dashboard: up/down from the heartbeat's age, draining, uptime, the listener's
    queue and spool, the server's last restart; for a Connect server of the pool also its place in it
    (``pool``: capacity, the load in flight, whether it can take a run; None: not in the pool, it reports no
    Connect URL)."""
    now = utcnow()
    result = [server_status(server, beat, policy, now) for server, beat in latest_heartbeats(session, now)]
    last = last_restarts(session, [s["server_id"] for s in result if s["kind"] == "connect"])
    pool = {server["server_id"]: server for server in pool_status(session, policy, settings)}
    for status in result:
        status["last_restart"] = last.get(status["server_id"])
        member = pool.get(status["server_id"]) if status["kind"] != "standalone" else None
        status["pool"] = member and {field: member[field] for field in POOL_FIELDS}
    return result


# ---------------------------------------------------------------------------------------------- executors

EXECUTOR_POINTS = 240  # points per server on the chart, at most


def executors_over_time(session: Session, minutes: float) -> dict:
    """Per Connect server, the executors and cores it held over the window, from its heartbeats: the most in
    each step (window / 240, at least 10 s), and its dynamic-allocation ceiling. Steps without a heartbeat are
    left out."""
    now = utcnow()
    step_s = max(10, int(minutes * 60 // EXECUTOR_POINTS))
    since = now - timedelta(minutes=minutes)
    seconds: ColumnElement[Any]
    if session.get_bind().dialect.name == "postgresql":
        seconds = func.floor(func.extract("epoch", Heartbeat.received_at) / step_s)
    else:  # SQLite: integer division
        seconds = cast(func.strftime("%s", Heartbeat.received_at), Integer) / step_s
    bucket = seconds.label("bucket")
    rows = session.execute(
        select(Heartbeat.server_id, bucket, func.max(Heartbeat.executors), func.max(Heartbeat.executor_cores),
               func.max(Heartbeat.max_executors))
        .join(Server, Server.server_id == Heartbeat.server_id)
        .where(Server.kind == "connect", Heartbeat.received_at >= since)
        .group_by(Heartbeat.server_id, bucket).order_by(Heartbeat.server_id, bucket)).all()
    servers: dict[str, list[dict]] = defaultdict(list)
    for server_id, index, executors, cores, ceiling in rows:
        at = datetime.fromtimestamp(int(index) * step_s, timezone.utc)
        servers[server_id].append({"at": at, "executors": executors, "cores": cores,
                                   "max_executors": ceiling})
    return {"since": since, "until": now, "step_s": step_s, "servers": dict(servers)}


# ----------------------------------------------------------------------------------------------- restarts

RESTART_FIELDS = ("id", "server_id", "backend", "requested_at", "idle_at", "restarted_at", "ready_at",
                  "finished_at", "outcome", "waited_s", "message")


def restarts(session: Session, server_id: str | None = None, limit: int = 20) -> list[dict]:
    """Recent restarts of Connect servers, newest first."""
    return [{name: getattr(restart, name) for name in RESTART_FIELDS}
            for restart in list_restarts(session, server_id, limit)]


def last_restarts(session: Session, server_ids: list[str]) -> dict[str, dict]:
    return {server_id: rows[0] for server_id in server_ids if (rows := restarts(session, server_id, 1))}


# --------------------------------------------------------------------------------------------- quarantine

QUARANTINE_FIELDS = ("id", "received_at", "server_id", "spark_app_id", "app_id", "run_id", "reason")


def quarantine(session: Session, limit: int = 10, retention_days: float = 30) -> dict:
    """How many stage records are quarantined (could not be stored), the newest ones with their reasons, and
    how many days they are kept."""
    return {"total": count_quarantined(session), "retention_days": retention_days,
            "recent": [{name: getattr(record, name) for name in QUARANTINE_FIELDS}
                       for record in list_quarantined(session, None, limit, 0)]}


# ---------------------------------------------------------------------------------------------- decisions

def _bucket(session: Session, column, bucket: str):
    """The start of the UTC hour or day of a timestamp, on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc(bucket, func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00", column)


def _floor(moment: datetime, bucket: str) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


KINDS = ("connect", "standalone", "fallback", "queued")


def _kind() -> ColumnElement[str]:
    """connect, standalone, fallback (a standalone rerun of a failed Connect run), or queued (still waiting in
    the admission queue, or cancelled there)."""
    # Literals, not parameters: PostgreSQL matches it in GROUP BY.
    fallback: ColumnElement[str] = literal_column("'fallback'")
    return case((Decision.rule == fallback, fallback), else_=Decision.mode)


def decisions_over_time(session: Session, days: float, bucket: str) -> dict:
    """Decisions per hour or day by where they sent the run, every bucket of the window present."""
    now = utcnow()
    since = _floor(now - timedelta(days=days), bucket)
    column = _bucket(session, Decision.created_at, bucket).label("bucket")
    kind = _kind().label("kind")
    rows = session.execute(select(column, kind, func.count()).where(Decision.created_at >= since)
                           .group_by(column, kind)).all()
    counts: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    for start, what, count in rows:
        counts[as_utc(start)][what] += count
    series, step, moment = [], BUCKETS[bucket], since
    while moment <= now:
        series.append({"start": moment, **counts[moment]})
        moment += step
    return {"bucket": bucket, "days": days, "since": since, "series": series}


def summary(session: Session, policy: Policy, days: float) -> dict:
    """Totals over the window: decisions by mode, fallbacks and the fallback rate, Connect and app failures (a
    cancelled run is neither: it is counted apart), runs in flight, task time by mode."""
    now = utcnow()
    since = now - timedelta(days=days)
    by_kind: dict[str, int] = dict(session.execute(
        select(_kind(), func.count()).where(Decision.created_at >= since).group_by(_kind())).all())
    connect, standalone, fallbacks, queued = (by_kind.get(k, 0) for k in KINDS)
    failures = dict(session.execute(
        select(Run.failure_kind, func.count())
        .where(Run.created_at >= since, Run.status == "failed").group_by(Run.failure_kind)).all())
    connect_failures = session.scalar(select(func.count()).where(
        Run.created_at >= since, Run.mode == "connect", Run.status == "failed",
        Run.failure_kind == "connect"))
    cancelled = session.scalar(select(func.count()).where(Run.created_at >= since, Run.status == "cancelled"))
    in_flight = in_flight_runs(session, policy)
    task_ms: dict[str, int] = dict(session.execute(
        select(Run.mode, safe_sum(session, Run.executor_run_time_ms))
        .where(Run.created_at >= since).group_by(Run.mode)).all())
    return {
        "days": days, "since": since, "policy_version": policy.full_version,
        "decisions": connect + standalone + fallbacks + queued, "connect": connect, "standalone": standalone,
        "fallbacks": fallbacks, "queued": queued,
        # Of the runs sent to Connect, how many had to be rerun standalone.
        "fallback_rate": round(fallbacks / connect, 4) if connect else None,
        "connect_failures": connect_failures, "app_failures": failures.get("app", 0), "cancelled": cancelled,
        "in_flight": {"connect": in_flight.get("connect", 0), "standalone": in_flight.get("standalone", 0)},
        "task_time_ms": {mode: as_bigint(value) for mode, value in task_ms.items()},
    }


def predicted_and_actual(decision: Decision, run: Run) -> dict:
    """What was predicted for the mode the run went to, and once it ended what it did
    (decider.actual_outcome)."""
    predicted = (decision.predictions or {}).get(decision.mode)
    return {"predicted": predicted and {"wall_s": predicted["wall_s"], "core_s": predicted["core_s"],
                                        "uncertainty": predicted["uncertainty"], "basis": predicted["basis"]},
            "actual": actual_outcome(values(run), decision.predictions)}


def recent_decisions(session: Session, limit: int) -> list[dict]:
    rows = session.execute(select(Decision, Run).join(Run, Run.run_id == Decision.run_id)
                           .order_by(Decision.created_at.desc(), Decision.id.desc()).limit(limit)).all()
    return [{"run_id": d.run_id, "app_id": d.app_id, "decided_at": d.created_at,
             "requested_mode": d.requested_mode, "mode": d.mode, "rule": d.rule,
             "reason": (d.reasons or [{}])[0].get("message"), "status": run.status,
             "server_id": run.server_id, **predicted_and_actual(d, run)} for d, run in rows]


def decisions_by_server(session: Session, days: float, default_server_id: str) -> dict:
    """Decisions in the window by where they sent the run: per Connect server of the pool (runs decided before
    the pool count on the default server), and standalone, fallback reruns and queued runs apart."""
    since = utcnow() - timedelta(days=days)
    kind = _kind().label("kind")
    rows = session.execute(select(Run.server_id, kind, func.count()).join(Run, Run.run_id == Decision.run_id)
                           .where(Decision.created_at >= since).group_by(Run.server_id, kind)).all()
    per_server: dict[str, int] = defaultdict(int)
    elsewhere = dict.fromkeys(KINDS[1:], 0)
    for server_id, what, count in rows:
        if what == "connect":
            per_server[server_id or default_server_id] += count
        else:
            elsewhere[what] += count
    return {"days": days, "since": since,
            "servers": [{"server_id": server_id, "decisions": count} for server_id,
                        count in sorted(per_server.items())],
            **elsewhere}


# --------------------------------------------------------------------------------------------------- apps

def top_apps(session: Session, days: float, limit: int) -> list[dict]:
    """Apps by task time (executor run time summed over their runs) in the window, the busiest first; apps
    with no run in the window follow, most recently seen first."""
    since = utcnow() - timedelta(days=days)
    runs = (select(Run.app_id,
                   func.count().label("runs"),
                   safe_sum(session, Run.executor_run_time_ms).label("task_time_ms"),
                   safe_sum(session, Run.disk_spilled_bytes).label("disk_spilled_bytes"),
                   safe_sum(session, Run.shuffle_write_bytes).label("shuffle_write_bytes"),
                   func.sum(case((Run.mode == "connect", 1), else_=0)).label("connect_runs"),
                   func.sum(case((Run.mode == "standalone", 1), else_=0)).label("standalone_runs"),
                   func.sum(case((Run.status == "failed", 1), else_=0)).label("failed_runs"),
                   func.sum(case((Run.fallback_of.is_not(None), 1), else_=0)).label("fallbacks"),
                   func.max(Run.created_at).label("last_run_at"))
            .where(Run.created_at >= since).group_by(Run.app_id).subquery())
    rows = session.execute(
        select(App, runs).outerjoin(runs, runs.c.app_id == App.app_id)
        .order_by(func.coalesce(runs.c.task_time_ms, -1).desc(), App.last_seen_at.desc(), App.app_id)
        .limit(limit)).all()
    last = _last_decisions(session, [row[0].app_id for row in rows])
    result = []
    for row in rows:
        app, figures = row[0], row._mapping
        decision = last.get(app.app_id)
        result.append({
            "app_id": app.app_id, "last_seen_at": app.last_seen_at,
            "runs": figures["runs"] or 0, "task_time_ms": as_bigint(figures["task_time_ms"]),
            "disk_spilled_bytes": as_bigint(figures["disk_spilled_bytes"]),
            "shuffle_write_bytes": as_bigint(figures["shuffle_write_bytes"]),
            "connect_runs": int(figures["connect_runs"] or 0),
            "standalone_runs": int(figures["standalone_runs"] or 0),
            "failed_runs": int(figures["failed_runs"] or 0), "fallbacks": int(figures["fallbacks"] or 0),
            "last_run_at": as_utc(figures["last_run_at"]), "last_mode": decision.mode if decision else None,
            "last_rule": decision.rule if decision else None, "pinned_mode": app.pinned_mode,
            "pinned_server_id": app.pinned_server_id, "connect_incompatible": app.connect_incompatible,
            "connect_failure_streak": app.connect_failure_streak,
        })
    return result


def _last_decisions(session: Session, app_ids: list[str]) -> dict[str, Decision]:
    if not app_ids:
        return {}
    newest = select(func.max(Decision.id)).where(Decision.app_id.in_(app_ids)).group_by(Decision.app_id)
    return {d.app_id: d for d in session.scalars(select(Decision).where(Decision.id.in_(newest)))}


RUN_FIELDS = ("run_id", "app_id", "mode", "status", "created_at", "started_at", "finished_at", "failure_kind",
              "failure_message", "exit_code", "fallback_of", "fell_back_to", "predicted_cores", "server_id",
              "dag_id", "task_id", "airflow_run_id", "try_number", "first_stage_at", "last_stage_at",
              "num_stages", "num_failed_stages", "executors_held", "executor_core_s", *METRICS)


def run_dict(run: Run, decision: Decision | None) -> dict:
    out = {field: getattr(run, field) for field in RUN_FIELDS}
    out["duration_ms"] = run_duration_ms(run)
    out["decision"] = None if decision is None else {
        "rule": decision.rule, "mode": decision.mode, "requested_mode": decision.requested_mode,
        "decided_at": decision.created_at, "policy_version": decision.policy_version,
        "reasons": decision.reasons, "predictions": decision.predictions,
        **predicted_and_actual(decision, run)}
    return out


def app_detail(session: Session, app_id: str, policy: Policy, limit: int) -> dict | None:
    """An app's state, its recent runs (newest first) with their decisions, and the policy's thresholds for
    the figures the charts show."""
    app = session.get(App, app_id)
    if app is None:
        return None
    rows = session.execute(select(Run, Decision).outerjoin(Decision, Decision.run_id == Run.run_id)
                           .where(Run.app_id == app_id)
                           .order_by(Run.created_at.desc(), Run.run_id.desc()).limit(limit)).all()
    total = session.scalar(select(func.count()).select_from(Run).where(Run.app_id == app_id))
    thresholds = policy.history.thresholds
    return {
        "app_id": app.app_id, "created_at": app.created_at, "last_seen_at": app.last_seen_at,
        "pinned_mode": app.pinned_mode, "pin_reason": app.pin_reason, "pinned_at": app.pinned_at,
        "pinned_server_id": app.pinned_server_id,
        "connect_incompatible": app.connect_incompatible, "compat_checked_at": app.compat_checked_at,
        "connect_failure_streak": app.connect_failure_streak,
        "last_connect_failure_at": app.last_connect_failure_at,
        "last_connect_oom_at": app.last_connect_oom_at,
        "last_connect_success_at": app.last_connect_success_at, "retry_granted_at": app.retry_granted_at,
        "total_runs": total,
        "policy": {"version": policy.full_version, "window": policy.history.window,
                   "statistic": policy.history.statistic,
                   "thresholds": {metric: getattr(thresholds, metric) for metric in HISTORY_METRICS}},
        "runs": [run_dict(run, decision) for run, decision in rows],
    }


def run_detail(session: Session, run_id: str, stage_limit: int = 500) -> dict | None:
    """A run with its decision (reasons and the request) and its stage attempts."""
    run = session.get(Run, run_id)
    if run is None:
        return None
    decision = session.scalars(select(Decision).where(Decision.run_id == run_id)).one_or_none()
    out = run_dict(run, decision)
    if decision is not None:
        out["decision"]["request"] = decision.request
    stages = session.scalars(select(StageMetric).where(StageMetric.run_id == run_id)
                             .order_by(StageMetric.submission_time, StageMetric.stage_id, StageMetric.attempt)
                             .limit(stage_limit))
    out["stages"] = [{"stage_id": s.stage_id, "attempt": s.attempt, "job_id": s.job_id, "name": s.name,
                      "status": s.status, "failure_reason": s.failure_reason, "server_id": s.server_id,
                      "submission_time": s.submission_time, "duration_ms": s.duration_ms,
                      "num_tasks": s.num_tasks, "num_failed_tasks": s.num_failed_tasks,
                      "executor_run_time_ms": s.executor_run_time_ms,
                      "shuffle_read_bytes": s.shuffle_read_bytes,
                      "shuffle_write_bytes": s.shuffle_write_bytes,
                      "memory_spilled_bytes": s.memory_spilled_bytes,
                      "disk_spilled_bytes": s.disk_spilled_bytes,
                      "peak_execution_memory_bytes": s.peak_execution_memory_bytes} for s in stages]
    return out


def in_flight_runs(session: Session, policy: Policy) -> dict[str, int]:
    cutoffs = in_flight_cutoffs(policy.capacity, utcnow())
    return dict(session.execute(select(Run.mode,
                                       func.count()).where(in_flight(**cutoffs)).group_by(Run.mode)).all())


def predictions(session: Session, days: float) -> dict:
    """How good the predictions were over the window (routing/accuracy.py), per app and mode and overall."""
    return prediction_accuracy(session, max(1, math.ceil(days)))
