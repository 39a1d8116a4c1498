"""Sized standalone decisions and out-of-memory reruns through the API, over real stored history (ingested the way
the listener sends it), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.routing.test_decisions_api import complete_run, decide, heartbeat

GiB, MiB = 1 << 30, 1 << 20


@pytest.fixture
def router(settings, tmp_path):
    """A router whose policy's ceilings fit a small cluster: 2 GiB executors, 4 of them."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("sizing:\n  max_executor_memory: 2g\n  max_executors: 4\n")
    settings.policy_file = policy
    app = create_app(settings)
    with TestClient(app) as client:
        heartbeat(client)
        yield client
    app.state.engine.dispose()


def oom_rerun(client, run_id: str, **body):
    return client.post(f"/api/v1/runs/{run_id}/oom-rerun", json=body)


def fail(client, decision: dict, message="java.lang.OutOfMemoryError: Java heap space") -> None:
    complete_run(client, decision, ok=False, failure_kind="app")
    assert client.get(f"/api/v1/runs/{decision['run_id']}").json()["status"] == "failed"


def test_a_connect_decision_has_no_sizing(router):
    assert decide(router, "etl.light")["sizing"] is None


def test_a_standalone_run_with_no_history_gets_what_it_asked_with_the_reason(router):
    decision = decide(router, "etl.new", mode="standalone", resources={"executor_memory": "512m",
                                                                       "num_executors": 2})
    assert decision["sizing"] == {"executor_memory": "512m", "num_executors": 2, "executor_cores": None,
                                  "driver_memory": None,
                                  "reason": "No successful run to size by; the run gets what it asked for."}
    run = router.get(f"/api/v1/runs/{decision['run_id']}").json()
    assert (run["executor_memory"], run["num_executors"]) == (512 * MiB, 2)
    assert run["decision"]["sizing"] == decision["sizing"]  # stored with the decision, read back the same


def test_a_history_of_spill_sizes_a_run_up(router):
    app_id, asked = "etl.spills", {"executor_memory": "1g", "executor_cores": 1, "num_executors": 1}
    first = decide(router, app_id, mode="standalone", resources=asked)
    assert first["sizing"]["executor_memory"] == "1024m"  # no history: as asked
    complete_run(router, first, disk_spilled_bytes=3 * GiB, memory_spilled_bytes=6 * GiB,
                 peak_execution_memory_bytes=400 * MiB)
    second = decide(router, app_id, mode="standalone", resources=asked)
    # Twice the memory a task had: 300 MiB + 2 x (1024 - 300) MiB = 1748 MiB, rounded up to 64 MiB.
    sized = second["sizing"]
    assert sized["executor_memory"] == "1792m" and sized["executor_cores"] == 1 and sized["num_executors"] == 1
    assert "spilled up to 3.0 GiB to disk with 1.0 GiB executors" in sized["reason"]
    assert router.get(f"/api/v1/runs/{second['run_id']}").json()["executor_memory"] == 1792 * MiB
    # It spilled again with 1792m: more still, up to the ceiling.
    complete_run(router, second, disk_spilled_bytes=GiB, peak_execution_memory_bytes=400 * MiB)
    assert decide(router, app_id, mode="standalone", resources=asked)["sizing"]["executor_memory"] == "2048m"


def test_the_ceiling_holds_and_an_ask_over_it_is_kept(router):
    app_id = "etl.hungry"
    complete_run(router, decide(router, app_id, mode="standalone"), peak_execution_memory_bytes=5 * GiB,
                 executor_run_time_ms=3_600_000)
    sized = decide(router, app_id, mode="standalone")["sizing"]
    assert sized["executor_memory"] == "2048m" and sized["num_executors"] == 4
    assert "sizing.max_executor_memory" in sized["reason"] and "sizing.max_executors" in sized["reason"]
    asked = decide(router, app_id, mode="standalone", resources={"executor_memory": "3g", "num_executors": 6})
    assert asked["sizing"]["executor_memory"] == "3072m" and asked["sizing"]["num_executors"] == 6


