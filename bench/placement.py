"""Placement over a pool of two Connect servers: after a burst of concurrent runs, the difference in predicted
cores in flight between the servers (target: within one run's load).

A router process (PostgreSQL; one worker as `spark-router serve`, then two uvicorn workers as in production)
and two Connect servers known only by their listeners' heartbeats (no Spark: placement reads the router's
database, not the servers). 60 apps with a history each (predicted loads of 0.5 to 3 cores); a burst of
concurrent decisions for them; then the pool's in-flight cores per server, from GET /api/v1/pool.
Usage: python bench/placement.py [--runs 120] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from common import RouterProcess, create_pg_database, drop_pg_database, wait_until

SERVERS = {"connect-a": "sc://a.example:15002", "connect-b": "sc://b.example:15002"}
LOADS = (0.5, 1.0, 1.5, 2.0, 3.0)  # predicted cores of the apps' runs, by history
APPS = 60


def heartbeats(url: str, stop: threading.Event) -> None:
    """Both servers' listeners: 200 executors of 1 core each, so that capacity never stops a run here."""
    while not stop.is_set():
        for server_id, connect_url in SERVERS.items():
            httpx.post(f"{url}/api/v1/ingest/heartbeat", timeout=10, json={
                "server_id": server_id, "spark_app_id": f"app-{server_id}", "kind": "connect",
                "connect_url": connect_url, "executors": 200, "executor_cores": 200})
        stop.wait(5)


def make_history(http: httpx.Client) -> dict[str, float]:
    """One successful run per app whose task time over a minute gives its predicted load; returns the
    loads."""
    loads = {}
    for i in range(APPS):
        app_id, load = f"bench.app{i}", LOADS[i % len(LOADS)]
        decision = http.post("/api/v1/decisions", json={"app_id": app_id}).raise_for_status().json()
        run_id = decision["run_id"]
        http.post(f"/api/v1/runs/{run_id}/events", json={"event": "started"}).raise_for_status()
        stage = {"app_id": app_id, "run_id": run_id, "stage_id": 1, "attempt": 0, "status": "succeeded",
                 "num_tasks": 1, "executor_run_time_ms": int(load * 60_000)}
        http.post("/api/v1/ingest/stages",
                  json={"server_id": decision["server_id"], "spark_app_id": f"s-{run_id}",
                                                 "stages": [stage]}).raise_for_status()
        http.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded"}).raise_for_status()
        loads[app_id] = load
    return loads


def burst(url: str, runs: int, concurrency: int) -> list[dict]:
    with httpx.Client(base_url=url, timeout=30) as http, ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda i: http.post("/api/v1/decisions", json={"app_id": f"bench.app{i % APPS}"})
                             .raise_for_status().json(), range(runs)))


def measure(workers: int | None, runs: int, concurrency: int) -> None:
    pg = create_pg_database()
    state = Path(tempfile.mkdtemp(prefix="bench-placement-"))
    router = RouterProcess(pg, state, workers=workers,
                           env={"SPARK_ROUTER_CONNECT_SERVER_ID": "connect-a",
                                "SPARK_ROUTER_CONNECT_URL": SERVERS["connect-a"]}).start()
    stop = threading.Event()
    beat = threading.Thread(target=heartbeats, args=(router.url, stop), daemon=True)
    beat.start()
    try:
        with httpx.Client(base_url=router.url, timeout=30) as http:
            wait_until(lambda: all(s["available"] for s in http.get("/api/v1/pool").json()), 30, "both "
                                                                                                 "servers")
            loads = make_history(http)
            decisions = burst(router.url, runs, concurrency)
            pool = {s["server_id"]: s for s in http.get("/api/v1/pool").raise_for_status().json()}
        placed = {server_id: sum(d["server_id"] == server_id for d in decisions) for server_id in SERVERS}
        standalone = sum(d["mode"] != "connect" for d in decisions)
        cores = {server_id: pool[server_id]["in_flight_cores"] for server_id in SERVERS}
        difference = abs(cores["connect-a"] - cores["connect-b"])
        largest = max(loads.values())
        how = f"{workers} uvicorn workers" if workers else "spark-router serve (one worker)"
        print(f"placement: {how}: {runs} concurrent runs ({concurrency} at a time): "
              + ", ".join(f"{server_id} {placed[server_id]} runs / {cores[server_id]:.1f} cores"
                          for server_id in SERVERS)
              + f"; difference {difference:.1f} cores, one run's load at most {largest:.1f} "
              f"({'within' if difference <= largest else 'OVER'}); standalone {standalone}")
    finally:
        stop.set()
        router.stop()
        drop_pg_database(pg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    for workers in (None, 2):
        measure(workers, args.runs, args.concurrency)


if __name__ == "__main__":
    main()
