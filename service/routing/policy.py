"""The routing policy: its knobs (a pydantic model), loading it from a YAML or TOML file, and the store that
hands out the policy in force and re-reads the file when it changes. The rules that apply it are in
rules.py."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import sys
import threading
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from service.db.models import RECENT_RUNS_KEPT

Mode = Literal["connect", "standalone"]
# What the cost-aware rule weighs (routing/predict.py): a run's wall time, its executor core-seconds, or both;
# off: no cost-aware rule (the threshold rules alone, as before issue 22).
Objective = Literal["balanced", "makespan", "cost", "off"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_size(value: float | str) -> int:
    """Bytes from Spark's size forms ('4g', '4096m', '512k', '1t') or a plain byte count."""
    if isinstance(value, bool):
        raise ValueError("a size, not a boolean")  # noqa: TRY004 - pydantic reports ValueError, not TypeError
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a size cannot be negative")
        if not math.isfinite(value):
            raise ValueError("a size must be a finite number")
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{str(value)[:50]!r} is not a size (use Spark's forms, e.g. 4g, 4096m, 512k)")
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(size):
        raise ValueError("a size must be a finite number")
    return int(size)


def format_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value} B"


def format_ms(value: float) -> str:
    seconds = value / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


Size = Annotated[int, BeforeValidator(parse_size)]


# ---------------------------------------------------------------------------------------------- the policy

class PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ConnectFailures(PolicyModel):
    max_consecutive: int = Field(3, ge=1, description="Consecutive Connect failures that send an app "
                                                      "standalone.")
    cooldown_days: float = Field(60, ge=0, le=3650, description="After this long, such an app gets one "
                                                                "Connect try again.")
    out_of_memory_days: float = Field(
        7, ge=0, le=3650,
        description="After a task of the app runs out of memory on a shared Connect server, its runs go "
                    "standalone for this many days (0: never): such a task can take its executor down, and "
                    "the other apps' tasks on it with it.")


class ServerLimits(PolicyModel):
    heartbeat_timeout_s: float = Field(30, gt=0, description="No listener heartbeat for this long = "
                                                             "unhealthy.")
    executor_memory: Size = Field(parse_size("4g"), description="Executor memory of the shared server.")
    executor_cores: int = Field(4, ge=1, description="Cores per executor of the shared server.")
    max_executors: int = Field(10, ge=1, description="Most executors a run may ask for on the shared server.")
    driver_memory: Size = Field(parse_size("4g"), description="Largest driver memory a Connect run may ask "
                                                              "for.")
    unsupported_conf_prefixes: list[str] = Field(
        default_factory=lambda: ["spark.executor.", "spark.driver.", "spark.jars", "spark.files",
                                 "spark.archives", "spark.submit.", "spark.dynamicAllocation.",
                                 "spark.kubernetes.", "spark.master", "spark.yarn.", "spark.memory.",
                                 "spark.extraListeners", "spark.plugins", "spark.pyspark."],
        description="Confs that cannot be set per Connect session (they configure a whole application).")


class HistoryThresholds(PolicyModel):
    task_time_ms: int = Field(2 * 3600 * 1000, ge=0, description="Total executor run time of a run.")
    shuffle_write_bytes: Size = Field(parse_size("20g"))
    disk_spilled_bytes: Size = Field(parse_size("2g"))
    peak_execution_memory_bytes: Size = Field(parse_size("2g"),
                                              description="Largest task's execution memory.")
    duration_ms: int = Field(60 * 60 * 1000, ge=0, description="Wall time of a run.")


class HistoryRule(PolicyModel):
    window: int = Field(10, ge=1, le=RECENT_RUNS_KEPT, description="How many recent successful runs to look "
                                                                   "at "
                                                                  "(the app keeps its last 100).")
    statistic: Literal["p90", "max"] = Field("p90", description="p90 forgives one odd run; max does not.")
    prediction_window: int = Field(
        3, ge=1, le=RECENT_RUNS_KEPT,
        description="How many of the app's recent successful runs in a mode its predictions stand on (at "
                    "most `window`): its latest conditions, since a run's wall time follows the load of the "
                    "server and the cluster, which drifts; the median of 3 still forgives one odd run.")
    thresholds: HistoryThresholds = Field(default_factory=HistoryThresholds)


class Capacity(PolicyModel):
    cores: float = Field(8, gt=0, description="Cores the shared server can give to concurrent runs.")
    default_run_cores: float = Field(1, gt=0, description="Predicted load of a run with no history.")
    in_flight_max_age_s: float = Field(6 * 3600, gt=0, le=3650 * 86400,
                                       description="A Connect run not finished after this long no longer "
                                                   "counts.")
    decided_max_age_s: float = Field(5 * 60, gt=0,
                                     description="A decided run that has not started after this long no "
                                                 "longer counts (the launcher starts a run seconds after its "
                                                 "decision).")


