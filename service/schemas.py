"""Request and response bodies of the HTTP API (pydantic). Unknown fields are rejected, not ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from service.db.models import METRICS
from service.routing.policy import parse_size

NonNegative = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Spark's task metrics of a stage attempt, or a run's totals: one field per name in models.METRICS.
StageMetricValues = create_model("StageMetricValues", __base__=Strict, **{name: (NonNegative, 0) for name in METRICS})
RunMetricValues = create_model("RunMetricValues", __config__=ConfigDict(from_attributes=True),
                               **{name: (int, ...) for name in METRICS})


class StageRecord(StageMetricValues):
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
    dead_letter_files: NonNegative = 0
    auth_failures: NonNegative = 0
    executors: NonNegative = 0
    executor_cores: NonNegative = 0
    max_executors: NonNegative | None = None
    connect_url: str | None = Field(default=None, max_length=300)


class AppOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    app_id: str
    created_at: datetime
    last_seen_at: datetime
    num_runs: int


class RunOut(RunMetricValues):
    run_id: str
    app_id: str
    mode: str
    status: str
    server_id: str | None = Field(None, description="The Connect server a Connect run was placed on.")
    created_at: datetime
    first_stage_at: datetime | None
    last_stage_at: datetime | None
    num_stages: int
    num_failed_stages: int


class ServerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    server_id: str
    kind: str
    spark_app_id: str
    spark_version: str | None
    started_at: datetime | None
    ui_url: str | None
    connect_url: str | None
    last_heartbeat_at: datetime | None
    draining: bool
    unattributed_stages: int


# ------------------------------------------------------------------------------------------ decisions

SizeBytes = Annotated[int, BeforeValidator(parse_size)]
RequestedMode = Literal["auto", "connect", "standalone"]


class ResourcesIn(Strict):
    """The developer's resource settings; sizes in Spark's forms (4g, 4096m) or bytes."""

    driver_memory: SizeBytes | None = None
    executor_memory: SizeBytes | None = None
    driver_cores: int | None = Field(default=None, ge=1)
    executor_cores: int | None = Field(default=None, ge=1)
    num_executors: int | None = Field(default=None, ge=0)


class AirflowContext(Strict):
    dag_id: str = Field(max_length=250)
    task_id: str = Field(max_length=250)
    run_id: str = Field(max_length=250)
    try_number: int | None = Field(default=None, ge=0)


def _conf_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return value


ConfValue = Annotated[str, BeforeValidator(_conf_value)]


class DecisionRequest(Strict):
    app_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/@-]+$",
                        description="Stable id of the app, e.g. etl.orders.")
    mode: RequestedMode = Field("auto", description="auto lets the policy decide; connect/standalone force it.")
    resources: ResourcesIn = Field(default_factory=ResourcesIn)
    spark_conf: dict[Annotated[str, Field(pattern=r"^spark\.")], ConfValue] = Field(default_factory=dict)
    airflow: AirflowContext | None = None
    dry_run: bool = Field(False, description="Only say where a run would go and why: no run is recorded, no "
                                             "capacity held, no cool-down try granted (run_id is null).")


class ReasonOut(BaseModel):
    rule: str
    metric: str | None
    observed: float | str | None
    threshold: float | str | None
    message: str


class DecisionOut(BaseModel):
    run_id: str | None = Field(description="The run this decision created; null for a dry run.")
    app_id: str
    mode: Literal["connect", "standalone"]
    rule: str
    reasons: list[ReasonOut]
    connect_url: str | None = Field(description="Where to connect: the Connect URL of the server the run was "
                                                "placed on; null for standalone runs.")
    server_id: str | None = Field(None, description="The Connect server of the pool the run was placed on; null for "
                                                    "standalone runs.")
    session_confs: dict[str, str] = Field(description="Confs the session must set so the listener "
                                                      "attributes its stages to this run.")
    policy_version: str
    decided_at: datetime
    dry_run: bool = Field(False, description="True when nothing was recorded (the request's dry_run).")


class RunEvent(Strict):
    event: Literal["started", "succeeded", "failed", "cancelled"] = Field(
        description="cancelled: stopped from outside (SIGTERM, Ctrl-C, Airflow's on_kill or execution_timeout); "
                    "neither an app failure nor a Connect failure.")
    failure_kind: Literal["connect", "app", "pending"] | None = Field(
        default=None, description="For failed: connect (the Connect server or client failed), app, or pending: a "
                                  "failed Connect run that is being rerun standalone, whose outcome settles it "
                                  "(rerun succeeded: connect; rerun failed: app; rerun cancelled: unknown).")
    message: str | None = Field(default=None, max_length=10_000)
    exit_code: int | None = None

    @model_validator(mode="after")
    def _failure_has_kind(self):
        if self.event == "failed" and self.failure_kind is None:
            raise ValueError("failure_kind (connect, app or pending) is required when event is failed")
        return self


class FallbackRequest(Strict):
    reason: str | None = Field(default=None, max_length=2_000)


class RunDetail(RunOut):
    started_at: datetime | None
    finished_at: datetime | None
    failure_kind: str | None
    failure_message: str | None
    exit_code: int | None
    fallback_of: str | None
    fell_back_to: str | None
    dag_id: str | None
    task_id: str | None
    airflow_run_id: str | None
    try_number: int | None
    decision: DecisionOut | None = None


class PinRequest(Strict):
    mode: Literal["connect", "standalone"]
    reason: str | None = Field(default=None, max_length=500)
    server_id: str | None = Field(default=None, min_length=1, max_length=200,
                                  description="With mode connect: the Connect server of the pool the app's runs go "
                                              "to (standalone while it cannot take runs). Empty: the least loaded.")

    @model_validator(mode="after")
    def _server_only_for_connect(self):
        if self.server_id is not None and self.mode != "connect":
            raise ValueError("server_id pins to a Connect server: it needs mode connect")
        return self


class SimulateRequest(Strict):
    policy: dict = Field(description="A candidate policy, in the policy file's structure.")
    days: int = Field(30, ge=1, le=3650, description="Which runs count as 'would move': the last N days.")


class SimulatedApp(BaseModel):
    app_id: str
    current_mode: str
    current_rule: str
    candidate_mode: str
    candidate_rule: str
    runs: int
    task_hours: float


class SimulateOut(BaseModel):
    current_policy_version: str
    candidate_policy_version: str
    days: int
    apps: list[SimulatedApp]
    totals: dict[str, int | float]


class CompatFinding(Strict):
    path: str = Field(max_length=1000)
    line: int = Field(ge=0)
    what: str = Field(max_length=200)
    why: str = Field(max_length=500)


class CompatibilityReport(Strict):
    findings: list[CompatFinding] = Field(max_length=1000, description="What the check found; empty = compatible.")


class HeartbeatOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    spark_app_id: str
    received_at: datetime
    active_sessions: int
    active_operations: int
    running_jobs: int
    queue_size: int
    spool_files: int
    spool_bytes: int
    dropped_records: int
    dead_letter_files: int
    auth_failures: int
    executors: int
    executor_cores: int
    max_executors: int | None


class PoolServerOut(BaseModel):
    """A Connect server of the pool as placement sees it."""

    server_id: str
    default: bool = Field(description="The server of SPARK_ROUTER_CONNECT_SERVER_ID: forced and pinned Connect "
                                      "runs go there when no server can take a run.")
    connect_url: str | None = Field(description="Where its clients connect: what its listener reports (the "
                                                "default server: SPARK_ROUTER_CONNECT_URL until it reports one).")
    status: Literal["up", "draining", "down"]
    available: bool = Field(description="It can take a new run now: heard from lately and not draining.")
    unavailable_reason: str | None
    draining: bool
    last_heartbeat_at: datetime | None
    heartbeat_age_s: float | None
    executors: int
    executor_cores: int
    max_executors: int | None
    capacity_cores: float = Field(description="Cores it can give concurrent runs (see capacity_source).")
    capacity_source: str
    in_flight_cores: float = Field(description="Predicted cores of the Connect runs in flight on it.")
    free_cores: float
    in_flight_runs: int


class ServerActivity(BaseModel):
    """What the router knows of the work on a server: for deciding when a restart is safe."""

    server: ServerOut
    last_heartbeat: HeartbeatOut | None
    heartbeat_age_s: float | None
    in_flight_connect_runs: int = Field(description="Connect runs placed on this server, decided or running, not yet "
                                                    "reported done.")
    in_flight_run_ids: list[str] = Field(description="The oldest ten of them.")


class RestartIn(Strict):
    server_id: str = Field(max_length=200)
    backend: str = Field(max_length=20)
    requested_at: datetime
    idle_at: datetime | None = None
    restarted_at: datetime | None = None
    ready_at: datetime | None = None
    finished_at: datetime
    outcome: Literal["restarted", "forced", "skipped", "failed"]
    waited_s: float = Field(ge=0)
    message: str | None = Field(default=None, max_length=10_000)


class RestartOut(RestartIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: int