def test_a_dry_run_shows_the_sizing_and_records_nothing(router):
    app_id = "etl.preview"
    complete_run(router, decide(router, app_id, mode="standalone"), peak_execution_memory_bytes=GiB)
    before = len(router.get(f"/api/v1/apps/{app_id}/runs").json())
    preview = decide(router, app_id, mode="standalone", dry_run=True)
    assert preview["dry_run"] and preview["sizing"]["executor_memory"] == "2048m"
    assert len(router.get(f"/api/v1/apps/{app_id}/runs").json()) == before


def test_a_connect_fallback_is_sized_from_the_history_and_keeps_the_ask(router):
    app_id = "etl.fb.sized"
    complete_run(router, decide(router, app_id, mode="standalone"), peak_execution_memory_bytes=600 * MiB)
    failed = decide(router, app_id, mode="connect", resources={"num_executors": 3})
    complete_run(router, failed, ok=False, failure_kind="pending")
    rerun = router.post(f"/api/v1/runs/{failed['run_id']}/fallback", json={}).json()
    assert rerun["sizing"]["executor_memory"] == "1600m" and rerun["sizing"]["num_executors"] == 3


def test_an_out_of_memory_run_is_rerun_once_with_twice_the_memory(router):
    app_id = "etl.oom"
    decision = decide(router, app_id, mode="standalone", resources={"executor_memory": "512m", "num_executors": 2})
    fail(router, decision)
    response = oom_rerun(router, decision["run_id"], reason="java.lang.OutOfMemoryError: Java heap space")
    assert response.status_code == 200, response.text
    rerun = response.json()
    assert rerun["mode"] == "standalone" and rerun["rule"] == "oom-rerun" and rerun["run_id"] != decision["run_id"]
    assert rerun["sizing"]["executor_memory"] == "1024m" and rerun["sizing"]["num_executors"] == 2
    assert rerun["sizing"]["reason"] == ("The run ran out of executor memory with 512.0 MiB; rerun once with "
                                         "1.0 GiB (2x).")
    assert "OutOfMemoryError" in rerun["reasons"][0]["message"]
    assert rerun["session_confs"]["spark.router.runId"] == rerun["run_id"]
    # Asked again: the same rerun, not a second.
    assert oom_rerun(router, decision["run_id"]).json()["run_id"] == rerun["run_id"]
    # History links both ways.
    failed = router.get(f"/api/v1/runs/{decision['run_id']}").json()
    assert failed["oom_rerun_to"] == rerun["run_id"] and failed["status"] == "failed"
    assert router.get(f"/api/v1/runs/{rerun['run_id']}").json()["oom_rerun_of"] == decision["run_id"]
    # The rerun is not rerun again.
    rerun_run = {"run_id": rerun["run_id"], "app_id": app_id, "mode": "standalone"}
    fail(router, rerun_run)
    again = oom_rerun(router, rerun["run_id"])
    assert again.status_code == 409 and "one rerun only" in again.json()["detail"]


def test_a_driver_out_of_memory_grows_the_driver(router):
    decision = decide(router, "etl.oom.driver", mode="standalone", resources={"driver_memory": "1g"})
    fail(router, decision)
    sized = oom_rerun(router, decision["run_id"], where="driver").json()["sizing"]
    assert sized["driver_memory"] == "2048m" and sized["executor_memory"] is None


def test_no_rerun_at_the_ceiling(router):
    decision = decide(router, "etl.oom.max", mode="standalone", resources={"executor_memory": "2g"})
    fail(router, decision)
    response = oom_rerun(router, decision["run_id"])
    assert response.status_code == 409
    assert "already at the ceiling (sizing.max_executor_memory, 2.0 GiB)" in response.json()["detail"]


def test_only_failed_standalone_runs_are_rerun(router):
    connect = decide(router, "etl.oom.c", mode="connect")
    complete_run(router, connect, ok=False, failure_kind="app")
    response = oom_rerun(router, connect["run_id"])
    assert response.status_code == 409 and "only a standalone run" in response.json()["detail"]
    running = decide(router, "etl.oom.r", mode="standalone")
    response = oom_rerun(router, running["run_id"])
    assert response.status_code == 409 and "report it failed" in response.json()["detail"]
    assert oom_rerun(router, "run-nope").status_code == 404
    assert oom_rerun(router, running["run_id"], where="elsewhere").status_code == 422
