"""The database engine, sessions, and schema migrations (Alembic); how long the router waits on the database,
and which database errors are worth a retry."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# What a 503 asks a client to wait before it tries again, and how long the router stops trying a database that
# did not answer (see Breaker).
RETRY_AFTER_S = 5
BREAKER_HOLD_S = 2.0


@dataclass(frozen=True)
class Bounds:
    """How long the router waits on its database (settings db_*): see docs/operator-guide.md, "Timeouts and
    limits"."""

    connect_timeout_s: float
    statement_timeout_s: float
    pool_timeout_s: float

    @classmethod
    def of(cls, settings) -> Bounds:
        return cls(settings.db_connect_timeout_s, settings.db_statement_timeout_s, settings.db_pool_timeout_s)

    @property
    def answer_timeout_s(self) -> float:
        """How long the router waits for any answer of a PostgreSQL server: the server's own statement timeout
        answers first; past this the server is taken for gone (frozen, or the network is)."""
        return self.statement_timeout_s + 1


def make_engine(url: str, bounds: Bounds | None = None, pool_size: int = 10,
                max_overflow: int = 20) -> Engine:
    """An engine; with `bounds`, every wait on the database is bounded (without: migrations, which may take
    long)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        in_file = bool(path) and path != ":memory:" and url.count("/") >= 3
        if in_file:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # SQLite's timeout: how long a write waits for the database lock ("database is locked" past it).
        lock_timeout = bounds.statement_timeout_s if bounds else 30
        options = {"pool_timeout": bounds.pool_timeout_s} if bounds and in_file else {}  # in memory: no queue
        engine = create_engine(url, connect_args={"timeout": lock_timeout, "check_same_thread": False},
                               **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if bounds is None:
        return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True,
                           pool_timeout=bounds.pool_timeout_s)
    event.listen(engine, "do_connect", _bounded_connect(bounds, Breaker()))
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the dashboard read while ingest writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # We issue BEGIN ourselves (below) instead of the driver's deferred BEGIN.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection) -> None:
    # A deferred transaction that reads, then writes, fails at once ("database is locked") when another
    # connection wrote in between; taking the write lock up front makes it wait its turn instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# ------------------------------------------------------------------------------ bounded waits (PostgreSQL)

class Breaker:
    """After the database did not answer at all (a connection or an answer past its timeout, a refused
    connection), new work fails at once for BREAKER_HOLD_S instead of each request waiting out its own
    timeout: requests queued behind frozen ones are then answered 503 within one timeout, not one timeout
    after another."""

    def __init__(self, hold_s: float = BREAKER_HOLD_S):
        self.hold_s = hold_s
        self.open_until = 0.0

    def trip(self) -> None:
        self.open_until = time.monotonic() + self.hold_s

    def check(self) -> None:
        if time.monotonic() < self.open_until:
            raise psycopg.OperationalError("the database did not answer lately; not asked again for a few "
                                           "seconds")


# psycopg >= 3.2: wait(timeout=) raises it
_WaitTimeout = getattr(psycopg.errors, "_WaitTimeout", TimeoutError)
_IDLE = psycopg.pq.TransactionStatus.IDLE


class BoundedConnection(psycopg.Connection):
    """A psycopg connection that waits for the server at most `answer_timeout_s` at a time: a server that
    stopped answering (frozen, or the network is) closes the connection with an OperationalError, which
    SQLAlchemy takes for a lost connection. Every exchange with the server (statements, COPY, commit, the
    pool's ping) goes through wait()."""

    answer_timeout_s: float | None = None
    breaker: Breaker | None = None

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):
        if self.breaker is not None and self.info.transaction_status == _IDLE:  # starting something new
            try:
                self.breaker.check()
            except psycopg.OperationalError:
                self.close()
                raise
        try:
            return super().wait(gen, interval, timeout if timeout is not None else self.answer_timeout_s)
        except _WaitTimeout:
            if self.breaker is not None:
                self.breaker.trip()
            self.close()
            raise psycopg.OperationalError(
                f"the database did not answer within {self.answer_timeout_s:g} s") from None


def _bounded_connect(bounds: Bounds, breaker: Breaker):
    """The engine's do_connect hook: a BoundedConnection, with libpq's connect timeout and the server's
    statement_timeout (appended to any options the URL sets)."""

    def connect(_dialect, _record, cargs, cparams):
        breaker.check()
        params = dict(cparams, connect_timeout=max(2, round(bounds.connect_timeout_s)))
        statement_timeout = f"-c statement_timeout={int(bounds.statement_timeout_s * 1000)}"
        params["options"] = f"{params.get('options') or ''} {statement_timeout}".strip()
        try:
            connection = BoundedConnection.connect(*cargs, **params)
        except psycopg.OperationalError:
            breaker.trip()
            raise
        connection.answer_timeout_s, connection.breaker = bounds.answer_timeout_s, breaker
        return connection

    return connect


@contextmanager
def driver_errors(connection: Connection, what: str):
    """Around work done with the driver directly (ingest's COPY, the decisions' statements): its errors come
    out as SQLAlchemy's, as from any statement, so that a deadlock or a timeout is a 503 like any other and a
    lost connection leaves the pool."""
    try:
        yield
    except psycopg.Error as error:
        dbapi_connection = connection.connection.dbapi_connection
        lost = dbapi_connection is None or dbapi_connection.closed or dbapi_connection.broken
        if lost:
            connection.invalidate(error)
        raise exc.DBAPIError.instance(what, None, error, psycopg.Error,
                                      connection_invalidated=lost) from error


def is_transient(error: BaseException) -> bool:
    """Whether the same request may work later: the pool had no free connection in time; a lost, refused or
    silent connection; a statement past its timeout, a deadlock or serialization failure (PostgreSQL); a
    locked database (SQLite)."""
    if isinstance(error, exc.TimeoutError):  # the pool's
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    return (error.connection_invalidated or isinstance(error.orig, psycopg.OperationalError)
            or "is locked" in str(error.orig))


def lost_a_race(error: BaseException) -> bool:
    """Whether the transaction lost a deadlock or a serialization race (PostgreSQL): the same work, tried
    again at once, will most likely pass. Other transient errors (the database away or too slow) will not."""
    # SQLSTATE class 40: transaction rollback (deadlock detected, serialization failure, ...).
    sqlstate = getattr(error.orig, "sqlstate", None) if isinstance(error, exc.DBAPIError) else None
    return (sqlstate or "").startswith("40")


@lru_cache
def get_engine(url: str, bounds: Bounds | None = None) -> Engine:
    return make_engine(url, bounds)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe when several replicas start at once."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # One replica migrates at a time; the others wait, then find nothing to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(7261530001)"))
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
