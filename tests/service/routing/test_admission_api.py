"""The admission queue through the API and the database, on SQLite and PostgreSQL: queued instead of
standalone when room comes sooner than a start-up, the long poll that admits, first come first served, cancel,
the queue's bounds, a router restart, and two admitters at once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.app import create_app
from service.config import RouterSettings
from service.db.models import AdmissionQueueEntry, App, Run, utcnow
from service.routing import decider

SERVER = "connect-local"  # the settings' default server
LONG_S = 40  # the wall time of the holding app's recent runs on Connect


def make_settings(database_url, tmp_path, **overrides) -> RouterSettings:
    return RouterSettings(database_url=database_url, state_dir=tmp_path / "state",
                          **{"server_max_runs": 1, "queue_standalone_startup_s": 60, **overrides})


@pytest.fixture
def queue_settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path)


@pytest.fixture
def client(queue_settings):
    app = create_app(queue_settings)
    with TestClient(app) as test_client:
        heartbeat(test_client)
        seed_apps(test_client)
        yield test_client
    app.state.engine.dispose()


def heartbeat(client):
    beat = {"server_id": SERVER, "spark_app_id": "app-connect", "kind": "connect", "executors": 2,
            "executor_cores": 4}
    assert client.post("/api/v1/ingest/heartbeat", json=beat).status_code == 200


def seed_connect_history(client, app_id, wall_s, runs=3):
    """Successful Connect runs of the app, each `wall_s` long (as the launcher reports them), an hour ago, in
    the app's window of recent runs (light: the policy sends it to Connect)."""
    with client.app.state.sessions() as session:
        ended = utcnow() - timedelta(hours=1)
        summaries = [{"run_id": f"seed-{app_id}-{i}", "task_time_ms": 1000, "shuffle_write_bytes": 0,
                      "disk_spilled_bytes": 0, "peak_execution_memory_bytes": 0,
                      "duration_ms": int(wall_s * 1000)}
                     for i in range(runs)]
        session.merge(App(app_id=app_id, recent_runs=summaries))
        for i in range(runs):
            session.add(Run(run_id=f"seed-{app_id}-{i}", app_id=app_id, mode="connect", status="succeeded",
                            created_at=ended - timedelta(seconds=wall_s + 1),
                            started_at=ended - timedelta(seconds=wall_s), finished_at=ended,
                            server_id=SERVER))
        session.commit()


def seed_apps(client):
    """The holding app (40 s runs) and the light apps that wait for it (5 s runs)."""
    seed_connect_history(client, "etl.long", LONG_S)
    for app_id in ("etl.short", "etl.second", "etl.other", "etl.a", "etl.b"):
        seed_connect_history(client, app_id, 5)


def decide(client, app_id, **body) -> dict:
    response = client.post("/api/v1/decisions", json={"app_id": app_id, **body})
    assert response.status_code == 200, response.text
    return response.json()


def event(client, run_id, name, **body):
    return client.post(f"/api/v1/runs/{run_id}/events", json={"event": name, **body})


def admission(client, run_id, wait=0) -> dict:
    response = client.get(f"/api/v1/runs/{run_id}/admission", params={"wait": wait})
    assert response.status_code == 200, response.text
    return response.json()


def hold_the_server(client) -> dict:
    """A run of the long app on the one slot, started now."""
    holder = decide(client, "etl.long", can_wait=True)
    assert holder["mode"] == "connect", holder
    assert event(client, holder["run_id"], "started").status_code == 200
    return holder


def queue_rows(client) -> list[str]:
    with client.app.state.sessions() as session:
        return list(session.scalars(select(AdmissionQueueEntry.run_id).order_by(AdmissionQueueEntry.id)))


def test_no_room_and_a_short_wait_queues_then_admits_when_the_holder_ends(client):
    holder = hold_the_server(client)
    queued = decide(client, "etl.short", can_wait=True)
    assert queued["mode"] == "queued" and queued["rule"] == "queue" and queued["position"] == 1
    assert LONG_S - 5 < queued["predicted_wait_s"] <= LONG_S
    assert queued["connect_url"] is None and queued["server_id"] is None
    assert queued["reasons"][0]["rule"] == "over-capacity"
    assert queued["reasons"][-1]["message"].startswith(f"Room is predicted in "
                                                       f"{queued['predicted_wait_s']:.0f} s")
    assert client.get(f"/api/v1/runs/{queued['run_id']}").json()["status"] == "queued"
    # The same request without can_wait: standalone, as without a queue.
    assert decide(client, "etl.short")["mode"] == "standalone"

    still = admission(client, queued["run_id"], wait=1.5)
    assert still["mode"] == "queued" and still["position"] == 1 and still["predicted_wait_s"] is not None
    assert event(client, queued["run_id"], "started").status_code == 409  # not admitted yet

    assert event(client, holder["run_id"], "succeeded").status_code == 200
    admitted = admission(client, queued["run_id"], wait=10)
    assert admitted["mode"] == "connect" and admitted["server_id"] == SERVER and admitted["connect_url"]
    assert admitted["run_id"] == queued["run_id"] and admitted["position"] is None
    assert admitted["reasons"][-1]["rule"] == "queue" and "room opened" in admitted["reasons"][-1]["message"]
    assert admitted["session_confs"]["spark.router.runId"] == queued["run_id"]
    assert queue_rows(client) == []
    run = client.get(f"/api/v1/runs/{queued['run_id']}").json()
    assert (run["status"], run["mode"], run["decision"]["mode"]) == ("decided", "connect", "connect")
    # Asked again: the same decision, decided once.
    assert admission(client, queued["run_id"]) == admitted
    assert event(client, queued["run_id"], "started").status_code == 200


