"""Stage records per second through the HTTP ingest path into PostgreSQL (target >= 20,000/s).

The router runs as in production (uvicorn, 2 workers, PostgreSQL); wrk posts batches of 500 new stage
records from this same machine. Afterwards the database is checked: every record sent is stored once.
Usage: python bench/ingest.py [--seconds 20] [--connections 4] [--batch 500]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import RouterProcess, create_pg_database, drop_pg_database, wrk
from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    url = create_pg_database()
    router = RouterProcess(url, Path(tempfile.mkdtemp(prefix="bench-ingest-")), workers=2).start()
    try:
        script = Path(tempfile.mkdtemp()) / "ingest.lua"
        script.write_text((HERE / "ingest.lua").read_text().replace('args[1] or "500"', f'args[1] or '
                                                                                        f'"{args.batch}"'))
        result = wrk(router.url, script, args.seconds, args.connections)
        with create_engine(url).connect() as connection:
            stored = connection.execute(text("SELECT count(*) FROM stage_metrics")).scalar()
        sent = (result["requests"]) * args.batch
        print(f"ingest: {result['requests']} batches of {args.batch} in {args.seconds} s with "
              f"{args.connections} connections; errors {result['errors']}")
        print(f"ingest: {result['requests_per_s'] * args.batch:,.0f} stage records/s into PostgreSQL "
              f"(target >= 20,000); batch latency p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} "
              "ms")
        print(f"ingest: stored {stored:,} of ~{sent:,} sent (batches in flight at the end may be cut off)")
    finally:
        router.stop()
        drop_pg_database(url)


if __name__ == "__main__":
    main()
