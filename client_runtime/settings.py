"""Settings per process on one shared base (environment prefix ``SPARK_ROUTER_``).

Three kinds of process read the environment: the client (`spark-router run`, the session factory, the Airflow
operator), the router (`spark-router serve`) and operations (`spark-router connect-server`, `cluster`,
`restart-server`). Each has its own settings class and reads only its own variables:

- ``BaseRouterSettings`` (here): what all three read — the state dir, the default Connect server's URL, and
  the tokens a client sends and the router checks.
- ``ListenerSettings`` (here): where the router is, and what starts a Spark application with its listener —
  the client's standalone runs and ops' Connect servers.
- ``ClientSettings`` (here): the launcher's and the operator's own.
- ``RouterSettings`` (service/config.py): the router's database, secrets, limits and queue; its base
  ``ServiceSettings`` holds the admin token and the default server's id, which ops reads too.
- ``OpsSettings`` (service/ops/ops_config.py): the local Connect servers, the restart backends, Kubernetes.

The base and the client's classes live in the client runtime because dependencies run one way: the service and
the Airflow operator build on the client runtime, never the reverse. A setting has one home: the class of the
one process that reads it, else the narrowest base of the processes that do."""

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


class BaseRouterSettings(BaseSettings):
    """What every process reads; each process's settings class builds on it."""

    # Another process's SPARK_ROUTER_* variables are not read at all; another process's setting passed by
    # name (ClientSettings(database_url=...)) is an error, not silently dropped.
    model_config = SettingsConfigDict(env_prefix="SPARK_ROUTER_", extra="forbid")

    state_dir: Path = Field(default_factory=_default_state_dir,
                            description="Where the SQLite database, the local Connect server's pid, logs "
                                        "and Spark local dirs, and the listener spool live.")
    ingest_token: SecretStr | None = Field(default=None,
                                           description="Bearer token the listener must send, if set.")
    api_token: SecretStr | None = None
    connect_url: str = Field(default="sc://127.0.0.1:15002",
                             description="The shared server's Connect URL: the router hands it out with "
                                         "Connect decisions; the launcher uses it when the router is down.")

    def token(self, name: str) -> str | None:
        """A token setting's value (api_token, ingest_token; a service's also admin_token, metrics_token),
        or None when it is not set."""
        secret: SecretStr | None = getattr(self, name)
        return secret.get_secret_value() if secret is not None else None


class ListenerSettings(BaseRouterSettings):
    """Where the router is, and what starts a Spark application with its listener: the client's standalone
    runs and ops' local Connect servers (client_runtime/spark_env.py). Both also call the router's API at
    `url`."""

    url: str = Field(default="http://127.0.0.1:8765",
                     description="Base URL of the router service, for the listener and the launcher.")
    listener_jar: Path = Field(default=REPO_ROOT / "listener" / "build" / "spark-router-listener.jar")
    listener_spool_max_bytes: int = 256 * 1024 * 1024
    java_home: Path | None = Field(default=None, description="JDK 17; default $JAVA_HOME or the system one.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {value!r})")
        return value.rstrip("/")

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"


class ClientSettings(ListenerSettings):
    """The client's: the launcher (`spark-router run`), the session factory and the Airflow operator."""

    router_timeout_s: float = Field(default=3.0, gt=0, description="How long to wait for the router's "
                                                                   "decision.")
    mode_if_router_unreachable: Literal["connect", "standalone"] = Field(
        default="standalone", description="Mode of a run whose decision the router cannot give (it is down "
                                          "or too slow).")
    standalone_master: str = Field(default="local[*]",
                                   description="spark-submit --master for standalone runs (local[*], "
                                               "spark://, k8s://).")
    connect_timeout_s: float = Field(default=30.0, gt=0,
                                     description="How long a Connect client may fail to reach its server "
                                                 "before the run counts as a Connect failure.")
    run_timeout_s: float | None = Field(default=None, gt=0, description="Total time a run may take.")
    session_jar: Path = Field(default=REPO_ROOT / "client_runtime" / "java" / "build"
                              / "spark-router-session.jar",
                              description="The session helper of JVM apps "
                                          "(io.sparkrouter.session.RouterSession).")
    jvm_jars_dir: Path | None = Field(default=None,
                                      description="Spark's jars for JVM apps: the API jars they compile "
                                                  "against and, in connect-repl/, the JVM Connect client. "
                                                  "Default: pyspark's jars.")


@lru_cache
def get_settings() -> ClientSettings:
    """The client's settings, read once."""
    return ClientSettings()


def __getattr__(name: str) -> object:
    if name == "Settings":  # the one class of old: say where its fields went (issue 21)
        raise ImportError("client_runtime.settings.Settings is split per process: ClientSettings (here), "
                          "RouterSettings (service.config), OpsSettings (service.ops.ops_config)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
