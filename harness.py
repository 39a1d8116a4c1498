"""Real parts the tests and the benchmarks both start: a router process, PostgreSQL databases, free ports,
javac'd jars, and waiting for a state. Not shipped (tests/ and bench/ import it from the repository's
root)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("SPARK_ROUTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_pg_database() -> str:
    """A fresh PostgreSQL database for one test session; returns its SQLAlchemy URL."""
    import psycopg

    name = f"router_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RouterProcess:
    """`spark-router serve` in a child process, on a fixed port so it can be stopped and started again."""

    def __init__(self, database_url: str, state_dir: Path, port: int | None = None, env: dict | None = None,
                 workers: int | None = None):
        # None: `spark-router serve`; N: `spark-router serve --workers N`, as in production
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir / f"router-{self.port}.log"
        self.env = {**os.environ, "SPARK_ROUTER_DATABASE_URL": database_url,
                    "SPARK_ROUTER_STATE_DIR": str(state_dir), "SPARK_ROUTER_URL": self.url, **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> RouterProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [str(BIN / "spark-router"), "serve", "--port", str(self.port)]
        if self.workers:
            command += ["--workers", str(self.workers)]
        with open(self.log_path, "ab") as log:  # the router keeps its own copy of the descriptor
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._healthy(), timeout_s, f"router on {self.url} (log {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"router exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def get(self, path: str, **params):
        response = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.3):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def compile_jar(jar: Path, sources: list[Path], classpath: list[Path], main_class: str | None = None) -> Path:
    """javac the sources against classpath into jar (Main-Class main_class, if given): how the tests build JVM
    apps, with no build tool and no Spark in the jar."""
    java = os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64"
    classes = jar.parent / f"{jar.stem}-classes"
    classes.mkdir(parents=True, exist_ok=True)
    compiled = subprocess.run([f"{java}/bin/javac", "--release", "17", "-nowarn", "-d", str(classes),
                               "-cp", os.pathsep.join(map(str, classpath)), *map(str, sources)],
                              check=False, capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    # Classes compiled earlier into the same jar's folder stay in it: a jar can be built in steps.
    packed = subprocess.run([f"{java}/bin/jar", "--create", "--file", str(jar),
                             *(["--main-class", main_class] if main_class else []), "-C", str(classes), "."],
                            check=False, capture_output=True, text=True, timeout=120)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    return jar
