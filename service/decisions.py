"""Turning a request into a decision: gather the app's aggregates and the server's state, apply the policy,
store the decision with a new run."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from service import policy as rules
from service.ingest import dialect_insert
from service.models import App, Decision, Run, Server, utcnow
from service.schemas import DecisionOut, DecisionRequest, ReasonOut
from service.settings import Settings

IN_FLIGHT = ("decided", "running")


def new_run_id() -> str:
    return f"run-{utcnow():%Y%m%d}-{uuid.uuid4().hex[:12]}"


def aggregates(app: App | None) -> rules.AppAggregates:
    if app is None:
        return rules.AppAggregates()
    fields = rules.RunSummary.__dataclass_fields__
    return rules.AppAggregates(
        pinned_mode=app.pinned_mode, pin_reason=app.pin_reason, connect_incompatible=app.connect_incompatible,
        connect_failure_streak=app.connect_failure_streak, last_connect_failure_at=app.last_connect_failure_at,
        retry_granted_at=app.retry_granted_at,
        recent_runs=tuple(rules.RunSummary(**{k: entry[k] for k in fields}) for entry in app.recent_runs or ()))


def server_and_load(session: Session, server_id: str, now: datetime,
                    policy: rules.Policy) -> tuple[rules.ServerFacts | None, float]:
    """The server's health and the predicted load of the Connect runs in flight, in one query."""
    since = now - timedelta(seconds=policy.capacity.in_flight_max_age_s)
    runs, servers = Run.__table__, Server.__table__
    in_flight = (select(func.coalesce(func.sum(runs.c.predicted_cores), 0.0))
                 .where(runs.c.mode == "connect", runs.c.status.in_(IN_FLIGHT), runs.c.created_at >= since)
                 .scalar_subquery())
    row = session.connection().execute(
        select(servers.c.last_heartbeat_at, servers.c.draining, in_flight.label("load"))
        .where(servers.c.server_id == server_id)).one_or_none()
    if row is None:
        return None, 0.0
    return rules.ServerFacts(row.last_heartbeat_at, row.draining), float(row.load)


def resources(request: DecisionRequest) -> rules.Resources:
    return rules.Resources(**request.resources.model_dump(), spark_conf=dict(request.spark_conf))


def make_decision(session: Session, request: DecisionRequest, policy: rules.Policy, settings: Settings) -> DecisionOut:
    """Decide, and store the decision with its run, in one transaction. The app's row stays locked while
    deciding, so concurrent decisions for one app see each other (one cool-down try, not several).
    Core statements, four round trips: this is the router's hot path."""
    now = utcnow()
    connection = session.connection()
    # Creates the app if new, marks it seen, locks its row until commit, and reads it: one statement.
    app = connection.execute(
        dialect_insert(session, App.__table__)
        .values(app_id=request.app_id, created_at=now, last_seen_at=now, recent_runs=[])
        .on_conflict_do_update(index_elements=["app_id"], set_={"last_seen_at": now})
        .returning(*App.__table__.c)).one()
    server, load = server_and_load(session, settings.connect_server_id, now, policy)
    facts = rules.DecisionFacts(now=now, requested_mode=request.mode, resources=resources(request),
                                app=aggregates(app), server=server, in_flight_cores=load)
    verdict = rules.decide(facts, policy)
    if verdict.grants_retry:
        connection.execute(update(App.__table__).where(App.__table__.c.app_id == request.app_id)
                           .values(retry_granted_at=now))
    airflow = request.airflow
    run = Run(run_id=new_run_id(), app_id=request.app_id, mode=verdict.mode, status="decided", created_at=now,
              predicted_cores=verdict.predicted_cores if verdict.mode == "connect" else 0.0,
              dag_id=airflow and airflow.dag_id, task_id=airflow and airflow.task_id,
              airflow_run_id=airflow and airflow.run_id, try_number=airflow and airflow.try_number)
    decision = Decision(run_id=run.run_id, app_id=request.app_id, created_at=now, requested_mode=request.mode,
                        mode=verdict.mode, rule=verdict.reasons[0].rule if verdict.reasons else "none",
                        reasons=rules.reasons_json(verdict), policy_version=policy.full_version,
                        request=request.model_dump(mode="json"))
    # The objects only carry the values; Core inserts skip the ORM's unit of work.
    connection.execute(insert(Run.__table__).values(_columns(run)))
    connection.execute(insert(Decision.__table__).values(_columns(decision)))
    session.commit()
    return decision_out(decision, run, settings)


def _columns(obj) -> dict:
    return {column.key: getattr(obj, column.key) for column in obj.__table__.columns
            if getattr(obj, column.key) is not None}


def fallback(session: Session, run_id: str, reason: str | None, policy: rules.Policy,
             settings: Settings) -> DecisionOut:
    """A Connect run failed: record a standalone rerun as a new run, decided by the 'fallback' rule."""
    failed = session.scalars(select(Run).where(Run.run_id == run_id).with_for_update()).one_or_none()
    if failed is None:
        raise KeyError(run_id)
    if failed.mode != "connect":
        raise ValueError(f"run {run_id} ran {failed.mode}; only a Connect run falls back to standalone")
    if failed.fell_back_to:
        existing = session.scalars(select(Decision).where(Decision.run_id == failed.fell_back_to)).one()
        return decision_out(existing, session.get(Run, failed.fell_back_to), settings)
    now = utcnow()
    why = reason or failed.failure_message or "it failed"
    message = f"The Connect run {run_id} failed ({why[:300]}); rerunning as a separate application."
    run = Run(run_id=new_run_id(), app_id=failed.app_id, mode="standalone", status="decided", created_at=now,
              fallback_of=run_id, dag_id=failed.dag_id, task_id=failed.task_id,
              airflow_run_id=failed.airflow_run_id, try_number=failed.try_number)
    decision = Decision(run_id=run.run_id, app_id=failed.app_id, created_at=now, requested_mode="standalone",
                        mode="standalone", rule="fallback",
                        reasons=[{"rule": "fallback", "metric": None, "observed": None, "threshold": None,
                                  "message": message}],
                        policy_version=policy.full_version, request={"fallback_of": run_id})
    failed.fell_back_to = run.run_id
    session.add(run)
    session.flush()
    session.add(decision)
    session.commit()
    return decision_out(decision, run, settings)


def session_confs(run: Run) -> dict[str, str]:
    """The confs a session sets so the listener attributes its stages to this run."""
    confs = {"spark.router.appId": run.app_id, "spark.router.runId": run.run_id}
    airflow = {"dagId": run.dag_id, "taskId": run.task_id, "runId": run.airflow_run_id,
               "tryNumber": run.try_number}
    confs.update({f"spark.router.airflow.{key}": str(value) for key, value in airflow.items() if value is not None})
    return confs


def decision_out(decision: Decision, run: Run, settings: Settings) -> DecisionOut:
    return DecisionOut(run_id=run.run_id, app_id=run.app_id, mode=decision.mode, rule=decision.rule,
                       reasons=[ReasonOut(**reason) for reason in decision.reasons],
                       connect_url=settings.connect_url if decision.mode == "connect" else None,
                       session_confs=session_confs(run), policy_version=decision.policy_version,
                       decided_at=decision.created_at)
