"""Domain errors map to 404/409 at the API; nothing broader does: a programming error stays a server error."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.app import create_app
from service.history import lifecycle


def decided_run(client: TestClient) -> str:
    response = client.post("/api/v1/decisions", json={"app_id": "etl.errors", "mode": "standalone"})
    assert response.status_code == 200, response.text
    return response.json()["run_id"]


def test_unknown_run_and_conflict_are_404_and_409(client):
    assert client.post("/api/v1/runs/run-nope/events", json={"event": "started"}).status_code == 404
    run_id = decided_run(client)
    assert client.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded"}).status_code == 200
    conflict = client.post(f"/api/v1/runs/{run_id}/events", json={"event": "failed", "failure_kind": "app"})
    assert conflict.status_code == 409 and "already succeeded" in conflict.json()["detail"]
    fallback = client.post(f"/api/v1/runs/{run_id}/fallback", json={})
    assert fallback.status_code == 409 and "only a Connect run" in fallback.json()["detail"]


def test_a_programming_error_is_not_reported_as_unknown_or_conflict(settings, monkeypatch):
    def broken(*_args, **_kwargs):
        return {}["missing"]  # a KeyError from a bug, not an unknown run

    monkeypatch.setattr(lifecycle, "report", broken)
    app = create_app(settings)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            run_id = decided_run(client)
            assert client.post(f"/api/v1/runs/{run_id}/events", json={"event": "started"}).status_code == 500
    finally:
        app.state.engine.dispose()


def test_a_database_outage_is_503_so_that_senders_retry(settings):
    from service.db import engine as db

    app = create_app(settings)
    try:
        # Every session of this app now goes to a port where no database listens.
        app.state.sessions = db.session_factory(db.make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none"))
        with TestClient(app) as client:
            batch = {"server_id": "connect-x", "spark_app_id": "app-1", "stages": [
                {"app_id": "etl.a", "run_id": "run-a", "stage_id": 0, "attempt": 0, "status": "succeeded"}]}
            response = client.post("/api/v1/ingest/stages", json=batch)
            assert response.status_code == 503 and response.headers["Retry-After"]
            assert "nobody" not in response.text and "127.0.0.1" not in response.text
    finally:
        app.state.engine.dispose()


def test_healthz_says_unavailable_without_the_drivers_text(tmp_path):
    from service.config import RouterSettings

    settings = RouterSettings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none", state_dir=tmp_path)
    app = create_app(settings, migrate=False)
    try:
        with TestClient(app) as client:
            health = client.get("/healthz")
        assert health.status_code == 503 and health.json() == {"status": "unhealthy",
                                                               "database": "unavailable"}
    finally:
        app.state.engine.dispose()
