"""The service's Prometheus metrics at ``/metrics`` and its Sentry hooks (client_runtime.sentry does the
reporting).

Counters and the request histogram live in the worker process that served the request. With several
uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory writable by the workers (emptied
at each start): ``/metrics`` then sums all workers. Without it, each scrape reads the one worker that
answered. Server and listener gauges are read from the database at scrape time, so they are the same
from any worker.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from client_runtime.sentry import init_sentry, set_run_tags
from service.db.models import utcnow
from service.history.queries import count_quarantined
from service.ops import dashboard_queries
from service.routing.admission_store import queue_status
from service.routing.pool import pool_status

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------- logs

# Control characters (C0, DEL, C1) and Unicode's line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def one_line(message: str) -> str:
    """A log message as one line: control characters escaped (a newline as \\n), so that text from a request (a
    heartbeat's server_id, an app id) can never make a line of its own that looks like the router's."""
    message = message.rstrip("\r\n")  # a message that ends its own line (uvicorn's) keeps the one line it has
    return _CONTROL.sub(_escape, message) if _CONTROL.search(message) else message


class OneLineLogRecord(logging.LogRecord):
    """Every log record of the process: its message (format and arguments together) is one line. Tracebacks
    (exc_info) are formatted apart and keep their lines."""

    def getMessage(self) -> str:
        return one_line(super().getMessage())


def one_line_log_records() -> None:
    """Make every log record of this process one line, whatever handler or formatter writes it: once, here,
    rather than at each call that logs what a client sent."""
    if logging.getLogRecordFactory() is logging.LogRecord:
        logging.setLogRecordFactory(OneLineLogRecord)


# ------------------------------------------------------------------------------------------------ metrics

_METRICS: dict[str, Any] = {}
_metrics_lock = threading.Lock()
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def _create_metrics() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram

    return {
        "DECISIONS": Counter("spark_router_decisions", "Routing decisions made, by mode and the deciding rule "
                             "(rule=fallback: a failed Connect run rerun standalone).", ["mode", "rule"]),
        "FALLBACKS": Counter("spark_router_fallbacks", "Failed Connect runs rerun as standalone applications."),
        "INGEST_STAGES": Counter("spark_router_ingest_stages", "Stage attempts the listeners sent: accepted "
                                 "(stored), duplicate (already stored, skipped) or quarantined (cannot be "
                                 "stored: kept aside with the reason).", ["outcome"]),
        "INGEST_UNATTRIBUTED": Counter("spark_router_ingest_unattributed_stages",
                                       "Accepted stage attempts without spark.router.appId."),
        "INGEST_REJECTED": Counter("spark_router_ingest_rejected", "Ingest requests refused: 401 (token), "
                                   "422 (invalid body) or another 4xx.", ["endpoint", "status"]),
        "REQUESTS": Histogram("spark_router_http_request_duration_seconds", "Time to answer an HTTP request, "
                              "by route template and method.", ["route", "method"], buckets=LATENCY_BUCKETS),
        "RESPONSES": Counter("spark_router_http_responses", "HTTP responses by route template, method and "
                             "status code.", ["route", "method", "status"]),
    }


def _metrics() -> dict[str, Any]:
    if not _METRICS:
        with _metrics_lock:
            if not _METRICS:
                _METRICS.update(_create_metrics())
    return _METRICS


def count_decision(decision, request=None):
    """Count a decision the route returns (and tag the request's Sentry events with its app and run).
    A fallback asked again for the same failed run returns the decision made before: not counted again."""
    set_run_tags(app_id=decision.app_id, run_id=decision.run_id)
    received = getattr(getattr(request, "state", None), "received_at", None) if request is not None else None
    if received is not None and decision.decided_at < received:
        return decision
    metrics = _metrics()
    metrics["DECISIONS"].labels(mode=decision.mode, rule=decision.rule).inc()
    if decision.rule == "fallback":
        metrics["FALLBACKS"].inc()
    return decision


def count_ingest(result):
    """Count a stored batch's stage attempts; returns the result for the route to return."""
    metrics = _metrics()
    metrics["INGEST_STAGES"].labels(outcome="accepted").inc(result.accepted)
    metrics["INGEST_STAGES"].labels(outcome="duplicate").inc(result.duplicates)
    metrics["INGEST_STAGES"].labels(outcome="quarantined").inc(result.quarantined)
    metrics["INGEST_UNATTRIBUTED"].inc(result.unattributed)
    return result


# ------------------------------------------------------------------------------------ the ASGI middleware

INGEST_PREFIX = "/api/v1/ingest/"
INGEST_ENDPOINTS = ("stages", "heartbeat")
DECISIONS_PATH = "/api/v1/decisions"


def _route_template(scope: dict) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return "<unmatched>"  # 404s: one label for all, whatever the path
    return path or "/"


class RequestMetrics:
    """Times every request by route template, counts responses and ingest rejections, and on a server
    error tags the request's Sentry event with the app and run (from the path, or a decision's body)."""

    def __init__(self, app, sentry: bool = False):
        self.app = app
        self.sentry = sentry

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})["received_at"] = utcnow()
        status = 500
        body = bytearray()

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def receive_body():  # keeps a decision request's body (small) for the Sentry tags
            message = await receive()
            if message["type"] == "http.request" and len(body) < 65536:
                body.extend(message.get("body", b""))
            return message

        sniff = self.sentry and scope["method"] == "POST" and scope["path"] == DECISIONS_PATH
        try:
            await self.app(scope, receive_body if sniff else receive, send_status)
        except Exception:
            if self.sentry:
                self._tag(scope, body)
            raise
        finally:
            route, method = _route_template(scope), scope["method"]
            metrics = _metrics()
            metrics["REQUESTS"].labels(route=route, method=method).observe(time.perf_counter() - started)
            metrics["RESPONSES"].labels(route=route, method=method, status=str(status)).inc()
            if scope["path"].startswith(INGEST_PREFIX) and 400 <= status < 500:
                # By path, not route: a 401 or 413 is answered before routing (service/api/request_guard.py).
                endpoint = scope["path"][len(INGEST_PREFIX):].split("/", 1)[0]
                endpoint = endpoint if endpoint in INGEST_ENDPOINTS else "other"
                metrics["INGEST_REJECTED"].labels(endpoint=endpoint, status=str(status)).inc()

    @staticmethod
    def _tag(scope: dict, body: bytearray) -> None:
        params = dict(scope.get("path_params") or {})
        if body and "app_id" not in params:
            try:
                params["app_id"] = json.loads(body).get("app_id")
            except (ValueError, AttributeError):
                pass
        set_run_tags(**{key: params.get(key) for key in ("app_id", "run_id", "server_id")})


