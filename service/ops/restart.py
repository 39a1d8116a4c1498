"""`spark-router restart-server`: the drained daily restart of a Connect server, or of every server of the
pool one at a time (`--rolling`).

Drain (new runs go to the other servers, or standalone when there is none), wait until no client work is left,
restart through a backend, wait until the server answers a warm-up query and its listener reports again,
undrain. Past the window, skip (default) or force. A rolling restart never drains the last server that can
take runs. Every attempt is recorded in the router with its timings.
"""

from __future__ import annotations

import functools
import shlex
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timezone

import httpx

from client_runtime.router_client import RouterRejected, RouterUnavailable
from service.ops import connect_server
from service.ops.admin_client import AdminClient
from service.ops.ops_config import OpsSettings

# Exit codes a scheduler can act on.
RESTARTED, FAILED, SKIPPED = 0, 1, 3
ACTIVE_OPERATION_STATES = {"STARTED", "COMPILED", "READY"}


class RestartError(RuntimeError):
    pass


class NoOtherServer(RestartError):
    """A rolling restart must not go on: no other server of the pool can take runs."""


def server_settings(settings: OpsSettings, server_id: str, connect_url: str | None = None) -> OpsSettings:
    """The settings that restart server `server_id` of the pool: the local backend's state dir and ports (see
    connect_server.member_settings), its Connect URL (for the warm-up: what the router has from its listener),
    its Deployment (SPARK_ROUTER_KUBERNETES_DEPLOYMENTS; the default server's:
    SPARK_ROUTER_KUBERNETES_DEPLOYMENT), the restart command with {server_id} filled in.
    SPARK_ROUTER_CONNECT_UI_URL is the default server's: another one's idleness is read through the UI its
    listener reports."""
    member = connect_server.member_settings(settings, server_id)
    default = server_id == settings.connect_server_id
    update = {"connect_url": connect_url or (settings.connect_url if default else
                                             f"sc://127.0.0.1:{member.connect_port}"),
              "kubernetes_deployment": settings.kubernetes_deployments.get(server_id) or (
                  settings.kubernetes_deployment if default else ""),
              "restart_command": settings.restart_command and settings.restart_command.replace("{server_id}",
                                                                                              server_id)}
    if not default:
        update["connect_ui_url"] = None
    return member.model_copy(update=update)


def now() -> datetime:
    return datetime.now(timezone.utc)


# ------------------------------------------------------------------------------------------------ idleness

def rest_activity(ui_url: str, timeout_s: float = 5.0) -> list[str]:
    """Work the driver's REST API shows: running jobs, active stages, active Connect operations."""
    with httpx.Client(base_url=ui_url, timeout=timeout_s) as http:
        apps = http.get("/api/v1/applications").raise_for_status().json()
        if not apps:
            return []
        base = f"/api/v1/applications/{apps[0]['id']}"
        busy = []
        jobs = http.get(f"{base}/jobs", params={"status": "running"}).raise_for_status().json()
        if jobs:
            busy.append(f"{len(jobs)} running job(s) in the Spark UI")
        stages = http.get(f"{base}/stages", params={"status": "active"}).raise_for_status().json()
        if stages:
            busy.append(f"{len(stages)} active stage(s) in the Spark UI")
        operations = http.get(f"{base}/connect/operations")
        if operations.status_code == 200:
            active = [op for op in operations.json() if op.get("state") in ACTIVE_OPERATION_STATES
                      and not _is_exit_cleanup(op)]
            if active:
                busy.append(f"{len(active)} active Connect operation(s)")
        return busy


def _is_exit_cleanup(operation: dict) -> bool:
    # An exiting PySpark client leaves an `ml_command { clean_cache }` operation STARTED until its session
    # expires: it is not work, and counting it would keep the server busy forever.
    return any("clean_cache" in str(operation.get(key, "")) for key in ("statement", "statementText"))


def busy_reasons(activity: dict, rest: list[str] | None) -> list[str]:
    """Why the server is not idle (empty: idle), from the router's view and the driver's REST API."""
    reasons = []
    if activity["in_flight_connect_runs"]:
        shown = ", ".join(activity.get("in_flight_run_ids", [])[:3])
        reasons.append(f"{activity['in_flight_connect_runs']} Connect run(s) in flight per the router "
                       f"({shown})")
    beat, age = activity.get("last_heartbeat"), activity.get("heartbeat_age_s")
    if beat and age is not None and age < 60:
        if beat["running_jobs"]:
            reasons.append(f"{beat['running_jobs']} running job(s) per the listener")
        if beat["active_operations"]:
            reasons.append(f"{beat['active_operations']} active Connect operation(s) per the listener")
    reasons += rest or []
    return reasons


