"""Request and response bodies of the HTTP API (pydantic). Unknown fields are rejected, not ignored.

What comes in is checked here for everything the database would refuse, so that bad input is a 422 (or, for a
stage record, a quarantined record) and never a failed statement: no NUL and no lone UTF-16 surrogate in any
text, no text longer than its column, integers where integers are meant (not "7", 7.0 or true) and within
their column's range, finite numbers, timestamps within the years 1-9999."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonDict
from pydantic_core import ErrorDetails, PydanticCustomError

from client_runtime.protocol import (
    APP_ID_MAX,
    CONNECT_OPERATION_ID_MAX,
    CONNECT_SESSION_ID_MAX,
    CONNECT_USER_ID_MAX,
    FAILURE_KINDS,
    FAILURE_REASON_MAX,
    ID_PATTERN,
    ID_RULE,
    RUN_ID_MAX,
    STAGE_NAME_MAX,
    FailureKind,
    RequestedMode,
    RunEventName,
)
from service.db.models import METRICS
from service.routing.policy import parse_size

# The ranges of the database's integer columns (Integer, BigInteger) and of Python's datetime.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
EPOCH_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# No NUL (PostgreSQL text cannot hold it). A pattern also makes pydantic check that the text is valid Unicode:
# a lone surrogate (half an emoji) fails as string_unicode.
NO_NUL = r"^[^\x00]*$"
# The one rule for the ids of apps and runs (ID_PATTERN, ID_RULE) and their lengths:
# client_runtime/protocol.py.


def text(max_length: int | None = None, **field: Any) -> Any:
    """A text field the database can store: no NUL, valid Unicode, at most `max_length` characters."""
    return Field(pattern=NO_NUL, max_length=max_length, **field)


def an_id(max_length: int, **field: Any) -> Any:
    """An app or run id: ID_PATTERN (at least one character), at most `max_length` characters."""
    return Field(pattern=ID_PATTERN, max_length=max_length, **field)


Int32 = Annotated[int, Field(strict=True, ge=-INT32_MAX - 1, le=INT32_MAX)]
Count32 = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]     # an Integer column
Count64 = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]     # a BigInteger column
EpochMs = Annotated[int, Field(strict=True, ge=0, le=EPOCH_MS_MAX)]  # milliseconds since 1970, UTC
Finite = Annotated[float, Field(allow_inf_nan=False)]


def _as_utc(value: datetime) -> datetime:
    """A timestamp in UTC (naive ones are taken as UTC); one that falls outside the years 1-9999 in UTC is
    refused."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("the timestamp is out of range (years 1-9999, UTC)") from None


UTCTimestamp = Annotated[datetime, AfterValidator(_as_utc)]

NonNegative = Count64


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------- 422 details

MESSAGES = {  # clearer words for what pydantic says of the checks above
    "string_unicode": "must be valid Unicode text (no lone UTF-16 surrogate)",
    "int_type": "must be an integer (not a string, a decimal or a boolean)",
    "int_from_float": "must be an integer (not a decimal)",
    "finite_number": "must be a finite number (not NaN or Infinity)",
}


def _readable(value: Any, limit: int) -> str:
    """Text safe to put in a JSON answer or a database column: NUL and surrogates escaped, cut to `limit`
    characters."""
    value = str(value).replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    return value if len(value) <= limit else value[:limit] + "…"


def _short_input(value: Any) -> Any:
    """An error's input as the 422 answer may show it: short scalars only, never a large or nested input."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= INT64_MAX * 4 else _readable(value, 30)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _readable(value, 100)
    return None


def error_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's (or FastAPI's) validation errors in the one 422 shape of every endpoint:
    ``{"loc": [...], "msg": "...", "type": "...", "input": <short scalar, if any>}``."""
    details: list[dict[str, Any]] = []
    for error in errors[:50]:
        kind = error.get("type", "value_error")
        pattern = (error.get("ctx") or {}).get("pattern")
        if kind == "string_pattern_mismatch" and pattern == NO_NUL:
            kind, msg = "string_nul", "must not contain NUL (\\u0000)"
        elif kind == "string_pattern_mismatch" and pattern == ID_PATTERN:
            msg = ID_RULE
        else:
            msg = MESSAGES.get(kind, error.get("msg", ""))
        detail = {"loc": [loc if isinstance(loc, int) else _readable(loc, 100)
                          for loc in error.get("loc", ())],
                  "msg": _readable(msg, 500), "type": kind}
        shown = _short_input(error.get("input"))
        if shown is not None:
            detail["input"] = shown
        details.append(detail)
    return details


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: str | int | float | bool | None = Field(default=None, description="The refused value, if short.")


