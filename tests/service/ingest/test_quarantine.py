"""One tenant's odd stage records never stop another tenant's (issue 13, items 1, 2 and 6): what the database
cannot store is quarantined with its reason, the rest of the batch is stored, and ingest answers 2xx. On
SQLite and PostgreSQL, through the HTTP API as the listener posts."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.service.ingest.test_ingest_api import T0, heartbeat, stage

INT64_MAX = 2**63 - 1


def tenant_batch(bad: dict, others: int = 16) -> dict:
    """A batch from the shared server: one stage of tenant A, made bad, and `others` stages of tenant B."""
    stages = [{**stage(1, app_id="team-a.etl", run_id="run-a"), **bad}]
    stages += [stage(100 + i, app_id="team-b.etl", run_id="run-b") for i in range(others)]
    return {"batch_id": "b-1", "server_id": "connect-shared", "spark_app_id": "app-1", "stages": stages}


def post_raw(client, body: dict, replace: dict | None = None):
    """POST a body as the listener's Jackson writes it: ASCII JSON (a lone surrogate as a \\u escape), NaN and
    Infinity as bare words, and any text in `replace` swapped in (for numbers no encoder writes, e.g.
    1e400)."""
    text = json.dumps(body, ensure_ascii=True)
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return client.post("/api/v1/ingest/stages", content=text.encode(),
                       headers={"content-type": "application/json"})


def runs_of(client, app_id: str) -> list[dict]:
    response = client.get(f"/api/v1/apps/{app_id}/runs")
    return response.json() if response.status_code == 200 else []


def counts(client) -> tuple[int, int]:
    """Stage attempts stored, records quarantined."""
    with client.app.state.sessions() as session:
        return (session.scalar(text("SELECT count(*) FROM stage_metrics")),
                session.scalar(text("SELECT count(*) FROM quarantined_records")))


def test_a_nul_in_one_tenants_failure_reason_never_stops_another_tenants_stages(client):
    """Item 1: a UDF failing with ValueError("bad\\x00byte") puts a NUL in the stage's failure reason."""
    response = post_raw(client,
                        tenant_batch({"status": "failed", "failure_reason": "ValueError: bad\x00byte"}))
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 16, "duplicates": 0, "unattributed": 0, "quarantined": 1}
    [run_b] = runs_of(client, "team-b.etl")
    assert run_b["num_stages"] == 16
    assert runs_of(client, "team-a.etl") == []

    [kept] = client.get("/api/v1/quarantine").json()
    assert kept["reason"] == "failure_reason: must not contain NUL (\\u0000)"
    assert (kept["server_id"], kept["spark_app_id"], kept["batch_id"]) == ("connect-shared", "app-1", "b-1")
    assert (kept["app_id"], kept["run_id"]) == ("team-a.etl", "run-a")
    assert json.loads(kept["record"])["failure_reason"] == "ValueError: bad\x00byte"  # escaped, whole


def test_a_lone_surrogate_is_quarantined(client):
    """Item 1: a name cut in the middle of an emoji (the old listener cut by UTF-16 chars)."""
    response = post_raw(client, tenant_batch({"name": "count at 😀"[:-1] + "\ud83d"}))
    assert response.status_code == 200, response.text
    assert response.json()["quarantined"] == 1 and response.json()["accepted"] == 16
    [kept] = client.get("/api/v1/quarantine").json()
    assert kept["reason"] == "name: must be valid Unicode text (no lone UTF-16 surrogate)"
    assert "\\ud83d" in kept["record"]


@pytest.mark.parametrize("field, length", [("connect_user_id", 210), ("app_id", 201), ("run_id", 101),
                                           ("connect_session_id", 101), ("connect_operation_id", 101)])
def test_an_over_long_id_quarantines_its_record_not_the_batch(client, field, length):
    """Item 2: one client with a 210-character user id made the whole batch 422, and the listener
    dropped it."""
    response = post_raw(client, tenant_batch({field: "u" * length}))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 16 and response.json()["quarantined"] == 1
    [kept] = client.get("/api/v1/quarantine").json()
    assert kept["reason"].startswith(f"{field}: String should have at most")


