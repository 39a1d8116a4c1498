"""The admission queue on the real Connect server (issue 22): with room for one run, a long run holds the
server; a second run that can wait is queued and then admitted to Connect when the first ends; a third,
stopped while queued, is cancelled and leaves the queue.

Deterministic by construction: the long run holds the server until the test opens a gate (a file), not for a
fixed time that a loaded machine can outlast; and what a wait is weighed against is set by the test, not by
whatever the session's earlier tests left in the shared database: the holder's app is expected to take
HOLDER_WALL_S, the cluster's standalone start-up is measured at STARTUP_S (seeded runs, removed after), so the
runs behind it wait whatever the machine's real start-up."""

from __future__ import annotations

import signal
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, delete, update
from sqlalchemy.orm import Session

from service.db.models import App, Run, utcnow
from service.history.queries import IN_FLIGHT
from service.routing.facts import STARTUP_SAMPLES
from tests.client_runtime.test_launcher_spark import SPARK_ROUTER, launcher_env, runs_of
from tests.support import RouterProcess, wait_until

pytestmark = pytest.mark.spark

# Every run waits at the gate (the holder until the test opens it; the others find it open) for at most
# GATE_MAX_S, then fails: a test that never opens it does not hang.
APP = """
import os, sys, time
from client_runtime.session import get_session
spark = get_session()
print("RESULT", spark.range(1000).count(), flush=True)
gate, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while not os.path.exists(gate):
    if time.monotonic() > deadline:
        sys.exit("the gate was never opened")
    time.sleep(0.2)
"""
GATE_MAX_S = 600
HOLDER_WALL_S = 900  # longer than the holder can hold in this test: its remaining time stays known
STARTUP_S = 3000  # longer than the holder's expected wall time: waiting behind it beats a standalone start


def seed(pg_url, app_id, wall_s):
    """Recent successful Connect runs of the app, `wall_s` long: what the wait is predicted from."""
    engine = create_engine(pg_url)
    ended = utcnow() - timedelta(hours=1)
    with Session(engine) as session:
        session.merge(
            App(
                app_id=app_id,
                recent_runs=[
                    {
                        "run_id": f"seed-{app_id}",
                        "task_time_ms": 1000,
                        "shuffle_write_bytes": 0,
                        "disk_spilled_bytes": 0,
                        "peak_execution_memory_bytes": 0,
                        "duration_ms": int(wall_s * 1000),
                    }
                ],
            )
        )
        session.merge(
            Run(
                run_id=f"seed-{app_id}",
                app_id=app_id,
                mode="connect",
                status="succeeded",
                created_at=ended - timedelta(seconds=wall_s),
                started_at=ended - timedelta(seconds=wall_s),
                finished_at=ended,
                server_id=None,
            )
        )
        session.commit()
    engine.dispose()


def seed_standalone_startup(pg_url, app_id, startup_s) -> None:
    """The cluster's measured standalone start-up (facts.py: the last STARTUP_SAMPLES successful standalone
    runs, newest by end) made `startup_s`: as many runs of `app_id`, each ended now."""
    engine = create_engine(pg_url)
    now = utcnow()
    with Session(engine) as session:
        session.merge(App(app_id=app_id, recent_runs=[]))
        session.flush()
        for n in range(STARTUP_SAMPLES):
            started = now - timedelta(seconds=startup_s + 10)
            session.add(
                Run(
                    run_id=f"seed-{app_id}-{n}",
                    app_id=app_id,
                    mode="standalone",
                    status="succeeded",
                    created_at=started,
                    started_at=started,
                    first_stage_at=started + timedelta(seconds=startup_s),
                    finished_at=now,
                    server_id=None,
                )
            )
        session.commit()
    engine.dispose()


def unseed(pg_url, app_id) -> None:
    engine = create_engine(pg_url)
    with Session(engine) as session:
        session.execute(delete(Run).where(Run.app_id == app_id))
        session.execute(delete(App).where(App.app_id == app_id))
        session.commit()
    engine.dispose()


def end_earlier_tests_connect_runs(pg_url) -> None:
    """Earlier tests of the session share this database and server, and one may leave a Connect run in flight
    (never reported ended); with room for one run, this test needs the server empty at its start."""
    engine = create_engine(pg_url)
    with Session(engine) as session:
        session.execute(
            update(Run)
            .where(Run.mode == "connect", Run.status.in_(IN_FLIGHT))
            .values(status="cancelled", finished_at=utcnow())
        )
        session.commit()
    engine.dispose()