class ValidationErrorOut(BaseModel):
    """Every 422 of the API has this shape."""

    detail: list[ErrorDetail]


class ErrorOut(BaseModel):
    """400, 401, 404, 409, 413, 503: what went wrong, in words."""

    detail: str


# What a real stage attempt can have, generously: past it a record is quarantined (docs/ingest-protocol.md).
# Runs sum many stages, so the sums are kept safe apart (they stop at 2^63 - 1; aggregates never overflow).
MAX_STAGE_TASKS = INT32_MAX          # Spark counts a stage's tasks in an Int
MAX_STAGE_MS = 10**15                # ~31,700 years of task time: a million cores busy for 30 years
MAX_STAGE_BYTES = 2**60              # 1 EiB, a thousand times the petabytes of the largest jobs; records too


# A stage's metric within its bound: tasks (num_*), milliseconds (*_ms), or bytes and records (the others).
StageTasks = Annotated[int, Field(strict=True, ge=0, le=MAX_STAGE_TASKS)]
StageMs = Annotated[int, Field(strict=True, ge=0, le=MAX_STAGE_MS)]
StageBytes = Annotated[int, Field(strict=True, ge=0, le=MAX_STAGE_BYTES)]


# Spark's task metrics of a stage attempt, or a run's totals: one field per name in models.METRICS, in its
# order (checked below). (No docstrings: the API's schema describes them as it did.)
class StageMetricValues(Strict):
    num_tasks: StageTasks = 0
    num_failed_tasks: StageTasks = 0
    num_oom_failed_tasks: StageTasks = 0
    executor_run_time_ms: StageMs = 0
    executor_cpu_time_ms: StageMs = 0
    jvm_gc_time_ms: StageMs = 0
    shuffle_read_bytes: StageBytes = 0
    shuffle_read_records: StageBytes = 0
    shuffle_write_bytes: StageBytes = 0
    shuffle_write_records: StageBytes = 0
    memory_spilled_bytes: StageBytes = 0
    disk_spilled_bytes: StageBytes = 0
    input_bytes: StageBytes = 0
    input_records: StageBytes = 0
    output_bytes: StageBytes = 0
    output_records: StageBytes = 0
    peak_execution_memory_bytes: StageBytes = 0
    max_task_duration_ms: StageMs = 0


