"""Turning requests into decisions: gather the apps' aggregates and the server's state, apply the policy,
store each decision with a new run."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import Connection, CursorResult, Engine, Row, delete, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from client_runtime import protocol
from service.config import RouterSettings
from service.db import engine as db
from service.db.models import AdmissionQueueEntry, App, Decision, Run, Server, as_utc, utcnow
from service.errors import Conflict, UnknownRun
from service.history import lifecycle
from service.history.apps import lock_app
from service.history.queries import in_flight_cutoffs
from service.routing import admission, admission_store, decision_store, rules, sizing
from service.routing.facts import read_cluster_facts, summary_from_json
from service.routing.policy import Policy, PolicyStore
from service.routing.predict import error_pct
from service.schemas import AirflowContext, DecisionOut, DecisionRequest, ReasonOut, SizingOut

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return f"run-{utcnow():%Y%m%d}-{uuid.uuid4().hex[:12]}"


def aggregates(app: decision_store.AppRow | None) -> rules.AppAggregates:
    if app is None:
        return rules.AppAggregates()
    return rules.AppAggregates(
        pinned_mode=app.pinned_mode, pin_reason=app.pin_reason, connect_incompatible=app.connect_incompatible,
        connect_failure_streak=app.connect_failure_streak,
        last_connect_failure_at=app.last_connect_failure_at, retry_granted_at=app.retry_granted_at,
        last_connect_oom_at=app.last_connect_oom_at,
        pinned_server=app.pinned_server_id,
        recent_runs=tuple(summary_from_json(entry) for entry in app.recent_runs or ()))


def resources(request: DecisionRequest) -> rules.Resources:
    return rules.Resources(**request.resources.model_dump(), spark_conf=dict(request.spark_conf))


def usage(app: decision_store.AppRow | None, policy: Policy) -> tuple[sizing.RunUsage, ...]:
    """What sizing reads of the app's recent successful runs. A Connect run ran with the shared server's
    executors; a standalone run with what it was given (older summaries do not say: Spark's default)."""
    server = policy.server
    return tuple(sizing.RunUsage(
        entry["task_time_ms"], entry["disk_spilled_bytes"], entry["peak_execution_memory_bytes"],
        *((server.executor_memory, server.executor_cores) if entry.get("mode") == "connect"
          else (entry.get("executor_memory"), entry.get("executor_cores"))))
        for entry in (app.recent_runs if app is not None else None) or ())


class SizedColumns(TypedDict):
    """A run's resource columns (the runs table's; bytes and counts, None: Spark's default)."""

    executor_memory: int | None
    executor_cores: int | None
    num_executors: int | None
    driver_memory: int | None


def sized_columns(sized: sizing.Sized | None) -> SizedColumns:
    """A run's resource columns from its sizing (all None for a Connect run, which has none)."""
    if sized is None:
        return {"executor_memory": None, "executor_cores": None, "num_executors": None, "driver_memory": None}
    return {"executor_memory": sized.executor_memory, "executor_cores": sized.executor_cores,
            "num_executors": sized.num_executors, "driver_memory": sized.driver_memory}


class AirflowColumns(TypedDict):
    """A run's Airflow task instance (the runs table's columns; None: not run by Airflow)."""

    dag_id: str | None
    task_id: str | None
    airflow_run_id: str | None
    try_number: int | None


def airflow_columns(airflow: AirflowContext | None) -> AirflowColumns:
    if airflow is None:
        return {"dag_id": None, "task_id": None, "airflow_run_id": None, "try_number": None}
    return {"dag_id": airflow.dag_id, "task_id": airflow.task_id, "airflow_run_id": airflow.run_id,
            "try_number": airflow.try_number}


def make_decisions(connection: Connection, requests: list[DecisionRequest], policy: Policy,
                   settings: RouterSettings) -> list[DecisionOut | Exception]:
    """Decide a batch of requests and store every decision with its run, in the caller's transaction: the
    router's hot path. The apps' rows stay locked until commit, so concurrent decisions for one app see each
    other (one cool-down try, not several); within the batch, each decision sees the ones before it. A request
    the policy cannot decide gets its exception in its place; the others are stored."""
    now = utcnow()
    state = decision_store.read(connection, sorted({request.app_id for request in requests}),
                                default_server(settings), now, **in_flight_cutoffs(policy.capacity, now),
                                polled_since=admission_store.polled_since(settings, now))
    apps = {app_id: aggregates(row) for app_id, row in state.apps.items()}
    # The runs waiting in the queue come first: the pool as it is once they are placed (those with room).
    pool = admission_store.with_run_limits(state.servers, settings)
    servers, queued_ahead = admission.place_ahead(pool, state.queued, now, policy)
    waiting = admission_store.Waiting(list(state.queued))
    cluster = read_cluster_facts(connection)
    results: list[DecisionOut | Exception] = []
    new_runs: list[decision_store.NewRun] = []
    new_decisions: list[decision_store.NewDecision] = []
    retries_granted: list[str] = []
    new_entries: list[admission_store.QueueEntry] = []
    for request in requests:
        app = apps[request.app_id]
        try:
            verdict = rules.decide(rules.DecisionFacts(now=now, requested_mode=request.mode,
                                                       resources=resources(request), app=app, servers=servers,
                                                       queued_ahead=queued_ahead, cluster=cluster), policy)
            queue = (admission_store.consider(connection, waiting, verdict, request.app_id, pool, now, policy,
                                              settings) if request.can_wait and no_room(verdict) else None)
        except Exception as exc:  # one request's failure is not the batch's
            log.exception("no decision for app %s", request.app_id)
            results.append(exc)
            continue
        if verdict.grants_retry:
            retries_granted.append(request.app_id)
            apps[request.app_id] = replace(app, retry_granted_at=now)
        if verdict.mode == "connect":
            servers = with_load(servers, verdict.server_id, verdict.predicted_cores)
        sized = (sizing.size(resources(request), usage(state.apps[request.app_id], policy), policy)
                 if verdict.mode == "standalone" else None)
        run: decision_store.NewRun = {
            "run_id": new_run_id(), "app_id": request.app_id, "mode": verdict.mode, "status": "decided",
            "created_at": now,
            "predicted_cores": verdict.predicted_cores if verdict.mode == "connect" else 0.0,
            "server_id": verdict.server_id if verdict.mode == "connect" else None,
            **airflow_columns(request.airflow), **sized_columns(sized)}
        decision: decision_store.NewDecision = {
            "run_id": run["run_id"], "app_id": request.app_id, "created_at": now,
            "requested_mode": request.mode, "mode": verdict.mode,
            "rule": verdict.reasons[0].rule if verdict.reasons else "none",
            "reasons": rules.reasons_json(verdict), "policy_version": policy.full_version,
            "request": request.model_dump(mode="json"), "predictions": predictions_json(verdict),
            "sizing_reason": sized.reason if sized else None}
        position = wait_s = None
        if queue is not None:
            choice, wait_s, expected_s, startup = queue
            decision["reasons"].append(admission_store.queue_reason(choice, wait_s, startup))
            if choice.wait:
                run.update({"mode": "queued", "status": "queued", "server_id": None, "predicted_cores": 0.0})
                decision.update({"mode": "queued", "rule": "queue"})
                position = len(waiting.queued) + 1
                waiting.queued.append(admission.Queued(run["run_id"], verdict.predicted_cores, expected_s,
                                                       now))
                queued_ahead += 1  # the runs after it in this batch wait behind it
                new_entries.append({"run_id": run["run_id"], "app_id": request.app_id, "enqueued_at": now,
                                    "deadline_at": now + timedelta(seconds=settings.queue_max_wait_s),
                                    "last_polled_at": now, "predicted_cores": verdict.predicted_cores,
                                    "expected_s": expected_s, "predicted_wait_s": wait_s,
                                    "request": request.model_dump(mode="json")})
        new_runs.append(run)
        new_decisions.append(decision)
        results.append(decision_out(decision, run, settings, verdict.connect_url, position, wait_s))
    if new_runs:
        decision_store.write(connection, new_runs, new_decisions, retries_granted, now)
        admission_store.enqueue(connection, new_entries)
    return results


def no_room(verdict: rules.Verdict) -> bool:
    """The rules sent the run standalone only because no Connect server has room now: a verdict it may wait
    out."""
    return (verdict.mode == "standalone" and bool(verdict.reasons)
            and verdict.reasons[0].rule in admission.NO_ROOM_RULES)


def preview(session: Session, request: DecisionRequest, policy: Policy,
            settings: RouterSettings) -> DecisionOut:
    """Where a run of the app would go now, and why, recording nothing (``dry_run``): no run, so no capacity
    held; no cool-down try granted; the app not created or marked seen."""
    now = utcnow()
    connection = session.connection()
    pool = admission_store.with_run_limits(decision_store.read_pool(connection, default_server(settings),
                                                                    **in_flight_cutoffs(policy.capacity,
                                                                                        now)), settings)
    waiting = admission_store.Waiting(list(decision_store.read_queue(connection,
                                                                     admission_store.polled_since(settings,
                                                                                                  now))))
    servers, queued_ahead = admission.place_ahead(pool, waiting.queued, now, policy)
    app = session.get(App, request.app_id)
    verdict = rules.decide(rules.DecisionFacts(
        now=now, requested_mode=request.mode, resources=resources(request),
        app=aggregates(app), servers=servers, queued_ahead=queued_ahead,
        cluster=read_cluster_facts(session.connection())), policy)
    sized = (sizing.size(resources(request), usage(app, policy), policy) if verdict.mode == "standalone"
             else None)
    # No run is recorded: its row and its decision's as decision_out reads them.
    run: dict[str, Any] = {"run_id": None, "app_id": request.app_id, "server_id": verdict.server_id,
                           **airflow_columns(request.airflow), **sized_columns(sized)}
    decision: dict[str, Any] = {
        "mode": verdict.mode, "rule": verdict.reasons[0].rule if verdict.reasons else "none",
        "reasons": rules.reasons_json(verdict), "policy_version": policy.full_version, "created_at": now,
        "predictions": predictions_json(verdict), "sizing_reason": sized.reason if sized else None}
    position = wait_s = None
    if request.can_wait and no_room(verdict):
        choice, wait_s, _, startup = admission_store.consider(connection, waiting, verdict, request.app_id,
                                                              pool, now, policy, settings)
        decision["reasons"].append(admission_store.queue_reason(choice, wait_s, startup))
        if choice.wait:
            decision.update(mode="queued", rule="queue")
            position = len(waiting.queued) + 1
    return decision_out(decision, run, settings, verdict.connect_url, position, wait_s).model_copy(
        update={"dry_run": True})


def fallback(session: Session, run_id: str, reason: str | None, policy: Policy,
             settings: RouterSettings) -> DecisionOut:
    """A Connect run failed: record a standalone rerun as a new run, decided by the 'fallback' rule."""
    failed, app = lifecycle.lock_run_and_app(session, run_id)  # the new run's row refers to the app
    if failed.mode != "connect":
        raise Conflict(f"run {run_id} ran {failed.mode}; only a Connect run falls back to standalone")
    if failed.fell_back_to:
        existing = session.scalars(select(Decision).where(Decision.run_id == failed.fell_back_to)).one()
        return decision_out(values(existing), values(session.get_one(Run, failed.fell_back_to)), settings)
    now = utcnow()
    why = reason or failed.failure_message or "it failed"
    message = f"The Connect run {run_id} failed ({why[:300]}); rerunning as a separate application."
    sized = sizing.size(asked_by(failed, session), usage(app, policy), policy)
    run = Run(run_id=new_run_id(), app_id=failed.app_id, mode="standalone", status="decided", created_at=now,
              fallback_of=run_id, dag_id=failed.dag_id, task_id=failed.task_id,
              airflow_run_id=failed.airflow_run_id, try_number=failed.try_number, **sized_columns(sized))
    decision = Decision(run_id=run.run_id, app_id=failed.app_id, created_at=now, requested_mode="standalone",
                        mode="standalone", rule="fallback",
                        reasons=[{"rule": "fallback", "metric": None, "observed": None, "threshold": None,
                                  "message": message}],
                        policy_version=policy.full_version, request={"fallback_of": run_id},
                        sizing_reason=sized.reason)
    failed.fell_back_to = run.run_id
    session.add(run)
    session.flush()
    session.add(decision)
    session.commit()
    return decision_out(values(decision), values(run), settings)


def asked_by(run: Run, session: Session) -> rules.Resources:
    """The resources the run's own request asked for (none known: Spark's defaults)."""
    request = session.scalar(select(Decision.request).where(Decision.run_id == run.run_id)) or {}
    try:
        return resources(DecisionRequest.model_validate({"app_id": run.app_id, **{
            key: request[key] for key in ("resources", "spark_conf") if key in request}}))
    except ValueError:  # stored by an older router in another form: no ask to keep to
        return rules.Resources()


def oom_rerun(session: Session, run_id: str, where: sizing.OomWhere, reason: str | None, policy: Policy,
              settings: RouterSettings) -> DecisionOut:
    """A standalone run ran out of memory: record its one rerun with more memory (sizing.oom_rerun) as a new
    run, decided by the 'oom-rerun' rule. Asked again for the same run, the rerun recorded before."""
    failed, _app = lifecycle.lock_run_and_app(session, run_id)
    if failed.oom_rerun_to:
        existing = session.scalars(select(Decision).where(Decision.run_id == failed.oom_rerun_to)).one()
        return decision_out(values(existing), values(session.get_one(Run, failed.oom_rerun_to)), settings)
    if failed.mode != "standalone":
        raise Conflict(f"run {run_id} ran {failed.mode}; only a standalone run is rerun with more memory (a "
                       f"failed Connect run falls back to standalone)")
    if failed.status != "failed":
        raise Conflict(f"run {run_id} is {failed.status}; report it failed before asking for its rerun")
    if failed.oom_rerun_of:
        raise Conflict(f"run {run_id} is already the out-of-memory rerun of {failed.oom_rerun_of}: one rerun "
                       "only")
    ran_with = rules.Resources(driver_memory=failed.driver_memory, executor_memory=failed.executor_memory,
                               executor_cores=failed.executor_cores, num_executors=failed.num_executors)
    sized, why = sizing.oom_rerun(ran_with, where, policy)
    if sized is None:
        raise Conflict(f"run {run_id} is not rerun: {why}")
    now = utcnow()
    said = f" ({reason[:300]})" if reason else ""
    message = f"The standalone run {run_id} ran out of {where} memory{said}; rerunning it once with more."
    run = Run(run_id=new_run_id(), app_id=failed.app_id, mode="standalone", status="decided", created_at=now,
              oom_rerun_of=run_id, dag_id=failed.dag_id, task_id=failed.task_id,
              airflow_run_id=failed.airflow_run_id, try_number=failed.try_number, **sized_columns(sized))
    decision = Decision(run_id=run.run_id, app_id=failed.app_id, created_at=now, requested_mode="standalone",
                        mode="standalone", rule="oom-rerun",
                        reasons=[{"rule": "oom-rerun", "metric": f"{where}_memory",
                                  "observed": ran_with_memory(
                            ran_with, where), "threshold": None, "message": message}],
                        policy_version=policy.full_version, request={"oom_rerun_of": run_id, "where": where},
                        sizing_reason=sized.reason)
    failed.oom_rerun_to = run.run_id
    session.add(run)
    session.flush()
    session.add(decision)
    session.commit()
    return decision_out(values(decision), values(run), settings)


def ran_with_memory(ran_with: rules.Resources, where: sizing.OomWhere) -> int:
    memory = ran_with.executor_memory if where == "executor" else ran_with.driver_memory
    return memory or sizing.SPARK_DEFAULT_MEMORY


def predictions_json(verdict: rules.Verdict) -> dict[str, Any] | None:
    return verdict.predictions.as_json() if verdict.predictions is not None else None


def actual_outcome(run: Mapping[str, Any], predictions: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A finished run's actual figures beside what was predicted for the mode it ran in: wall time, executor
    core-seconds, and each prediction's error in % of the actual (a succeeded run's only: a failed or
    cancelled run did not do the work that was predicted). None while the run has not ended."""
    if run.get("status") not in lifecycle.TERMINAL:
        return None
    started, finished = run.get("started_at"), run.get("finished_at")
    wall_s = (finished - started).total_seconds() if started and finished else None
    core_s = run.get("executor_core_s")
    predicted = (predictions or {}).get(run["mode"]) if run["status"] == "succeeded" else None
    return {"mode": run["mode"], "status": run["status"],
            "wall_s": None if wall_s is None else round(wall_s, 2), "core_s": core_s,
            "executors": run.get("executors_held"),
            "wall_error_pct": error_pct(predicted and predicted.get("wall_s"), wall_s),
            "core_s_error_pct": error_pct(predicted and predicted.get("core_s"), core_s)}


def session_confs(run: Mapping[str, Any]) -> dict[str, str]:
    """The confs a session sets so the listener attributes its stages to this run."""
    # run_id None: a dry run, which has no run
    return {**protocol.session_confs(run["app_id"], run["run_id"]),
            **protocol.airflow_confs(run.get("dag_id"), run.get("task_id"), run.get("airflow_run_id"),
                                     run.get("try_number"))}


def default_server(settings: RouterSettings) -> decision_store.DefaultServer:
    return decision_store.DefaultServer(settings.connect_server_id, settings.connect_url)


def with_load(servers: tuple[rules.ServerFacts, ...], server_id: str | None, cores: float
              ) -> tuple[rules.ServerFacts, ...]:
    """The pool with one more run of `cores` in flight on `server_id`: the next decision of the batch
    sees it."""
    return tuple(replace(server, in_flight_cores=server.in_flight_cores + cores,
                         in_flight_runs=server.in_flight_runs + 1) if server.server_id == server_id
                 else server for server in servers)


def decision_out(decision: Mapping[str, Any], run: Mapping[str, Any], settings: RouterSettings,
                 connect_url: str | None = None, position: int | None = None,
                 predicted_wait_s: float | None = None) -> DecisionOut:
    """The API's view of a decision and its run (rows as mappings: see ``values``); a Connect decision's URL
    is its server's (`connect_url`), else the settings'; a queued one's position and predicted wait."""
    queued = decision["mode"] == "queued"
    return DecisionOut(run_id=run["run_id"], app_id=run["app_id"], mode=decision["mode"],
                       rule=decision["rule"], reasons=[ReasonOut(**reason) for reason in decision["reasons"]],
                       connect_url=(connect_url or settings.connect_url) if decision["mode"] == "connect"
                       else None,
                       server_id=run.get("server_id") if decision["mode"] == "connect" else None,
                       session_confs=session_confs(run), policy_version=decision["policy_version"],
                       decided_at=decision["created_at"], position=position if queued else None,
                       predicted_wait_s=(None if predicted_wait_s is None else round(predicted_wait_s, 1))
                       if queued else None, predictions=decision.get("predictions"),
                       actual=actual_outcome(run, decision.get("predictions")) if run["run_id"] else None,
                       scheduler_pool=scheduler_pool(decision["reasons"]) if decision["mode"] == "connect"
                       else None,
                       sizing=sizing_out(decision, run))


def scheduler_pool(reasons: list[dict[str, Any]]) -> str | None:
    """A Connect decision's scheduler pool, from its reason of that rule (None for decisions made before
    pools)."""
    return next((reason["observed"] for reason in reasons if reason["rule"] == rules.SCHEDULER_POOL_RULE),
                None)

def sizing_out(decision: Mapping[str, Any], run: Mapping[str, Any]) -> SizingOut | None:
    """A standalone decision's sizing: the run's resources and the decision's reason (decisions stored before
    sizing have none)."""
    if decision["mode"] != "standalone" or not decision.get("sizing_reason"):
        return None
    sized = sizing.Sized(run.get("executor_memory"), run.get("num_executors"), run.get("executor_cores"),
                         run.get("driver_memory"), decision["sizing_reason"])
    spark = sized.spark_resources()
    return SizingOut(executor_memory=spark.get("executor_memory"), num_executors=sized.num_executors,
                     executor_cores=sized.executor_cores, driver_memory=spark.get("driver_memory"),
                     reason=sized.reason)

def values(obj: Run | Decision) -> dict[str, Any]:
    """An ORM object's column values."""
    return {column.key: getattr(obj, column.key) for column in obj.__table__.columns}


# ------------------------------------------------------------------------------------------ admission

def admit(session: Session, run_id: str, policy: Policy, settings: RouterSettings,
          up_since: datetime | None = None) -> DecisionOut:
    """One admission check of a queued run, in one transaction. Admitted to a Connect server when it has room
    with every live run ahead of it placed first; sent standalone when the rules now say so for another reason
    (pinned, the server down), when the queue's longest wait is up, when its client stopped asking, or when
    room is predicted later than a standalone start-up; else still queued, with its position and predicted
    wait. A run no longer queued answers its decision as it stands; one cancelled while queued is a conflict.

    Admissions take the queue's row locks in queue order first, so that each sees the one before it; leaving
    the queue is a conditional update (queued -> decided), so a run is decided once however many workers check
    it. Each check also cancels the runs ahead or behind whose clients gave up (silent, and past the queue's
    longest wait: admission_store.cancel_abandoned; `up_since`: when this router started)."""
    app_id = session.scalar(select(Run.app_id).where(Run.run_id == run_id))
    if app_id is None:
        raise UnknownRun(run_id)
    app = lock_app(session, app_id)  # apps, then runs: the order of decisions and lifecycle events
    connection = session.connection()
    now = utcnow()
    queue = AdmissionQueueEntry.__table__
    rows = connection.execute(select(queue).order_by(queue.c.id).with_for_update()).all()
    run = session.scalars(select(Run).where(Run.run_id == run_id).with_for_update()).one()
    decision = session.scalars(select(Decision).where(Decision.run_id == run_id)).one_or_none()
    if decision is None:
        raise Conflict(f"run {run_id} was not decided by the router (it has no decision to wait for)")
    entry = next((row for row in rows if row.run_id == run_id), None)
    if run.status == "cancelled" and decision.mode == "queued":
        why = f": {run.failure_message}" if run.failure_message else ""
        raise Conflict(f"run {run_id} was cancelled while it waited in the admission queue{why}")
    if run.status != "queued" or entry is None:
        session.rollback()
        return _stored(session, decision, run, settings)
    swept = admission_store.cancel_abandoned(connection, rows, now, settings, up_since, keep=run_id)
    rows = [row for row in rows if row.run_id not in swept]
    since = admission_store.polled_since(settings, now)
    ahead = [admission.Queued(row.run_id, row.predicted_cores, row.expected_s, as_utc(row.enqueued_at))
             for row in rows if row.id < entry.id and as_utc(row.last_polled_at) >= since]
    pool = admission_store.with_run_limits(decision_store.read_pool(connection, default_server(settings),
                                                                    **in_flight_cutoffs(policy.capacity,
                                                                                        now)), settings)
    placed, queued_ahead = admission.place_ahead(pool, ahead, now, policy)
    request = DecisionRequest.model_validate(entry.request)
    verdict = rules.decide(rules.DecisionFacts(now=now, requested_mode=request.mode,
                                               resources=resources(request), app=aggregates(app),
                                               servers=placed, queued_ahead=queued_ahead,
                                               cluster=read_cluster_facts(connection)), policy)
    enqueued_at = as_utc(entry.enqueued_at)
    waited = f"It waited {(now - enqueued_at).total_seconds():.0f} s in the admission queue"
    if no_room(verdict):
        startup = admission_store.startup_s(connection, settings)
        if as_utc(entry.last_polled_at) < since:
            return _leave(session, entry, run, verdict, now, policy, settings,
                          f"{waited}; its client stopped asking, so it runs standalone.")
        if now >= as_utc(entry.deadline_at):
            return _leave(session, entry, run, verdict, now, policy, settings,
                          f"{waited}, the queue's longest wait ({settings.queue_max_wait_s:g} s, "
                          f"SPARK_ROUTER_QUEUE_MAX_WAIT_S), so it runs standalone.")
        wait_s = admission.predicted_wait_s(
            admission_store.in_progress(connection, pool, now, policy, settings.connect_server_id), ahead,
            admission.rooms_free(pool, verdict.predicted_cores, now, policy))
        if wait_s is None or wait_s >= startup:
            why = ("no run in progress has a history to predict when room opens" if wait_s is None else
                   f"room is now predicted in {wait_s:.0f} s, not sooner than a standalone start-up "
                   f"({startup:.0f} s)")
            return _leave(session, entry, run, verdict, now, policy, settings,
                          f"{waited}; {why}, so it runs standalone.")
        connection.execute(update(queue).where(queue.c.id == entry.id).values(last_polled_at=now,
                                                                               predicted_wait_s=wait_s))
        session.commit()
        return decision_out(values(decision), values(run), settings, None, len(ahead) + 1, wait_s)
    then = "then room opened" if verdict.mode == "connect" else "then the policy decided it anew"
    return _leave(session, entry, run, verdict, now, policy, settings, f"{waited}; {then}.")


def _leave(session: Session, entry: Row[Any], run: Run, verdict: rules.Verdict, now: datetime, policy: Policy,
           settings: RouterSettings, note: str) -> DecisionOut:
    """The run leaves the queue with the verdict: its run and decision rows updated, its queue row gone, if it
    is still queued (a conditional update: whoever checks it at the same time finds it decided). A run that
    leaves for standalone is sized as any standalone decision is, by the request it queued with."""
    connect = verdict.mode == "connect"
    sized = (sizing.size(resources(DecisionRequest.model_validate(entry.request)),
                         usage(session.get(App, run.app_id), policy), policy)
             if verdict.mode == "standalone" else None)
    reasons = [*rules.reasons_json(verdict),
               {"rule": "queue", "metric": "queued_s", "threshold": None, "message": note,
                "observed": round((now - as_utc(entry.enqueued_at)).total_seconds(), 1)}]
    left = session.execute(update(Run).where(Run.run_id == run.run_id, Run.status == "queued")
                           .values(status="decided", mode=verdict.mode, created_at=now,
                                   server_id=verdict.server_id if connect else None,
                                   predicted_cores=verdict.predicted_cores if connect else 0.0,
                                   **sized_columns(sized))
                           .execution_options(synchronize_session=False))
    if not isinstance(left, CursorResult):  # an UPDATE's result: its rowcount says whether it took the run
        raise TypeError(f"an UPDATE gave {type(left).__name__}, not a CursorResult")
    if left.rowcount == 1:
        session.execute(update(Decision).where(Decision.run_id == run.run_id)
                        .values(mode=verdict.mode,
                                rule=verdict.reasons[0].rule if verdict.reasons else "none", reasons=reasons,
                                created_at=now, policy_version=policy.full_version,
                                predictions=predictions_json(verdict),
                                sizing_reason=sized and sized.reason)
                        .execution_options(synchronize_session=False))
        if verdict.grants_retry:
            session.execute(update(App).where(App.app_id == run.app_id).values(retry_granted_at=now)
                            .execution_options(synchronize_session=False))
        session.execute(delete(AdmissionQueueEntry).where(AdmissionQueueEntry.id == entry.id))
    session.commit()
    session.expire_all()
    run = session.get_one(Run, run.run_id)
    decision = session.scalars(select(Decision).where(Decision.run_id == run.run_id)).one()
    return _stored(session, decision, run, settings, verdict.connect_url if connect else None)


def _stored(session: Session, decision: Decision, run: Run, settings: RouterSettings,
            connect_url: str | None = None) -> DecisionOut:
    """A decision as stored, with its server's Connect URL."""
    if connect_url is None and run.server_id:
        server = session.get(Server, run.server_id)
        connect_url = server.connect_url if server is not None else None
    return decision_out(values(decision), values(run), settings, connect_url)


class DecisionBatcher:
    """Makes the decisions that arrive while a batch is being stored together, in the next batch: one
    transaction and one commit for all of them instead of one each. Nothing waits on a timer: alone, a request
    is decided at once; under load, batches grow by themselves (up to max_batch).

    One per worker process, used from its event loop; the database work runs in a thread. One batch in flight
    per worker: a second one only made batches smaller (docs/benchmarks.md)."""

    # Loop turns without a new request that end the gathering of a batch (see _gather).
    QUIET_TURNS = 3

    def __init__(self, engine: Engine, policies: PolicyStore, settings: RouterSettings, max_batch: int = 64):
        self.engine, self.policies, self.settings, self.max_batch = engine, policies, settings, max_batch
        self._waiting: list[tuple[DecisionRequest, asyncio.Future[DecisionOut]]] = []
        self._drain_task: asyncio.Task[None] | None = None  # referenced: the loop keeps only weak references

    async def decide(self, request: DecisionRequest) -> DecisionOut:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[DecisionOut] = loop.create_future()
        self._waiting.append((request, future))
        if self._drain_task is None:
            self._drain_task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self._gather()
                batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
                requests = [request for request, _ in batch]
                try:
                    results = await run_in_threadpool(self._decide, requests)
                except Exception as exc:  # noqa: BLE001 - the database failed the batch
                    if len(batch) == 1 or (db.is_transient(exc) and not db.lost_a_race(exc)):
                        # The database is away or too slow: each on its own would wait as long, one after
                        # another.
                        results = [exc] * len(batch)
                    else:  # one request's failure must not be its neighbours': each is decided on its own
                        log.warning("a batch of %d decisions failed (%s); deciding each on its own",
                                    len(batch), str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                        results = await run_in_threadpool(self._decide_each, requests)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the client went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._drain_task = None

    async def _gather(self) -> None:
        """Lets the requests already received join the batch before it is cut. A request reaches decide() a
        few event-loop turns after its bytes arrive (body, dependencies), so without this wait a batch would
        hold only those already there and the others would wait a whole batch for the next (figures in
        docs/benchmarks.md). Alone, a request waits three loop turns, microseconds."""
        quiet = 0
        while quiet < self.QUIET_TURNS and len(self._waiting) < self.max_batch:
            before = len(self._waiting)
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self._waiting) == before else 0

    def _decide(self, requests: list[DecisionRequest]) -> list[DecisionOut | Exception]:
        with self.engine.begin() as connection:
            return make_decisions(connection, requests, self.policies.get(), self.settings)

    def _decide_each(self, requests: list[DecisionRequest]) -> list[DecisionOut | Exception]:
        results: list[DecisionOut | Exception] = []
        for request in requests:
            try:
                [result] = self._decide([request])
            except Exception as exc:  # this request's own failure, for it alone
                if db.is_transient(exc):  # answered 503; not a bug to trace
                    log.warning("no decision for app %s: %s", request.app_id, str(exc).splitlines()[0])
                else:
                    log.exception("no decision for app %s", request.app_id)
                result = exc
            results.append(result)
        return results
