"""The listener on a real Spark Connect server and in real spark-submit runs, reporting to a real router."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from client_runtime import spark_env
from client_runtime.settings import ClientSettings
from tests.support import REPO, RouterProcess, free_port, wait_until

pytestmark = pytest.mark.spark
APPS = REPO / "tests" / "apps"


def start_client(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(APPS / script), *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout_s: float = 240) -> str:
    output, _ = process.communicate(timeout=timeout_s)
    assert process.returncode == 0, output[-3000:]
    return output


def run_of(router: RouterProcess, app_id: str, run_id: str) -> dict | None:
    try:
        runs = router.get(f"/api/v1/apps/{app_id}/runs")
    except httpx.HTTPError:
        return None
    return next((run for run in runs if run["run_id"] == run_id), None)


def wait_for_run(router, app_id, run_id, stages: int, timeout_s: float = 60) -> dict:
    return wait_until(lambda: (run := run_of(router, app_id, run_id)) and run["num_stages"] >= stages and run,
                      timeout_s, f"{stages} stage(s) of {app_id}/{run_id}")


def test_concurrent_clients_land_on_their_own_runs(connect_server, router, pg_url):
    tag = uuid.uuid4().hex[:6]
    # Each client's shuffle writes exactly 4 partitions x keys records: a leak would change the count.
    clients = {f"etl.{tag}.{keys}": (f"run-{tag}-{keys}", keys) for keys in (10, 20, 30)}
    processes = [start_client("shuffle_client.py", connect_server.url, app_id, run_id, keys)
                 for app_id, (run_id, keys) in clients.items()]
    for process in processes:
        finish(process)

    for app_id, (run_id, keys) in clients.items():
        run = wait_for_run(router, app_id, run_id, stages=2)
        assert run["mode"] == "connect"
        assert run["num_stages"] == 2, run
        assert run["shuffle_write_records"] == 4 * keys, run
        assert run["shuffle_write_bytes"] > 0 and run["shuffle_read_bytes"] > 0
        assert run["executor_run_time_ms"] > 0 and run["executor_cpu_time_ms"] > 0
        assert run["num_tasks"] == 4 + 3 and run["num_failed_tasks"] == 0
        assert run["max_task_duration_ms"] > 0

    # Each run's stages came from one Connect session of its own.
    with create_engine(pg_url).connect() as connection:
        sessions = connection.execute(text(
            "SELECT run_id, count(DISTINCT connect_session_id), min(connect_session_id), "
            "count(connect_operation_id) FROM stage_metrics WHERE run_id LIKE :tag GROUP BY run_id"),
            {"tag": f"run-{tag}-%"}).all()
    assert len(sessions) == 3
    assert all(distinct == 1 and operations == 2 for _, distinct, _, operations in sessions)
    assert len({session for _, _, session, _ in sessions}) == 3


def test_spilling_job_reports_spill(connect_server, router):
    app_id, run_id = f"spill.{uuid.uuid4().hex[:6]}", "run-spill"
    finish(start_client("spill_client.py", connect_server.url, app_id, run_id))
    # With AQE the job's stage count varies; the spilling stage is among the last to arrive.
    run = wait_until(lambda: (r := run_of(router, app_id, run_id)) and r["disk_spilled_bytes"] > 0 and r, 30,
                     f"spill figures of {app_id}")
    assert run["memory_spilled_bytes"] > 0, run
    assert run["disk_spilled_bytes"] > 0, run
    assert run["peak_execution_memory_bytes"] > 0


def test_heartbeat_reports_the_connect_server(connect_server, router):
    def server():
        return next((s for s in router.get("/api/v1/servers") if s["server_id"] == "connect-test"), None)

    found = wait_until(lambda: (s := server()) and s["last_heartbeat_at"] and s, 30, "a heartbeat")
    assert found["kind"] == "connect"
    assert found["spark_version"] == "4.3.0"
    assert found["spark_app_id"].startswith("local-")
    assert found["ui_url"].endswith(str(connect_server.ui_port))


def test_router_outage_loses_nothing_and_counts_once(connect_server, router, state_dir):
    tag = uuid.uuid4().hex[:6]
    clients = {f"outage.{tag}.a": (f"run-{tag}-a", 7, 3), f"outage.{tag}.b": (f"run-{tag}-b", 11, 2)}
    router.stop()
    try:
        processes = [start_client("shuffle_client.py", connect_server.url, app_id, run_id, keys, rounds)
                     for app_id, (run_id, keys, rounds) in clients.items()]
        for process in processes:
            finish(process)
        spool = state_dir / "spool"
        # Everything completed while the router was away waits on disk.
        wait_until(lambda: list(spool.glob("*.json")), 30, f"spool files in {spool}")
    finally:
        router.start()

    for app_id, (run_id, keys, rounds) in clients.items():
        run = wait_for_run(router, app_id, run_id, stages=2 * rounds, timeout_s=90)
        assert run["num_stages"] == 2 * rounds, run
        assert run["shuffle_write_records"] == 4 * keys * rounds, run
    wait_until(lambda: not list((state_dir / "spool").glob("*.json")), 60, "the spool to drain")


def spark_submit(app: Path, conf: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    settings = ClientSettings()
    command = [str(spark_env.spark_home() / "bin" / "spark-submit"), "--master", "local[2]",
               "--jars", str(settings.listener_jar)]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    env = {**{k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")},
           "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "JAVA_HOME": str(spark_env.java_home(settings))}
    with open(log, "w") as out:
        result = subprocess.run(command + [str(app)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                timeout=300, check=False)
    assert result.returncode == 0, log.read_text()[-3000:]
    return result


def test_standalone_run_is_recorded_the_same_way(tmp_path):
    """The listener inside a spark-submit run, reporting to a router on SQLite."""
    router = RouterProcess(f"sqlite:///{tmp_path / 'router.db'}", tmp_path).start()
    try:
        settings = ClientSettings(url=router.url, state_dir=tmp_path)
        # A flush interval longer than the run: the sender still holds the last batch, waiting for it to
        # fill up, when the application ends. Closing must send that batch, not spool it.
        conf = {**spark_env.listener_conf(settings, kind="standalone"),
                "spark.router.listener.flushIntervalMs": "60000",
                "spark.router.appId": "nightly.standalone", "spark.router.runId": "run-standalone-1"}
        spark_submit(APPS / "standalone_shuffle.py", conf, tmp_path / "driver.log")
        # The listener flushes on application end, so the run is complete when spark-submit returns.
        run = wait_for_run(router, "nightly.standalone", "run-standalone-1", stages=1, timeout_s=10)
        assert not list((tmp_path / "spool").glob("*.json")), "the last batch was spooled, not sent"
        assert run["mode"] == "standalone"
        assert run["shuffle_write_records"] == 100
        assert run["executor_run_time_ms"] > 0 and run["shuffle_write_bytes"] > 0
        # Kept apart from the Connect servers.
        assert any(s["kind"] == "standalone" for s in router.get("/api/v1/servers", kind="standalone"))
        assert not any(s["kind"] == "standalone" for s in router.get("/api/v1/servers"))
    finally:
        router.stop()


def test_spool_stays_within_its_bound_when_the_router_stays_away(tmp_path):
    bound = 6_000
    spool = tmp_path / "spool"
    conf = {"spark.extraListeners": spark_env.LISTENER_CLASS,
            "spark.router.listener.url": f"http://127.0.0.1:{free_port()}",  # nobody listens there
            "spark.router.listener.spoolDir": str(spool),
            "spark.router.listener.spoolMaxBytes": str(bound),
            "spark.router.listener.batchSize": "1",
            "spark.router.listener.flushIntervalMs": "50",
            "spark.router.appId": "spooled.app", "spark.router.runId": "run-spooled"}
    app = tmp_path / "many_jobs.py"
    app.write_text("from pyspark.sql import SparkSession\n"
                   "spark = SparkSession.builder.getOrCreate()\n"
                   "for i in range(15):\n"
                   "    spark.range(0, 1000, 1, 2).selectExpr('id % 5 AS k').groupBy('k').count().collect()\n"
                   "spark.stop()\n")
    log = tmp_path / "driver.log"
    spark_submit(app, conf, log)
    files = list(spool.glob("*.json"))
    assert files, "nothing was spooled"
    assert sum(f.stat().st_size for f in files) <= bound
    driver_log = log.read_text()
    assert "dropped" in driver_log.lower(), driver_log[-2000:]
