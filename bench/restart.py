"""Restarting Connect servers while decisions keep arriving: the seconds during which no Connect server could
take a run (target with --rolling: 0), and the decisions sent standalone for want of a server (target: 0).

A router (SQLite) and local Connect servers with the listener. A steady stream of decisions (new apps, each
run reported finished at once, so that the drains need not wait for them) runs all along, and the pool is read
every 0.2 s. One server (default): `spark-router restart-server`, the drained restart: its whole
restart is a window without a Connect server. --rolling: two servers, `spark-router restart-server --rolling`:
one at a time, the other takes the runs.
Usage: python bench/restart.py [--rolling] [--times 1] [--rate 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import RouterProcess, free_port, wait_until

from service.ops import connect_server
from service.ops.ops_config import OpsSettings

SECOND = "connect-b"
# Rules that send a run standalone because no Connect server could take it.
FOR_WANT_OF_A_SERVER = {"server-draining", "server-unhealthy", "over-capacity"}


class Stream:
    """Decisions at about `rate` per second, and the pool's view every 0.2 s, until stopped."""

    def __init__(self, url: str, rate: float):
        self.url, self.rate = url, rate
        self.decisions: list[dict] = []
        self.unavailable_s = 0.0  # time during which no server of the pool could take a run
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._decide, daemon=True),
                        threading.Thread(target=self._watch, daemon=True)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _decide(self):
        with httpx.Client(base_url=self.url, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                decision = http.post("/api/v1/decisions",
                                     json={"app_id": f"stream.{n}"}).raise_for_status().json()
                for event in ("started", "succeeded"):  # a short run: it holds no server
                    http.post(f"/api/v1/runs/{decision['run_id']}/events",
                              json={"event": event}).raise_for_status()
                self.decisions.append(decision)
                n += 1
                self.stop.wait(1 / self.rate)

    def _watch(self):
        with httpx.Client(base_url=self.url, timeout=30) as http:
            last = time.monotonic()
            while not self.stop.is_set():
                pool = http.get("/api/v1/pool").raise_for_status().json()
                now = time.monotonic()
                if not any(server["available"] for server in pool):
                    self.unavailable_s += now - last
                last = now
                self.stop.wait(0.2)

    def for_want_of_a_server(self) -> list[dict]:
        return [d for d in self.decisions if d["mode"] == "standalone" and d["rule"] in FOR_WANT_OF_A_SERVER]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rolling", action="store_true", help="two servers, restarted one at a time")
    parser.add_argument("--times", type=int, default=1)
    parser.add_argument("--rate", type=float, default=10, help="decisions per second")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    settings = OpsSettings(state_dir=base, connect_port=free_port(), connect_ui_port=free_port())
    router = RouterProcess(f"sqlite:///{base / 'router.db'}", base).start()
    settings = settings.model_copy(update={"url": router.url})
    server_ids = [settings.connect_server_id] + ([SECOND] if args.rolling else [])
    for server_id in server_ids:
        connect_server.start(settings, server_id=server_id, progress=lambda _m: None)
    env = {**os.environ, "SPARK_ROUTER_URL": router.url, "SPARK_ROUTER_STATE_DIR": str(base),
           "SPARK_ROUTER_CONNECT_PORT": str(settings.connect_port),
           "SPARK_ROUTER_CONNECT_UI_PORT": str(settings.connect_ui_port), "SPARK_ROUTER_RESTART_POLL_S": "1",
           "SPARK_ROUTER_CONNECT_URL": f"sc://127.0.0.1:{settings.connect_port}"}
    command = [str(Path(sys.executable).parent / "spark-router"), "restart-server", "--window", "120"]
    command += ["--rolling"] if args.rolling else []
    what = f"{len(server_ids)} servers, rolling" if args.rolling else "1 server"
    try:
        wait_until(lambda: len([s for s in router.get("/api/v1/pool") if s["available"]]) == len(server_ids),
                   60, "every server's first heartbeat")
        for attempt in range(args.times):
            with Stream(router.url, args.rate) as stream:
                time.sleep(3)  # the stream is under way before the restart begins
                started = time.perf_counter()
                result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                elapsed = time.perf_counter() - started
                time.sleep(3)
            if result.returncode != 0:
                raise SystemExit(f"restart-server failed:\n{result.stdout}{result.stderr}")
            records = router.get("/api/v1/restarts", limit=len(server_ids))
            each = "; ".join(f"{r['server_id']} {r['message']}" for r in reversed(records))
            print(f"restart: {what}: attempt {attempt + 1}: restart-server took {elapsed:.1f} s ({each})")
            print(f"restart: {what}: attempt {attempt + 1}: seconds with no Connect server to take a run "
                  f"{stream.unavailable_s:.1f} (target 0 with --rolling); decisions {len(stream.decisions)}, "
                  f"standalone for want of a server {len(stream.for_want_of_a_server())} (target 0 with "
                  "--rolling)")
    finally:
        for server_id in server_ids:
            connect_server.stop(connect_server.member_settings(settings, server_id), progress=lambda _m: None)
        router.stop()


if __name__ == "__main__":
    main()
