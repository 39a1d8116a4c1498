"""A run's lifecycle through the real API, on SQLite and PostgreSQL: fallback by outcome (a pending Connect
failure settled by its standalone rerun), cancelled runs, dry-run decisions, decided runs that never start."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.app import create_app
from service.db.models import App, Run, utcnow

SERVER = "connect-local"  # the default SPARK_ROUTER_CONNECT_SERVER_ID


@pytest.fixture
def router(client):
    beat = {"server_id": SERVER, "spark_app_id": "local-1", "kind": "connect"}
    assert client.post("/api/v1/ingest/heartbeat", json=beat).status_code == 200
    return client


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def decide(client, app_id: str, **body) -> dict:
    return ok(client.post("/api/v1/decisions", json={"app_id": app_id, **body}))


def event(client, run_id: str, name: str, **body) -> dict:
    return ok(client.post(f"/api/v1/runs/{run_id}/events", json={"event": name, **body}))


def run(client, run_id: str) -> dict:
    return ok(client.get(f"/api/v1/runs/{run_id}"))


def streak(client, app_id: str) -> int:
    with client.app.state.sessions() as session:
        return session.get(App, app_id).connect_failure_streak


def connect_run_rerun(client, app_id: str, rerun_ends: str) -> tuple[str, str]:
    """What the launcher does for an idempotent app whose Connect run fails: report it failed "pending", ask
    for the fallback, run it, report its end (succeeded, failed or cancelled)."""
    decision = decide(client, app_id, mode="connect")
    event(client, decision["run_id"], "started")
    event(client, decision["run_id"], "failed", failure_kind="pending",
          message="PySparkRuntimeError: [MASTER_URL_NOT_SET] A master URL must be set", exit_code=1)
    rerun = ok(client.post(f"/api/v1/runs/{decision['run_id']}/fallback",
                           json={"reason": "MASTER_URL_NOT_SET"}))
    event(client, rerun["run_id"], "started")
    if rerun_ends == "failed":
        event(client, rerun["run_id"], "failed", failure_kind="app", message="ValueError: bad input",
              exit_code=1)
    else:
        event(client, rerun["run_id"], rerun_ends)
    return decision["run_id"], rerun["run_id"]


def test_a_rerun_that_succeeds_makes_it_a_connect_failure_that_counts(router):
    failed_id, rerun_id = connect_run_rerun(router, "etl.master", "succeeded")
    failed = run(router, failed_id)
    assert (failed["status"], failed["failure_kind"]) == ("failed", "connect")
    # What Connect said is kept, for the dashboard and the compatibility check.
    assert "MASTER_URL_NOT_SET" in failed["failure_message"] and failed["fell_back_to"] == rerun_id
    assert run(router, rerun_id)["status"] == "succeeded"
    assert streak(router, "etl.master") == 1
    # Reporting the rerun's end again changes nothing, and does not count the failure twice.
    event(router, rerun_id, "succeeded")
    assert streak(router, "etl.master") == 1


def test_a_rerun_that_fails_too_makes_it_the_apps_failure(router):
    failed_id, rerun_id = connect_run_rerun(router, "etl.bug", "failed")
    assert run(router, failed_id)["failure_kind"] == "app"
    assert (run(router, rerun_id)["status"], run(router, rerun_id)["failure_kind"]) == ("failed", "app")
    assert streak(router, "etl.bug") == 0


def test_a_cancelled_rerun_leaves_the_connect_failure_unknown(router):
    failed_id, rerun_id = connect_run_rerun(router, "etl.stopped", "cancelled")
    assert run(router, failed_id)["failure_kind"] == "unknown"
    assert run(router, rerun_id)["status"] == "cancelled"
    assert streak(router, "etl.stopped") == 0


def test_a_pending_failure_counts_nothing_until_settled(router):
    decision = decide(router, "etl.wait", mode="connect")
    event(router, decision["run_id"], "failed", failure_kind="pending", message="x")
    assert streak(router, "etl.wait") == 0
    assert run(router, decision["run_id"])["failure_kind"] == "pending"
    # A launcher that classified the failure itself (connect) counts at once, and its rerun settles nothing.
    classified = decide(router, "etl.wait", mode="connect")
    event(router, classified["run_id"], "failed", failure_kind="connect", message="x")
    rerun = ok(router.post(f"/api/v1/runs/{classified['run_id']}/fallback", json={}))
    event(router, rerun["run_id"], "succeeded")
    assert streak(router, "etl.wait") == 1 and run(router, classified["run_id"])["failure_kind"] == "connect"


def test_only_a_connect_run_can_wait_for_a_rerun(router):
    standalone = decide(router, "etl.sa", mode="standalone")
    response = router.post(f"/api/v1/runs/{standalone['run_id']}/events",
                           json={"event": "failed", "failure_kind": "pending"})
    assert response.status_code == 409 and "only a Connect run" in response.json()["detail"]


def test_three_connect_failures_found_by_reruns_send_the_app_standalone(router):
    for _ in range(3):
        assert decide(router, "etl.hive", dry_run=True)["mode"] == "connect"
        connect_run_rerun(router, "etl.hive", "succeeded")
    decision = decide(router, "etl.hive")
    assert (decision["mode"], decision["rule"]) == ("standalone", "connect-failure-streak")


def test_cancelled_is_terminal_and_neither_failure(router):
    decision = decide(router, "etl.cancel", mode="connect")
    event(router, decision["run_id"], "started")
    cancelled = event(router, decision["run_id"], "cancelled", message="interrupted by KeyboardInterrupt",
                      exit_code=-15)
    assert cancelled["status"] == "cancelled" and cancelled["failure_kind"] is None
    assert cancelled["finished_at"]
    assert event(router, decision["run_id"], "cancelled")["status"] == "cancelled"  # again: harmless
    assert event(router, decision["run_id"], "started")["status"] == "cancelled"
    response = router.post(f"/api/v1/runs/{decision['run_id']}/events",
                           json={"event": "failed", "failure_kind": "app"})
    assert response.status_code == 409 and "already cancelled" in response.json()["detail"]
    assert streak(router, "etl.cancel") == 0
    summary = ok(router.get("/api/v1/dashboard/summary", params={"days": 1}))
    assert (summary["connect_failures"], summary["app_failures"], summary["cancelled"]) == (0, 0, 1)
    assert summary["in_flight"]["connect"] == 0
    [app] = [a for a in ok(router.get("/api/v1/dashboard/apps", params={"days": 1}))
             if a["app_id"] == "etl.cancel"]
    assert app["failed_runs"] == 0


def runs_in_db(client) -> int:
    with client.app.state.sessions() as session:
        return session.scalar(select(func.count()).select_from(Run))


def test_a_dry_run_decision_records_nothing(router):
    before = runs_in_db(router)
    preview = decide(router, "etl.preview", dry_run=True,
                     airflow={"dag_id": "d", "task_id": "t", "run_id": "r"})
    assert preview["dry_run"] is True and preview["run_id"] is None
    assert (preview["mode"], preview["rule"]) == ("connect", "no-history")
    assert preview["session_confs"] == {"spark.router.appId": "etl.preview",
                                        "spark.router.airflow.dagId": "d", "spark.router.airflow.taskId": "t",
                                        "spark.router.airflow.runId": "r"}
    assert runs_in_db(router) == before
    assert router.get("/api/v1/apps/etl.preview/runs").status_code == 404  # not even the app is recorded
    assert ok(router.get("/api/v1/dashboard/summary", params={"days": 1}))["in_flight"]["connect"] == 0
    recorded = decide(router, "etl.preview")
    assert recorded["dry_run"] is False and recorded["run_id"]
    assert runs_in_db(router) == before + 1


def age(client, run_id: str, seconds: float) -> None:
    with client.app.state.sessions() as session:
        session.execute(update(Run).where(Run.run_id == run_id)
                        .values(created_at=utcnow() - timedelta(seconds=seconds)))
        session.commit()


def one_core_of_history(client, app_id: str) -> None:
    """A successful run with a minute of task time: the app's runs are then predicted to take one core."""
    decision = decide(client, app_id)
    stage = {"app_id": app_id, "run_id": decision["run_id"], "stage_id": 1, "attempt": 0,
             "status": "succeeded", "num_tasks": 4, "executor_run_time_ms": 60_000, "connect_session_id": "s",
             "connect_operation_id": "o"}
    body = {"server_id": SERVER, "spark_app_id": f"local-{app_id}", "stages": [stage]}
    assert ok(client.post("/api/v1/ingest/stages", json=body))["accepted"] == 1
    event(client, decision["run_id"], "succeeded")


