"""Tokens and the body-size limit before any body is read (issue 13, item 7): a request without its token, or
with a body past SPARK_ROUTER_MAX_BODY_BYTES, is answered 401 or 413 from its headers, and a huge streamed
body never makes the router hold it. Against a real `spark-router serve` process."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.api import deps
from service.api.request_guard import token_for
from service.app import create_app
from service.config import RouterSettings
from service.db.models import METRICS
from tests.service.ingest.test_ingest_api import batch, stage
from tests.support import RouterProcess

MB = 1 << 20
TOKEN = "ingest-s3cret"
DEPENDENCY_TOKEN = {deps.require_ingest_token: "ingest", deps.require_api_token: "api",
                    deps.require_admin_token: "admin", deps.require_metrics_token: "metrics"}


def test_the_guard_asks_for_the_token_the_routes_ask_for():
    """The middleware decides by path prefix; each route's own dependency must name the same token."""
    app = create_app(RouterSettings(database_url="sqlite://"), migrate=False)
    checked = 0
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        needed = {DEPENDENCY_TOKEN[d.dependency] for d in route.dependencies
                  if d.dependency in DEPENDENCY_TOKEN}
        assert len(needed) <= 1, route.path
        assert token_for(route.path) == (needed.pop() if needed else None), route.path
        checked += 1
    assert checked > 30


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A router with an ingest token, on SQLite."""
    state = tmp_path_factory.mktemp("guarded")
    process = RouterProcess(f"sqlite:///{state / 'router.db'}", state,
                            env={"SPARK_ROUTER_INGEST_TOKEN": TOKEN}).start()
    yield process
    process.stop()


def raw_request(process: RouterProcess, headers: str, body: bytes = b"", timeout_s: float = 10) -> str:
    """Send a request's head (and `body`, maybe less than it announces) and read the answer's status line."""
    with socket.create_connection(("127.0.0.1", process.port), timeout=timeout_s) as sock:
        sock.sendall(f"POST /api/v1/ingest/stages HTTP/1.1\r\nHost: router\r\n{headers}\r\n".encode() + body)
        answer = sock.recv(65536).decode("latin-1")
    return answer.split("\r\n", 1)[0]


def test_401_and_413_are_answered_before_the_body_arrives(guarded):
    """The body announced is never sent: an answer proves that the router did not wait for it."""
    big = "Content-Type: application/json\r\nContent-Length: 300000000\r\n"
    assert raw_request(guarded, big) == "HTTP/1.1 401 Unauthorized"
    assert raw_request(guarded, big + "Authorization: Bearer wrong\r\n") == "HTTP/1.1 401 Unauthorized"
    authorized = big + f"Authorization: Bearer {TOKEN}\r\n"
    assert raw_request(guarded, authorized) == "HTTP/1.1 413 Request Entity Too Large"
    body = b'{"server_id": "s", "spark_app_id": "a", "stages": []}'
    small = (f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
             f"Authorization: Bearer {TOKEN}\r\n")
    assert raw_request(guarded, small, body) == "HTTP/1.1 200 OK"


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the process's peak resident memory so far
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def stream(total: int, chunk: int = MB):
    """`total` bytes of a JSON-looking body, made as they are sent (httpx sends it chunked: no length)."""
    yield b'{"server_id": "s", "spark_app_id": "a", "stages": ["'
    sent = 0
    while sent < total:
        yield b"x" * chunk
        sent += chunk
    yield b'"]}'


@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": f"Bearer {TOKEN}"}, 413)])
def test_a_300_mb_body_is_refused_without_the_router_holding_it(guarded, headers, status):
    """The issue's case: 300 MB without a token was read whole (RSS +590 MB, kept). Chunked, so that no
    Content-Length gives it away: the router counts what it reads and stops at the limit."""
    pid = guarded.process.pid
    assert httpx.get(f"{guarded.url}/healthz").status_code == 200
    before = peak_rss_mb(pid)
    with httpx.Client(timeout=120) as client:
        try:
            response = client.post(f"{guarded.url}/api/v1/ingest/stages", content=stream(300 * MB),
                                   headers={"Content-Type": "application/json", **headers})
        except httpx.WriteError:  # the router may close the connection while the rest is still being sent
            response = None
    if response is not None:
        assert response.status_code == status, response.text[:200]
        assert len(response.content) < 500
    assert peak_rss_mb(pid) - before < 60, f"peak RSS grew from {before:.0f} MB to {peak_rss_mb(pid):.0f} MB"
    assert httpx.get(f"{guarded.url}/healthz").status_code == 200


def test_a_batch_of_10000_stage_records_fits_the_default_limit(tmp_path):
    """The default limit (16 MiB) takes the largest batch the protocol allows, with records as the listener
    writes them (every metric, ids of usual lengths)."""
    settings = RouterSettings(database_url=f"sqlite:///{tmp_path / 'router.db'}", state_dir=tmp_path,
                              ingest_token=SecretStr(TOKEN))
    records = [stage(i, app_id="team-analytics.etl.orders_daily", run_id="run-20261202-0123456789ab",
                     connect_session_id="6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b",
                     connect_operation_id="7a8b9c0d-1e2f-3a4b-5c6d-7e8f9a0b1c2d",
                     connect_user_id="router:team-analytics.etl.orders_daily:run-20261202-0123456789ab",
                     name="collect at /opt/apps/team-analytics/etl/orders_daily.py:123",
                     **{metric: 1_234_567_890 if metric.startswith("num_") else 123_456_789_012
                        for metric in METRICS}) for i in range(10_000)]
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            response = client.post("/api/v1/ingest/stages", json=batch(*records),
                                   headers={"Authorization": f"Bearer {TOKEN}"})
            assert len(response.request.content) > 9 * MB
            assert response.status_code == 200, response.text[:300]
            assert response.json()["accepted"] == 10_000
    finally:
        app.state.engine.dispose()


def test_the_limit_is_a_setting(tmp_path):
    settings = RouterSettings(database_url=f"sqlite:///{tmp_path / 'router.db'}", state_dir=tmp_path,
                              max_body_bytes=1000)
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            small = client.post("/api/v1/ingest/stages", json=batch(stage(1)))
            assert small.status_code == 200
            large = client.post("/api/v1/ingest/stages", json=batch(*[stage(i) for i in range(20)]))
            assert large.status_code == 413
            assert large.json() == {"detail": "request body larger than 1,000 bytes "
                                              "(SPARK_ROUTER_MAX_BODY_BYTES)"}
            chunked = client.post("/api/v1/decisions", content=iter([b'{"app_id": "', b"x" * 2000, b'"}']),
                                  headers={"Content-Type": "application/json"})
            assert chunked.status_code == 413
    finally:
        app.state.engine.dispose()


def test_the_guard_finds_the_endpoint_behind_a_root_path(tmp_path):
    """Behind a proxy that serves the router under a prefix (uvicorn --root-path), the token is still asked
    for before the body is read."""
    settings = RouterSettings(database_url=f"sqlite:///{tmp_path / 'router.db'}", state_dir=tmp_path,
                              ingest_token=SecretStr(TOKEN), max_body_bytes=1000)
    app = create_app(settings)
    try:
        with TestClient(app, root_path="/router") as client:
            chunked = client.post("/router/api/v1/ingest/stages", content=iter([b"x" * 5000]))
            assert chunked.status_code == 401  # not 413: the token is checked first
            answer = client.post("/router/api/v1/ingest/stages", json=batch(stage(1)),
                                 headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 200, answer.text
    finally:
        app.state.engine.dispose()
