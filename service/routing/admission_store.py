"""The admission queue in the database: the runs in progress a wait is predicted from, putting runs in the
queue, and admitting them (the long poll of GET /api/v1/runs/{run_id}/admission).

A queued run is a run with status "queued" and a row in admission_queue; it leaves the queue (the row goes)
when admitted to a Connect server, sent standalone (the queue's longest wait is up, or room is predicted later
than a standalone start-up), or cancelled (the run's `cancelled` event: history/lifecycle.py). Admitting is
deciding again (decider.admit).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.orm import Session

from service.config import RouterSettings
from service.db.models import AdmissionQueueEntry, Decision, Run, as_utc, utcnow
from service.history.queries import connect_in_flight, in_flight_cutoffs
from service.routing import admission, facts, rules
from service.routing.policy import Policy

# Recent successful Connect runs of an app that its expected wall time is the median of.
WALL_TIME_RUNS = 10
_QUEUE = AdmissionQueueEntry.__table__


# A client asks again at once after each long poll; silent for a long poll and this much more, it is gone.
SILENT_GRACE_S = 15


def silent_after_s(settings: RouterSettings) -> float:
    """How long a queued run's client may go without asking before it counts as gone."""
    return settings.queue_poll_max_s + SILENT_GRACE_S


def polled_since(settings: RouterSettings, now: datetime) -> datetime:
    """A queued run whose client has not asked for longer than a long poll and a grace gave up waiting (killed
    without a word): the runs behind it no longer wait for it, and it is sent standalone if it comes back
    before the queue's longest wait is up (after it, it is cancelled: cancel_abandoned)."""
    return now - timedelta(seconds=silent_after_s(settings))


def with_run_limits(servers: Sequence[rules.ServerFacts],
                    settings: RouterSettings) -> tuple[rules.ServerFacts, ...]:
    """The pool with each server's run limit (SPARK_ROUTER_SERVER_MAX_RUNS)."""
    return tuple(replace(server, max_runs=settings.server_max_runs) for server in servers)


def connect_wall_times(connection: Connection, app_ids: Iterable[str]) -> dict[str, float]:
    """Each app's expected wall time on Connect, in seconds: the median of its last successful Connect runs
    (start to end as the launcher reported them). Apps with none are left out."""
    app_ids = sorted(set(app_ids))
    if not app_ids:
        return {}
    ranked = (select(Run.app_id, Run.started_at, Run.finished_at,
                     func.row_number().over(partition_by=Run.app_id,
                                            order_by=Run.finished_at.desc()).label("n"))
              .where(Run.app_id.in_(app_ids), Run.mode == "connect", Run.status == "succeeded",
                     Run.started_at.is_not(None), Run.finished_at.is_not(None))
              .subquery())
    walls: dict[str, list[float]] = {}
    for app_id, started, finished in connection.execute(
            select(ranked.c.app_id, ranked.c.started_at,
                   ranked.c.finished_at).where(ranked.c.n <= WALL_TIME_RUNS)):
        started, finished = as_utc(started), as_utc(finished)
        walls.setdefault(app_id, []).append(max((finished - started).total_seconds(), 0.0))
    return {app_id: statistics.median(values) for app_id, values in walls.items()}


def in_progress(connection: Connection, servers: Sequence[rules.ServerFacts], now: datetime, policy: Policy,
                default_server_id: str) -> list[admission.InProgress]:
    """The Connect runs in flight on the servers that can take runs, each with its app's expected wall time
    and the time it has run."""
    open_servers = {server.server_id for server in servers
                    if rules.unavailable_reason(server, now, policy) is None}
    cutoffs = in_flight_cutoffs(policy.capacity, now)
    rows = connection.execute(select(Run.app_id, Run.server_id, Run.started_at)
                              .where(connect_in_flight(**cutoffs))).all()
    placed = [(app_id, server_id or default_server_id, as_utc(started))
              for app_id, server_id, started in rows if (server_id or default_server_id) in open_servers]
    walls = connect_wall_times(connection, (app_id for app_id, _, _ in placed))
    return [admission.InProgress(server_id, walls.get(app_id),
                                 max((now - started).total_seconds(), 0.0) if started else 0.0)
            for app_id, server_id, started in placed]


@dataclass
class Waiting:
    """What a decision batch knows of the queue: who waits, and the predictions it needs (read once, if
    needed)."""

    queued: list[admission.Queued]
    _in_progress: list[admission.InProgress] | None = None

    def in_progress(self, connection: Connection, servers: Sequence[rules.ServerFacts], now: datetime,
                    policy: Policy, settings: RouterSettings) -> list[admission.InProgress]:
        if self._in_progress is None:
            self._in_progress = in_progress(connection, servers, now, policy, settings.connect_server_id)
        return self._in_progress


