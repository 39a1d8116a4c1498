"""A local Spark Connect server for development, tests, the demo and the benchmarks: the one shipped in
pyspark, bound to 127.0.0.1, with our listener registered and the server settings shared with the image and
the chart (connect-server.conf), on local[N] or on a standalone cluster (spark://, e.g. one of `spark-router
cluster`)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from client_runtime.process import pid_alive, port_open, stop_groups
from client_runtime.protocol import listener_confs
from client_runtime.spark_env import java_home, listener_conf, listener_env, spark_home
from service.ops import spark_cluster
from service.ops.ops_config import OpsSettings

CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"

# The server's own settings (the article's for a long-running shared server), shared with the image and the
# chart: one file, see its header.
SERVER_CONF_FILE = Path(__file__).with_name("connect-server.conf")


def read_properties(text: str) -> dict[str, str]:
    """The keys and values of a spark-defaults.conf: a key, blanks or '=', the value; '#' starts a comment
    line."""
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = (re.split(r"\s*[=:\s]\s*", line, maxsplit=1) + [""])[:2]
            conf[key] = value
    return conf


SERVER_CONF = read_properties(SERVER_CONF_FILE.read_text())


# spark.scheduler.mode=FAIR alone shares nothing: jobs land in the "default" pool, which is FIFO unless an
# allocation file says otherwise. The fixed set of pools the router assigns runs to (one file, see its
# header).
SCHEDULER_POOLS_FILE = Path(__file__).with_name("fairscheduler.xml")


class ConnectServerError(RuntimeError):
    """The local Connect server could not be started or stopped; the message says why."""


@dataclass
class ServerState:
    pid: int
    port: int
    ui_port: int
    started_at: str
    log_file: str
    master: str = ""

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"


def _state_file(settings: OpsSettings) -> Path:
    return settings.connect_server_dir / "server.json"


# ------------------------------------------------------------------------------------------- a local pool
# Several local servers run side by side, each with its server id, its own ports, and its own state dir: the
# default server (SPARK_ROUTER_CONNECT_SERVER_ID) under the state dir as ever, every other one under
# <state dir>/connect-servers/<id> (pid, logs, Spark local dirs, the listener's spool). Each listener reports
# the Connect URL of its server, so the router finds every one of them by itself.

POOL_DIR = "connect-servers"
_SERVER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def member_settings(settings: OpsSettings, server_id: str | None) -> OpsSettings:
    """The settings of local server `server_id` of the pool: the default server's are the settings themselves;
    another server reports under its id, keeps its state under <state dir>/connect-servers/<id>, and runs on
    the ports it ran on before (free ones the first time)."""
    if server_id is None or server_id == settings.connect_server_id:
        return settings
    if not _SERVER_ID.match(server_id):
        raise ConnectServerError(f"server id {server_id!r}: use letters, digits, '.', '_' and '-' (at most "
                                 "100)")
    member = settings.model_copy(update={"connect_server_id": server_id,
                                         "state_dir": settings.state_dir / POOL_DIR / server_id})
    try:
        ports = json.loads((member.connect_server_dir / "ports.json").read_text())
    except (OSError, ValueError):
        ports = {"port": free_port(), "ui_port": free_port()}
    return member.model_copy(update={"connect_port": ports["port"], "connect_ui_port": ports["ui_port"]})


def local_server_ids(settings: OpsSettings) -> list[str]:
    """The default server and every other local server that has a state dir, by id."""
    others = sorted(path.name for path in (settings.state_dir / POOL_DIR).glob("*") if path.is_dir())
    return [settings.connect_server_id,
            *(server_id for server_id in others if server_id != settings.connect_server_id)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_state(settings: OpsSettings) -> ServerState | None:
    """The recorded server, if its process is still alive."""
    path = _state_file(settings)
    if not path.exists():
        return None
    state = ServerState(**json.loads(path.read_text()))
    return state if pid_alive(state.pid) else None




def server_conf(settings: OpsSettings, master: str) -> dict[str, str]:
    """The shared settings; on a cluster also the executors' size and the dynamic-allocation ceiling (by
    default as many executors as a cluster of `spark-router cluster` has room for); then
    SPARK_ROUTER_CONNECT_SERVER_CONF. On local[N] the dynamic-allocation settings are left out: Spark ignores
    them there, and the listener would report a ceiling of executors the server does not have."""
    conf = dict(SERVER_CONF)
    if master.startswith("local"):
        conf = {key: value for key, value in conf.items() if not key.startswith("spark.dynamicAllocation.")}
    else:
        conf["spark.executor.memory"] = settings.connect_executor_memory
        conf["spark.executor.cores"] = str(settings.connect_executor_cores)
        ceiling = settings.connect_max_executors or spark_cluster.executor_slots(
            settings, master, settings.connect_executor_cores, settings.connect_executor_memory)
        if ceiling:
            conf["spark.dynamicAllocation.maxExecutors"] = str(ceiling)
    conf.update(settings.connect_server_conf)
    return conf


def server_command(settings: OpsSettings, port: int, ui_port: int, with_listener: bool = True,
                   master: str | None = None) -> list[str]:
    if with_listener and not settings.listener_jar.exists():
        raise ConnectServerError(f"listener jar not found at {settings.listener_jar}: run `make listener`")
    master = master or settings.connect_master
    conf = {
        **server_conf(settings, master),
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.host": "127.0.0.1",
        "spark.ui.port": str(ui_port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.local.dir": str(settings.connect_server_dir / "local"),
        "spark.scheduler.allocation.file": str(SCHEDULER_POOLS_FILE),
    }
    if with_listener:  # without: only for measuring the listener's overhead (bench/listener_overhead.py)
        conf.update({"spark.jars": str(settings.listener_jar),
                     # connectUrl: the router hands this URL to the clients it places on this server.
                     **listener_confs(serverId=settings.connect_server_id, connectUrl=f"sc://127.0.0.1:{port}"),
                     **listener_conf(settings, kind="connect")})
    command = [str(spark_home() / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS,
               "--name", "Spark Connect server", "--master", master,
               "--driver-memory", settings.connect_driver_memory]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return command


def _check_master(master: str) -> None:
    """A standalone master must answer before the server starts: otherwise its warm-up query would wait for
    executors that never come."""
    if not master.startswith("spark://"):
        return
    host, _, port = master.removeprefix("spark://").rstrip("/").partition(":")
    try:
        socket.create_connection((host, int(port or 7077)), timeout=3).close()
    except (OSError, ValueError) as exc:
        raise ConnectServerError(f"no Spark master answers at {master} ({exc}): start one with "
                                 f"`spark-router cluster start`, or pass the right --master") from exc


def start(settings: OpsSettings, port: int | None = None, ui_port: int | None = None,
          progress=print, with_listener: bool = True, master: str | None = None,
          server_id: str | None = None) -> ServerState:
    """Start the server in the background and return once it has answered a warm-up query. `master`: default
    SPARK_ROUTER_CONNECT_MASTER (local[2]); spark://host:port runs it on a standalone cluster. `server_id`:
    a server of the local pool other than the default one, on free ports unless `port`, `ui_port` are
    given."""
    settings = member_settings(settings, server_id)
    master = master or settings.connect_master
    port = port or settings.connect_port
    ui_port = ui_port or settings.connect_ui_port
    running = read_state(settings)
    if running:
        progress(f"Connect server already running (pid {running.pid}) at {running.url}")
        return running
    _check_master(master)
    deadline = time.monotonic() + 15  # a server that was just stopped may take a moment to let go of it
    while port_open(port):
        if time.monotonic() > deadline:
            raise ConnectServerError(f"port {port} on 127.0.0.1 is taken by another process: pick one with "
                                     "--port")
        time.sleep(0.5)
    base = settings.connect_server_dir
    for sub in ("logs", "local"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    (base / "ports.json").write_text(json.dumps({"port": port, "ui_port": ui_port}))  # the next start's
    log_file = base / "logs" / "connect-server.log"
    env = {**os.environ, "JAVA_HOME": str(java_home(settings)), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(base / "logs"), "SPARK_LOCAL_DIRS": str(base / "local"),
           "SPARK_CONNECT_MODE": "0", **listener_env(settings),
           # Python UDFs of clients run in workers of this interpreter, which has pyspark and pandas.
           "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_REMOTE", None)
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    with open(log_file, "ab") as log:
        log.write(f"\n==== starting at {datetime.now(timezone.utc).isoformat()} ====\n".encode())
        log.flush()
        # Its own session, so that a Ctrl-C in the starting terminal does not kill the server.
        command = server_command(settings, port, ui_port, with_listener, master)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)
    state = ServerState(pid=process.pid, port=port, ui_port=ui_port,
                        started_at=datetime.now(timezone.utc).isoformat(), log_file=str(log_file),
                        master=master)
    _state_file(settings).write_text(json.dumps(state.__dict__))
    progress(f"starting Connect server (pid {process.pid}) on {state.url}, master {master}, logs in "
             f"{log_file}")
    try:
        _wait_ready(state, process, settings.connect_start_timeout_s, progress)
    except BaseException:
        stop(settings, progress=lambda _msg: None)
        raise
    return state


def _wait_ready(state: ServerState, process: subprocess.Popen, timeout_s: float, progress) -> None:
    deadline = time.monotonic() + timeout_s
    warm = WarmUp(timeout_s)  # its Python and pyspark imports overlap with the JVM's start
    try:
        while not port_open(state.port):
            if process.poll() is not None:
                raise ConnectServerError(f"Connect server exited with code {process.returncode}; "
                                         f"last log lines:\n{tail(Path(state.log_file))}")
            if time.monotonic() > deadline:
                raise ConnectServerError(f"Connect server not listening after {timeout_s:.0f} s; see "
                                         f"{state.log_file}")
            time.sleep(0.25)
        progress("listening; running a warm-up query")
        started = time.monotonic()
        warm.run(state.url)
    finally:
        warm.cancel()
    progress(f"Connect server ready at {state.url} (warm-up {time.monotonic() - started:.1f} s)")


WARM_UP = """
import sys
from client_runtime.protocol import session_confs
from client_runtime.session import connect_session  # imported while the server starts
url = sys.stdin.readline().strip()
if url:
    spark = connect_session(url, session_confs("spark-router.warm-up"), retry_budget_s=float(sys.argv[1]))
    try:
        spark.range(0, 1000, 1, 2).selectExpr("id % 10 AS k").groupBy("k").count().collect()
    finally:
        spark.stop()
