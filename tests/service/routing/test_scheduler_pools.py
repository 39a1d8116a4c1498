"""The Connect server's FAIR scheduler pools: which pool a Connect run's jobs go to (a pure rule), the fixed
set the server ships, and the pool carried from the decision to the Connect session."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from client_runtime.launcher import Launcher, RunRequest
from client_runtime.settings import ClientSettings
from service.ops.connect_server import SCHEDULER_POOLS_FILE, server_command
from service.ops.ops_config import OpsSettings
from service.routing import rules
from service.routing.policy import Policy, PolicyError, parse_policy
from tests.service.routing.test_rules import LIGHT, NOW, facts
from tests.support import RouterProcess, free_port

SECONDS = rules.RunSummary(task_time_ms=4_000, shuffle_write_bytes=1 << 20, disk_spilled_bytes=0,
                           peak_execution_memory_bytes=16 << 20, duration_ms=3_000)


def pools_of_the_shipped_file() -> dict[str, dict[str, str]]:
    root = ElementTree.fromstring(SCHEDULER_POOLS_FILE.read_text())
    return {pool.get("name"): {child.tag: child.text.strip() for child in pool} for pool in root.iter("pool")}


def test_an_app_of_short_runs_goes_to_the_light_pool_and_says_why():
    reason = rules.scheduler_pool(facts(recent_runs=(SECONDS,) * 3).app, Policy())
    assert (reason.rule, reason.metric, reason.observed) == ("scheduler-pool", "scheduler_pool", "light")
    assert reason.message == ("Its jobs run in the server's light pool: the p90 of task_time_ms over the "
                              "last 3 successful runs is 4.0 s, at most 2.0 min.")


def test_an_app_over_the_limit_goes_to_the_heavy_pool():
    reason = rules.scheduler_pool(facts(recent_runs=(LIGHT,) * 5).app, Policy())  # 4 min of task time
    assert reason.observed == "heavy" and "4.0 min, over 2.0 min" in reason.message


def test_the_limit_is_the_policys_knob_and_the_statistic_forgives_one_odd_run():
    app = facts(recent_runs=(LIGHT,) * 5).app
    higher = parse_policy({"scheduler_pools": {"light_max_task_time_ms": 240_000}})
    assert rules.scheduler_pool(app, higher).observed == "light"  # at most: the limit itself is light
    one_odd = facts(recent_runs=(LIGHT,) + (SECONDS,) * 9).app
    assert rules.scheduler_pool(one_odd, Policy()).observed == "light"
    assert rules.scheduler_pool(one_odd, parse_policy({"history": {"statistic": "max"}})).observed == "heavy"
    with pytest.raises(PolicyError, match="scheduler_pools.light_max_task_time_ms"):
        parse_policy({"scheduler_pools": {"light_max_task_time_ms": -1}})


def test_an_app_not_yet_shown_light_goes_to_the_heavy_pool():
    reason = rules.scheduler_pool(facts(recent_runs=()).app, Policy())
    assert reason.observed == "heavy" and "no successful run yet" in reason.message


def pool_of(verdict: rules.Verdict) -> list[str]:
    return [reason.observed for reason in verdict.reasons if reason.rule == "scheduler-pool"]


def test_every_connect_decision_names_its_pool_and_a_standalone_one_none():
    connect = rules.decide(facts(recent_runs=(SECONDS,) * 3), Policy())
    assert connect.mode == "connect" and pool_of(connect) == ["light"]
    forced = rules.decide(facts(mode="connect", recent_runs=(LIGHT,) * 3), Policy())
    assert pool_of(forced) == ["heavy"]
    # With a pool of servers, placement's reason stays last.
    two = (rules.ServerFacts(NOW, False, server_id="a"), rules.ServerFacts(NOW, False, server_id="b"))
    placed = rules.decide(facts(servers=two, recent_runs=(SECONDS,) * 3), Policy())
    assert pool_of(placed) == ["light"] and placed.reasons[-1].rule == "placement"
    standalone = rules.decide(facts(mode="standalone", recent_runs=(SECONDS,) * 3), Policy())
    assert standalone.mode == "standalone"
    assert all(reason.rule != "scheduler-pool" for reason in standalone.reasons)


def test_with_the_pools_off_no_connect_run_is_told_a_pool():
    """scheduler_pools.enabled false: the server as without the router (every run's jobs in its default
    pool); the decision's other reasons are unchanged."""
    off = parse_policy({"scheduler_pools": {"enabled": False}})
    for mode in ("auto", "connect"):
        verdict = rules.decide(facts(mode=mode, recent_runs=(SECONDS,) * 3), off)
        assert verdict.mode == "connect" and pool_of(verdict) == []
        on = rules.decide(facts(mode=mode, recent_runs=(SECONDS,) * 3), Policy())
        assert verdict.reasons == tuple(r for r in on.reasons if r.rule != "scheduler-pool")


def test_the_pools_the_rule_names_are_the_servers_fixed_set():
    pools = pools_of_the_shipped_file()
    assert {rules.LIGHT_POOL, rules.HEAVY_POOL, "default"} == set(pools)
    assert all(pool["schedulingMode"] == "FAIR" for pool in pools.values())
    # Light runs get cores first: a larger weight and a minimum share.
    assert int(pools["light"]["weight"]) > int(pools["heavy"]["weight"])
    assert int(pools["light"]["minShare"]) > int(pools["heavy"]["minShare"])


def test_the_local_server_reads_the_shipped_pools(tmp_path):
    jar = tmp_path / "listener.jar"
    jar.write_bytes(b"")
    command = server_command(OpsSettings(state_dir=tmp_path, listener_jar=jar), 15002, 4040)
    assert f"spark.scheduler.allocation.file={SCHEDULER_POOLS_FILE}" in command


PRINT_CONFS = """
import json, os
print("CONFS", os.environ["SPARK_ROUTER_SESSION_CONFS"])
"""


def test_the_router_s_pool_reaches_the_connect_session_over_the_apps_own(tmp_path):
    """A real router decides; the launcher hands the app the session confs its session factory sets: the
    router's pool wins over one the app names (a pool of its own naming would stay on the server for good)."""
    router = RouterProcess(f"sqlite:///{tmp_path / 'router.db'}", tmp_path).start()
    try:
        app = tmp_path / "app.py"
        app.write_text(PRINT_CONFS)
        lines: list[str] = []
        settings = ClientSettings(state_dir=tmp_path / "state", url=router.url,
                                  connect_url=f"sc://127.0.0.1:{free_port()}")
        result = Launcher(settings, on_line=lines.append, on_event=lambda _e: None).run(
            RunRequest(app_id="etl.pool", app=str(app), mode="connect", fallback=False,
                       spark_conf={"spark.scheduler.pool": "mine", "spark.sql.shuffle.partitions": "4"}))
        assert result.exit_code == 0, lines
        confs = json.loads(next(line for line in lines if line.startswith("CONFS")).removeprefix("CONFS "))
        # A new app is not yet known to be light.
        assert confs["spark.scheduler.pool"] == "heavy" and confs["spark.sql.shuffle.partitions"] == "4"
        assert confs["spark.router.runId"] == result.run_id
        # The stored decision says it too (GET /runs/{id}: its decision).
        assert router.get(f"/api/v1/runs/{result.run_id}")["decision"]["scheduler_pool"] == "heavy"
    finally:
        router.stop()