class Sizing(PolicyModel):
    """Right-sizing of standalone runs from the app's own history (sizing.py); the ceilings are per
    cluster."""

    enabled: bool = Field(True, description="Size standalone runs from their history; off: as asked.")
    allow_below_request: bool = Field(False, description="Give a run less executor memory or fewer executors "
                                                         "than the developer asked for, when its history "
                                                         "says so.")
    min_executor_memory: Size = Field(parse_size("512m"), description="The least executor memory a run sized "
                                                                      "below its request gets.")
    max_executor_memory: Size = Field(parse_size("8g"), description="The most executor memory sizing gives: "
                                                                    "no more than a worker of the cluster "
                                                                    "can hold.")
    worker_memory: Size | None = Field(None, description="The memory one worker of the standalone cluster "
                                                         "gives executors (its SPARK_WORKER_MEMORY, "
                                                         "--memory); on YARN or Kubernetes, the largest "
                                                         "container less its memory overhead. Set: no "
                                                         "executor is sized (nor rerun out of memory) above "
                                                         "it, whatever max_executor_memory says; an executor "
                                                         "larger than any worker never starts.")
    max_executors: int = Field(10, ge=1, description="The most executors sizing gives a run.")
    max_driver_memory: Size = Field(parse_size("8g"), description="The most driver memory an out-of-memory "
                                                                  "rerun gets.")
    executor_cores: int = Field(1, ge=1, description="Cores per executor of a run that does not ask: what "
                                                     "the launcher gives it on a standalone cluster.")
    headroom: float = Field(1.25, ge=1, le=10, description="Memory over the measured need.")
    spill_bytes: Size = Field(parse_size("64m"), description="A run that spilled more than this to disk had "
                                                             "too little executor memory.")
    spill_growth: float = Field(2.0, ge=1, le=16, description="Such a run's executor memory is multiplied by "
                                                              "this.")
    target_duration_s: float = Field(300, gt=0, description="Executors enough to do the task time of a run "
                                                            "(its statistic over the history window) in this "
                                                            "wall time.")
    oom_rerun: bool = Field(True,
                            description="Rerun a standalone run that ran out of memory once, with more.")
    oom_growth: float = Field(2.0, gt=1, le=16, description="The rerun's memory: the failed run's times "
                                                            "this, within the ceiling.")


class SchedulerPools(PolicyModel):
    enabled: bool = Field(True, description="Tell each Connect run its FAIR pool (light or heavy); off: runs "
                                            "are told no pool, and their jobs share the server's `default` "
                                            "pool, as without the router.")
    light_max_task_time_ms: int = Field(
        2 * 60 * 1000, ge=0,
        description="A Connect run of an app whose recent task time (history.statistic over history.window "
                    "runs) is at most this runs in the server's `light` FAIR pool, ahead of the `heavy` "
                    "pool's tasks; other runs, and apps with no successful run yet, in `heavy` "
                    "(service/ops/fairscheduler.xml).")


class Policy(PolicyModel):
    """Every knob of the routing policy. Loaded from a YAML or TOML file (SPARK_ROUTER_POLICY_FILE)."""

    version: str = Field("builtin", max_length=80, pattern=r"^[^\x00]*$",
                         description="Your name for this policy; the hash of its content is added.")
    new_app_mode: Mode = Field("connect", description="Mode of an app with no successful run yet.")
    connect_failures: ConnectFailures = Field(default_factory=ConnectFailures)
    server: ServerLimits = Field(default_factory=ServerLimits)
    history: HistoryRule = Field(default_factory=HistoryRule)
    capacity: Capacity = Field(default_factory=Capacity)
    sizing: Sizing = Field(default_factory=Sizing)
    objective: Objective = Field(
        "balanced", description="What the cost-aware rule picks the mode by, from both modes' predictions: "
                                "makespan (the run's wall time), cost (its executor core-seconds), balanced "
                                "(both, weighted by objective_time_weight), off (no cost-aware rule).")
    objective_time_weight: float = Field(0.5, ge=0, le=1, description="balanced: the weight of wall time; "
                                                                       "core-seconds get the rest.")
    scheduler_pools: SchedulerPools = Field(default_factory=SchedulerPools)

    @cached_property  # a policy is not changed once loaded; decisions read this on the hot path
    def full_version(self) -> str:
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:8]
        return f"{self.version}+{digest}"


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the field."""


def load_policy(path: Path) -> Policy:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            if sys.version_info < (3, 11):  # tomllib is new in 3.11; the project runs on 3.10 too
                raise PolicyError(f"policy file {path}: TOML needs Python 3.11 or later; use YAML")
            else:
                import tomllib

                data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except Exception as exc:
        kind = path.suffix.lstrip(".") or "YAML"
        raise PolicyError(f"policy file {path} is not valid {kind}: {exc}") from exc
    return parse_policy(data, str(path))


def parse_policy(data: object, source: str = "policy") -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"{source}: {problems}") from exc


# ------------------------------------------------------------------------------------------ the policy in
# force

log = logging.getLogger(__name__)


class PolicyStore:
    """Hands out the current policy. A changed file is picked up at the next decision (one stat call);
    a broken file keeps the last good policy in force and says why in the log and on reload."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._policy = Policy()
        self.last_error: str | None = None
        if path is not None:
            self.reload()

    def get(self) -> Policy:
        if self.path is not None:
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                mtime = None
            if mtime != self._mtime:
                with contextlib.suppress(PolicyError):  # logged in reload; the last good policy stays
                    self.reload()
        return self._policy

    def reload(self) -> Policy:
        """Read the file now; raise PolicyError (and keep the old policy) if it cannot be used."""
        if self.path is None:
            return self._policy
        with self._lock:
            try:
                self._mtime = self.path.stat().st_mtime if self.path.exists() else None
                policy = load_policy(self.path)
            except PolicyError as exc:
                self.last_error = str(exc)
                log.error("policy not reloaded, keeping %s: %s", self._policy.full_version, exc)
                raise
            if policy.full_version != self._policy.full_version:
                log.info("policy %s in force (from %s)", policy.full_version, self.path)
            self._policy, self.last_error = policy, None
            return policy
