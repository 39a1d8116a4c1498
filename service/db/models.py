"""Database tables: apps, their runs, the stage metrics the listener sends, Connect servers and heartbeats."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import ClassVar, overload

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from client_runtime import protocol

# Spark's task metrics as the listener reports them per stage attempt (docs/ingest-protocol.md), and how a run
# combines its stages' values: the one list behind the tables, the API schemas and ingest.
SUMMED_METRICS = (
    "num_tasks", "num_failed_tasks", "num_oom_failed_tasks",
    "executor_run_time_ms", "executor_cpu_time_ms", "jvm_gc_time_ms",
    "shuffle_read_bytes", "shuffle_read_records", "shuffle_write_bytes", "shuffle_write_records",
    "memory_spilled_bytes", "disk_spilled_bytes",
    "input_bytes", "input_records", "output_bytes", "output_records",
)
MAX_METRICS = ("peak_execution_memory_bytes", "max_task_duration_ms")  # a run's value: the largest stage's
METRICS = SUMMED_METRICS + MAX_METRICS
# Statuses of a run that was decided and has not reported its end (see Run.status).
IN_FLIGHT = ("decided", "running")
# An app keeps its last successful runs' summaries for the policy's history window, at most this many.
RECENT_RUNS_KEPT = 100


BIGINT_MAX = 2**63 - 1


def safe_sum(session: Session, column):
    """sum() over a BigInteger column that never overflows: PostgreSQL sums bigints as numeric; SQLite's sum()
    fails past 2^63 ("integer overflow"), its total() sums as a float (exact below 2^53)."""
    return (func.sum if session.get_bind().dialect.name == "postgresql" else func.total)(column)


def as_bigint(value) -> int:
    """A sum as an int that stops at 2^63 - 1, as a run's own sums do: on both databases the same, and within
    what clients read as a 64-bit integer."""
    return min(int(value or 0), BIGINT_MAX)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def as_utc(value: datetime | str) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | str | None) -> datetime | None: ...
def as_utc(value: datetime | str | None) -> datetime | None:
    """A timestamp as an aware UTC datetime: SQLite and SQL functions give naive ones (or ISO text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def from_epoch_ms(value: int | None) -> datetime | None:
    # Exact to the millisecond (a float of seconds is not, far from 1970).
    return None if value is None else EPOCH + timedelta(milliseconds=value)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database (SQLite drops the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return as_utc(value)

    def process_result_value(self, value, dialect):
        return as_utc(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {datetime: UTCDateTime}
    # Every model here maps one table (DeclarativeBase says only "a FromClause"): Core's insert and update
    # take it as such.
    __table__: ClassVar[Table]


def _metric() -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class MetricColumns:
    """Spark's task metrics (METRICS), summed (or maxed) over stages; shared by runs and stage attempts.
    Spelled out (not set in a loop over METRICS) so that the type checker knows them."""

    num_tasks: Mapped[int] = _metric()
    num_failed_tasks: Mapped[int] = _metric()
    num_oom_failed_tasks: Mapped[int] = _metric()  # of those, the tasks that ran out of memory
    executor_run_time_ms: Mapped[int] = _metric()
    executor_cpu_time_ms: Mapped[int] = _metric()
    jvm_gc_time_ms: Mapped[int] = _metric()
    shuffle_read_bytes: Mapped[int] = _metric()
    shuffle_read_records: Mapped[int] = _metric()
    shuffle_write_bytes: Mapped[int] = _metric()
    shuffle_write_records: Mapped[int] = _metric()
    memory_spilled_bytes: Mapped[int] = _metric()
    disk_spilled_bytes: Mapped[int] = _metric()
    input_bytes: Mapped[int] = _metric()
    input_records: Mapped[int] = _metric()
    output_bytes: Mapped[int] = _metric()
    output_records: Mapped[int] = _metric()
    peak_execution_memory_bytes: Mapped[int] = _metric()
    max_task_duration_ms: Mapped[int] = _metric()


if set(MetricColumns.__annotations__) != set(METRICS):
    raise RuntimeError("MetricColumns and METRICS name different metrics: keep them the same")


class App(Base):
    """A recurring client application, known by its stable id (`spark.router.appId`), with the aggregates
    the policy decides from. They are updated as runs complete, so a decision never scans raw history."""

    __tablename__ = "apps"

    app_id: Mapped[str] = mapped_column(String(protocol.APP_ID_MAX), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by an admin.
    pinned_mode: Mapped[protocol.Mode | None] = mapped_column(String(20))
    pin_reason: Mapped[str | None] = mapped_column(String(500))
    pinned_at: Mapped[datetime | None] = mapped_column()
    # With pinned_mode connect: the Connect server of the pool its runs go to (None: the least loaded).
    pinned_server_id: Mapped[str | None] = mapped_column(String(200))
    # Set by `spark-router check`: what cannot work on Connect, or None when nothing was found.
    connect_incompatible: Mapped[str | None] = mapped_column(Text)
    compat_checked_at: Mapped[datetime | None] = mapped_column()
    # Kept up to date by run completions.
    connect_failure_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_connect_failure_at: Mapped[datetime | None] = mapped_column()
    last_connect_success_at: Mapped[datetime | None] = mapped_column()
    retry_granted_at: Mapped[datetime | None] = mapped_column()
    # When a task of the app last ran out of memory on a Connect server (ingest sets it, whatever the run's
    # end).
    last_connect_oom_at: Mapped[datetime | None] = mapped_column()
    # The last successful runs' summaries (rules.RunSummary fields + run_id), newest last, RECENT_RUNS_KEPT at
    # most.
    recent_runs: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")


class Run(MetricColumns, Base):
    """One execution of an app, on Connect or standalone, with its stage metrics summed up."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(protocol.RUN_ID_MAX), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id"), index=True)
    mode: Mapped[str] = mapped_column(String(20), default="unknown")  # connect | standalone | unknown
    # decided -> running -> succeeded | failed | cancelled, as the launcher reports (cancelled: stopped from
    # outside, neither the app's failure nor Connect's); queued -> decided when a run waited in the admission
    # queue (AdmissionQueueEntry) or queued -> cancelled; a run seen only through the listener
    # (no decision, no reports: a notebook, the warm-up query) is "observed" and never counts as in flight.
    status: Mapped[str] = mapped_column(String(20), default="observed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # connect | app, or for a failed Connect run rerun standalone: pending until the rerun ends, then connect
    # (the rerun succeeded), app (it failed too) or unknown (it was cancelled). See history/lifecycle.py.
    failure_kind: Mapped[str | None] = mapped_column(String(20))
    failure_message: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    # A failed Connect run and its standalone rerun (history/lifecycle.py) point at each other.
    fallback_of: Mapped[str | None] = mapped_column(String(protocol.RUN_ID_MAX))
    fell_back_to: Mapped[str | None] = mapped_column(String(protocol.RUN_ID_MAX))
    # A standalone run that ran out of memory is rerun once with more (routing/sizing.py): the failed run and
    # its rerun point at each other.
    oom_rerun_of: Mapped[str | None] = mapped_column(String(protocol.RUN_ID_MAX))
    oom_rerun_to: Mapped[str | None] = mapped_column(String(protocol.RUN_ID_MAX))
    # The resources a standalone run was given (sized from its history, or as asked); None: Spark's default,
    # and on Connect runs (the server's executors).
    executor_memory: Mapped[int | None] = mapped_column(BigInteger)
    executor_cores: Mapped[int | None] = mapped_column(Integer)
    num_executors: Mapped[int | None] = mapped_column(Integer)
    driver_memory: Mapped[int | None] = mapped_column(BigInteger)
    predicted_cores: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # The Connect server a Connect run was placed on; None on runs decided before the pool (the default
    # server's).
    server_id: Mapped[str | None] = mapped_column(String(200))
    dag_id: Mapped[str | None] = mapped_column(String(250))
    task_id: Mapped[str | None] = mapped_column(String(250))
    airflow_run_id: Mapped[str | None] = mapped_column(String(250))
    try_number: Mapped[int | None] = mapped_column(Integer)
    first_stage_at: Mapped[datetime | None] = mapped_column()
    last_stage_at: Mapped[datetime | None] = mapped_column()
    num_stages: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    num_failed_stages: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Measured when the run succeeds (history/lifecycle.py: measure_executors). Standalone: the most executors
    # (and their cores) its application held, by its listener's heartbeats, and cores × the application's
    # life; Connect: no executors of its own, and the shared server's cores it kept busy (its task time).
    executors_held: Mapped[int | None] = mapped_column(Integer)
    executor_cores_held: Mapped[int | None] = mapped_column(Integer)
    executor_core_s: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_runs_app_created", "app_id", "created_at"),
                      Index("ix_runs_mode_status", "mode", "status"),
                      Index("ix_runs_mode_finished", "mode", "finished_at"))  # the cluster's recent start-ups


class Decision(Base):
    """Why a run goes where it goes: the verdict of the policy, with its reasons and the request."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), unique=True)
    app_id: Mapped[str] = mapped_column(String(protocol.APP_ID_MAX), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    requested_mode: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str] = mapped_column(String(50))  # the rule that decided
    reasons: Mapped[list] = mapped_column(JSON)
    policy_version: Mapped[str] = mapped_column(String(100))
    request: Mapped[dict] = mapped_column(JSON)
    # What the router predicted for the run in each mode (routing/predict.py: Predictions.as_json); None: no
    # prediction (an app never seen, a fallback). The run's actual figures are on its row.
    predictions: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # A standalone decision's sizing (the resources it gave are the run's): why, in one sentence.
    sizing_reason: Mapped[str | None] = mapped_column(Text)


class AdmissionQueueEntry(Base):
    """A run waiting for room on a Connect server (its run's status is "queued"), first come first served.
    The row goes when the run leaves the queue: admitted, sent standalone, or cancelled."""

    __tablename__ = "admission_queue"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), unique=True)
    app_id: Mapped[str] = mapped_column(String(protocol.APP_ID_MAX))
    enqueued_at: Mapped[datetime] = mapped_column()
    deadline_at: Mapped[datetime] = mapped_column()  # then it runs standalone (SPARK_ROUTER_QUEUE_MAX_WAIT_S)
    last_polled_at: Mapped[datetime] = mapped_column()  # its client's last long poll (a silent one gave up)
    predicted_cores: Mapped[float] = mapped_column(Float, default=0.0)
    expected_s: Mapped[float | None] = mapped_column(Float)  # its app's recent wall time on Connect, if known
    predicted_wait_s: Mapped[float | None] = mapped_column(Float)  # as last predicted
    request: Mapped[dict] = mapped_column(JSON)  # the decision request, decided again at admission


class StageMetric(MetricColumns, Base):
    """One completed stage attempt as the listener reported it; unique per Spark application."""

    __tablename__ = "stage_metrics"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    spark_app_id: Mapped[str] = mapped_column(String(200))
    stage_id: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    server_id: Mapped[str] = mapped_column(String(200))
    app_id: Mapped[str | None] = mapped_column(String(protocol.APP_ID_MAX))
    run_id: Mapped[str | None] = mapped_column(String(protocol.RUN_ID_MAX), index=True)
    connect_session_id: Mapped[str | None] = mapped_column(String(protocol.CONNECT_SESSION_ID_MAX))
    connect_operation_id: Mapped[str | None] = mapped_column(String(protocol.CONNECT_OPERATION_ID_MAX))
    connect_user_id: Mapped[str | None] = mapped_column(String(protocol.CONNECT_USER_ID_MAX))
    job_id: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(protocol.STAGE_NAME_MAX))
    status: Mapped[str] = mapped_column(String(20))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    submission_time: Mapped[datetime | None] = mapped_column()
    completion_time: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    median_task_duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("spark_app_id", "stage_id", "attempt", name="uq_stage_attempt"),)