@pytest.mark.parametrize("bad, replace, field", [
    ({"executor_run_time_ms": 2**63}, None, "executor_run_time_ms"),            # past a BigInteger
    ({"shuffle_write_bytes": 10**30}, None, "shuffle_write_bytes"),
    ({"stage_id": 2**31}, None, "stage_id"),                                     # past an Integer
    ({"job_id": -(2**31) - 1}, None, "job_id"),
    ({"submission_time_ms": 10**17}, None, "submission_time_ms"),                # the year 3 million
    ({"completion_time_ms": 253_402_300_800_000}, None, "completion_time_ms"),  # 10000-01-01
    ({"disk_spilled_bytes": float("nan")}, None, "disk_spilled_bytes"),
    ({"disk_spilled_bytes": float("inf")}, None, "disk_spilled_bytes"),
    ({"disk_spilled_bytes": "HUGE"}, {'"HUGE"': "1e400"}, "disk_spilled_bytes"),
    ({"num_tasks": "7"}, None, "num_tasks"),                                     # strict integers
    ({"num_tasks": 7.0}, None, "num_tasks"),
    ({"num_tasks": True}, None, "num_tasks"),
    ({"status": "weird"}, None, "status"),
    ({"app_id": "team-a\x00etl"}, None, "app_id"),
])
def test_values_the_database_refuses_are_quarantined(client, bad, replace, field):
    """Item 6: integers past 2^63 (and 2^31 in Integer columns), far-future timestamps, NaN, Infinity,
    1e400."""
    response = post_raw(client, tenant_batch(bad, others=3), replace)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "duplicates": 0, "unattributed": 0, "quarantined": 1}
    [kept] = client.get("/api/v1/quarantine").json()
    assert kept["reason"].startswith(f"{field}: ")
    assert counts(client) == (3, 1)


def test_a_batch_of_only_bad_records_is_answered_2xx(client):
    body = tenant_batch({"stage_id": -1}, others=0)
    body["stages"].append("not a record")
    response = post_raw(client, body)
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 0, "unattributed": 0, "quarantined": 2}
    reasons = [kept["reason"] for kept in client.get("/api/v1/quarantine").json()]
    assert sorted(reasons) == ["Input should be a valid dictionary or object to extract fields from",
                               "stage_id: Input should be greater than or equal to 0"]


def test_a_resent_batch_quarantines_nothing_twice(client):
    body = tenant_batch({"failure_reason": "bad\x00byte"}, others=2)
    first, again = post_raw(client, body).json(), post_raw(client, body).json()
    assert first == {"accepted": 2, "duplicates": 0, "unattributed": 0, "quarantined": 1}
    assert again == {"accepted": 0, "duplicates": 2, "unattributed": 0, "quarantined": 1}
    assert counts(client) == (2, 1)


def test_quarantine_is_counted_in_metrics_and_listed_by_server(client):
    def scrape() -> str:
        return client.get("/metrics").text

    def counter(text: str) -> float:
        line = next((line for line in text.splitlines()
                     if line.startswith('spark_router_ingest_stages_total{outcome="quarantined"}')), None)
        return float(line.split()[-1]) if line else 0.0

    before = counter(scrape())
    post_raw(client, tenant_batch({"stage_id": 2**40}, others=1))
    body = tenant_batch({"stage_id": 2**41}, others=1)
    body["server_id"] = "connect-other"
    post_raw(client, body)
    after = scrape()
    assert counter(after) - before == 2
    assert "spark_router_quarantined_records 2.0" in after
    listed = client.get("/api/v1/quarantine", params={"server_id": "connect-other"}).json()
    assert [kept["server_id"] for kept in listed] == ["connect-other"]
    assert client.get("/api/v1/dashboard/quarantine").json()["total"] == 2


def test_run_totals_stop_at_the_bigint_instead_of_overflowing(client):
    """Stage values each within their bound (1 EiB of shuffle, issue 20) still sum past a BigInteger over a
    run's stages, within a batch and across batches: the run's total stops at 2^63-1."""
    most = 2**60
    first = client.post("/api/v1/ingest/stages", json=tenant_batch({}, others=0) | {
        "stages": [stage(i, shuffle_write_bytes=most) for i in range(1, 6)]})
    assert first.json()["accepted"] == 5, first.text
    second = client.post("/api/v1/ingest/stages", json=tenant_batch({}, others=0) | {
        "stages": [stage(i, shuffle_write_bytes=most) for i in range(6, 10)]})
    assert second.json()["accepted"] == 4, second.text
    [run] = runs_of(client, "etl.orders")
    assert run["num_stages"] == 9 and run["shuffle_write_bytes"] == INT64_MAX


