"""The pool of Connect servers as placement sees it, for the API, the dashboard and `restart-server
--rolling`: each server's health, drain flag, capacity, and the load of the Connect runs in flight on it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.config import RouterSettings
from service.db.models import utcnow
from service.history.queries import in_flight_cutoffs, in_flight_runs_by_server
from service.routing import admission_store, decision_store, rules
from service.routing.decider import default_server
from service.routing.policy import Policy


def pool_status(session: Session, policy: Policy, settings: RouterSettings) -> list[dict[str, Any]]:
    """Every server of the pool, the default first: up, draining or down, whether it can take a run now (and
    why not), its capacity and where that figure comes from, the predicted cores and the runs in flight on
    it."""
    now = utcnow()
    cutoffs = in_flight_cutoffs(policy.capacity, now)
    servers = admission_store.with_run_limits(
        decision_store.read_pool(session.connection(), default_server(settings), **cutoffs), settings)
    runs = in_flight_runs_by_server(session, cutoffs, settings.connect_server_id)
    result = []
    for server in servers:
        unavailable = rules.unavailable_reason(server, now, policy, f"Connect server {server.server_id}")
        capacity, source = rules.server_capacity(server, policy)
        age = (None if server.last_heartbeat_at is None
               else round((now - server.last_heartbeat_at).total_seconds(), 1))
        up = age is not None and age <= policy.server.heartbeat_timeout_s
        result.append({
            "server_id": server.server_id, "default": server.server_id == settings.connect_server_id,
            "connect_url": server.connect_url,
            "status": ("draining" if server.draining else "up") if up else "down",
            "available": unavailable is None, "unavailable_reason": unavailable and unavailable.message,
            "draining": server.draining, "last_heartbeat_at": server.last_heartbeat_at,
            "heartbeat_age_s": age, "executors": server.executors, "executor_cores": server.executor_cores,
            "max_executors": server.max_executors, "capacity_cores": round(capacity, 2),
            "capacity_source": source, "in_flight_cores": round(server.in_flight_cores, 2),
            "free_cores": round(rules.free_cores(server, policy), 2),
            "in_flight_runs": runs.get(server.server_id, 0), "max_runs": server.max_runs,
            "room": rules.has_room(server, policy.capacity.default_run_cores, policy) and unavailable is None,
        })
    return result