def test_the_long_poll_answers_as_soon_as_room_opens(client):
    holder = hold_the_server(client)
    queued = decide(client, "etl.short", can_wait=True)
    threading.Timer(1.0, lambda: event(client, holder["run_id"], "cancelled")).start()
    started = time.monotonic()
    admitted = admission(client, queued["run_id"], wait=20)
    assert admitted["mode"] == "connect"
    # answered within a check of the room opening, not at the end of wait
    assert time.monotonic() - started < 5


def test_no_queue_when_the_wait_is_longer_than_a_start_up_or_unknown(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, queue_standalone_startup_s=10)
    with TestClient(create_app(settings)) as client:
        heartbeat(client)
        seed_apps(client)
        hold_the_server(client)
        answer = decide(client, "etl.other", can_wait=True)
        assert answer["mode"] == "standalone" and answer["rule"] == "over-capacity"
        assert "not sooner than a standalone start-up (10 s)" in answer["reasons"][-1]["message"]
        # A holder with no Connect history: nothing to predict by.
        event(client, client.get("/api/v1/apps/etl.long/runs").json()[0]["run_id"], "succeeded")
        holder = decide(client, "etl.new", can_wait=True)
        assert holder["mode"] == "connect"
        answer = decide(client, "etl.other", can_wait=True)
        assert answer["mode"] == "standalone" and "history to predict" in answer["reasons"][-1]["message"]
        client.app.state.engine.dispose()


def test_first_come_first_served_and_nobody_jumps_the_queue(client):
    holder = hold_the_server(client)
    first = decide(client, "etl.short", can_wait=True)
    second = decide(client, "etl.second", can_wait=True)
    assert (first["position"], second["position"]) == (1, 2)
    assert second["predicted_wait_s"] > first["predicted_wait_s"]  # behind the first's 5 s
    event(client, holder["run_id"], "succeeded")
    # Room for one: the second asks first, but the first is ahead of it.
    assert admission(client, second["run_id"])["mode"] == "queued"
    fresh = decide(client, "etl.short")
    assert fresh["mode"] == "standalone" and fresh["rule"] == "queue-ahead"
    assert admission(client, first["run_id"])["mode"] == "connect"
    behind = admission(client, second["run_id"])
    assert behind["mode"] == "queued" and behind["position"] == 1


def test_cancelled_while_queued_leaves_the_queue(client):
    hold_the_server(client)
    first = decide(client, "etl.short", can_wait=True)
    second = decide(client, "etl.second", can_wait=True)
    assert event(client, first["run_id"], "cancelled", message="Ctrl-C").status_code == 200
    assert queue_rows(client) == [second["run_id"]]
    assert admission(client, second["run_id"])["position"] == 1
    response = client.get(f"/api/v1/runs/{first['run_id']}/admission")
    assert response.status_code == 409 and "cancelled while it waited" in response.text
    run = client.get(f"/api/v1/runs/{first['run_id']}").json()
    assert run["status"] == "cancelled"


def test_the_dashboard_counts_queued_decisions(client):
    """A decision stays "queued" while its run waits and after it is cancelled there; the dashboard's charts
    count it apart (a schemathesis run once found them answering 500 to it)."""
    holder = hold_the_server(client)
    waiting = decide(client, "etl.short", can_wait=True)
    cancelled = decide(client, "etl.second", can_wait=True)
    assert (waiting["mode"], cancelled["mode"]) == ("queued", "queued")
    assert event(client, cancelled["run_id"], "cancelled", message="Ctrl-C").status_code == 200

    def dashboard(path: str) -> dict:
        response = client.get(f"/api/v1/dashboard/{path}", params={"days": 1})
        assert response.status_code == 200, response.text
        return response.json()

    by_server = dashboard("decisions/by-server")
    assert by_server["servers"] == [{"server_id": SERVER, "decisions": 1}] and by_server["queued"] == 2
    assert (by_server["standalone"], by_server["fallback"]) == (0, 0)
    series = dashboard("decisions")["series"]
    assert sum(bucket["queued"] for bucket in series) == 2
    assert sum(bucket["connect"] for bucket in series) == 1
    summary = dashboard("summary")
    assert (summary["decisions"], summary["connect"], summary["queued"]) == (3, 1, 2)
    assert holder["mode"] == "connect"


