"""The routing rules: pure functions over an app's aggregates and the pool of Connect servers that say connect
or standalone, and why; and placement: which server of the pool a Connect run goes to, and which of its FAIR
scheduler pools its jobs run in.

Each rule is ``(facts, policy) -> Verdict | None`` and is correct when called alone; ``decide`` applies them
in order, the first verdict wins, and a Connect verdict is placed on a server (``place``). No rule touches the
database or the clock: ``decide`` gets everything in ``DecisionFacts``, so every rule is testable without
Spark and explainable in one sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from service.routing.facts import ClusterFacts, RunSummary, app_facts
from service.routing.policy import Mode, Policy, format_bytes, format_ms
from service.routing.predict import ConnectLoad, Predictions, better_mode, predict, score

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
class AppAggregates:
    """Per-app aggregates, kept up to date as runs complete (never a scan of raw history)."""

    pinned_mode: Mode | None = None
    pin_reason: str | None = None
    connect_incompatible: str | None = None  # what the compatibility check found, if anything
    connect_failure_streak: int = 0
    last_connect_failure_at: datetime | None = None
    retry_granted_at: datetime | None = None  # the cool-down's one Connect try, once given
    last_connect_oom_at: datetime | None = None  # a task of the app last ran out of memory on Connect
    recent_runs: Sequence[RunSummary] = ()   # successful runs, newest last
    pinned_server: str | None = None  # with pinned_mode connect: the server of the pool its runs go to


@dataclass(frozen=True)
class ServerFacts:
    """A Connect server of the pool: its health (last heartbeat), drain flag, capacity and load."""

    last_heartbeat_at: datetime | None
    draining: bool
    # From its latest heartbeat: the executors the server holds, their cores in all, its dynamic-allocation
    # ceiling (None: no dynamic allocation, or a listener that does not report it).
    executors: int = 0
    executor_cores: int = 0
    max_executors: int | None = None
    server_id: str = "connect-server"
    connect_url: str | None = None  # where its clients connect
    in_flight_cores: float = 0.0  # predicted load of the Connect runs in flight on it
    in_flight_runs: int = 0  # the Connect runs in flight on it (decided or running)
    max_runs: int | None = None  # the runs it takes at once (SPARK_ROUTER_SERVER_MAX_RUNS); None: no limit


@dataclass(frozen=True)
class DecisionFacts:
    now: datetime
    requested_mode: Literal["auto", "connect", "standalone"]
    resources: Resources
    app: AppAggregates
    # The pool of Connect servers, the default server (SPARK_ROUTER_CONNECT_SERVER_ID) first, known to the
    # router or not: a Connect run no server can take (forced, pinned) goes there, as with one server.
    servers: tuple[ServerFacts, ...] = ()
    # Runs in the admission queue ahead of this one that have no room yet (admission.place_ahead): they come
    # first.
    queued_ahead: int = 0
    cluster: ClusterFacts = field(default_factory=ClusterFacts)  # measured start-ups (routing/facts.py)


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
    server_id: str | None = None  # a Connect verdict's server, once placed
    connect_url: str | None = None
    # both modes' predictions for the run (decide sets them on every verdict)
    predictions: Predictions | None = None


Rule = Callable[[DecisionFacts, Policy], Verdict | None]


# ------------------------------------------------------------------------------------------------- the rules

def admin_pin(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """An admin pinned the app to a mode, or to one Connect server: standalone while that server cannot take
    runs."""
    app = facts.app
    if app.pinned_mode is None:
        return None
    why = f": {app.pin_reason}" if app.pin_reason else ""
    if app.pinned_mode == "connect" and app.pinned_server:
        name = f"Connect server {app.pinned_server}"
        server = next((s for s in facts.servers if s.server_id == app.pinned_server), None)
        reason = None if server is None else unavailable_reason(server, facts.now, policy, name)
        if server is None or reason is not None:
            problem = reason.message if reason else f"{name} is not in the pool (it reports no Connect URL)."
            return Verdict("standalone", (Reason("admin-pin", f"An admin pinned this app to {name}{why}. "
                                                              f"{problem} The run goes standalone."),),
                           chosen_by_policy=False)
        return Verdict("connect", (Reason("admin-pin", f"An admin pinned this app to {name}{why}."),),
                       chosen_by_policy=False)
    return Verdict(app.pinned_mode,
                   (Reason("admin-pin", f"An admin pinned this app to {app.pinned_mode}{why}."),),
                   chosen_by_policy=False)


def forced_mode(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """The developer forced a mode for this run."""
    if facts.requested_mode == "auto":
        return None
    return Verdict(facts.requested_mode,
                   (Reason("forced", f"The request forced {facts.requested_mode} mode."),),
                   chosen_by_policy=False)


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
                     and (app.last_connect_failure_at is None
                          or app.retry_granted_at > app.last_connect_failure_at)
                     and (facts.now
                          - app.retry_granted_at).total_seconds() < policy.capacity.in_flight_max_age_s)
    if cooled_down and not retry_pending:
        return None  # the one try: later rules decide as usual, and a Connect verdict grants it
    since = (f" (last on {app.last_connect_failure_at:%Y-%m-%d})" if app.last_connect_failure_at else "")
    message = (f"The last {app.connect_failure_streak} Connect runs failed{since}; the app runs standalone "
               f"until {knobs.cooldown_days:g} days after the last failure, then gets one Connect try.")
    if retry_pending:
        message = "The app's one Connect try after its failure streak is already under way."
    return Verdict("standalone", (Reason("connect-failure-streak", message, "connect_failure_streak",
                                         app.connect_failure_streak, knobs.max_consecutive),))


def connect_out_of_memory(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """A task of the app ran out of memory on a shared Connect server lately: standalone, where running out of
    memory harms only the app (and its rerun gets more)."""
    last, days = facts.app.last_connect_oom_at, policy.connect_failures.out_of_memory_days
    if last is None or days <= 0 or facts.now - last >= timedelta(days=days):
        return None
    age_s = (facts.now - last).total_seconds()
    return Verdict("standalone", (Reason(
        "connect-out-of-memory", f"A task of this app ran out of memory on a shared Connect server "
                                 f"{format_ms(age_s * 1000)} ago, which can take down an executor other "
                                 f"apps' tasks run on; its runs go standalone for {days:g} days after that.",
        "last_connect_oom_age_s", round(age_s), days * 86400),))


def unavailable_reason(server: ServerFacts | None, now: datetime, policy: Policy, name: str = "The Connect "
                                                                                              "server"
                       ) -> Reason | None:
    """Why the server cannot take a new run (unhealthy: no recent heartbeat; or draining), or None: it can."""
    timeout = policy.server.heartbeat_timeout_s
    if server is None or server.last_heartbeat_at is None:
        return Reason("server-unhealthy", f"{name} has never sent a heartbeat.", "heartbeat_age_s", "never",
                      timeout)
    if server.draining:
        return Reason("server-draining", f"{name} is draining for a restart.")
    age = (now - server.last_heartbeat_at).total_seconds()
    if age > timeout:
        return Reason("server-unhealthy", f"{name}'s last heartbeat was {age:.0f} s ago (limit {timeout:g} "
                                          "s).",
                      "heartbeat_age_s", round(age, 1), timeout)
    return None


def available_servers(facts: DecisionFacts, policy: Policy) -> list[ServerFacts]:
    """The servers of the pool that can take a new run: heard from lately and not draining."""
    return [server for server in facts.servers if unavailable_reason(server, facts.now, policy) is None]


def server_unavailable(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """No Connect server can take a run: each is unhealthy (no recent heartbeat) or draining."""
    if available_servers(facts, policy):
        return None
    if len(facts.servers) <= 1:  # one server (or none known): said as ever
        server = facts.servers[0] if facts.servers else None
        reasons = [unavailable_reason(server, facts.now, policy)]
    else:
        reasons = [unavailable_reason(server, facts.now, policy, f"Connect server {server.server_id}")
                   for server in facts.servers]
    # None of them is available, so each has its reason.
    return Verdict("standalone", tuple(reason for reason in reasons if reason is not None))


def needs_own_application(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """The request asks for resources or confs a shared server cannot give a session."""
    asked, limits, reasons = facts.resources, policy.server, []
    size_checks = (("executor_memory", asked.executor_memory, limits.executor_memory),
                   ("driver_memory", asked.driver_memory, limits.driver_memory))
    for name, value, limit in size_checks:
        if value is not None and value > limit:
            reasons.append(Reason("needs-own-application", f"It asks for {name} {format_bytes(value)}, more "
                                                           f"than the shared server's {format_bytes(limit)}.",
                                  name, value, limit))
    count_checks = (("executor_cores", asked.executor_cores, limits.executor_cores),
                    ("num_executors", asked.num_executors, limits.max_executors))
    for name, value, limit in count_checks:
        if value is not None and value > limit:
            reasons.append(Reason("needs-own-application", f"It asks for {name} {value}, more than the "
                                                           f"shared server's {limit}.", name, value, limit))
    for key in sorted(asked.spark_conf):
        prefix = next((p for p in limits.unsupported_conf_prefixes if key.startswith(p)), None)
        if prefix:
            reasons.append(Reason("needs-own-application", f"It sets {key}, which cannot be set per Connect "
                                                           f"session.", "spark_conf", key, prefix))
    return Verdict("standalone", tuple(reasons)) if reasons else None


def no_history(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """No successful run yet: the configured default mode. Sent to Connect, a new app still takes its turn:
    with runs waiting in the queue ahead of it, or no server with a run slot free
    (SPARK_ROUTER_SERVER_MAX_RUNS, the bound of the server's one driver), the rules after this one say there
    is no room (and the run may wait in the queue). Its cores are a guess with no history, so they alone do
    not hold it back."""
    if facts.app.recent_runs:
        return None
    if policy.new_app_mode == "connect" and (facts.queued_ahead > 0 or not any(
            not runs_full(server) for server in available_servers(facts, policy))):
        return None  # queue-ahead or over-capacity decides
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
                                  f"{show(observed)}, over the threshold of {show(limit)}.", metric, observed,
                                  limit))
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
    dynamic-allocation ceiling times the cores of an executor, else the cores its executors hold (a server
    with a fixed set of executors, or local[N]), else the policy's capacity.cores."""
    if server is not None and server.max_executors and server.max_executors < UNBOUNDED_EXECUTORS:
        ceiling = server.max_executors
        if server.executors > 0:
            per_executor = server.executor_cores / server.executors
            return ceiling * per_executor, (f"its dynamic-allocation ceiling of {ceiling} executors × "
                                            f"{per_executor:g} cores")
        per_executor = policy.server.executor_cores
        return float(ceiling * per_executor), (f"its dynamic-allocation ceiling of {ceiling} executors × "
                                               f"{per_executor} cores (the policy's server.executor_cores: "
                                               f"it holds no executor to measure)")
    if server is not None and server.executor_cores > 0:
        return float(server.executor_cores), f"the {server.executor_cores} cores its executors hold"
    return policy.capacity.cores, "the policy's capacity.cores; the server has not reported its executors"


def free_cores(server: ServerFacts, policy: Policy) -> float:
    """The server's capacity less the predicted cores of the Connect runs in flight on it."""
    return server_capacity(server, policy)[0] - server.in_flight_cores


def runs_full(server: ServerFacts) -> bool:
    """The server already has as many runs in flight as it takes at once."""
    return server.max_runs is not None and server.in_flight_runs >= server.max_runs


def has_room(server: ServerFacts, cores: float, policy: Policy) -> bool:
    """Room for a run of `cores` on the server: a run slot free, and that many cores free of runs in
    flight."""
    return not runs_full(server) and free_cores(server, policy) >= cores


def queue_ahead(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """Runs wait in the admission queue for room ahead of this one: first come, first served."""
    if facts.queued_ahead <= 0:
        return None
    runs = f"{facts.queued_ahead} run{'s' if facts.queued_ahead != 1 else ''}"
    return Verdict("standalone", (Reason("queue-ahead", f"{runs} wait in the admission queue for room ahead "
                                                        f"of this one.", "queued_ahead", facts.queued_ahead,
                                                        0),),
                   predicted_cores=predicted_cores(facts.app, policy))


def over_capacity(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """No Connect server has room: on each, the runs in flight plus this one would need more cores than it
    has, or it has as many runs as it takes at once. Judged over the servers that can take a run; when none
    can, over every server of the pool."""
    cores = predicted_cores(facts.app, policy)
    pool = available_servers(facts, policy) or list(facts.servers) or [ServerFacts(None, False)]
    if any(has_room(server, cores, policy) for server in pool):
        return None
    slotted = [server for server in pool if not runs_full(server)]
    if not slotted:  # every server has all the runs it takes: that is what to say, whatever the cores
        best = min(pool, key=lambda server: server.in_flight_runs - (server.max_runs or 0))
        where = "the server" if len(facts.servers) <= 1 else f"{best.server_id}, the one with the fewest"
        message = (f"No Connect server has room: {where} has {best.in_flight_runs} runs in flight, as many "
                   f"as it takes at once ({best.max_runs}, SPARK_ROUTER_SERVER_MAX_RUNS).")
        return Verdict("standalone", (Reason("over-capacity", message, "in_flight_runs", best.in_flight_runs,
                                             best.max_runs),), predicted_cores=cores)
    best = max(slotted, key=lambda server: free_cores(server, policy))
    limit, source = server_capacity(best, policy)
    total = best.in_flight_cores + cores
    if len(facts.servers) <= 1:
        message = (f"Connect runs in flight are predicted to use {best.in_flight_cores:.1f} cores; with this "
                   f"run's {cores:.1f} that is over the server's {limit:g} ({source}).")
    else:
        message = (f"No Connect server has room for this run's {cores:.1f} cores: on {best.server_id}, the "
                   f"one with the most, runs in flight are predicted to use {best.in_flight_cores:.1f} of "
                   f"its {limit:g} ({source}).")
    return Verdict("standalone", (Reason("over-capacity", message, "predicted_cores", round(total, 2),
                                         round(limit, 2)),), predicted_cores=cores)


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
        reasons.append(Reason("within-limits", f"The {kind} of {metric} over the last {len(runs)} successful "
                                               f"runs is {show(observed)}, under {show(limit)}.", metric,
                                               observed, limit))
    return Verdict("connect", tuple(reasons), predicted_cores=predicted_cores(facts.app, policy))


def requested_cores(resources: Resources) -> float | None:
    """The executor cores a standalone run asks for: num_executors × executor_cores (None unless both are
    asked: a cluster manager decides the rest)."""
    if resources.num_executors is None or resources.executor_cores is None:
        return None
    return float(resources.num_executors * resources.executor_cores)


def connect_load(server: ServerFacts, policy: Policy) -> ConnectLoad:
    """The server as a prediction sees it: the cores its executors hold now; with none, one executor's (a
    dynamic-allocation server starts one for the run) or its capacity (no executors to report: local mode)."""
    if server.executor_cores > 0:
        cores = float(server.executor_cores)
    elif server.max_executors:
        cores = float(policy.server.executor_cores)
    else:
        cores = server_capacity(server, policy)[0]
    return ConnectLoad(server.server_id, cores, server.in_flight_cores)


def target_server(facts: DecisionFacts, policy: Policy) -> ServerFacts | None:
    """The server a Connect run of the app would go to (as ``place`` chooses), or None when none can
    take it."""
    candidates = available_servers(facts, policy)
    pinned = next((s for s in candidates if s.server_id == facts.app.pinned_server), None)
    if pinned is not None and facts.app.pinned_mode == "connect":
        return pinned
    return max(candidates, key=lambda server: free_cores(server, policy)) if candidates else None


def run_predictions(facts: DecisionFacts, policy: Policy, server_id: str | None = None) -> Predictions:
    """Both modes' predictions for this run of the app: on `server_id` (else the server it would go to), from
    its last `history.prediction_window` runs in each mode."""
    server = (next((s for s in facts.servers if s.server_id == server_id), None) if server_id
              else target_server(facts, policy))
    window = min(policy.history.prediction_window, policy.history.window)
    return predict(app_facts(facts.app.recent_runs, window), facts.cluster,
                   connect_load(server, policy) if server is not None else None,
                   requested_cores(facts.resources))


def cost_aware(facts: DecisionFacts, policy: Policy) -> Verdict | None:
    """With both modes predicted, the mode with the better objective (wall time, core-seconds or both)."""
    if policy.objective == "off":
        return None
    predictions = run_predictions(facts, policy)
    mode = better_mode(predictions, policy.objective, policy.objective_time_weight)
    if mode is None:
        return None
    connect, standalone = predictions.connect, predictions.standalone
    assert connect is not None and standalone is not None  # better_mode says so
    on_connect = (f"{connect.wall_s:.0f} s ±{connect.uncertainty:.0%} and {connect.core_s:.0f} core-s on "
                  f"{connect.server_id} ({round(connect.cores, 1):g} of its cores; runs in flight "
                  f"{connect.in_flight_cores or 0:.1f})")
    alone = (f"{standalone.wall_s:.0f} s ±{standalone.uncertainty:.0%} and {standalone.core_s:.0f} core-s "
             f"standalone (incl. {standalone.startup_s:.0f} s start-up)")
    weight = (f" ({policy.objective_time_weight:g} time, {1 - policy.objective_time_weight:g} core-s)"
              if policy.objective == "balanced" else "")
    first, second = (on_connect, alone) if mode == "connect" else (alone, on_connect)
    message = (f"{mode.capitalize()}: predicted {first} against {second}; objective "
               f"{policy.objective}{weight}.")
    chosen, other = (connect, standalone) if mode == "connect" else (standalone, connect)
    weigh = policy.objective, policy.objective_time_weight
    return Verdict(mode, (Reason("cost-aware", message, f"objective_{policy.objective}",
                                 round(score(chosen, other, *weigh), 3),
                                 round(score(other, chosen, *weigh), 3)),),
                   predicted_cores=predicted_cores(facts.app, policy) if mode == "connect" else 0.0,
                   predictions=predictions)


RULES: tuple[Rule, ...] = (admin_pin, forced_mode, connect_incompatible, connect_failure_streak,
                           connect_out_of_memory, server_unavailable, needs_own_application, no_history,
                           history_over_thresholds, queue_ahead, over_capacity, cost_aware)


def decide(facts: DecisionFacts, policy: Policy) -> Verdict:
    """Apply the rules in order; the first verdict wins; a Connect verdict is placed on a server of the pool
    and says the server's scheduler pool for its jobs (unless the policy's scheduler_pools are off: then its
    jobs share the server's default pool). Every verdict carries both modes' predictions for the run (on the
    server it was placed on)."""
    verdict = next((v for rule in RULES if (v := rule(facts, policy)) is not None), None)
    verdict = with_retry_flag(verdict or connect_by_default(facts, policy), facts, policy)
    if verdict.mode == "connect" and policy.scheduler_pools.enabled:
        verdict = replace(verdict, reasons=(*verdict.reasons, scheduler_pool(facts.app, policy)))
    verdict = place(verdict, facts, policy)
    predicted = verdict.predictions and verdict.predictions.connect
    if verdict.predictions is None or (verdict.mode == "connect" and predicted
                                       and predicted.server_id != verdict.server_id):
        verdict = replace(verdict, predictions=run_predictions(facts, policy, verdict.server_id))
    return verdict


def place(verdict: Verdict, facts: DecisionFacts, policy: Policy) -> Verdict:
    """The server a Connect run goes to: the app's pinned server; else, of the servers that can take a run,
    the one with the most free cores (the first of the pool on a tie); else (a forced or pinned run no server
    can take) the default server. Every Connect run counts its predicted cores on its server, forced and
    pinned ones too. With more than one server, a last reason says which server and why."""
    if verdict.mode != "connect" or not facts.servers:
        return verdict
    cores = verdict.predicted_cores or predicted_cores(facts.app, policy)
    pinned = next((s for s in facts.servers if s.server_id == facts.app.pinned_server), None)
    candidates = available_servers(facts, policy)
    if pinned is not None and facts.app.pinned_mode == "connect":
        chosen, why = pinned, f"Placed on {pinned.server_id}, the server an admin pinned the app to."
    elif candidates:
        # A server with a run slot free first; then the most free cores (max keeps the first of equals).
        chosen = max(candidates, key=lambda server: (not runs_full(server), free_cores(server, policy)))
        others = ", ".join(f"{s.server_id} {free_cores(s, policy):.1f} of {server_capacity(s, policy)[0]:g}"
                           for s in candidates if s is not chosen)
        why = (f"Placed on {chosen.server_id}, the server with the most free capacity: "
               f"{free_cores(chosen, policy):.1f} of its {server_capacity(chosen, policy)[0]:g} cores free "
               f"of runs in flight"
               + (f" (others: {others})." if others else "; no other server can take a run now."))
    else:
        chosen = facts.servers[0]
        why = (f"Placed on {chosen.server_id}, the default server: no server of the pool can take a run now, "
               f"and the run was forced or pinned to Connect.")
    reasons = verdict.reasons
    if len(facts.servers) > 1 or facts.app.pinned_server:
        reasons += (Reason("placement", why, "free_cores", round(free_cores(chosen, policy), 2), cores),)
    return replace(verdict, reasons=reasons, predicted_cores=cores, server_id=chosen.server_id,
                   connect_url=chosen.connect_url)


# The FAIR pools of the Connect server that runs go to (service/ops/fairscheduler.xml; a fixed set, since
# Spark never removes a pool it has created).
LIGHT_POOL, HEAVY_POOL = "light", "heavy"
SCHEDULER_POOL_RULE = "scheduler-pool"


def scheduler_pool(app: AppAggregates, policy: Policy) -> Reason:
    """The server's scheduler pool for a Connect run of the app, as a reason whose `observed` is the pool:
    light when its recent task time is at most the policy's limit (its jobs then get free cores before heavy
    runs' tasks), heavy otherwise and while no successful run shows it is light."""
    runs = list(app.recent_runs)[-policy.history.window:]
    limit, kind = policy.scheduler_pools.light_max_task_time_ms, policy.history.statistic
    if not runs:
        return Reason(SCHEDULER_POOL_RULE, f"Its jobs run in the server's {HEAVY_POOL} pool: no successful "
                                           f"run yet shows a task time of at most {format_ms(limit)}.",
                      "scheduler_pool", HEAVY_POOL, None)
    observed = statistic([run.task_time_ms for run in runs], kind)
    pool, compared = (LIGHT_POOL, "at most") if observed <= limit else (HEAVY_POOL, "over")
    return Reason(SCHEDULER_POOL_RULE, f"Its jobs run in the server's {pool} pool: the {kind} of "
                                       f"task_time_ms over the last {len(runs)} successful runs is "
                                       f"{format_ms(observed)}, {compared} {format_ms(limit)}.",
                                       "scheduler_pool", pool, None)


def with_retry_flag(verdict: Verdict, facts: DecisionFacts, policy: Policy) -> Verdict:
    """A Connect verdict of the policy for an app over its failure streak is the cool-down's one try:
    mark it."""
    if (verdict.mode != "connect" or not verdict.chosen_by_policy
            or facts.app.connect_failure_streak < policy.connect_failures.max_consecutive):
        return verdict
    note = Reason("connect-retry", f"After {facts.app.connect_failure_streak} Connect failures and the "
                                   f"{policy.connect_failures.cooldown_days:g}-day cool-down, this run is "
                                   f"the app's one Connect try.")
    return replace(verdict, reasons=(note, *verdict.reasons), grants_retry=True)


def reasons_json(verdict: Verdict) -> list[dict[str, Any]]:
    return [{"rule": r.rule, "metric": r.metric, "observed": r.observed, "threshold": r.threshold,
             "message": r.message} for r in verdict.reasons]
