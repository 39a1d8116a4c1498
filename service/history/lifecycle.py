"""A run's lifecycle (started, succeeded, failed, cancelled, fell back) and the per-app aggregates it keeps current."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from client_runtime.protocol import SETTLED_BY
from service.db.models import (
    RECENT_RUNS_KEPT,
    AdmissionQueueEntry,
    App,
    Heartbeat,
    Run,
    Server,
    StageMetric,
    utcnow,
)
from service.errors import Conflict, UnknownRun
from service.history.apps import lock_app

# cancelled: stopped from outside (SIGTERM, Ctrl-C, Airflow's on_kill or execution_timeout).
TERMINAL = ("succeeded", "failed", "cancelled")


def run_duration_ms(run: Run) -> int | None:
    """A run's wall time: from its start to its end as the launcher reported them, else from its first stage
    to its last; None when neither is known."""
    if run.started_at and run.finished_at:
        return int((run.finished_at - run.started_at).total_seconds() * 1000)
    if run.first_stage_at and run.last_stage_at:
        return int((run.last_stage_at - run.first_stage_at).total_seconds() * 1000)
    return None


def run_startup_ms(run: Run) -> int | None:
    """A run's start-up: from the launcher's "started" (just before spark-submit or the Connect client starts) to
    its first stage; None when either is unknown. Never below zero (Spark's clock and the router's may differ)."""
    if run.started_at is None or run.first_stage_at is None:
        return None
    return max(int((run.first_stage_at - run.started_at).total_seconds() * 1000), 0)


def run_summary(run: Run) -> dict:
    """What the policy keeps of a successful run (routing.facts.RunSummary fields; and for sizing, the
    executors it was given)."""
    return {"run_id": run.run_id, "task_time_ms": run.executor_run_time_ms,
            "shuffle_write_bytes": run.shuffle_write_bytes, "disk_spilled_bytes": run.disk_spilled_bytes,
            "peak_execution_memory_bytes": run.peak_execution_memory_bytes, "duration_ms": run_duration_ms(run) or 0,
            "mode": run.mode if run.mode in ("connect", "standalone") else None, "startup_ms": run_startup_ms(run),
            "executors": run.executors_held, "executor_core_s": run.executor_core_s,
            "executor_memory": run.executor_memory, "executor_cores": run.executor_cores}


def measure_executors(session: Session, run: Run) -> None:
    """Set a finished run's executors held and executor core-seconds (Run.executor_core_s).

    Connect: the run has no executors of its own; its cost is the shared server's cores it kept busy, its task
    time. Standalone: its application's listener reports (heartbeat every few seconds) the executors it holds;
    the most it held, and their cores times the application's life (its Spark start, else the run's start, to
    the run's end), as a cluster manager counts granted cores. Unknown (None) without heartbeats, or in local
    mode (no executors)."""
    if run.mode == "connect":
        run.executors_held, run.executor_cores_held = None, None
        run.executor_core_s = round(run.executor_run_time_ms / 1000, 3)
        return
    if run.mode != "standalone" or run.finished_at is None:
        return
    # A standalone listener reports under its Spark application's id (spark.router.listener.serverId unset).
    spark_app_id = session.scalar(select(StageMetric.spark_app_id).where(StageMetric.run_id == run.run_id).limit(1))
    if spark_app_id is None:
        return
    executors, cores = session.execute(select(func.max(Heartbeat.executors), func.max(Heartbeat.executor_cores))
                                       .where(Heartbeat.server_id == spark_app_id)).one()
    if not cores:
        return
    spark_started = session.scalar(select(Server.started_at).where(Server.server_id == spark_app_id))
    since = max(spark_started or run.started_at or run.finished_at, run.started_at or run.finished_at)
    life_s = max((run.finished_at - since).total_seconds(), 0.0)
    run.executors_held, run.executor_cores_held = executors, cores
    run.executor_core_s = round(cores * life_s, 3)


def remember_success(session: Session, app: App, run: Run) -> None:
    """Put (or refresh) the run in the app's window of recent successful runs, with its executors measured."""
    measure_executors(session, run)
    kept = [entry for entry in (app.recent_runs or []) if entry["run_id"] != run.run_id]
    kept.append(run_summary(run))
    app.recent_runs = kept[-RECENT_RUNS_KEPT:]  # a new list, so the JSON column is written


