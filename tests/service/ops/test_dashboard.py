"""The ops dashboard: its JSON on SQLite and PostgreSQL over history made through the real API, and its pages
in headless Chromium against a real `spark-router serve` process (screenshots go to docs/screenshots/)."""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from service.app import create_app
from service.db.models import utcnow
from tests.support import REPO, RouterProcess

SERVER = "connect-local"  # the default SPARK_ROUTER_CONNECT_SERVER_ID: decisions look at its heartbeats
# The committed screenshots in docs/ are refreshed with SPARK_ROUTER_UPDATE_SCREENSHOTS=1; a plain test run
# writes its own into a temporary folder, so that running the suite leaves the work tree clean.
UPDATE_DOCS = os.environ.get("SPARK_ROUTER_UPDATE_SCREENSHOTS") == "1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MB, GB = 1 << 20, 1 << 30

_stage_ids = itertools.count(1)


# ------------------------------------------------------------------------- history, through the real API

def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def heartbeat(client, server_id: str = SERVER, **fields) -> None:
    beat = {"server_id": server_id, "spark_app_id": "local-1", "kind": "connect", "spark_version": "4.3.0",
            "start_time_ms": int((time.time() - 2 * 3600) * 1000), "ui_url": "http://127.0.0.1:4040",
            "active_sessions": 1, "queue_size": 2, "spool_files": 3, "spool_bytes": 4096,
            "dropped_records": 1, **fields}
    ok(client.post("/api/v1/ingest/heartbeat", json=beat))


def decide(client, app_id: str) -> dict:
    return ok(client.post("/api/v1/decisions", json={"app_id": app_id}))


def stages(client, decision: dict, **metrics) -> None:
    """One stage of the run, as the listener reports it (Connect ids when the run went to Connect)."""
    now_ms = int(time.time() * 1000)
    stage = {"app_id": decision["app_id"], "run_id": decision["run_id"], "stage_id": next(_stage_ids),
             "attempt": 0, "status": "succeeded", "name": "collect at app.py:12", "num_tasks": 4,
             "submission_time_ms": now_ms - 1500, "completion_time_ms": now_ms, "duration_ms": 1500,
             **metrics}
    if decision["mode"] == "connect":
        stage.update(connect_session_id="session-1", connect_operation_id="op-1")
    ok(client.post("/api/v1/ingest/stages",
                   json={"server_id": SERVER, "spark_app_id": "local-1", "stages": [stage]}))


def run(client, app_id: str, *, fail: str | None = None, **metrics) -> dict:
    """What the launcher and the listener do for one run: decide, start, stages, end."""
    decision = decide(client, app_id)
    ok(client.post(f"/api/v1/runs/{decision['run_id']}/events", json={"event": "started"}))
    stages(client, decision, **metrics)
    event = {"event": "failed", "failure_kind": fail, "message": "Connect server unreachable"} if fail else {
        "event": "succeeded", "exit_code": 0}
    ok(client.post(f"/api/v1/runs/{decision['run_id']}/events", json=event))
    return decision


def make_history(client) -> dict:
    """A light app on Connect, a heavy one the policy sends standalone, a flaky one that fell back, a
    restart. Returns what was made."""
    heartbeat(client)
    orders = [run(client, "etl.orders", executor_run_time_ms=60_000 * i, disk_spilled_bytes=MB * i,
                  memory_spilled_bytes=2 * MB * i, shuffle_write_bytes=10 * MB) for i in (1, 2, 3, 4)]
    # Its first run goes to Connect (no history yet); its 5 GiB of spill sends the next ones standalone.
    heavy = [run(client, "etl.heavy", executor_run_time_ms=500_000, disk_spilled_bytes=5 * GB)
             for _ in range(4)]
    failed = run(client, "etl.flaky", fail="connect", executor_run_time_ms=1_000)
    fallback = ok(client.post(f"/api/v1/runs/{failed['run_id']}/fallback", json={"reason": "server gone"}))
    ok(client.post(f"/api/v1/runs/{fallback['run_id']}/events", json={"event": "started"}))
    stages(client, fallback, executor_run_time_ms=2_000)
    ok(client.post(f"/api/v1/runs/{fallback['run_id']}/events", json={"event": "succeeded", "exit_code": 0}))
    now = utcnow()
    restart = {"server_id": SERVER, "backend": "local", "requested_at": now.isoformat(),
               "idle_at": now.isoformat(), "restarted_at": now.isoformat(), "ready_at": now.isoformat(),
               "finished_at": now.isoformat(), "outcome": "restarted", "waited_s": 12.5,
               "message": "restarted after 12 s of waiting for idle"}
    ok(client.post("/api/v1/admin/restarts", json=restart))
    heartbeat(client, executors=2, executor_cores=2, max_executors=4)
    return {"orders": orders, "heavy": heavy, "failed": failed, "fallback": fallback}


