"""`spark-router restart-server`: pure parts without Spark, the drained restart on the real Connect server."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.ops import restart
from service.ops.ops_config import OpsSettings
from tests.support import REPO, running_jobs, server_env, wait_until

TEST_APPS = REPO / "tests" / "apps"
SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")


def activity(in_flight=0, running_jobs=0, active_operations=0, age=2.0, beat=True) -> dict:
    heartbeat = {"spark_app_id": "local-1", "running_jobs": running_jobs,
                 "active_operations": active_operations}
    return {"server": {"spark_app_id": "local-1"}, "last_heartbeat": heartbeat if beat else None,
            "heartbeat_age_s": age if beat else None, "in_flight_connect_runs": in_flight,
            "in_flight_run_ids": [f"run-{i}" for i in range(in_flight)]}


def test_idle_when_nobody_reports_work():
    assert restart.busy_reasons(activity(), []) == []


def test_busy_reasons_name_their_source():
    reasons = restart.busy_reasons(activity(in_flight=2, running_jobs=1, active_operations=3),
                                   ["1 active stage(s) in the Spark UI"])
    assert reasons == ["2 Connect run(s) in flight per the router (run-0, run-1)", "1 running job(s) per the "
                                                                                   "listener",
                       "3 active Connect operation(s) per the listener", "1 active stage(s) in the Spark UI"]


def test_a_stale_heartbeat_is_not_trusted_for_counts():
    assert restart.busy_reasons(activity(running_jobs=4, age=300), []) == []


def test_exit_cleanup_operations_are_not_work():
    assert restart._is_exit_cleanup({"state": "STARTED",
                                     "statement": "ml_command {\n  clean_cache {\n  }\n}"})
    assert not restart._is_exit_cleanup({"state": "STARTED", "statement": "sql { query: \"select 1\" }"})


@pytest.mark.parametrize("reported, configured, read", [
    ("http://10.0.0.5:36040", None, "http://10.0.0.5:36040"),     # the UI the server's listener reports
    ("http://10.0.0.5:36040", "http://ui.internal/", "http://ui.internal"),  # an explicit setting wins
    (None, None, "http://127.0.0.1:4040"),                         # neither: the settings' UI port
])
def test_the_idle_check_reads_the_ui_of_the_server(reported, configured, read):
    seen = []
    admin = SimpleNamespace(activity=lambda _server_id: {**activity(), "server": {"spark_app_id": "local-1",
                                                                                    "ui_url": reported}})
    coordinator = restart.RestartCoordinator(OpsSettings(connect_ui_url=configured), admin, backend=None,
                                             progress=lambda _m: None,
                                             rest=lambda url: seen.append(url) or [])
    assert coordinator._wait_for_idle(1) == (True, [])
    assert seen == [read]


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
        return SimpleNamespace(status=SimpleNamespace(observed_generation=7 if done else 6,
                                                      updated_replicas=1 if done else 0, available_replicas=1,
                                                      unavailable_replicas=0 if done else 1))


def test_kubernetes_backend_patches_restarted_at_and_waits_for_the_rollout(monkeypatch):
    warmed = []
    monkeypatch.setattr(restart, "wait_for_warm_up", lambda settings,
                        progress: warmed.append(settings.connect_url))
    monkeypatch.setattr(restart.time, "sleep", lambda _s: None)
    api = FakeAppsApi()
    settings = OpsSettings(kubernetes_namespace="spark", kubernetes_deployment="connect",
                           connect_url="sc://connect:15002")
    restart.KubernetesBackend(settings, progress=lambda _m: None, apps_api=api).restart()
    [(namespace, name, body)] = api.patches
    assert (namespace, name) == ("spark", "connect")
    assert "kubectl.kubernetes.io/restartedAt" in body["spec"]["template"]["metadata"]["annotations"]
    assert api.polls == 2 and warmed == ["sc://connect:15002"]


def test_command_backend_needs_a_command():
    with pytest.raises(restart.RestartError, match="SPARK_ROUTER_RESTART_COMMAND"):
        restart.CommandBackend(OpsSettings(), progress=print)


# ------------------------------------------------------------------------------------- the pool, no Spark

class FakePool:
    """The router's admin endpoints a (rolling) restart calls, over a pool of servers in memory."""

    def __init__(self, *server_ids, down=()):
        self.servers = {server_id: {"server_id": server_id, "connect_url": f"sc://{server_id}:15002",
                                    "draining": False, "up": server_id not in down,
                                    "spark_app_id": f"{server_id}-1"}
                        for server_id in server_ids}
        self.events: list[str] = []
        self.records: list[dict] = []
        self.on_poll = lambda: None  # what happens while a restart waits (a server going down...)
        self.busy_polls = 0  # a drained server's work ends after this many looks at it
        self.polls = 0

    def pool(self) -> list[dict]:
        return [{"server_id": s["server_id"], "connect_url": s["connect_url"], "draining": s["draining"],
                 "status": ("draining" if s["draining"] else "up") if s["up"] else "down",
                 "available": s["up"] and not s["draining"],
                 "unavailable_reason": None if s["up"] else "no heartbeat"} for s in self.servers.values()]

    def drain(self, server_id, draining=True):
        self.servers[server_id]["draining"] = draining
        self.events.append(f"{'drain' if draining else 'undrain'} {server_id}")
        return {}

    def activity(self, server_id):
        self.polls += 1
        self.on_poll()
        server = self.servers[server_id]
        busy = int(self.polls <= self.busy_polls)
        return {"server": {"spark_app_id": server["spark_app_id"], "ui_url": None},
                "last_heartbeat": {"spark_app_id": server["spark_app_id"], "running_jobs": busy,
                                   "active_operations": 0},
                "heartbeat_age_s": 1.0, "in_flight_connect_runs": busy, "in_flight_run_ids": ["run-1"] * busy}

    def record_restart(self, record):
        self.records.append(record)
        return record