def refresh_late_metrics(session: Session, run_ids: list[str]) -> None:
    """Stages of a run that already succeeded arrived late: bring its summary up to date."""
    for run in session.scalars(select(Run).where(Run.run_id.in_(run_ids), Run.status == "succeeded")):
        app = lock_app(session, run.app_id)
        if app is not None and any(entry["run_id"] == run.run_id for entry in app.recent_runs or []):
            remember_success(session, app, run)


def lock_run_and_app(session: Session, run_id: str) -> tuple[Run, App]:
    """The run's row and its app's, locked until commit: the app first, then the run, as ingest and decisions
    lock them (apps, then runs), so that they wait for each other instead of deadlocking."""
    app_id = session.scalar(select(Run.app_id).where(Run.run_id == run_id))  # a run never changes app
    if app_id is None:
        raise UnknownRun(run_id)
    app = lock_app(session, app_id)
    run = session.scalars(select(Run).where(Run.run_id == run_id).with_for_update()).one()
    return run, app


def report(session: Session, run_id: str, event: str, failure_kind: str | None = None,
           message: str | None = None, exit_code: int | None = None) -> Run:
    """Apply a lifecycle event. Reporting the same final state twice is harmless; contradicting it is not.

    decided -> running -> succeeded | failed | cancelled; queued -> cancelled. A failed Connect run that the launcher reruns
    standalone is failed with failure_kind "pending" until the rerun ends, which settles it (see _settle)."""
    run, app = lock_run_and_app(session, run_id)
    now = utcnow()
    if run.status in TERMINAL:
        if event == run.status or event == "started":
            return run
        raise Conflict(f"run {run_id} already {run.status}; cannot mark it {event}")
    if run.status == "queued":  # waiting in the admission queue: it can only be cancelled, which takes it out
        if event != "cancelled":
            raise Conflict(f"run {run_id} waits in the admission queue; it cannot be {event} before it is admitted "
                           f"(GET /api/v1/runs/{run_id}/admission)")
        session.execute(delete(AdmissionQueueEntry).where(AdmissionQueueEntry.run_id == run_id))
    if failure_kind == "pending" and run.mode != "connect":
        raise Conflict(f"run {run_id} ran {run.mode}: only a Connect run waits for a standalone rerun to settle "
                       f"its failure")
    # The Connect run this one reruns: the same app, whose row is locked already, so the order holds.
    replaced = (session.scalars(select(Run).where(Run.run_id == run.fallback_of).with_for_update()).one_or_none()
                if run.fallback_of and event in TERMINAL else None)
    if event == "started":
        run.status, run.started_at = "running", run.started_at or now
    elif event == "succeeded":
        run.status, run.finished_at, run.exit_code = "succeeded", now, exit_code
        run.started_at = run.started_at or run.created_at
        if run.mode == "connect":
            app.connect_failure_streak, app.last_connect_success_at, app.retry_granted_at = 0, now, None
        remember_success(session, app, run)
    elif event == "failed":
        if failure_kind is None:
            raise Conflict("a failed run needs failure_kind: connect, app or pending")
        run.status, run.finished_at, run.exit_code = "failed", now, exit_code
        run.failure_kind, run.failure_message = failure_kind, message
        if run.mode == "connect" and failure_kind == "connect":
            count_connect_failure(app, now)
    elif event == "cancelled":
        # Stopped from outside: neither the app's failure nor Connect's, so no streak and no failure counts.
        run.status, run.finished_at, run.exit_code = "cancelled", now, exit_code
        run.failure_message = message
    if replaced is not None:
        _settle(app, replaced, event)
    session.commit()
    return run


def count_connect_failure(app: App, now) -> None:
    """A Connect run failed because of Connect: one more in the app's streak (the app's row is locked)."""
    app.connect_failure_streak += 1
    app.last_connect_failure_at = now


def _settle(app: App, connect_run: Run, rerun_event: str) -> None:
    """Classify a Connect failure by the outcome of its standalone rerun. Only a "pending" failure is settled:
    one the launcher already classified (connect or app, an older launcher) keeps its kind and its count."""
    if connect_run.status != "failed" or connect_run.failure_kind != "pending":
        return
    connect_run.failure_kind = SETTLED_BY[rerun_event]  # the protocol's rule, as the launcher applies it
    if connect_run.failure_kind == "connect":
        count_connect_failure(app, connect_run.finished_at or utcnow())
