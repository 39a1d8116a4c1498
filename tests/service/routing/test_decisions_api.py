"""Decisions over real stored history (ingested the way the listener sends it), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, update

from service.app import create_app
from service.db.models import App, Run, utcnow
from service.routing import decider
from service.routing.policy import parse_size
from service.schemas import DecisionRequest

SERVER = "connect-local"


def heartbeat(client, **fields):
    beat = {"server_id": SERVER, "spark_app_id": "local-1", "kind": "connect", **fields}
    assert client.post("/api/v1/ingest/heartbeat", json=beat).status_code == 200


@pytest.fixture
def router(client):
    heartbeat(client)
    return client


def decide(client, app_id="etl.orders", **body) -> dict:
    response = client.post("/api/v1/decisions", json={"app_id": app_id, **body})
    assert response.status_code == 200, response.text
    return response.json()


_stage_ids = iter(range(1, 10**9))


def complete_run(client, decision: dict, *, ok=True, failure_kind="app", **metrics) -> None:
    """What the launcher and the listener do for one run: start, stages, end."""
    run_id = decision["run_id"]
    client.post(f"/api/v1/runs/{run_id}/events", json={"event": "started"})
    stage = {"app_id": decision["app_id"], "run_id": run_id, "stage_id": next(_stage_ids), "attempt": 0,
             "status": "succeeded", "num_tasks": 4, "executor_run_time_ms": 1000, **metrics}
    if decision["mode"] == "connect":
        stage.update(connect_session_id="s", connect_operation_id="op")
    body = {"server_id": SERVER, "spark_app_id": "local-1", "stages": [stage]}
    assert client.post("/api/v1/ingest/stages", json=body).json()["accepted"] == 1
    event = {"event": "succeeded"} if ok else {"event": "failed", "failure_kind": failure_kind,
                                               "message": "x"}
    response = client.post(f"/api/v1/runs/{run_id}/events", json=event)
    assert response.status_code == 200, response.text


def test_cold_start_decision_is_explained_and_stored(router):
    decision = decide(router, resources={"driver_memory": "1g"},
                      airflow={"dag_id": "etl", "task_id": "orders", "run_id": "scheduled__2026-11-22",
                               "try_number": 1})
    assert decision["mode"] == "connect" and decision["rule"] == "no-history"
    assert decision["connect_url"] == "sc://127.0.0.1:15002"
    assert decision["session_confs"] == {
        "spark.router.appId": "etl.orders", "spark.router.runId": decision["run_id"],
        "spark.router.airflow.dagId": "etl", "spark.router.airflow.taskId": "orders",
        "spark.router.airflow.runId": "scheduled__2026-11-22", "spark.router.airflow.tryNumber": "1"}
    assert decision["policy_version"].startswith("builtin+")
    run = router.get(f"/api/v1/runs/{decision['run_id']}").json()
    assert run["status"] == "decided" and run["mode"] == "connect" and run["dag_id"] == "etl"
    assert run["decision"]["reasons"][0]["message"].startswith("No successful run yet")


def test_the_issue_example_request(router):
    decision = decide(router, mode="auto",
                      resources={"driver_memory": "4g", "executor_memory": "8g", "executor_cores": 4,
                                 "num_executors": 10},
                      spark_conf={"spark.sql.shuffle.partitions": "400"},
                      airflow={"dag_id": "etl", "task_id": "orders", "run_id": "scheduled__2026-11-22",
                               "try_number": 1})
    assert decision["mode"] == "standalone" and decision["rule"] == "needs-own-application"
    [reason] = decision["reasons"]
    assert reason["metric"] == "executor_memory" and reason["observed"] == 8 << 30
    assert decision["connect_url"] is None


def test_app_ids_with_a_slash_work_on_every_per_app_endpoint(router):
    app_id = "team-a/etl.orders"  # allowed by the decision request's pattern
    complete_run(router, decide(router, app_id))
    assert router.put(f"/api/v1/apps/{app_id}/compatibility", json={"findings": []}).status_code == 200
    [run] = router.get(f"/api/v1/apps/{app_id}/runs").json()
    assert run["app_id"] == app_id and run["status"] == "succeeded"
    assert router.put(f"/api/v1/admin/apps/{app_id}/pin", json={"mode": "standalone"}).status_code == 200
    assert decide(router, app_id)["rule"] == "admin-pin"
    assert router.delete(f"/api/v1/admin/apps/{app_id}/pin").status_code == 200
    assert decide(router, app_id)["rule"] != "admin-pin"


@pytest.mark.parametrize("body, field", [
    ({"resources": {"executor_memory": "lots"}}, "executor_memory"),
    ({"resources": {"executor_memory": "-4g"}}, "executor_memory"),
    ({"resources": {"executor_cores": -1}}, "executor_cores"),
    ({"mode": "fast"}, "mode"),
    ({"colour": "blue"}, "colour"),
    ({"spark_conf": {"shuffle.partitions": "4"}}, "spark_conf"),
    ({"app_id": ""}, "app_id"),
])
def test_bad_requests_name_the_field(router, body, field):
    response = router.post("/api/v1/decisions", json={"app_id": "etl.orders", **body})
    assert response.status_code == 422
    assert any(field in map(str, error["loc"]) for error in response.json()["detail"]), response.text


def test_heavy_history_goes_standalone_naming_the_metric(router):
    for _ in range(3):
        complete_run(router, decide(router, "etl.heavy"), shuffle_write_bytes=parse_size("50g"))
    decision = decide(router, "etl.heavy")
    assert decision["mode"] == "standalone" and decision["rule"] == "history-over-threshold"
    assert [r["metric"] for r in decision["reasons"]] == ["shuffle_write_bytes"]
    assert decision["reasons"][0]["observed"] == parse_size("50g")


def test_light_history_goes_connect_with_the_figures(router):
    complete_run(router, decide(router, "etl.light"), shuffle_write_bytes=1000)
    decision = decide(router, "etl.light")
    assert decision["mode"] == "connect" and decision["rule"] == "within-limits"
    assert {r["metric"]: r["observed"] for r in decision["reasons"]}["shuffle_write_bytes"] == 1000


def test_stages_arriving_after_success_still_count(router):
    decision = decide(router, "etl.late")
    run_id = decision["run_id"]
    router.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded"})
    stage = {"app_id": "etl.late", "run_id": run_id, "stage_id": 1, "attempt": 0, "status": "succeeded",
             "disk_spilled_bytes": parse_size("9g")}
    router.post("/api/v1/ingest/stages", json={"server_id": SERVER, "spark_app_id": "x", "stages": [stage]})
    assert decide(router, "etl.late")["reasons"][0]["metric"] == "disk_spilled_bytes"


def test_connect_failure_streak_and_reset(router):
    for _ in range(2):
        complete_run(router, decide(router, "etl.flaky"), ok=False, failure_kind="connect")
    complete_run(router, decide(router, "etl.flaky"))  # a Connect success resets the streak
    for _ in range(2):
        complete_run(router, decide(router, "etl.flaky"), ok=False, failure_kind="connect")
    assert decide(router, "etl.flaky")["mode"] == "connect"
    # App failures are the app's own: they do not count against Connect.
    complete_run(router, decide(router, "etl.flaky"), ok=False, failure_kind="app")
    assert decide(router, "etl.flaky")["mode"] == "connect"
    complete_run(router, decide(router, "etl.flaky"), ok=False, failure_kind="connect")
    decision = decide(router, "etl.flaky")
    assert decision["mode"] == "standalone" and decision["rule"] == "connect-failure-streak"


def test_an_app_whose_task_ran_out_of_memory_on_connect_goes_standalone(router):
    """Whether its Connect run then failed or recovered: the stages say it, as they arrive."""
    for app_id, ok in (("etl.oom-failed", False), ("etl.oom-recovered", True)):
        first = decide(router, app_id)
        assert first["mode"] == "connect"
        complete_run(router, first, ok=ok, failure_kind="pending" if not ok else "app", num_failed_tasks=3,
                     num_oom_failed_tasks=1)
        run = router.get(f"/api/v1/runs/{first['run_id']}").json()
        assert (run["num_failed_tasks"], run["num_oom_failed_tasks"]) == (3, 1)
        decision = decide(router, app_id)
        assert decision["mode"] == "standalone" and decision["rule"] == "connect-out-of-memory", decision
        assert "ran out of memory on a shared Connect server" in decision["reasons"][0]["message"]
    # Out of memory in its own (standalone) application harms nobody else: not this rule's business.
    alone = decide(router, "etl.oom-alone", mode="standalone")
    complete_run(router, alone, num_oom_failed_tasks=2)
    assert decide(router, "etl.oom-alone")["rule"] != "connect-out-of-memory"
    # Nor do other failures on Connect (an executor lost with another app's task on it).
    lost = decide(router, "etl.victim")
    complete_run(router, lost, num_failed_tasks=2)
    assert decide(router, "etl.victim")["mode"] == "connect"


def age_last_failure(client, app_id, days):
    with client.app.state.sessions() as session:
        session.execute(update(App).where(App.app_id == app_id)
                        .values(last_connect_failure_at=utcnow() - timedelta(days=days)))
        session.commit()


def test_cooldown_gives_exactly_one_connect_try_under_concurrency(router, settings):
    for _ in range(3):
        complete_run(router, decide(router, "etl.cool"), ok=False, failure_kind="connect")
    assert decide(router, "etl.cool")["mode"] == "standalone"
    age_last_failure(router, "etl.cool", days=61)

    results, errors = [], []

    def one(client):
        response = client.post("/api/v1/decisions", json={"app_id": "etl.cool"})
        (results if response.status_code == 200 else errors).append(response.json())

    # Two app instances on one database, as two uvicorn workers: their batches meet at the app's row lock.
    with TestClient(create_app(settings)) as other_worker:
        threads = [threading.Thread(target=one, args=(client,)) for client in [router, other_worker] * 6]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    tries = [d for d in results if d["mode"] == "connect"]
    assert len(tries) == 1 and tries[0]["rule"] == "connect-retry"
    # The try fails: standalone again for another cool-down.
    complete_run(router, tries[0], ok=False, failure_kind="connect")
    assert decide(router, "etl.cool")["rule"] == "connect-failure-streak"


def test_decisions_in_one_batch_see_each_other(settings, tmp_path, monkeypatch):
    """A batch is one transaction: each decision sees the runs decided before it in the batch (capacity, the
    cool-down's one try), and a request the policy fails on does not take the others down."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("capacity:\n  cores: 2\n  default_run_cores: 1\n")
    settings.policy_file = policy
    with TestClient(create_app(settings)) as client:
        heartbeat(client)
        for app_id in "abc":  # one core each (a minute of task time in a minute)
            complete_run(client, decide(client, app_id), executor_run_time_ms=60_000)
        for _ in range(3):
            complete_run(client, decide(client, "cool"), ok=False, failure_kind="connect")
        age_last_failure(client, "cool", days=61)
        real_decide = decider.rules.decide

        def failing_for_boom(facts, policy):
            if facts.requested_mode == "standalone" and facts.resources.num_executors == 13:
                raise RuntimeError("boom")
            return real_decide(facts, policy)

        monkeypatch.setattr(decider.rules, "decide", failing_for_boom)
        state = client.app.state
        batch = [DecisionRequest(app_id="cool"), DecisionRequest(app_id="cool"),
                 DecisionRequest(app_id="boom", mode="standalone", resources={"num_executors": 13}),
                 DecisionRequest(app_id="a"), DecisionRequest(app_id="b"), DecisionRequest(app_id="c")]
        with state.engine.begin() as connection:
            first, second, boom, a, b, c = decider.make_decisions(connection, batch, state.policies.get(),
                                                                    settings)
        assert (first.mode, first.rule) == ("connect", "connect-retry")
        assert (second.mode, second.rule) == ("standalone", "connect-failure-streak")
        assert isinstance(boom, RuntimeError)
        # "cool" took one core: "a" fits, then the server's two cores are spoken for.
        assert (a.mode, b.mode, c.mode) == ("connect", "standalone", "standalone")
        assert b.rule == "over-capacity" and b.reasons[0].observed == 3.0
        for decision in (first, second, a, b, c):  # stored, with their runs
            assert client.get(f"/api/v1/runs/{decision.run_id}").json()["decision"]["rule"] == decision.rule


def test_cooldown_try_that_succeeds_resets(router):
    for _ in range(3):
        complete_run(router, decide(router, "etl.back"), ok=False, failure_kind="connect")
    age_last_failure(router, "etl.back", days=61)
    complete_run(router, decide(router, "etl.back"))
    decision = decide(router, "etl.back")
    assert decision["mode"] == "connect" and decision["rule"] == "within-limits"


def test_unhealthy_and_draining_server(client):
    assert decide(client)["rule"] == "server-unhealthy"  # never sent a heartbeat
    heartbeat(client)
    assert decide(client)["mode"] == "connect"
    assert client.post(f"/api/v1/admin/servers/{SERVER}/drain").json()["draining"] is True
    assert decide(client)["rule"] == "server-draining"
    client.post(f"/api/v1/admin/servers/{SERVER}/undrain")
    assert decide(client)["mode"] == "connect"
    with client.app.state.sessions() as session:
        from service.db.models import Server
        session.execute(update(Server).values(last_heartbeat_at=utcnow() - timedelta(minutes=5)))
        session.commit()
    decision = decide(client)
    assert decision["rule"] == "server-unhealthy" and decision["reasons"][0]["observed"] >= 299


def test_drain_unknown_server_is_404(router):
    assert router.post("/api/v1/admin/servers/nope/drain").status_code == 404


def test_capacity_counts_connect_runs_in_flight(settings, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("capacity:\n  cores: 2\n  default_run_cores: 1\n")
    settings.policy_file = policy
    with TestClient(create_app(settings)) as client:
        heartbeat(client)
        for app_id in "abc":  # a history of one core each: a minute of task time in (at most) a minute
            complete_run(client, decide(client, app_id), executor_run_time_ms=60_000)
        first, second = decide(client, "a"), decide(client, "b")
        assert first["mode"] == second["mode"] == "connect"
        third = decide(client, "c")
        assert third["mode"] == "standalone" and third["rule"] == "over-capacity"
        assert third["reasons"][0]["observed"] == 3.0
        complete_run(client, first)
        assert decide(client, "c")["mode"] == "connect"


def test_capacity_is_the_servers_as_its_latest_heartbeat_reports_it(settings, tmp_path):
    """The policy's knob says 100 cores; the server's heartbeat says 2 executors of 1 core at most."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("capacity:\n  cores: 100\n  default_run_cores: 1\n")
    settings.policy_file = policy
    with TestClient(create_app(settings)) as client:
        heartbeat(client)  # an older listener: no executors reported
        for app_id in "abc":
            complete_run(client, decide(client, app_id), executor_run_time_ms=60_000)
        assert [decide(client, app_id)["mode"] for app_id in "abc"] == ["connect"] * 3  # the knob's 100 cores
        heartbeat(client, executors=1, executor_cores=1, max_executors=2)
        preview = decide(client, "c", dry_run=True)  # `spark-router decide` says the same
        assert preview["mode"] == "standalone" and preview["reasons"][0]["threshold"] == 2.0
        third = decide(client, "c")
        assert third["mode"] == "standalone" and third["rule"] == "over-capacity"
        assert third["reasons"][0]["threshold"] == 2.0
        assert "dynamic-allocation ceiling of 2 executors × 1 cores" in third["reasons"][0]["message"]
        heartbeat(client, executors=4, executor_cores=8, max_executors=10)  # grown: 10 × 2 cores
        assert decide(client, "c")["mode"] == "connect"


def test_pin_and_unpin_need_the_admin_token(settings):
    settings.admin_token = SecretStr("adm")
    with TestClient(create_app(settings)) as client:
        heartbeat(client)
        assert client.put("/api/v1/admin/apps/etl.x/pin", json={"mode": "standalone"}).status_code == 401
        admin = {"Authorization": "Bearer adm"}
        response = client.put("/api/v1/admin/apps/etl.x/pin", json={"mode": "standalone", "reason": "INC-42"},
                              headers=admin)
        assert response.status_code == 200
        decision = decide(client, "etl.x")
        assert decision["rule"] == "admin-pin" and "INC-42" in decision["reasons"][0]["message"]
        assert client.delete("/api/v1/admin/apps/etl.x/pin", headers=admin).status_code == 200
        assert decide(client, "etl.x")["mode"] == "connect"


def test_api_token_guards_client_endpoints(settings):
    settings.api_token = SecretStr("api")
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/v1/decisions", json={"app_id": "a"}).status_code == 401
        ok = client.post("/api/v1/decisions", json={"app_id": "a"}, headers={"Authorization": "Bearer api"})
        assert ok.status_code == 200
        assert client.get("/api/v1/apps").status_code == 401


def test_lifecycle_errors(router):
    decision = decide(router)
    run_id = decision["run_id"]
    assert router.post("/api/v1/runs/nope/events", json={"event": "started"}).status_code == 404
    response = router.post(f"/api/v1/runs/{run_id}/events", json={"event": "failed"})
    assert response.status_code == 422 and "failure_kind" in response.text
    assert router.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded"}).status_code == 200
    assert router.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded"}).status_code == 200
    conflict = router.post(f"/api/v1/runs/{run_id}/events", json={"event": "failed", "failure_kind": "app"})
    assert conflict.status_code == 409 and "already succeeded" in conflict.json()["detail"]


def test_fallback_links_both_runs(router):
    decision = decide(router, "etl.fb")
    complete_run(router, decision, ok=False, failure_kind="connect")
    rerun = router.post(f"/api/v1/runs/{decision['run_id']}/fallback", json={"reason": "sparkContext"}).json()
    assert rerun["mode"] == "standalone" and rerun["rule"] == "fallback"
    assert "sparkContext" in rerun["reasons"][0]["message"]
    again = router.post(f"/api/v1/runs/{decision['run_id']}/fallback", json={}).json()
    assert again["run_id"] == rerun["run_id"]  # asking twice does not make two reruns
    complete_run(router, rerun)
    runs = {r["run_id"]: r for r in router.get("/api/v1/apps/etl.fb/runs").json()}
    assert runs[decision["run_id"]]["status"] == "failed"
    assert runs[rerun["run_id"]]["status"] == "succeeded"
    assert router.get(f"/api/v1/runs/{rerun['run_id']}").json()["fallback_of"] == decision["run_id"]
    standalone = decide(router, "etl.fb", mode="standalone")
    assert router.post(f"/api/v1/runs/{standalone['run_id']}/fallback", json={}).status_code == 409


def test_simulate_totals_match_a_direct_count(settings, tmp_path):
    # Room for the test's (very short) runs: capacity is not what this test is about.
    (tmp_path / "policy.yaml").write_text("capacity:\n  cores: 100000\n")
    settings.policy_file = tmp_path / "policy.yaml"
    router = TestClient(create_app(settings))
    heartbeat(router)
    for app_id, shuffle in (("sim.light", 1000), ("sim.mid", parse_size("5g")),
                            ("sim.heavy", parse_size("30g"))):
        for _ in range(2):
            complete_run(router, decide(router, app_id), shuffle_write_bytes=shuffle,
                         executor_run_time_ms=7_200_000)
    candidate = {"capacity": {"cores": 100000}, "history": {"thresholds": {"shuffle_write_bytes": "1g"}}}
    result = router.post("/api/v1/policy/simulate", json={"policy": candidate, "days": 30}).json()
    modes = {a["app_id"]: (a["current_mode"], a["candidate_mode"]) for a in result["apps"]}
    assert modes == {"sim.light": ("connect", "connect"), "sim.mid": ("connect", "standalone"),
                     "sim.heavy": ("standalone", "standalone")}
    with router.app.state.sessions() as session:
        runs, task_ms = session.execute(select(func.count(), func.sum(Run.executor_run_time_ms))
                                        .where(Run.app_id == "sim.mid")).one()
    totals = result["totals"]
    assert totals["apps_moving"] == 1 and totals["runs_moving"] == runs == 2
    assert totals["task_hours_moving"] == pytest.approx(int(task_ms) / 3.6e6) == 4.0
    assert totals["runs_to_standalone"] == 2 and totals["runs_to_connect"] == 0


def test_simulate_rejects_a_bad_candidate(router):
    response = router.post("/api/v1/policy/simulate", json={"policy": {"history": {"window": 0}}})
    assert response.status_code == 422 and "history.window" in response.text


def test_policy_file_hot_reload(settings, tmp_path):
    import os
    import time

    policy = tmp_path / "policy.yaml"
    policy.write_text("version: one\n")
    settings.policy_file = policy
    with TestClient(create_app(settings)) as client:
        heartbeat(client)
        assert decide(client)["policy_version"].startswith("one+")
        policy.write_text("version: two\nnew_app_mode: standalone\n")
        os.utime(policy, (time.time() + 5, time.time() + 5))  # a new mtime even on coarse clocks
        decision = decide(client, "fresh.app")
        assert decision["policy_version"].startswith("two+") and decision["mode"] == "standalone"
        policy.write_text("new_app_mode: sideways\n")
        response = client.post("/api/v1/admin/policy/reload")
        assert response.status_code == 422 and "new_app_mode" in response.text
        assert decide(client, "fresh.app2")["policy_version"].startswith("two+")  # the last good one
        assert client.get("/api/v1/policy").json()["policy"]["new_app_mode"] == "standalone"


def count_batches(monkeypatch, fail_first: bool = False) -> list[int]:
    """The sizes of the batches the batcher decides, as they come; with fail_first, the first batch fails as
    if the database went away."""
    sizes: list[int] = []
    real_make_decisions = decider.make_decisions

    def counting(connection, requests, policy, settings):
        sizes.append(len(requests))
        if fail_first and len(sizes) == 1:
            raise RuntimeError("the database went away")
        return real_make_decisions(connection, requests, policy, settings)

    monkeypatch.setattr(decider, "make_decisions", counting)
    return sizes


def test_concurrent_requests_share_a_batch_and_a_failed_batch_is_retried_request_by_request(settings,
                                                                                            monkeypatch):
    """The batcher: requests that arrive together are decided in one batch; when storing the batch fails, each
    of its requests is decided on its own (one request's failure is not its neighbours'), and the next batch
    is decided as usual."""
    app = create_app(settings)
    batch_sizes = count_batches(monkeypatch, fail_first=True)

    async def scenario():
        together = [app.state.decider.decide(DecisionRequest(app_id=f"etl.{i}")) for i in range(3)]
        retried = await asyncio.gather(*together, return_exceptions=True)
        return retried, await app.state.decider.decide(DecisionRequest(app_id="etl.next"))

    try:
        retried, decided = asyncio.run(scenario())
    finally:
        app.state.engine.dispose()
    assert batch_sizes == [3, 1, 1, 1, 1]
    assert [decision.app_id for decision in retried] == ["etl.0", "etl.1", "etl.2"]
    # no heartbeat in this database
    assert decided.app_id == "etl.next" and decided.rule == "server-unhealthy"


def test_requests_on_their_way_join_the_batch(settings, monkeypatch):
    """A request reaches decide() a few event-loop turns after its bytes arrive (body, dependencies): the
    batcher waits for those on their way, so that requests that arrive together share one batch even when
    staggered."""
    app = create_app(settings)
    batch_sizes = count_batches(monkeypatch)

    async def arrive(turns: int):
        for _ in range(turns):
            await asyncio.sleep(0)
        return await app.state.decider.decide(DecisionRequest(app_id=f"etl.{turns}"))

    async def scenario():
        staggered = await asyncio.gather(*(arrive(turns) for turns in range(4)))
        return staggered, await arrive(0)

    try:
        staggered, alone = asyncio.run(scenario())
    finally:
        app.state.engine.dispose()
    assert batch_sizes == [4, 1]
    assert [decision.app_id for decision in staggered] == ["etl.0", "etl.1", "etl.2", "etl.3"]
    assert alone.app_id == "etl.0" and alone.run_id not in {decision.run_id for decision in staggered}


# ------------------------------------------------------------------- one request never fails another (item 4)

# NUL: PostgreSQL refuses it
BAD_AIRFLOW = [{"dag_id": "d", "task_id": "t\x00x", "run_id": "r"},
               {"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 2**31},  # past an Integer
               {"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 2**63}]  # past SQLite's integers


def test_a_request_the_database_would_refuse_is_422_and_its_neighbours_are_decided(client):
    """Before, a NUL in airflow.task_id (PostgreSQL) or a try number past the column failed the whole batch it
    joined: up to 40 of 40 valid neighbours got 500. Now it is refused before it joins one."""
    bodies = [{"app_id": f"etl.{i}"} for i in range(12)]
    bodies[3:3] = [{"app_id": "etl.bad", "airflow": airflow} for airflow in BAD_AIRFLOW]
    answers: dict[int, object] = {}

    def post(i: int) -> None:
        try:
            answers[i] = client.post("/api/v1/decisions", json=bodies[i])
        except Exception as exc:  # noqa: BLE001 - the test client raises what would have been a 500
            answers[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = [getattr(answers[i], "status_code", 500) for i in range(len(bodies))]
    assert statuses == [200] * 3 + [422] * 3 + [200] * 9, [str(answers[i])[:200] for i in range(len(bodies))]
    assert [answers[i].json()["detail"][0]["loc"][-1] for i in (3, 4, 5)] == ["task_id", "try_number",
                                                                              "try_number"]


POISON_SQLITE = ("CREATE TRIGGER poison BEFORE INSERT ON runs WHEN NEW.app_id = 'etl.poison' "
                 "BEGIN SELECT RAISE(ABORT, 'poisoned run'); END")
POISON_POSTGRESQL = ("CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.app_id = 'etl.poison' THEN "
                     "RAISE EXCEPTION 'poisoned run'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
                     "CREATE TRIGGER poison BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION poison()")


def test_a_request_that_fails_in_the_database_never_fails_its_batch(settings, monkeypatch):
    """What validation cannot foresee: the database refuses one request's run (a trigger, here). Its batch is
    decided again request by request: its neighbours get their decisions, it alone gets the error."""
    app = create_app(settings)
    engine = app.state.engine
    with engine.begin() as connection:
        connection.exec_driver_sql(POISON_POSTGRESQL if engine.dialect.name == "postgresql"
                                   else POISON_SQLITE)
    batch_sizes = count_batches(monkeypatch)
    app_ids = [f"etl.{i}" for i in range(5)] + ["etl.poison"] + [f"etl.{i}" for i in range(5, 10)]

    async def together():
        return await asyncio.gather(*[app.state.decider.decide(DecisionRequest(app_id=app_id))
                                      for app_id in app_ids],
                                    return_exceptions=True)

    try:
        results = asyncio.run(together())
        with app.state.sessions() as session:
            stored = sorted(session.scalars(select(Run.app_id)))
    finally:
        engine.dispose()
    assert batch_sizes[0] == len(app_ids)  # they did share a batch
    poisoned = results.pop(5)
    assert "poisoned run" in str(poisoned)
    assert [result.app_id for result in results] == [app_id for app_id in app_ids if app_id != "etl.poison"]
    assert stored == sorted(app_id for app_id in app_ids if app_id != "etl.poison")
