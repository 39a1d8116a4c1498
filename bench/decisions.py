"""Decisions per second over a big history, against a trivial endpoint of the same server (target: ratio
>= 0.5, p99 <= 25 ms).

10,000 apps with 1,000,000 runs of history in PostgreSQL (and each app's aggregates of its last 10 runs, as
the router keeps them); the router runs as the README recommends for production (uvicorn, 2 workers); wrk
drives both endpoints at the same fixed concurrency from this machine, decisions and /livez alternately.
Usage: python bench/decisions.py [--seconds 15] [--connections 16]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from common import RouterProcess, create_pg_database, drop_pg_database, wrk

HERE = Path(__file__).resolve().parent
APPS, RUNS = 10_000, 1_000_000

SEED = [
    f"""INSERT INTO apps (app_id, created_at, last_seen_at, connect_failure_streak, recent_runs)
        SELECT 'app' || i, now(), now(), 0,
               (SELECT json_agg(json_build_object(
                   'run_id', 'hist-' || i || '-' || j,
                   'task_time_ms', (random() * 600000)::bigint,
                   'shuffle_write_bytes', (random() * 2e9)::bigint,
                   'disk_spilled_bytes', CASE WHEN i % 4 = 0 THEN (random() * 5e9)::bigint ELSE 0 END,
                   'peak_execution_memory_bytes', (random() * 5e8)::bigint,
                   'duration_ms', (60000 + random() * 600000)::bigint))
                FROM generate_series(1, 10) j)
        FROM generate_series(0, {APPS - 1}) i""",
    f"""INSERT INTO runs (run_id, app_id, mode, status, created_at, predicted_cores, num_stages,
                          executor_run_time_ms, shuffle_write_bytes)
        SELECT 'hist-' || i, 'app' || (i % {APPS}), CASE WHEN i % 3 = 0 THEN 'standalone' ELSE 'connect' END,
               'succeeded', now() - make_interval(mins => i % 100000), 0, 5,
               (random() * 600000)::bigint, (random() * 2e9)::bigint
        FROM generate_series(1, {RUNS}) i""",
    "ANALYZE",
]


def keep_server_alive(url: str, stop: threading.Event) -> None:
    """The listener's heartbeat, so that the server stays healthy for the whole run."""
    beat = {"server_id": "connect-local", "spark_app_id": "bench", "kind": "connect"}
    while not stop.is_set():
        httpx.post(f"{url}/api/v1/ingest/heartbeat", json=beat, timeout=5)
        stop.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    url = create_pg_database()
    state = Path(tempfile.mkdtemp(prefix="bench-decisions-"))
    router = RouterProcess(url, state, workers=2).start()  # migrates the schema
    stop = threading.Event()
    try:
        started = time.monotonic()
        with create_engine(url).begin() as connection:
            for statement in SEED:
                connection.execute(text(statement))
        print(f"decisions: seeded {APPS:,} apps and {RUNS:,} runs in {time.monotonic() - started:.0f} s")
        threading.Thread(target=keep_server_alive, args=(router.url, stop), daemon=True).start()
        time.sleep(1)
        trivial = HERE / "livez.lua"
        trivial.write_text('request = function() return wrk.format("GET", "/livez") end\n')
        results = {"decisions": [], "livez": []}
        for _ in range(args.rounds):  # interleaved: the machine's noise hits both alike
            results["decisions"].append(wrk(router.url, HERE / "decisions.lua", args.seconds, args.connections))
            results["livez"].append(wrk(router.url, trivial, args.seconds, args.connections))
        trivial.unlink()
        for name, runs in results.items():
            best = max(runs, key=lambda r: r["requests_per_s"])
            print(f"decisions: {name:<9} {best['requests_per_s']:8,.0f} req/s  p50 {best['p50_ms']:6.1f} ms  "
                  f"p99 {best['p99_ms']:6.1f} ms  errors {best['errors']}  ({args.connections} connections)")
        ratio = (max(r["requests_per_s"] for r in results["decisions"])
                 / max(r["requests_per_s"] for r in results["livez"]))
        print(f"decisions: ratio decisions/trivial = {ratio:.2f} (target >= 0.5)")
        with create_engine(url).connect() as connection:
            modes = dict(connection.execute(text("SELECT mode, count(*) FROM decisions GROUP BY mode")).all())
        print(f"decisions: stored {sum(modes.values()):,} decisions {modes}")
    finally:
        stop.set()
        router.stop()
        drop_pg_database(url)


if __name__ == "__main__":
    main()
