"""/metrics moving with real API calls (one process, and two uvicorn workers in multiprocess mode), and Sentry
events from real failures reaching a local HTTP endpoint through sentry-sdk's own transport."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from service.app import create_app
from service.db import engine as db
from tests.service.ops.test_dashboard import SERVER, decide, heartbeat, ok, run
from tests.support import REPO, RouterProcess, wait_until


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# ---------------------------------------------------------------------------------------------- metrics

def test_metrics_move_with_decisions_ingest_and_rejections(client, settings):
    heartbeat(client, spool_files=7, spool_bytes=123_456, queue_size=5, dropped_records=2)
    before = scrape(client)

    first = run(client, "etl.metrics", executor_run_time_ms=10)  # no history: connect
    failed = run(client, "etl.metrics", fail="connect")           # within limits: connect, then fails
    fallback = ok(client.post(f"/api/v1/runs/{failed['run_id']}/fallback", json={"reason": "gone"}))
    again = ok(client.post(f"/api/v1/runs/{failed['run_id']}/fallback", json={"reason": "gone"}))
    assert again["run_id"] == fallback["run_id"]  # the same decision, answered again: counted once
    # A re-sent batch: duplicates. A stage without spark.router.appId: unattributed.
    batch = {"server_id": SERVER, "spark_app_id": "local-9", "stages": [
        {"app_id": "etl.metrics", "run_id": first["run_id"], "stage_id": 1, "attempt": 0,
         "status": "succeeded"},
        {"stage_id": 2, "attempt": 0, "status": "succeeded"}]}
    assert ok(client.post("/api/v1/ingest/stages", json=batch))["accepted"] == 2
    assert ok(client.post("/api/v1/ingest/stages", json=batch))["duplicates"] == 2
    assert client.post("/api/v1/ingest/stages", json={"server_id": SERVER}).status_code == 422
    assert client.post("/api/v1/ingest/heartbeat", json={"server_id": SERVER, "kind": "x"}).status_code == 422
    guarded = create_app(settings.model_copy(update={"ingest_token": SecretStr("ingest-s3cret")}))
    try:
        with TestClient(guarded) as other:
            assert other.post("/api/v1/ingest/heartbeat", json={}).status_code == 401
            assert other.post("/api/v1/ingest/heartbeat", json={},
                              headers={"Authorization": "Bearer ingest-s3cret"}).status_code == 422
    finally:
        guarded.state.engine.dispose()
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)

    assert delta(before, after, "spark_router_decisions_total", mode="connect", rule="no-history") == 1
    assert delta(before, after, "spark_router_decisions_total", mode="connect", rule="within-limits") == 1
    assert delta(before, after, "spark_router_decisions_total", mode="standalone", rule="fallback") == 1
    assert delta(before, after, "spark_router_fallbacks_total") == 1
    # 2 runs with one stage each, the batch, the batch again.
    assert delta(before, after, "spark_router_ingest_stages_total", outcome="accepted") == 4
    assert delta(before, after, "spark_router_ingest_stages_total", outcome="duplicate") == 2
    assert delta(before, after, "spark_router_ingest_unattributed_stages_total") == 1
    assert delta(before, after, "spark_router_ingest_rejected_total", endpoint="stages", status="422") == 1
    assert delta(before, after, "spark_router_ingest_rejected_total", endpoint="heartbeat", status="422") == 2
    assert delta(before, after, "spark_router_ingest_rejected_total", endpoint="heartbeat", status="401") == 1

    latency = "spark_router_http_request_duration_seconds_count"
    assert delta(before, after, latency, route="/api/v1/decisions", method="POST") == 2
    assert delta(before, after, latency, route="/api/v1/runs/{run_id}/events", method="POST") == 4
    assert delta(before, after, latency, route="<unmatched>", method="GET") == 1
    assert delta(before, after, "spark_router_http_responses_total", route="/api/v1/runs/{run_id}/fallback",
                 method="POST", status="200") == 2
    assert value(after, "spark_router_http_request_duration_seconds_bucket", route="/api/v1/decisions",
                 method="POST", le="+Inf") >= 2

    # Read from the database at scrape time: the newest heartbeat of each server.
    server = {"server_id": SERVER, "kind": "connect"}
    assert value(after, "spark_router_server_up", **server) == 1
    assert value(after, "spark_router_listener_spool_files", **server) == 7
    assert value(after, "spark_router_database_up") == 1


def test_spool_gauges_follow_the_newest_heartbeat(client):
    heartbeat(client, spool_files=7, spool_bytes=123_456, queue_size=5, dropped_records=2)
    heartbeat(client, server_id="standalone-1", kind="standalone", spool_files=1)
    samples = scrape(client)
    server = {"server_id": SERVER, "kind": "connect"}
    assert value(samples, "spark_router_listener_spool_files", **server) == 7
    assert value(samples, "spark_router_listener_spool_bytes", **server) == 123_456
    assert value(samples, "spark_router_listener_queue_size", **server) == 5
    assert value(samples, "spark_router_listener_dropped_records", **server) == 2
    assert value(samples, "spark_router_listener_spool_files", server_id="standalone-1",
                 kind="standalone") == 1
    assert value(samples, "spark_router_server_draining", **server) == 0
    assert 7000 < value(samples, "spark_router_server_uptime_seconds", **server) < 7400
    heartbeat(client, spool_files=0, spool_bytes=0)
    ok(client.post(f"/api/v1/admin/servers/{SERVER}/drain"))
    decide(client, "etl.gauges")
    samples = scrape(client)
    assert value(samples, "spark_router_listener_spool_files", **server) == 0
    assert value(samples, "spark_router_server_draining", **server) == 1
    assert value(samples, "spark_router_runs_in_flight", mode="standalone") == 1  # drained: standalone
    # The pool as placement sees it: the drained server takes no run, and holds none.
    assert value(samples, "spark_router_pool_available", server_id=SERVER) == 0
    assert value(samples, "spark_router_pool_in_flight_cores", server_id=SERVER) == 0
    assert value(samples, "spark_router_pool_capacity_cores", server_id=SERVER) == 8


def test_metrics_answer_while_the_database_is_down(settings):
    app = create_app(settings)
    try:
        # Every session of this app now goes to a port where no database listens.
        app.state.sessions = db.session_factory(db.make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none"))
        with TestClient(app) as client:
            samples = scrape(client)
        assert value(samples, "spark_router_database_up") == 0
        assert ("spark_router_server_up",
                frozenset({("server_id", SERVER), ("kind", "connect")})) not in samples
    finally:
        app.state.engine.dispose()


def test_two_workers_report_one_total_in_multiprocess_mode(tmp_path):
    """uvicorn --workers 2 with PROMETHEUS_MULTIPROC_DIR: every scrape, whichever worker answers it, counts
    the decisions of both."""
    url = f"sqlite:///{tmp_path / 'router.db'}"
    db.upgrade(db.make_engine(url))  # once, before two workers start
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    process = RouterProcess(url, tmp_path / "state", workers=2,
                            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                                 "SPARK_ROUTER_CONNECT_SERVER_ID": SERVER}).start()
    try:
        with httpx.Client(base_url=process.url, timeout=30) as http:
            heartbeat(http)
        for i in range(6):  # a new connection each: the workers share the listening socket
            ok(httpx.post(f"{process.url}/api/v1/decisions", json={"app_id": f"etl.mp{i}"}, timeout=30))
        pids = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("*.db")}
        assert len(pids) >= 2, f"one file set per worker expected, got {sorted(metrics_dir.iterdir())}"
        for _ in range(4):
            with httpx.Client(base_url=process.url, timeout=30) as fresh:
                samples = scrape(fresh)
            assert value(samples, "spark_router_decisions_total", mode="connect", rule="no-history") == 6
            assert value(samples, "spark_router_http_request_duration_seconds_count",
                         route="/api/v1/decisions", method="POST") == 6
            assert value(samples, "spark_router_server_up", server_id=SERVER, kind="connect") == 1
    finally:
        process.stop()


# ----------------------------------------------------------------------------------------------- Sentry

class SentryStub:
    """A local HTTP endpoint that takes Sentry envelopes (POST /api/<project>/envelope/) and keeps the
    events."""

    def __init__(self):
        self.events: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.rstrip("/").endswith("/envelope"):
                    stub.events.extend(payload for header, payload in parse_envelope(body)
                                       if header.get("type") == "event")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://public@127.0.0.1:{self.server.server_address[1]}/1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, what: str) -> dict:
        return wait_until(lambda: next((e for e in list(self.events) if predicate(e)), None), 20, what)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def parse_envelope(raw: bytes) -> list[tuple[dict, dict]]:
    """Sentry's envelope: a header line, then items, each a header line and a payload (of `length` bytes,
    or up to the next newline)."""
    _, _, rest = raw.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[:header["length"]], rest[header["length"] + 1:]
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, json.loads(payload) if header.get("type") == "event" else {}))
    return items


@pytest.fixture
def sentry():
    stub = SentryStub()
    yield stub
    stub.close()


def exception_type(event: dict) -> str:
    return event["exception"]["values"][-1]["type"]


def test_service_errors_reach_sentry_tagged_with_app_and_run(sentry, tmp_path):
    database = tmp_path / "router.db"
    process = RouterProcess(f"sqlite:///{database}", tmp_path / "state",
                            env={"SENTRY_DSN": sentry.dsn, "SENTRY_ENVIRONMENT": "test",
                                 "SPARK_ROUTER_CONNECT_SERVER_ID": SERVER}).start()
    try:
        with httpx.Client(base_url=process.url, timeout=30) as http:
            heartbeat(http)
            decision = decide(http, "etl.sentry")
            # Break the database under the running service: the decisions table goes.
            with sqlite3.connect(database) as connection:
                connection.execute("DROP TABLE decisions")
        # A connection each: uvicorn closes the one an unhandled error went through.
        assert httpx.post(f"{process.url}/api/v1/decisions", json={"app_id": "etl.broken"}).status_code == 500
        assert httpx.get(f"{process.url}/api/v1/runs/{decision['run_id']}").status_code == 500
        assert httpx.get(f"{process.url}/healthz").status_code == 200  # the service itself goes on

        posted = sentry.wait_for(lambda e: e.get("tags", {}).get("app_id") == "etl.broken",
                                 "the failed decision's event")
        assert exception_type(posted) == "OperationalError" and "decisions" in json.dumps(posted["exception"])
        assert posted["tags"]["component"] == "service" and posted["environment"] == "test"
        assert posted["request"]["url"].endswith("/api/v1/decisions")

        fetched = sentry.wait_for(lambda e: e.get("tags", {}).get("run_id") == decision["run_id"],
                                  "the failed run lookup's event")
        assert exception_type(fetched) == "OperationalError" and fetched["tags"]["component"] == "service"
        assert fetched["transaction"] == "/api/v1/runs/{run_id}"
    finally:
        process.stop()


def _python(code: str, dsn: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "SENTRY_DSN": dsn, "PYTHONPATH": str(REPO), "HOME": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)


def test_launcher_crash_reaches_sentry_with_run_tags(sentry):
    """What client_runtime/launcher.py does: init_sentry("launcher"), tag the run once decided; an uncaught
    error is reported on the way out. The module needs no prometheus-client for this."""
    result = _python(
        "import sys\n"
        "from client_runtime import sentry\n"
        "assert sentry.init_sentry('launcher')\n"
        "assert 'prometheus_client' not in sys.modules, 'Sentry alone must not import prometheus-client'\n"
        "sentry.set_run_tags(app_id='etl.launch', run_id='run-20261122-abc', mode='connect')\n"
        "raise RuntimeError('spark-submit exited 137')\n", sentry.dsn)
    assert result.returncode == 1 and "spark-submit exited 137" in result.stderr
    event = sentry.wait_for(lambda e: e.get("tags", {}).get("component") == "launcher",
                            "the launcher's event")
    assert exception_type(event) == "RuntimeError"
    assert event["tags"]["app_id"] == "etl.launch" and event["tags"]["run_id"] == "run-20261122-abc"
    assert event["tags"]["mode"] == "connect"


def test_operator_reports_a_handled_failure(sentry):
    """What the Airflow operator does: the task fails with its own exception, so it reports the error
    itself."""
    result = _python(
        "from client_runtime import sentry\n"
        "assert sentry.init_sentry('operator')\n"
        "sentry.set_run_tags(app_id='etl.orders', run_id='run-20261122-def', dag_id='etl', "
        "task_id='orders')\ntry:\n"
        "    raise ValueError('the app failed (exit code 1)')\n"
        "except ValueError as exc:\n"
        "    assert sentry.report_exception(exc)\n", sentry.dsn)
    assert result.returncode == 0, result.stderr
    event = sentry.wait_for(lambda e: e.get("tags", {}).get("component") == "operator",
                            "the operator's event")
    assert exception_type(event) == "ValueError"
    assert {k: event["tags"][k] for k in ("app_id", "run_id", "dag_id", "task_id")} == {
        "app_id": "etl.orders", "run_id": "run-20261122-def", "dag_id": "etl", "task_id": "orders"}


def test_no_dsn_no_sentry():
    result = _python("from client_runtime import sentry\nprint(sentry.init_sentry('launcher'))\n", "")
    assert result.stdout.strip() == "False", result.stderr
    with pytest.raises(ValueError, match="component"):
        from client_runtime import sentry

        sentry.init_sentry("scheduler")
