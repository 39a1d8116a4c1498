"""Issue 20, finding 1: a stage's metrics are held to what a real stage can have (past it: quarantined), and
no sum over runs overflows. Before, two runs at executor_run_time_ms 2^63-1 made the dashboard's summary and
apps and the policy simulation answer 500 on SQLite (sum() past 2^63) until the runs aged out, and PostgreSQL
served
18446744073709551614. On SQLite and PostgreSQL, through the HTTP API."""

from __future__ import annotations

import pytest

from tests.service.ingest.test_ingest_api import batch, stage

INT64_MAX = 2**63 - 1
# The documented bounds (docs/ingest-protocol.md): tasks, times, bytes and records.
BOUNDS = {"num_tasks": 2**31 - 1, "num_failed_tasks": 2**31 - 1, "executor_run_time_ms": 10**15,
          "executor_cpu_time_ms": 10**15, "jvm_gc_time_ms": 10**15, "duration_ms": 10**15,
          "max_task_duration_ms": 10**15, "median_task_duration_ms": 10**15, "shuffle_read_bytes": 2**60,
          "shuffle_write_records": 2**60, "disk_spilled_bytes": 2**60, "peak_execution_memory_bytes": 2**60,
          "output_records": 2**60}


@pytest.mark.parametrize("metric, bound", BOUNDS.items())
def test_a_stage_metric_past_what_a_real_stage_can_have_is_quarantined(client, metric, bound):
    response = client.post("/api/v1/ingest/stages", json=batch(stage(1, **{metric: bound}),
                                                               stage(2, **{metric: bound + 1})))
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "unattributed": 0, "quarantined": 1}
    [kept] = client.get("/api/v1/quarantine").json()
    assert kept["reason"] == f"{metric}: Input should be less than or equal to {bound}"


def test_the_issues_stages_at_2_63_are_quarantined_now(client):
    response = client.post("/api/v1/ingest/stages", json=batch(
        stage(1, run_id="run-a", executor_run_time_ms=INT64_MAX),
        stage(2, run_id="run-b", executor_run_time_ms=5)))
    assert response.json() == {"accepted": 1, "duplicates": 0, "unattributed": 0, "quarantined": 1}
    assert [run["run_id"] for run in client.get("/api/v1/apps/etl.orders/runs").json()] == ["run-b"]


def test_runs_summed_to_the_largest_bigint_leave_every_aggregate_answering(client):
    """As an attacker can still do it within the bounds: each of two runs gets enough stages at the largest
    task time (10^15 ms) for its sum to stop at 2^63-1. Every endpoint that sums runs answers 200, its sums
    stopping at 2^63-1 on both databases."""
    stages_per_run = INT64_MAX // 10**15 + 1  # 9,224
    for number, run_id in enumerate(("run-a", "run-b")):
        records = [{"app_id": "etl.greedy", "run_id": run_id, "stage_id": number * 10_000 + i, "attempt": 0,
                    "status": "succeeded", "executor_run_time_ms": 10**15, "disk_spilled_bytes": 2**60,
                    "shuffle_write_bytes": 2**60} for i in range(stages_per_run)]
        response = client.post("/api/v1/ingest/stages", json=batch(*records))
        assert response.json()["accepted"] == stages_per_run, response.text[:300]
    runs = client.get("/api/v1/apps/etl.greedy/runs").json()
    assert [run["executor_run_time_ms"] for run in runs] == [INT64_MAX, INT64_MAX]

    summary = client.get("/api/v1/dashboard/summary", params={"days": 1})
    assert summary.status_code == 200, summary.text
    assert summary.json()["task_time_ms"] == {"standalone": INT64_MAX}

    apps = client.get("/api/v1/dashboard/apps", params={"days": 7})
    assert apps.status_code == 200, apps.text
    [greedy] = apps.json()
    assert (greedy["runs"], greedy["task_time_ms"], greedy["disk_spilled_bytes"],
            greedy["shuffle_write_bytes"]) == (
        2, INT64_MAX, INT64_MAX, INT64_MAX)

    simulated = client.post("/api/v1/policy/simulate",
                            json={"policy": {"new_app_mode": "standalone"}, "days": 30})
    assert simulated.status_code == 200, simulated.text
    [app] = simulated.json()["apps"]
    assert app["runs"] == 2 and app["task_hours"] == round(INT64_MAX / 3_600_000, 4)

    for path in ("/api/v1/dashboard/apps/etl.greedy", f"/api/v1/dashboard/runs/{runs[0]['run_id']}",
                 "/metrics", "/api/v1/apps"):
        assert client.get(path).status_code == 200, path
