"""The pool of Connect servers through the API and the decision store, on SQLite and PostgreSQL: servers
register by heartbeat with their Connect URL, decisions spread over them by load, pins, drains, the pool
view."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from service.db.models import Run, Server, utcnow
from service.routing import decider
from service.schemas import DecisionRequest

DEFAULT = "connect-local"  # the default server of the settings


def heartbeat(client, server_id=DEFAULT, connect_url=None, **fields):
    beat = {"server_id": server_id, "spark_app_id": f"app-{server_id}", "kind": "connect", **fields}
    if connect_url:
        beat["connect_url"] = connect_url
    assert client.post("/api/v1/ingest/heartbeat", json=beat).status_code == 200


@pytest.fixture
def pool(client):
    """The default server (reporting no URL: the settings' is used) and connect-b (reporting its own)."""
    heartbeat(client)
    heartbeat(client, "connect-b", "sc://b.example:15002")
    return client


def decide(client, app_id, **body) -> dict:
    response = client.post("/api/v1/decisions", json={"app_id": app_id, **body})
    assert response.status_code == 200, response.text
    return response.json()


def complete_run(client, decision: dict, **metrics) -> None:
    """What the launcher and the listener do for one run: start, one stage, success."""
    run_id = decision["run_id"]
    client.post(f"/api/v1/runs/{run_id}/events", json={"event": "started"})
    stage = {"app_id": decision["app_id"], "run_id": run_id, "stage_id": 1, "attempt": 0,
             "status": "succeeded", "num_tasks": 1, **metrics}
    body = {"server_id": decision["server_id"] or DEFAULT, "spark_app_id": f"spark-{run_id}",
            "stages": [stage]}
    assert client.post("/api/v1/ingest/stages", json=body).json()["accepted"] == 1
    assert client.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded"}).status_code == 200


def loads(client) -> dict[str, float]:
    return {s["server_id"]: s["in_flight_cores"] for s in client.get("/api/v1/pool").json()}


def test_new_apps_spread_over_the_pool_each_with_its_servers_url(pool):
    decisions = [decide(pool, f"etl.app{i}") for i in range(4)]
    assert [d["server_id"] for d in decisions] == [DEFAULT, "connect-b", DEFAULT, "connect-b"]
    assert [d["connect_url"] for d in decisions[:2]] == ["sc://127.0.0.1:15002", "sc://b.example:15002"]
    assert decisions[1]["reasons"][-1]["rule"] == "placement"
    assert decisions[1]["reasons"][-1]["message"].startswith("Placed on connect-b, the server with the most "
                                                             "free")
    run = pool.get(f"/api/v1/runs/{decisions[1]['run_id']}").json()
    assert run["server_id"] == "connect-b" and run["decision"]["connect_url"] == "sc://b.example:15002"
    assert loads(pool) == {DEFAULT: 2.0, "connect-b": 2.0}


def test_within_a_batch_each_decision_sees_the_ones_before(pool):
    requests = [DecisionRequest(app_id=f"burst.{i}") for i in range(6)]
    with pool.app.state.engine.begin() as connection:
        results = decider.make_decisions(connection, requests, pool.app.state.policies.get(),
                                         pool.app.state.settings)
    assert [r.server_id for r in results] == [DEFAULT, "connect-b"] * 3
    assert loads(pool) == {DEFAULT: 3.0, "connect-b": 3.0}


def test_a_server_whose_heartbeat_stopped_gets_no_runs_and_the_other_takes_them(pool):
    with pool.app.state.sessions() as session:
        session.execute(update(Server).where(Server.server_id == "connect-b")
                        .values(last_heartbeat_at=utcnow() - timedelta(minutes=2)))
        session.commit()
    decisions = [decide(pool, f"etl.app{i}") for i in range(3)]
    assert {d["server_id"] for d in decisions} == {DEFAULT}
    assert all(d["mode"] == "connect" for d in decisions)
    [default, silent] = pool.get("/api/v1/pool").json()
    assert default["available"] and silent["status"] == "down" and not silent["available"]
    assert "last heartbeat was" in silent["unavailable_reason"]
    heartbeat(pool, "connect-b", "sc://b.example:15002")  # back
    assert decide(pool, "etl.after")["server_id"] == "connect-b"


def test_a_draining_server_gets_no_runs_and_a_drained_pool_goes_standalone(pool):
    assert pool.post("/api/v1/admin/servers/connect-b/drain").status_code == 200
    assert {decide(pool, f"etl.app{i}")["server_id"] for i in range(3)} == {DEFAULT}
    assert pool.post(f"/api/v1/admin/servers/{DEFAULT}/drain").status_code == 200
    decision = decide(pool, "etl.late")
    assert decision["mode"] == "standalone" and decision["rule"] == "server-draining"
    assert decision["server_id"] is None and decision["connect_url"] is None
    assert len(decision["reasons"]) == 2  # one per server


def test_capacity_sends_standalone_only_when_no_server_has_room(settings, tmp_path, client):
    policy = tmp_path / "policy.yaml"
    policy.write_text("capacity:\n  cores: 2\n  default_run_cores: 1\n")
    client.app.state.policies.path = policy
    heartbeat(client)
    heartbeat(client, "connect-b", "sc://b:15002")
    for i in range(5):  # a history of one core each: a minute of task time in (at most) a minute
        complete_run(client, decide(client, f"app.{i}"), executor_run_time_ms=60_000)
    modes = [decide(client, f"app.{i}")["mode"] for i in range(4)]  # 2 + 2 cores in the pool
    assert modes == ["connect"] * 4
    fifth = decide(client, "app.4")
    assert fifth["mode"] == "standalone" and fifth["rule"] == "over-capacity"
    assert "No Connect server has room" in fifth["reasons"][0]["message"]


def test_a_pinned_app_stays_on_its_server(pool):
    pin = pool.put("/api/v1/admin/apps/etl.gpu/pin", json={"mode": "connect", "server_id": "connect-b",
                                                           "reason": "needs its jars"})
    assert pin.status_code == 200 and pin.json()["pinned_server_id"] == "connect-b"
    placed = [decide(pool, "etl.gpu")["server_id"] for _ in range(3)]
    assert placed == ["connect-b"] * 3  # although the default server has more room after the first
    assert decide(pool, "etl.other")["server_id"] == DEFAULT
    pool.post("/api/v1/admin/servers/connect-b/drain")
    drained = decide(pool, "etl.gpu")
    assert drained["mode"] == "standalone" and drained["rule"] == "admin-pin"
    assert "connect-b is draining" in drained["reasons"][0]["message"]
    assert pool.delete("/api/v1/admin/apps/etl.gpu/pin").json()["pinned_server_id"] is None
    assert decide(pool, "etl.gpu")["server_id"] == DEFAULT


def test_pins_to_a_server_are_checked(pool):
    assert pool.put("/api/v1/admin/apps/x/pin",
                    json={"mode": "connect", "server_id": "nope"}).status_code == 404
    response = pool.put("/api/v1/admin/apps/x/pin", json={"mode": "standalone", "server_id": "connect-b"})
    assert response.status_code == 422 and "needs mode connect" in response.text


def test_runs_from_before_the_pool_count_on_the_default_server(pool):
    first = decide(pool, "etl.old")
    with pool.app.state.sessions() as session:
        session.execute(update(Run).where(Run.run_id == first["run_id"]).values(server_id=None,
                                                                                predicted_cores=5))
        session.commit()
    assert loads(pool) == {DEFAULT: 5.0, "connect-b": 0.0}
    assert decide(pool, "etl.new")["server_id"] == "connect-b"
    activity = pool.get(f"/api/v1/admin/servers/{DEFAULT}/activity").json()
    assert activity["in_flight_run_ids"] == [first["run_id"]]
    assert pool.get("/api/v1/admin/servers/connect-b/activity").json()["in_flight_connect_runs"] == 1


def test_a_connect_server_that_reports_no_url_is_not_in_the_pool(pool):
    heartbeat(pool, "connect-old")  # an older listener: no Connect URL, nowhere to send clients
    assert [s["server_id"] for s in pool.get("/api/v1/pool").json()] == [DEFAULT, "connect-b"]
    assert {decide(pool, f"a{i}")["server_id"] for i in range(4)} == {DEFAULT, "connect-b"}


def test_a_dry_run_places_without_holding_capacity(pool):
    decide(pool, "etl.first")  # on the default server
    preview = pool.post("/api/v1/decisions", json={"app_id": "etl.peek", "dry_run": True}).json()
    assert preview["dry_run"] and preview["server_id"] == "connect-b"
    assert preview["connect_url"] == "sc://b.example:15002"
    assert loads(pool) == {DEFAULT: 1.0, "connect-b": 0.0}


def test_the_pool_view_names_capacity_and_load(pool):
    heartbeat(pool, "connect-b", "sc://b.example:15002", executors=2, executor_cores=4)
    # The default server has the policy's 8 cores (no executors reported), connect-b the 4 its executors hold:
    # 7 free on the default after one run are still more than connect-b's 4.
    assert [decide(pool, app_id)["server_id"] for app_id in ("etl.x", "etl.y")] == [DEFAULT, DEFAULT]
    [default, b] = pool.get("/api/v1/pool").json()
    assert default["default"] and not b["default"]
    assert b["capacity_cores"] == 4.0 and "the 4 cores its executors hold" in b["capacity_source"]
    assert default["capacity_cores"] == 8.0 and "capacity.cores" in default["capacity_source"]
    assert (default["in_flight_runs"], default["in_flight_cores"], default["free_cores"]) == (2, 2.0, 6.0)
    assert (b["in_flight_runs"], b["free_cores"], b["status"], b["available"]) == (0, 4.0, "up", True)
    with pool.app.state.sessions() as session:
        assert list(session.scalars(select(Run.server_id))) == [DEFAULT, DEFAULT]
