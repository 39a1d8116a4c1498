"""Issue 20, finding 4: a run belongs to one app. A stage record naming app B with a run of app A was added to
A's run (and could deadlock against A's reports); now it is quarantined with that reason, never added to A's
run, and app B is not created from it. On SQLite and PostgreSQL through the HTTP API, and against concurrent
batches on PostgreSQL with two uvicorn workers."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text

from tests.service.ingest.test_ingest_api import batch, stage
from tests.support import RouterProcess, create_pg_database, drop_pg_database


def stored(client, sql: str, **params) -> list[tuple]:
    with client.app.state.sessions() as session:
        return [tuple(row) for row in session.execute(text(sql), params)]


def test_a_record_naming_another_apps_decided_run_is_quarantined(client):
    run_a = client.post("/api/v1/decisions", json={"app_id": "team-a.etl"}).json()["run_id"]
    mine = client.post("/api/v1/ingest/stages", json=batch(stage(1, app_id="team-a.etl", run_id=run_a)))
    assert mine.json()["accepted"] == 1

    forged = batch(stage(2, app_id="team-b.etl", run_id=run_a, executor_run_time_ms=999_999),
                   stage(3, app_id="team-b.etl", run_id="run-b"))
    response = client.post("/api/v1/ingest/stages", json=forged)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "unattributed": 0, "quarantined": 1}

    run = client.get(f"/api/v1/runs/{run_a}").json()
    assert (run["app_id"], run["num_stages"], run["executor_run_time_ms"]) == ("team-a.etl", 1, 100)
    assert stored(client, "SELECT stage_id, app_id FROM stage_metrics WHERE run_id = :r", r=run_a) == [
        (1, "team-a.etl")]
    [kept] = client.get("/api/v1/quarantine").json()
    assert kept["reason"] == (f"run_id: run '{run_a}' belongs to app 'team-a.etl', not 'team-b.etl' "
                              f"(a run belongs to one app)")
    assert (kept["app_id"], kept["run_id"]) == ("team-b.etl", run_a)
    # B's own run is B's.
    assert [r["run_id"] for r in client.get("/api/v1/apps/team-b.etl/runs").json()] == ["run-b"]


def test_a_run_first_seen_from_stages_belongs_to_the_first_app_that_named_it(client):
    """An observed run (no decision): the first record naming it, in the first batch, makes it that app's."""
    first = batch(stage(1, app_id="team-a.etl", run_id="shared"),
                  stage(2, app_id="team-b.etl", run_id="shared"),
                  stage(3, app_id="team-a.etl", run_id="shared"))
    assert client.post("/api/v1/ingest/stages", json=first).json() == {
        "accepted": 2, "duplicates": 0, "unattributed": 0, "quarantined": 1}
    later = batch(stage(4, app_id="team-b.etl", run_id="shared"), spark_app_id="local-2")
    assert client.post("/api/v1/ingest/stages", json=later).json()["quarantined"] == 1
    [run] = client.get("/api/v1/apps/team-a.etl/runs").json()
    assert (run["run_id"], run["num_stages"]) == ("shared", 2)
    assert client.get("/api/v1/apps/team-b.etl/runs").status_code == 404  # never created from a forged record
    assert sorted(kept["app_id"] for kept in client.get("/api/v1/quarantine").json()) == ["team-b.etl"] * 2


def test_a_session_of_another_app_cannot_join_a_run_through_its_auto_run(client):
    """Apps that set no run id get one run per Connect session (auto-<session>): the same rule holds."""
    ours = stage(1, app_id="team-a.etl", run_id=None, connect_session_id="s-1", connect_operation_id="op")
    theirs = stage(2, app_id="team-b.etl", run_id=None, connect_session_id="s-1", connect_operation_id="op")
    assert client.post("/api/v1/ingest/stages", json=batch(ours)).json()["accepted"] == 1
    assert client.post("/api/v1/ingest/stages", json=batch(theirs)).json()["quarantined"] == 1
    [run] = client.get("/api/v1/apps/team-a.etl/runs").json()
    assert (run["run_id"], run["num_stages"]) == ("auto-s-1", 1)


@pytest.fixture
def two_workers(tmp_path):
    url = create_pg_database()
    router = RouterProcess(url, tmp_path / "state", workers=2).start()
    yield router
    router.stop()
    drop_pg_database(url)


@pytest.mark.postgres
def test_two_apps_racing_for_a_new_run_never_share_it(two_workers):
    """Concurrent batches of two apps naming the same new run: both see no run, one creates it. The other is
    answered 503 (a lost race, nothing stored) and, sent again as the listener does, quarantined. No 500, and
    every stored stage of a run is of the run's app."""
    router, runs = two_workers, 60
    requests = []
    for number in range(runs):
        for app in ("team-a.etl", "team-b.etl"):
            offset = 0 if app == "team-a.etl" else 100_000
            requests.append(batch(*[stage(offset + number * 10 + i, app_id=app, run_id=f"race-{number}")
                                    for i in range(3)], server_id="connect-shared", spark_app_id="app-1"))
    random.Random(20).shuffle(requests)

    def send_until_stored(body) -> list[int]:
        statuses = []
        with httpx.Client(base_url=router.url, timeout=60) as http:
            while True:
                response = http.post("/api/v1/ingest/stages", json=body)
                statuses.append(response.status_code)
                if response.status_code != 503:
                    return statuses
                assert response.headers.get("Retry-After"), response.headers
                time.sleep(0.05)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send_until_stored, requests))
    finals = [statuses[-1] for statuses in answers]
    assert finals == [200] * len(requests), [s for s in answers if s[-1] != 200][:5]

    with httpx.Client(base_url=router.url, timeout=30) as http:
        owned = {run["run_id"]: run for app in ("team-a.etl", "team-b.etl")
                 for run in http.get(f"/api/v1/apps/{app}/runs", params={"limit": 1000}).json()}
        quarantined = http.get("/api/v1/quarantine", params={"limit": 1000}).json()
    assert sorted(owned) == sorted(f"race-{number}" for number in range(runs))
    assert {run["num_stages"] for run in owned.values()} == {3}  # only the owner's three stages
    assert len(quarantined) == 3 * runs  # the loser's three records of each run
    for kept in quarantined:
        assert owned[kept["run_id"]]["app_id"] != kept["app_id"]
    log = router.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