# ------------------------------------------------------------------------------------------ JSON, in-process

def test_dashboard_json_over_real_history(client):
    made = make_history(client)
    assert made["heavy"][-1]["mode"] == "standalone" and made["heavy"][-1]["rule"] == "history-over-threshold"

    [server] = ok(client.get("/api/v1/dashboard/servers"))
    assert server["server_id"] == SERVER and server["status"] == "up" and server["up"] is True
    assert server["heartbeat_age_s"] < 30 and server["spark_version"] == "4.3.0"
    assert 7000 < server["uptime_s"] < 7400
    assert server["heartbeat"]["spool_files"] == 3 and server["heartbeat"]["spool_bytes"] == 4096
    assert server["last_restart"]["outcome"] == "restarted" and server["last_restart"]["waited_s"] == 12.5

    summary = ok(client.get("/api/v1/dashboard/summary", params={"days": 1}))
    # 4 orders + 1 heavy + 1 flaky on Connect; 3 heavy standalone; 1 fallback.
    assert (summary["decisions"], summary["connect"], summary["standalone"], summary["fallbacks"]) == (10, 6,
                                                                                                       3, 1)
    assert summary["fallback_rate"] == round(1 / 6, 4) and summary["connect_failures"] == 1
    assert summary["in_flight"] == {"connect": 0, "standalone": 0}
    assert summary["task_time_ms"]["connect"] == 600_000 + 500_000 + 1_000
    assert summary["task_time_ms"]["standalone"] == 1_500_000 + 2_000

    for bucket, days in (("hour", 1), ("day", 3)):
        timeline = ok(client.get("/api/v1/dashboard/decisions", params={"days": days, "bucket": bucket}))
        assert len(timeline["series"]) >= days * (24 if bucket == "hour" else 1)
        totals = {key: sum(row[key] for row in timeline["series"])
                  for key in ("connect", "standalone", "fallback")}
        assert totals == {"connect": 6, "standalone": 3, "fallback": 1}, bucket

    apps = ok(client.get("/api/v1/dashboard/apps", params={"days": 7}))
    assert [app["app_id"] for app in apps] == ["etl.heavy", "etl.orders", "etl.flaky"]
    heavy, orders, flaky = apps
    assert heavy["task_time_ms"] == 2_000_000 and heavy["runs"] == 4
    assert (heavy["connect_runs"], heavy["standalone_runs"]) == (1, 3)
    assert heavy["last_mode"] == "standalone" and heavy["last_rule"] == "history-over-threshold"
    assert orders["task_time_ms"] == 600_000 and orders["disk_spilled_bytes"] == 10 * MB
    assert flaky["failed_runs"] == 1 and flaky["fallbacks"] == 1 and flaky["last_rule"] == "fallback"

    app = ok(client.get("/api/v1/dashboard/apps/etl.orders"))
    assert app["total_runs"] == 4 and app["policy"]["thresholds"]["disk_spilled_bytes"] == 2 * GB
    assert [r["run_id"] for r in app["runs"]] == [d["run_id"] for d in reversed(made["orders"])]
    newest = app["runs"][0]
    assert newest["executor_run_time_ms"] == 240_000 and newest["disk_spilled_bytes"] == 4 * MB
    assert newest["memory_spilled_bytes"] == 8 * MB and newest["status"] == "succeeded"
    assert newest["duration_ms"] is not None and newest["num_stages"] == 1
    assert newest["decision"]["rule"] == "within-limits"
    assert any("disk_spilled_bytes" in reason["message"] for reason in newest["decision"]["reasons"])

    detail = ok(client.get(f"/api/v1/dashboard/runs/{made['fallback']['run_id']}"))
    assert detail["fallback_of"] == made["failed"]["run_id"] and detail["mode"] == "standalone"
    assert detail["decision"]["rule"] == "fallback"
    assert "server gone" in detail["decision"]["reasons"][0]["message"]
    assert detail["decision"]["request"] == {"fallback_of": made["failed"]["run_id"]}
    assert [stage["executor_run_time_ms"] for stage in detail["stages"]] == [2_000]
    failed = ok(client.get(f"/api/v1/dashboard/runs/{made['failed']['run_id']}"))
    assert failed["failure_kind"] == "connect" and failed["fell_back_to"] == made["fallback"]["run_id"]

    recent = ok(client.get("/api/v1/dashboard/decisions/recent", params={"limit": 3}))
    assert recent[0]["run_id"] == made["fallback"]["run_id"] and recent[0]["rule"] == "fallback"
    assert recent[0]["status"] == "succeeded" and recent[0]["reason"].startswith("The Connect run")

    [restart] = ok(client.get("/api/v1/dashboard/restarts"))
    assert restart["outcome"] == "restarted" and restart["server_id"] == SERVER

    assert client.get("/api/v1/dashboard/apps/nope").status_code == 404
    assert client.get("/api/v1/dashboard/runs/nope").status_code == 404
    assert client.get("/api/v1/dashboard/decisions", params={"days": 60, "bucket": "hour"}).status_code == 422


