"""A Spark standalone cluster on this machine: Spark's own cluster manager (a Master and Workers, from
pyspark's jars), bound to 127.0.0.1, with its logs, work dirs, local dirs and pids under <state dir>/cluster.

    spark-router cluster start --workers 2 --worker-cores 1 --worker-memory 1g

The Connect server runs on it with `spark-router connect-server start --master spark://127.0.0.1:7077`,
standalone runs with SPARK_ROUTER_STANDALONE_MASTER=spark://127.0.0.1:7077. The master's JSON
(http://127.0.0.1:<ui port>/json/) says which workers are alive and which applications hold their cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from client_runtime.process import pid_alive, port_open, stop_groups
from client_runtime.spark_env import java_home, spark_home
from service.ops.ops_config import OpsSettings
from service.routing.policy import parse_size

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
DEFAULT_PORT = 7077
DEFAULT_UI_PORT = 8080
# Heap of the Master and Worker JVMs themselves (Spark's default is 1g each); applications' executors are
# sized by the applications, within what each worker offers (--worker-cores, --worker-memory).
DAEMON_MEMORY = "256m"


class ClusterError(RuntimeError):
    """The cluster could not be started, stopped or read; the message says why."""


@dataclass
class ClusterState:
    port: int
    ui_port: int
    workers: int
    worker_cores: int
    worker_memory: str
    started_at: str
    master_pid: int
    worker_pids: list[int] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"


def cluster_dir(settings: OpsSettings) -> Path:
    return settings.state_dir / "cluster"


def _state_file(settings: OpsSettings) -> Path:
    return cluster_dir(settings) / "cluster.json"


def read_state(settings: OpsSettings) -> ClusterState | None:
    """The recorded cluster, if its master is still alive."""
    path = _state_file(settings)
    if not path.exists():
        return None
    try:
        state = ClusterState(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    return state if pid_alive(state.master_pid) else None






def master_json(ui_url: str, timeout_s: float = 5) -> dict:
    """The master's view of the cluster: workers (state, cores, memory, used and free) and applications."""
    try:
        response = httpx.get(f"{ui_url}/json/", timeout=timeout_s)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ClusterError(f"the master's UI at {ui_url} did not answer: {exc}") from exc