def test_the_longest_wait_sends_it_standalone(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, queue_max_wait_s=1)
    with TestClient(create_app(settings)) as client:
        heartbeat(client)
        seed_apps(client)
        hold_the_server(client)
        queued = decide(client, "etl.short", can_wait=True,
                        resources={"executor_memory": "2g", "num_executors": 1})
        assert queued["mode"] == "queued" and queued["sizing"] is None
        answer = admission(client, queued["run_id"], wait=5)
        assert answer["mode"] == "standalone" and answer["rule"] == "over-capacity"
        assert "the queue's longest wait (1 s" in answer["reasons"][-1]["message"]
        run = client.get(f"/api/v1/runs/{queued['run_id']}").json()
        assert run["status"] == "decided"
        # Sized as any standalone decision is, by the request it queued with (1 executor of 2g asked; the
        # app's runs say 1 executor of 1 core, which is less: the ask stands).
        assert answer["sizing"]["reason"].startswith("Sized by the last 3 successful runs")
        assert (answer["sizing"]["executor_memory"], answer["sizing"]["num_executors"]) == ("2048m", 1)
        assert (run["executor_memory"], run["num_executors"]) == (2 << 30, 1)
        assert queue_rows(client) == []
        client.app.state.engine.dispose()


def test_a_full_queue_sends_runs_standalone(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, queue_max_length=1)
    with TestClient(create_app(settings)) as client:
        heartbeat(client)
        seed_apps(client)
        hold_the_server(client)
        assert decide(client, "etl.a", can_wait=True)["mode"] == "queued"
        answer = decide(client, "etl.b", can_wait=True)
        assert answer["mode"] == "standalone" and "queue is full (1 runs)" in answer["reasons"][-1]["message"]
        client.app.state.engine.dispose()


def test_a_silent_client_holds_nobody_back(client):
    holder = hold_the_server(client)
    gone = decide(client, "etl.short", can_wait=True)
    behind = decide(client, "etl.second", can_wait=True)
    with client.app.state.sessions() as session:  # the first client was killed an hour ago without a word
        session.execute(update(AdmissionQueueEntry).where(AdmissionQueueEntry.run_id == gone["run_id"])
                        .values(last_polled_at=utcnow() - timedelta(hours=1)))
        session.commit()
    event(client, holder["run_id"], "succeeded")
    assert admission(client, behind["run_id"])["mode"] == "connect"
    back = admission(client, gone["run_id"])
    assert back["mode"] == "standalone" and "stopped asking" in back["reasons"][-1]["message"]


def test_a_new_app_waits_for_a_run_slot_like_any_other(client):
    holder = hold_the_server(client)
    # No history: its cores are a guess, but the run limit holds for it too.
    new = decide(client, "brand.new", can_wait=True)
    assert new["mode"] == "queued" and new["position"] == 1 and new["reasons"][0]["rule"] == "over-capacity"
    without_queue = decide(client, "brand.other")
    assert (without_queue["mode"], without_queue["rule"]) == ("standalone", "queue-ahead")  # no jumping
    event(client, holder["run_id"], "succeeded")
    admitted = admission(client, new["run_id"], wait=10)
    assert admitted["mode"] == "connect" and admitted["server_id"] == SERVER
    # A slot free again, nobody waiting: the mode of new apps, as before.
    event(client, admitted["run_id"], "started")
    event(client, admitted["run_id"], "succeeded")
    fresh = decide(client, "brand.third")
    assert (fresh["mode"], fresh["rule"]) == ("connect", "no-history")


