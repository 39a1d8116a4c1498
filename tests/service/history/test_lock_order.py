"""One lock order everywhere, app before run (issue 13, item 3): a run's last stages and its "succeeded"
report arrive together at every run's end. Before, a report locked the run, then the app, while ingest locked
the app, then the runs: 169 of 400 such requests failed with `deadlock detected` on PostgreSQL. Here: two
uvicorn workers, concurrent ingest and reports for one app, 0 errors."""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support import RouterProcess, create_pg_database, drop_pg_database

RUNS = 80
RUNS_PER_BATCH = 5


@pytest.fixture
def two_workers(tmp_path):
    url = create_pg_database()
    router = RouterProcess(url, tmp_path / "state", workers=2).start()
    yield router
    router.stop()
    drop_pg_database(url)


@pytest.mark.postgres
def test_ingest_and_run_reports_for_one_app_never_deadlock(two_workers):
    router = two_workers
    stage_ids = itertools.count(1)
    with httpx.Client(base_url=router.url, timeout=60) as http:
        runs = [http.post("/api/v1/decisions", json={"app_id": "etl.orders"}).json()["run_id"]
                for _ in range(RUNS)]
        for run_id in runs:
            assert http.post(f"/api/v1/runs/{run_id}/events", json={"event": "started"}).status_code == 200

    def stages(first: int) -> dict:
        """The last stages of RUNS_PER_BATCH runs, as one listener batch (several runs end together)."""
        chosen = [runs[(first + i) % RUNS] for i in range(RUNS_PER_BATCH)]
        return {"server_id": "connect-local", "spark_app_id": "app-1", "stages": [
            {"app_id": "etl.orders", "run_id": run_id, "stage_id": next(stage_ids), "attempt": 0,
             "status": "succeeded", "num_tasks": 1, "executor_run_time_ms": 10,
             "connect_session_id": "s", "connect_operation_id": "op"} for run_id in chosen]}

    requests = [("POST", "/api/v1/ingest/stages", stages(i)) for i in range(RUNS) for _ in range(2)]
    requests += [("POST", f"/api/v1/runs/{run_id}/events", {"event": "succeeded", "exit_code": 0})
                 for run_id in runs]
    random.Random(7).shuffle(requests)

    with httpx.Client(base_url=router.url, timeout=60, limits=httpx.Limits(max_connections=16)) as http:
        def send(request):
            method, path, body = request
            try:
                response = http.request(method, path, json=body)
            except httpx.HTTPError as exc:
                return None, path, repr(exc)
            return response.status_code, path, response.text[:300]

        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(send, requests))
        errors = [answer for answer in answers if answer[0] != 200]
        assert len(answers) == 3 * RUNS and errors == [], \
            f"{len(errors)} of {len(answers)} failed: {errors[:3]}"

        finished = http.get("/api/v1/apps/etl.orders/runs", params={"limit": RUNS}).json()
    assert {run["status"] for run in finished} == {"succeeded"}
    assert sum(run["num_stages"] for run in finished) == 2 * RUNS * RUNS_PER_BATCH
    assert "deadlock" not in router.log_path.read_text()
    assert "Traceback" not in router.log_path.read_text()