def with_decisions(router, app_id):
    """What the router decided for the app's runs (for a failure's message)."""
    return [
        (
            run["mode"],
            run["status"],
            [
                reason["message"]
                for reason in (router.get(f"/api/v1/runs/{run['run_id']}")["decision"] or {}).get(
                    "reasons", []
                )
            ],
        )
        for run in runs_of(router, app_id)
    ]


def wait_for_status(router, app_id, status, timeout_s, what, mode=None):
    def reached():
        return any(
            run["status"] == status and (mode is None or run["mode"] == mode)
            for run in runs_of(router, app_id)
        )

    try:
        wait_until(reached, timeout_s, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the app's runs: {with_decisions(router, app_id)}") from None


def test_queued_behind_a_long_run_then_admitted_and_one_cancelled(
    router, connect_server, state_dir, pg_url, connect_ports, tmp_path
):
    queue_router = RouterProcess(
        pg_url,
        state_dir,
        env={
            "SPARK_ROUTER_CONNECT_URL": connect_server.url,
            "SPARK_ROUTER_CONNECT_SERVER_ID": connect_ports["server_id"],
            "SPARK_ROUTER_SERVER_MAX_RUNS": "1",
            "SPARK_ROUTER_QUEUE_STANDALONE_STARTUP_S": str(STARTUP_S),
            "SPARK_ROUTER_QUEUE_MAX_WAIT_S": str(GATE_MAX_S * 2),
        },
    ).start()
    suffix = utcnow().strftime("%H%M%S")
    long_app, short_app, gone_app = f"q.long{suffix}", f"q.short{suffix}", f"q.gone{suffix}"
    startup_app = f"q.startup{suffix}"
    gate = tmp_path / "gate"
    started: list[subprocess.Popen] = []
    try:
        seed(pg_url, long_app, HOLDER_WALL_S)
        seed(pg_url, short_app, 5)
        seed(pg_url, gone_app, 5)
        seed_standalone_startup(pg_url, startup_app, STARTUP_S)
        app = tmp_path / "app.py"
        app.write_text(APP)
        env = launcher_env(queue_router, connect_server, state_dir)

        def start(app_id):
            process = subprocess.Popen(
                [SPARK_ROUTER, "run", "--app-id", app_id, str(app), "--", str(gate), str(GATE_MAX_S)],
                env=env,
                cwd=state_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            started.append(process)
            return process

        end_earlier_tests_connect_runs(pg_url)
        holder = start(long_app)
        # A run holds its slot from its decision on (decided, then running): running on Connect is enough.
        wait_for_status(
            queue_router, long_app, "running", 120, "the long run to hold the server", mode="connect"
        )
        waiter = start(short_app)
        wait_for_status(queue_router, short_app, "queued", 120, "the second run to be queued")
        gone = start(gone_app)
        wait_for_status(queue_router, gone_app, "queued", 120, "the third run to be queued")
        queue = queue_router.get("/api/v1/queue")
        assert [q["app_id"] for q in queue] == [short_app, gone_app] and [q["position"] for q in queue] == [
            1,
            2,
        ]
        gone.send_signal(signal.SIGTERM)
        gone_out, _ = gone.communicate(timeout=60)
        assert gone.returncode == 143, gone_out
        assert "queued at position 2" in gone_out and "stopped while queued" in gone_out
        assert runs_of(queue_router, gone_app)[-1]["status"] == "cancelled"
        assert holder.poll() is None, "the holder ended before the gate was opened"
        assert [q["app_id"] for q in queue_router.get("/api/v1/queue")] == [short_app]

        gate.touch()  # the holder ends; the waiter gets its room
        holder_out, _ = holder.communicate(timeout=300)
        assert holder.returncode == 0, holder_out
        waiter_out, _ = waiter.communicate(timeout=300)
        print(waiter_out)
        assert waiter.returncode == 0, waiter_out
        assert "queued at position 1" in waiter_out
        run = runs_of(queue_router, short_app)[-1]
        assert (run["mode"], run["status"]) == ("connect", "succeeded")
        decision = queue_router.get(f"/api/v1/runs/{run['run_id']}")["decision"]
        assert (
            decision["reasons"][-1]["rule"] == "queue" and "room opened" in decision["reasons"][-1]["message"]
        )
        assert queue_router.get("/api/v1/queue") == []
    finally:
        gate.touch()
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        queue_router.stop()
        unseed(pg_url, startup_app)