"""


class WarmUp:
    """A small shuffle, so that the first real client does not pay the cold start. In a child process: a
    Connect client changes its process (SPARK_CONNECT_MODE_ENABLED), and the caller may be a service. The
    child starts at once and waits for the URL on stdin."""

    def __init__(self, timeout_s: float = 60.0):
        self.timeout_s = timeout_s
        env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
        self.process = subprocess.Popen([sys.executable, "-c", WARM_UP, str(timeout_s)], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, url: str) -> None:
        try:
            _, stderr = self.process.communicate(url + "\n", timeout=self.timeout_s + 30)
        except subprocess.TimeoutExpired as exc:
            raise ConnectServerError(
                f"warm-up query on {url} did not finish in {self.timeout_s:.0f} s") from exc
        if self.process.returncode != 0:
            raise ConnectServerError(f"warm-up query on {url} failed:\n{stderr[-2000:]}")

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def warm_up(url: str, timeout_s: float = 60.0) -> None:
    WarmUp(timeout_s).run(url)


def stop(settings: OpsSettings, timeout_s: float = 30.0, progress=print) -> bool:
    """SIGTERM, then SIGKILL after timeout_s. Returns whether a server was running."""
    state = read_state(settings)
    path = _state_file(settings)
    if state is None:
        path.unlink(missing_ok=True)
        progress("Connect server is not running")
        return False
    # The server leads its own process group (see start): the group goes, Python workers included.
    stop_groups([state.pid], timeout_s, progress)
    path.unlink(missing_ok=True)
    progress(f"Connect server (pid {state.pid}) stopped")
    return True




def status(settings: OpsSettings) -> dict:
    state = read_state(settings)
    if state is None:
        return {"running": False, "state_dir": str(settings.connect_server_dir)}
    return {"running": True, "pid": state.pid, "url": state.url,
            "ui_url": f"http://127.0.0.1:{state.ui_port}", "since": state.started_at,
            "log_file": state.log_file, "accepting": port_open(state.port), "master": state.master or None}


def pool_status(settings: OpsSettings) -> list[dict]:
    """``status`` of every local server (see local_server_ids), each with its id; the default one first."""
    return [{"server_id": server_id, "default": server_id == settings.connect_server_id,
             **status(member_settings(settings, server_id))} for server_id in local_server_ids(settings)]


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
