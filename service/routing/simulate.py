"""What would change under a candidate policy: each app's mode today and under the candidate, and how many
recent runs (and task-hours) would move."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import App, Run, as_bigint, safe_sum, utcnow
from service.routing import rules
from service.routing.decider import aggregates
from service.routing.policy import Policy


def routine_mode(app: rules.AppAggregates, policy: Policy, now) -> rules.Verdict:
    """The mode an ordinary run of the app would get: no forced mode or special resources, a healthy
    server with room (those change by the minute, not with the policy)."""
    facts = rules.DecisionFacts(now=now, requested_mode="auto", resources=rules.Resources(), app=app,
                                servers=(rules.ServerFacts(last_heartbeat_at=now, draining=False),))
    return rules.decide(facts, policy)


def simulate(session: Session, current: Policy, candidate: Policy, days: int) -> dict:
    now = utcnow()
    recent = {app_id: (runs, task_ms) for app_id, runs, task_ms in session.execute(
        select(Run.app_id, func.count(), safe_sum(session, Run.executor_run_time_ms))
        .where(Run.created_at >= now - timedelta(days=days)).group_by(Run.app_id))}
    apps, totals = [], {"apps": 0, "apps_moving": 0, "runs_moving": 0, "task_hours_moving": 0.0,
                        "runs_to_connect": 0, "runs_to_standalone": 0,
                        "task_hours_to_connect": 0.0, "task_hours_to_standalone": 0.0}
    for app in session.scalars(select(App).order_by(App.app_id)):
        facts = aggregates(app)
        today, tomorrow = routine_mode(facts, current, now), routine_mode(facts, candidate, now)
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
    return {"current_policy_version": current.full_version, "candidate_policy_version": candidate.full_version,
            "days": days, "apps": apps, "totals": totals}