# ------------------------------------------------------------------------------------------------ backends

class LocalBackend:
    """The local server of `spark-router connect-server`, started again on the ports and the master it ran on
    (from its state file; the settings' only when it is not running)."""

    name = "local"

    def __init__(self, settings: OpsSettings, progress):
        self.settings, self.progress = settings, progress

    def restart(self) -> None:
        running = connect_server.read_state(self.settings)
        port, ui_port, master = ((running.port, running.ui_port, running.master or None) if running
                                 else (None, None, None))
        connect_server.stop(self.settings, progress=self.progress)
        # Returns after its warm-up query.
        connect_server.start(self.settings, port=port, ui_port=ui_port, progress=self.progress, master=master)


class CommandBackend:
    """A configured shell command (e.g. `systemctl restart spark-connect`), then a warm-up query."""

    name = "command"

    def __init__(self, settings: OpsSettings, progress):
        if not settings.restart_command:
            raise RestartError("the command backend needs SPARK_ROUTER_RESTART_COMMAND (or --command)")
        self.settings, self.progress = settings, progress

    def restart(self) -> None:
        self.progress(f"running: {self.settings.restart_command}")
        result = subprocess.run(shlex.split(self.settings.restart_command), capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise RestartError(f"restart command exited {result.returncode}: {result.stderr[-500:]}")
        wait_for_warm_up(self.settings, self.progress)


class KubernetesBackend:
    """A rollout restart of the Connect server's Deployment (what `kubectl rollout restart` does: patch the
    pod template's restartedAt annotation), then wait for the new pod and a warm-up query."""

    name = "kubernetes"

    def __init__(self, settings: OpsSettings, progress, apps_api=None):
        self.settings, self.progress = settings, progress
        if apps_api is None:
            try:
                from kubernetes import client, config
            except ImportError as exc:
                raise RestartError("the kubernetes backend needs the `kubernetes` package "
                                   "(pip install 'spark-connect-router[kubernetes]')") from exc
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            apps_api = client.AppsV1Api()
        self.apps = apps_api

    def restart(self) -> None:
        namespace, name = self.settings.kubernetes_namespace, self.settings.kubernetes_deployment
        if not name:
            raise RestartError(f"no Deployment known for server {self.settings.connect_server_id}: name it "
                               f"in SPARK_ROUTER_KUBERNETES_DEPLOYMENTS (or --deployment)")
        stamp = now().isoformat()
        annotations = {"kubectl.kubernetes.io/restartedAt": stamp}
        patch = {"spec": {"template": {"metadata": {"annotations": annotations}}}}
        deployment = self.apps.patch_namespaced_deployment(name, namespace, patch)
        generation = deployment.metadata.generation
        self.progress(f"patched deployment {namespace}/{name} (generation {generation}); waiting for the "
                      "rollout")
        deadline = time.monotonic() + self.settings.connect_start_timeout_s
        while time.monotonic() < deadline:
            status = self.apps.read_namespaced_deployment_status(name, namespace).status
            wanted = deployment.spec.replicas or 1
            if ((status.observed_generation or 0) >= generation and (status.updated_replicas or 0) >= wanted
                    and (status.available_replicas or 0) >= wanted
                    and not (status.unavailable_replicas or 0)):
                break
            time.sleep(2)
        else:
            raise RestartError(f"deployment {namespace}/{name} not rolled out after "
                               f"{self.settings.connect_start_timeout_s:.0f} s")
        wait_for_warm_up(self.settings, self.progress)


def wait_for_warm_up(settings: OpsSettings, progress) -> None:
    deadline = time.monotonic() + settings.connect_start_timeout_s
    while True:
        try:
            connect_server.warm_up(settings.connect_url, timeout_s=20)
            progress(f"{settings.connect_url} answered a warm-up query")
            return
        except connect_server.ConnectServerError as exc:
            if time.monotonic() > deadline:
                raise RestartError(f"{settings.connect_url} did not answer a warm-up query: {exc}") from exc
            time.sleep(3)


BACKENDS = {"local": LocalBackend, "command": CommandBackend, "kubernetes": KubernetesBackend}


# -------------------------------------------------------------------------------------------- coordination

class RestartCoordinator:
    def __init__(self, settings: OpsSettings, admin: AdminClient, backend,
                 progress: Callable[[str], None] = print, rest: Callable[[str], list[str]] = rest_activity,
                 guard: Callable[[], None] | None = None):
        """``rest(ui_url)``: the work the driver's REST API shows. ``guard()``: called while the server
        drains; raises NoOtherServer when the restart must not go on (the server is undrained, the restart
        skipped)."""
        self.settings, self.admin, self.backend, self.progress = settings, admin, backend, progress
        self.server_id = settings.connect_server_id
        self.rest = rest
        self.guard = guard or (lambda: None)

    def run(self, window_s: float, force: bool) -> int:
        record = {"server_id": self.server_id, "backend": self.backend.name, "requested_at": now()}
        started = time.monotonic()
        outcome, message = "failed", None
        try:
            before = self.admin.activity(self.server_id)
            self.guard()
            self.admin.drain(self.server_id)
            self.progress(f"{self.server_id} is draining: new runs go to the other servers of the pool, or "
                          f"standalone when there is none")
            idle, reasons = self._wait_for_idle(window_s)
            record["waited_s"] = round(time.monotonic() - started, 1)
            if idle:
                record["idle_at"] = now()
            elif not force:
                outcome = "skipped"
                message = (f"still busy after the {window_s:g} s window ({'; '.join(reasons)}); not "
                           f"restarted (--force restarts anyway)")
                self.progress(message)
                return SKIPPED
            else:
                self.progress(f"still busy after the {window_s:g} s window ({'; '.join(reasons)}): forcing "
                              f"the restart; that work fails")
            record["restarted_at"] = now()
            self.backend.restart()
            self._wait_for_listener(before)
            record["ready_at"] = now()
            outcome = "restarted" if idle else "forced"
            message = (f"restarted in {(record['ready_at'] - record['restarted_at']).total_seconds():.1f} s "
                       f"after waiting {record['waited_s']:.0f} s for idle")
            self.progress(message)
            return RESTARTED
        except NoOtherServer as exc:
            outcome, message = "skipped", f"not restarted: {exc}"
            self.progress(message)
            return SKIPPED
        except (RestartError, connect_server.ConnectServerError, RouterRejected, RouterUnavailable) as exc:
            message = f"restart failed: {exc}"
            self.progress(message)
            return FAILED
        finally:
            record.setdefault("waited_s", round(time.monotonic() - started, 1))
            if message:  # an error's text may hold anything; the record keeps what the router can store
                message = message.replace("\x00", "")[:10_000]
            record.update(finished_at=now(), outcome=outcome, message=message)
            self._undrain_and_record(record)

    def _wait_for_idle(self, window_s: float) -> tuple[bool, list[str]]:
        deadline = time.monotonic() + window_s
        last_said, ui_said = None, None
        while True:
            self.guard()
            activity = self.admin.activity(self.server_id)
            ui_url = self._ui_url(activity)
            if ui_url != ui_said:
                self.progress(f"judging idleness from the router, the listener and the Spark UI at {ui_url}")
                ui_said = ui_url
            try:
                rest = self.rest(ui_url)
            except httpx.HTTPError as exc:
                rest = []
                self.progress(f"Spark UI REST API at {ui_url} unavailable ({exc.__class__.__name__}); "
                              f"judging from the router and the listener only")
            reasons = busy_reasons(activity, rest)
            if not reasons:
                self.progress("no client work on the server")
                return True, []
            if reasons != last_said:
                self.progress(f"waiting: {'; '.join(reasons)}")
                last_said = reasons
            if time.monotonic() >= deadline:
                return False, reasons
            time.sleep(min(self.settings.restart_poll_s, max(0.1, deadline - time.monotonic())))

    def _ui_url(self, activity: dict) -> str:
        """SPARK_ROUTER_CONNECT_UI_URL when set; else the UI the server's listener reports (the port the
        server really runs on); else http://127.0.0.1:<SPARK_ROUTER_CONNECT_UI_PORT>."""
        reported = (activity.get("server") or {}).get("ui_url")
        return (self.settings.connect_ui_url or reported or self.settings.resolved_connect_ui_url).rstrip("/")

    def _wait_for_listener(self, before: dict) -> None:
        """The restarted server is ready for routing once its listener reports from the new application."""
        old_app = before["server"]["spark_app_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            activity = self.admin.activity(self.server_id)
            beat = activity.get("last_heartbeat")
            if beat and beat["spark_app_id"] != old_app:
                self.progress(f"listener reports from the new application {beat['spark_app_id']}")
                return
            time.sleep(1)
        raise RestartError("the restarted server's listener has not reported within 60 s")

    def _undrain_and_record(self, record: dict) -> None:
        try:
            self.admin.drain(self.server_id, draining=False)
            self.progress(f"{self.server_id} undrained")
        except (RouterRejected, RouterUnavailable) as exc:
            self.progress(f"WARNING: could not undrain {self.server_id}: {exc}")
        try:
            self.admin.record_restart({key: value.isoformat() if isinstance(value, datetime) else value
                                       for key, value in record.items()})
        except (RouterRejected, RouterUnavailable) as exc:
            self.progress(f"WARNING: could not record the restart: {exc}")


# ---------------------------------------------------------------------------------------------- the pool

class RollingRestart:
    """`restart-server --rolling`: every server of the pool that is up, one at a time, the default first:
    drain it (new runs go to the others), wait for its work to end, restart, warm up, wait for its heartbeat,
    undrain, next. A server is never drained while no other server of the pool can take runs: it is skipped
    (so is a pool of one), and so is a drain that loses the last other server while it waits. Exit code:
    failed if one failed, else skipped if one was skipped, else restarted."""

    def __init__(self, settings: OpsSettings, admin: AdminClient,
                 backend_for: Callable[[OpsSettings], object], progress: Callable[[str], None] = print,
                 rest: Callable[[str], list[str]] = rest_activity):
        """``backend_for(server_settings)``: the backend that restarts one server (see
        ``server_settings``)."""
        self.settings, self.admin, self.backend_for, self.progress, self.rest = (settings, admin, backend_for,
                                                                                 progress, rest)

    def run(self, window_s: float, force: bool) -> int:
        try:
            pool = self.admin.pool()
        except (RouterRejected, RouterUnavailable) as exc:
            self.progress(f"restart failed: cannot read the pool of Connect servers: {exc}")
            return FAILED
        for server in pool:
            if server["status"] == "down":
                self.progress(f"{server['server_id']} is down ({server['unavailable_reason']}): left alone; "
                              f"restart it with --server-id {server['server_id']}")
        targets = [server for server in pool if server["status"] != "down"]
        if not targets:
            self.progress("restart failed: no Connect server of the pool is up")
            return FAILED
        self.progress(f"rolling restart of {len(targets)} server(s): "
                      f"{', '.join(s['server_id'] for s in targets)}")
        outcomes = {}
        for target in targets:
            server_id = target["server_id"]
            self.progress(f"--- {server_id}")
            try:
                current = next((s for s in self.admin.pool() if s["server_id"] == server_id), None)
            except (RouterRejected, RouterUnavailable) as exc:
                self.progress(f"{server_id}: restart failed: cannot read the pool of Connect servers: {exc}")
                outcomes[server_id] = FAILED
                continue
            if current is None or current["status"] == "down":
                self.progress(f"{server_id} went down during the rolling restart: left alone")
                continue
            settings = server_settings(self.settings, server_id, current["connect_url"])
            try:
                backend = self.backend_for(settings)
            except RestartError as exc:
                self.progress(f"{server_id}: restart failed: {exc}")
                outcomes[server_id] = FAILED
                continue
            coordinator = RestartCoordinator(
                settings, self.admin, backend, self.progress, self.rest,
                guard=functools.partial(self._others_can_take_runs, server_id))
            outcomes[server_id] = coordinator.run(window_s, force)
        said = {RESTARTED: "restarted", SKIPPED: "skipped", FAILED: "failed"}
        self.progress("rolling restart done: " + ", ".join(f"{server_id} {said[code]}"
                                                          for server_id, code in outcomes.items()))
        codes = set(outcomes.values())
        return FAILED if FAILED in codes else SKIPPED if SKIPPED in codes else RESTARTED

    def _others_can_take_runs(self, server_id: str) -> None:
        """Raises NoOtherServer unless another server of the pool can take runs now."""
        others = [server["server_id"] for server in self.admin.pool()
                  if server["server_id"] != server_id and server["available"]]
        if not others:
            raise NoOtherServer(f"no other Connect server of the pool can take runs: {server_id} is the last "
                                f"one, and is never drained by a rolling restart")
