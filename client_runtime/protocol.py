"""The wire contract between the parts: what the launcher, the Airflow operator, the listener (Java) and the
router say to each other, in one place.

Here: the session confs that attribute a stage to an app and a run (and to an Airflow task), what a launcher
tells an app's session helper, the one rule of ids and their lengths, the Connect user id a launcher encodes
an app and a run into, the modes, run events and failure kinds (and how a standalone rerun settles a failed
Connect run), where a run ran out of memory, the resources a run asks for, and the router's answer to a
decision as the clients read it. The router's request and response schemas (service/schemas.py) build on these
names; the Java constants (the listener's, the JVM session helper's) are checked against them
(tests/listener/test_java_constants.py).

Plain Python (no pydantic): `spark-router run` imports it before it starts an app."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast

# --------------------------------------------------------------------------------- attribution of stages

# Session confs a client sets so the listener attributes its stages (StageRecords.java APP_ID, RUN_ID).
APP_ID_CONF = "spark.router.appId"
RUN_ID_CONF = "spark.router.runId"
# The Connect server's FAIR pool a run's jobs go to: the decision's scheduler_pool, set by the session.
SCHEDULER_POOL_CONF = "spark.scheduler.pool"

# The one rule for the ids of apps and runs, wherever they come in (decisions, stage records, paths, the user
# id below): letters, digits and _ . : / @ -, at least one; so no empty id, no space, no control character.
ID_PATTERN = r"^[A-Za-z0-9_.:/@-]+$"
ID_RULE = "must be letters, digits and _ . : / @ - only (no space or control character), at least one"
# Their lengths (the database's columns; the listener cuts its fields to the same: StageRecord.java).
APP_ID_MAX = 200
RUN_ID_MAX = 100
CONNECT_SESSION_ID_MAX = 100
CONNECT_OPERATION_ID_MAX = 100
CONNECT_USER_ID_MAX = 200
STAGE_NAME_MAX = 200
FAILURE_REASON_MAX = 1000


def is_id(value: str, max_length: int) -> bool:
    """Whether `value` passes the rule of ids, at most `max_length` characters."""
    return 0 < len(value) <= max_length and re.fullmatch(ID_PATTERN, value) is not None


def session_confs(app_id: str, run_id: str | None = None) -> dict[str, str]:
    """The confs that attribute a session's stages to the app (and the run, if known)."""
    return {APP_ID_CONF: app_id, **({RUN_ID_CONF: run_id} if run_id else {})}


# The Airflow task instance a run belongs to, as session confs the router adds to a decision's
# (spark.router.airflow.dagId, taskId, runId, tryNumber): shown in the Spark UI's environment.
AIRFLOW_CONF_PREFIX = "spark.router.airflow."


def airflow_confs(dag_id: str | None, task_id: str | None, run_id: str | None,
                  try_number: int | None) -> dict[str, str]:
    """The session confs of a run's Airflow task instance, the unknown ones left out."""
    given = {"dagId": dag_id, "taskId": task_id, "runId": run_id, "tryNumber": try_number}
    return {f"{AIRFLOW_CONF_PREFIX}{key}": str(value) for key, value in given.items() if value is not None}


# The listener's own settings are Spark confs under this prefix (ListenerConfig.java PREFIX): url, spoolDir,
# spoolMaxBytes, kind, serverId, connectUrl, ...; set by `spark-router` when it starts a Spark application.
LISTENER_CONF_PREFIX = "spark.router.listener."


def listener_confs(**settings: str) -> dict[str, str]:
    """Listener settings as the confs it reads: ``listener_confs(serverId="s1")`` names
    ``spark.router.listener.serverId``."""
    return {f"{LISTENER_CONF_PREFIX}{name}": value for name, value in settings.items()}


# What a launcher tells the app's session helper (client_runtime/session.py; RouterSession.java for JVM apps)
# in the app's environment: the mode, the session confs as a JSON object, and the files to ship to a Connect
# server (os.pathsep-separated).
MODE_ENV = "SPARK_ROUTER_MODE"
SESSION_CONFS_ENV = "SPARK_ROUTER_SESSION_CONFS"
ARTIFACTS_ENV = "SPARK_ROUTER_ARTIFACTS"


# An app that builds its own Connect session sets no confs: the launcher puts its app and run into the Connect
# user id instead (SPARK_REMOTE's user_id), and ingest reads them back from the stage's user id.
USER_ID_PREFIX = "router:"


def user_id(app_id: str, run_id: str) -> str:
    """The Connect user id that carries an app and a run: ``router:<app_id>:<run_id>``."""
    return f"{USER_ID_PREFIX}{app_id}:{run_id}"


def attribution_of_user_id(user: str | None) -> tuple[str, str] | None:
    """(app id, run id) from a Connect user id made by ``user_id``, or None when it is not one (or its ids
    break the rule of ids). An app id holds no ``:`` of its own here: the first one ends it."""
    if not user or not user.startswith(USER_ID_PREFIX):
        return None
    app_id, sep, run_id = user[len(USER_ID_PREFIX):].partition(":")
    if sep and is_id(app_id, APP_ID_MAX) and is_id(run_id, RUN_ID_MAX):
        return app_id, run_id
    return None