class Server(Base):
    """A Spark application running our listener (the shared Connect server, or a standalone run)."""

    __tablename__ = "servers"

    server_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    spark_app_id: Mapped[str] = mapped_column(String(200))
    spark_version: Mapped[str | None] = mapped_column(String(40))
    started_at: Mapped[datetime | None] = mapped_column()
    ui_url: Mapped[str | None] = mapped_column(String(300))
    connect_url: Mapped[str | None] = mapped_column(String(300))  # where clients connect (Connect servers)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column()
    draining: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    unattributed_stages: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


# What a heartbeat row keeps of the listener's report, besides its server and times.
HEARTBEAT_FIELDS = ("active_sessions", "active_operations", "running_jobs", "queue_size", "spool_files",
                    "spool_bytes", "dropped_records", "unattributed_stages", "dead_letter_files",
                    "auth_failures", "executors", "executor_cores", "max_executors")


class Heartbeat(Base):
    """A listener's periodic report of what runs on its Spark application."""

    __tablename__ = "heartbeats"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.server_id"))
    spark_app_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    active_sessions: Mapped[int] = mapped_column(Integer, default=0)
    active_operations: Mapped[int] = mapped_column(Integer, default=0)
    running_jobs: Mapped[int] = mapped_column(Integer, default=0)
    queue_size: Mapped[int] = mapped_column(Integer, default=0)
    spool_files: Mapped[int] = mapped_column(Integer, default=0)
    spool_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped_records: Mapped[int] = mapped_column(BigInteger, default=0)
    unattributed_stages: Mapped[int] = mapped_column(BigInteger, default=0)
    dead_letter_files: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    auth_failures: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # What the Spark application holds: live executors and their cores, and its dynamic-allocation ceiling.
    executors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    executor_cores: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_executors: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_heartbeats_server_received", "server_id", "received_at"),
                      Index("ix_heartbeats_received_at", "received_at"))  # pruning past the retention


