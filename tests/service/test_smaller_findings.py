"""Issue 20, finding 6 (and the quarantine's retention of finding 7): a heartbeat's server_id with a newline
forged a line in the router's log; ingest took app ids ("", " ", control characters) that decisions refuse;
NaN in a decision's spark_conf was stored as "nan"; a ui_url with a leading space was stored as sent; "failed
needs failure_kind" was not in the OpenAPI schema; /metrics listed every server id without a token; the
quarantine was kept 30 days whatever the operator wanted. (The dashboard's Content-Security-Policy:
tests/service/ops/ test_dashboard.py.)"""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import jsonschema
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from service.app import create_app
from service.db.models import utcnow
from tests.service.ingest.test_ingest_api import batch, heartbeat, stage
from tests.support import RouterProcess

# ------------------------------------------------------------------------------------------------- logs

FORGED = "2026-12-04 12:00:00,000 ERROR service.app: database dropped by admin"


def test_a_newline_in_a_server_id_cannot_forge_a_line_of_the_routers_log(tmp_path):
    router = RouterProcess(f"sqlite:///{tmp_path / 'router.db'}", tmp_path / "state").start()
    try:
        with httpx.Client(base_url=router.url, timeout=30) as http:
            sneaky = f"connect-a\n{FORGED}\r\n{FORGED}\u2028x"  # 200 characters at most
            response = http.post("/api/v1/ingest/heartbeat",
                                 json=heartbeat(server_id=sneaky, ui_url="ftp://x"))
            assert response.status_code == 200
            unattributed = batch(stage(1, app_id=None, run_id=None), server_id=sneaky)
            assert http.post("/api/v1/ingest/stages", json=unattributed).json()["unattributed"] == 1
    finally:
        router.stop()
    lines = router.log_path.read_text().splitlines()
    assert not [line for line in lines if line.startswith(FORGED)]
    heard = [line for line in lines if "heartbeat from connect-a" in line]
    assert heard and f"connect-a\\n{FORGED}\\r\\n{FORGED}\\u2028x" in heard[0]
    assert [line for line in lines if "without spark.router.appId kept as unattributed" in line]


# -------------------------------------------------------------------------------------------------- ids

