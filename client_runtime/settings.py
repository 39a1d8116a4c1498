"""The one settings object of Spark Connect Router (environment prefix ``SPARK_ROUTER_``).

It lives in the client runtime because every component reads it and dependencies run one way: the service
and the Airflow operator build on the client runtime, never the reverse."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_state_dir() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "spark-router"


class Settings(BaseSettings):
    """Every knob of the router, the launcher and the local Connect server, read from the environment."""

    model_config = SettingsConfigDict(env_prefix="SPARK_ROUTER_", extra="ignore")

    state_dir: Path = Field(default_factory=_default_state_dir,
                            description="Where the SQLite database, the local Connect server's pid, logs "
                                        "and Spark local dirs, and the listener spool live.")
    database_url: str | None = Field(default=None,
                                     description="SQLAlchemy URL; default a SQLite file under state_dir. "
                                                 "Use postgresql+psycopg://… in production.")

    # The router service.
    url: str = Field(default="http://127.0.0.1:8765",
                     description="Base URL of the router service, for the listener and the launcher.")
    host: str = "127.0.0.1"
    port: int = 8765
    ingest_token: SecretStr | None = Field(default=None,
                                           description="Bearer token the listener must send, if set.")
    api_token: SecretStr | None = None
    admin_token: SecretStr | None = None
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0,
                                description="Largest request body the router takes (413 past it), refused before "
                                            "it is read; 16 MiB holds a batch of 10,000 stage records.")
    # `spark-router serve`'s connections (service/api/http_server.py): slow or stalled clients cannot hold them.
    header_read_timeout_s: float = Field(default=10, gt=0,
                                         description="How long a connection may take to send a whole request head, "
                                                     "from its opening or the end of the previous answer; then it is "
                                                     "closed (408 if part of a head came).")
    body_read_timeout_s: float = Field(default=30, gt=0,
                                       description="How long a request body may take to arrive after its head; then "
                                                   "408 and the connection is closed.")
    max_connections: int = Field(default=500, ge=1,
                                 description="Open connections per worker process of `spark-router serve`: past it a "
                                             "new connection closes the one idle the longest, or is answered 503 if "
                                             "every one has a request in progress.")

    heartbeat_retention_days: float = Field(default=7, gt=0, description="How long listener heartbeats are "
                                                                          "kept; older ones go as new ones arrive.")
    quarantine_retention_days: float = Field(default=30, gt=0, description="How long quarantined stage records are "
                                                                           "kept; older ones go as new ones arrive.")
    metrics_token: SecretStr | None = Field(default=None, description="Bearer token GET /metrics needs, if set "
                                                                      "(it lists server ids); unset: open.")
    # Bounded waits on the database: past them a request is answered 503 with Retry-After, never left hanging.
    db_connect_timeout_s: float = Field(default=5, gt=0, description="PostgreSQL: how long opening a connection "
                                                                     "may take (at least 2 s, libpq's floor).")
    db_statement_timeout_s: float = Field(default=10, gt=0,
                                          description="PostgreSQL: the longest a statement may run (the server's "
                                                      "statement_timeout; the router gives up 1 s later if the "
                                                      "server does not answer at all). SQLite: how long a write "
                                                      "waits for the database lock.")
    db_pool_timeout_s: float = Field(default=5, gt=0, description="How long a request waits for a free connection "
                                                                  "of the router's pool.")
    policy_file: Path | None = Field(default=None, description="Routing policy (YAML or TOML); re-read when it "
                                                               "changes. Default: the built-in policy.")
    # issue 22 queue: room on a Connect server, and the admission queue in front of the pool
    # (service/routing/admission.py; docs/operator-guide.md, "The admission queue").
    server_max_runs: int = Field(default=8, ge=1,
                                 description="Connect runs one server of the pool takes at once (decided or running); "
                                             "past it the server has no room. Each run is a session on the server's "
                                             "one driver; 8 is what the default policy's capacity (8 cores, 1 per run "
                                             "with no history) lets in anyway.")
    queue_max_length: int = Field(default=100, ge=0,
                                  description="Runs the admission queue holds at most; past it a run that finds no "
                                              "room is decided as without a queue (0: no queue).")
    queue_max_wait_s: float = Field(default=300, gt=0,
                                    description="The longest a run waits in the queue; then it runs standalone.")
    queue_standalone_startup_s: float = Field(
        default=30, gt=0, description="What a standalone application's start-up is taken to cost while the router "
                                      "has measured none: a run queues only when its predicted wait is shorter.")
    queue_poll_max_s: float = Field(default=30, gt=0, le=300,
                                    description="The longest one admission long poll (GET /api/v1/runs/{id}/admission"
                                                "?wait=S) is held open; a client asks again after it.")

    # The launcher (`spark-router run`) and the Airflow operator.
    router_timeout_s: float = Field(default=3.0, gt=0, description="How long to wait for the router's decision.")
    mode_if_router_unreachable: Literal["connect", "standalone"] = Field(
        default="standalone", description="Mode of a run whose decision the router cannot give (it is down or "
                                          "too slow).")
    standalone_master: str = Field(default="local[*]",
                                   description="spark-submit --master for standalone runs (local[*], spark://, k8s://).")
    connect_timeout_s: float = Field(default=30.0, gt=0,
                                     description="How long a Connect client may fail to reach its server before "
                                                 "the run counts as a Connect failure.")
    run_timeout_s: float | None = Field(default=None, gt=0, description="Total time a run may take.")

    # The shared Spark Connect server.
    connect_url: str = Field(default="sc://127.0.0.1:15002",
                             description="The shared server's Connect URL: the router hands it out with "
                                         "Connect decisions; the launcher uses it when the router is down.")
    connect_port: int = 15002
    connect_ui_port: int = 4040
    connect_master: str = Field(default="local[2]",
                                description="Master of the local Connect server: local[N], or spark://host:port of "
                                            "a standalone cluster (`spark-router cluster start`).")
    connect_driver_memory: str = "1g"
    connect_executor_memory: str = Field(default="512m", description="On a cluster: the local Connect server's "
                                                                     "spark.executor.memory.")
    connect_executor_cores: int = Field(default=1, ge=1, description="On a cluster: the local Connect server's "
                                                                     "spark.executor.cores.")
    connect_max_executors: int | None = Field(
        default=None, ge=1, description="On a cluster: the local Connect server's dynamic-allocation ceiling; default "
                                        "the executors a cluster of `spark-router cluster` has room for, else 10.")
    connect_server_conf: dict[str, str] = Field(
        default_factory=dict, description="More Spark settings of the local Connect server, as a JSON object; they "
                                          "win over the shared ones (service/ops/connect-server.conf).")
    connect_start_timeout_s: float = 180.0
    connect_server_id: str = Field(default="connect-local",
                                   description="Name the Connect server's listener reports under.")
    connect_ui_url: str | None = Field(default=None, description="The Connect server's Spark UI/REST base URL; "
                                                                "default http://127.0.0.1:<connect_ui_port>.")
    listener_jar: Path = Field(default=REPO_ROOT / "listener" / "build" / "spark-router-listener.jar")
    listener_spool_max_bytes: int = 256 * 1024 * 1024
    java_home: Path | None = Field(default=None, description="JDK 17; default $JAVA_HOME or the system one.")
    session_jar: Path = Field(default=REPO_ROOT / "client_runtime" / "java" / "build" / "spark-router-session.jar",
                              description="The session helper of JVM apps (io.sparkrouter.session.RouterSession).")
    jvm_jars_dir: Path | None = Field(default=None,
                                      description="Spark's jars for JVM apps: the API jars they compile against and, "
                                                  "in connect-repl/, the JVM Connect client. Default: pyspark's jars.")

    # `spark-router restart-server`.
    restart_backend: Literal["local", "kubernetes", "command"] = "local"
    restart_window_s: float = Field(default=1800, gt=0,
                                    description="How long to wait for the server to have no client work.")
    restart_poll_s: float = Field(default=5, gt=0)
    restart_command: str | None = Field(default=None, description="For the command backend: a shell command "
                                                                   "that restarts the server; {server_id} in it "
                                                                   "becomes the id of the server restarted.")
    kubernetes_namespace: str = "default"
    kubernetes_deployment: str = Field(default="spark-connect-server",
                                       description="For the kubernetes backend: the default server's Deployment.")
    kubernetes_deployments: dict[str, str] = Field(
        default_factory=dict, description="For the kubernetes backend and a pool: the Deployment of each server, "
                                          "as a JSON object {server id: Deployment} (the Helm chart sets it).")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {value!r})")
        return value.rstrip("/")

    def token(self, name: str) -> str | None:
        """A token setting's value (api_token, admin_token, ingest_token), or None when it is not set."""
        secret: SecretStr | None = getattr(self, name)
        return secret.get_secret_value() if secret is not None else None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'router.db'}"

    @property
    def resolved_connect_ui_url(self) -> str:
        return (self.connect_ui_url or f"http://127.0.0.1:{self.connect_ui_port}").rstrip("/")

    @property
    def connect_server_dir(self) -> Path:
        return self.state_dir / "connect-server"

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"


@lru_cache
def get_settings() -> Settings:
    return Settings()
