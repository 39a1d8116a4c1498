"""A real Spark standalone cluster (`spark-router cluster`), a Connect server on it with the shared server
settings (dynamic allocation with shuffle tracking), standalone runs submitted to it, and a worker lost under
a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from service.ops import connect_server, spark_cluster
from tests.service.ops.conftest import CLUSTER_SERVER_ID
from tests.support import REPO, wait_until

# Spark tests (`-m "not spark"` skips them too), and the cluster subset of them (`-m cluster`).
pytestmark = [pytest.mark.spark, pytest.mark.cluster]
APPS = REPO / "tests" / "apps"


def executors_of(server, active_only: bool = True) -> list[dict]:
    """The server's executors (not its driver) in Spark's REST API."""
    return [e for e in server.rest("/allexecutors") if e["id"] != "driver"
            and (e["isActive"] or not active_only)]


def connect_client(server, app_id: str, run_id: str, keys: int, rounds: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(APPS / "shuffle_client.py"), server.url, app_id, run_id,
                             str(keys), str(rounds)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout_s: float = 300) -> str:
    output, _ = process.communicate(timeout=timeout_s)
    assert process.returncode == 0, output[-3000:]
    return output


def launcher_env(server, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env.update({"SPARK_ROUTER_URL": server.router.url, "SPARK_ROUTER_CONNECT_URL": server.url,
                "SPARK_ROUTER_STATE_DIR": str(server.settings.state_dir),
                "SPARK_ROUTER_STANDALONE_MASTER": server.settings.connect_master, **extra})
    return env


def spark_router_run(env: dict, app_id: str, app: Path, *options, app_args: tuple = ()) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "spark-router"), "run", "--app-id", app_id, *options,
               str(app), *app_args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_of(router, app_id: str, run_id: str | None = None) -> dict | None:
    """The app's run (its only one when run_id is None), once the router has it."""
    try:
        runs = router.get(f"/api/v1/apps/{app_id}/runs")
    except httpx.HTTPError:
        return None
    return next((run for run in runs if run_id is None or run["run_id"] == run_id), None)


def wait_for_run(router, app_id: str, run_id: str | None, stages: int) -> dict:
    return wait_until(lambda: (run := run_of(router, app_id, run_id)) and run["num_stages"] >= stages
                      and run["status"] != "running" and run, 60, f"{stages} stage(s) of {app_id}")


class MasterWatch:
    """Samples the master's JSON while a test runs: the most cores each application held."""

    def __init__(self, cluster):
        self.cluster, self.cores = cluster, defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.wait(0.5):
            try:
                apps = self.cluster.master()["activeapps"]
            except spark_cluster.ClusterError:
                continue
            for app in apps:
                self.cores[app["name"]] = max(self.cores[app["name"]], app["cores"])


def heartbeat_of(router) -> dict:
    """The cluster's Connect server's latest heartbeat, as the router stored it."""
    [server] = [s for s in router.get("/api/v1/dashboard/servers") if s["server_id"] == CLUSTER_SERVER_ID]
    return server["heartbeat"]


class HeartbeatWatch(MasterWatch):
    """Collects the server's heartbeats (as the router has them) while a test runs."""

    def __init__(self, router):
        super().__init__(None)
        self.router, self.seen = router, []

    def _sample(self):
        while not self._stop.wait(1):
            try:
                self.seen.append(heartbeat_of(self.router))
            except httpx.HTTPError:
                continue


