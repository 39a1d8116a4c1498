"""The Airflow hook of the router's connection type, ``spark_router``."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from airflow_plugins import connections


class SparkRouterHook(BaseHook):
    """Where the Spark Connect Router is, and how to authenticate to it, from an Airflow connection of type
    ``spark_router``: the router's URL in *host* (a full ``http(s)://host:port/path`` URL, or a host name
    completed by *port* and *schema* = ``http``/``https``), its API token (SPARK_ROUTER_API_TOKEN) in
    *password*.

    :param spark_router_conn_id: the Airflow connection of the router (default ``spark_router_default``).
    """

    conn_name_attr = "spark_router_conn_id"
    default_conn_name = connections.DEFAULT_CONN_ID
    conn_type = connections.CONN_TYPE
    hook_name = connections.HOOK_NAME

    def __init__(self, spark_router_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.spark_router_conn_id = spark_router_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: host is the router URL, password the API token; login and extra are hidden."""
        return connections.UI_FIELD_BEHAVIOUR

    def get_router_url(self) -> str:
        """The router's base URL, e.g. ``http://spark-router:8765``, without a trailing slash."""
        conn = self.get_connection(self.spark_router_conn_id)
        try:
            return connections.router_url(conn.host, conn.port, conn.schema)
        except ValueError as exc:
            raise ValueError(f"Airflow connection {self.spark_router_conn_id!r}: {exc}") from None

    def get_token(self) -> str | None:
        """The router's API token (the connection's password), or None when the router needs none."""
        return self.get_connection(self.spark_router_conn_id).password or None

    def get_conn(self) -> dict[str, str | None]:
        """The router's URL and API token."""
        return {"url": self.get_router_url(), "token": self.get_token()}

    def test_connection(self) -> tuple[bool, str]:
        """The connection form's Test button: the router answers a request that needs the API token."""
        import httpx

        try:
            url, token = self.get_router_url(), self.get_token()
        except ValueError as exc:
            return False, str(exc)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = httpx.get(f"{url}/api/v1/apps", params={"limit": 1}, headers=headers, timeout=5)
        except httpx.HTTPError as exc:
            return False, f"router at {url} unreachable: {type(exc).__name__}: {exc}"
        if response.status_code in (401, 403):
            return False, f"router at {url} refused the API token ({response.status_code})"
        if response.status_code >= 400:
            return False, f"router at {url} answered {response.status_code}: {response.text[:200]}"
        return True, f"router at {url} answered"


def spark_connect_url_of(conn_id: str) -> str:
    """The Spark Connect URL of an Airflow ``spark_connect`` connection (the type of
    apache-airflow-providers-apache-spark), read through the generic connection fields, so that the provider
    need not be installed."""
    conn = BaseHook.get_connection(conn_id)
    try:
        return connections.spark_connect_url(conn.host, conn.port, conn.login, conn.password,
                                             conn.extra_dejson)
    except ValueError as exc:
        raise ValueError(f"Airflow connection {conn_id!r}: {exc}") from None