def test_decided_runs_that_never_start_stop_holding_capacity(settings, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("capacity:\n  cores: 2\n  default_run_cores: 1\n  decided_max_age_s: 60\n")
    settings.policy_file = policy
    with TestClient(create_app(settings)) as client:
        client.post("/api/v1/ingest/heartbeat",
                    json={"server_id": SERVER, "spark_app_id": "l", "kind": "connect"})
        for app_id in ("etl.a", "etl.b", "etl.c", "etl.d"):
            one_core_of_history(client, app_id)
        abandoned, running = decide(client, "etl.a"), decide(client, "etl.b")
        assert abandoned["mode"] == running["mode"] == "connect"
        event(client, running["run_id"], "started")
        # Two cores in flight: a third run does not fit. (A dry run says so, and takes nothing.)
        assert decide(client, "etl.c", dry_run=True)["rule"] == "over-capacity"
        assert decide(client, "etl.c", dry_run=True)["rule"] == "over-capacity"
        # Ten minutes on: the decided run that never started no longer counts; the running one still does.
        age(client, abandoned["run_id"], 600)
        age(client, running["run_id"], 600)
        summary = ok(client.get("/api/v1/dashboard/summary", params={"days": 1}))
        assert summary["in_flight"]["connect"] == 1
        activity = ok(client.get(f"/api/v1/admin/servers/{SERVER}/activity"))
        assert activity["in_flight_run_ids"] == [running["run_id"]]
        third = decide(client, "etl.c")
        assert third["mode"] == "connect", third
        # The third, just decided, counts: nothing else fits.
        assert decide(client, "etl.d", dry_run=True)["rule"] == "over-capacity"


def test_connect_servers_and_standalone_listeners_are_listed_apart(router):
    beat = {"server_id": "local-123", "spark_app_id": "local-123", "kind": "standalone"}
    assert router.post("/api/v1/ingest/heartbeat", json=beat).status_code == 200
    assert [s["server_id"] for s in ok(router.get("/api/v1/servers"))] == [SERVER]
    assert [s["server_id"]
            for s in ok(router.get("/api/v1/servers", params={"kind": "standalone"}))] == ["local-123"]
    assert router.get("/api/v1/servers", params={"kind": "cluster"}).status_code == 422
