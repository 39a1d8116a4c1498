"""What the operator's two Airflow connections mean, without importing Airflow: the router's base URL from a
``spark_router`` connection, a Spark Connect URL from a ``spark_connect`` connection (the type
apache-airflow-providers-apache-spark defines, read generically), and the labels of the connection form."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

CONN_TYPE = "spark_router"
DEFAULT_CONN_ID = "spark_router_default"
HOOK_NAME = "Spark Connect Router"

# The connection form: host holds the router's URL (or just its host name), port and schema complete it,
# password holds the router's API token (SPARK_ROUTER_API_TOKEN). Login and extra mean nothing here.
UI_FIELD_BEHAVIOUR = {
    "hidden_fields": ["login", "extra"],
    "relabeling": {"host": "Router URL", "schema": "Protocol", "password": "API token"},
    "placeholders": {
        "host": "http://spark-router.example.com:8765 (or a host name)",
        "port": "8765 (when the URL has none)",
        "schema": "http or https (when the URL has none; default http)",
        "password": "the router's SPARK_ROUTER_API_TOKEN, if it has one",
    },
}


def router_url(host: str | None, port: int | str | None = None, schema: str | None = None) -> str:
    """The router's base URL (no trailing slash) from a connection's host, port and schema.

    ``host`` is a full URL (``https://router.example.com/spark-router``, a path prefix is kept) or a bare host
    name; ``schema`` is the protocol for a bare host (``http`` or ``https``, default ``http``), as with
    Airflow's HTTP connections; ``port`` goes into the URL unless the URL already names the same port.
    """
    host = (host or "").strip()
    if not host:
        raise ValueError("the connection has no host: set it to the router's URL, e.g. http://router:8765")
    if schema and schema.lower() not in ("http", "https"):
        raise ValueError(f"the connection's schema is the protocol, http or https; got {schema!r}")
    if "://" not in host:
        host = f"{(schema or 'http').lower()}://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the router's URL must be http(s)://host[:port][/path]; got {host!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the router's URL cannot have a query or a fragment; got {host!r}")
    netloc = parts.netloc
    if port not in (None, ""):
        port = int(port)
        if parts.port is None:
            netloc = f"{netloc}:{port}"
        elif parts.port != port:
            raise ValueError(f"the connection names two ports: {parts.port} in its URL and {port} in its "
                             f"port field")
    return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")


def run_url(base_url: str, run_id: str) -> str:
    """The run's page on the router's dashboard."""
    return f"{base_url.rstrip('/')}/runs/{quote(run_id, safe='')}"


def spark_connect_url(host: str | None, port: int | str | None = None, login: str | None = None,
                      password: str | None = None, extra: dict | None = None) -> str:
    """``sc://host:port/;user_id=…;token=…;use_ssl=…`` from a ``spark_connect`` connection, as the Spark
    provider's SparkConnectHook builds it: login is the user id, password the token, extra ``use_ssl``."""
    host = (host or "").strip()
    if not host:
        raise ValueError("the Spark Connect connection has no host")
    if "://" not in host:
        host = f"sc://{host}"
    parts = urlsplit(host)
    if parts.scheme != "sc" or not parts.hostname:
        raise ValueError(f"a Spark Connect URL is sc://host[:port]; got {host!r}")
    path, _, given = parts.path.partition(";")
    if path not in ("", "/"):
        raise ValueError(f"a Spark Connect URL has no path; got {path!r} in {host!r}")
    netloc = parts.netloc
    if port not in (None, "") and parts.port is None:
        netloc = f"{netloc}:{int(port)}"
    params = [p for p in given.split(";") if p]
    if login:
        params = [p for p in params if not p.startswith("user_id=")] + [f"user_id={quote(login)}"]
    if password:
        params = [p for p in params if not p.startswith("token=")] + [f"token={quote(password)}"]
    extra = extra or {}
    use_ssl = extra.get("use_ssl", extra.get("extra__spark_connect__use_ssl"))
    if use_ssl not in (None, ""):
        flag = use_ssl if isinstance(use_ssl, bool) else str(use_ssl).strip().lower() in ("true", "1", "yes")
        params = [p for p in params if not p.startswith("use_ssl=")] + [f"use_ssl={str(flag).lower()}"]
    return f"sc://{netloc}/" + (";" + ";".join(params) if params else "")