class Restart(Base):
    """One attempt of `spark-router restart-server`: drained, waited for idle, restarted (or skipped)."""

    __tablename__ = "restarts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    server_id: Mapped[str] = mapped_column(String(200), index=True)
    backend: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime] = mapped_column()
    idle_at: Mapped[datetime | None] = mapped_column()      # when no client work was left (None: never)
    restarted_at: Mapped[datetime | None] = mapped_column()
    ready_at: Mapped[datetime | None] = mapped_column()     # answered a warm-up query again
    finished_at: Mapped[datetime] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(20))        # restarted | forced | skipped | failed
    waited_s: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)


class QuarantinedRecord(Base):
    """A stage record a listener sent that cannot be stored (a NUL in its text, an id too long, a number out
    of range...), kept aside with the reason; the rest of its batch was stored. A re-sent batch adds nothing:
    a record is kept once per Spark application (by the digest of its JSON)."""

    __tablename__ = "quarantined_records"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    server_id: Mapped[str] = mapped_column(String(200))
    spark_app_id: Mapped[str] = mapped_column(String(200))
    batch_id: Mapped[str | None] = mapped_column(String(100))
    # when the record's own app id could be read
    app_id: Mapped[str | None] = mapped_column(String(protocol.APP_ID_MAX))
    run_id: Mapped[str | None] = mapped_column(String(protocol.RUN_ID_MAX))
    reason: Mapped[str] = mapped_column(Text)
    # the record as JSON (escaped: storable whatever it holds), cut short
    record: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the whole record's JSON

    __table_args__ = (UniqueConstraint("spark_app_id", "digest", name="uq_quarantined_record"),)
