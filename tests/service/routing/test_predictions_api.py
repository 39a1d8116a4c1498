"""Predictions through the real API, on SQLite and PostgreSQL: stored with the decision, the actual figures
beside them once the run ends, and their accuracy per app and mode."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from service.db.models import Run, utcnow
from tests.service.routing.test_facts import ms, ok, standalone_run

SERVER = "connect-local"  # the default SPARK_ROUTER_CONNECT_SERVER_ID


def connect_beat(client, executors=1):
    ok(client.post("/api/v1/ingest/heartbeat", json={
        "server_id": SERVER, "spark_app_id": "app-connect", "kind": "connect", "executors": executors,
        "executor_cores": executors, "max_executors": 4}))


def run_it(client, decision: dict, wall_s: float, startup_s: float, task_ms: int, stage_id: int) -> dict:
    """Run a decided Connect run as the launcher and the server's listener report it: `wall_s` long, its first
    stage `startup_s` after its start, `task_ms` of task time."""
    run_id = decision["run_id"]
    ok(client.post(f"/api/v1/runs/{run_id}/events", json={"event": "started"}))
    started = utcnow() - timedelta(seconds=wall_s)
    with client.app.state.sessions() as session:
        session.execute(update(Run).where(Run.run_id == run_id).values(started_at=started))
        session.commit()
    stage = {"app_id": decision["app_id"], "run_id": run_id, "connect_operation_id": f"op{stage_id}",
             "stage_id": stage_id, "attempt": 0, "status": "succeeded",
             "submission_time_ms": ms(started + timedelta(seconds=startup_s)),
             "executor_run_time_ms": task_ms}
    ok(client.post("/api/v1/ingest/stages", json={"server_id": SERVER, "spark_app_id": "app-connect",
                                                   "stages": [stage]}))
    ok(client.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded"}))
    return ok(client.get(f"/api/v1/runs/{run_id}"))


def decide(client, app_id="etl.p", **body) -> dict:
    return ok(client.post("/api/v1/decisions", json={"app_id": app_id, **body}))


def test_a_decision_carries_both_predictions_and_the_run_its_actual_figures(client):
    standalone_run(client, "etl.other", "app-20261204-0100", startup_s=20, life_s=40, cores=2)
    connect_beat(client)
    first = decide(client)
    assert first["mode"] == "connect" and first["rule"] == "no-history"
    assert first["predictions"]["connect"] is None and "No successful run yet" in first["predictions"]["note"]
    run_it(client, first, wall_s=10, startup_s=1, task_ms=8000, stage_id=1)

    second = decide(client)
    connect, standalone = second["predictions"]["connect"], second["predictions"]["standalone"]
    assert connect["wall_s"] == pytest.approx(10, abs=0.5) and connect["core_s"] == 8.0
    assert connect["server_id"] == SERVER and connect["basis"] == "1 Connect run"
    assert not connect["cross_mode"]
    # From the Connect run: its 8 s of task time on the 2 cores standalone runs held, after the 20 s start-up.
    assert standalone["cross_mode"] and standalone["startup_s"] == pytest.approx(20, abs=0.2)
    assert standalone["wall_s"] == pytest.approx(24, abs=0.5) and standalone["core_s"] == pytest.approx(48,
                                                                                                        abs=1)
    assert second["rule"] == "cost-aware" and second["mode"] == "connect"
    assert "(incl. 20 s start-up)" in second["reasons"][0]["message"]
    assert second["actual"] is None  # not run yet

    detail = run_it(client, second, wall_s=12, startup_s=1, task_ms=9000, stage_id=2)
    actual = detail["decision"]["actual"]
    assert actual["status"] == "succeeded" and actual["mode"] == "connect"
    assert actual["wall_s"] == pytest.approx(12, abs=0.5) and actual["core_s"] == 9.0
    assert actual["wall_error_pct"] == pytest.approx(100 * (10 - 12) / 12, abs=5)
    assert actual["core_s_error_pct"] == pytest.approx(100 * (8 - 9) / 9, abs=0.2)
    assert detail["decision"]["predictions"] == second["predictions"]

    accuracy = ok(client.get("/api/v1/predictions/accuracy"))
    [app] = [row for row in accuracy["apps"] if row["app_id"] == "etl.p"]
    assert app["mode"] == "connect" and app["runs"] == 1  # the first run had no prediction
    assert app["wall_median_abs_error_pct"] == pytest.approx(abs(actual["wall_error_pct"]), abs=0.1)
    assert app["core_s_median_abs_error_pct"] == pytest.approx(11.1, abs=0.1)
    assert [row["mode"] for row in accuracy["overall"]] == ["connect"]
    assert ok(client.get("/api/v1/predictions/accuracy", params={"app_id": "etl.none"}))["apps"] == []


def test_a_dry_run_shows_predictions_and_records_nothing(client):
    connect_beat(client)
    run_it(client, decide(client), wall_s=10, startup_s=1, task_ms=8000, stage_id=1)
    preview = decide(client, dry_run=True)
    assert preview["dry_run"] and preview["predictions"]["connect"]["core_s"] == 8.0
    assert preview["actual"] is None
    assert "start-up" in preview["predictions"]["note"]  # no standalone run has measured it


@pytest.mark.parametrize("params", [{"days": 0}, {"days": 10**9}, {"app_id": "a\x00b"}, {"app_id": ""}])
def test_accuracy_refuses_bad_input_with_422(client, params):
    assert client.get("/api/v1/predictions/accuracy", params=params).status_code == 422


def test_simulate_replays_the_kept_runs_under_the_candidate(client):
    standalone_run(client, "etl.other", "app-20261204-0200", startup_s=20, life_s=40, cores=2)
    connect_beat(client)
    for stage_id, wall_s in ((1, 10), (2, 12), (3, 14)):
        run_it(client, decide(client), wall_s=wall_s, startup_s=1, task_ms=8000, stage_id=stage_id)
    result = ok(client.post("/api/v1/policy/simulate",
                            json={"policy": {"objective": "makespan"}, "days": 30}))
    replay = result["replay"]
    [app] = [row for row in replay["apps"] if row["app_id"] == "etl.p"]
    # Runs 2 and 3 predicted from the runs before them: 10 s against 12 s, then the fastest (10 s) against 14.
    assert app["mode"] == "connect" and app["runs"] == 2
    assert app["wall_median_abs_error_pct"] == pytest.approx((100 * 2 / 12 + 100 * 4 / 14) / 2, abs=1)
    totals = replay["totals"]
    # etl.other ran standalone (forced); with no run before it, the candidate sends a new app to Connect.
    assert totals["runs"] == 4 and totals["runs_in_another_mode"] == 1
    assert totals["predicted_runs"] == 2 and totals["actual_wall_s"] == pytest.approx(26, abs=1)
    assert totals["candidate_wall_s"] == pytest.approx(21, abs=1)