# ------------------------------------------------------------------------------ gauges from the database

class DatabaseCollector:
    """Gauges read from the database at scrape time: each server's health and its listener's last
    heartbeat (queue, spool, dropped records), and the runs in flight. The same from every worker."""

    def __init__(self, app: FastAPI):
        self.app = app

    def describe(self):
        return []  # collected only when scraped

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily


        labels = ["server_id", "kind"]
        families = {
            "up": GaugeMetricFamily("spark_router_server_up", "1 when the server's listener sent a heartbeat "
                                    "within the policy's heartbeat_timeout_s.", labels=labels),
            "age": GaugeMetricFamily("spark_router_server_heartbeat_age_seconds",
                                     "Seconds since the server's last heartbeat.", labels=labels),
            "draining": GaugeMetricFamily("spark_router_server_draining",
                                          "1 while the server is drained (no new runs routed to it).", labels=labels),
            "uptime": GaugeMetricFamily("spark_router_server_uptime_seconds",
                                        "Seconds since the server's Spark application started.", labels=labels),
        }
        beats = {field: GaugeMetricFamily(f"spark_router_listener_{field}", text, labels=labels) for field, text in (
            ("queue_size", "Records waiting in the listener's in-memory queue (last heartbeat)."),
            ("spool_files", "Files in the listener's disk spool, waiting to be re-sent (last heartbeat)."),
            ("spool_bytes", "Bytes in the listener's disk spool (last heartbeat)."),
            ("dropped_records", "Records the listener dropped since it started: spool full (last heartbeat)."),
            ("active_sessions", "Spark Connect sessions open on the server (last heartbeat)."),
            ("active_operations", "Spark Connect operations running on the server (last heartbeat)."),
            ("running_jobs", "Spark jobs running on the server (last heartbeat)."))}
        in_flight = GaugeMetricFamily("spark_router_runs_in_flight", "Runs decided or running, not yet "
                                      "reported finished, by mode.", labels=["mode"])
        quarantined = GaugeMetricFamily("spark_router_quarantined_records", "Stage records kept aside because "
                                        "they cannot be stored (GET /api/v1/quarantine), within their retention "
                                        "(SPARK_ROUTER_QUARANTINE_RETENTION_DAYS).")
        pool = {field: GaugeMetricFamily(f"spark_router_pool_{field}", text, labels=["server_id"]) for field, text in (
            ("in_flight_cores", "Predicted cores of the Connect runs in flight on the server."),
            ("capacity_cores", "Cores the server can give concurrent runs, as placement counts them."),
            ("available", "1 when the server can take a new run (heard from lately, not draining)."),
            ("in_flight_runs", "Connect runs in flight on the server (decided or running)."),
            ("max_runs", "Connect runs the server takes at once (SPARK_ROUTER_SERVER_MAX_RUNS)."))}
        queue_length = GaugeMetricFamily("spark_router_queue_length", "Runs waiting in the admission queue for room "
                                         "on a Connect server (their clients still asking).")
        queue_oldest = GaugeMetricFamily("spark_router_queue_oldest_wait_seconds", "How long the run waiting longest "
                                         "in the admission queue has waited (0: none waits).")
        database = GaugeMetricFamily("spark_router_database_up", "1 when the scrape could read the database.")
        try:
            policy = self.app.state.policies.get()
            with self.app.state.sessions() as session:
                now = utcnow()
                for server, beat in dashboard_queries.latest_heartbeats(session, now):
                    status = dashboard_queries.server_status(server, beat, policy, now)
                    values = [server.server_id, server.kind]
                    families["up"].add_metric(values, 1 if status["up"] else 0)
                    if status["heartbeat_age_s"] is not None:
                        families["age"].add_metric(values, status["heartbeat_age_s"])
                    families["draining"].add_metric(values, 1 if server.draining else 0)
                    if status["uptime_s"] is not None:
                        families["uptime"].add_metric(values, status["uptime_s"])
                    for field, family in beats.items():
                        if beat is not None:
                            family.add_metric(values, getattr(beat, field))
                for member in pool_status(session, policy, self.app.state.settings):
                    for field, family in pool.items():
                        family.add_metric([member["server_id"]], float(member[field]))
                counts = dashboard_queries.in_flight_runs(session, policy)
                for mode in ("connect", "standalone"):
                    in_flight.add_metric([mode], counts.get(mode, 0))
                quarantined.add_metric([], count_quarantined(session))
                waiting = [entry for entry in queue_status(session, self.app.state.settings, now) if entry["live"]]
                queue_length.add_metric([], len(waiting))
                queue_oldest.add_metric([], max((entry["waited_s"] for entry in waiting), default=0.0))
        except Exception as exc:  # noqa: BLE001 - the database is down: say so, and still answer the scrape
            log.warning("metrics: cannot read the database: %s", str(exc).splitlines()[0])
            database.add_metric([], 0)
            yield database
            return
        database.add_metric([], 1)
        yield database
        yield from families.values()
        yield from beats.values()
        yield from pool.values()
        yield in_flight
        yield quarantined
        yield queue_length
        yield queue_oldest


def metrics_text(app: FastAPI) -> bytes:
    """The exposition: this process's (or, with PROMETHEUS_MULTIPROC_DIR, every worker's) counters and
    histograms, then the gauges read from the database."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(app.state.metrics_registry)


def install(app: FastAPI, metrics_dependencies: list | None = None) -> None:
    """One-line log records, Sentry (when SENTRY_DSN is set), the request metrics middleware and ``GET /metrics``
    (behind `metrics_dependencies`: its token). Call it before the routers are included: routes created after
    ``sentry_sdk.init`` get its request details."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    one_line_log_records()
    sentry = init_sentry("service")
    _metrics()
    app.state.metrics_registry = CollectorRegistry(auto_describe=False)
    app.state.metrics_registry.register(DatabaseCollector(app))
    app.add_middleware(RequestMetrics, sentry=sentry)

    async def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(await run_in_threadpool(metrics_text, app), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False,
                      dependencies=metrics_dependencies or [])
    if sentry:
        log.info("Sentry error reporting on (component=service)")
