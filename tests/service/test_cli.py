"""`spark-router decide` against the session's router process: a dry run by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")


def in_flight(router) -> int:
    counts = router.get("/api/v1/dashboard/summary", days=1)["in_flight"]
    return counts["connect"] + counts["standalone"]


def decide(router, app_id: str, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARK_ROUTER_URL": router.url}
    return subprocess.run([SPARK_ROUTER, "decide", "--app-id", app_id, *options], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_decide_leaves_the_in_flight_count_unchanged_unless_asked_to_record(router):
    app_id = f"cli.{uuid.uuid4().hex[:6]}"
    before = in_flight(router)
    for _ in range(8):  # eight calls once pushed a real run over capacity
        answer = decide(router, app_id)
        assert answer.returncode == 0, answer.stderr
    assert "dry run: no run recorded" in answer.stdout and answer.stdout.startswith(f"{app_id}: ")
    assert json.loads(decide(router, app_id, "--json").stdout)["run_id"] is None
    assert in_flight(router) == before
    assert app_id not in {app["app_id"] for app in router.get("/api/v1/apps", limit=1000)}
    recorded = decide(router, app_id, "--record")
    assert recorded.returncode == 0 and "counted in flight for capacity.decided_max_age_s" in recorded.stdout
    assert in_flight(router) == before + 1
