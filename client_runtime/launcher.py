"""The launcher: ask the router, run the app on Connect or with spark-submit, report, fall back.

    spark-router run --app-id etl.orders [--mode auto] app.py -- --date 2026-11-22

Fallback by outcome: when a Connect run of an idempotent app fails for any reason but a cancel, the app runs
again standalone, and that rerun says whose failure it was: it succeeds, so Connect failed the app (a Connect
failure, which counts in the app's streak); it fails too, so the app failed (an app failure). The router is
told the Connect run failed "pending" and settles it when the rerun reports its end. Spark Connect refuses
programs in more ways than any list of messages names; the cost is that a real app bug runs twice.

Out of memory: a standalone run (a fallback too) that fails and whose output says it ran out of memory
(client_runtime.failures.out_of_memory) is rerun once, standalone, with the memory the router gives it (POST
/api/v1/runs/{id}/oom-rerun: sizing.oom_growth times the memory where it ran out, within the ceiling). Once
only: a rerun that runs out of memory too is not rerun again (nor by the router, which refuses it).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar
from urllib.parse import urlparse

from client_runtime import artifacts, compat, failures, protocol, runner, sentry
from client_runtime.app_kinds import AppKind, kind_of, preload
from client_runtime.process import AppProcess, Outcome, terminate_group
from client_runtime.protocol import (
    ARTIFACTS_ENV,
    MODE_ENV,
    SCHEDULER_POOL_CONF,
    SESSION_CONFS_ENV,
    SETTLED_BY,
    DecisionAnswer,
    FailureKind,
    OomWhere,
    RequestedMode,
    Resources,
    RunEventName,
    session_confs,
    user_id,
)
from client_runtime.router_client import RouterClient, RouterRejected, RouterUnavailable
from client_runtime.spark_env import java_home, listener_conf, listener_env, spark_home

if TYPE_CHECKING:
    from client_runtime.settings import ClientSettings

log = logging.getLogger("spark_router.launcher")
T = TypeVar("T")

# A run that ran out of memory is rerun with more this many times at most: once.
MAX_OOM_RERUNS = 1

@dataclass
class RunRequest:
    app_id: str
    app: str                                   # path or s3:// URI
    args: list[str] = field(default_factory=list)
    mode: RequestedMode = "auto"
    resources: Resources = field(default_factory=protocol.resources)  # unset ones left out
    spark_conf: dict[str, str] = field(default_factory=dict)
    fallback: bool = True                      # rerun standalone after a Connect failure ...
    idempotent: bool = True                    # ... which is only safe for an idempotent app
    airflow: dict[str, Any] | None = None      # dag_id, task_id, run_id, try_number
    cwd: str | None = None                     # where the app runs, as with spark-submit; default: ours
    main_class: str | None = None              # a jar's class to run (default: its manifest's Main-Class)
    # an auto run may wait in the router's queue for room on Connect
    can_wait: bool = True


class Attempt(TypedDict):
    """One run of the app, as the launcher saw it end."""

    run_id: str
    mode: str                  # connect, standalone (queued: stopped while it waited, nothing ran)
    status: str                # succeeded, failed, cancelled
    exit_code: int
    failure_kind: str | None   # connect, app, pending; a settled Connect run's: connect, app, unknown
    seconds: float
    error: str | None
    out_of_memory: OomWhere | None  # a failed run whose output says it ran out of memory: whose memory


@dataclass
class LaunchResult:
    exit_code: int
    run_id: str
    mode: str
    fell_back: bool = False
    oom_rerun: bool = False    # the last attempt is the out-of-memory rerun of the one before
    runs: list[Attempt] = field(default_factory=list)  # every attempt, in order


@dataclass
class Decision:
    run_id: str
    mode: str
    connect_url: str | None
    session_confs: dict[str, str]
    reasons: list[str]
    from_router: bool
    scheduler_pool: str | None = None  # a Connect run's FAIR pool on the server (the router's light or heavy)
    # a standalone run's sized resources (RESOURCE_NAMES), over the ask
    sized: dict[str, str | int] = field(default_factory=dict)

    @classmethod
    def of(cls, answer: DecisionAnswer) -> Decision:
        """The router's decision of a run (a decision the launcher asks for is never a dry run: it has a
        run)."""
        assert answer.run_id is not None, "a recorded decision has a run"
        return cls(answer.run_id, answer.mode, answer.connect_url, answer.session_confs,
                   [reason.message for reason in answer.reasons]
                   + ([answer.sizing["reason"]] if answer.sizing and answer.sizing.get("reason") else []),
                   from_router=True,
                   scheduler_pool=answer.scheduler_pool,
                   sized={name: value for name, value in (answer.sizing or {}).items()
                          if name in protocol.RESOURCE_NAMES and value is not None})


class Launcher:
    """Runs one app once (plus a standalone fallback): decide, run, fall back, report, the same for every kind
    of app (client_runtime.app_kinds). Thread-safe ``cancel()`` stops it from outside (SIGTERM in the CLI,
    ``on_kill`` in Airflow)."""

    def __init__(self, settings: ClientSettings, on_line: Callable[[str], None] | None = None,
                 on_event: Callable[[str], None] | None = None):
        self.settings = settings
        self.on_line = on_line or (lambda line: print(line, flush=True))
        self.on_event = on_event or (lambda message: log.info(message))
        self.router = RouterClient(settings.url, settings.token("api_token"),
                                   timeout_s=settings.router_timeout_s)
        self._router_down = False
        self._current: AppProcess | None = None
        # the preloading interpreter, until the app's kind has it
        self._python: subprocess.Popen[bytes] | None = None
        self._kind: AppKind | None = None
        self._cancelled = threading.Event()
        # the current attempt's output lines that say it ran out of memory (failures.OUT_OF_MEMORY)
        self._memory_lines: deque[str] = deque(maxlen=50)

    # ------------------------------------------------------------------------------------------ public

    def run(self, request: RunRequest, python: subprocess.Popen[bytes] | None = None) -> LaunchResult:
        """Run the app where the router says. ``python``: an interpreter from
        ``client_runtime.runner.start()``, already preloading for a Connect run (the CLI starts it before its
        own imports); without one, a run that may go to Connect starts it here, so that its imports overlap
        the router's answer."""
        self._python = python if python is not None else preload(request.app, request.mode)
        try:
            return self._run(request)
        finally:
            self._release()

    def _run(self, request: RunRequest) -> LaunchResult:
        workdir = Path(request.cwd or os.getcwd())
        with tempfile.TemporaryDirectory(prefix="spark-router-run-") as tmp:
            app = artifacts.resolve(request.app, Path(tmp), request.main_class)
            python, self._python = self._python, None
            kind = self._kind = kind_of(app, self.settings, python)
            if self._cancelled.is_set():  # cancel() came while the interpreter changed hands
                kind.release()
            kind.check()  # what it runs with must be there before a run is decided
            if request.mode == "auto":
                self._record_compatibility(request.app_id, app)
            decision = self._decide(request)
            if decision is None:  # stopped while it waited in the router's queue: nothing ran
                return LaunchResult(exit_code=143, run_id="", mode="queued",
                                    runs=[Attempt(run_id="", mode="queued", status="cancelled", exit_code=143,
                                                  failure_kind=None, seconds=0.0, error=None,
                                                  out_of_memory=None)])
            sentry.set_run_tags(app_id=request.app_id, run_id=decision.run_id, mode=decision.mode)
            result = LaunchResult(exit_code=1, run_id=decision.run_id, mode=decision.mode)
            falls_back = request.fallback and request.idempotent
            outcome = self._attempt(request, kind, decision, workdir, result, falls_back=falls_back)
            if decision.mode == "connect" and result.runs[-1]["status"] == "failed":
                if falls_back:
                    decision, outcome = self._fall_back(request, kind, decision, workdir, result, outcome)
                else:
                    why = ("fallback is off" if not request.fallback
                           else "the app is not marked idempotent, so it must not run twice")
                    what = "a Connect" if result.runs[-1]["failure_kind"] == "connect" else "an app"
                    self.on_event(f"not falling back: {why}; by its output, this was {what} failure")
            for _ in range(MAX_OOM_RERUNS + 1):  # the last time round only says why there is no more
                where = result.runs[-1]["out_of_memory"]
                if decision.mode != "standalone" or where is None:
                    break
                rerun = self._rerun_out_of_memory(request, kind, decision, workdir, result, where)
                if rerun is None:
                    break
                decision, outcome = rerun
            result.exit_code = outcome.exit_code if outcome.exit_code >= 0 else 128 - outcome.exit_code
            if outcome.stopped_because and outcome.exit_code == 0:
                result.exit_code = 1
            return result

    def _fall_back(self, request: RunRequest, kind: AppKind, failed: Decision, workdir: Path,
                   result: LaunchResult, outcome: Outcome) -> tuple[Decision, Outcome]:
        """Rerun a failed Connect run standalone; its outcome says whose failure the Connect run's was. The
        rerun's decision and outcome."""
        reason = failures.failure_summary(outcome)
        hint = failures.connect_hint(outcome)
        self.on_event(f"Connect run {failed.run_id} failed ({reason}); falling back to standalone, whose "
                      f"outcome says whether Connect or the app failed it"
                      + (f" (the output names a Spark Connect failure: {hint})" if hint else ""))
        decision = self._fallback(failed, request, reason)
        sentry.set_run_tags(run_id=decision.run_id, mode="standalone")
        result.fell_back, result.run_id, result.mode = True, decision.run_id, "standalone"
        outcome = self._attempt(request, kind, decision, workdir, result)
        connect_run, rerun = result.runs[-2], result.runs[-1]
        settled = connect_run["failure_kind"] = SETTLED_BY[rerun["status"]]
        self.on_event({
            "connect": f"the standalone rerun succeeded: Connect run {failed.run_id} counts as a Connect "
                       "failure",
            "app": f"the standalone rerun failed too: the app failed, not Connect (Connect run "
                   f"{failed.run_id} counts as an app failure)",
            "unknown": f"the standalone rerun was cancelled: whose failure Connect run {failed.run_id} was "
                       f"stays unknown",
        }[settled])
        return decision, outcome

    def _rerun_out_of_memory(self, request: RunRequest, kind: AppKind, failed: Decision, workdir: Path,
                             result: LaunchResult, where: OomWhere) -> tuple[Decision, Outcome] | None:
        """Rerun once, with the memory the router gives it, a standalone run that ran out of memory: the
        rerun's decision and outcome; None (and why, printed) when there is no rerun."""
        found = failures.out_of_memory(self._memory_lines)  # the failed attempt's lines, until the next one
        oom_line = found.line if found else str(result.runs[-1]["error"])
        refusal = oom_rerun_refusal(request, failed.from_router,
                                    reruns=int(result.oom_rerun), cancelled=self._cancelled.is_set())
        if refusal:
            self.on_event(f"standalone run {failed.run_id} ran out of {where} memory; no rerun with more: "
                          f"{refusal}")
            return None
        self.on_event(f"standalone run {failed.run_id} ran out of {where} memory ({oom_line}); asking the "
                      f"router for its one rerun with more")
        try:
            answer = self.router.oom_rerun(failed.run_id, where, oom_line)
        except RouterRejected as exc:  # the policy's answer: at the ceiling, reruns off
            self.on_event(f"no rerun with more memory: {exc}")
            return None
        except RouterUnavailable as exc:
            self._router_down = True
            self.on_event(f"WARNING: {exc}; no rerun with more memory (the router sizes it)")
            return None
        decision = Decision.of(answer)
        self.on_event(f"router: {decision.mode} (run {decision.run_id}): {' '.join(decision.reasons)}")
        sentry.set_run_tags(run_id=decision.run_id, mode=decision.mode)
        result.oom_rerun, result.run_id, result.mode = True, decision.run_id, decision.mode
        outcome = self._attempt(request, kind, decision, workdir, result)
        self.on_event(f"the out-of-memory rerun {decision.run_id} of {failed.run_id} "
                      f"{result.runs[-1]['status']}")
        return decision, outcome

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._release()
        current = self._current
        if current is not None:
            current.stop("the launcher was asked to stop")

    def _release(self) -> None:
        """The preloaded interpreter will not be used (a JVM app, a standalone run, a stop, the end of the
        run)."""
        python, self._python = self._python, None
        if python is not None:
            terminate_group(python, grace_s=2)
        kind = self._kind
        if kind is not None:
            kind.release()

    # ---------------------------------------------------------------------------------------- decision

    def _record_compatibility(self, app_id: str, app: artifacts.ResolvedApp) -> None:
        findings = compat.check_path(app.source, app.main_class)
        if findings:
            self.on_event(f"compatibility check: {len(findings)} finding(s) that cannot work on Spark "
                          f"Connect, e.g. {findings[0]}")
        self._call_router(lambda: self.router.record_compatibility(app_id, [f.as_dict() for f in findings]))

    def _decide(self, request: RunRequest) -> Decision | None:
        try:
            answer = None if self._router_down else self.router.decide(
                request.app_id, request.mode, request.resources, request.spark_conf, request.airflow,
                can_wait=request.can_wait and request.mode == "auto")
            if answer is not None and answer.mode == "queued":
                answer = self._await_admission(answer)
                if answer is None:
                    return None
        except RouterUnavailable as exc:
            self._router_down = True
            answer = None
            self.on_event(f"WARNING: {exc}; continuing without the router")
        if answer is not None:
            decision = Decision.of(answer)
            self.on_event(f"router: {decision.mode} (run {decision.run_id}): {' '.join(decision.reasons)}")
            return decision
        mode = request.mode if request.mode != "auto" else self.settings.mode_if_router_unreachable
        why = ("forced" if request.mode != "auto"
               else "SPARK_ROUTER_MODE_IF_ROUTER_UNREACHABLE, since the router is unreachable")
        self.on_event(f"running {mode} ({why})")
        return self._local_decision(request, mode, why)

    # One long poll of a queued run's admission: short enough that a stop is seen within it.
    ADMISSION_POLL_S = 10.0

    def _await_admission(self, answer: DecisionAnswer) -> DecisionAnswer | None:
        """Wait for a queued run's admission without busy polling (long polls, each in a thread, so that a
        stop is seen at once): its decision once admitted or sent standalone; None when the launcher was
        stopped while it waited, after the router was told the run is cancelled (which takes it out of the
        queue)."""
        run_id, shown = answer.run_id, None
        assert run_id is not None, "a queued decision has a run"
        while answer.mode == "queued":
            progress = (answer.position, round(answer.predicted_wait_s or 0))
            if progress != shown:
                self.on_event(f"queued at position {answer.position}, predicted wait {progress[1]} s (run "
                              f"{run_id})")
                shown = progress
            box: dict[str, Any] = {}
            done = threading.Event()

            def poll(box: dict[str, Any] = box, done: threading.Event = done) -> None:
                try:
                    box["answer"] = self.router.admission(run_id, self.ADMISSION_POLL_S)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                    box["error"] = exc
                finally:
                    done.set()

            threading.Thread(target=poll, name="spark-router-admission", daemon=True).start()
            try:
                while not done.wait(0.2):
                    if self._cancelled.is_set():
                        break
            except BaseException:  # Ctrl-C, Airflow's timeout: out of the queue, then on
                self._cancelled.set()
            if self._cancelled.is_set():
                self.on_event(f"stopped while queued: run {run_id} is cancelled")
                self._call_router(lambda: self.router.report(run_id, "cancelled",
                                                             message="stopped while it waited in the queue"))
                return None
            if "error" in box:
                raise box["error"]
            answer = box["answer"]
        return answer

    def _local_decision(self, request: RunRequest, mode: str, why: str) -> Decision:
        run_id = f"local-{uuid.uuid4().hex[:12]}"
        confs = session_confs(request.app_id, run_id)
        return Decision(run_id, mode, self.settings.connect_url if mode == "connect" else None, confs, [why],
                        from_router=False)

    def _fallback(self, failed: Decision, request: RunRequest, reason: str) -> Decision:
        answer = None
        if failed.from_router:
            answer = self._call_router(lambda: self.router.fallback(failed.run_id, reason))
        if answer is None:
            return self._local_decision(request, "standalone", f"fallback after Connect failure: {reason}")
        return Decision.of(answer)

    def _report(self, decision: Decision, event: RunEventName, failure_kind: FailureKind | None = None,
                message: str | None = None, exit_code: int | None = None) -> None:
        """Tell the router how a run it decided goes (a run decided without it is not reported)."""
        if decision.from_router:
            self._call_router(lambda: self.router.report(decision.run_id, event, failure_kind, message,
                                                         exit_code))

    def _call_router(self, call: Callable[[], T]) -> T | None:
        """A best-effort report: a router that is down must not fail the run."""
        if self._router_down:
            return None
        try:
            return call()
        except RouterUnavailable as exc:
            self._router_down = True
            self.on_event(f"WARNING: {exc}; the run goes on, its history will be incomplete")
        except RouterRejected as exc:
            self.on_event(f"WARNING: {exc}")
        return None

    # ----------------------------------------------------------------------------------------- running

    def _attempt(self, request: RunRequest, kind: AppKind, decision: Decision, workdir: Path,
                 result: LaunchResult, falls_back: bool = False) -> Outcome:
        """One run of the app, reported to the router. ``falls_back``: a failed Connect run will be rerun
        standalone, so its failure is reported "pending" (the rerun's outcome settles it)."""
        self._report(decision, "started")
        self._memory_lines.clear()
        started = time.monotonic()
        if decision.mode == "connect":
            start, watchdog = self._prepare_connect(request, kind, decision, workdir)
        else:
            start, watchdog = self._prepare_standalone(request, kind, decision, workdir), None
        try:
            outcome = self._execute(start, watchdog)
        except BaseException as exc:  # raised into us from outside: the app is stopped already, say so
            why = f"interrupted by {type(exc).__name__}"
            self.on_event(f"{decision.mode} run {decision.run_id} {why}: the app's processes were stopped; "
                          f"the run is cancelled")
            self._report(decision, "cancelled", message=why)
            raise
        self._record(decision, outcome, time.monotonic() - started, result, falls_back)
        return outcome

    def _prepare_connect(self, request: RunRequest, kind: AppKind, decision: Decision,
                         workdir: Path) -> tuple[Callable[[], AppProcess], Callable[[], str | None]]:
        """How a Connect run starts, and the watchdog of its server."""
        url = decision.connect_url or self.settings.connect_url
        env = self._connect_env(request, kind.app, decision, url)
        self.on_event(f"starting connect run {decision.run_id}: {kind.describe()} ... in {workdir} "
                      f"(relative paths in the app resolve on the Connect server, not here)")
        local = self._local_relative_paths(request.args, workdir)
        if local:
            self.on_event(f"WARNING: relative paths resolve on the Connect server, not in {workdir}: "
                          f"{', '.join(local[:3])} may not be found there; pass absolute paths or URIs")
        return (lambda: kind.start_connect(request.args, env, workdir,
                                           self._on_app_line)), self._server_watchdog(url)

    def _prepare_standalone(self, request: RunRequest, kind: AppKind, decision: Decision,
                            workdir: Path) -> Callable[[], AppProcess]:
        """How a standalone run starts: spark-submit."""
        kind.release()
        command, env = self._standalone_command(request, kind, decision), self._standalone_env(decision)
        self.on_event(f"starting {decision.mode} run {decision.run_id}: {' '.join(command[:3])} ... in "
                      f"{workdir}")
        return lambda: AppProcess.start(command, env, self._on_app_line, cwd=workdir)

    def _on_app_line(self, line: str) -> None:
        """A line of the app's output: shown, and kept if it says the run ran out of memory (which may be long
        before its end, past the tail kept for the failure's summary)."""
        if failures.OUT_OF_MEMORY.search(line):
            self._memory_lines.append(line)
        self.on_line(line)

    def _record(self, decision: Decision, outcome: Outcome, elapsed: float, result: LaunchResult,
                falls_back: bool) -> None:
        """A run's end: classified, logged, added to the result and reported."""
        status = failures.status_of(outcome, self._cancelled.is_set())
        failure_kind: FailureKind | None = None
        error = oom = None
        if status == "failed":
            oom = None if outcome.stopped_because else failures.out_of_memory(self._memory_lines)
            error = oom.summary() if oom else failures.failure_summary(outcome)
            failure_kind = ("pending" if decision.mode == "connect" and falls_back
                            else failures.failure_kind(decision.mode, outcome))
        self.on_event(f"{decision.mode} run {decision.run_id} " + {
            "succeeded": f"succeeded in {elapsed:.1f} s",
            "failed": f"failed (exit code {outcome.exit_code}) after {elapsed:.1f} s"
                      + ("" if failure_kind == "pending" else f": {failure_kind} failure")
                      + (f", out of {oom.where} memory" if oom else ""),
            "cancelled": f"cancelled after {elapsed:.1f} s (exit code {outcome.exit_code})",
        }[status] + (f": {outcome.stopped_because}" if outcome.stopped_because else ""))
        result.runs.append(Attempt(run_id=decision.run_id, mode=decision.mode, status=status,
                                   exit_code=outcome.exit_code, failure_kind=failure_kind,
                                   seconds=round(elapsed, 2), error=error,
                                   out_of_memory=oom.where if oom else None))
        if status == "succeeded":
            self._report(decision, "succeeded", exit_code=0)
        elif status == "cancelled":
            self._report(decision, "cancelled", message=outcome.stopped_because, exit_code=outcome.exit_code)
        else:
            self._report(decision, "failed", failure_kind, error, outcome.exit_code)

    def _execute(self, start: Callable[[], AppProcess],
                 watchdog: Callable[[], str | None] | None) -> Outcome:
        if self._cancelled.is_set():
            return Outcome(143, [], "the launcher was asked to stop")
        self._current = start()
        if self._cancelled.is_set():  # cancel() came while the app was starting: it did not see it
            self._current.stop("the launcher was asked to stop")
        try:
            return self._current.wait(self.settings.run_timeout_s, watchdog)
        except BaseException as exc:  # raised into us from outside (Airflow's execution_timeout, Ctrl-C)
            self._current.stop(f"interrupted by {type(exc).__name__}")
            raise
        finally:
            self._current = None

    def _base_env(self, decision: Decision) -> dict[str, str]:
        env = {**os.environ, MODE_ENV: decision.mode, SESSION_CONFS_ENV: json.dumps(decision.session_confs)}
        for key in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_ROUTER_CONNECT_URL"):
            env.pop(key, None)
        # The same string hashes (set and dict order) in both modes, unless the user chose a seed.
        env.setdefault("PYTHONHASHSEED", runner.HASH_SEED)
        return env

    def _standalone_env(self, decision: Decision) -> dict[str, str]:
        env = self._base_env(decision)
        env.update({"JAVA_HOME": str(java_home(self.settings)), "PYSPARK_PYTHON": sys.executable,
                    "PYSPARK_DRIVER_PYTHON": sys.executable, **listener_env(self.settings)})
        if _on_this_machine(self.settings.standalone_master):
            env["SPARK_LOCAL_IP"] = "127.0.0.1"
        return env

    def _connect_env(self, request: RunRequest, app: artifacts.ResolvedApp, decision: Decision,
                     url: str) -> dict[str, str]:
        env = self._base_env(decision)
        # The app's own confs become session confs; ours (spark.router.*, the router's scheduler pool) win
        # over anything it sets: a pool of its own naming would stay on the server for good.
        pool = {SCHEDULER_POOL_CONF: decision.scheduler_pool} if decision.scheduler_pool else {}
        env[SESSION_CONFS_ENV] = json.dumps({**request.spark_conf, **pool, **decision.session_confs})
        env.update({
            "SPARK_ROUTER_CONNECT_URL": url,
            "SPARK_ROUTER_CONNECT_TIMEOUT_S": str(self.settings.connect_timeout_s),
            ARTIFACTS_ENV: os.pathsep.join(str(p) for p in app.artifacts),
            # An app that builds its own session (SparkSession.builder.getOrCreate()) connects here too;
            # its user id carries the app and run, which the router reads when the confs are missing.
            "SPARK_REMOTE": with_user_id(url, user_id(request.app_id, decision.run_id)),
            "SPARK_CONNECT_RELEASE_SESSION_ON_EXIT": "true",
            "PYTHONPATH": os.pathsep.join([*map(str, app.pythonpath),
                                           env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        })
        return env

    def _server_watchdog(self, url: str) -> Callable[[], str | None]:
        """A dead server shows as a refused connection; after connect_timeout_s of that, stop the app
        (an app's own client may otherwise retry for twenty minutes)."""
        parsed = urlparse(url.replace("sc://", "http://", 1))
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 15002
        timeout_s = self.settings.connect_timeout_s
        down_since: list[float] = []

        def check() -> str | None:
            try:
                with socket.create_connection((host, port), timeout=2):
                    down_since.clear()
                    return None
            except OSError:
                down_since[:] = down_since or [time.monotonic()]
                if time.monotonic() - down_since[0] >= timeout_s:
                    return f"the Connect server at {host}:{port} has been unreachable for {timeout_s:g} s"
                return None

        return check

    def _standalone_command(self, request: RunRequest, kind: AppKind, decision: Decision) -> list[str]:
        settings = self.settings
        command = [str(spark_home() / "bin" / "spark-submit"), "--master", settings.standalone_master,
                   "--name", request.app_id]
        conf = dict(request.spark_conf)
        if settings.listener_jar.exists():
            command += ["--jars", str(settings.listener_jar)]
            conf.update(listener_conf(settings, kind="standalone"))
        else:
            self.on_event(f"WARNING: listener jar {settings.listener_jar} not found: this run's metrics are "
                          f"not recorded (build it with `make listener`)")
        conf.update(decision.session_confs)
        # The router's sizing (never below the ask unless its policy allows) over what the request asked.
        resources: dict[str, Any] = {**request.resources, **decision.sized}
        for option in ("driver_memory", "executor_memory", "driver_cores", "executor_cores"):
            if resources.get(option) is not None:
                command += [f"--{option.replace('_', '-')}", str(resources[option])]
        if resources.get("num_executors") is not None:
            conf["spark.executor.instances"] = str(resources["num_executors"])
            if settings.standalone_master.startswith("spark://"):
                # A standalone cluster counts cores, not executors: the count becomes a cap of cores, of
                # executors that each have the asked (or one) core.
                if resources.get("executor_cores") is None:
                    command += ["--executor-cores", "1"]
                conf["spark.cores.max"] = str(resources["num_executors"]
                                              * (resources.get("executor_cores") or 1))
        if _on_this_machine(settings.standalone_master):
            conf.setdefault("spark.driver.host", "127.0.0.1")
            conf.setdefault("spark.driver.bindAddress", "127.0.0.1")
        if settings.standalone_master.startswith("local"):
            conf.setdefault("spark.ui.enabled", "false")
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        return kind.standalone_command(command, request.args)

    @staticmethod
    def _local_relative_paths(args: list[str], workdir: Path) -> list[str]:
        """The app's arguments that are relative paths of files here: on Connect they resolve on the
        server."""
        return [arg for arg in args if arg and not os.path.isabs(arg) and "://" not in arg
                and arg not in (".", "..") and (workdir / arg).exists()]


def oom_rerun_refusal(request: RunRequest, from_router: bool, reruns: int,
                      cancelled: bool = False) -> str | None:
    """Why a standalone run that ran out of memory is not rerun with more, or None: it is. ``reruns``: the
    out-of-memory reruns of this launch so far."""
    if reruns >= MAX_OOM_RERUNS:
        return (f"it is the out-of-memory rerun already, and a run is rerun {MAX_OOM_RERUNS} time(s) at "
                f"most; give it more memory by hand (or raise the policy's sizing ceilings)")
    if cancelled:
        return "the launcher was asked to stop"
    if not request.idempotent:
        return "the app is not marked idempotent, so it must not run twice"
    if not from_router:
        return "the run was decided without the router, which sizes the rerun"
    return None


def _on_this_machine(master: str) -> bool:
    """local[*], or a standalone cluster on loopback (`spark-router cluster`): the driver binds to
    127.0.0.1."""
    return master.startswith(("local", "spark://127.0.0.1:", "spark://localhost:"))


def with_user_id(url: str, user_id: str) -> str:
    """sc://host:port/;user_id=X, keeping any other parameters of the URL."""
    base, _, params = url.partition("/;")
    kept = [p for p in params.split(";") if p and not p.startswith("user_id=")]
    return f"{base.rstrip('/')}/;" + ";".join(kept + [f"user_id={user_id}"])
