"""What would change under a candidate policy: each app's mode today and under the candidate, and how many
recent runs (and task-hours) would move; and a replay of the apps' kept runs under the candidate: for each
run, the predictions the candidate would have made from the runs before it, against what the run actually
did."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import App, Run, as_bigint, safe_sum, utcnow
from service.routing import rules
from service.routing.accuracy import summary
from service.routing.decider import aggregates
from service.routing.facts import ClusterFacts, RunSummary, read_cluster_facts
from service.routing.policy import Policy
from service.routing.predict import error_pct


def routine_facts(app: rules.AppAggregates, cluster: ClusterFacts, now: datetime) -> rules.DecisionFacts:
    """An ordinary run of the app: no forced mode or special resources, an idle healthy server with room
    (those change by the minute, not with the policy), the cluster's start-up as measured now."""
    return rules.DecisionFacts(now=now, requested_mode="auto", resources=rules.Resources(), app=app,
                               servers=(rules.ServerFacts(last_heartbeat_at=now, draining=False),),
                               cluster=cluster)


def routine_mode(app: rules.AppAggregates, policy: Policy, now: datetime,
                 cluster: ClusterFacts | None = None) -> rules.Verdict:
    """The mode an ordinary run of the app would get (see routine_facts)."""
    return rules.decide(routine_facts(app, cluster or ClusterFacts(), now), policy)


def replay(app: rules.AppAggregates, policy: Policy, cluster: ClusterFacts,
           now: datetime) -> list[dict[str, Any]]:
    """Each kept run of the app (oldest first) as the candidate would have seen it, from the runs before it:
    the mode it would choose, and what it would predict for the mode the run actually ran in, against the
    actual. From the runs' figures alone: the app's pin, compatibility finding, Connect failures and
    out-of-memory errors are not kept as they stood at each run, so the rules on them do not steer it."""
    runs: list[RunSummary] = list(app.recent_runs)
    replayed = []
    for i, run in enumerate(runs):
        if run.mode not in ("connect", "standalone"):
            continue
        before = rules.AppAggregates(recent_runs=tuple(runs[:i]))
        verdict = rules.decide(routine_facts(before, cluster, now), policy)
        predicted = verdict.predictions.of(run.mode) if verdict.predictions else None
        actual_wall = run.duration_ms / 1000
        chosen = verdict.predictions.of(verdict.mode) if verdict.predictions else None
        replayed.append({
            "ran": run.mode, "candidate_mode": verdict.mode, "actual_wall_s": actual_wall,
            "actual_core_s": run.executor_core_s,
            "wall_error_pct": error_pct(predicted.wall_s if predicted else None, actual_wall),
            "core_s_error_pct": error_pct(predicted.core_s if predicted else None, run.executor_core_s),
            "candidate_wall_s": chosen.wall_s if chosen else None,
            "candidate_core_s": chosen.core_s if chosen else None})
    return replayed


def replay_report(per_app: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per app and mode: the candidate's prediction errors; in all: runs, how many would run in another mode,
    and the actual wall time and core-seconds against what the candidate predicted for its own choices (over
    the runs it predicted)."""
    apps, totals = [], {"runs": 0, "runs_in_another_mode": 0, "predicted_runs": 0, "actual_wall_s": 0.0,
                        "actual_core_s": 0.0, "candidate_wall_s": 0.0, "candidate_core_s": 0.0}
    for app_id, runs in sorted(per_app.items()):
        for mode in ("connect", "standalone"):
            ran = [run for run in runs if run["ran"] == mode]
            wall = [run["wall_error_pct"] for run in ran if run["wall_error_pct"] is not None]
            core = [run["core_s_error_pct"] for run in ran if run["core_s_error_pct"] is not None]
            if wall or core:
                apps.append({"app_id": app_id, "mode": mode, "runs": max(len(wall), len(core)),
                             **summary(wall, core)})
        for run in runs:
            totals["runs"] += 1
            totals["runs_in_another_mode"] += run["candidate_mode"] != run["ran"]
            if run["candidate_wall_s"] is not None and run["actual_core_s"] is not None:
                totals["predicted_runs"] += 1
                totals["actual_wall_s"] += run["actual_wall_s"]
                totals["actual_core_s"] += run["actual_core_s"]
                totals["candidate_wall_s"] += run["candidate_wall_s"]
                totals["candidate_core_s"] += run["candidate_core_s"]
    return {"apps": apps, "totals": {key: round(value, 1) if isinstance(value, float) else value
                                     for key, value in totals.items()}}


def simulate(session: Session, current: Policy, candidate: Policy, days: int) -> dict[str, Any]:
    now = utcnow()
    cluster = read_cluster_facts(session.connection())
    recent = {app_id: (runs, task_ms) for app_id, runs, task_ms in session.execute(
        select(Run.app_id, func.count(), safe_sum(session, Run.executor_run_time_ms))
        .where(Run.created_at >= now - timedelta(days=days)).group_by(Run.app_id))}
    apps, totals = [], {"apps": 0, "apps_moving": 0, "runs_moving": 0, "task_hours_moving": 0.0,
                        "runs_to_connect": 0, "runs_to_standalone": 0,
                        "task_hours_to_connect": 0.0, "task_hours_to_standalone": 0.0}
    replayed: dict[str, list[dict[str, Any]]] = {}
    for app in session.scalars(select(App).order_by(App.app_id)):
        facts = aggregates(app)
        today, tomorrow = routine_mode(facts, current, now, cluster), routine_mode(facts, candidate, now,
                                                                                   cluster)
        runs, task_ms = recent.get(app.app_id, (0, 0))
        task_hours = round(as_bigint(task_ms) / 3_600_000, 4)
        apps.append({"app_id": app.app_id, "current_mode": today.mode, "current_rule": today.reasons[0].rule,
                     "candidate_mode": tomorrow.mode, "candidate_rule": tomorrow.reasons[0].rule,
                     "runs": runs, "task_hours": task_hours})
        totals["apps"] += 1
        if today.mode != tomorrow.mode:
            totals["apps_moving"] += 1
            totals["runs_moving"] += runs
            totals["task_hours_moving"] += task_hours
            totals[f"runs_to_{tomorrow.mode}"] += runs
            totals[f"task_hours_to_{tomorrow.mode}"] += task_hours
        replayed[app.app_id] = replay(facts, candidate, cluster, now)
    return {"current_policy_version": current.full_version,
            "candidate_policy_version": candidate.full_version, "days": days, "apps": apps, "totals": totals,
            "replay": replay_report(replayed)}
