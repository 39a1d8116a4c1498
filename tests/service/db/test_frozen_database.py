"""Issue 20, finding 2, for real: a PostgreSQL of the test's own (initdb + pg_ctl on a free port in a temp
directory; never the machine's), `spark-router serve` against it, then the postmaster and every backend
stopped with SIGSTOP. Before: of 80 reads and 80 ingest batches, 17 and 19 answered 500 (QueuePool limit
reached), the others hung as long as the database was frozen, and /healthz hung too. Now every answer is a 503
with Retry-After within the bound of the settings, /healthz answers within a second, and after SIGCONT
everything works again."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.service.ingest.test_ingest_api import stage
from tests.support import RouterProcess, free_port, wait_until

# Small bounds, so that the test is quick: the bound of a request is what the operator guide says of them.
CONNECT_S, STATEMENT_S, POOL_S = 2, 2, 2
BOUND_S = POOL_S + CONNECT_S + STATEMENT_S + 1  # docs/operator-guide.md, "Timeouts and limits"
SLACK_S = 5  # the test machine's own delays (2 cores, shared)


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.fail("PostgreSQL's server binaries are missing (apt-get install postgresql): the test starts "
                    "its own")
    return found[-1].parent


class PrivatePostgres:
    """A PostgreSQL server of this test only. As root, it runs as the postgres user (initdb refuses root)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="frozen-pg-"))  # under /tmp: the postgres user can reach it
        self.data, self.port, self.bin = self.dir / "data", free_port(), postgres_bin()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        result = subprocess.run([str(self.bin / command[0]), *command[1:]], user=self.user,
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "postgres.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  f"-c max_connections=100", "start")
        return self

    def pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, walwriter, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def signal(self, number: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)

    def stop(self) -> None:
        self.signal(signal.SIGCONT)
        subprocess.run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       user=self.user, capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def frozen_setup(tmp_path):
    database = PrivatePostgres().start()
    router = None
    try:
        router = RouterProcess(database.url, tmp_path / "state", env={
            "SPARK_ROUTER_DB_CONNECT_TIMEOUT_S": str(CONNECT_S),
            "SPARK_ROUTER_DB_STATEMENT_TIMEOUT_S": str(STATEMENT_S),
            "SPARK_ROUTER_DB_POOL_TIMEOUT_S": str(POOL_S)}).start()
        yield database, router
    finally:
        database.signal(signal.SIGCONT)
        if router:
            router.stop()
        database.stop()


def batch(number: int) -> dict:
    return {"batch_id": f"b-{number}", "server_id": "connect-a", "spark_app_id": "local-1",
            "stages": [stage(number * 10 + i, run_id=f"run-{number % 5}") for i in range(5)]}


READS = ["/api/v1/apps", "/api/v1/apps/etl.orders/runs", "/api/v1/dashboard/summary",
         "/api/v1/dashboard/apps", "/api/v1/quarantine", "/api/v1/pool", "/api/v1/servers",
         "/api/v1/dashboard/servers"]


def send(http: httpx.Client, request: tuple) -> tuple:
    method, path, body = request
    started = time.monotonic()
    try:
        response = http.request(method, path, json=body)
    except httpx.HTTPError as exc:
        return None, repr(exc), time.monotonic() - started, path
    return response.status_code, response.headers.get("Retry-After"), time.monotonic() - started, path


@pytest.mark.postgres
def test_a_frozen_database_is_answered_503_within_the_bound_and_everything_recovers(frozen_setup):
    database, router = frozen_setup
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    with httpx.Client(base_url=router.url, timeout=120, limits=limits) as http:
        # Work before the freeze, so that the router's pool holds open connections (the frozen backends).
        assert http.post("/api/v1/decisions", json={"app_id": "etl.orders"}).status_code == 200
        with ThreadPoolExecutor(max_workers=24) as pool:
            warm = list(pool.map(lambda r: send(http, r), [("GET", path, None) for path in READS * 3]
                                 + [("POST", "/api/v1/ingest/stages", batch(n)) for n in range(100, 124)]))
        assert {answer[0] for answer in warm} == {200}, warm[:3]

        database.signal(signal.SIGSTOP)
        requests = [("GET", READS[n % len(READS)], None) for n in range(80)]
        requests += [("POST", "/api/v1/ingest/stages", batch(n)) for n in range(80)]
        requests += [("POST", "/api/v1/decisions", {"app_id": f"etl.app-{n}"}) for n in range(10)]
        # /healthz while the storm goes on, from a process of its own (this one is busy with 170 threads).
        loop = (f"for i in 1 2 3 4 5 6 7 8 9 10; do curl -s -o /dev/null -m 10 -D - "
                f"-w 'took %{{time_total}}\\n' {router.url}/healthz; sleep 0.5; done")
        prober = subprocess.Popen(["sh", "-c", loop], stdout=subprocess.PIPE, text=True)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            answers = list(pool.map(lambda r: send(http, r), requests))
        storm_s = time.monotonic() - started
        output = prober.communicate(timeout=60)[0]
        health = [(int(block.split()[0]), "retry-after: 5" in block.lower(),
                   float(block.rsplit("took", 1)[1]))
                  for block in output.split("HTTP/1.1")[1:]]
        frozen_livez = http.get("/livez").status_code

        statuses = Counter(answer[0] for answer in answers)
        slowest = max(answer[2] for answer in answers)
        print(f"frozen: {statuses}, slowest {slowest:.1f} s, all answered in {storm_s:.1f} s; healthz "
              f"{[round(h[2], 2) for h in health]}; load {Path('/proc/loadavg').read_text().split()[:3]}")
        assert statuses == {503: len(requests)}, [a for a in answers if a[0] != 503][:5]
        assert all(answer[1] == "5" for answer in answers)
        assert slowest < BOUND_S + SLACK_S, sorted(answers, key=lambda a: -a[2])[:5]
        assert [h[0] for h in health] == [503] * 10 and all(h[1] for h in health), output
        assert max(h[2] for h in health) < 1.0, health
        assert frozen_livez == 200

        database.signal(signal.SIGCONT)
        wait_until(lambda: http.get("/healthz").status_code == 200, 30, "healthz to say the database is back")
        recovered = [send(http, request) for request in requests]
        assert {answer[0] for answer in recovered} == {200}, [a for a in recovered if a[0] != 200][:5]
        # The batches refused while frozen were stored once sent again (as the listener does), none twice.
        runs = http.get("/api/v1/apps/etl.orders/runs", params={"limit": 100}).json()
        assert sum(run["num_stages"] for run in runs) == 5 * (24 + 80)

    log = router.log_path.read_text()
    assert "Traceback" not in log, log[-4000:]