class RunMetricValues(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    num_tasks: int
    num_failed_tasks: int
    num_oom_failed_tasks: int
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


for _model in (StageMetricValues, RunMetricValues):
    if tuple(_model.model_fields) != METRICS:
        raise RuntimeError(f"{_model.__name__} and models.METRICS name different metrics: keep them the same")


class StageRecord(StageMetricValues):
    """One completed stage attempt, as the listener reports it (docs/ingest-protocol.md)."""

    app_id: str | None = an_id(APP_ID_MAX, default=None)
    run_id: str | None = an_id(RUN_ID_MAX, default=None)
    connect_session_id: str | None = text(CONNECT_SESSION_ID_MAX, default=None)
    connect_operation_id: str | None = text(CONNECT_OPERATION_ID_MAX, default=None)
    connect_user_id: str | None = text(CONNECT_USER_ID_MAX, default=None)
    job_id: Int32 | None = None
    stage_id: Count32
    attempt: Count32
    name: str | None = text(default=None, description=f"Cut to {STAGE_NAME_MAX} characters when stored.")
    status: Literal["succeeded", "failed"]
    failure_reason: str | None = text(default=None,
                                      description=f"Cut to {FAILURE_REASON_MAX:,} characters when stored.")
    submission_time_ms: EpochMs | None = None
    completion_time_ms: EpochMs | None = None
    duration_ms: StageMs | None = None
    median_task_duration_ms: StageMs = 0


class QuarantinedStage(BaseModel):
    """A stage record of a batch that cannot be stored, and why; kept aside while the rest of its batch is
    stored."""

    index: int
    reason: str
    record: Any


def _quarantine_reason(errors: list[ErrorDetails]) -> str:
    return "; ".join(".".join(str(part) for part in detail["loc"][2:]) + ": " + detail["msg"]
                     if len(detail["loc"]) > 2 else detail["msg"] for detail in error_details(errors))


class StageBatch(Strict):
    """A batch of stage records. A bad envelope (ids, the list) is refused whole (422); a stage record that
    cannot be stored is set aside (``quarantined``) and the others are stored."""

    batch_id: str | None = text(100, default=None)
    server_id: str = text(200, min_length=1)
    spark_app_id: str = text(200, min_length=1)
    stages: list[StageRecord] = Field(max_length=10_000)
    _quarantined: list[QuarantinedStage] = PrivateAttr(default_factory=list)

    @property
    def quarantined(self) -> list[QuarantinedStage]:
        return self._quarantined

    def set_aside(self, reasons: dict[int, str]) -> None:
        """Quarantine records found bad after validation (ingest's own checks), by their index in `stages`."""
        if not reasons:
            return
        bad = {q.index for q in self._quarantined}
        sent = [i for i in range(len(self.stages) + len(bad)) if i not in bad]  # index in what was sent
        self._quarantined = sorted(
            [*self._quarantined, *(QuarantinedStage(index=sent[i], reason=reason,
                                                    record=self.stages[i].model_dump(mode="json",
                                                                                     exclude_unset=True))
                                   for i, reason in reasons.items())], key=lambda q: q.index)
        self.stages = [record for i, record in enumerate(self.stages) if i not in reasons]

    @model_validator(mode="wrap")
    @classmethod
    def _set_bad_records_aside(cls, data: Any, handler: ModelWrapValidatorHandler[StageBatch]) -> StageBatch:
        # The whole batch is validated at once (fast); only when something fails are its records sorted out.
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            per_record: dict[int, list[ErrorDetails]] = {}
            for error in errors:
                loc = error["loc"]
                if len(loc) < 2 or loc[0] != "stages" or not isinstance(loc[1], int):
                    raise  # the envelope: the whole batch is refused
                per_record.setdefault(loc[1], []).append(error)
            records = data["stages"]
            batch = handler({**data,
                             "stages": [record for i, record in enumerate(records) if i not in per_record]})
            batch._quarantined = [QuarantinedStage(index=i, reason=_quarantine_reason(per_record[i]),
                                                   record=records[i]) for i in sorted(per_record)]
            return batch


class IngestResult(BaseModel):
    accepted: int = Field(description="New stage attempts stored.")
    duplicates: int = Field(description="Stage attempts stored before (a re-sent batch), skipped.")
    unattributed: int = Field(description="Of the accepted, those without an app id.")
    quarantined: int = Field(0, description="Stage records that cannot be stored (see GET "
                                            "/api/v1/quarantine).")


class QuarantineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    received_at: datetime
    server_id: str
    spark_app_id: str
    batch_id: str | None
    app_id: str | None
    run_id: str | None
    reason: str
    record: str = Field(description="The record as received (JSON, cut to 4,000 characters).")


class HeartbeatIn(Strict):
    server_id: str = text(200, min_length=1)
    spark_app_id: str = text(200, min_length=1)
    kind: Literal["connect", "standalone"]
    spark_version: str | None = text(40, default=None)
    start_time_ms: EpochMs | None = None
    sent_at_ms: EpochMs | None = None
    ui_url: str | None = text(300, default=None, description="The Spark UI: http(s) only; another scheme is "
                                                              "stored as null (and logged).")
    active_sessions: Count32 = 0
    active_operations: Count32 = 0
    running_jobs: Count32 = 0
    queue_size: Count32 = 0
    spool_files: Count32 = 0
    spool_bytes: Count64 = 0
    dropped_records: Count64 = 0
    unattributed_stages: Count64 = 0
    dead_letter_files: Count32 = 0
    auth_failures: Count64 = 0
    executors: Count32 = 0
    executor_cores: Count32 = 0
    max_executors: Count32 | None = None
    connect_url: str | None = text(300, default=None, description="Where clients connect: sc:// only; "
                                                                  "another "
                                                                   "scheme is stored as null (and logged).")


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

SizeBytes = Annotated[int, BeforeValidator(parse_size), Field(le=INT64_MAX)]


class ResourcesIn(Strict):
    """The developer's resource settings; sizes in Spark's forms (4g, 4096m) or bytes."""

    driver_memory: SizeBytes | None = None
    executor_memory: SizeBytes | None = None
    driver_cores: Annotated[Count32, Field(ge=1)] | None = None
    executor_cores: Annotated[Count32, Field(ge=1)] | None = None
    num_executors: Count32 | None = None


class AirflowContext(Strict):
    dag_id: str = text(250)
    task_id: str = text(250)
    run_id: str = text(250)
    try_number: Count32 | None = None


def _conf_value(value: object) -> object:
    """A conf's value as Spark writes it (true, 4, 0.5); NaN and the infinities refused."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    if isinstance(value, (int, float)):
        return str(value)
    return value


ConfValue = Annotated[str, BeforeValidator(_conf_value), text(10_000)]


class DecisionRequest(Strict):
    app_id: str = an_id(APP_ID_MAX, description="Stable id of the app, e.g. etl.orders.")
    mode: RequestedMode = Field("auto", description="auto lets the policy decide; connect/standalone force "
                                                    "it.")
    resources: ResourcesIn = Field(default_factory=ResourcesIn)
    spark_conf: dict[Annotated[str, Field(pattern=r"^spark\.[^\x00]*$", max_length=500)], ConfValue] = Field(
        default_factory=dict, max_length=1000)
    airflow: AirflowContext | None = None
    dry_run: bool = Field(False, strict=True, description="Only say where a run would go and why: no run is "
                                                          "recorded, no "
                                             "capacity held, no cool-down try granted (run_id is null).")
    can_wait: bool = Field(False, strict=True, description="The caller can wait for room on a Connect "
                                                           "server: when "
                           "none has room and room is predicted sooner than a standalone start-up, the "
                           "answer is mode queued (then GET /api/v1/runs/{run_id}/admission until admitted) "
                           "instead of standalone.")


class ReasonOut(BaseModel):
    rule: str
    metric: str | None
    observed: float | str | None
    threshold: float | str | None
    message: str


class SizingOut(BaseModel):
    """A standalone run's resources as sized from its history (sizes in Spark's forms, whole MiB: 1536m), what
    the launcher gives spark-submit; null: Spark's default (nothing asked, nothing sized)."""

    executor_memory: str | None
    num_executors: int | None
    executor_cores: int | None
    driver_memory: str | None
    reason: str = Field(description="Why, in one sentence.")


