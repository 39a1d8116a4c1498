"""What the benchmarks share: the repo's real parts (router process, PostgreSQL databases) and wrk."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# bench/ runs as scripts: the repo goes on the path before its harness is imported.
from harness import (  # noqa: E402
    RouterProcess,
    compile_jar,
    create_pg_database,
    drop_pg_database,
    free_port,
    wait_until,
)

__all__ = [
    "REPO",
    "RouterProcess",
    "compile_jar",
    "create_pg_database",
    "drop_pg_database",
    "free_port",
    "median",
    "wait_until",
    "wrk",
]


def wrk(url: str, script: Path, seconds: int, connections: int, threads: int = 2, args: tuple = ()) -> dict:
    """Run wrk (Debian package `wrk`); returns requests/s and latency percentiles in ms. `args` go to the
    script's init(args)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk (make bench installs it)")
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "-s", str(script), url, "--", *map(str, args)],
                         capture_output=True, text=True, check=True).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
              "requests": int(re.search(r"(\d+) requests in", out).group(1)), "raw": out}
    for percentile in ("50", "90", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)
        value, unit = float(match.group(1)), match.group(2)
        result[f"p{percentile}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = int(errors.group(1)) if errors else 0
    return result


def median(values) -> float:
    return statistics.median(values)
