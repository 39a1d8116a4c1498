"""The admission queue in front of the pool, as pure functions: when a run that finds no room on any Connect
server waits for room instead of starting a standalone application, how long it is predicted to wait, and the
pool as a queued run sees it (the runs ahead of it already placed).

A run waits when it may (the request's ``can_wait``), no server has room (the ``over-capacity`` or
``queue-ahead`` rule decided), a server could take it once idle, the queue is not full, and the runs in
progress are predicted to leave room sooner than a standalone application starts. The database side (enqueue,
the long poll that admits, cancel) is in admission_store.py.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from service.routing import rules
from service.routing.policy import Policy

# The rules whose standalone verdict means "no room now": the verdicts a run may wait out in the queue.
NO_ROOM_RULES = ("over-capacity", "queue-ahead")


@dataclass(frozen=True)
class Queued:
    """A run waiting in the queue, as the runs behind it see it."""

    run_id: str
    predicted_cores: float
    expected_s: float | None  # its app's recent wall time on Connect; None: no Connect history
    enqueued_at: datetime


@dataclass(frozen=True)
class InProgress:
    """A Connect run in flight on a server that can take runs."""

    server_id: str
    expected_s: float | None  # its app's recent wall time on Connect; None: no Connect history
    elapsed_s: float  # since it started (0 while decided and not yet started)


def remaining_s(run: InProgress) -> float | None:
    """A run's expected remaining time: its app's recent wall time on Connect less the time it has run. None
    when there is nothing to go by: no Connect history, or it already ran longer than its app's runs take."""
    if run.expected_s is None or run.elapsed_s >= run.expected_s:
        return None
    return run.expected_s - run.elapsed_s


def predicted_wait_s(in_progress: Sequence[InProgress], ahead: Sequence[Queued],
                     free_now: int = 0) -> float | None:
    """How long until a run gets room: `free_now` rooms are open now, and each run in progress leaves room
    when its remaining time is up; the runs ahead in the queue take the first rooms that open, each for its
    app's expected wall time, in order; this run gets the next. None when no room is predicted to open (no run
    in progress with a remaining time to go by)."""
    opens = [0.0] * free_now + [left for left in map(remaining_s, in_progress) if left is not None]
    heapq.heapify(opens)
    for queued in ahead:
        if not opens:
            return None
        start = heapq.heappop(opens)
        if queued.expected_s is not None:  # a run with no history holds its room past any prediction
            heapq.heappush(opens, start + queued.expected_s)
    return opens[0] if opens else None


def place_ahead(servers: Sequence[rules.ServerFacts], ahead: Sequence[Queued], now: datetime,
                policy: Policy) -> tuple[tuple[rules.ServerFacts, ...], int]:
    """The pool with the queued runs ahead placed as admission would place them, first come first: each on the
    server that can take runs with room for it (a free run slot first, then the most free cores). Strictly in
    order: once one finds no room, it and every run behind it wait. Returns the pool and how many wait."""
    pool = tuple(servers)
    for index, queued in enumerate(ahead):
        candidates = [server for server in pool if rules.unavailable_reason(server, now, policy) is None
                      and rules.has_room(server, queued.predicted_cores, policy)]
        if not candidates:
            return pool, len(ahead) - index
        chosen = max(candidates, key=lambda server: rules.free_cores(server, policy))
        pool = tuple(replace(server, in_flight_cores=server.in_flight_cores + queued.predicted_cores,
                             in_flight_runs=server.in_flight_runs + 1) if server is chosen else server
                     for server in pool)
    return pool, 0


def rooms_free(servers: Sequence[rules.ServerFacts], cores: float, now: datetime, policy: Policy) -> int:
    """How many runs of `cores` the servers that can take runs have room for now."""
    rooms = 0
    for server in servers:
        if rules.unavailable_reason(server, now, policy) is not None:
            continue
        by_cores = int(rules.free_cores(server, policy) // cores) if cores > 0 else 1
        by_runs = by_cores if server.max_runs is None else server.max_runs - server.in_flight_runs
        rooms += max(0, min(by_cores, by_runs))
    return rooms


def fits_when_idle(servers: Sequence[rules.ServerFacts], cores: float, now: datetime, policy: Policy) -> bool:
    """Some server that can take runs would have room for the run once it has none in flight: waiting can
    help."""
    return any(rules.unavailable_reason(server, now, policy) is None
               and rules.server_capacity(server, policy)[0] >= cores for server in servers)


def abandoned(last_polled_at: datetime, deadline_at: datetime, now: datetime, silent_after_s: float,
              up_since: datetime | None = None) -> bool:
    """A queued run whose client gave up without a word (killed, its machine gone): it has not asked for
    longer than `silent_after_s` (a long poll and a grace), and the queue's longest wait is up, so it could
    not be admitted to Connect any more anyway. Its silence counts from the router's start when that is
    later: a router that was away heard nobody, and its clients ask again once it is back."""
    heard = last_polled_at if up_since is None else max(last_polled_at, up_since)
    return (now - heard).total_seconds() > silent_after_s and now >= deadline_at


def abandoned_message(silent_s: float, max_wait_s: float) -> str:
    """Why an abandoned queued run was cancelled, in one sentence."""
    return (f"Its client stopped asking for its admission {silent_s:.0f} s ago and the queue's longest wait "
            f"({max_wait_s:g} s, SPARK_ROUTER_QUEUE_MAX_WAIT_S) is up: cancelled, it never ran and no longer "
            f"holds a place in the queue.")


@dataclass(frozen=True)
class QueueChoice:
    """Whether a run that finds no room waits, and why (one sentence either way)."""

    wait: bool
    message: str


def choose(wait_s: float | None, startup_s: float, queue_length: int, max_length: int,
           fits: bool) -> QueueChoice:
    """Wait in the queue, or run standalone now: waits when room is predicted sooner than a standalone
    start-up and the queue has a place; `queue_length` counts the runs waiting now, without this one."""
    if not fits:
        return QueueChoice(False, "No Connect server could take it even with no other run, so it does not "
                                  "wait.")
    if queue_length >= max_length:
        return QueueChoice(False, f"The admission queue is full ({max_length} runs), so it does not wait.")
    if wait_s is None:
        return QueueChoice(False, "No run in progress has a history to predict when room opens, so it does "
                                  "not wait.")
    if wait_s >= startup_s:
        return QueueChoice(False, f"Room is predicted in {wait_s:.0f} s, not sooner than a standalone "
                                  f"start-up ({startup_s:.0f} s), so it does not wait.")
    return QueueChoice(True, f"Room is predicted in {wait_s:.0f} s, sooner than a standalone start-up "
                             f"({startup_s:.0f} s): it waits in the queue at position {queue_length + 1}.")

