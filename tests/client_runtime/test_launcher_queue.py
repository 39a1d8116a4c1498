"""The launcher in the router's admission queue, against a real router process (no Spark): it waits on the
long poll with its progress printed, takes the admission when room opens, and a stop while queued cancels the
run."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import create_engine

from client_runtime.launcher import Launcher
from client_runtime.router_client import RouterClient
from client_runtime.settings import ClientSettings
from service.db.models import App, Run, utcnow
from tests.support import RouterProcess

SERVER = "connect-local"


@pytest.fixture
def queue_router(tmp_path):
    url = f"sqlite:///{tmp_path / 'router.db'}"
    env = {"SPARK_ROUTER_SERVER_MAX_RUNS": "1", "SPARK_ROUTER_QUEUE_STANDALONE_STARTUP_S": "120"}
    router = RouterProcess(url, tmp_path / "state", env=env).start()
    engine = create_engine(url)
    ended = utcnow() - timedelta(hours=1)
    from sqlalchemy.orm import Session

    with Session(engine) as session:  # two apps with Connect history: a 60 s one and a 5 s one
        for app_id, wall_s in (("etl.long", 60), ("etl.short", 5)):
            session.add(App(app_id=app_id, recent_runs=[{
                "run_id": f"seed-{app_id}", "task_time_ms": 1000, "shuffle_write_bytes": 0,
                "disk_spilled_bytes": 0, "peak_execution_memory_bytes": 0, "duration_ms": wall_s * 1000}]))
            session.add(Run(run_id=f"seed-{app_id}", app_id=app_id, mode="connect", status="succeeded",
                            created_at=ended - timedelta(seconds=wall_s),
                            started_at=ended - timedelta(seconds=wall_s), finished_at=ended,
                            server_id=SERVER))
        session.commit()
    engine.dispose()
    beat = {"server_id": SERVER, "spark_app_id": "app-connect", "kind": "connect", "executors": 2,
            "executor_cores": 4}
    assert httpx.post(f"{router.url}/api/v1/ingest/heartbeat", json=beat).status_code == 200
    yield router
    router.stop()


def hold(router) -> str:
    client = RouterClient(router.url)
    holder = client.decide("etl.long", can_wait=True)
    assert holder.mode == "connect"
    client.report(holder.run_id, "started")
    return holder.run_id


def test_waits_on_the_long_poll_and_is_admitted_when_room_opens(queue_router):
    holder = hold(queue_router)
    events: list[str] = []
    launcher = Launcher(ClientSettings(url=queue_router.url), on_event=events.append)
    queued = launcher.router.decide("etl.short", can_wait=True)
    assert queued.mode == "queued" and queued.position == 1
    threading.Timer(2.0, lambda: RouterClient(queue_router.url).report(holder, "succeeded")).start()
    started = time.monotonic()
    answer = launcher._await_admission(queued)
    assert answer is not None and answer.mode == "connect" and answer.run_id == queued.run_id
    assert time.monotonic() - started < 8  # the long poll answered when room opened, not at its end
    assert events[0].startswith(f"queued at position 1, predicted wait {queued.predicted_wait_s:.0f} s")


def test_a_stop_while_queued_cancels_the_run_and_leaves_the_queue(queue_router):
    hold(queue_router)
    launcher = Launcher(ClientSettings(url=queue_router.url), on_event=lambda message: None)
    queued = launcher.router.decide("etl.short", can_wait=True)
    threading.Timer(1.0, launcher.cancel).start()
    started = time.monotonic()
    assert launcher._await_admission(queued) is None
    assert time.monotonic() - started < 3  # seen at once, not at the end of a long poll
    assert queue_router.get(f"/api/v1/runs/{queued.run_id}")["status"] == "cancelled"
    assert queue_router.get("/api/v1/queue") == []
