"""Predictions with real Spark: a standalone run measures the cluster's start-up, Connect runs on the shared
server give the app its history, and the next run's decision shows both predictions and, once it ran, its
actual figures beside them."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import REPO, server_env, wait_until

pytestmark = pytest.mark.spark
SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")
LIGHT = REPO / "examples" / "apps" / "light_aggregation.py"


def run(env, app_id: str, *options: str) -> str:
    done = subprocess.run([SPARK_ROUTER, "run", "--app-id", app_id, *options, str(LIGHT), "--", "200000"],
                          env=env, cwd=env["SPARK_ROUTER_STATE_DIR"], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout + done.stderr


def latest_run(router, app_id: str) -> dict:
    [newest, *_] = router.get(f"/api/v1/apps/{app_id}/runs")
    return router.get(f"/api/v1/runs/{newest['run_id']}")


def test_a_connect_run_shows_its_predictions_and_its_actual_outcome(router, connect_server, state_dir):
    connect_server.ensure_running()
    env = server_env(router, connect_server, state_dir, SPARK_ROUTER_STANDALONE_MASTER="local[1]")
    app_id = f"predict.light.{uuid.uuid4().hex[:6]}"
    run(env, app_id, "--mode", "standalone")  # measures a separate application's start-up here
    first = latest_run(router, app_id)
    assert first["mode"] == "standalone" and first["first_stage_at"] is not None
    run(env, app_id, "--mode", "connect")
    wait_until(lambda: latest_run(router, app_id)["num_stages"] > 0, 30, "the Connect run's stages")
    run(env, app_id)  # auto: decided from both modes' history

    detail = latest_run(router, app_id)
    decision = detail["decision"]
    print("decision:", decision["rule"], decision["mode"], decision["reasons"][0]["message"])
    print("predictions:", decision["predictions"])
    print("actual:", decision["actual"])
    connect, standalone = decision["predictions"]["connect"], decision["predictions"]["standalone"]
    assert connect["basis"] == "1 Connect run" and not connect["cross_mode"]
    assert standalone["basis"] == "1 standalone run" and standalone["startup_s"] > 1
    assert decision["rule"] == "cost-aware" and "start-up" in decision["reasons"][0]["message"]
    actual = decision["actual"]
    assert actual["status"] == "succeeded" and actual["mode"] == detail["mode"] and actual["wall_s"] > 0
    assert actual["wall_error_pct"] is not None
    if detail["mode"] == "connect":  # on the shared server: its task time is what it cost
        wait_until(lambda: latest_run(router, app_id)["decision"]["actual"]["core_s"], 30, "the run's task "
                                                                                           "time")
        assert latest_run(router, app_id)["decision"]["actual"]["core_s_error_pct"] is not None
    accuracy = router.get("/api/v1/predictions/accuracy", app_id=app_id)
    assert [row["mode"] for row in accuracy["apps"]] == [detail["mode"]] or len(accuracy["apps"]) >= 1
