"""Out of memory on a real Spark standalone cluster (two workers of 1 core and 1g): `spark-router run` of an
app that needs more than 512m executors fails out of executor memory, and the launcher reruns it once,
standalone, with the 1g the router gives it (sizing.oom_growth 2x); the router's history has both runs,
linked, and why."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import REPO, wait_until

pytestmark = [pytest.mark.spark, pytest.mark.cluster]
MIB = 1 << 20


def test_a_run_out_of_executor_memory_is_rerun_once_with_more_and_succeeds(cluster, cluster_router):
    router = cluster_router
    app_id = f"nightly.oom.{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env.update({"SPARK_ROUTER_URL": router.url, "SPARK_ROUTER_STATE_DIR": str(cluster.settings.state_dir),
                "SPARK_ROUTER_STANDALONE_MASTER": cluster.master_url})
    started = time.monotonic()
    run = subprocess.run([str(Path(sys.executable).parent / "spark-router"), "run", "--app-id", app_id,
                          "--mode", "standalone", "--executor-memory", "512m", "--num-executors", "1",
                          str(REPO / "tests" / "apps" / "executor_oom.py")],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    seconds = time.monotonic() - started
    said = [line for line in run.stderr.splitlines() if line.startswith("[spark-router]")]
    print("\n".join(said) + f"\n({seconds:.1f} s in all)")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "held 448 MiB in one task" in run.stdout + run.stderr

    # What the launcher said: the first run out of executor memory, the router's rerun with 2x, its success.
    text = "\n".join(said)
    assert "ran out of executor memory (WARN TaskSetManager: Lost task 0.0 in stage 0.0" in text, text
    assert "java.lang.OutOfMemoryError: Java heap space" in text
    assert "rerun once with 1.0 GiB (2x)" in text
    assert sum("starting standalone run" in line for line in said) == 2, text

    # The router's history: both runs, linked, with what each ran with and why.
    runs = wait_until(lambda: (found := router.get(f"/api/v1/apps/{app_id}/runs")) and len(found) == 2
                      and all(r["status"] in ("failed", "succeeded") for r in found) and found,
                      30, f"both runs of {app_id}")
    failed = next(r for r in runs if r["status"] == "failed")
    rerun = next(r for r in runs if r["status"] == "succeeded")
    first, second = (router.get(f"/api/v1/runs/{r['run_id']}") for r in (failed, rerun))
    assert (first["mode"], first["failure_kind"]) == ("standalone", "app")
    assert first["executor_memory"] == 512 * MIB
    assert first["failure_message"].startswith("out of executor memory: WARN TaskSetManager: Lost task")
    assert first["oom_rerun_to"] == rerun["run_id"] and second["oom_rerun_of"] == failed["run_id"]
    assert (second["mode"], second["num_executors"]) == ("standalone", 1)
    assert second["executor_memory"] == 1024 * MIB
    assert second["decision"]["rule"] == "oom-rerun"
    assert second["decision"]["sizing"]["executor_memory"] == "1024m"
    assert "ran out of executor memory" in second["decision"]["reasons"][0]["message"]

    # Spark's side: two applications of that name, with 512m then 1g executors.
    def completed() -> list[dict]:
        return [a for a in cluster.master()["completedapps"] if a["name"] == app_id]

    apps = wait_until(lambda: len(completed()) == 2 and completed(), 30, f"two applications named {app_id}")
    memory = sorted(a.get("memoryperexecutor", a.get("memoryperslave")) for a in apps)
    assert memory == [512, 1024], apps
