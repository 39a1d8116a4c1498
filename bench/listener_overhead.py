"""The listener's cost: the same Connect workload on a server with and without it (target ratio <= 1.02).

Two local Connect servers (one with the listener reporting to a router, one without) run side by side; the
workload (a client running small groupBy queries) alternates between them, so the machine's noise hits both.
Usage: python bench/listener_overhead.py [--rounds 10] [--queries 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import REPO, RouterProcess, free_port

from service.ops import connect_server
from service.ops.ops_config import OpsSettings

WORKLOAD = """
import sys, time
from client_runtime.protocol import session_confs
from client_runtime.session import connect_session
spark = connect_session(sys.argv[1], session_confs("bench.overhead", sys.argv[3]))
started = time.perf_counter()
for i in range(int(sys.argv[2])):
    spark.range(0, 200_000, 1, 4).selectExpr(f"id % {10 + i} AS k").groupBy("k").count().collect()
print(time.perf_counter() - started)
spark.stop()
"""


def run_workload(url: str, queries: int, run_id: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    out = subprocess.run([sys.executable, "-c", WORKLOAD, url, str(queries), run_id], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--queries", type=int, default=15)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    router = RouterProcess(f"sqlite:///{base / 'router.db'}", base).start()
    servers = {}
    try:
        for name, with_listener in (("with", True), ("without", False)):
            settings = OpsSettings(state_dir=base / name, url=router.url, connect_port=free_port(),
                                   connect_ui_port=free_port(), connect_server_id=f"bench-{name}")
            connect_server.start(settings, progress=lambda _m: None, with_listener=with_listener)
            servers[name] = settings
        for name, server in servers.items():  # not counted: both servers' first queries (class loading, JIT)
            run_workload(f"sc://127.0.0.1:{server.connect_port}", args.queries, f"warm-{name}")
        times = {"with": [], "without": []}
        for round_number in range(args.rounds):
            order = ("with", "without") if round_number % 2 == 0 else ("without", "with")
            for name in order:
                url = f"sc://127.0.0.1:{servers[name].connect_port}"
                times[name].append(run_workload(url, args.queries, f"r{round_number}-{name}"))
        for name, values in times.items():
            print(f"listener_overhead: {name:<8} listener: median {statistics.median(values):.3f} s over "
                  f"{len(values)} runs of {args.queries} queries ({', '.join(f'{v:.2f}' for v in values)})")
        # Each round runs both, one after the other: the ratio within a round is spared the drift across
        # rounds (the servers' JIT warming up, the machine's other load).
        paired = statistics.median(w / wo for w, wo in zip(times["with"], times["without"], strict=True))
        ratio = statistics.median(times["with"]) / statistics.median(times["without"])
        print(f"listener_overhead: wall-time ratio with/without = {paired:.3f}, the median of the "
              f"{args.rounds} rounds' ratios ({ratio:.3f} between the medians) (target <= 1.02)")
        time.sleep(2)
        runs = router.get("/api/v1/apps/bench.overhead/runs", limit=100)
        print(f"listener_overhead: the router received {sum(r['num_stages'] for r in runs)} stage records "
              f"from {len(runs)} runs")
        # Spark's own account of the time our callbacks took on its listener bus (LiveListenerBus timers),
        # which no machine noise blurs: since the server started, warm-up round included.
        with_ui = f"http://127.0.0.1:{servers['with'].connect_ui_port}/metrics/json/"
        timers = httpx.get(with_ui, timeout=10).json()["timers"]
        timer = next(v for k, v in timers.items()
                     if k.endswith("listenerProcessingTime." + connect_server.LISTENER_CLASS))
        bus_ms = timer["count"] * timer["mean"]
        print(f"listener_overhead: the listener's callbacks took {bus_ms:.0f} ms on Spark's listener bus for "
              f"{timer['count']} events (max {timer['max']:.1f} ms), against {sum(times['with']):.1f} s of "
              f"workload on that server: {bus_ms / 10 / sum(times['with']):.2f}% (Spark's LiveListenerBus "
              "timer)")
    finally:
        for settings in servers.values():
            connect_server.stop(settings, progress=lambda _m: None)
        router.stop()


if __name__ == "__main__":
    main()
