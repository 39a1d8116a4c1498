"""Real parts for the tests: what the benchmarks share lives in harness.py (a router process, PostgreSQL
databases, waiting for a state); the tests' own helpers are here."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from harness import (
    BIN,
    RouterProcess,
    compile_jar,
    create_pg_database,
    drop_pg_database,
    free_port,
    wait_until,
)

__all__ = ["BIN", "REPO", "RouterProcess", "compile_jar", "create_pg_database", "drop_pg_database",
           "free_port", "running_jobs", "server_env", "wait_until"]

REPO = Path(__file__).resolve().parent.parent


def server_env(router, connect_server, state_dir, **extra: str) -> dict:
    """The environment of a `spark-router` command (run, restart-server) against the session's router and
    Connect server, without the Connect client variables of the test process."""
    settings = connect_server.settings
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env.update({"SPARK_ROUTER_URL": router.url, "SPARK_ROUTER_STATE_DIR": str(state_dir),
                "SPARK_ROUTER_CONNECT_URL": connect_server.url,
                "SPARK_ROUTER_CONNECT_PORT": str(settings.connect_port),
                "SPARK_ROUTER_CONNECT_UI_PORT": str(settings.connect_ui_port),
                "SPARK_ROUTER_CONNECT_SERVER_ID": settings.connect_server_id,
                "SPARK_ROUTER_RESTART_POLL_S": "1", **extra})
    return env


def running_jobs(connect_server) -> int:
    """How many jobs the Connect server runs now, by its Spark UI's REST API (0 while that does not
    answer)."""
    ui = f"http://127.0.0.1:{connect_server.settings.connect_ui_port}/api/v1/applications"
    try:
        [app, *_] = httpx.get(ui, timeout=5).raise_for_status().json()
        return len(httpx.get(f"{ui}/{app['id']}/jobs", params={"status": "running"},
                             timeout=5).raise_for_status().json())
    except (httpx.HTTPError, ValueError):
        return 0
