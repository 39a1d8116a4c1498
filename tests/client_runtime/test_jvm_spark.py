"""JVM apps through `spark-router run` against the real router, the session's Connect server and real
spark-submit runs: one jar, both modes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.client_runtime.test_launcher import s3_server  # noqa: F401  (the moto S3 server fixture)
from tests.client_runtime.test_launcher_spark import launcher_env, result_line, runs_of
from tests.support import REPO, wait_until

pytestmark = pytest.mark.spark
SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")


def run_jar(env, app_id, jar, main_class, *options, args=(), timeout=400) -> subprocess.CompletedProcess:
    command = [SPARK_ROUTER, "run", "--app-id", app_id, "--class", main_class, *options, str(jar), "--",
               *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_one_jar_gives_the_same_result_in_both_modes_with_a_java_udf(router, connect_server, state_dir,
                                                                     jvm_apps):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"jvm.light.{uuid.uuid4().hex[:6]}"
    on_connect = run_jar(env, app_id, jvm_apps.jar, jvm_apps.LIGHT, args=["7000"])
    assert on_connect.returncode == 0, on_connect.stdout[-3000:] + on_connect.stderr[-3000:]
    assert "router: connect" in on_connect.stderr and f"java {jvm_apps.LIGHT}" in on_connect.stderr
    standalone = run_jar(env, app_id, jvm_apps.jar, jvm_apps.LIGHT, "--mode", "standalone", args=["7000"])
    assert standalone.returncode == 0, standalone.stdout[-3000:] + standalone.stderr[-3000:]
    # The Java UDF ran on the server (its class came with the jar) and in the standalone application alike.
    assert result_line(on_connect.stdout) == result_line(standalone.stdout)
    assert result_line(on_connect.stdout).startswith('RESULT [{"orders": 1000, "revenue": 49500, "store": 0}')

    def both_have_metrics():
        runs = runs_of(router, app_id)
        return len(runs) == 2 and all(r["num_stages"] > 0 for r in runs) and runs
    connect_run, standalone_run = wait_until(both_have_metrics, 30, "metrics of both runs")
    assert (connect_run["mode"], connect_run["status"]) == ("connect", "succeeded")
    assert connect_run["input_records"] == 7000
    assert (standalone_run["mode"], standalone_run["status"], standalone_run["input_records"]) == (
        "standalone", "succeeded", 7000)


def test_a_python_and_a_jvm_app_at_once_are_attributed_apart(router, connect_server, state_dir, jvm_apps):
    """Both on the shared server at the same time; each run's stages are its own (the Python app reads 12
    rows, the JVM app 18)."""
    env = launcher_env(router, connect_server, state_dir)
    tag = uuid.uuid4().hex[:6]
    python_id, jvm_id = f"both.python.{tag}", f"both.jvm.{tag}"
    commands = [[SPARK_ROUTER, "run", "--app-id", python_id, "--mode", "connect",
                 str(REPO / "tests" / "apps" / "slow_udf.py"), "--", "6"],
                [SPARK_ROUTER, "run", "--app-id", jvm_id, "--mode", "connect", "--class", jvm_apps.SLOW,
                 str(jvm_apps.jar), "--", "6"]]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
                 for command in commands]
    outputs = [process.communicate(timeout=400)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    assert "RESULT 506" in outputs[0] and "RESULT 1785" in outputs[1]  # sums of squares of 0..11 and 0..17

    def attributed():
        runs = {app_id: runs_of(router, app_id) for app_id in (python_id, jvm_id)}
        done = all(len(r) == 1 and r[0]["num_stages"] > 0 for r in runs.values())
        return done and {app_id: r[0] for app_id, r in runs.items()}
    runs = wait_until(attributed, 30, "the stages of both runs")
    assert runs[python_id]["input_records"] == 12 and runs[jvm_id]["input_records"] == 18
    assert all(run["mode"] == "connect" and run["status"] == "succeeded" for run in runs.values())
    # They did run at the same time: their jobs' spans on the server overlap.
    python_run, jvm_run = runs[python_id], runs[jvm_id]
    assert python_run["first_stage_at"] < jvm_run["last_stage_at"]
    assert jvm_run["first_stage_at"] < python_run["last_stage_at"]


def test_a_jar_that_uses_the_spark_context_is_checked_and_goes_standalone(router, connect_server, state_dir,
                                                                           jvm_apps):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"jvm.sc.{uuid.uuid4().hex[:6]}"
    result = run_jar(env, app_id, jvm_apps.jar, jvm_apps.USES_SPARK_CONTEXT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "RESULT 332833500" in result.stdout
    [run] = runs_of(router, app_id)
    assert (run["mode"], run["status"]) == ("standalone", "succeeded")
    decision = router.get(f"/api/v1/runs/{run['run_id']}")["decision"]
    assert decision["rule"] == "connect-incompatible"
    assert "UsesSparkContext.java:21 io.sparkrouter.examples.UsesSparkContext.main uses" in \
        decision["reasons"][0]["message"]
    # The light app of the same jar is checked on its own: nothing found, it goes to Connect.
    light_id = f"jvm.light.same-jar.{uuid.uuid4().hex[:6]}"
    light = run_jar(env, light_id, jvm_apps.jar, jvm_apps.LIGHT, args=["700"])
    assert light.returncode == 0 and "router: connect" in light.stderr, light.stderr[-3000:]


def test_a_jar_forced_onto_connect_fails_there_and_falls_back(router, connect_server, state_dir, jvm_apps):
    env = launcher_env(router, connect_server, state_dir)
    app_id = f"jvm.sc.forced.{uuid.uuid4().hex[:6]}"
    result = run_jar(env, app_id, jvm_apps.jar, jvm_apps.USES_SPARK_CONTEXT, "--mode", "connect")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "falling back to standalone" in result.stderr and "RESULT 332833500" in result.stdout
    failed, rerun = runs_of(router, app_id)
    assert (failed["mode"], failed["status"], rerun["mode"], rerun["status"]) == (
        "connect", "failed", "standalone", "succeeded")
    detail = router.get(f"/api/v1/runs/{failed['run_id']}")
    assert detail["failure_kind"] == "connect" and detail["fell_back_to"] == rerun["run_id"]
    assert "UNSUPPORTED_CONNECT_FEATURE.SESSION_SPARK_CONTEXT" in detail["failure_message"]


def test_a_jar_fetched_from_s3_runs_on_connect(router, connect_server, state_dir, jvm_apps,
                                               s3_server):  # noqa: F811
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="jars")
    s3.upload_file(str(jvm_apps.jar), "jars", "apps/etl-1.0.jar")
    env = launcher_env(router, connect_server, state_dir, **s3_server)
    result = run_jar(env, "s3.jvm.light", "s3://jars/apps/etl-1.0.jar", jvm_apps.LIGHT, "--mode", "connect",
                     args=["7000"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result_line(result.stdout).startswith('RESULT [{"orders": 1000, "revenue": 49500, "store": 0}')