def test_a_run_whose_client_gave_up_is_cancelled_once_its_longest_wait_is_up(client):
    holder = hold_the_server(client)
    gone = decide(client, "etl.short", can_wait=True)
    silent = decide(client, "etl.other", can_wait=True)
    behind = decide(client, "etl.second", can_wait=True)
    now = utcnow()
    with client.app.state.sessions() as session:
        # gone: killed an hour ago, its longest wait up; silent: killed too, but its longest wait is not up.
        session.execute(update(AdmissionQueueEntry).where(AdmissionQueueEntry.run_id == gone["run_id"])
                        .values(last_polled_at=now - timedelta(hours=1),
                                deadline_at=now - timedelta(minutes=1)))
        session.execute(update(AdmissionQueueEntry).where(AdmissionQueueEntry.run_id == silent["run_id"])
                        .values(last_polled_at=now - timedelta(hours=1)))
        session.commit()
    # A router that just started gives every client the time to ask again: nobody is swept yet.
    assert admission(client, behind["run_id"])["position"] == 1  # the silent ones hold nobody back
    assert len(queue_rows(client)) == 3
    # Up for two hours: any admission check sweeps; the run behind asks, and is first now.
    client.app.state.up_since = now - timedelta(hours=2)
    still = admission(client, behind["run_id"])
    assert still["mode"] == "queued" and still["position"] == 1
    assert queue_rows(client) == [silent["run_id"], behind["run_id"]]
    assert [q["run_id"] for q in client.get("/api/v1/queue").json()] == [silent["run_id"], behind["run_id"]]
    run = client.get(f"/api/v1/runs/{gone['run_id']}").json()
    assert run["status"] == "cancelled" and run["finished_at"] is not None
    last = run["decision"]["reasons"][-1]
    assert last["rule"] == "queue" and last["metric"] == "silent_s" and last["observed"] > 3000
    assert last["message"].startswith("Its client stopped asking for its admission")
    # Its client, back after all: told why (409), and its own cancel is harmless.
    back = client.get(f"/api/v1/runs/{gone['run_id']}/admission")
    assert back.status_code == 409 and "stopped asking" in back.json()["detail"]
    assert event(client, gone["run_id"], "cancelled").status_code == 200
    # The room goes to the live run, not to the silent one ahead of it.
    event(client, holder["run_id"], "succeeded")
    assert admission(client, behind["run_id"])["mode"] == "connect"


def test_dry_run_says_it_would_queue_and_records_nothing(client):
    hold_the_server(client)
    preview = decide(client, "etl.short", can_wait=True, dry_run=True)
    assert preview["mode"] == "queued" and preview["position"] == 1 and preview["run_id"] is None
    assert queue_rows(client) == []


def test_the_queue_survives_a_router_restart(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'router.db'}"
    settings = make_settings(database_url, tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        heartbeat(client)
        seed_apps(client)
        holder = hold_the_server(client)
        queued = decide(client, "etl.short", can_wait=True)
    app.state.engine.dispose()
    app = create_app(settings)  # a new router process on the same database
    with TestClient(app) as client:
        assert admission(client, queued["run_id"])["position"] == 1
        event(client, holder["run_id"], "succeeded")
        heartbeat(client)
        assert admission(client, queued["run_id"])["mode"] == "connect"
    app.state.engine.dispose()


def test_unknown_run_and_bounds(client):
    assert client.get("/api/v1/runs/run-nope/admission").status_code == 404
    assert client.get("/api/v1/runs/run-x/admission", params={"wait": 301}).status_code == 422
    assert client.get("/api/v1/runs/run-x/admission", params={"wait": -1}).status_code == 422
    plain = decide(client, "etl.short")  # never queued: its decision at once
    assert admission(client, plain["run_id"], wait=30)["mode"] == "connect"


@pytest.mark.postgres
def test_two_admitters_at_once_admit_once_and_never_past_the_room(pg_url, tmp_path):
    """Two workers check the same queued run, and the runs behind it, at the same moment: each run is decided
    once, and the one slot goes to one run."""
    from tests.support import create_pg_database, drop_pg_database

    url = create_pg_database()
    try:
        settings = make_settings(url, tmp_path)
        app = create_app(settings)
        with TestClient(app) as client:
            heartbeat(client)
            seed_apps(client)
            for i in range(3):
                seed_connect_history(client, f"etl.q{i}", 5)
            holder = hold_the_server(client)
            queued = [decide(client, f"etl.q{i}", can_wait=True)["run_id"] for i in range(3)]
            event(client, holder["run_id"], "succeeded")
            barrier = threading.Barrier(6)
            answers: list = []

            def check(run_id):
                barrier.wait()
                with app.state.sessions() as session:
                    answers.append((run_id,
                                    decider.admit(session, run_id, app.state.policies.get(), settings)))

            threads = [threading.Thread(target=check, args=(run_id,)) for run_id in (*queued, *queued)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert len(answers) == 6
            modes = {run_id: {answer.mode for rid, answer in answers if rid == run_id} for run_id in queued}
            assert modes[queued[0]] == {"connect"}  # both checks of the first say connect: decided once
            assert modes[queued[1]] == modes[queued[2]] == {"queued"}
            with app.state.sessions() as session:
                in_flight = session.scalar(select(func.count()).select_from(Run).where(
                    Run.mode == "connect", Run.status == "decided"))
                assert in_flight == 1
                assert session.scalar(select(func.count()).select_from(AdmissionQueueEntry)) == 2
        app.state.engine.dispose()
    finally:
        drop_pg_database(url)