class FakeBackend:
    name = "fake"

    def __init__(self, router: FakePool, settings: OpsSettings):
        self.router, self.server_id = router, settings.connect_server_id
        self.others_available_at_restart = None

    def restart(self):
        server = self.router.servers[self.server_id]
        self.router.events.append(f"restart {self.server_id} (others available: "
                                  f"{[s['server_id'] for s in self.router.pool() if s['available']]})")
        server["spark_app_id"] = server["spark_app_id"][:-1] + str(int(server["spark_app_id"][-1]) + 1)


def rolling(router: FakePool, tmp_path, window_s=5.0) -> int:
    settings = OpsSettings(state_dir=tmp_path, connect_server_id="a", restart_poll_s=0.01)
    return restart.RollingRestart(settings, router, lambda s: FakeBackend(router, s),
                                  progress=lambda _m: None, rest=lambda _url: []).run(window_s, force=False)


def test_a_rolling_restart_restarts_one_server_at_a_time_while_the_others_take_runs(tmp_path):
    router = FakePool("a", "b", "c")
    assert rolling(router, tmp_path) == restart.RESTARTED
    assert router.events == [
        "drain a", "restart a (others available: ['b', 'c'])", "undrain a",
        "drain b", "restart b (others available: ['a', 'c'])", "undrain b",
        "drain c", "restart c (others available: ['a', 'b'])", "undrain c"]
    assert [(r["server_id"], r["outcome"]) for r in router.records] == [("a", "restarted"),
                                                                        ("b", "restarted"),
                                                                        ("c", "restarted")]


def test_a_rolling_restart_never_drains_the_last_server_that_can_take_runs(tmp_path):
    router = FakePool("a", "b", down=("b",))  # b is down: a is the last one up
    assert rolling(router, tmp_path) == restart.SKIPPED
    assert "drain a" not in router.events and not any(e.startswith("restart") for e in router.events)
    [record] = router.records
    assert record["server_id"] == "a" and record["outcome"] == "skipped" and "last one" in record["message"]
    assert rolling(FakePool("solo"), tmp_path) == restart.SKIPPED  # a pool of one: never drained


def test_a_rolling_restart_undrains_and_skips_when_the_other_server_goes_down_while_it_waits(tmp_path):
    router = FakePool("a", "b")
    router.busy_polls = 10

    def b_goes_down():
        if router.polls == 3:  # a is drained and busy
            router.servers["b"]["up"] = False
    router.on_poll = b_goes_down
    assert rolling(router, tmp_path) == restart.SKIPPED
    assert router.events[:2] == ["drain a", "undrain a"]  # a was drained, then given back, never restarted
    assert router.records[0]["outcome"] == "skipped"
    assert "no other Connect server" in router.records[0]["message"]
    assert not any(e.startswith("restart") for e in router.events)


