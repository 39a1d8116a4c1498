"""The FastAPI application of the router."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from concurrent.futures import Future
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.api import (
    admin_routes,
    dashboard_routes,
    decision_routes,
    error_responses,
    history_routes,
    ingest_routes,
    prediction_routes,
)
from service.api.deps import require_metrics_token
from service.api.request_guard import RequestGuard
from service.config import RouterSettings, get_router_settings
from service.db import engine as db
from service.db.models import utcnow
from service.errors import Conflict, Invalid, NotFound, Unavailable
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
    _app.state.health.start()  # opens its connection now, not at the first /healthz
    yield
    gc.unfreeze()


HEALTH_TIMEOUT_S = 0.8  # /healthz answers within a second, whatever the database does


class HealthProbe:
    """SELECT 1 on a connection of its own (not the pool the requests share), in a thread of its own, one at a
    time: /healthz never waits for a free connection or a thread, and a probe still waiting on a silent
    database is not started again."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._running: Future | None = None

    def start(self) -> Future:
        with self._lock:
            if self._running is None or self._running.done():
                self._running = Future()
                threading.Thread(target=self._probe, args=(self._running,), name="healthz",
                                 daemon=True).start()
            return self._running

    def _probe(self, future: Future) -> None:
        try:
            # no BEGIN IMMEDIATE on SQLite: a write lock is no outage
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute("SELECT 1")
                cursor.close()
            finally:
                connection.close()
        except Exception as exc:  # noqa: BLE001 - whatever it is, the database is unavailable; /healthz says so
            future.set_exception(exc)
        else:
            future.set_result(None)


def _migrate(engine: Engine, url: str) -> None:
    if url.startswith("sqlite"):  # an in-memory database is the engine's own
        db.upgrade(engine)
        return
    # Without the statement timeout: a migration may take longer than any request should.
    migrations = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        db.upgrade(migrations)
    finally:
        migrations.dispose()


def _handle_errors(app: FastAPI, settings: RouterSettings) -> None:
    # The domain's errors, and nothing broader: a programming error stays a 500 with its traceback in the log.
    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    # The database is away, too slow, or the transaction lost a deadlock: the same request will work later. A
    # 503 with Retry-After tells the listener to keep the batch and retry, not to count it against the batch.
    # Anything else (a missing table, say) is a server error, for the log and Sentry.
    def unavailable(detail: str, why: str) -> JSONResponse:
        log.warning("%s (503): %s", detail, why)
        return JSONResponse({"detail": f"{detail}; retry later"}, status_code=503,
                            headers={"Retry-After": str(db.RETRY_AFTER_S)})

    @app.exception_handler(DBAPIError)
    async def database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        if not db.is_transient(exc):
            raise exc
        return unavailable("database unavailable", (str(exc).splitlines() or [type(exc).__name__])[0])

    @app.exception_handler(PoolTimeout)
    async def pool_exhausted(_request: Request, exc: PoolTimeout) -> JSONResponse:
        return unavailable("database unavailable",
                           f"no free connection within {settings.db_pool_timeout_s:g} s (the pool is "
                           "exhausted)")

    @app.exception_handler(Unavailable)
    async def retry_later(_request: Request, exc: Unavailable) -> JSONResponse:
        return unavailable("lost a race to a concurrent request", str(exc))

    # Every 422 in one shape, which never echoes a large input (nor a NUL or a lone surrogate).
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": error_details(exc.errors())}, status_code=422)

    @app.exception_handler(Invalid)
    async def invalid(_request: Request, exc: Invalid) -> JSONResponse:
        return JSONResponse({"detail": error_details([{"loc": exc.loc, "msg": str(exc),
                                                       "type": "value_error"}])},
                            status_code=422)


def create_app(settings: RouterSettings | None = None, migrate: bool = True) -> FastAPI:
    settings = settings or get_router_settings()
    url = settings.resolved_database_url
    engine = db.get_engine(url, db.Bounds.of(settings))
    if migrate:
        _migrate(engine, url)
    app = FastAPI(title="Spark Connect Router",
                  description="Routes each Spark application run to a shared Spark Connect server or a "
                              "separate Spark application, from its run history.",
                  version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.up_since = utcnow()  # a queued run's silence counts from here at the earliest (admission)
    app.state.engine = engine
    app.state.sessions = db.session_factory(engine)
    app.state.policies = PolicyStore(settings.policy_file)
    app.state.decider = DecisionBatcher(engine, app.state.policies, settings)
    # Tokens and the body-size limit before any body is read; the request metrics (added after: outside it)
    # count what it refuses.
    app.add_middleware(RequestGuard, settings=settings)
    observability.install(app, metrics_dependencies=[Depends(require_metrics_token)])
    for module in (ingest_routes, history_routes, decision_routes, prediction_routes):
        app.include_router(module.router)
    app.include_router(admin_routes.router)
    app.include_router(admin_routes.policy_router)
    app.include_router(admin_routes.restarts_router)
    app.include_router(admin_routes.pool_router)
    app.include_router(dashboard_routes.router)
    app.include_router(dashboard_routes.pages)
    app.mount("/static", StaticFiles(directory=dashboard_routes.STATIC_DIR), name="static")

    _handle_errors(app, settings)

    @app.get("/livez", tags=["health"])
    def livez() -> dict:
        """200 while the process serves requests (no database call): for liveness probes."""
        return {"status": "ok"}

    app.state.health_engine = db.make_engine(url, db.Bounds(2, 1, 1), pool_size=1, max_overflow=0)
    app.state.health = probe = HealthProbe(app.state.health_engine)

    @app.get("/healthz", tags=["health"], responses=error_responses.errors(503))
    async def healthz() -> JSONResponse:
        """200 when the service can reach its database; 503 (with Retry-After) when the database did not
        answer within a second or refused. Answers within a second whatever the database does."""
        answer = asyncio.wrap_future(probe.start())
        answer.add_done_callback(lambda future: future.exception())  # read, even when it comes too late
        done, _ = await asyncio.wait([answer], timeout=HEALTH_TIMEOUT_S)
        if done and answer.exception() is None:
            return JSONResponse({"status": "ok", "database": engine.dialect.name})
        if done:  # the driver's text (hosts, users) is for the log, not for callers
            error = answer.exception()
            log.warning("healthz: database unavailable: %s",
                        (str(error).splitlines() or [type(error).__name__])[0])
        else:
            log.warning("healthz: database unavailable: no answer within %g s", HEALTH_TIMEOUT_S)
        return JSONResponse({"status": "unhealthy", "database": "unavailable"}, status_code=503,
                            headers={"Retry-After": str(db.RETRY_AFTER_S)})

    # Where it listens is `spark-router serve`'s to say (SPARK_ROUTER_URL is where others reach it, maybe
    # elsewhere).
    log.info("router app ready (database: %s)", engine.url.render_as_string(hide_password=True))
    return app
