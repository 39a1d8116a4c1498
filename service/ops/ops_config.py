"""Operations' settings: the local Spark Connect servers (`spark-router connect-server`), the standalone
cluster (`spark-router cluster`) and the drained restart (`spark-router restart-server`: its backends and
Kubernetes). They start Spark with the router's listener (client_runtime.settings.ListenerSettings) and call
the router's admin API (service.config.ServiceSettings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from client_runtime.settings import ListenerSettings
from service.config import ServiceSettings


class OpsSettings(ServiceSettings, ListenerSettings):
    """What operations' commands read."""

    # The local Spark Connect server.
    connect_port: int = 15002
    connect_ui_port: int = 4040
    connect_master: str = Field(default="local[2]",
                                description="Master of the local Connect server: local[N], or "
                                            "spark://host:port of a standalone cluster (`spark-router "
                                            "cluster start`).")
    connect_driver_memory: str = "1g"
    connect_executor_memory: str = Field(default="512m", description="On a cluster: the local Connect "
                                                                     "server's spark.executor.memory.")
    connect_executor_cores: int = Field(default=1, ge=1, description="On a cluster: the local Connect "
                                                                     "server's spark.executor.cores.")
    connect_max_executors: int | None = Field(
        default=None, ge=1, description="On a cluster: the local Connect server's dynamic-allocation "
                                        "ceiling; default the executors a cluster of `spark-router cluster` "
                                        "has room for, else 10.")
    connect_server_conf: dict[str, str] = Field(
        default_factory=dict, description="More Spark settings of the local Connect server, as a JSON "
                                          "object; they win over the shared ones "
                                          "(service/ops/connect-server.conf).")
    connect_start_timeout_s: float = 180.0
    connect_ui_url: str | None = Field(default=None, description="The Connect server's Spark UI/REST base "
                                                                 "URL; "
                                                                 "default http://127.0.0.1:<connect_ui_port>.")

    # `spark-router restart-server`.
    restart_backend: Literal["local", "kubernetes", "command"] = "local"
    restart_window_s: float = Field(default=1800, gt=0,
                                    description="How long to wait for the server to have no client work.")
    restart_poll_s: float = Field(default=5, gt=0)
    restart_command: str | None = Field(default=None, description="For the command backend: a shell command "
                                                                   "that restarts the server; {server_id} in "
                                                                   "it becomes the id of the server "
                                                                   "restarted.")
    kubernetes_namespace: str = "default"
    kubernetes_deployment: str = Field(default="spark-connect-server",
                                       description="For the kubernetes backend: the default server's "
                                                   "Deployment.")
    kubernetes_deployments: dict[str, str] = Field(
        default_factory=dict, description="For the kubernetes backend and a pool: the Deployment of each "
                                          "server, as a JSON object {server id: Deployment} (the Helm chart "
                                          "sets it).")

    @property
    def resolved_connect_ui_url(self) -> str:
        return (self.connect_ui_url or f"http://127.0.0.1:{self.connect_ui_port}").rstrip("/")

    @property
    def connect_server_dir(self) -> Path:
        return self.state_dir / "connect-server"


@lru_cache
def get_ops_settings() -> OpsSettings:
    """Operations' settings, read once per process."""
    return OpsSettings()
