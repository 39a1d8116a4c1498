"""The router's settings (`spark-router serve`, `spark-router db`), and the base it shares with operations.

The client's settings and the shared base live in client_runtime/settings.py; operations' in
service/ops/ops_config.py. Each process reads only its own SPARK_ROUTER_* variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr

from client_runtime.settings import BaseRouterSettings


class ServiceSettings(BaseRouterSettings):
    """What the router and operations both read, and the client does not."""

    admin_token: SecretStr | None = None
    connect_server_id: str = Field(default="connect-local",
                                   description="Name the Connect server's listener reports under.")


class RouterSettings(ServiceSettings):
    """The router service's: its database, its HTTP server, its tokens and limits, the admission queue."""

    database_url: str | None = Field(default=None,
                                     description="SQLAlchemy URL; default a SQLite file under state_dir. "
                                                 "Use postgresql+psycopg://… in production.")
    host: str = "127.0.0.1"
    port: int = 8765
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0,
                                description="Largest request body the router takes (413 past it), refused "
                                            "before it is read; 16 MiB holds a batch of 10,000 stage "
                                            "records.")
    # `spark-router serve`'s connections (service/api/http_server.py): slow or stalled clients cannot hold
    # them.
    header_read_timeout_s: float = Field(default=10, gt=0,
                                         description="How long a connection may take to send a whole request "
                                                     "head, from its opening or the end of the previous "
                                                     "answer; then it is closed (408 if part of a head "
                                                     "came).")
    body_read_timeout_s: float = Field(default=30, gt=0,
                                       description="How long a request body may take to arrive after its "
                                                   "head; then 408 and the connection is closed.")
    max_connections: int = Field(default=500, ge=1,
                                 description="Open connections per worker process of `spark-router serve`: "
                                             "past it a new connection closes the one idle the longest, or "
                                             "is answered 503 if every one has a request in progress.")

    heartbeat_retention_days: float = Field(default=7, gt=0, description="How long listener heartbeats are "
                                                                          "kept; older ones go as new ones "
                                                                          "arrive.")
    quarantine_retention_days: float = Field(default=30, gt=0, description="How long quarantined stage "
                                                                           "records are kept; older ones go "
                                                                           "as new ones arrive.")
    metrics_token: SecretStr | None = Field(default=None, description="Bearer token GET /metrics needs, if "
                                                                      "set (it lists server ids); unset: "
                                                                      "open.")
    # Bounded waits on the database: past them a request is answered 503 with Retry-After, never left hanging.
    db_connect_timeout_s: float = Field(default=5, gt=0, description="PostgreSQL: how long opening a "
                                                                     "connection may take (at least 2 s, "
                                                                     "libpq's floor).")
    db_statement_timeout_s: float = Field(default=10, gt=0,
                                          description="PostgreSQL: the longest a statement may run (the "
                                                      "server's statement_timeout; the router gives up 1 s "
                                                      "later if the server does not answer at all). SQLite: "
                                                      "how long a write waits for the database lock.")
    db_pool_timeout_s: float = Field(default=5, gt=0, description="How long a request waits for a free "
                                                                  "connection of the router's pool.")
    policy_file: Path | None = Field(default=None, description="Routing policy (YAML or TOML); re-read when "
                                                               "it changes. Default: the built-in policy.")
    # issue 22 queue: room on a Connect server, and the admission queue in front of the pool
    # (service/routing/admission.py; docs/operator-guide.md, "The admission queue").
    server_max_runs: int = Field(default=8, ge=1,
                                 description="Connect runs one server of the pool takes at once (decided or "
                                             "running); past it the server has no room. Each run is a "
                                             "session on the server's one driver; 8 is what the default "
                                             "policy's capacity (8 cores, 1 per run with no history) lets in "
                                             "anyway.")
    queue_max_length: int = Field(default=100, ge=0,
                                  description="Runs the admission queue holds at most; past it a run that "
                                              "finds no room is decided as without a queue (0: no queue).")
    queue_max_wait_s: float = Field(default=300, gt=0,
                                    description="The longest a run waits in the queue; then it runs "
                                                "standalone.")
    queue_standalone_startup_s: float = Field(
        default=30, gt=0, description="What a standalone application's start-up is taken to cost while the "
                                      "router has measured none: a run queues only when its predicted wait "
                                      "is shorter.")
    queue_poll_max_s: float = Field(default=30, gt=0, le=300,
                                    description="The longest one admission long poll (GET "
                                                "/api/v1/runs/{id}/admission?wait=S) is held open; a client "
                                                "asks again after it.")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'router.db'}"


@lru_cache
def get_router_settings() -> RouterSettings:
    """The router's settings, read once per process."""
    return RouterSettings()
