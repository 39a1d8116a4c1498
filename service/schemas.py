"""Request and response bodies of the HTTP API (pydantic). Unknown fields are rejected, not ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

NonNegative = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageRecord(Strict):
    """One completed stage attempt, as the listener reports it (docs/ingest-protocol.md)."""

    app_id: str | None = Field(default=None, max_length=200)
    run_id: str | None = Field(default=None, max_length=100)
    connect_session_id: str | None = Field(default=None, max_length=100)
    connect_operation_id: str | None = Field(default=None, max_length=100)
    connect_user_id: str | None = Field(default=None, max_length=200)
    job_id: int | None = None
    stage_id: int = Field(ge=0)
    attempt: int = Field(ge=0)
    name: str | None = None
    status: Literal["succeeded", "failed"]
    failure_reason: str | None = None
    submission_time_ms: int | None = Field(default=None, ge=0)
    completion_time_ms: int | None = Field(default=None, ge=0)
    duration_ms: int | None = Field(default=None, ge=0)
    num_tasks: NonNegative = 0
    num_failed_tasks: NonNegative = 0
    executor_run_time_ms: NonNegative = 0
    executor_cpu_time_ms: NonNegative = 0
    jvm_gc_time_ms: NonNegative = 0
    shuffle_read_bytes: NonNegative = 0
    shuffle_read_records: NonNegative = 0
    shuffle_write_bytes: NonNegative = 0
    shuffle_write_records: NonNegative = 0
    memory_spilled_bytes: NonNegative = 0
    disk_spilled_bytes: NonNegative = 0
    input_bytes: NonNegative = 0
    input_records: NonNegative = 0
    output_bytes: NonNegative = 0
    output_records: NonNegative = 0
    peak_execution_memory_bytes: NonNegative = 0
    max_task_duration_ms: NonNegative = 0
    median_task_duration_ms: NonNegative = 0


class StageBatch(Strict):
    batch_id: str | None = Field(default=None, max_length=100)
    server_id: str = Field(min_length=1, max_length=200)
    spark_app_id: str = Field(min_length=1, max_length=200)
    stages: list[StageRecord] = Field(max_length=10_000)


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    unattributed: int


class HeartbeatIn(Strict):
    server_id: str = Field(min_length=1, max_length=200)
    spark_app_id: str = Field(min_length=1, max_length=200)
    kind: Literal["connect", "standalone"]
    spark_version: str | None = Field(default=None, max_length=40)
    start_time_ms: int | None = Field(default=None, ge=0)
    sent_at_ms: int | None = Field(default=None, ge=0)
    ui_url: str | None = Field(default=None, max_length=300)
    active_sessions: NonNegative = 0
    active_operations: NonNegative = 0
    running_jobs: NonNegative = 0
    queue_size: NonNegative = 0
    spool_files: NonNegative = 0
    spool_bytes: NonNegative = 0
    dropped_records: NonNegative = 0
    unattributed_stages: NonNegative = 0


class AppOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    app_id: str
    created_at: datetime
    last_seen_at: datetime
    num_runs: int


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    run_id: str
    app_id: str
    mode: str
    status: str
    created_at: datetime
    first_stage_at: datetime | None
    last_stage_at: datetime | None
    num_stages: int
    num_failed_stages: int
    num_tasks: int
    num_failed_tasks: int
    executor_run_time_ms: int
    executor_cpu_time_ms: int
    jvm_gc_time_ms: int
    shuffle_read_bytes: int
    shuffle_read_records: int
    shuffle_write_bytes: int
    shuffle_write_records: int
    memory_spilled_bytes: int
    disk_spilled_bytes: int
    input_bytes: int
    input_records: int
    output_bytes: int
    output_records: int
    peak_execution_memory_bytes: int
    max_task_duration_ms: int


class ServerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    server_id: str
    kind: str
    spark_app_id: str
    spark_version: str | None
    started_at: datetime | None
    ui_url: str | None
    last_heartbeat_at: datetime | None
    draining: bool
    unattributed_stages: int