# ----------------------------------------------------------------------------------- runs and their end

Mode = Literal["connect", "standalone"]
RequestedMode = Literal["auto", "connect", "standalone"]
MODES: tuple[Mode, ...] = ("connect", "standalone")
REQUESTED_MODES: tuple[RequestedMode, ...] = ("auto", "connect", "standalone")

# What a launcher reports of a run (POST /api/v1/runs/{run_id}/events). cancelled: stopped from outside
# (SIGTERM, Ctrl-C, Airflow's on_kill); neither an app failure nor a Connect failure.
RunEventName = Literal["started", "succeeded", "failed", "cancelled"]
# Whose failure a failed run was, as reported: pending is a failed Connect run being rerun standalone.
FailureKind = Literal["connect", "app", "pending"]
FAILURE_KINDS: tuple[FailureKind, ...] = ("connect", "app", "pending")
# How a pending failure is settled: by the end of its standalone rerun (both the launcher and the router apply
# it). The rerun succeeded: the app runs fine without Connect, so Connect failed it; failed too: the app
# failed; cancelled: nobody can tell.
SettledKind = Literal["connect", "app", "unknown"]
SETTLED_BY: dict[str, SettledKind] = {"succeeded": "connect", "failed": "app", "cancelled": "unknown"}

# Where a run ran out of memory (POST /api/v1/runs/{run_id}/oom-rerun's `where`): that memory grows in its one
# rerun. A failed standalone run the launcher finds out of memory (client_runtime.failures.out_of_memory) is
# reported failed (an app failure, its message saying so) and rerun once, as the router sizes it.
OomWhere = Literal["executor", "driver"]
OOM_WHERE: tuple[OomWhere, ...] = ("executor", "driver")

# ----------------------------------------------------------------------------------------- resources

class Resources(TypedDict, total=False):
    """The developer's resource settings a run may carry, in spark-submit's terms (sizes as Spark writes them:
    4g, 4096m; or bytes); unset ones are left out."""

    driver_memory: str | int
    executor_memory: str | int
    driver_cores: int
    executor_cores: int
    num_executors: int


RESOURCE_NAMES = tuple(Resources.__annotations__)


def resources(driver_memory: str | int | None = None, executor_memory: str | int | None = None,
              driver_cores: int | None = None, executor_cores: int | None = None,
              num_executors: int | None = None) -> Resources:
    """A run's resources, the unset ones left out."""
    given: dict[str, Any] = {"driver_memory": driver_memory, "executor_memory": executor_memory,
                             "driver_cores": driver_cores, "executor_cores": executor_cores,
                             "num_executors": num_executors}
    # The keys are Resources' own, and each value has its field's type: the signature says so.
    return cast(Resources, {name: value for name, value in given.items() if value is not None})


# ----------------------------------------------------------------------------- the router's decision

@dataclass(frozen=True)
class Reason:
    """Why a rule decided as it did: the rule, the metric it read, what it saw, its threshold, one
    sentence."""

    rule: str
    message: str
    metric: str | None = None
    observed: float | str | None = None
    threshold: float | str | None = None


@dataclass(frozen=True)
class DecisionAnswer:
    """The router's answer to POST /api/v1/decisions (and to a fallback), as the clients read it. `raw` is the
    whole answer as sent, for printing it (the router may add fields a client does not read)."""

    run_id: str | None  # None for a dry run
    app_id: str
    mode: Mode | Literal["queued"]
    rule: str
    reasons: list[Reason]
    connect_url: str | None
    session_confs: dict[str, str]
    policy_version: str
    server_id: str | None = None
    dry_run: bool = False
    scheduler_pool: str | None = None  # a Connect run's FAIR pool on the server (light or heavy)
    # A standalone run's resources sized from its history (spark-submit's terms; unset ones left out) and why.
    sizing: dict[str, Any] | None = None
    # mode "queued" (a request with can_wait): its place in the admission queue and predicted wait for room
    position: int | None = None
    predicted_wait_s: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, answer: dict[str, Any]) -> DecisionAnswer:
        reasons = [Reason(rule=r["rule"], message=r["message"], metric=r.get("metric"),
                          observed=r.get("observed"), threshold=r.get("threshold"))
                   for r in answer["reasons"]]
        return cls(run_id=answer["run_id"], app_id=answer["app_id"], mode=answer["mode"], rule=answer["rule"],
                   reasons=reasons, connect_url=answer.get("connect_url"),
                   session_confs=dict(answer.get("session_confs") or {}),
                   policy_version=answer["policy_version"], server_id=answer.get("server_id"),
                   dry_run=bool(answer.get("dry_run", False)), scheduler_pool=answer.get("scheduler_pool"),
                   position=answer.get("position"), predicted_wait_s=answer.get("predicted_wait_s"),
                   sizing=answer.get("sizing"), raw=answer)