class PredictionOut(BaseModel):
    """A run's predicted wall time and executor core-seconds in one mode (service/routing/predict.py)."""

    mode: Literal["connect", "standalone"]
    wall_s: float = Field(description="Submit to end, start-up included, calibrated.")
    core_s: float = Field(description="Executor core-seconds: on Connect the shared server's cores the run "
                                      "keeps busy (its task time); standalone its own executors' cores for "
                                      "its life.")
    uncertainty: float = Field(description="± this fraction of each figure.")
    basis: str = Field(description="The runs it stands on; 'not seen in the other mode': from the other "
                                   "mode's runs.")
    cross_mode: bool
    startup_s: float = Field(description="The start-up included in wall_s (standalone: the cluster's "
                                         "measured one).")
    cores: float = Field(description="The executor cores the run is predicted to get.")
    server_id: str | None = Field(None, description="Connect: the server predicted on.")
    in_flight_cores: float | None = Field(None, description="Connect: the load of the runs in flight there.")
    calibration: float = Field(1.0, description="The factor wall_s was scaled by: the median of actual / "
                                                "predicted wall time over the mode's recent runs here (1: "
                                                "too few runs to say).")


class PredictionsOut(BaseModel):
    connect: PredictionOut | None
    standalone: PredictionOut | None
    note: str | None = Field(None, description="Why a mode has no prediction (an app never seen: neither).")


class ActualOut(BaseModel):
    """A finished run's actual figures, and the errors of what was predicted for the mode it ran in."""

    mode: str
    status: str
    wall_s: float | None
    core_s: float | None = Field(description="Measured executor core-seconds (null: not measured).")
    executors: int | None = Field(None, description="Standalone: the most executors its application held.")
    wall_error_pct: float | None = Field(description="(predicted − actual) / actual, in %; null for a run "
                                                     "that did not succeed or had no prediction.")
    core_s_error_pct: float | None


class AccuracyFigures(BaseModel):
    runs: int
    wall_count: int
    wall_median_abs_error_pct: float | None
    core_s_count: int
    core_s_median_abs_error_pct: float | None


class AppAccuracy(AccuracyFigures):
    app_id: str
    mode: str


class ModeAccuracy(AccuracyFigures):
    mode: str


class PredictionAccuracyOut(BaseModel):
    days: int
    apps: list[AppAccuracy]
    overall: list[ModeAccuracy]


