"""The admission queue on the real Connect server (issue 22): with room for one run, a long run holds the
server; a second run that can wait is queued and then admitted to Connect when the first ends; a third,
stopped while queued, is cancelled and leaves the queue."""

from __future__ import annotations

import signal
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from service.db.models import App, Run, utcnow
from tests.client_runtime.test_launcher_spark import SPARK_ROUTER, launcher_env, runs_of
from tests.support import RouterProcess, wait_until

pytestmark = pytest.mark.spark

APP = """
import sys, time
from client_runtime.session import get_session
spark = get_session()
print("RESULT", spark.range(1000).count(), flush=True)
time.sleep(float(sys.argv[1]))
"""


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
            "SPARK_ROUTER_QUEUE_STANDALONE_STARTUP_S": "300",
        },
    ).start()
    try:
        suffix = utcnow().strftime("%H%M%S")
        long_app, short_app, gone_app = f"q.long{suffix}", f"q.short{suffix}", f"q.gone{suffix}"
        seed(pg_url, long_app, 120)
        seed(pg_url, short_app, 5)
        seed(pg_url, gone_app, 5)
        app = tmp_path / "app.py"
        app.write_text(APP)
        env = launcher_env(queue_router, connect_server, state_dir)

        def start(app_id, sleep_s):
            return subprocess.Popen(
                [SPARK_ROUTER, "run", "--app-id", app_id, str(app), "--", str(sleep_s)],
                env=env,
                cwd=state_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )

        holder = start(long_app, 25)
        wait_until(
            lambda: any(r["status"] == "running" for r in runs_of(queue_router, long_app)),
            120,
            "the long run to hold the server",
        )
        waiter = start(short_app, 0)
        wait_until(
            lambda: any(r["status"] == "queued" for r in runs_of(queue_router, short_app)),
            60,
            "the second run to be queued",
        )
        gone = start(gone_app, 0)
        wait_until(
            lambda: any(r["status"] == "queued" for r in runs_of(queue_router, gone_app)),
            60,
            "the third run to be queued",
        )
        queue = queue_router.get("/api/v1/queue")
        assert [q["app_id"] for q in queue] == [short_app, gone_app] and [q["position"] for q in queue] == [
            1,
            2,
        ]
        gone.send_signal(signal.SIGTERM)
        gone_out, _ = gone.communicate(timeout=30)
        assert gone.returncode == 143, gone_out
        assert "queued at position 2" in gone_out and "stopped while queued" in gone_out
        assert runs_of(queue_router, gone_app)[-1]["status"] == "cancelled"

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
        queue_router.stop()
