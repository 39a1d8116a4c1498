"""The routing rules: pure functions over an app's aggregates that say connect or standalone, and why.

Each rule is ``(facts, policy) -> Verdict | None`` and is correct when called alone; ``decide`` applies them
in order and the first verdict wins. No rule touches the database or the clock: ``decide`` gets everything in
``DecisionFacts``, so every rule is testable without Spark and explainable in one sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from service.routing.policy import Mode, Policy, format_bytes, format_ms

# ------------------------------------------------------------------------------------------------ the facts

@dataclass(frozen=True)
class Resources:
    """What the developer asked for, sizes already in bytes."""

    driver_memory: int | None = None
    executor_memory: int | None = None
    driver_cores: int | None = None
    executor_cores: int | None = None
    num_executors: int | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSummary:
    """What the policy keeps of one successful run."""

    task_time_ms: int
    shuffle_write_bytes: int
    disk_spilled_bytes: int
    peak_execution_memory_bytes: int
    duration_ms: int


@dataclass(frozen=True)
class AppAggregates:
    """Per-app aggregates, kept up to date as runs complete (never a scan of raw history)."""

    pinned_mode: Mode | None = None
    pin_reason: str | None = None
    connect_incompatible: str | None = None  # what the compatibility check found, if anything
    connect_failure_streak: int = 0
    last_connect_failure_at: datetime | None = None
    retry_granted_at: datetime | None = None  # the cool-down's one Connect try, once given
    recent_runs: Sequence[RunSummary] = ()   # successful runs, newest last


@dataclass(frozen=True)
class ServerFacts:
    last_heartbeat_at: datetime | None
    draining: bool
    # From its latest heartbeat: the executors the server holds, their cores in all, its dynamic-allocation
    # ceiling (None: no dynamic allocation, or a listener that does not report it).
    executors: int = 0
    executor_cores: int = 0
    max_executors: int | None = None


@dataclass(frozen=True)
class DecisionFacts:
    now: datetime
    requested_mode: Literal["auto", "connect", "standalone"]
    resources: Resources
    app: AppAggregates
    server: ServerFacts | None
    in_flight_cores: float  # predicted load of the Connect runs in flight


@dataclass(frozen=True)
class Reason:
    rule: str
    message: str
    metric: str | None = None
    observed: float | str | None = None
    threshold: float | str | None = None


@dataclass(frozen=True)
class Verdict:
    mode: Mode
    reasons: tuple[Reason, ...]
    predicted_cores: float = 0.0
    grants_retry: bool = False  # this decision is the cool-down's one Connect try
    # A pinned or forced run is not the policy's choice, so it never counts as the app's one Connect try.
    chosen_by_policy: bool = True


Rule = Callable[[DecisionFacts, Policy], Verdict | None]


# ------------------------------------------------------------------------------------------------- the rules

def admin_pin(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """An admin pinned the app to a mode."""
    if facts.app.pinned_mode is None:
        return None
    why = f": {facts.app.pin_reason}" if facts.app.pin_reason else ""
    return Verdict(facts.app.pinned_mode, (Reason("admin-pin", f"An admin pinned this app to "
                                                               f"{facts.app.pinned_mode}{why}."),),
                   chosen_by_policy=False)


def forced_mode(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """The developer forced a mode for this run."""
    if facts.requested_mode == "auto":
        return None
    return Verdict(facts.requested_mode,
                   (Reason("forced", f"The request forced {facts.requested_mode} mode."),), chosen_by_policy=False)


def connect_incompatible(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """The compatibility check found code that cannot run on Connect: do not spend an attempt."""
    if not facts.app.connect_incompatible:
        return None
    return Verdict("standalone", (Reason(
        "connect-incompatible", f"The app uses what Spark Connect does not support "
                                f"({facts.app.connect_incompatible}).", "compatibility_check",
        facts.app.connect_incompatible),))


def connect_failure_streak(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """After N consecutive Connect failures, standalone; after the cool-down, one Connect try again."""
    app, knobs = facts.app, policy.connect_failures
    if app.connect_failure_streak < knobs.max_consecutive:
        return None
    cooldown = timedelta(days=knobs.cooldown_days)
    cooled_down = app.last_connect_failure_at is None or facts.now - app.last_connect_failure_at >= cooldown
    # A granted try that never reported back stops blocking once it is too old to be running.
    retry_pending = (app.retry_granted_at is not None
                     and (app.last_connect_failure_at is None or app.retry_granted_at > app.last_connect_failure_at)
                     and (facts.now - app.retry_granted_at).total_seconds() < policy.capacity.in_flight_max_age_s)
    if cooled_down and not retry_pending:
        return None  # the one try: later rules decide as usual, and a Connect verdict grants it
    since = (f" (last on {app.last_connect_failure_at:%Y-%m-%d})" if app.last_connect_failure_at else "")
    message = (f"The last {app.connect_failure_streak} Connect runs failed{since}; the app runs standalone "
               f"until {knobs.cooldown_days:g} days after the last failure, then gets one Connect try.")
    if retry_pending:
        message = "The app's one Connect try after its failure streak is already under way."
    return Verdict("standalone", (Reason("connect-failure-streak", message, "connect_failure_streak",
                                         app.connect_failure_streak, knobs.max_consecutive),))


def server_unavailable(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """The Connect server is unhealthy (no recent heartbeat) or draining."""
    server, timeout = facts.server, policy.server.heartbeat_timeout_s
    if server is None or server.last_heartbeat_at is None:
        return Verdict("standalone", (Reason("server-unhealthy", "The Connect server has never sent a heartbeat.",
                                             "heartbeat_age_s", "never", timeout),))
    if server.draining:
        return Verdict("standalone", (Reason("server-draining",
                                             "The Connect server is draining for a restart."),))
    age = (facts.now - server.last_heartbeat_at).total_seconds()
    if age > timeout:
        return Verdict("standalone", (Reason("server-unhealthy", f"The Connect server's last heartbeat was "
                                                                 f"{age:.0f} s ago (limit {timeout:g} s).",
                                             "heartbeat_age_s", round(age, 1), timeout),))
    return None


def needs_own_application(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """The request asks for resources or confs a shared server cannot give a session."""
    asked, limits, reasons = facts.resources, policy.server, []
    size_checks = (("executor_memory", asked.executor_memory, limits.executor_memory),
                   ("driver_memory", asked.driver_memory, limits.driver_memory))
    for name, value, limit in size_checks:
        if value is not None and value > limit:
            reasons.append(Reason("needs-own-application", f"It asks for {name} {format_bytes(value)}, more than "
                                                           f"the shared server's {format_bytes(limit)}.",
                                  name, value, limit))
    count_checks = (("executor_cores", asked.executor_cores, limits.executor_cores),
                    ("num_executors", asked.num_executors, limits.max_executors))
    for name, value, limit in count_checks:
        if value is not None and value > limit:
            reasons.append(Reason("needs-own-application", f"It asks for {name} {value}, more than the shared "
                                                           f"server's {limit}.", name, value, limit))
    for key in sorted(asked.spark_conf):
        prefix = next((p for p in limits.unsupported_conf_prefixes if key.startswith(p)), None)
        if prefix:
            reasons.append(Reason("needs-own-application", f"It sets {key}, which cannot be set per Connect "
                                                           f"session.", "spark_conf", key, prefix))
    return Verdict("standalone", tuple(reasons)) if reasons else None


def no_history(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """No successful run yet: the configured default mode."""
    if facts.app.recent_runs:
        return None
    return Verdict(policy.new_app_mode, (Reason("no-history", f"No successful run yet; the mode of new apps "
                                                              f"is {policy.new_app_mode}."),),
                   predicted_cores=policy.capacity.default_run_cores)


HISTORY_METRICS = {  # metric -> how to show it
    "task_time_ms": format_ms,
    "shuffle_write_bytes": format_bytes,
    "disk_spilled_bytes": format_bytes,
    "peak_execution_memory_bytes": format_bytes,
    "duration_ms": format_ms,
}


def statistic(values: Sequence[float], kind: str) -> float:
    """p90 (nearest rank) or max."""
    ordered = sorted(values)
    if kind == "max":
        return ordered[-1]
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def history_over_thresholds(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """A robust statistic of recent successful runs is over a threshold: too heavy to share a server."""
    runs = list(facts.app.recent_runs)[-policy.history.window:]
    if not runs:
        return None  # nothing to judge by
    kind, reasons = policy.history.statistic, []
    for metric, show in HISTORY_METRICS.items():
        observed = statistic([getattr(run, metric) for run in runs], kind)
        limit = getattr(policy.history.thresholds, metric)
        if observed > limit:
            reasons.append(Reason("history-over-threshold",
                                  f"The {kind} of {metric} over the last {len(runs)} successful runs is "
                                  f"{show(observed)}, over the threshold of {show(limit)}.", metric, observed, limit))
    return Verdict("standalone", tuple(reasons)) if reasons else None


MIN_LOAD_WINDOW_MS = 60_000


def predicted_cores(app: AppAggregates, policy: Policy) -> float:
    """A run's expected load on the server: its recent task time over its wall time (median of runs).
    Wall time counts as at least a minute: a few seconds' burst does not hold the server's cores for long."""
    runs = list(app.recent_runs)[-policy.history.window:]
    if not runs:
        return policy.capacity.default_run_cores
    ratios = sorted(run.task_time_ms / max(run.duration_ms, MIN_LOAD_WINDOW_MS) for run in runs)
    return round(max(ratios[len(ratios) // 2], 0.1), 2)


UNBOUNDED_EXECUTORS = 2**31 - 1  # Spark's maxExecutors when none is set: no ceiling to go by


def server_capacity(server: ServerFacts | None, policy: Policy) -> tuple[float, str]:
    """The cores the Connect server can give concurrent runs, and where that figure comes from: its
    dynamic-allocation ceiling times the cores of an executor, else the cores its executors hold (a server with a
    fixed set of executors, or local[N]), else the policy's capacity.cores."""
    if server is not None and server.max_executors and server.max_executors < UNBOUNDED_EXECUTORS:
        ceiling = server.max_executors
        if server.executors > 0:
            per_executor = server.executor_cores / server.executors
            return ceiling * per_executor, (f"its dynamic-allocation ceiling of {ceiling} executors × "
                                            f"{per_executor:g} cores")
        per_executor = policy.server.executor_cores
        return float(ceiling * per_executor), (f"its dynamic-allocation ceiling of {ceiling} executors × "
                                               f"{per_executor} cores (the policy's server.executor_cores: it holds "
                                               f"no executor to measure)")
    if server is not None and server.executor_cores > 0:
        return float(server.executor_cores), f"the {server.executor_cores} cores its executors hold"
    return policy.capacity.cores, "the policy's capacity.cores; the server has not reported its executors"