class DecisionOut(BaseModel):
    run_id: str | None = Field(description="The run this decision created; null for a dry run.")
    app_id: str
    mode: Literal["connect", "standalone", "queued"] = Field(
        description="queued (only for a request with can_wait): the run waits for room; ask "
                    "GET /api/v1/runs/{run_id}/admission until it is connect or standalone.")
    rule: str
    reasons: list[ReasonOut]
    connect_url: str | None = Field(description="Where to connect: the Connect URL of the server the run was "
                                                "placed on; null for standalone runs.")
    server_id: str | None = Field(None, description="The Connect server of the pool the run was placed on; "
                                                    "null for standalone runs.")
    session_confs: dict[str, str] = Field(description="Confs the session must set so the listener "
                                                      "attributes its stages to this run.")
    scheduler_pool: str | None = Field(None, description="The Connect server's FAIR scheduler pool for this "
                                                         "run's jobs (light or heavy, by the app's task "
                                                         "time): the session sets it as "
                                                         "spark.scheduler.pool. Null for standalone runs.")
    policy_version: str
    decided_at: datetime
    dry_run: bool = Field(False, description="True when nothing was recorded (the request's dry_run).")
    sizing: SizingOut | None = Field(None, description="A standalone run's resources, sized from the app's "
                                                       "history within the policy's guard rails; null for "
                                                       "Connect runs.")
    position: int | None = Field(None, description="A queued run's place in the admission queue (1: next).")
    predicted_wait_s: float | None = Field(None, description="A queued run's predicted wait for room, in "
                                                             "seconds.")
    predictions: PredictionsOut | None = Field(None, description="Both modes' predictions for the run; null: "
                                                                 "none (a fallback rerun).")
    actual: ActualOut | None = Field(None, description="Once the run ended: its actual figures beside the "
                                                       "predictions.")


# "failed" needs a failure_kind: said in the OpenAPI schema too, so that clients (and schemathesis) know it.
_FAILED_NEEDS_KIND: JsonDict = {"if": {"properties": {"event": {"const": "failed"}}, "required": ["event"]},
                      "then": {"required": ["failure_kind"],
                               "properties": {"failure_kind": {"enum": list(FAILURE_KINDS)}}}}


class RunEvent(Strict):
    """What happened to a run. `failed` needs a `failure_kind` (the schema says so with if/then): without one,
    422."""

    model_config = ConfigDict(json_schema_extra=_FAILED_NEEDS_KIND)

    event: RunEventName = Field(
        description="cancelled: stopped from outside (SIGTERM, Ctrl-C, Airflow's on_kill or "
                    "execution_timeout); neither an app failure nor a Connect failure.")
    failure_kind: FailureKind | None = Field(
        default=None, description="For failed: connect (the Connect server or client failed), app, or "
                                  "pending: a failed Connect run that is being rerun standalone, whose "
                                  "outcome settles it (rerun succeeded: connect; rerun failed: app; rerun "
                                  "cancelled: unknown).")
    message: str | None = text(10_000, default=None)
    exit_code: Int32 | None = None

    @model_validator(mode="after")
    def _failure_has_kind(self) -> RunEvent:
        if self.event == "failed" and self.failure_kind is None:
            raise ValueError("failure_kind (connect, app or pending) is required when event is failed")
        return self


class FallbackRequest(Strict):
    reason: str | None = text(2_000, default=None)


class OomRerunRequest(Strict):
    where: Literal["executor", "driver"] = Field("executor", description="Where the run ran out of memory: "
                                                                         "that memory grows.")
    reason: str | None = text(2_000, default=None)


class RunDetail(RunOut):
    started_at: datetime | None
    finished_at: datetime | None
    failure_kind: str | None
    failure_message: str | None
    exit_code: int | None
    fallback_of: str | None
    fell_back_to: str | None
    oom_rerun_of: str | None = Field(None, description="The standalone run that ran out of memory, which "
                                                       "this one reruns with more.")
    oom_rerun_to: str | None = Field(None, description="This run ran out of memory: its rerun with more.")
    executor_memory: int | None = Field(None, description="Bytes: what a standalone run was given (null: "
                                                          "Spark's default; Connect runs: the server's).")
    executor_cores: int | None = None
    num_executors: int | None = None
    driver_memory: int | None = None
    dag_id: str | None
    task_id: str | None
    airflow_run_id: str | None
    try_number: int | None
    decision: DecisionOut | None = None


