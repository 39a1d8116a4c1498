"""On the real Connect server: a run's jobs run in the FAIR pool the router told it, the server's fixed set of
pools (service/ops/fairscheduler.xml) is the one it reads, and a light app moves to the light pool once its
history shows it is light.

Every stage that ran is counted; a skipped stage is not: with adaptive execution each exchange runs as its own
job, and a later job lists the stages whose shuffle output it reuses as SKIPPED; a stage that was never
submitted was never given a pool, so the status API shows it in `default` whatever pool its job had (seen on
this server: every `default` stage of a run was a skipped one)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.client_runtime.test_launcher_spark import EXAMPLES, launcher_env, runs_of, spark_router_run
from tests.support import wait_until

pytestmark = pytest.mark.spark


def stage_pools(connect_server) -> dict[int, tuple[str, str]]:
    """Every stage the server knows (its status API), by id: its status and its scheduling pool."""
    base = f"http://127.0.0.1:{connect_server.ui_port}/api/v1/applications"
    [app] = httpx.get(base, timeout=10).json()
    stages = httpx.get(f"{base}/{app['id']}/stages", timeout=10).json()
    return {stage["stageId"]: (stage["status"], stage["schedulingPool"]) for stage in stages}


def settled_stage_pools(connect_server) -> dict[int, str]:
    """The stages once the server is idle and its status API has caught up (the listener bus is asynchronous:
    the warm-up query's stages may still be on their way)."""
    def unchanged():
        first = stage_pools(connect_server)
        time.sleep(2)
        return first if stage_pools(connect_server) == first else None
    return wait_until(unchanged, 60, "the server's status API to settle")


def run_and_get_pools(router, connect_server, state_dir, app_id: str) -> tuple[dict, set[str]]:
    before = settled_stage_pools(connect_server)
    result = spark_router_run(launcher_env(router, connect_server, state_dir), app_id,
                              EXAMPLES / "light_aggregation.py", args=["20000"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "router: connect" in result.stderr
    # The status API lists a stage once its listener event is through: wait for this run's.
    wait_until(lambda: {i for i in stage_pools(connect_server) if i not in before}, 30,
               "the run's stages in the server's status API")
    new = {i: stage for i, stage in settled_stage_pools(connect_server).items() if i not in before}
    run = wait_until(lambda: next((r for r in runs_of(router, app_id)[-1:] if r["num_stages"] > 0
                                   and r["status"] == "succeeded"), None), 30, "the run's metrics")
    ran = {pool for status, pool in new.values() if status != "SKIPPED"}
    assert {status for status, _ in new.values()} <= {"COMPLETE", "SKIPPED"}, new
    return run, ran


def test_a_run_gets_the_pool_it_was_told_and_a_light_app_moves_to_the_light_pool(router, connect_server,
                                                                                 state_dir):
    app_id = f"pools.{uuid.uuid4().hex[:6]}"
    first, pools = run_and_get_pools(router, connect_server, state_dir, app_id)
    told = router.get(f"/api/v1/runs/{first['run_id']}")["decision"]["scheduler_pool"]
    # New: not yet shown to be light. Every stage it ran ran in the pool it was told.
    assert (told, pools) == ("heavy", {"heavy"})
    # Its history now shows seconds of task time: the next run is light, and its jobs run in that pool.
    second, pools = run_and_get_pools(router, connect_server, state_dir, app_id)
    assert second["run_id"] != first["run_id"]
    assert router.get(f"/api/v1/runs/{second['run_id']}")["decision"]["scheduler_pool"] == "light"
    assert pools == {"light"}
