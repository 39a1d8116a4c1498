"""`spark-router run` against the real router, the real Connect server and real spark-submit runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.client_runtime.test_launcher import s3_server  # noqa: F401  (the moto S3 server fixture)
from tests.support import REPO, running_jobs, wait_until

pytestmark = pytest.mark.spark
EXAMPLES = REPO / "examples" / "apps"
TEST_APPS = REPO / "tests" / "apps"


def launcher_env(router, connect_server, state_dir, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env.update({"SPARK_ROUTER_URL": router.url, "SPARK_ROUTER_CONNECT_URL": connect_server.url,
                "SPARK_ROUTER_STATE_DIR": str(state_dir), "SPARK_ROUTER_STANDALONE_MASTER": "local[2]",
                **extra})
    return env


SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")


def spark_router_run(env, app_id, app, *options, args=(), cwd=None,
                     timeout=400) -> subprocess.CompletedProcess:
    """`spark-router run` in `cwd` (default the state dir: a standalone run's files land there, as with
    spark-submit)."""
    command = [SPARK_ROUTER, "run", "--app-id", app_id, *options, str(app), *(["--", *args] if args else [])]
    return subprocess.run(command, env=env, cwd=cwd or env["SPARK_ROUTER_STATE_DIR"], capture_output=True,
                          text=True, timeout=timeout, check=False)


def result_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("RESULT"))


def runs_of(router, app_id) -> list[dict]:
    return sorted(router.get(f"/api/v1/apps/{app_id}/runs"), key=lambda r: r["created_at"])


def test_light_app_gives_identical_results_in_both_modes(router, connect_server, state_dir):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"light.{uuid.uuid4().hex[:6]}"
    on_connect = spark_router_run(env, app_id, EXAMPLES / "light_aggregation.py")
    assert on_connect.returncode == 0, on_connect.stderr[-3000:]
    assert "router: connect" in on_connect.stderr
    standalone = spark_router_run(env, app_id, EXAMPLES / "light_aggregation.py", "--mode", "standalone")
    assert standalone.returncode == 0, standalone.stderr[-3000:]
    assert result_line(on_connect.stdout) == result_line(standalone.stdout)

    def both_have_metrics():
        runs = runs_of(router, app_id)
        return len(runs) == 2 and all(r["num_stages"] > 0 for r in runs) and runs
    connect_run, standalone_run = wait_until(both_have_metrics, 30, "metrics of both runs")
    assert (connect_run["mode"], connect_run["status"]) == ("connect", "succeeded")
    assert (standalone_run["mode"], standalone_run["status"]) == ("standalone", "succeeded")
    assert connect_run["executor_run_time_ms"] > 0 and standalone_run["executor_run_time_ms"] > 0


def test_spark_context_app_falls_back_and_history_shows_both(router, connect_server, state_dir):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"sc.{uuid.uuid4().hex[:6]}"
    # Forced onto Connect: the compatibility check alone would have sent it standalone (next test).
    result = spark_router_run(env, app_id, EXAMPLES / "uses_spark_context.py", "--mode", "connect")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "falling back to standalone" in result.stderr
    assert "RESULT 332833500" in result.stdout
    failed, rerun = runs_of(router, app_id)
    assert (failed["mode"], failed["status"]) == ("connect", "failed")
    assert (rerun["mode"], rerun["status"]) == ("standalone", "succeeded")
    failed_detail = router.get(f"/api/v1/runs/{failed['run_id']}")
    assert failed_detail["failure_kind"] == "connect" and "sparkContext" in failed_detail["failure_message"]
    assert failed_detail["fell_back_to"] == rerun["run_id"]
    assert router.get(f"/api/v1/runs/{rerun['run_id']}")["decision"]["rule"] == "fallback"


def test_incompatible_app_goes_standalone_without_a_connect_try(router, connect_server, state_dir):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"sc.auto.{uuid.uuid4().hex[:6]}"
    result = spark_router_run(env, app_id, EXAMPLES / "uses_spark_context.py")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = runs_of(router, app_id)
    assert run["mode"] == "standalone" and run["status"] == "succeeded"
    decision = router.get(f"/api/v1/runs/{run['run_id']}")["decision"]
    assert decision["rule"] == "connect-incompatible"
    assert "uses_spark_context.py:7" in decision["reasons"][0]["message"]


def test_app_fetched_from_s3_runs(router, connect_server, state_dir, s3_server):  # noqa: F811
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="artifacts")
    s3.upload_file(str(EXAMPLES / "light_aggregation.py"), "artifacts", "apps/light.py")
    env = launcher_env(router, connect_server, state_dir, **s3_server)
    result = spark_router_run(env, "s3.light", "s3://artifacts/apps/light.py", "--mode", "connect")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result_line(result.stdout).startswith('RESULT [{"orders": 14286')


def processes_running(pattern: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if pattern in line and "ps -eo" not in line]


def test_server_killed_mid_run_completes_standalone_in_bounded_time(router, connect_server, state_dir):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"kill.{uuid.uuid4().hex[:6]}"
    command = [str(Path(sys.executable).parent / "spark-router"), "run", "--app-id", app_id, "--mode",
               "connect", "--connect-timeout", "5", str(TEST_APPS / "slow_udf.py"), "--", "15"]
    launcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in launcher.stdout:
            lines.append(line)
            if line.startswith("STARTED"):
                break
        wait_until(lambda: running_jobs(connect_server), 60, "the app's job to run on the server")
        killed_at = time.monotonic()
        os.killpg(connect_server.pid(), signal.SIGKILL)
        for line in launcher.stdout:
            lines.append(line)
            if "falling back to standalone" in line:
                detected_s = time.monotonic() - killed_at
        launcher.wait(300)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        connect_server.ensure_running()
    output = "".join(lines)
    print(f"Connect failure detected {detected_s:.1f} s after the server was killed")
    assert launcher.returncode == 0, output[-3000:]
    assert detected_s < 20, output[-3000:]
    assert "RESULT" in output
    failed, rerun = runs_of(router, app_id)
    assert (failed["status"], rerun["status"], rerun["mode"]) == ("failed", "succeeded", "standalone")
    assert router.get(f"/api/v1/runs/{failed['run_id']}")["failure_kind"] == "connect"
    assert processes_running(str(TEST_APPS / "slow_udf.py")) == []


def test_app_with_its_own_session_is_attributed_on_connect(router, connect_server, state_dir):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"own.{uuid.uuid4().hex[:6]}"
    result = spark_router_run(env, app_id, EXAMPLES / "own_session.py", "--mode", "connect")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT [Row(k=0, count=3334)" in result.stdout
    [run] = wait_until(lambda: (runs := runs_of(router, app_id)) and runs[0]["num_stages"] > 0 and runs, 30,
                       "the stages of an app that set no spark.router.* confs")
    assert run["mode"] == "connect" and run["status"] == "succeeded" and run["shuffle_write_records"] > 0


# ---------------------------------------------------------------------- fallback by outcome, cancel, cwd

def run_detail(router, run_id) -> dict:
    return router.get(f"/api/v1/runs/{run_id}")


@pytest.mark.parametrize("app, refusal, result", [
    ("word_lengths_spark_context.py", "[MASTER_URL_NOT_SET]", "RESULT 6500"),
    ("hive_orders.py", "[NOT_SUPPORTED_COMMAND_WITHOUT_HIVE_SUPPORT]", "RESULT 42.0"),
])
def test_unmodified_apps_that_connect_refuses_fall_back_and_succeed(router, connect_server, state_dir,
                                                                    tmp_path,
                                                                   app, refusal, result):
    """Apps written for spark-submit, which Spark Connect refuses in ways no output pattern of the old
    launcher named: each Connect run fails, the standalone rerun succeeds, and that makes the failure
    Connect's."""
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"refused.{uuid.uuid4().hex[:6]}"
    run = spark_router_run(env, app_id, TEST_APPS / app, "--mode", "connect", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert result in run.stdout and refusal in run.stdout  # the Connect run's error, then the rerun's result
    assert "falling back to standalone" in run.stderr and "counts as a Connect failure" in run.stderr
    failed, rerun = runs_of(router, app_id)
    assert (rerun["mode"], rerun["status"]) == ("standalone", "succeeded")
    detail = run_detail(router, failed["run_id"])
    assert (detail["mode"], detail["status"], detail["failure_kind"]) == ("connect", "failed", "connect")
    assert refusal in detail["failure_message"]  # what Connect said, kept
    assert detail["fell_back_to"] == rerun["run_id"]


def test_an_app_connect_refuses_every_time_goes_standalone_by_the_streak(router, connect_server, state_dir,
                                                                         tmp_path):
    """pyspark.mllib needs a SparkContext, which the compatibility check cannot see here: each auto run goes
    to Connect, fails, and succeeds standalone; after three, the streak sends the app standalone."""
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"mllib.{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        run = spark_router_run(env, app_id, TEST_APPS / "die_fairness_mllib.py", cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "RESULT [1000, 1000, 1000, 1000, 1000, 1000] p-value 1.0" in run.stdout
        assert "router: connect" in run.stderr and "compatibility check:" not in run.stderr
    runs = runs_of(router, app_id)
    assert [(r["mode"], r["status"]) for r in runs] == [("connect", "failed"),
                                                        ("standalone", "succeeded")] * 3
    for failed in runs[::2]:
        detail = run_detail(router, failed["run_id"])
        assert detail["failure_kind"] == "connect", detail
        assert "CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT" in detail["failure_message"]
    decided = subprocess.run([SPARK_ROUTER, "decide", "--app-id", app_id, "--json"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    decision = json.loads(decided.stdout)
    assert (decision["mode"], decision["rule"]) == ("standalone", "connect-failure-streak"), decision


def test_a_real_app_bug_runs_twice_and_is_an_app_failure(router, connect_server, state_dir, tmp_path):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"bug.{uuid.uuid4().hex[:6]}"
    run = spark_router_run(env, app_id, EXAMPLES / "failing_app.py", cwd=tmp_path)
    assert run.returncode == 1, run.stderr[-3000:]
    assert run.stdout.count("ValueError: bad input: expected 11 rows, found 10") == 2  # once in each mode
    assert "the standalone rerun failed too: the app failed, not Connect" in run.stderr
    failed, rerun = runs_of(router, app_id)
    assert [(r["mode"], r["status"]) for r in (failed, rerun)] == [("connect", "failed"),
                                                                   ("standalone", "failed")]
    assert run_detail(router, failed["run_id"])["failure_kind"] == "app"
    assert run_detail(router, rerun["run_id"])["failure_kind"] == "app"
    assert router.get(f"/api/v1/dashboard/apps/{app_id}")["connect_failure_streak"] == 0


def test_sigterm_to_spark_router_run_records_the_run_cancelled(router, connect_server, state_dir, tmp_path):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"cancel.{uuid.uuid4().hex[:6]}"
    launcher = subprocess.Popen([SPARK_ROUTER, "run", "--app-id", app_id, "--mode", "connect",
                                 str(TEST_APPS / "slow_udf.py"), "--", "60"], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in launcher.stdout:
            if line.startswith("STARTED"):
                break
        wait_until(lambda: running_jobs(connect_server), 60, "the app's job to run on the server")
        launcher.send_signal(signal.SIGTERM)  # what Airflow, systemd or a shell's kill sends
        output, _ = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 143, output[-3000:]
    assert "falling back" not in output
    [run] = runs_of(router, app_id)  # no standalone rerun
    detail = run_detail(router, run["run_id"])
    assert (detail["status"], detail["failure_kind"], detail["fell_back_to"]) == ("cancelled", None, None)
    assert router.get(f"/api/v1/dashboard/apps/{app_id}")["connect_failure_streak"] == 0


def test_a_relative_input_path_works_standalone_and_is_warned_about_on_connect(router, connect_server,
                                                                               state_dir,
                                                                              tmp_path):
    """As with spark-submit, the app runs where `spark-router run` was started: data/orders.csv is found by a
    standalone run. On Connect it resolves on the server, which has no such file: the launcher says so, the
    Connect run fails, the standalone rerun succeeds."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text("store,amount\na,10\nb,12\na,20\n")
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"relative.{uuid.uuid4().hex[:6]}"
    run = spark_router_run(env, app_id, TEST_APPS / "store_totals.py", args=["data/orders.csv"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RESULT [('a', 30), ('b', 12)]" in run.stdout
    assert "WARNING: relative paths resolve on the Connect server, not in " in run.stderr
    assert "data/orders.csv may not be found there" in run.stderr
    failed, rerun = runs_of(router, app_id)
    assert (failed["mode"], failed["status"], rerun["mode"], rerun["status"]) == \
        ("connect", "failed", "standalone", "succeeded")
