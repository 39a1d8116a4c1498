"""The ingest and history endpoints, on SQLite and PostgreSQL, fed the way the listener feeds them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.app import create_app
from service.db.models import Heartbeat, StageMetric, utcnow

T0 = 1_763_850_000_000


def stage(stage_id: int, app_id: str | None = "etl.orders", run_id: str | None = "run-1", **metrics) -> dict:
    record = {"app_id": app_id, "run_id": run_id, "stage_id": stage_id, "attempt": 0, "status": "succeeded",
              "name": f"stage {stage_id}", "submission_time_ms": T0 + stage_id * 1000,
              "completion_time_ms": T0 + stage_id * 1000 + 500, "duration_ms": 500, "num_tasks": 4,
              "executor_run_time_ms": 100, "shuffle_write_bytes": 1000, "peak_execution_memory_bytes": 10}
    record.update(metrics)
    return record


def batch(*stages, spark_app_id="local-1", server_id="connect-a") -> dict:
    return {"batch_id": "b1", "server_id": server_id, "spark_app_id": spark_app_id, "stages": list(stages)}


def stored_stages(client) -> int:
    with client.app.state.sessions() as session:
        return session.scalar(select(func.count()).select_from(StageMetric))


def test_batch_is_summed_per_run(client):
    response = client.post("/api/v1/ingest/stages", json=batch(
        stage(1, executor_run_time_ms=100, peak_execution_memory_bytes=30, disk_spilled_bytes=7),
        stage(2, executor_run_time_ms=250, peak_execution_memory_bytes=90, num_failed_tasks=1,
              connect_operation_id="op-1", connect_session_id="s-1"),
        stage(3, status="failed", failure_reason="boom", executor_run_time_ms=5,
              peak_execution_memory_bytes=50)))
    assert response.json() == {"accepted": 3, "duplicates": 0, "unattributed": 0, "quarantined": 0}

    [run] = client.get("/api/v1/apps/etl.orders/runs").json()
    assert run["run_id"] == "run-1"
    assert run["mode"] == "connect"
    assert run["num_stages"] == 3 and run["num_failed_stages"] == 1
    assert run["num_tasks"] == 12 and run["num_failed_tasks"] == 1
    assert run["executor_run_time_ms"] == 355
    assert run["shuffle_write_bytes"] == 3000
    assert run["disk_spilled_bytes"] == 7
    assert run["peak_execution_memory_bytes"] == 90  # a maximum, not a sum
    assert run["first_stage_at"].startswith("2025-11-22T22:20:01")
    assert run["last_stage_at"].startswith("2025-11-22T22:20:03.5")


def test_resent_batch_never_double_counts(client):
    first = batch(stage(1), stage(2))
    assert client.post("/api/v1/ingest/stages", json=first).json()["accepted"] == 2
    assert client.post("/api/v1/ingest/stages", json=first).json() == {
        "accepted": 0, "duplicates": 2, "unattributed": 0, "quarantined": 0}
    # Overlapping batch: only the new stage attempt counts; a retry (attempt 1) is a new attempt.
    overlap = batch(stage(2), stage(3), stage(3, attempt=1))
    assert client.post("/api/v1/ingest/stages", json=overlap).json()["accepted"] == 2
    [run] = client.get("/api/v1/apps/etl.orders/runs").json()
    assert run["num_stages"] == 4
    assert run["shuffle_write_bytes"] == 4000
    assert stored_stages(client) == 4


def test_same_stage_ids_from_another_spark_app_are_new(client):
    client.post("/api/v1/ingest/stages", json=batch(stage(1), spark_app_id="local-1"))
    response = client.post("/api/v1/ingest/stages", json=batch(stage(1), spark_app_id="local-2"))
    assert response.json()["accepted"] == 1


def test_unattributed_stages_are_kept_and_counted(client):
    response = client.post("/api/v1/ingest/stages", json=batch(stage(1, app_id=None, run_id=None), stage(2)))
    assert response.json() == {"accepted": 2, "duplicates": 0, "unattributed": 1, "quarantined": 0}
    assert stored_stages(client) == 2
    [server] = client.get("/api/v1/servers").json()
    assert server["server_id"] == "connect-a" and server["unattributed_stages"] == 1
    assert [app["app_id"] for app in client.get("/api/v1/apps").json()] == ["etl.orders"]


def test_app_without_run_id_gets_one_run_per_connect_session(client):
    client.post("/api/v1/ingest/stages", json=batch(
        stage(1, run_id=None, connect_session_id="sess-a"),
        stage(2, run_id=None, connect_session_id="sess-a"),
        stage(3, run_id=None, connect_session_id="sess-b")))
    runs = client.get("/api/v1/apps/etl.orders/runs").json()
    assert sorted((r["run_id"], r["num_stages"]) for r in runs) == [("auto-sess-a", 2), ("auto-sess-b", 1)]


@pytest.mark.parametrize("bad, field", [
    ({"stage_id": -1}, "stage_id"),
    ({"executor_run_time_ms": -5}, "executor_run_time_ms"),
    ({"status": "weird"}, "status"),
    ({"shuffle_write_bytes": "lots"}, "shuffle_write_bytes"),
    ({"surprise": 1}, "surprise"),
])
def test_a_malformed_stage_record_is_quarantined_and_the_rest_of_its_batch_stored(client, bad, field):
    broken = {**stage(2), **bad}
    response = client.post("/api/v1/ingest/stages", json=batch(stage(1), broken))
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "unattributed": 0, "quarantined": 1}
    assert stored_stages(client) == 1
    [kept] = client.get("/api/v1/quarantine").json()
    assert kept["reason"].startswith(field)


def test_batch_without_server_id_is_rejected(client):
    body = batch(stage(1))
    del body["server_id"]
    response = client.post("/api/v1/ingest/stages", json=body)
    assert response.status_code == 422 and "server_id" in response.text


def test_not_json_is_a_clear_4xx(client):
    response = client.post("/api/v1/ingest/stages", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_ingest_token_is_required_when_set(settings):
    from pydantic import SecretStr

    settings.ingest_token = SecretStr("s3cret")
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/v1/ingest/stages", json=batch(stage(1))).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/api/v1/ingest/stages", json=batch(stage(1)), headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        assert client.post("/api/v1/ingest/stages", json=batch(stage(1)), headers=right).status_code == 200
        assert stored_stages(client) == 1


def heartbeat(**fields) -> dict:
    beat = {"server_id": "connect-a", "spark_app_id": "local-1", "kind": "connect", "spark_version": "4.3.0",
            "start_time_ms": T0, "sent_at_ms": T0 + 5000, "ui_url": "http://127.0.0.1:4040",
            "active_sessions": 2, "active_operations": 1, "running_jobs": 1, "queue_size": 0,
            "spool_files": 3, "spool_bytes": 1234, "dropped_records": 0, "unattributed_stages": 0}
    beat.update(fields)
    return beat


def test_heartbeat_registers_and_updates_the_server(client):
    assert client.post("/api/v1/ingest/heartbeat", json=heartbeat()).json() == {"ok": True}
    [server] = client.get("/api/v1/servers").json()
    assert server["kind"] == "connect" and server["spark_app_id"] == "local-1"
    assert server["started_at"].startswith("2025-11-22T22:20:00")
    first_beat = server["last_heartbeat_at"]
    # The server restarted: a new Spark app id under the same server id.
    client.post("/api/v1/ingest/heartbeat", json=heartbeat(spark_app_id="local-2"))
    [server] = client.get("/api/v1/servers").json()
    assert server["spark_app_id"] == "local-2" and server["last_heartbeat_at"] >= first_beat


def test_heartbeats_past_the_retention_are_pruned(client):
    """Every server's old heartbeats go (a finished standalone run's too); recent ones and the servers
    stay."""
    client.post("/api/v1/ingest/heartbeat",
                json=heartbeat(server_id="local-standalone-run", kind="standalone"))
    client.post("/api/v1/ingest/heartbeat", json=heartbeat())
    with client.app.state.sessions() as session:  # as if those two had arrived eight days ago
        session.execute(update(Heartbeat).values(received_at=utcnow() - timedelta(days=8)))
        session.commit()
    client.post("/api/v1/ingest/heartbeat", json=heartbeat())
    with client.app.state.sessions() as session:
        kept = session.execute(select(Heartbeat.server_id, Heartbeat.received_at)).all()
    assert [server_id for server_id, _ in kept] == ["connect-a"]
    assert utcnow() - kept[0].received_at < timedelta(minutes=1)
    assert [s["server_id"] for s in client.get("/api/v1/servers").json()] == ["connect-a"]
    standalone = client.get("/api/v1/servers", params={"kind": "standalone"}).json()
    assert [s["server_id"] for s in standalone] == ["local-standalone-run"]


def test_heartbeat_rejects_unknown_kind(client):
    assert client.post("/api/v1/ingest/heartbeat", json=heartbeat(kind="cluster")).status_code == 422


def test_unknown_app_is_404(client):
    response = client.get("/api/v1/apps/nope/runs")
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_apps_list_counts_runs(client):
    client.post("/api/v1/ingest/stages", json=batch(stage(1, run_id="r1"), stage(2, run_id="r2"),
                                                    stage(3, app_id="other", run_id="r3")))
    apps = {app["app_id"]: app["num_runs"] for app in client.get("/api/v1/apps").json()}
    assert apps == {"etl.orders": 2, "other": 1}


def test_healthz_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/ingest/stages", "/api/v1/apps", "/api/v1/apps/{app_id}/runs", "/healthz"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_concurrent_resends_store_each_stage_once(client):
    """Listener retries can race a slow first delivery; the totals still count each attempt once."""
    body = batch(*[stage(i) for i in range(50)])
    errors = []

    def send():
        response = client.post("/api/v1/ingest/stages", json=body)
        if response.status_code != 200:
            errors.append(response.text)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    [run] = client.get("/api/v1/apps/etl.orders/runs").json()
    assert run["num_stages"] == 50 and run["shuffle_write_bytes"] == 50_000
    assert stored_stages(client) == 50


def test_connect_user_id_from_the_launcher_attributes_apps_that_set_no_confs(client):
    """An app that builds its own session gets `router:<app>:<run>` as its Connect user id from the
    launcher."""
    anonymous = stage(1, app_id=None, run_id=None, connect_user_id="router:etl.own:run-7",
                      connect_session_id="s-1", connect_operation_id="op-1")
    someone = stage(2, app_id=None, run_id=None, connect_user_id="alice")
    assert client.post("/api/v1/ingest/stages", json=batch(anonymous, someone)).json() == {
        "accepted": 2, "duplicates": 0, "unattributed": 1, "quarantined": 0}
    [run] = client.get("/api/v1/apps/etl.own/runs").json()
    assert run["run_id"] == "run-7" and run["mode"] == "connect"