def consider(connection: Connection, waiting: Waiting, verdict: rules.Verdict, app_id: str,
             servers: Sequence[rules.ServerFacts], now: datetime, policy: Policy, settings: RouterSettings
             ) -> tuple[admission.QueueChoice, float | None, float | None, float]:
    """Whether a run the rules found no room for (and that may wait) waits: the choice, its predicted wait,
    its app's expected wall time on Connect and the standalone start-up it was weighed against."""
    fits = admission.fits_when_idle(servers, verdict.predicted_cores, now, policy)
    wait_s = expected_s = None
    if fits:
        wait_s = admission.predicted_wait_s(waiting.in_progress(connection, servers, now, policy, settings),
                                            waiting.queued,
                                            admission.rooms_free(servers, verdict.predicted_cores, now,
                                                                 policy))
        expected_s = connect_wall_times(connection, [app_id]).get(app_id)
    startup = startup_s(connection, settings)
    choice = admission.choose(wait_s, startup, len(waiting.queued), settings.queue_max_length, fits)
    return choice, wait_s, expected_s, startup


def startup_s(connection: Connection, settings: RouterSettings) -> float:
    """What a standalone application's start-up costs: the cluster's measured median (facts.py: the launcher's
    "started" to the first stage of recent standalone runs), else SPARK_ROUTER_QUEUE_STANDALONE_STARTUP_S."""
    measured = facts.read_cluster_facts(connection).standalone_startup
    return measured.median_s if measured is not None else settings.queue_standalone_startup_s


class QueueEntry(TypedDict):
    """A run put in the queue: its admission_queue row (AdmissionQueueEntry's columns but the id)."""

    run_id: str
    app_id: str
    enqueued_at: datetime
    deadline_at: datetime
    last_polled_at: datetime
    predicted_cores: float
    expected_s: float | None
    predicted_wait_s: float | None
    request: dict[str, Any]  # the DecisionRequest as JSON, decided again at admission


def enqueue(connection: Connection, entries: list[QueueEntry]) -> None:
    """Put decided runs (already stored with status queued) in the queue, in the order given."""
    if entries:
        connection.execute(insert(_QUEUE), entries)


def cancel_abandoned(connection: Connection, rows: Sequence[Row[Any]], now: datetime,
                     settings: RouterSettings, up_since: datetime | None = None,
                     keep: str | None = None) -> set[str]:
    """Cancel the queued runs whose clients gave up (admission.abandoned), of the queue's `rows` (locked by
    the caller), all but `keep` (the run whose client is asking now): each run cancelled with the reason (its
    failure message, and a last `queue` reason on its decision), its queue row gone. A run a concurrent event
    holds (its own cancel) is skipped, not waited for: that event takes it out. Returns the runs cancelled."""
    gone = {row.run_id: row for row in rows
            if row.run_id != keep and admission.abandoned(as_utc(row.last_polled_at), as_utc(row.deadline_at),
                                                          now, silent_after_s(settings), up_since)}
    if not gone:
        return set()
    locked = set(connection.scalars(select(Run.run_id).where(Run.run_id.in_(sorted(gone)),
                                                             Run.status == "queued")
                                    .with_for_update(skip_locked=True)))
    for run_id in sorted(locked):
        row = gone[run_id]
        heard = as_utc(row.last_polled_at)
        message = admission.abandoned_message((now - heard).total_seconds(), settings.queue_max_wait_s)
        connection.execute(update(Run).where(Run.run_id == run_id, Run.status == "queued")
                           .values(status="cancelled", finished_at=now, failure_message=message))
        reasons = connection.scalar(select(Decision.reasons).where(Decision.run_id == run_id)) or []
        reason = {"rule": "queue", "metric": "silent_s", "threshold": silent_after_s(settings),
                  "observed": round((now - heard).total_seconds(), 1), "message": message}
        connection.execute(update(Decision).where(Decision.run_id == run_id)
                           .values(reasons=[*reasons, reason]))
        connection.execute(delete(_QUEUE).where(_QUEUE.c.run_id == run_id))
    return locked


def queue_reason(choice: admission.QueueChoice, wait_s: float | None, startup: float) -> dict[str, Any]:
    """The queue's reason, as rules.reasons_json gives the rules' (the threshold: the standalone start-up)."""
    return {"rule": "queue", "metric": "predicted_wait_s",
            "observed": None if wait_s is None else round(wait_s, 1), "threshold": round(startup, 1),
            "message": choice.message}


# ---------------------------------------------------------------------------------------------- the view

def queue_status(session: Session, settings: RouterSettings,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """The runs waiting now, first come first: position, app, waited so far, the last predicted wait, and
    whether their client still asks (a silent one is sent standalone when it asks again)."""
    now = now or utcnow()
    since = polled_since(settings, now)
    rows = session.execute(select(AdmissionQueueEntry,
                                  Run.status).join(Run, Run.run_id == AdmissionQueueEntry.run_id)
                           .where(Run.status == "queued").order_by(AdmissionQueueEntry.id)).all()
    result: list[dict[str, Any]] = []
    position = 0
    for entry, _status in rows:
        live = entry.last_polled_at >= since
        position += 1 if live else 0
        result.append({"run_id": entry.run_id, "app_id": entry.app_id, "position": position if live else None,
                       "enqueued_at": entry.enqueued_at,
                       "waited_s": round((now - entry.enqueued_at).total_seconds(), 1),
                       "predicted_wait_s": entry.predicted_wait_s, "deadline_at": entry.deadline_at,
                       "predicted_cores": entry.predicted_cores, "live": live})
    return result
