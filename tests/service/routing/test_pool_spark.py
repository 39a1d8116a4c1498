"""A pool of two real Connect servers (the shared one and a second one): runs spread over both, a silent
server gets no runs, a pinned app stays on its server, and a rolling restart while runs keep arriving sends
none of them standalone for want of a server and kills no running work."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import REPO, server_env, wait_until

pytestmark = pytest.mark.spark
SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")
LIGHT = REPO / "examples" / "apps" / "light_aggregation.py"
SLOW = REPO / "tests" / "apps" / "slow_udf.py"
# Rules that send a run standalone because no Connect server could take it.
FOR_WANT_OF_A_SERVER = {"server-draining", "server-unhealthy", "over-capacity"}


@pytest.fixture(scope="module", autouse=True)
def pool(router, connect_server, second_connect_server):
    """Both servers up and taking runs; afterwards the second one is retired, so that later tests see one."""
    yield connect_server, second_connect_server
    second_connect_server.retire()



def available(router) -> set[str]:
    return {s["server_id"] for s in router.get("/api/v1/pool") if s["available"]}


def both_up(router, connect_server, second) -> None:
    for server in (connect_server, second):
        server.ensure_running()
    wanted = {connect_server.settings.connect_server_id, second.server_id}
    wait_until(lambda: wanted <= available(router), 60, "both servers to take runs")


class Run:
    """`spark-router run` in the background."""

    def __init__(self, env, app_id: str, app: Path, *args: str):
        self.app_id = app_id
        self.process = subprocess.Popen([SPARK_ROUTER, "run", "--app-id", app_id, str(app),
                                         *(["--", *args] if args
                                                                                               else [])],
                                        env=env, cwd=env["SPARK_ROUTER_STATE_DIR"], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.output = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.output += line

    def finish(self, timeout_s: float = 300) -> int:
        self.process.wait(timeout_s)
        self.reader.join(10)
        return self.process.returncode


def first_run(router, app_id: str) -> dict:
    """The app's first run with its decision and where its stages ran (the listener's server id)."""
    [run, *_] = sorted(router.get(f"/api/v1/apps/{app_id}/runs"), key=lambda r: r["created_at"])
    detail = router.get(f"/api/v1/dashboard/runs/{run['run_id']}")
    detail["ran_on"] = {stage["server_id"] for stage in detail["stages"]}
    return detail


def run_together(env, app_ids, app=LIGHT) -> list[Run]:
    runs = [Run(env, app_id, app) for app_id in app_ids]
    for run in runs:
        assert run.finish() == 0, run.output[-3000:]
    return runs


def test_new_apps_spread_over_both_servers(router, pool, state_dir):
    connect_server, second = pool
    both_up(router, connect_server, second)
    env = server_env(router, connect_server, state_dir, SPARK_ROUTER_STANDALONE_MASTER="local[1]")
    app_ids = [f"pool.new.{uuid.uuid4().hex[:6]}" for _ in range(2)]
    run_together(env, app_ids)
    runs = [first_run(router, app_id) for app_id in app_ids]
    assert {run["server_id"] for run in runs} == {connect_server.settings.connect_server_id, second.server_id}
    for run in runs:  # each ran where it was placed: its stages came from that server's listener
        wait_until(lambda run=run: first_run(router, run["app_id"])["ran_on"], 30, "the run's stages")
        assert first_run(router, run["app_id"])["ran_on"] == {run["server_id"]}
        assert run["mode"] == "connect" and run["status"] == "succeeded" and run["fell_back_to"] is None


def test_a_pinned_app_stays_on_its_server(router, pool, state_dir):
    connect_server, second = pool
    both_up(router, connect_server, second)
    env = server_env(router, connect_server, state_dir, SPARK_ROUTER_STANDALONE_MASTER="local[1]")
    app_id = f"pool.pinned.{uuid.uuid4().hex[:6]}"
    pin = httpx.put(f"{router.url}/api/v1/admin/apps/{app_id}/pin",
                    json={"mode": "connect", "server_id": second.server_id, "reason": "test"}, timeout=10)
    assert pin.status_code == 200, pin.text
    try:
        run_together(env, [app_id])
        run_together(env, [app_id])  # an idle pool would place a free app on the default server (a tie)
        runs = router.get(f"/api/v1/apps/{app_id}/runs")
        assert [run["server_id"] for run in runs] == [second.server_id] * 2
        wait_until(lambda: first_run(router, app_id)["ran_on"], 30, "the run's stages")
        assert first_run(router, app_id)["ran_on"] == {second.server_id}
    finally:
        httpx.delete(f"{router.url}/api/v1/admin/apps/{app_id}/pin", timeout=10)


@pytest.mark.timeout(1800)  # two restarts on a shared two-core machine
def test_a_rolling_restart_while_runs_arrive_sends_none_standalone_and_kills_nothing(router, pool, state_dir,
                                                                                    tmp_path):
    connect_server, second = pool
    both_up(router, connect_server, second)
    env = server_env(router, connect_server, state_dir, SPARK_ROUTER_STANDALONE_MASTER="local[1]")
    before = {s["server_id"]: s["spark_app_id"] for s in router.get("/api/v1/servers")}
    tag = uuid.uuid4().hex[:6]
    # Work in flight on both servers when the restart begins: the drain must wait for it, not kill it.
    slow = [Run(env, f"pool.slow{i}.{tag}", SLOW, "8") for i in range(2)]
    wait_until(lambda: all("STARTED" in run.output for run in slow), 120, "the slow runs to start")
    log = tmp_path / "restart-server.log"
    with open(log, "w") as out:
        rolling = subprocess.Popen([SPARK_ROUTER, "restart-server", "--rolling", "--window", "240"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, text=True)
    arriving: list[Run] = []
    while rolling.poll() is None:  # a steady stream of runs, one after the other (the machine has two cores)
        arriving.append(Run(env, f"pool.stream{len(arriving)}.{tag}", LIGHT, "1000"))
        wait_until(lambda: arriving[-1].process.poll() is not None or rolling.poll() is not None, 600,
                   "the last run or the rolling restart to end")
    rolled = log.read_text()
    print(rolled)
    assert rolling.returncode == 0, rolled[-4000:]
    for run in slow + arriving:
        assert run.finish() == 0, run.output[-3000:]
    assert len(arriving) >= 5, rolled[-2000:]
    for run in slow + arriving:
        detail = first_run(router, run.app_id)
        assert detail["decision"]["rule"] not in FOR_WANT_OF_A_SERVER, (run.app_id, detail["decision"])
        assert detail["mode"] == "connect" and detail["status"] == "succeeded"
        assert detail["fell_back_to"] is None
    assert {first_run(router, run.app_id)["server_id"] for run in slow} == {
        connect_server.settings.connect_server_id, second.server_id}  # the drains waited for both
    # Both servers were restarted, one at a time: each is a new Spark application now.
    restarts = {r["server_id"]: r for r in router.get("/api/v1/restarts", limit=2)}
    assert {server: r["outcome"] for server, r in restarts.items()} == {
        connect_server.settings.connect_server_id: "restarted", second.server_id: "restarted"}
    first, then = sorted(restarts.values(), key=lambda r: r["requested_at"])
    assert first["finished_at"] <= then["requested_at"]
    after = {s["server_id"]: s["spark_app_id"] for s in router.get("/api/v1/servers")}
    assert all(after[server] != before[server] for server in restarts)
    assert not any(s["draining"] for s in router.get("/api/v1/pool"))


def test_a_server_whose_heartbeat_stops_gets_no_runs_and_the_other_takes_them(router, pool, state_dir):
    connect_server, second = pool
    both_up(router, connect_server, second)
    env = server_env(router, connect_server, state_dir, SPARK_ROUTER_STANDALONE_MASTER="local[1]")
    pid = second.pid()
    os.kill(pid, signal.SIGSTOP)  # frozen: its listener sends nothing, its port answers nothing
    try:
        wait_until(lambda: second.server_id not in available(router), 90, "the router to see it silent")
        app_ids = [f"pool.silent.{uuid.uuid4().hex[:6]}" for _ in range(2)]
        run_together(env, app_ids)
        for app_id in app_ids:
            run = first_run(router, app_id)
            assert run["server_id"] == connect_server.settings.connect_server_id and run["mode"] == "connect"
            assert run["fell_back_to"] is None
        os.killpg(pid, signal.SIGKILL)  # the last test: it need not come back, nor report once more
    finally:
        with contextlib.suppress(ProcessLookupError):  # after a failure: retire() stops it
            os.kill(pid, signal.SIGCONT)
