"""Storing what the listener sends: stage attempts exactly once, run totals, server heartbeats."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service import runs
from service.models import MAX_METRICS, SUMMED_METRICS, App, Heartbeat, Run, Server, StageMetric, utcnow
from service.schemas import HeartbeatIn, IngestResult, StageBatch, StageRecord

log = logging.getLogger(__name__)


def dialect_insert(session: Session, table):
    """INSERT with ON CONFLICT support, for the two databases we run on."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _least(session: Session):
    return func.least if session.get_bind().dialect.name == "postgresql" else func.min


def _greatest(session: Session):
    return func.greatest if session.get_bind().dialect.name == "postgresql" else func.max


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def attribution_from_user_id(record: StageRecord) -> StageRecord:
    """An app that built its own Connect session carries no spark.router.* confs, but the launcher put its
    app and run into the Connect user id (``router:<app_id>:<run_id>``)."""
    user = record.connect_user_id or ""
    if record.app_id is None and user.startswith("router:") and user.count(":") >= 2:
        _, app_id, run_id = user.split(":", 2)
        return record.model_copy(update={"app_id": app_id[:200], "run_id": run_id[:100]})
    return record


def run_id_for(record: StageRecord, spark_app_id: str) -> str | None:
    """The run a stage belongs to. An app that sets no run id gets one run per Connect session
    (or per Spark application when standalone), so its stages are still kept together."""
    if record.app_id is None:
        return record.run_id
    if record.run_id:
        return record.run_id
    return f"auto-{record.connect_session_id or spark_app_id}"[:100]


def _stage_row(batch: StageBatch, record: StageRecord) -> dict:
    row = record.model_dump(exclude={"submission_time_ms", "completion_time_ms"})
    row.update(
        spark_app_id=batch.spark_app_id,
        server_id=batch.server_id,
        run_id=run_id_for(record, batch.spark_app_id),
        name=(record.name or "")[:200] or None,
        failure_reason=record.failure_reason[:1000] if record.failure_reason else None,
        submission_time=_from_ms(record.submission_time_ms),
        completion_time=_from_ms(record.completion_time_ms),
    )
    return row


def ingest_stages(session: Session, batch: StageBatch) -> IngestResult:
    """Store a batch in one transaction. A stage attempt already stored (same Spark app id, stage id
    and attempt) is skipped, so re-sent batches never double count."""
    if not batch.stages:
        return IngestResult(accepted=0, duplicates=0, unattributed=0)
    rows = [_stage_row(batch, attribution_from_user_id(record)) for record in batch.stages]
    returned = StageMetric.__table__.c
    stmt = (dialect_insert(session, StageMetric)
            .on_conflict_do_nothing(index_elements=["spark_app_id", "stage_id", "attempt"])
            .returning(returned.app_id, returned.run_id, returned.status, returned.connect_operation_id,
                       returned.submission_time, returned.completion_time,
                       *[returned[name] for name in SUMMED_METRICS + MAX_METRICS]))
    inserted = session.execute(stmt, rows).all()

    per_run: dict[tuple[str, str], list] = defaultdict(list)
    unattributed = 0
    for row in inserted:
        if row.app_id is None:
            unattributed += 1
        else:
            per_run[(row.app_id, row.run_id)].append(row)

    now = utcnow()
    if per_run:
        app_ids = sorted({app_id for app_id, _ in per_run})
        session.execute(dialect_insert(session, App)
                        .on_conflict_do_update(index_elements=["app_id"], set_={"last_seen_at": now}),
                        [{"app_id": app_id, "created_at": now, "last_seen_at": now} for app_id in app_ids])
        session.execute(dialect_insert(session, Run).on_conflict_do_nothing(index_elements=["run_id"]),
                        [{"run_id": run_id, "app_id": app_id, "mode": _mode(stages), "created_at": now}
                         for (app_id, run_id), stages in sorted(per_run.items())])
        # Sorted, so that concurrent batches lock run rows in the same order (no deadlocks).
        for (app_id, run_id), stages in sorted(per_run.items()):
            _add_to_run(session, run_id, stages)
        runs.refresh_late_metrics(session, [run_id for _, run_id in per_run])
    if unattributed:
        _count_unattributed(session, batch, unattributed)
    session.commit()
    if unattributed:
        log.info("batch %s from %s: %d stage(s) without spark.router.appId kept as unattributed",
                 batch.batch_id, batch.server_id, unattributed)
    return IngestResult(accepted=len(inserted), duplicates=len(rows) - len(inserted), unattributed=unattributed)


def _mode(stages: list) -> str:
    return "connect" if any(stage.connect_operation_id for stage in stages) else "standalone"


def _add_to_run(session: Session, run_id: str, stages: list) -> None:
    least, greatest = _least(session), _greatest(session)
    values: dict = {name: getattr(Run, name) + sum(getattr(s, name) for s in stages) for name in SUMMED_METRICS}
    for name in MAX_METRICS:
        values[name] = greatest(getattr(Run, name), max(getattr(s, name) for s in stages))
    values["num_stages"] = Run.num_stages + len(stages)
    values["num_failed_stages"] = Run.num_failed_stages + sum(s.status == "failed" for s in stages)
    starts = [s.submission_time for s in stages if s.submission_time]
    ends = [s.completion_time for s in stages if s.completion_time]
    if starts:
        values["first_stage_at"] = least(func.coalesce(Run.first_stage_at, min(starts)), min(starts))
    if ends:
        values["last_stage_at"] = greatest(func.coalesce(Run.last_stage_at, max(ends)), max(ends))
    session.execute(update(Run).where(Run.run_id == run_id).values(values))


def _count_unattributed(session: Session, batch: StageBatch, count: int) -> None:
    stmt = dialect_insert(session, Server).values(
        server_id=batch.server_id, kind="unknown", spark_app_id=batch.spark_app_id,
        unattributed_stages=count, draining=False)
    stmt = stmt.on_conflict_do_update(
        index_elements=["server_id"],
        set_={"unattributed_stages": Server.unattributed_stages + count})
    session.execute(stmt)


def record_heartbeat(session: Session, beat: HeartbeatIn) -> None:
    now = utcnow()
    server = {"kind": beat.kind, "spark_app_id": beat.spark_app_id, "spark_version": beat.spark_version,
              "started_at": _from_ms(beat.start_time_ms), "ui_url": beat.ui_url, "last_heartbeat_at": now}
    stmt = dialect_insert(session, Server).values(server_id=beat.server_id, draining=False,
                                                  unattributed_stages=0, **server)
    session.execute(stmt.on_conflict_do_update(index_elements=["server_id"], set_=server))
    session.add(Heartbeat(
        server_id=beat.server_id, spark_app_id=beat.spark_app_id, received_at=now,
        sent_at=_from_ms(beat.sent_at_ms),
        **beat.model_dump(include={"active_sessions", "active_operations", "running_jobs", "queue_size",
                                   "spool_files", "spool_bytes", "dropped_records", "unattributed_stages"})))
    session.commit()