BAD_IDS = ["", " ", "etl orders", " etl.orders", "etl.orders\n", "etl\torders", "etl\x07orders", "etl\x7f",
           "etl\u2028orders", "étl.orders"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ingest_refuses_the_app_ids_decisions_refuse(client, bad):
    decision = client.post("/api/v1/decisions", json={"app_id": bad})
    assert decision.status_code == 422
    response = client.post("/api/v1/ingest/stages", json=batch(stage(1, app_id=bad), stage(2)))
    assert response.json() == {"accepted": 1, "duplicates": 0, "unattributed": 0, "quarantined": 1}
    [kept] = client.get("/api/v1/quarantine").json()
    assert kept["reason"] == ("app_id: must be letters, digits and _ . : / @ - only (no space or control "
                              "character), at least one")
    assert [app["app_id"] for app in client.get("/api/v1/apps").json()] == ["etl.orders"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_run_ids_follow_the_same_rule(client, bad):
    response = client.post("/api/v1/ingest/stages", json=batch(stage(1, run_id=bad)))
    assert response.json()["quarantined"] == 1
    assert client.get("/api/v1/quarantine").json()[0]["reason"].startswith("run_id: must be letters, digits")


@pytest.mark.parametrize("path", ["/api/v1/apps/%20/compatibility", "/api/v1/admin/apps/etl%0Aorders/pin",
                                  "/api/v1/admin/apps/%20etl/pin"])
def test_paths_that_create_apps_follow_the_rule(client, path):
    body = {"findings": []} if path.endswith("compatibility") else {"mode": "standalone"}
    # 404: no route matches a newline in a path (as before); 422: the id's rule
    assert client.put(path, json=body).status_code in (404, 422)
    assert client.get("/api/v1/apps").json() == []


def test_a_launcher_user_id_naming_a_bad_app_id_attributes_nothing(client):
    records = [stage(1, app_id=None, run_id=None, connect_user_id="router: :run-1"),
               stage(2, app_id=None, run_id=None, connect_user_id="router:etl\x01x:run-1")]
    assert client.post("/api/v1/ingest/stages", json=batch(*records)).json() == {
        "accepted": 2, "duplicates": 0, "unattributed": 2, "quarantined": 0}
    assert client.get("/api/v1/apps").json() == []


# ---------------------------------------------------------------------------------------- decisions

@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_number_in_spark_conf_is_refused_not_stored(client, value):
    body = json.dumps({"app_id": "etl.orders", "spark_conf": {"spark.executor.instances": "X"}}).replace(
        '"X"', value)
    response = client.post("/api/v1/decisions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"][-1] == "spark.executor.instances"
    assert detail["msg"] == "must be a finite number (not NaN or Infinity)"
    with client.app.state.sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM decisions")) == 0


def test_finite_numbers_in_spark_conf_are_still_taken_as_text(client):
    response = client.post("/api/v1/decisions", json={"app_id": "etl.orders", "dry_run": True,
                                                      "spark_conf": {"spark.x": 1.5, "spark.y": 3,
                                                                     "spark.z": True}})
    assert response.status_code == 200, response.text


def test_failed_needs_failure_kind_is_in_the_openapi_schema(client):
    """A client reading the schema (schemathesis, a generated client) knows that a failed run needs its
    kind."""
    schema = client.get("/openapi.json").json()
    event = schema["components"]["schemas"]["RunEvent"]
    validate = jsonschema.Draft202012Validator(event).is_valid
    assert not validate({"event": "failed"})
    assert not validate({"event": "failed", "failure_kind": None})
    assert validate({"event": "failed", "failure_kind": "pending"})
    assert validate({"event": "started"}) and validate({"event": "cancelled", "message": "SIGTERM"})
    run_id = client.post("/api/v1/decisions", json={"app_id": "etl.orders"}).json()["run_id"]
    refused = client.post(f"/api/v1/runs/{run_id}/events", json={"event": "failed"})
    assert refused.status_code == 422 and "failure_kind" in refused.text
    events = schema["paths"]["/api/v1/runs/{run_id}/events"]["post"]
    assert "422" in events["responses"]


# ----------------------------------------------------------------------------------------- heartbeats

@pytest.mark.parametrize("sent, kept", [
    (" http://spark.example:4040", "http://spark.example:4040"),
    ("https://spark.example:4040/jobs \n", "https://spark.example:4040/jobs"),
    ("\thttp://spark.example:4040", "http://spark.example:4040"),
    ("http://spark.example:4040/a b", None),
    ("http://spark.exa\nmple:4040", None),
    ("http://spark.example:4040/\x00", None),
])
def test_a_ui_url_is_stored_without_surrounding_whitespace_or_not_at_all(client, sent, kept):
    response = client.post("/api/v1/ingest/heartbeat",
                           json=heartbeat(ui_url=sent, connect_url=" sc://h:15002 "))
    assert response.status_code in (200, 422), response.text
    if "\x00" in sent:
        assert response.status_code == 422  # NUL: what the database refuses, as before
        return
    [server] = client.get("/api/v1/servers").json()
    assert server["ui_url"] == kept
    assert server["connect_url"] == "sc://h:15002"


# ---------------------------------------------------------------------------------------------- /metrics

def test_metrics_are_open_by_default_and_closed_by_their_token(settings):
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            client.post("/api/v1/ingest/heartbeat", json=heartbeat())
            assert 'server_id="connect-a"' in client.get("/metrics").text
    finally:
        app.state.engine.dispose()
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-s3cret"),
                                                 "api_token": SecretStr("api-s3cret")}))
    try:
        with TestClient(app) as client:
            for token in (None, "wrong", "api-s3cret"):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                refused = client.get("/metrics", headers=headers)
                assert refused.status_code == 401 and "connect-a" not in refused.text
                assert "SPARK_ROUTER_METRICS_TOKEN" in refused.json()["detail"]
            scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-s3cret"})
            assert scraped.status_code == 200 and 'server_id="connect-a"' in scraped.text
            assert client.get("/healthz").status_code == 200  # still open
    finally:
        app.state.engine.dispose()


# --------------------------------------------------------------------------------------- the quarantine

def quarantine_nul(client, stage_id: int) -> None:
    bad = stage(stage_id, failure_reason="bad\x00byte", status="failed")
    assert client.post("/api/v1/ingest/stages", json=batch(bad)).json()["quarantined"] == 1


@pytest.mark.parametrize("retention_days, kept", [(30, 2), (1.5, 1)])
def test_the_quarantines_retention_is_a_setting(settings, retention_days, kept):
    app = create_app(settings.model_copy(update={"quarantine_retention_days": retention_days}))
    try:
        with TestClient(app) as client:
            quarantine_nul(client, 1)
            with client.app.state.sessions() as session:  # two days old
                session.execute(text("UPDATE quarantined_records SET received_at = :at"),
                                {"at": utcnow() - timedelta(days=2)})
                session.commit()
            quarantine_nul(client, 2)  # a new one: the old ones past the retention go
            assert len(client.get("/api/v1/quarantine").json()) == kept
            assert client.get("/api/v1/dashboard/quarantine").json()["retention_days"] == retention_days
    finally:
        app.state.engine.dispose()