@pytest.mark.parametrize("envelope, field", [
    ({"server_id": "connect\x00shared"}, "server_id"),
    ({"spark_app_id": "x" * 201}, "spark_app_id"),
    ({"spark_app_id": None}, "spark_app_id"),
    ({"batch_id": "\ud800"}, "batch_id"),
    ({"stages": {"0": {}}}, "stages"),
    ({"extra": 1}, "extra"),
])
def test_a_bad_envelope_refuses_the_whole_batch(client, envelope, field):
    response = post_raw(client, tenant_batch({}, others=2) | envelope)
    assert response.status_code == 422
    assert [detail["loc"] for detail in response.json()["detail"]] == [["body", field]]
    assert counts(client) == (0, 0)


def test_more_than_10000_records_refuse_the_batch(client):
    body = tenant_batch({}, others=0) | {"stages": [stage(i) for i in range(10_001)]}
    response = client.post("/api/v1/ingest/stages", json=body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "stages"]


# ------------------------------------------------------------------------------------------------ heartbeats

@pytest.mark.parametrize("field, value", [
    ("queue_size", 2**31), ("spool_bytes", 2**63), ("sent_at_ms", 10**17), ("start_time_ms", -1),
    ("spark_version", "4.3\x00"), ("server_id", "a" * 201),
    ("active_sessions", "7"), ("active_sessions", 7.0), ("active_sessions", True),
    ("ui_url", "http://" + "h" * 300),
])
def test_a_heartbeat_the_database_would_refuse_is_422(client, field, value):
    response = client.post("/api/v1/ingest/heartbeat", content=json.dumps(heartbeat(**{field: value})),
                           headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert [detail["loc"] for detail in response.json()["detail"]] == [["body", field]]


@pytest.mark.parametrize("ui_url, connect_url", [
    ("javascript:alert(1)", "javascript:alert(1)"), (" javascript:alert(1)", "http://127.0.0.1:15002"),
    ("JavaScript:alert(1)", "sc:no-host"), ("data:text/html,<script>alert(1)</script>", "file:///etc/passwd"),
    ("//evil.example/x", "grpc://127.0.0.1:15002"),
])
def test_heartbeat_urls_of_another_scheme_are_stored_as_null(client, ui_url, connect_url, caplog):
    """Item 8: the dashboard shows ui_url as a link, next to the API token the browser keeps. The heartbeat is
    kept (the server stays up); the URLs are not."""
    response = client.post("/api/v1/ingest/heartbeat", json=heartbeat(ui_url=ui_url, connect_url=connect_url))
    assert response.status_code == 200
    [server] = client.get("/api/v1/servers").json()
    assert (server["ui_url"], server["connect_url"]) == (None, None)
    assert server["last_heartbeat_at"] is not None
    assert "ui_url" in caplog.text and "stored as null" in caplog.text


def test_heartbeat_urls_of_the_right_scheme_are_kept(client):
    client.post("/api/v1/ingest/heartbeat", json=heartbeat(ui_url="https://spark.example:4040/jobs",
                                                          connect_url="sc://connect.example:15002/;token=x"))
    [server] = client.get("/api/v1/servers").json()
    assert server["ui_url"] == "https://spark.example:4040/jobs"
    assert server["connect_url"] == "sc://connect.example:15002/;token=x"


def test_stage_timestamps_at_the_edge_of_the_range_are_stored(client):
    late = stage(1, submission_time_ms=253_402_300_799_998, completion_time_ms=253_402_300_799_999)
    early = stage(2, submission_time_ms=0, completion_time_ms=T0)
    response = client.post("/api/v1/ingest/stages",
                           json=tenant_batch({}, others=0) | {"stages": [late, early]})
    assert response.json() == {"accepted": 2, "duplicates": 0, "unattributed": 0, "quarantined": 0}
    [run] = runs_of(client, "etl.orders")
    assert run["last_stage_at"].startswith("9999-12-31T23:59:59.999")