def over_capacity(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """The Connect runs in flight plus this one would need more cores than the server has."""
    cores = predicted_cores(facts.app, policy)
    limit, source = server_capacity(facts.server, policy)
    total = facts.in_flight_cores + cores
    if total <= limit:
        return None
    return Verdict("standalone", (Reason("over-capacity", f"Connect runs in flight are predicted to use "
                                                          f"{facts.in_flight_cores:.1f} cores; with this run's "
                                                          f"{cores:.1f} that is over the server's {limit:g} "
                                                          f"({source}).",
                                         "predicted_cores", round(total, 2), round(limit, 2)),),
                   predicted_cores=cores)


def connect_by_default(facts: DecisionFacts, policy: Policy) -> Verdict:
    """Nothing speaks against sharing: connect, with the figures that were checked."""
    runs = list(facts.app.recent_runs)[-policy.history.window:]
    if not runs:
        return Verdict("connect", (Reason("within-limits", "No successful run to judge by, and nothing else "
                                                           "speaks against sharing."),),
                       predicted_cores=predicted_cores(facts.app, policy))
    thresholds, kind, reasons = policy.history.thresholds, policy.history.statistic, []
    for metric, show in HISTORY_METRICS.items():
        observed, limit = statistic([getattr(run, metric) for run in runs], kind), getattr(thresholds, metric)
        reasons.append(Reason("within-limits", f"The {kind} of {metric} over the last {len(runs)} successful runs "
                                               f"is {show(observed)}, under {show(limit)}.", metric, observed, limit))
    return Verdict("connect", tuple(reasons), predicted_cores=predicted_cores(facts.app, policy))


RULES: tuple[Rule, ...] = (admin_pin, forced_mode, connect_incompatible, connect_failure_streak,
                           server_unavailable, needs_own_application, no_history, history_over_thresholds,
                           over_capacity)


def decide(facts: DecisionFacts, policy: Policy) -> Verdict:
    """Apply the rules in order; the first verdict wins."""
    verdict = next((v for rule in RULES if (v := rule(facts, policy)) is not None), None)
    return with_retry_flag(verdict or connect_by_default(facts, policy), facts, policy)


def with_retry_flag(verdict: Verdict, facts: DecisionFacts, policy: Policy) -> Verdict:
    """A Connect verdict of the policy for an app over its failure streak is the cool-down's one try: mark it."""
    if (verdict.mode != "connect" or not verdict.chosen_by_policy
            or facts.app.connect_failure_streak < policy.connect_failures.max_consecutive):
        return verdict
    note = Reason("connect-retry", f"After {facts.app.connect_failure_streak} Connect failures and the "
                                   f"{policy.connect_failures.cooldown_days:g}-day cool-down, this run is the "
                                   f"app's one Connect try.")
    return replace(verdict, reasons=(note, *verdict.reasons), grants_retry=True)


def reasons_json(verdict: Verdict) -> list[dict]:
    return [{"rule": r.rule, "metric": r.metric, "observed": r.observed, "threshold": r.threshold,
             "message": r.message} for r in verdict.reasons]