def test_executors_over_time_per_connect_server(client):
    heartbeat(client, executors=0, executor_cores=0, max_executors=2)
    heartbeat(client, executors=2, executor_cores=2, max_executors=2)
    heartbeat(client, executors=1, executor_cores=1, max_executors=2)
    heartbeat(client, server_id="standalone-run-1", kind="standalone", executors=3, executor_cores=3)
    with client.app.state.sessions() as session:  # the first beat 10 minutes ago, the others now
        session.execute(text("UPDATE heartbeats SET received_at = :at WHERE id = (SELECT min(id) FROM "
                             "heartbeats)"),
                        {"at": utcnow() - timedelta(minutes=10)})
        session.commit()
    data = ok(client.get("/api/v1/dashboard/executors", params={"minutes": 60}))
    assert data["step_s"] == 15 and list(data["servers"]) == [SERVER]  # Connect servers only
    old, new = data["servers"][SERVER]
    assert (old["executors"], old["cores"], old["max_executors"]) == (0, 0, 2)
    assert (new["executors"], new["cores"], new["max_executors"]) == (2, 2, 2)  # the most in its step
    assert (datetime.fromisoformat(new["at"]) - datetime.fromisoformat(old["at"])).total_seconds() > 500
    [recent] = ok(client.get("/api/v1/dashboard/executors", params={"minutes": 5}))["servers"][SERVER]
    assert recent["executors"] == 2
    assert client.get("/api/v1/dashboard/executors", params={"minutes": 0}).status_code == 422