def test_a_rolling_restart_fails_when_a_server_fails(tmp_path):
    router = FakePool("a", "b")

    class Broken(FakeBackend):
        def restart(self):
            raise restart.RestartError("the command exited 1")

    settings = OpsSettings(state_dir=tmp_path, connect_server_id="a", restart_poll_s=0.01)
    code = restart.RollingRestart(settings, router,
                                  lambda s: (Broken if s.connect_server_id == "a" else FakeBackend)(
        router, s), progress=lambda _m: None, rest=lambda _url: []).run(5.0, force=False)
    assert code == restart.FAILED
    assert [(r["server_id"], r["outcome"]) for r in router.records] == [("a", "failed"), ("b", "restarted")]
    assert router.servers["a"]["draining"] is False  # undrained after its failure


def test_server_settings_name_each_servers_deployment_command_and_ui(tmp_path):
    settings = OpsSettings(state_dir=tmp_path, connect_server_id="a", connect_url="sc://a:15002",
                           connect_ui_url="http://a-ui:4040", kubernetes_deployment="connect-a",
                           kubernetes_deployments={"b": "connect-b"}, restart_command="systemctl restart "
                                                                                   "spark@{server_id}")
    default = restart.server_settings(settings, "a")
    assert (default.kubernetes_deployment, default.connect_url, default.connect_ui_url) == (
        "connect-a", "sc://a:15002", "http://a-ui:4040")
    other = restart.server_settings(settings, "b", "sc://b:15002")
    assert (other.connect_server_id, other.kubernetes_deployment, other.connect_url) == ("b", "connect-b",
                                                                                         "sc://b:15002")
    assert other.connect_ui_url is None and other.restart_command == "systemctl restart spark@b"
    assert other.connect_server_dir == tmp_path / "connect-servers" / "b" / "connect-server"
    unknown = restart.server_settings(settings, "c", "sc://c:15002")
    with pytest.raises(restart.RestartError, match="SPARK_ROUTER_KUBERNETES_DEPLOYMENTS"):
        restart.KubernetesBackend(unknown, progress=lambda _m: None, apps_api=FakeAppsApi()).restart()


# ------------------------------------------------------------------------------------------ real server


class SlowClient:
    """`spark-router run` of a slow app in the background; its output is read as it comes."""

    def __init__(self, env, connect_server, seconds: int):
        self.process = subprocess.Popen([SPARK_ROUTER, "run", "--app-id", f"slow.{uuid.uuid4().hex[:6]}",
                                         "--mode", "connect", "--no-fallback", str(TEST_APPS / "slow_udf.py"),
                                         "--", str(seconds)],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()
        wait_until(lambda: any(line.startswith("STARTED") for line in self.lines), 60,
                   "the slow app to start")
        wait_until(lambda: running_jobs(connect_server), 60, "the slow app's job to run")

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
    client = SlowClient(env, connect_server, seconds=12)
    restarted = subprocess.run([SPARK_ROUTER, "restart-server", "--window", "240"], env=env,
                               capture_output=True, text=True, timeout=400, check=False)
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
                            str(REPO / "examples" / "apps" / "light_aggregation.py")], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert light.returncode == 0 and "RESULT" in light.stdout, light.stderr[-2000:]


@pytest.mark.spark
def test_restart_is_skipped_when_work_outlasts_the_window(router, connect_server, state_dir):
    env = server_env(router, connect_server, state_dir)
    before = current_spark_app(router)
    client = SlowClient(env, connect_server, seconds=20)
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
    """The session's server runs on free ports, not the defaults, and restart-server is told neither: it
    starts the server again on the port and UI port it ran on (its state file), and judges idleness through
    the UI its listener reports."""
    from service.ops import connect_server as local_server

    settings = connect_server.settings
    env = server_env(router, connect_server, state_dir)
    del env["SPARK_ROUTER_CONNECT_PORT"], env["SPARK_ROUTER_CONNECT_UI_PORT"]  # the defaults: 15002, 4040
    wait_until(lambda: current_spark_app(router), 30, "a heartbeat")
    before = current_spark_app(router)
    [server] = [s for s in router.get("/api/v1/servers") if s["server_id"] == "connect-test"]
    assert server["ui_url"].endswith(f":{settings.connect_ui_port}"), server
    restarted = subprocess.run([SPARK_ROUTER, "restart-server", "--window", "60"], env=env,
                               capture_output=True, text=True, timeout=400, check=False)
    assert restarted.returncode == 0, restarted.stdout[-3000:] + restarted.stderr[-2000:]
    # The idle check read the server's own UI, not the default one.
    assert f"the Spark UI at http://127.0.0.1:{settings.connect_ui_port}\n" in restarted.stdout
    assert ":4040" not in restarted.stdout
    state = local_server.read_state(settings)
    assert (state.port, state.ui_port) == (settings.connect_port, settings.connect_ui_port)
    assert current_spark_app(router) != before  # the listener of the new application reports
