"""The FastAPI application of the router."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from client_runtime.settings import Settings, get_settings
from service.api import (
    admin_routes,
    dashboard_routes,
    decision_routes,
    error_responses,
    history_routes,
    ingest_routes,
)
from service.api.request_guard import RequestGuard
from service.db import engine as db
from service.errors import Conflict, Invalid, NotFound
from service.ops import observability
from service.routing.decider import DecisionBatcher
from service.routing.policy import PolicyStore
from service.schemas import error_details

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(_app: FastAPI):
    # What the app holds for its whole life (routes, schemas, SQLAlchemy metadata) is kept out of the garbage
    # collector's sight: each full collection would otherwise stall every request in flight (the p99 of
    # decisions, docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def transient(error: OperationalError) -> bool:
    """Whether the same statement may work later: a lost or refused connection, a deadlock or serialization
    failure (PostgreSQL), a locked database (SQLite)."""
    return (error.connection_invalidated or isinstance(error.orig, psycopg.OperationalError)
            or "database is locked" in str(error.orig))


def create_app(settings: Settings | None = None, migrate: bool = True) -> FastAPI:
    settings = settings or get_settings()
    engine = db.get_engine(settings.resolved_database_url)
    if migrate:
        db.upgrade(engine)
    app = FastAPI(title="Spark Connect Router",
                  description="Routes each Spark application run to a shared Spark Connect server or a "
                              "separate Spark application, from its run history.",
                  version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = db.session_factory(engine)
    app.state.policies = PolicyStore(settings.policy_file)
    app.state.decider = DecisionBatcher(engine, app.state.policies, settings)
    # Tokens and the body-size limit before any body is read; the request metrics (added after: outside it)
    # count what it refuses.
    app.add_middleware(RequestGuard, settings=settings)
    observability.install(app)
    for module in (ingest_routes, history_routes, decision_routes):
        app.include_router(module.router)
    app.include_router(admin_routes.router)
    app.include_router(admin_routes.policy_router)
    app.include_router(admin_routes.restarts_router)
    app.include_router(admin_routes.pool_router)
    app.include_router(dashboard_routes.router)
    app.include_router(dashboard_routes.pages)
    app.mount("/static", StaticFiles(directory=dashboard_routes.STATIC_DIR), name="static")

    # The domain's errors, and nothing broader: a programming error stays a 500 with its traceback in the log.
    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    # The database is away or the transaction lost a deadlock: the same request will work later. A 503 tells
    # the listener to keep the batch and retry, not to count it against the batch. Anything else (a missing
    # table, say) is a server error, for the log and Sentry.
    @app.exception_handler(OperationalError)
    async def database_unavailable(_request: Request, exc: OperationalError) -> JSONResponse:
        if not transient(exc):
            raise exc
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        return JSONResponse({"detail": "database unavailable; retry later"}, status_code=503,
                            headers={"Retry-After": "5"})
    # Every 422 in one shape, which never echoes a large input (nor a NUL or a lone surrogate).
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": error_details(exc.errors())}, status_code=422)

    @app.exception_handler(Invalid)
    async def invalid(_request: Request, exc: Invalid) -> JSONResponse:
        return JSONResponse({"detail": error_details([{"loc": exc.loc, "msg": str(exc), "type": "value_error"}])},
                            status_code=422)

    @app.get("/livez", tags=["health"])
    def livez() -> dict:
        """200 while the process serves requests (no database call): for liveness probes."""
        return {"status": "ok"}

    @app.get("/healthz", tags=["health"], responses=error_responses.errors(503))
    def healthz() -> JSONResponse:
        """200 when the service can reach its database."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:  # the driver's text (hosts, users) is for the log, not for callers
            log.warning("healthz: database unavailable: %s", str(exc).splitlines()[0])
            return JSONResponse({"status": "unhealthy", "database": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": engine.dialect.name})

    # Where it listens is `spark-router serve`'s to say (SPARK_ROUTER_URL is where others reach it, maybe elsewhere).
    log.info("router app ready (database: %s)", engine.url.render_as_string(hide_password=True))
    return app