def test_each_connect_server_of_the_pool_with_its_load_and_decisions_by_server(client):
    heartbeat(client)
    heartbeat(client, server_id="connect-b", connect_url="sc://b:15002", executors=2, executor_cores=8)
    heartbeat(client, server_id="connect-old")  # reports no Connect URL: not in the pool
    first, second, third = (decide(client, app_id) for app_id in ("etl.a", "etl.b", "etl.c"))
    ok(client.post(f"/api/v1/runs/{first['run_id']}/events", json={"event": "started"}))
    servers = {s["server_id"]: s for s in ok(client.get("/api/v1/dashboard/servers"))}
    default, b, old = servers[SERVER], servers["connect-b"], servers["connect-old"]
    assert default["pool"]["default"] and not b["pool"]["default"] and old["pool"] is None
    assert [first["server_id"], second["server_id"], third["server_id"]] == [SERVER, "connect-b", SERVER]
    assert (default["pool"]["in_flight_runs"], default["pool"]["in_flight_cores"],
            default["pool"]["free_cores"]) == (
        2, 2.0, 6.0)
    assert (b["pool"]["capacity_cores"], b["pool"]["free_cores"],
            b["pool"]["connect_url"]) == (8.0, 7.0, "sc://b:15002")
    assert b["pool"]["available"] and "the 8 cores its executors hold" in b["pool"]["capacity_source"]
    ok(client.post(f"/api/v1/runs/{first['run_id']}/events", json={"event": "succeeded"}))
    ok(client.put("/api/v1/admin/apps/etl.s/pin", json={"mode": "standalone"}))
    decide(client, "etl.s")
    ok(client.put("/api/v1/admin/apps/etl.b/pin", json={"mode": "connect", "server_id": "connect-b"}))
    assert ok(client.get("/api/v1/dashboard/apps/etl.b"))["pinned_server_id"] == "connect-b"
    assert {a["app_id"]: a["pinned_server_id"]
            for a in ok(client.get("/api/v1/dashboard/apps"))}["etl.b"] == "connect-b"
    by_server = ok(client.get("/api/v1/dashboard/decisions/by-server", params={"days": 1}))
    assert by_server["servers"] == [{"server_id": "connect-b", "decisions": 1},
                                    {"server_id": SERVER, "decisions": 2}]
    assert (by_server["standalone"], by_server["fallback"]) == (1, 0)
    recent = ok(client.get("/api/v1/dashboard/decisions/recent", params={"limit": 4}))
    assert [d["server_id"] for d in recent] == [None, SERVER, "connect-b", SERVER]
    assert ok(client.get(f"/api/v1/dashboard/runs/{second['run_id']}"))["server_id"] == "connect-b"


def test_app_ids_with_slashes(client):
    heartbeat(client)
    decision = run(client, "team/etl.orders", executor_run_time_ms=5)
    app = ok(client.get("/api/v1/dashboard/apps/team/etl.orders"))
    assert app["app_id"] == "team/etl.orders" and app["runs"][0]["run_id"] == decision["run_id"]
    assert client.get("/apps/team/etl.orders").status_code == 200


def test_server_down_and_draining(client):
    heartbeat(client)
    ok(client.post(f"/api/v1/admin/servers/{SERVER}/drain"))
    [server] = ok(client.get("/api/v1/dashboard/servers"))
    assert server["status"] == "draining" and server["draining"] is True
    with client.app.state.sessions() as session:
        session.execute(text("UPDATE servers SET last_heartbeat_at = :at"),
                        {"at": utcnow().replace(year=2020)})
        session.commit()
    [server] = ok(client.get("/api/v1/dashboard/servers"))
    assert server["status"] == "down" and server["up"] is False and server["uptime_s"] is None
    assert server["heartbeat_age_s"] > 86400


def test_standalone_listeners_show_only_while_they_report(client):
    heartbeat(client)
    heartbeat(client, server_id="standalone-run-1", kind="standalone")
    assert [s["server_id"] for s in ok(client.get("/api/v1/dashboard/servers"))] == [SERVER,
                                                                                     "standalone-run-1"]
    with client.app.state.sessions() as session:
        session.execute(text("UPDATE servers SET last_heartbeat_at = :at"),
                        {"at": utcnow().replace(year=2020)})
        session.commit()
    assert [s["server_id"] for s in ok(client.get("/api/v1/dashboard/servers"))] == [SERVER]


def test_api_token_guards_the_data_not_the_pages(settings):
    app = create_app(settings.model_copy(update={"api_token": SecretStr("api-s3cret"),
                                                 "admin_token": SecretStr("admin-s3cret")}))
    try:
        with TestClient(app) as client:
            for path in ("/", "/apps/etl.orders", "/runs/run-1", "/static/app.js", "/static/style.css"):
                assert client.get(path).status_code == 200, path
            page = client.get("/apps/etl.orders").text
            assert 'src="/static/app.js?v=' in page and "__ROOT__" not in page
            for path in ("/api/v1/dashboard/servers", "/api/v1/dashboard/summary", "/api/v1/dashboard/apps"):
                assert client.get(path).status_code == 401
                assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
                for token in ("api-s3cret", "admin-s3cret"):
                    assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        app.state.engine.dispose()


# ------------------------------------------------------------------------------- the pages, in Chromium

