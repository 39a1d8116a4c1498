"""Storing the stage attempts the listener sends, each exactly once, and summing them into their runs."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from client_runtime import protocol
from service.db import engine as db
from service.db.models import (
    MAX_METRICS,
    METRICS,
    SUMMED_METRICS,
    Run,
    Server,
    StageMetric,
    as_utc,
    from_epoch_ms,
    utcnow,
)
from service.errors import Unavailable
from service.history import lifecycle
from service.history.apps import dialect_insert, mark_seen, note_connect_out_of_memory
from service.ingest.quarantine import quarantine
from service.schemas import INT64_MAX, IngestResult, StageBatch, StageRecord

log = logging.getLogger(__name__)


def _least(session: Session):
    return func.least if session.get_bind().dialect.name == "postgresql" else func.min


def _greatest(session: Session):
    return func.greatest if session.get_bind().dialect.name == "postgresql" else func.max


def attribution_from_user_id(record: StageRecord) -> StageRecord:
    """An app that built its own Connect session carries no spark.router.* confs, but the launcher put its
    app and run into the Connect user id (``router:<app_id>:<run_id>``)."""
    attribution = protocol.attribution_of_user_id(record.connect_user_id) if record.app_id is None else None
    if attribution is None:
        # not such a user id, or its ids break the rule of ids: the stage stays unattributed
        return record
    app_id, run_id = attribution
    return record.model_copy(update={"app_id": app_id, "run_id": run_id})


def run_id_for(record: StageRecord, spark_app_id: str) -> str | None:
    """The run a stage belongs to. An app that sets no run id gets one run per Connect session
    (or per Spark application when standalone), so its stages are still kept together."""
    if record.app_id is None:
        return record.run_id
    if record.run_id:
        return record.run_id
    return f"auto-{record.connect_session_id or spark_app_id}"[:protocol.RUN_ID_MAX]


def _stage_row(batch: StageBatch, record: StageRecord) -> dict:
    row = record.model_dump(exclude={"submission_time_ms", "completion_time_ms"})
    row.update(
        spark_app_id=batch.spark_app_id,
        server_id=batch.server_id,
        run_id=run_id_for(record, batch.spark_app_id),
        name=(record.name or "")[:protocol.STAGE_NAME_MAX] or None,
        failure_reason=record.failure_reason[:protocol.FAILURE_REASON_MAX] if record.failure_reason else None,
        submission_time=from_epoch_ms(record.submission_time_ms),
        completion_time=from_epoch_ms(record.completion_time_ms),
    )
    return row


def ingest_stages(session: Session, batch: StageBatch, quarantine_retention: timedelta) -> IngestResult:
    """Store a batch in one transaction. A stage attempt already stored (same Spark app id, stage id
    and attempt) is skipped, so re-sent batches never double count. The records that cannot be stored (set
    aside when the batch was validated, and those naming another app's run) go to the quarantine, with their
    reasons.

    Rows are written in one order, whatever the order of the batch: stage attempts by their key, apps and runs
    by their ids, so that concurrent batches holding the same stages wait for each other instead of
    deadlocking."""
    records = [attribution_from_user_id(record) for record in batch.stages]
    foreign, new_runs = _runs_of_other_apps(session, records, batch.spark_app_id)
    batch.set_aside(foreign)
    records = [record for i, record in enumerate(records) if i not in foreign]
    quarantined = len(batch.quarantined)
    if quarantined:
        quarantine(session, batch, quarantine_retention)
    if not records:
        session.commit()
        return IngestResult(accepted=0, duplicates=0, unattributed=0, quarantined=quarantined)
    rows = sorted((_stage_row(batch, record) for record in records),
                  key=lambda row: (row["stage_id"], row["attempt"]))
    per_run = _insert_new_stages(session, rows)  # what was new, summed per (app, run)
    accepted = sum(run["num_stages"] for run in per_run)
    unattributed = sum(run["num_stages"] for run in per_run if run["app_id"] is None)
    attributed = sorted((run for run in per_run if run["app_id"] is not None), key=lambda run: run["run_id"])

    now = utcnow()
    if attributed:
        mark_seen(session, [run["app_id"] for run in attributed])
        session.execute(dialect_insert(session, Run).on_conflict_do_nothing(index_elements=["run_id"]),
                        [{"run_id": run["run_id"], "app_id": run["app_id"], "created_at": now,
                          "mode": "connect" if run["connect"] else "standalone"} for run in attributed])
        _check_owners(session, [run for run in attributed if run["run_id"] in new_runs])
        _add_to_runs(session, attributed)
        lifecycle.refresh_late_metrics(session, [run["run_id"] for run in attributed])
        # Seen as the stages arrive, not when the run ends: a run that failed has no summary to keep it.
        out_of_memory = [run for run in attributed if run["connect"] and run["num_oom_failed_tasks"]]
        if out_of_memory:
            note_connect_out_of_memory(session, [run["app_id"] for run in out_of_memory], now)
    if unattributed:
        _count_unattributed(session, batch, unattributed)
    session.commit()
    if unattributed:
        log.info("batch %s from %s: %d stage(s) without spark.router.appId kept as unattributed",
                 batch.batch_id, batch.server_id, unattributed)
    return IngestResult(accepted=accepted, duplicates=len(rows) - accepted, unattributed=unattributed,
                        quarantined=quarantined)


def _runs_of_other_apps(session: Session, records: list[StageRecord], spark_app_id: str
                        ) -> tuple[dict[int, str], set[str]]:
    """The records (by index) that name a run of another app, with the reason; and the runs named that do not
    exist yet. A run belongs to one app: the app it was decided for, or the first to send stages for it (in a
    batch, the first record naming it), so a record naming app B with a run of app A is set aside, never added
    to A's run."""
    claims = [(i, record.app_id, run_id) for i, record in enumerate(records)
              if record.app_id is not None and (run_id := run_id_for(record, spark_app_id)) is not None]
    if not claims:
        return {}, set()
    owners = dict(session.execute(select(Run.run_id, Run.app_id)
                                  .where(Run.run_id.in_(sorted({run_id for _, _, run_id in claims})))).all())
    new_runs = {run_id for _, _, run_id in claims} - set(owners)
    reasons: dict[int, str] = {}
    for i, app_id, run_id in claims:
        owner = owners.setdefault(run_id, app_id)
        if owner != app_id:
            reasons[i] = (f"run_id: run {run_id!r} belongs to app {owner!r}, not {app_id!r} "
                          "(a run belongs to one app)")
    return reasons, new_runs


def _check_owners(session: Session, per_run: list[dict]) -> None:
    """After the batch's new runs were created: a run that a concurrent batch created for another app in the
    meantime (both saw no run) makes this batch a lost race, answered 503: sent again, its records naming that
    run are quarantined by _runs_of_other_apps."""
    if not per_run:
        return
    claimed = {run["run_id"]: run["app_id"] for run in per_run}
    for run_id, owner in session.execute(select(Run.run_id,
                                                Run.app_id).where(Run.run_id.in_(sorted(claimed)))):
        if owner != claimed[run_id]:
            raise Unavailable(f"run {run_id!r} was created for app {owner!r} by a concurrent batch; retry")


_COLUMNS = [c.name for c in StageMetric.__table__.columns if c.name != "id"]


def _per_run_sums(source: str, dialect: str) -> str:
    """SQL that sums stage attempts (from `source`) per (app, run), as the run totals need them. Sums never
    overflow: PostgreSQL sums bigints as numeric; SQLite's sum() fails past 2^63, its total() does not."""
    total = "sum" if dialect == "postgresql" else "total"
    metrics = ", ".join([f"{total}({name}) AS {name}" for name in SUMMED_METRICS]
                        + [f"max({name}) AS {name}" for name in MAX_METRICS])
    return (f"SELECT app_id, run_id, count(*) AS num_stages, "
            f"sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS num_failed_stages, "
            f"max(CASE WHEN connect_operation_id IS NOT NULL THEN 1 ELSE 0 END) AS connect, "
            f"min(submission_time) AS first_stage_at, max(completion_time) AS last_stage_at, {metrics} "
            f"FROM {source} GROUP BY app_id, run_id")


def _insert_new_stages(session: Session, rows: list[dict]) -> list[dict]:
    """Insert the stage attempts not stored yet (duplicates are skipped) and return them summed per run."""
    if session.get_bind().dialect.name == "postgresql":
        return _copy_new_stages(session, rows)
    table = StageMetric.__table__
    stmt = (dialect_insert(session, StageMetric)
            .on_conflict_do_nothing(index_elements=["spark_app_id", "stage_id", "attempt"])
            .returning(table.c.id))
    new_ids = [row.id for row in session.execute(stmt, rows)]
    if not new_ids:
        return []
    source = f"(SELECT * FROM stage_metrics WHERE id IN ({', '.join(map(str, new_ids))})) AS new"
    return _typed(session.execute(text(_per_run_sums(source, "sqlite"))).mappings().all())


def _copy_new_stages(session: Session, rows: list[dict]) -> list[dict]:
    """PostgreSQL: COPY the batch into a temporary table, move the new attempts over (in key order) and sum
    them in the same statement. A multi-row INSERT would carry 40 parameters per row, which the driver
    rewrites on every batch (several times slower). The driver's errors come out as SQLAlchemy's, as from any
    statement: a deadlock or a timeout is a 503, and a lost connection is dropped from the pool."""
    connection = session.connection()
    names = ", ".join(_COLUMNS)
    now = utcnow()
    with db.driver_errors(connection, "COPY incoming_stages"):
        driver = connection.connection.dbapi_connection
        assert driver is not None, "a connection in use has its driver's connection"
        cursor = driver.cursor()
        # Per connection, made once: no constraints, emptied at every commit.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS incoming_stages ON COMMIT DELETE ROWS AS "
                       f"SELECT {names} FROM stage_metrics WITH NO DATA")
        with cursor.copy(f"COPY incoming_stages ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([now if name == "ingested_at" else row.get(name) for name in _COLUMNS])
        cursor.execute(f"WITH new AS (INSERT INTO stage_metrics ({names}) SELECT {names} FROM "
                       f"incoming_stages ORDER BY stage_id, attempt ON CONFLICT (spark_app_id, stage_id, "
                       f"attempt) DO NOTHING RETURNING *) {_per_run_sums('new', 'postgresql')}")
        columns = [column[0] for column in cursor.description]  # DB-API: each column's name comes first
        summed = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        cursor.execute("TRUNCATE incoming_stages")  # the same transaction may ingest again (tests, replays)
    return _typed(summed)


def _typed(rows) -> list[dict]:
    """Sums as ints within a bigint (PostgreSQL sums bigints as numeric, SQLite's total() gives a float),
    timestamps as aware datetimes (SQLite gives text)."""
    out = []
    for row in rows:
        run = dict(row)
        for name in ("num_stages", "num_failed_stages", "connect", *METRICS):
            run[name] = min(int(run[name] or 0), INT64_MAX)
        for name in ("first_stage_at", "last_stage_at"):
            run[name] = as_utc(run[name])
        out.append(run)
    return out


def _add_to_runs(session: Session, per_run: list[dict]) -> None:
    """Add the new stages' sums to their runs: one UPDATE, executed for every run of the batch, in run id
    order so that concurrent batches lock run rows in the same order (no deadlocks). A sum stops at the
    bigint's largest value instead of overflowing."""
    least, greatest = _least(session), _greatest(session)
    run = Run.__table__.c  # Core, not ORM: an executemany UPDATE keyed by our own parameter

    def earliest(column, new):  # NULL-safe on both databases: SQLite's min(x, NULL) is NULL
        return least(func.coalesce(column, new), func.coalesce(new, column))

    def latest(column, new):
        return greatest(func.coalesce(column, new), func.coalesce(new, column))

    values: dict = {name: run[name] + least(bindparam(f"d_{name}"), INT64_MAX - run[name])
                    for name in SUMMED_METRICS}
    values.update({name: greatest(run[name], bindparam(f"d_{name}")) for name in MAX_METRICS})
    values["num_stages"] = run.num_stages + bindparam("d_num_stages")
    values["num_failed_stages"] = run.num_failed_stages + bindparam("d_num_failed_stages")
    values["first_stage_at"] = earliest(run.first_stage_at,
                                        bindparam("d_first_stage_at", type_=run.first_stage_at.type))
    values["last_stage_at"] = latest(run.last_stage_at,
                                     bindparam("d_last_stage_at", type_=run.last_stage_at.type))
    names = ("num_stages", "num_failed_stages", "first_stage_at", "last_stage_at", *METRICS)
    params = [{"b_run_id": summed["run_id"], **{f"d_{name}": summed[name] for name in names}}
              for summed in per_run]
    statement = update(Run.__table__).where(run.run_id == bindparam("b_run_id")).values(values)
    session.connection().execute(statement, params)


def _count_unattributed(session: Session, batch: StageBatch, count: int) -> None:
    stmt = dialect_insert(session, Server).values(
        server_id=batch.server_id, kind="unknown", spark_app_id=batch.spark_app_id,
        unattributed_stages=count, draining=False)
    stmt = stmt.on_conflict_do_update(
        index_elements=["server_id"],
        set_={"unattributed_stages": Server.unattributed_stages + count})
    session.execute(stmt)
