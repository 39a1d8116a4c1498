"""Every endpoint refuses what the database would refuse with a 422 in one shape, never a 5xx (issue 13, items
6 and 9): NUL in stored text, integers past their column, offsets past 2^63, non-finite numbers, values that
are not integers where integers are meant. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from tests.service.ingest.test_ingest_api import heartbeat

NOW = "2026-12-02T01:00:00+00:00"
RESTART = {"server_id": "connect-local", "backend": "local", "requested_at": NOW, "finished_at": NOW,
           "outcome": "restarted", "waited_s": 1.5}


def send(client, method: str, path: str, body=None, replace: dict | None = None):
    """A request with a JSON body written as a client's encoder may write it: NaN and Infinity as bare words,
    and any text in `replace` swapped in."""
    if body is None:
        return client.request(method, path)
    text = json.dumps(body)
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return client.request(method, path, content=text.encode(), headers={"content-type": "application/json"})


def assert_one_422_shape(response) -> list[dict]:
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert isinstance(details, list) and details
    for detail in details:
        assert set(detail) <= {"loc", "msg", "type", "input"} and {"loc", "msg", "type"} <= set(detail)
        assert isinstance(detail["loc"], list) and isinstance(detail["msg"], str)
        assert not isinstance(detail.get("input"), (dict, list))
        assert len(json.dumps(detail.get("input"))) <= 110
    return details


@pytest.fixture
def run_id(client) -> str:
    response = client.post("/api/v1/decisions", json={"app_id": "etl.orders"})
    assert response.status_code == 200
    return response.json()["run_id"]


CASES = [
    # NUL in text the database stores
    ("PUT", "/api/v1/apps/etl.orders/compatibility",
     {"findings": [{"path": "app.py", "line": 1, "what": "sc", "why": "uses\x00SparkContext"}]}, None, "why"),
    ("PUT", "/api/v1/admin/apps/etl.orders/pin", {"mode": "standalone", "reason": "on\x00call"}, None,
     "reason"),
    ("PUT", "/api/v1/admin/apps/etl.orders/pin", {"mode": "connect", "server_id": "connect\x00a"}, None,
     "server_id"),
    ("POST", "/api/v1/admin/restarts", {**RESTART, "message": "re\x00started"}, None, "message"),
    ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "airflow": {"dag_id": "d", "task_id": "t\x00",
                                                                       "run_id": "r"}}, None, "task_id"),
    ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "spark_conf": {"spark.x": "a\x00b"}}, None,
     "spark.x"),
    # integers past their column
    ("POST", "/api/v1/decisions",
     {"app_id": "etl.orders", "airflow": {"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 2**31}},
     None, "try_number"),
    ("POST", "/api/v1/decisions",
     {"app_id": "etl.orders", "airflow": {"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 2**63}},
     None, "try_number"),
    ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "resources": {"executor_memory": 2**64}}, None,
     "executor_memory"),
    ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "resources": {"executor_memory": "1e400g"}}, None,
     "executor_memory"),
    ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "resources": {"executor_memory": float("inf")}},
     None, "executor_memory"),
    # strict integers: not "7", 7.0 or true
    ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "resources": {"driver_cores": "7"}}, None,
     "driver_cores"),
    ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "resources": {"driver_cores": 7.0}}, None,
     "driver_cores"),
    ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "resources": {"num_executors": True}}, None,
     "num_executors"),
    ("PUT", "/api/v1/apps/etl.orders/compatibility",
     {"findings": [{"path": "app.py", "line": "1", "what": "sc", "why": "x"}]}, None, "line"),
    ("POST", "/api/v1/policy/simulate", {"policy": {}, "days": "7"}, None, "days"),
    # found by schemathesis
    ("POST", "/api/v1/policy/simulate", {"policy": {}, "days": 2**31 - 2}, None, "days"),
    # non-finite numbers
    ("POST", "/api/v1/admin/restarts", {**RESTART, "waited_s": float("inf")}, None, "waited_s"),
    ("POST", "/api/v1/admin/restarts", {**RESTART, "waited_s": float("nan")}, None, "waited_s"),
    ("POST", "/api/v1/admin/restarts", {**RESTART, "waited_s": "HUGE"}, {'"HUGE"': "1e400"}, "waited_s"),
    ("POST", "/api/v1/admin/restarts", {**RESTART, "requested_at": "0001-01-01T00:00:00+01:00"}, None,
     "requested_at"),
    # offsets and limits past 2^63, NUL in query strings and paths
    ("GET", f"/api/v1/apps?offset={2**63}", None, None, "offset"),
    ("GET", f"/api/v1/apps/etl.orders/runs?offset={10**30}", None, None, "offset"),
    ("GET", f"/api/v1/quarantine?offset={2**64}", None, None, "offset"),
    ("GET", "/api/v1/restarts?server_id=a%00b", None, None, "server_id"),
    ("GET", "/api/v1/dashboard/restarts?server_id=a%00b", None, None, "server_id"),
    ("GET", "/api/v1/runs/run%00x", None, None, "run_id"),
    ("GET", "/api/v1/dashboard/apps/etl%00orders", None, None, "app_id"),
    ("PUT", "/api/v1/admin/apps/etl%00orders/pin", {"mode": "standalone"}, None, "app_id"),
    ("PUT", "/api/v1/apps/" + "a" * 201 + "/compatibility", {"findings": []}, None, "app_id"),
    ("POST", "/api/v1/admin/servers/a%00b/drain", None, None, "server_id"),
]


@pytest.mark.parametrize("method, path, body, replace, field", CASES)
def test_what_the_database_would_refuse_is_422(client, method, path, body, replace, field):
    details = assert_one_422_shape(send(client, method, path, body, replace))
    assert any(field in detail["loc"] for detail in details), details


@pytest.mark.parametrize("event", [{"event": "failed", "failure_kind": "app", "message": "boom\x00"},
                                   {"event": "succeeded", "exit_code": 2**31},
                                   {"event": "succeeded", "exit_code": "0"},
                                   {"event": "succeeded", "exit_code": 0.0}])
def test_run_reports_the_database_would_refuse_are_422(client, run_id, event):
    assert_one_422_shape(send(client, "POST", f"/api/v1/runs/{run_id}/events", event))
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "decided"


def test_fallback_reason_with_nul_is_422(client, run_id):
    assert_one_422_shape(send(client, "POST", f"/api/v1/runs/{run_id}/fallback", {"reason": "gone\x00"}))


def test_sizes_still_take_sparks_forms(client):
    response = client.post("/api/v1/decisions", json={"app_id": "etl.orders", "resources": {
        "executor_memory": "4g", "driver_memory": 1 << 30, "executor_cores": 2}})
    assert response.status_code == 200, response.text


def test_values_at_the_edges_are_taken(client, run_id):
    assert client.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded", "exit_code": -(2**31)}
                       ).status_code == 200
    assert client.get(f"/api/v1/apps?offset={2**63 - 1}").json() == []
    airflow = {"dag_id": "d" * 250, "task_id": "t" * 250, "run_id": "r" * 250, "try_number": 2**31 - 1}
    assert client.post("/api/v1/decisions",
                       json={"app_id": "etl.edge", "airflow": airflow}).status_code == 200
    assert client.post("/api/v1/admin/restarts", json={**RESTART, "waited_s": 1e300,
                                                       "message": "é" * 10_000}).status_code == 200


def test_no_422_echoes_a_large_input(client):
    """Item 7: a 422 echoed its input (50 MB in, 50 MB out)."""
    huge = "x" * 5_000_000
    for method, path, body in (
            ("POST", "/api/v1/decisions", {"app_id": huge}),
            ("POST", "/api/v1/decisions", {"app_id": "etl.orders", "unknown": {"nested": [huge]}}),
            # no spark_app_id
            ("POST", "/api/v1/ingest/stages", {"server_id": "s", "stages": [{"name": huge}]}),
            ("POST", "/api/v1/ingest/heartbeat",
             {"server_id": huge, "spark_app_id": "a", "kind": "connect"})):
        response = send(client, method, path, body)
        assert_one_422_shape(response)
        assert len(response.content) < 2_000, (path, len(response.content))


def test_a_422_with_a_non_finite_or_unencodable_input_is_still_a_422(client):
    """The input shown must be JSON the answer can hold: NaN and a lone surrogate used to fail the 422
    itself."""
    response = send(client, "POST", "/api/v1/admin/restarts", {**RESTART, "outcome": float("nan")})
    assert assert_one_422_shape(response)[0]["input"] == "nan"
    response = client.post("/api/v1/decisions", content=b'{"app_id": "\\ud800"}',
                           headers={"content-type": "application/json"})
    assert assert_one_422_shape(response)[0]["input"] == "\\ud800"


def test_every_422_has_the_same_shape(client):
    """Item 9: the policy's and the dashboard's own 422s had another shape than validation errors."""
    for response in (client.post("/api/v1/policy/simulate", json={"policy": {"history": {"window": 0}}}),
                     client.get("/api/v1/dashboard/decisions", params={"days": 60, "bucket": "hour"}),
                     client.post("/api/v1/decisions", json={"app_id": ""}),
                     client.post("/api/v1/decisions", content=b"{not json",
                                 headers={"content-type": "application/json"})):
        assert_one_422_shape(response)


def test_policy_candidates_with_values_no_duration_can_hold_are_422(client):
    for policy in ({"capacity": {"in_flight_max_age_s": 1e300}},
                   {"connect_failures": {"cooldown_days": 1e12}}, {"capacity": {"cores": float("inf")}},
                   {"version": "v" * 81}):
        response = send(client, "POST", "/api/v1/policy/simulate", {"policy": policy})
        assert_one_422_shape(response)


def test_heartbeat_integers_are_strict(client):
    for value in ("3", 3.0, True):
        response = client.post("/api/v1/ingest/heartbeat", json=heartbeat(spool_files=value))
        assert_one_422_shape(response)


def test_the_openapi_schema_lists_the_error_statuses():
    """Item 9: the schema omitted 400/401/404/409. (The schemathesis run checks that every status answered is
    listed; this checks the listing itself.)"""
    from service.app import create_app
    from service.config import RouterSettings

    spec = create_app(RouterSettings(database_url="sqlite://"), migrate=False).openapi()
    specific = {("post", "/api/v1/runs/{run_id}/events"): {"404", "409"},
                ("post", "/api/v1/runs/{run_id}/fallback"): {"404", "409"},
                ("get", "/api/v1/runs/{run_id}"): {"404"}, ("get", "/api/v1/apps/{app_id}/runs"): {"404"},
                ("delete", "/api/v1/admin/apps/{app_id}/pin"): {"404"}, ("get", "/healthz"): {"503"}}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            listed = set(operation["responses"])
            expected = {"200"} | specific.get((method, path), set())
            expected |= {"401", "503"} if path.startswith("/api/v1/") else set()
            expected |= {"422"} if operation.get("parameters") or "requestBody" in operation else set()
            expected |= {"400", "413"} if "requestBody" in operation else set()
            expected |= {"404"} if "{" in path else set()  # a thing not found, or a path no route matches
            assert expected <= listed, (method, path, sorted(listed))
            if "422" in listed:
                schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ValidationErrorOut"}, (method, path)
