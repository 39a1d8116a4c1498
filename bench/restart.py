"""Seconds from drain to serving again for an idle server, warm-up query included (target <= 20 s).

A router (SQLite) and the local Connect server with the listener; `spark-router restart-server` restarts it
(local backend). Usage: python bench/restart.py [--times 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RouterProcess, free_port

from client_runtime.settings import Settings
from service.ops import connect_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=2)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    settings = Settings(state_dir=base, connect_port=free_port(), connect_ui_port=free_port())
    router = RouterProcess(f"sqlite:///{base / 'router.db'}", base).start()
    settings = settings.model_copy(update={"url": router.url})
    connect_server.start(settings, progress=lambda _m: None)
    env = {**os.environ, "SPARK_ROUTER_URL": router.url, "SPARK_ROUTER_STATE_DIR": str(base),
           "SPARK_ROUTER_CONNECT_PORT": str(settings.connect_port),
           "SPARK_ROUTER_CONNECT_UI_PORT": str(settings.connect_ui_port), "SPARK_ROUTER_RESTART_POLL_S": "1",
           "SPARK_ROUTER_CONNECT_URL": f"sc://127.0.0.1:{settings.connect_port}"}
    try:
        time.sleep(6)  # the first heartbeat
        for attempt in range(args.times):
            started = time.perf_counter()
            result = subprocess.run([str(Path(sys.executable).parent / "spark-router"), "restart-server",
                                     "--window", "60"], env=env, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(f"restart-server failed:\n{result.stdout}{result.stderr}")
            record = router.get("/api/v1/restarts")[0]
            print(f"restart: attempt {attempt + 1}: drain to serving again {elapsed:.1f} s "
                  f"(restart to ready {record['message']}) (target <= 20 s)")
    finally:
        connect_server.stop(settings, progress=lambda _m: None)
        router.stop()


if __name__ == "__main__":
    main()
