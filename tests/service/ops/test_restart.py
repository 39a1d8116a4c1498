"""`spark-router restart-server`: pure parts without Spark, the drained restart on the real Connect server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from client_runtime.settings import Settings
from service.ops import restart
from tests.support import REPO, wait_until

TEST_APPS = REPO / "tests" / "apps"
SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")


def activity(in_flight=0, running_jobs=0, active_operations=0, age=2.0, beat=True) -> dict:
    heartbeat = {"spark_app_id": "local-1", "running_jobs": running_jobs, "active_operations": active_operations}
    return {"server": {"spark_app_id": "local-1"}, "last_heartbeat": heartbeat if beat else None,
            "heartbeat_age_s": age if beat else None, "in_flight_connect_runs": in_flight,
            "in_flight_run_ids": [f"run-{i}" for i in range(in_flight)]}


def test_idle_when_nobody_reports_work():
    assert restart.busy_reasons(activity(), []) == []


def test_busy_reasons_name_their_source():
    reasons = restart.busy_reasons(activity(in_flight=2, running_jobs=1, active_operations=3),
                                   ["1 active stage(s) in the Spark UI"])
    assert reasons == ["2 Connect run(s) in flight per the router (run-0, run-1)", "1 running job(s) per the listener",
                       "3 active Connect operation(s) per the listener", "1 active stage(s) in the Spark UI"]


def test_a_stale_heartbeat_is_not_trusted_for_counts():
    assert restart.busy_reasons(activity(running_jobs=4, age=300), []) == []


def test_exit_cleanup_operations_are_not_work():
    assert restart._is_exit_cleanup({"state": "STARTED", "statement": "ml_command {\n  clean_cache {\n  }\n}"})
    assert not restart._is_exit_cleanup({"state": "STARTED", "statement": "sql { query: \"select 1\" }"})


class FakeAppsApi:
    """The two calls of kubernetes.client.AppsV1Api the backend makes, answering like a Deployment that
    rolls out over two polls."""

    def __init__(self):
        self.patches, self.polls = [], 0

    def patch_namespaced_deployment(self, name, namespace, body):
        self.patches.append((namespace, name, body))
        return SimpleNamespace(metadata=SimpleNamespace(generation=7), spec=SimpleNamespace(replicas=1))

    def read_namespaced_deployment_status(self, name, namespace):
        self.polls += 1
        done = self.polls >= 2
        return SimpleNamespace(status=SimpleNamespace(observed_generation=7 if done else 6, updated_replicas=1 if done else 0,
                                                      available_replicas=1, unavailable_replicas=0 if done else 1))


def test_kubernetes_backend_patches_restarted_at_and_waits_for_the_rollout(monkeypatch):
    warmed = []
    monkeypatch.setattr(restart, "wait_for_warm_up", lambda settings, progress: warmed.append(settings.connect_url))
    monkeypatch.setattr(restart.time, "sleep", lambda _s: None)
    api = FakeAppsApi()
    settings = Settings(kubernetes_namespace="spark", kubernetes_deployment="connect", connect_url="sc://connect:15002")
    restart.KubernetesBackend(settings, progress=lambda _m: None, apps_api=api).restart()
    [(namespace, name, body)] = api.patches
    assert (namespace, name) == ("spark", "connect")
    assert "kubectl.kubernetes.io/restartedAt" in body["spec"]["template"]["metadata"]["annotations"]
    assert api.polls == 2 and warmed == ["sc://connect:15002"]


def test_command_backend_needs_a_command():
    with pytest.raises(restart.RestartError, match="SPARK_ROUTER_RESTART_COMMAND"):
        restart.CommandBackend(Settings(), progress=print)


# ------------------------------------------------------------------------------------------ real server

def server_env(router, connect_server, state_dir) -> dict:
    settings = connect_server.settings
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env.update({"SPARK_ROUTER_URL": router.url, "SPARK_ROUTER_STATE_DIR": str(state_dir),
                "SPARK_ROUTER_CONNECT_URL": connect_server.url, "SPARK_ROUTER_CONNECT_PORT": str(settings.connect_port),
                "SPARK_ROUTER_CONNECT_UI_PORT": str(settings.connect_ui_port),
                "SPARK_ROUTER_CONNECT_SERVER_ID": settings.connect_server_id, "SPARK_ROUTER_RESTART_POLL_S": "1"})
    return env


class SlowClient:
    """`spark-router run` of a slow app in the background; its output is read as it comes."""

    def __init__(self, env, seconds: int):
        self.process = subprocess.Popen([SPARK_ROUTER, "run", "--app-id", f"slow.{uuid.uuid4().hex[:6]}", "--mode",
                                         "connect", "--no-fallback", str(TEST_APPS / "slow_udf.py"), "--", str(seconds)],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()
        wait_until(lambda: any(line.startswith("STARTED") for line in self.lines), 60, "the slow app to start")
        time.sleep(3)  # its job is running

    def finish(self, timeout_s: float) -> tuple[int, str]:
        self.process.wait(timeout_s)
        self.reader.join(10)
        return self.process.returncode, "".join(self.lines)


def current_spark_app(router) -> str:
    return next(s for s in router.get("/api/v1/servers") if s["server_id"] == "connect-test")["spark_app_id"]


@pytest.mark.spark
def test_restart_waits_for_the_running_job_then_serves_again(router, connect_server, state_dir):
    env = server_env(router, connect_server, state_dir)
    wait_until(lambda: current_spark_app(router), 30, "a heartbeat")
    before = current_spark_app(router)
    client = SlowClient(env, seconds=12)
    restarted = subprocess.run([SPARK_ROUTER, "restart-server", "--window", "240"], env=env, capture_output=True,
                               text=True, timeout=400, check=False)
    code, client_output = client.finish(60)
    assert code == 0, client_output[-2000:]  # the job was not cut off
    assert restarted.returncode == 0, restarted.stdout[-3000:] + restarted.stderr[-2000:]
    assert "waiting:" in restarted.stdout and "answered" not in restarted.stderr
    assert current_spark_app(router) != before
    [latest, *_] = router.get("/api/v1/restarts", server_id="connect-test")
    assert latest["outcome"] == "restarted" and latest["waited_s"] >= 3 and latest["ready_at"]
    [server] = [s for s in router.get("/api/v1/servers") if s["server_id"] == "connect-test"]
    assert server["draining"] is False
    # It serves: a client run on the restarted server.
    light = subprocess.run([SPARK_ROUTER, "run", "--app-id", "after.restart", "--mode", "connect",
                            str(REPO / "examples" / "apps" / "light_aggregation.py")], env=env, capture_output=True,
                           text=True, timeout=120, check=False)
    assert light.returncode == 0 and "RESULT" in light.stdout, light.stderr[-2000:]


@pytest.mark.spark
def test_restart_is_skipped_when_work_outlasts_the_window(router, connect_server, state_dir):
    env = server_env(router, connect_server, state_dir)
    before = current_spark_app(router)
    client = SlowClient(env, seconds=20)
    skipped = subprocess.run([SPARK_ROUTER, "restart-server", "--window", "4"], env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    code, client_output = client.finish(120)
    assert skipped.returncode == 3, skipped.stdout[-3000:]
    assert "not restarted" in skipped.stdout
    assert code == 0, client_output[-2000:]
    assert current_spark_app(router) == before
    latest = router.get("/api/v1/restarts", server_id="connect-test")[0]
    assert latest["outcome"] == "skipped" and "still busy" in latest["message"]
    assert not any(s["draining"] for s in router.get("/api/v1/servers"))


@pytest.mark.spark
def test_a_local_restart_comes_back_on_the_ports_the_server_ran_on(router, connect_server, state_dir):
    """The session's server runs on free ports, not the defaults, and restart-server is told neither: it starts
    the server again on the port and UI port it ran on (its state file), and judges idleness through the UI
    its listener reports."""
    from service.ops import connect_server as local_server

    settings = connect_server.settings
    env = server_env(router, connect_server, state_dir)
    del env["SPARK_ROUTER_CONNECT_PORT"], env["SPARK_ROUTER_CONNECT_UI_PORT"]  # the defaults: 15002, 4040
    wait_until(lambda: current_spark_app(router), 30, "a heartbeat")
    before = current_spark_app(router)
    [server] = [s for s in router.get("/api/v1/servers") if s["server_id"] == "connect-test"]
    assert server["ui_url"].endswith(f":{settings.connect_ui_port}"), server
    restarted = subprocess.run([SPARK_ROUTER, "restart-server", "--window", "60"], env=env, capture_output=True,
                               text=True, timeout=400, check=False)
    assert restarted.returncode == 0, restarted.stdout[-3000:] + restarted.stderr[-2000:]
    assert "REST API" not in restarted.stdout  # the idle check reached the server's own UI
    state = local_server.read_state(settings)
    assert (state.port, state.ui_port) == (settings.connect_port, settings.connect_ui_port)
    assert current_spark_app(router) != before  # the listener of the new application reports