def test_cluster_status_shows_workers_cores_and_apps(cluster, cluster_connect_server):
    status = spark_cluster_status(cluster)
    assert status["running"] and status["master_url"] == cluster.master_url
    assert status["workers_alive"] == 2 and status["cores"] == 2 and status["memory_mb"] == 2048
    assert all(w["state"] == "ALIVE" and w["cores"] == 1 for w in status["workers"])
    assert [app["name"] for app in status["apps"]] == ["Spark Connect server"]
    # The CLI prints the same, and `start` on a running cluster leaves it be.
    env = {**os.environ, "SPARK_ROUTER_STATE_DIR": str(cluster.settings.state_dir)}
    cli = [str(Path(sys.executable).parent / "spark-router"), "cluster"]
    shown = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "2 alive of 2 started" in shown.stdout and "'Spark Connect server'" in shown.stdout
    again = subprocess.run([*cli, "start"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0 and "already running" in again.stdout
    assert spark_cluster_status(cluster)["master_pid"] == status["master_pid"]


def spark_cluster_status(cluster) -> dict:
    return spark_cluster.status(cluster.settings)


def test_connect_server_takes_executors_from_the_cluster_and_gives_them_back(cluster, cluster_connect_server):
    server = cluster_connect_server
    environment = dict(server.rest("/environment")["sparkProperties"])
    assert environment["spark.dynamicAllocation.enabled"] == "true"
    assert environment["spark.dynamicAllocation.shuffleTracking.enabled"] == "true"
    assert environment["spark.executor.maxNumFailures"] == "1000"
    # The ceiling is what the cluster has room for: 2 workers of 1 core, executors of 1 core and 512m.
    assert environment["spark.dynamicAllocation.maxExecutors"] == "2"
    assert (environment["spark.executor.cores"], environment["spark.executor.memory"]) == ("1", "512m")
    wait_until(lambda: not executors_of(server), 90, "the warm-up's executors to go idle and be released")

    started = time.time()
    with MasterWatch(cluster) as watch, HeartbeatWatch(server.router) as beats:
        finish(connect_client(server, f"da.{uuid.uuid4().hex[:6]}", "run-da", keys=10, rounds=3))
    used = [e for e in executors_of(server, active_only=False)
            if datetime.strptime(e["addTime"], "%Y-%m-%dT%H:%M:%S.%f%Z").timestamp() >= started - 5]
    assert 1 <= len(used) <= 2, used
    assert all(e["totalCores"] == 1 for e in used)
    assert watch.cores["Spark Connect server"] >= 1
    # The listener's heartbeat said so too, with the ceiling the router's capacity rule reads.
    assert max(beat["executors"] for beat in beats.seen) >= 1
    assert {beat["max_executors"] for beat in beats.seen} == {2}
    assert all(beat["executor_cores"] == beat["executors"] for beat in beats.seen)  # 1 core each

    # Idle for the (test's short) timeouts: every executor goes back to the cluster.
    wait_until(lambda: not executors_of(server), 90, "the executors to be given back")
    wait_until(lambda: heartbeat_of(server.router)["executors"] == 0, 30, "a heartbeat with no executor")
    series = server.router.get("/api/v1/dashboard/executors", minutes=10)["servers"][CLUSTER_SERVER_ID]
    assert max(point["executors"] for point in series) >= 1  # the dashboard's chart of it
    removed = {e["id"]: e for e in executors_of(server, active_only=False)}
    assert all(removed[e["id"]].get("removeTime") for e in used), removed
    master = cluster.master()
    [app] = [a for a in master["activeapps"] if a["name"] == "Spark Connect server"]
    assert app["cores"] == 0 and master["coresused"] == 0


def test_concurrent_clients_and_a_standalone_run_are_attributed_as_on_local(cluster, cluster_connect_server):
    server, router = cluster_connect_server, cluster_connect_server.router
    tag = uuid.uuid4().hex[:6]
    clients = {f"etl.{tag}.{keys}": (f"run-{tag}-{keys}", keys) for keys in (10, 20, 30)}
    standalone_app = f"nightly.{tag}"
    with MasterWatch(cluster) as watch:
        standalone = spark_router_run(launcher_env(server), standalone_app, APPS / "standalone_shuffle.py",
                                      "--mode", "standalone", "--num-executors", "1", "--executor-memory",
                                      "512m")
        processes = [connect_client(server, app_id, run_id, keys)
                     for app_id, (run_id, keys) in clients.items()]
        for process in processes:
            finish(process)
        output = finish(standalone)
    assert "standalone run" in output and "succeeded" in output, output[-2000:]

    for app_id, (run_id, keys) in clients.items():
        run = wait_for_run(router, app_id, run_id, stages=2)
        assert run["mode"] == "connect" and run["num_stages"] == 2, run
        assert run["shuffle_write_records"] == 4 * keys, run
        assert run["num_tasks"] == 4 + 3 and run["executor_run_time_ms"] > 0
    run = wait_for_run(router, standalone_app, None, stages=1)
    assert (run["mode"], run["status"]) == ("standalone", "succeeded")
    assert run["shuffle_write_records"] == 100 and run["executor_run_time_ms"] > 0
    # It ran as its own application on the cluster, within the one executor of one core it asked for.
    assert watch.cores[standalone_app] == 1
    assert standalone_app in {a["name"] for a in cluster.master()["completedapps"]}
    servers = {s["server_id"]: s for s in router.get("/api/v1/servers")}
    assert servers[CLUSTER_SERVER_ID]["kind"] == "connect"


def worker_running_an_executor(cluster) -> int | None:
    """The pid of a worker whose process group holds an executor JVM (CoarseGrainedExecutorBackend)."""
    for pid in cluster.worker_pids:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                group = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
                command = (proc / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if group == pid and b"CoarseGrainedExecutorBackend" in command:
                return pid
    return None


def test_a_worker_killed_mid_run_fails_neither_the_server_nor_the_runs_history(cluster,
                                                                               cluster_connect_server):
    server, router = cluster_connect_server, cluster_connect_server.router
    app_id = f"slow.{uuid.uuid4().hex[:6]}"
    # Two tasks of 15 s each (a Python UDF sleeping a second per row).
    run = spark_router_run(launcher_env(server), app_id, APPS / "slow_udf.py", "--mode", "connect",
                           app_args=("--", "15"))
    def task_running() -> bool:
        if run.poll() is not None:
            raise AssertionError(f"the run ended before a worker was lost:\n{run.stdout.read()[-3000:]}")
        return any(e["activeTasks"] for e in executors_of(server))

    try:
        wait_until(task_running, 120, "a task running on an executor")
        victim = wait_until(lambda: worker_running_an_executor(cluster), 30, "the executor's worker")
        os.killpg(victim, signal.SIGKILL)  # the worker and its executor, as a lost node
        output = finish(run, timeout_s=300)
    finally:
        if run.poll() is None:
            run.kill()
        # The cluster gets its worker back for the tests after this one.
        cluster.worker_pids[:] = start_again(cluster)
    assert "RESULT " + str(sum(i * i for i in range(30))) in output, output[-3000:]
    assert "connect run" in output and "succeeded" in output and "falling back" not in output

    # The server lives on and still answers; the run's history is whole.
    assert connect_server.read_state(server.settings) is not None
    connect_server.warm_up(server.url, timeout_s=120)
    recorded = wait_for_run(router, app_id, None, stages=1)
    assert (recorded["mode"], recorded["status"]) == ("connect", "succeeded"), recorded
    assert recorded["executor_run_time_ms"] >= 15_000, recorded  # at least one whole 15 s task was counted
    servers = {s["server_id"]: s for s in router.get("/api/v1/servers")}
    assert servers[CLUSTER_SERVER_ID]["last_heartbeat_at"] is not None


def start_again(cluster) -> list[int]:
    state = spark_cluster.start(cluster.settings, progress=lambda msg: print(f"[cluster] {msg}"))
    return state.worker_pids