def _browser_tools():
    """Playwright driving Debian's Chromium; a missing piece fails the test with the command that fixes it."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is missing for the dashboard browser test: run "
                    "`apt-get update && apt-get install -y chromium` (Debian's package, /usr/bin/chromium).")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The Python package playwright is missing: `pip install playwright` (it drives the "
                    "system Chromium; do not run `playwright install`).")
    return sync_playwright, CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@pytest.fixture
def served(tmp_path):
    """A real `spark-router serve` on its own SQLite database, with an API token, and history made through
    its HTTP API."""
    token = "dash-s3cret"
    process = RouterProcess(f"sqlite:///{tmp_path / 'router.db'}", tmp_path / "state",
                            env={"SPARK_ROUTER_API_TOKEN": token,
                                 "SPARK_ROUTER_CONNECT_SERVER_ID": SERVER}).start()
    try:
        with httpx.Client(base_url=process.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            made = make_history(http)
            yield process, http, token, made
    finally:
        process.stop()


def test_pages_in_headless_chromium(served, tmp_path):
    sync_playwright, chromium = _browser_tools()
    process, http, token, made = served
    SCREENSHOTS = REPO / "docs" / "screenshots" if UPDATE_DOCS else tmp_path
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors, refused = [], []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # What the page's Content-Security-Policy refuses, Chromium says on the console (issue 20).
            page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)

            # The page loads without a token, then asks for one; the token unlocks the data.
            answer = page.goto(f"{process.url}/")
            assert "script-src 'self'" in answer.headers["content-security-policy"]
            page.wait_for_selector("[data-testid=auth-needed]", timeout=15_000)
            assert page.is_visible("#token-panel")
            page.fill("#token-input", token)
            # fresh: up whatever the test's pace
            heartbeat(http, executors=2, executor_cores=2, max_executors=4)
            page.click("#token-form button[type=submit]")
            page.wait_for_selector("main[data-ready=true]", timeout=15_000)
            assert page.evaluate("localStorage.getItem('spark-router.api-token')") == token

            assert page.inner_text("[data-testid=server-status]") == "UP"
            server = page.inner_text("[data-testid=server]")
            assert SERVER in server and "Spark 4.3.0" in server and "ago" in server
            listener = page.inner_text("[data-testid=listener]")
            assert listener == "queue 2 · spool 3 files (4.00 KiB) · dropped 1"
            assert page.inner_text("[data-testid=executors]") == "2 executors · 2 cores · ceiling 4"
            assert page.locator("[data-testid=executors-chart] rect[data-executors='2']").count() >= 1
            assert page.locator("[data-testid=executors-line]").count() >= 1
            assert "restarted" in page.inner_text("[data-testid=last-restart]")
            summary = page.inner_text("[data-testid=summary]")
            assert "10" in summary and "fallback rate 17 %" in summary  # 1 of the 6 Connect runs fell back
            rows = page.locator("[data-testid=apps-row]")
            assert rows.count() == 3
            assert rows.nth(0).inner_text().startswith("etl.heavy")
            assert "33 min 20 s" in rows.nth(0).inner_text()  # 4 runs x 500 s of task time
            assert page.locator("[data-testid=decisions-chart] rect[data-key=connect]").count() >= 1
            assert page.locator("[data-testid=recent-row]").count() == 10
            # Each decision with what was predicted for its mode and, once run, what it did (issue 22).
            assert "Predicted → actual" in page.inner_text("[data-testid=recent]")
            assert "Prediction accuracy" in page.inner_text("main")
            assert "cores in flight" in page.inner_text("[data-testid=load]")
            assert page.inner_text("[data-testid=by-server-row]").split()[:2] == [SERVER, "6"]
            # Widths set from data still apply under the policy (through the CSSOM, not a style attribute).
            bar = page.locator("[data-testid=apps-row] .bar").first
            assert bar.evaluate("n => n.getBoundingClientRect().width") > 0
            page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

            page.click("[data-testid=apps-row] a:text-is('etl.orders')")
            page.wait_for_url("**/apps/etl.orders")
            page.wait_for_selector("main[data-ready=true]", timeout=15_000)
            assert page.inner_text("[data-testid=app-id]") == "etl.orders"
            runs = page.locator("[data-testid=runs-row]")
            assert runs.count() == 4
            newest = runs.nth(0).inner_text()
            assert made["orders"][-1]["run_id"] in newest
            assert "succeeded" in newest and "within-limits" in newest
            # task time and disk spill of the newest run
            assert "4 min 0 s" in newest and "4.00 MiB" in newest
            assert page.locator("tr.reason-row").count() == 4  # each run's decision reason under it
            assert page.locator("[data-testid=chart-task-time] circle").count() == 4
            assert page.locator("[data-testid=chart-spill] circle").count() == 8  # disk and memory per run
            assert page.locator("[data-testid=chart-spill] polyline").count() == 2
            page.screenshot(path=str(SCREENSHOTS / "app.png"), full_page=True)

            # The link the Airflow operator puts on its task: /runs/{run_id}.
            page.goto(f"{process.url}/runs/{made['fallback']['run_id']}")
            page.wait_for_selector("main[data-ready=true]", timeout=15_000)
            assert page.inner_text("[data-testid=run-id]") == made["fallback"]["run_id"]
            assert "fallback" in page.inner_text("[data-testid=decision]")
            assert "server gone" in page.inner_text("[data-testid=reasons]")
            assert page.locator("[data-testid=stages-row]").count() == 1
            assert errors == [] and refused == []
        finally:
            browser.close()
    for name in ("dashboard.png", "app.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000


def test_a_hostile_ui_url_is_never_a_link(tmp_path):
    """Issue 13, item 8: a heartbeat's ui_url was stored unchecked and rendered as a link, next to the API
    token kept in the browser's localStorage. Ingest now stores such a URL as null; a row an older router
    stored is still shown as text, not as a link. The page also shows the quarantined stage records."""
    sync_playwright, chromium = _browser_tools()
    token = "dash-s3cret"
    database = tmp_path / "router.db"
    process = RouterProcess(f"sqlite:///{database}", tmp_path / "state",
                            env={"SPARK_ROUTER_API_TOKEN": token,
                                 "SPARK_ROUTER_CONNECT_SERVER_ID": SERVER}).start()
    hostile = "javascript:alert(document.cookie)"
    try:
        with httpx.Client(base_url=process.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            heartbeat(http, ui_url=hostile, connect_url=hostile)
            assert ok(http.get("/api/v1/servers"))[0]["ui_url"] is None
            heartbeat(http, server_id="connect-other", ui_url="https://spark.example:4040")
            bad = {"app_id": "team-a.etl", "run_id": "r", "stage_id": 1, "attempt": 0, "status": "failed",
                   "failure_reason": "ValueError: bad\x00byte"}
            assert ok(http.post("/api/v1/ingest/stages", json={"server_id": SERVER, "spark_app_id": "local-1",
                                                               "stages": [bad]}))["quarantined"] == 1
        with sqlite3.connect(database) as connection:  # as a router before this check stored it
            connection.execute("UPDATE servers SET ui_url = ? WHERE server_id = ?", (hostile, SERVER))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                dialogs, errors = [], []
                page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"{process.url}/")
                page.wait_for_selector("[data-testid=auth-needed]", timeout=15_000)
                page.fill("#token-input", token)
                page.click("#token-form button[type=submit]")
                page.wait_for_selector("main[data-ready=true]", timeout=15_000)

                hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.getAttribute('href'))")
                assert hrefs and all(href.startswith(("/", "?", "#", "http://", "https://"))
                                     for href in hrefs), hrefs
                assert page.locator("a[href^='javascript' i]").count() == 0
                shown = page.locator("[data-testid=server]",
                                     has_text=SERVER).locator("[data-testid=spark-ui]")
                assert shown.evaluate("node => node.tagName") == "SPAN"
                assert hostile in shown.inner_text() and "no link" in shown.inner_text()
                shown.click()
                other = page.locator("[data-testid=server]",
                                     has_text="connect-other").locator("[data-testid=spark-ui]")
                assert other.get_attribute("href") == "https://spark.example:4040"

                assert page.inner_text("[data-testid=quarantine-total]").startswith("1 in the last 30 days")
                assert "must not contain NUL" in page.inner_text("[data-testid=quarantine-row]")
                assert dialogs == [] and errors == []
            finally:
                browser.close()
    finally:
        process.stop()
