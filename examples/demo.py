"""`make demo`: the whole product on embedded defaults, on this machine.

Starts the router (SQLite) and a local Spark Connect server with the listener, then runs the example apps
through `spark-router run` and shows where each went and why:

- the light app goes to Connect (new app, then within limits);
- the heavy app goes to Connect once (no history), spills, and goes standalone from then on;
- the app that uses sparkContext is flagged by the compatibility check and goes standalone directly;
- with the compatibility check bypassed (forced connect), it fails on Connect and falls back;
- a JVM app: one jar (compiled here with javac against `spark-router classpath`) runs on Connect as a JVM
  Connect client and standalone with spark-submit, with the same result; the jar's app that uses the
  SparkContext is flagged from its class files and goes standalone.

Everything lives under .state/demo/ in the repo (emptied at the start); both servers are stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".state" / "demo"
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("DEMO_ROUTER_PORT", "8765"))
URL = f"http://127.0.0.1:{PORT}"
APPS = REPO / "examples" / "apps"
JAR = REPO / "examples" / "jvm" / "build" / "spark-router-examples.jar"
JVM_LIGHT = "io.sparkrouter.examples.LightAggregation"
JVM_SPARK_CONTEXT = "io.sparkrouter.examples.UsesSparkContext"

ENV = {**os.environ, "SPARK_ROUTER_STATE_DIR": str(STATE), "SPARK_ROUTER_URL": URL,
       "SPARK_ROUTER_POLICY_FILE": str(REPO / "examples" / "demo-policy.yaml")}
for key in ("SPARK_ROUTER_DATABASE_URL", "SPARK_REMOTE"):
    ENV.pop(key, None)


def say(message: str) -> None:
    print(f"\n\033[1m== {message}\033[0m", flush=True)


def spark_router(*args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "spark-router"), *args], env=ENV, text=True,
                            stdout=subprocess.PIPE if quiet else None,
                            stderr=subprocess.STDOUT if quiet else None, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"spark-router {' '.join(args)} failed with exit code {result.returncode}")
    return result


def start_router() -> subprocess.Popen:
    with open(STATE / "router.log", "ab") as log:  # the router keeps its own copy of the descriptor
        process = subprocess.Popen([str(BIN / "spark-router"), "serve", "--port", str(PORT)], env=ENV,
                                   stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            if httpx.get(f"{URL}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the router exited; see {STATE / 'router.log'}")
        time.sleep(0.2)
    raise SystemExit(f"the router did not answer on {URL}; see {STATE / 'router.log'}")


def run(app_id: str, app: str, *extra: str) -> None:
    shown = os.path.relpath(app, REPO) if os.path.isabs(app) else app
    print(f"\n$ spark-router run --app-id {app_id} {' '.join(extra)} {shown}", flush=True)
    result = subprocess.run([str(BIN / "spark-router"), "run", "--app-id", app_id, *extra, str(APPS / app)],
                            env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    for line in result.stdout.splitlines():
        if line.startswith(("[spark-router]", "RESULT")):
            print("  " + line, flush=True)
    print(f"  exit code {result.returncode}", flush=True)


def build_jar() -> None:
    """The example JVM apps, compiled as an app's own build would (examples/jvm/build.sh)."""
    print("\n$ examples/jvm/build.sh   # javac -cp \"$(spark-router classpath)\" ...", flush=True)
    result = subprocess.run([str(REPO / "examples" / "jvm" / "build.sh")],
                            env={**ENV, "SPARK_ROUTER": str(BIN / "spark-router")}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    print("  " + result.stdout.strip().replace("\n", "\n  "), flush=True)
    if result.returncode != 0:
        raise SystemExit("building the example jar failed (a JDK 17 javac is needed)")


def summary() -> None:
    say("Run history (GET /api/v1/apps/{app}/runs)")
    for app in httpx.get(f"{URL}/api/v1/apps").json():
        if app["app_id"].startswith("spark-router."):
            continue
        print(f"\n{app['app_id']}:")
        for run in reversed(httpx.get(f"{URL}/api/v1/apps/{app['app_id']}/runs").json()):
            detail = httpx.get(f"{URL}/api/v1/runs/{run['run_id']}").json()
            rule = detail["decision"]["rule"] if detail["decision"] else "-"
            print(f"  {run['mode']:<10} {run['status']:<9} rule={rule:<22} stages={run['num_stages']:<3} "
                  f"task_time={run['executor_run_time_ms'] / 1000:.1f}s "
                  f"spill={run['disk_spilled_bytes'] >> 20}MiB")


def main() -> None:
    shutil.rmtree(STATE, ignore_errors=True)  # every demo tells the story from the first run
    STATE.mkdir(parents=True, exist_ok=True)
    say(f"Starting the router on {URL} (SQLite under {STATE})")
    router = start_router()
    try:
        say("Starting the local Spark Connect server with the listener")
        spark_router("connect-server", "start")
        time.sleep(6)  # a heartbeat or two: the router routes to Connect only when it hears the server

        say("A light app: Connect")
        run("demo.light_aggregation", "light_aggregation.py")
        run("demo.light_aggregation", "light_aggregation.py")
        say("A heavy app: Connect while it has no history, then standalone (its spill is over the threshold)")
        run("demo.heavy_shuffle", "heavy_shuffle.py")
        time.sleep(3)  # the listener's last batch
        run("demo.heavy_shuffle", "heavy_shuffle.py")
        say("An app that uses sparkContext: the check flags it, so it goes standalone without a Connect try")
        spark_router("check", str(APPS / "uses_spark_context.py"), check=False)
        run("demo.uses_spark_context", "uses_spark_context.py")
        say("The same app forced onto Connect: it fails there and falls back to standalone")
        run("demo.uses_spark_context", "uses_spark_context.py", "--mode", "connect")

        say("A JVM app: one jar, built once against Spark's API, on Connect (a JVM Connect client) and "
            "standalone")
        build_jar()
        run("demo.jvm_light_aggregation", str(JAR), "--class", JVM_LIGHT)
        run("demo.jvm_light_aggregation", str(JAR), "--class", JVM_LIGHT, "--mode", "standalone")
        say("The jar's app that uses the SparkContext: found in its class files, it goes standalone")
        spark_router("check", "--class", JVM_SPARK_CONTEXT, str(JAR), check=False)
        run("demo.jvm_uses_spark_context", str(JAR), "--class", JVM_SPARK_CONTEXT)
        time.sleep(3)
        summary()
        say("Why did the heavy app go standalone? (spark-router decide)")
        spark_router("decide", "--app-id", "demo.heavy_shuffle")
        say(f"Done. The API docs were at {URL}/docs while the demo ran.")
    finally:
        spark_router("connect-server", "stop", check=False)
        router.terminate()
        router.wait(15)


if __name__ == "__main__":
    main()