def executor_slots(settings: OpsSettings, master: str, executor_cores: int,
                   executor_memory: str) -> int | None:
    """How many executors of this size the cluster of `spark-router cluster` at `master` has room for; None
    when `master` is not that cluster."""
    state = read_state(settings)
    if state is None or master.rstrip("/") not in (state.master_url, f"spark://localhost:{state.port}"):
        return None
    by_memory = parse_size(state.worker_memory) // parse_size(executor_memory)
    return state.workers * min(state.worker_cores // executor_cores, by_memory)


def start(settings: OpsSettings, workers: int = 2, worker_cores: int = 1, worker_memory: str = "1g",
          port: int = DEFAULT_PORT, ui_port: int = DEFAULT_UI_PORT, progress=print,
          timeout_s: float = 180) -> ClusterState:
    """Start a master and `workers` workers in the background; return once every worker is registered. On a
    running cluster, start again only the workers that are gone (with the cluster's own sizes)."""
    if workers < 1 or worker_cores < 1:
        raise ClusterError("--workers and --worker-cores must be at least 1")
    try:
        if parse_size(worker_memory) < parse_size("512m"):
            raise ClusterError(f"--worker-memory {worker_memory} is too small to hold an executor: give at "
                               "least 512m")
    except ValueError as exc:
        raise ClusterError(f"--worker-memory: {exc}") from exc
    deadline = time.monotonic() + timeout_s
    running = read_state(settings)
    if running:
        gone = [index for index, pid in enumerate(running.worker_pids) if not pid_alive(pid)]
        if not gone:
            progress(f"cluster already running at {running.master_url} (master pid {running.master_pid}, "
                     f"UI {running.ui_url}): `spark-router cluster stop` first to change it")
            return running
        progress(f"cluster running at {running.master_url}; starting again {len(gone)} worker(s) that are "
                 "gone")
        before = {w["id"] for w in master_json(running.ui_url).get("workers", [])}
        for index in gone:
            running.worker_pids[index] = _start_worker(settings, running, index).pid
        _save(settings, running)
        _wait_for_workers(settings, running, deadline, progress, expected=len(gone), before=before)
        return running
    for name, value in (("--port", port), ("--ui-port", ui_port)):
        if port_open(value):
            raise ClusterError(f"port {value} on 127.0.0.1 is taken by another process: pick one with {name}")
    base = cluster_dir(settings)
    for sub in ("logs", "work", "local"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    master_log = base / "logs" / "master.log"
    master = _spawn([_spark_class(), MASTER_CLASS, "--host", "127.0.0.1", "--port", str(port),
                     "--webui-port", str(ui_port)], _env(settings), master_log)
    state = ClusterState(port=port, ui_port=ui_port, workers=workers, worker_cores=worker_cores,
                         worker_memory=worker_memory, started_at=datetime.now(timezone.utc).isoformat(),
                         master_pid=master.pid)
    _save(settings, state)
    progress(f"starting the master (pid {master.pid}) at {state.master_url}, UI {state.ui_url}, logs in "
             f"{base / 'logs'}")
    try:
        _wait(lambda: _master_up(state, master, master_log), deadline, f"the master's UI at {state.ui_url}",
              master_log)
        progress(f"master up; starting {workers} worker(s) of {worker_cores} core(s) "
                 f"and {worker_memory} each")
        state.worker_pids = [_start_worker(settings, state, index).pid for index in range(workers)]
        _save(settings, state)
        _wait_for_workers(settings, state, deadline, progress, expected=workers)
    except BaseException:
        stop(settings, progress=lambda _msg: None)
        raise
    progress(f"cluster ready at {state.master_url}: {workers} worker(s), {workers * worker_cores} core(s), "
             f"UI {state.ui_url}")
    return state


def _spark_class() -> str:
    return str(spark_home() / "bin" / "spark-class")


def _env(settings: OpsSettings) -> dict[str, str]:
    env = {**os.environ, "JAVA_HOME": str(java_home(settings)), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_DAEMON_MEMORY": os.environ.get("SPARK_DAEMON_MEMORY", DAEMON_MEMORY)}
    for key in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_MASTER"):
        env.pop(key, None)
    return env


def _start_worker(settings: OpsSettings, state: ClusterState, index: int) -> subprocess.Popen:
    base = cluster_dir(settings)
    work_dir, local_dir = base / "work" / f"worker-{index}", base / "local" / f"worker-{index}"
    work_dir.mkdir(parents=True, exist_ok=True)
    local_dir.mkdir(parents=True, exist_ok=True)
    # Executors' shuffle and spill files go to the worker's local dir (SPARK_LOCAL_DIRS), under the state dir.
    return _spawn([_spark_class(), WORKER_CLASS, "--host", "127.0.0.1", "--cores", str(state.worker_cores),
                   "--memory", state.worker_memory, "--webui-port", "0", "--work-dir", str(work_dir),
                   state.master_url],
                  {**_env(settings), "SPARK_LOCAL_DIRS": str(local_dir)},
                  base / "logs" / f"worker-{index}.log")


def _wait_for_workers(settings: OpsSettings, state: ClusterState, deadline: float, progress, expected: int,
                      before: frozenset | set = frozenset()) -> None:
    """Until `expected` workers not among `before` (ids the master knew already) are registered and alive."""
    logs, seen = cluster_dir(settings) / "logs", [-1]

    def registered() -> bool:
        for index, pid in enumerate(state.worker_pids):
            if not pid_alive(pid):
                raise ClusterError(f"worker {index} (pid {pid}) exited; last log lines:\n"
                                   f"{_tail(logs / f'worker-{index}.log')}")
        alive = sum(1 for w in master_json(state.ui_url).get("workers", [])
                    if w.get("state") == "ALIVE" and w["id"] not in before)
        if alive != seen[0]:
            seen[0] = alive
            progress(f"{alive} of {expected} worker(s) registered")
        return alive >= expected

    _wait(registered, deadline, f"{expected} worker(s) to register", logs / "worker-0.log")


def _spawn(command: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        log.write(f"\n==== starting at {datetime.now(timezone.utc).isoformat()} ====\n".encode())
        log.flush()
        # Its own process group: `stop` signals the JVM with its children (a worker's executors) by it, and a
        # Ctrl-C in the starting terminal does not reach it.
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)


def _save(settings: OpsSettings, state: ClusterState) -> None:
    _state_file(settings).write_text(json.dumps(asdict(state)))


def _master_up(state: ClusterState, master: subprocess.Popen, log: Path) -> bool:
    if master.poll() is not None:
        raise ClusterError(f"the master exited with code {master.returncode}; last log lines:\n{_tail(log)}")
    try:
        return master_json(state.ui_url, timeout_s=2).get("status") == "ALIVE"
    except ClusterError:
        return False


def _wait(predicate, deadline: float, what: str, log: Path) -> None:
    while not predicate():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}; last log lines of {log}:\n{_tail(log)}")
        time.sleep(0.5)


def stop(settings: OpsSettings, timeout_s: float = 20, progress=print) -> bool:
    """Stop the workers (with their executors) and the master: SIGTERM to each process group, SIGKILL after
    timeout_s. Returns whether a cluster was running."""
    path = _state_file(settings)
    try:
        state = ClusterState(**json.loads(path.read_text())) if path.exists() else None
    except (ValueError, TypeError):
        state = None
    pids = [] if state is None else [*state.worker_pids, state.master_pid]
    running = [pid for pid in pids if pid_alive(pid)]
    if state is None or not running:
        path.unlink(missing_ok=True)
        progress("cluster is not running")
        return False
    stop_groups(running, timeout_s, progress)
    path.unlink(missing_ok=True)
    progress(f"cluster stopped ({len(running) - 1 if state.master_pid in running else len(running)} "
             f"worker(s) and the master)")
    return True




def status(settings: OpsSettings) -> dict:
    """The cluster as the master sees it: workers with their cores and memory used and free, applications
    running."""
    state = read_state(settings)
    if state is None:
        return {"running": False, "state_dir": str(cluster_dir(settings))}
    master = master_json(state.ui_url)
    workers = [{"id": w["id"], "state": w["state"], "host": f"{w['host']}:{w['port']}",
                "cores": w["cores"], "cores_used": w["coresused"], "cores_free": w["coresfree"],
                "memory_mb": w["memory"], "memory_used_mb": w["memoryused"],
                "memory_free_mb": w["memoryfree"]}
               for w in master.get("workers", [])]
    apps = [{"id": a["id"], "name": a["name"], "state": a["state"], "cores": a["cores"],
             "memory_per_executor_mb": a.get("memoryperexecutor", a.get("memoryperslave")),
             "started_at": datetime.fromtimestamp(a["starttime"] / 1000, timezone.utc).isoformat(),
             "duration_s": round(a["duration"] / 1000, 1)}
            for a in master.get("activeapps", [])]
    alive = [w for w in workers if w["state"] == "ALIVE"]
    return {"running": True, "master_url": state.master_url, "ui_url": state.ui_url,
            "since": state.started_at, "master_pid": state.master_pid,
            "logs": str(cluster_dir(settings) / "logs"), "workers_alive": len(alive),
            "workers_started": state.workers, "cores": sum(w["cores"] for w in alive),
            "cores_used": sum(w["cores_used"] for w in alive),
            "memory_mb": sum(w["memory_mb"] for w in alive),
            "memory_used_mb": sum(w["memory_used_mb"] for w in alive), "workers": workers, "apps": apps,
            "completed_apps": len(master.get("completedapps", []))}


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
