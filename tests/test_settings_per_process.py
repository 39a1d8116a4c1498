"""Settings per process on a shared base (issue 21): the client, the router and operations each read only
their own SPARK_ROUTER_* variables, and every setting has one home."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from client_runtime.settings import BaseRouterSettings, ClientSettings, ListenerSettings
from service.config import RouterSettings, ServiceSettings
from service.ops.ops_config import OpsSettings
from tests.support import REPO

PROCESSES = (ClientSettings, RouterSettings, OpsSettings)
# The router's secrets and the settings of its database: nothing a client process should know the name of.
ROUTER_ONLY = {"database_url", "admin_token", "metrics_token", "db_connect_timeout_s",
               "db_statement_timeout_s", "db_pool_timeout_s", "policy_file", "server_max_runs",
               "queue_max_length", "host", "port", "max_body_bytes"}
OPS_ONLY = {"restart_backend", "restart_command", "kubernetes_namespace", "kubernetes_deployment",
            "kubernetes_deployments", "connect_port", "connect_ui_port", "connect_master",
            "connect_server_conf"}
CLIENT_ONLY = {"router_timeout_s", "mode_if_router_unreachable", "standalone_master", "connect_timeout_s",
               "run_timeout_s", "session_jar", "jvm_jars_dir"}


def fields(cls) -> set[str]:
    return set(cls.model_fields)


def test_the_client_reads_none_of_the_router_s_or_ops_settings():
    assert fields(ClientSettings) & (ROUTER_ONLY | OPS_ONLY) == set()
    assert fields(ClientSettings) & (fields(RouterSettings) | fields(OpsSettings)) <= fields(ListenerSettings)


def test_the_router_reads_none_of_the_client_s_or_ops_settings():
    assert fields(RouterSettings) & (CLIENT_ONLY | OPS_ONLY) == set()
    # What it shares with the client is the base; with operations, the service's base.
    assert fields(RouterSettings) & fields(ClientSettings) == fields(BaseRouterSettings)
    assert fields(RouterSettings) & fields(OpsSettings) == fields(ServiceSettings)


def test_operations_read_none_of_the_router_s_database_or_the_client_s_launcher_settings():
    assert fields(OpsSettings) & (CLIENT_ONLY | (ROUTER_ONLY - {"admin_token"})) == set()


def test_every_setting_has_one_home():
    """A field is declared by one class only: the others that have it inherit it."""
    homes: dict[str, list[str]] = {}
    for cls in (BaseRouterSettings, ListenerSettings, ClientSettings, ServiceSettings, RouterSettings,
                OpsSettings):
        for name in cls.__annotations__:
            if name in cls.model_fields:
                homes.setdefault(name, []).append(cls.__name__)
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}
    assert set(homes) == set().union(*map(fields, PROCESSES))


@pytest.mark.parametrize("cls, other", [
    (ClientSettings, "database_url"), (ClientSettings, "admin_token"), (RouterSettings, "standalone_master"),
    (RouterSettings, "restart_backend"), (OpsSettings, "database_url"), (OpsSettings, "run_timeout_s")])
def test_another_process_s_setting_by_name_is_an_error(cls, other):
    with pytest.raises(ValidationError, match=other):
        cls(**{other: "x"})


def test_another_process_s_variables_are_not_read(monkeypatch):
    """A process started with every component's variables set (one environment for all, as in the image)
    reads its own and ignores the rest."""
    monkeypatch.setenv("SPARK_ROUTER_DATABASE_URL", "postgresql+psycopg://router@db/router")
    monkeypatch.setenv("SPARK_ROUTER_ADMIN_TOKEN", "secret")
    monkeypatch.setenv("SPARK_ROUTER_STANDALONE_MASTER", "spark://elsewhere:7077")
    monkeypatch.setenv("SPARK_ROUTER_RESTART_BACKEND", "kubernetes")
    monkeypatch.setenv("SPARK_ROUTER_URL", "http://router:8765/")
    client, router, ops = ClientSettings(), RouterSettings(), OpsSettings()
    assert not hasattr(client, "database_url") and not hasattr(client, "admin_token")
    assert client.standalone_master == "spark://elsewhere:7077" and client.url == "http://router:8765"
    assert router.database_url == "postgresql+psycopg://router@db/router"
    assert router.token("admin_token") == "secret"
    assert not hasattr(router, "standalone_master") and not hasattr(router, "restart_backend")
    assert ops.restart_backend == "kubernetes" and ops.token("admin_token") == "secret"
    assert not hasattr(ops, "database_url") and not hasattr(ops, "standalone_master")


def test_the_client_settings_import_nothing_of_the_service():
    code = ("import sys, client_runtime.settings, client_runtime.cli; "
            "assert not [m for m in sys.modules if m == 'service' or m.startswith('service.')]")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
