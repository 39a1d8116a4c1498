"""The ops dashboard: its pages (no token: they hold no data) and the JSON they load (SPARK_ROUTER_API_TOKEN,
or the admin token, when set)."""

from __future__ import annotations

import hashlib
import html
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from service.api.deps import AppIdPath, RunIdPath, ServerIdQuery, SessionDep, require_api_token
from service.api.error_responses import errors
from service.errors import Invalid, UnknownApp, UnknownRun
from service.ops import dashboard_queries
from service.routing import admission_store

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"], dependencies=[Depends(require_api_token)],
                   responses=errors(401, 422, 503))
pages = APIRouter(include_in_schema=False)

Days = Annotated[float, Query(gt=0, le=366, description="The window: the last N days.")]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/servers")
def get_servers(request: Request, session: SessionDep) -> list[dict]:
    """Connect servers (and listeners heard from in the last 15 minutes): up, down or draining from the last
    heartbeat's age, uptime, the listener's queue and spool, the last restart, and each Connect server's place in
    the pool (capacity, load in flight, whether it can take a run)."""
    return dashboard_queries.servers(session, request.app.state.policies.get(), request.app.state.settings)


@router.get("/queue")
def get_queue(request: Request, session: SessionDep) -> list[dict]:
    """The admission queue: runs waiting for room on a Connect server, first come first, with their positions."""
    return admission_store.queue_status(session, request.app.state.settings)


@router.get("/executors")
def get_executors(session: SessionDep,
                  minutes: Annotated[float, Query(gt=0, le=7 * 24 * 60, description="The window: the last N minutes.")]
                  = 60) -> dict:
    """Executors and cores each Connect server held over the window (the most per step), from its heartbeats."""
    return dashboard_queries.executors_over_time(session, minutes)


@router.get("/restarts")
def get_restarts(session: SessionDep, server_id: ServerIdQuery = None, limit: Limit = 20) -> list[dict]:
    """Recent restarts, newest first."""
    return dashboard_queries.restarts(session, server_id, limit)


@router.get("/quarantine")
def get_quarantine(request: Request, session: SessionDep, limit: Limit = 10) -> dict:
    """How many stage records are quarantined (they could not be stored), the newest with their reasons, and how
    long they are kept."""
    return dashboard_queries.quarantine(session, limit, request.app.state.settings.quarantine_retention_days)


@router.get("/summary")
def get_summary(request: Request, session: SessionDep, days: Days = 1) -> dict:
    """Decisions by mode, fallbacks and the fallback rate, failures, runs in flight, task time by mode."""
    return dashboard_queries.summary(session, request.app.state.policies.get(), days)


@router.get("/decisions")
def get_decisions_over_time(session: SessionDep, days: Days = 1,
                            bucket: Literal["hour", "day"] = "hour") -> dict:
    """Decisions per hour or day by mode (connect, standalone, fallback), every bucket of the window present."""
    if bucket == "hour" and days > 31:
        raise Invalid("hourly buckets cover at most 31 days; use bucket=day", loc=("query", "days"))
    return dashboard_queries.decisions_over_time(session, days, bucket)


@router.get("/decisions/by-server")
def get_decisions_by_server(request: Request, session: SessionDep, days: Days = 1) -> dict:
    """Decisions in the window by the Connect server they placed the run on, and standalone (fallbacks apart)."""
    return dashboard_queries.decisions_by_server(session, days, request.app.state.settings.connect_server_id)


@router.get("/decisions/recent")
def get_recent_decisions(session: SessionDep, limit: Limit = 20) -> list[dict]:
    """The newest decisions with their first reason."""
    return dashboard_queries.recent_decisions(session, limit)


@router.get("/predictions")
def get_predictions(session: SessionDep, days: Days = 7) -> dict:
    """How good the predictions were: per app and mode, the median absolute % error of wall time and core-seconds."""
    return dashboard_queries.predictions(session, days)


@router.get("/apps")
def get_top_apps(session: SessionDep, days: Days = 7, limit: Limit = 50) -> list[dict]:
    """Apps by task time in the window, the busiest first."""
    return dashboard_queries.top_apps(session, days, limit)


@router.get("/apps/{app_id:path}", responses=errors(404))
def get_app(app_id: AppIdPath, request: Request, session: SessionDep, limit: Limit = 50) -> dict:
    """An app's state and its recent runs with metrics and decision reasons, newest first."""
    detail = dashboard_queries.app_detail(session, app_id, request.app.state.policies.get(), limit)
    if detail is None:
        raise UnknownApp(app_id)
    return detail


@router.get("/runs/{run_id}", responses=errors(404))
def get_run(run_id: RunIdPath, session: SessionDep) -> dict:
    """A run with its lifecycle, metrics, decision (reasons and request) and stage attempts."""
    detail = dashboard_queries.run_detail(session, run_id)
    if detail is None:
        raise UnknownRun(run_id)
    return detail


# -------------------------------------------------------------------------------------------------- pages

@lru_cache
def _page_template() -> str:
    digest = hashlib.sha256()
    for name in ("app.js", "style.css"):
        digest.update((STATIC_DIR / name).read_bytes())
    # The assets' URLs carry their hash, so a browser never runs a new page with an old script.
    return (STATIC_DIR / "index.html").read_text().replace("__VERSION__", digest.hexdigest()[:10])


# The pages load their script, style and data from this router only, and nothing inline runs: an injected
# <script> or a javascript: URL would not, next to the API token the page keeps.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")


def _page(request: Request) -> HTMLResponse:
    root = html.escape(request.scope.get("root_path", "").rstrip("/"), quote=True)
    return HTMLResponse(_page_template().replace("__ROOT__", root),
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                                 "X-Content-Type-Options": "nosniff"})


@pages.get("/")
def overview_page(request: Request) -> HTMLResponse:
    return _page(request)


@pages.get("/apps/{app_id:path}")
def app_page(request: Request) -> HTMLResponse:
    return _page(request)


@pages.get("/runs/{run_id}")
def run_page(request: Request) -> HTMLResponse:
    return _page(request)