class PinRequest(Strict):
    mode: Literal["connect", "standalone"]
    reason: str | None = text(500, default=None)
    server_id: str | None = text(200, default=None, min_length=1,
                                 description="With mode connect: the Connect server of the pool the app's "
                                             "runs go to (standalone while it cannot take runs). Empty: the "
                                             "least loaded.")

    @model_validator(mode="after")
    def _server_only_for_connect(self) -> PinRequest:
        if self.server_id is not None and self.mode != "connect":
            raise ValueError("server_id pins to a Connect server: it needs mode connect")
        return self


class SimulateRequest(Strict):
    policy: dict = Field(description="A candidate policy, in the policy file's structure.")
    days: int = Field(30, strict=True, ge=1, le=3650, description="Which runs count as 'would move': the "
                                                                  "last N days.")


class SimulatedApp(BaseModel):
    app_id: str
    current_mode: str
    current_rule: str
    candidate_mode: str
    candidate_rule: str
    runs: int
    task_hours: float


class SimulateReplay(BaseModel):
    """The apps' kept runs replayed under the candidate: each run predicted from the runs before it."""

    apps: list[AppAccuracy] = Field(description="Per app and mode it ran in: the candidate's prediction "
                                                "errors against the actual runs.")
    totals: dict[str, int | float] = Field(description="runs; runs_in_another_mode (the candidate would have "
                                                       "chosen the other); over the runs it predicted "
                                                       "(predicted_runs): actual_wall_s and actual_core_s "
                                                       "against candidate_wall_s and candidate_core_s, what "
                                                       "it predicted for its own choices.")


class SimulateOut(BaseModel):
    current_policy_version: str
    candidate_policy_version: str
    days: int
    apps: list[SimulatedApp]
    totals: dict[str, int | float]
    replay: SimulateReplay


class CompatFinding(Strict):
    path: str = text(1000)
    line: Count32
    what: str = text(200)
    why: str = text(500)


class CompatibilityReport(Strict):
    findings: list[CompatFinding] = Field(max_length=1000, description="What the check found; empty = "
                                                                       "compatible.")


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
    default: bool = Field(description="The server of SPARK_ROUTER_CONNECT_SERVER_ID: forced and pinned "
                                      "Connect runs go there when no server can take a run.")
    connect_url: str | None = Field(description="Where its clients connect: what its listener reports (the "
                                                "default server: SPARK_ROUTER_CONNECT_URL until it reports "
                                                "one).")
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
    max_runs: int | None = Field(None, description="Connect runs it takes at once "
                                                   "(SPARK_ROUTER_SERVER_MAX_RUNS).")
    room: bool = Field(False, description="It can take a run of the policy's default size now: available, a "
                                          "run slot and the cores free.")


class QueuedRunOut(BaseModel):
    """A run waiting in the admission queue for room on a Connect server."""

    run_id: str
    app_id: str
    position: int | None = Field(description="Its place in the queue (1: next); null: its client stopped "
                                             "asking, "
                                              "so it no longer holds a place.")
    enqueued_at: datetime
    waited_s: float
    predicted_wait_s: float | None = Field(description="Its predicted wait for room, as last checked.")
    deadline_at: datetime = Field(description="When it runs standalone if still waiting "
                                              "(SPARK_ROUTER_QUEUE_MAX_WAIT_S).")
    predicted_cores: float
    live: bool = Field(description="Its client asked lately (a long poll within "
                                   "SPARK_ROUTER_QUEUE_POLL_MAX_S + 15 s).")


class ServerActivity(BaseModel):
    """What the router knows of the work on a server: for deciding when a restart is safe."""

    server: ServerOut
    last_heartbeat: HeartbeatOut | None
    heartbeat_age_s: float | None
    in_flight_connect_runs: int = Field(description="Connect runs placed on this server, decided or running, "
                                                    "not yet reported done.")
    in_flight_run_ids: list[str] = Field(description="The oldest ten of them.")


RestartOutcome = Literal["restarted", "forced", "skipped", "failed"]


class RestartIn(Strict):
    server_id: str = text(200)
    backend: str = text(20)
    requested_at: UTCTimestamp
    idle_at: UTCTimestamp | None = None
    restarted_at: UTCTimestamp | None = None
    ready_at: UTCTimestamp | None = None
    finished_at: UTCTimestamp
    outcome: RestartOutcome
    waited_s: Finite = Field(ge=0)
    message: str | None = text(10_000, default=None)


class RestartOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    server_id: str
    backend: str
    requested_at: datetime
    idle_at: datetime | None
    restarted_at: datetime | None
    ready_at: datetime | None
    finished_at: datetime
    outcome: str
    waited_s: float
    message: str | None
