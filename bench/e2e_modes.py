"""The same light app through `spark-router run` on Connect (warm server) and standalone, interleaved
(target: Connect >= 6x faster), and the router + launcher overhead over a bare Connect client run
(target <= 50 ms).

The overhead is measured over more runs (bare and auto alternately, --pairs) and reported as the median of
each pair's difference: a run on a Connect server varies by more than the overhead being measured.

Then a light JVM app, the same jar both ways (examples/jvm: LightAggregation, with a Java UDF), interleaved
(--jar-runs), and the JVM Connect client's start: `java` with the Connect client classpath, a session (the
session helper) and `SELECT 1`, without the launcher.

Usage: python bench/e2e_modes.py [--runs 5] [--pairs 15] [--jar-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RouterProcess, compile_jar, free_port

from client_runtime import jvm, protocol
from client_runtime.settings import ClientSettings
from service.ops import connect_server
from service.ops.ops_config import OpsSettings

APP = REPO / "examples" / "apps" / "light_aggregation.py"
SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")
JVM_LIGHT = "io.sparkrouter.examples.LightAggregation"
# The JVM Connect client's start: the JVM, the client's classes, a session, one query.
CLIENT_START = """
package bench;

public class ClientStart {
    public static void main(String[] args) {
        org.apache.spark.sql.SparkSession spark =
            io.sparkrouter.session.RouterSession.builder().getOrCreate();
        spark.sql("SELECT 1").collectAsList();
    }
}
"""


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="Connect and standalone runs, for the ratio")
    parser.add_argument("--pairs", type=int, default=15, help="bare and auto runs, for the overhead")
    parser.add_argument("--jar-runs", type=int, default=3, help="Connect and standalone runs of the light "
                                                                "jar, "
                                                                 "and bare JVM client starts (0: none)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    settings = OpsSettings(state_dir=base, connect_port=free_port(), connect_ui_port=free_port())
    connect_url = f"sc://127.0.0.1:{settings.connect_port}"
    router = RouterProcess(f"sqlite:///{base / 'router.db'}", base, env={
        "SPARK_ROUTER_CONNECT_URL": connect_url,
        "SPARK_ROUTER_CONNECT_SERVER_ID": settings.connect_server_id}).start()
    settings = settings.model_copy(update={"url": router.url})
    connect_server.start(settings, progress=lambda _m: None)
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env.update({"SPARK_ROUTER_URL": router.url, "SPARK_ROUTER_CONNECT_URL": connect_url,
                "SPARK_ROUTER_STATE_DIR": str(base), "SPARK_ROUTER_STANDALONE_MASTER": "local[2]"})
    bare_env = {**env, protocol.MODE_ENV: "connect",
                protocol.SESSION_CONFS_ENV: json.dumps(protocol.session_confs("bench.bare", "bare"))}
    try:
        time.sleep(6)  # a heartbeat: the router routes to a server it has heard from
        if args.runs and args.pairs:
            python_modes(env, bare_env, args.runs, args.pairs)
        if args.jar_runs:
            jar_modes(base, env, args.jar_runs)
    finally:
        connect_server.stop(settings, progress=lambda _m: None)
        router.stop()


def python_modes(env: dict, bare_env: dict, runs: int, pairs: int) -> None:
    """The light Python app on Connect and standalone, and the launcher's overhead over a bare client run."""
    for _ in range(2):  # warm: the server's first queries, the OS's file cache
        timed([SPARK_ROUTER, "run", "--app-id", "bench.auto", str(APP)], env)
        timed([sys.executable, str(APP)], bare_env)
    times: dict[str, list[float]] = {"connect": [], "standalone": [], "bare": [], "auto": []}
    for _ in range(runs):
        times["connect"].append(timed([SPARK_ROUTER, "run", "--app-id", "bench.e2e", "--mode", "connect",
                                       str(APP)], env))
        times["standalone"].append(timed([SPARK_ROUTER, "run", "--app-id", "bench.e2e", "--mode",
                                          "standalone", str(APP)], env))
    for _ in range(pairs):
        times["bare"].append(timed([sys.executable, str(APP)], bare_env))
        times["auto"].append(timed([SPARK_ROUTER, "run", "--app-id", "bench.auto", str(APP)], env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"e2e_modes: {name:<10} median {medians[name]:6.2f} s  "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    print(f"e2e_modes: standalone / connect = {medians['standalone'] / medians['connect']:.1f}x "
          f"(target >= 6x)")
    paired = statistics.median(auto - bare for auto, bare in zip(times["auto"], times["bare"], strict=True))
    print(f"e2e_modes: router + launcher overhead (auto run - bare client run) = {paired * 1000:.0f} ms, "
          f"median of {pairs} pairs ({(medians['auto'] - medians['bare']) * 1000:.0f} ms between the "
          f"medians) (target <= 50 ms)")


def jar_modes(base: Path, env: dict, runs: int) -> None:
    """The light jar through `spark-router run` on Connect and standalone, and the JVM client's bare start."""
    settings = ClientSettings()
    examples = REPO / "examples" / "jvm" / "src" / "main" / "java" / "io" / "sparkrouter" / "examples"
    (base / "ClientStart.java").write_text(CLIENT_START)
    jar = compile_jar(base / "bench-apps.jar",
                      [examples / "LightAggregation.java", base / "ClientStart.java"],
                      jvm.compile_classpath(settings))
    classpath = ":".join(map(str, [jar, *jvm.connect_classpath(settings)]))
    bare_env = {**env, protocol.MODE_ENV: "connect", protocol.ARTIFACTS_ENV: str(jar)}
    bare = [str(jvm.java_home(settings) / "bin" / "java"), *jvm.JAVA_OPTIONS,
            f"-Dlog4j2.configurationFile={jvm.CLIENT_LOG_CONFIG}", "-cp", classpath, "bench.ClientStart"]
    run = [SPARK_ROUTER, "run", "--app-id", "bench.jar", "--class", JVM_LIGHT]
    timed([*run, "--mode", "connect", str(jar)], env)  # warm: the server loads the jar's classes once
    times: dict[str, list[float]] = {"jar connect": [], "jar standalone": [], "jvm client start": []}
    for _ in range(runs):
        times["jar connect"].append(timed([*run, "--mode", "connect", str(jar)], env))
        times["jar standalone"].append(timed([*run, "--mode", "standalone", str(jar)], env))
        times["jvm client start"].append(timed(bare, bare_env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"e2e_modes: {name:<16} median {medians[name]:6.2f} s  "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    print(f"e2e_modes: jar standalone / jar connect = "
          f"{medians['jar standalone'] / medians['jar connect']:.1f}x")


if __name__ == "__main__":
    main()
