"""The session factory apps call: one app file runs on the shared Connect server or as its own application.

    from client_runtime import get_session
    spark = get_session()

The launcher (`spark-router run`) says which mode through the environment:

- ``SPARK_ROUTER_MODE``: ``connect`` or ``standalone`` (unset: standalone, i.e. plain ``spark-submit``);
- ``SPARK_ROUTER_CONNECT_URL``: the server to connect to (connect mode);
- ``SPARK_ROUTER_SESSION_CONFS``: JSON object of session confs (``spark.router.appId``,
  ``spark.router.runId``, …; on Connect also ``spark.scheduler.pool``, the server's FAIR pool the router chose
  for the run);
- ``SPARK_ROUTER_ARTIFACTS``: ``os.pathsep``-separated Python files/zips to ship to the server, so the app's
  own modules (and the UDFs in them) work server-side;
- ``SPARK_ROUTER_CONNECT_TIMEOUT_S``: how long the client may retry an unreachable server (default 30 s).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
from typing import TYPE_CHECKING, cast

from pyspark.sql.connect.client.retries import DefaultPolicy

from client_runtime.protocol import ARTIFACTS_ENV, MODE_ENV, SESSION_CONFS_ENV

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.session import SparkSession as ConnectSession

DEFAULT_CONNECT_TIMEOUT_S = 30.0


def bounded_retry_policy(retry_budget_s: float) -> DefaultPolicy:
    """A retry policy whose back-offs add up to about retry_budget_s. The default one waits ~20 minutes
    before a client pointed at a dead server gives up."""
    initial_ms, multiplier, max_backoff_ms = 200, 2.0, 5000
    retries, total_ms, backoff = 0, 0.0, float(initial_ms)
    while total_ms + min(backoff, max_backoff_ms) <= retry_budget_s * 1000:
        total_ms += min(backoff, max_backoff_ms)
        backoff *= multiplier
        retries += 1
    return DefaultPolicy(max_retries=retries, initial_backoff=initial_ms, backoff_multiplier=multiplier,
                         max_backoff=max_backoff_ms, jitter=100, min_jitter_threshold=2000,
                         max_server_retry_delay=max_backoff_ms)


def connect_session(url: str, confs: dict[str, str],
                    retry_budget_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> ConnectSession:
    """A Spark Connect session with the given session confs that gives up on an unreachable server
    after about retry_budget_s, instead of the default client's twenty minutes."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    # What SparkSession.builder.remote() does: pyspark.sql.functions and friends dispatch on it.
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    session = ConnectSession(connection=url)
    session.client.set_retry_policies([bounded_retry_policy(retry_budget_s)])
    ConnectSession._set_default_and_active_session(session)
    if confs:
        # Silent: a conf the server refuses per session (a static one) is logged, not fatal; the policy
        # already sends runs that need such confs standalone.
        configs: dict[str, str | int | bool] = dict(confs)
        session.conf._set_all(configs=configs, silent=True)
    return session


def mode() -> str:
    return os.environ.get(MODE_ENV, "standalone")


def session_confs() -> dict[str, str]:
    raw = os.environ.get(SESSION_CONFS_ENV)
    return json.loads(raw) if raw else {}


def get_session(app_name: str | None = None) -> SparkSession:
    """The app's SparkSession, in the mode the launcher chose. Call it once, at the start of the app."""
    # At exit, Python's last garbage collection walks every object the client's imports made (pandas, pyarrow,
    # grpc): frozen out of its sight, a Connect run exits sooner (docs/benchmarks.md).
    atexit.register(gc.freeze)
    confs = session_confs()
    if mode() == "connect":
        url = os.environ.get("SPARK_ROUTER_CONNECT_URL")
        if not url:
            raise RuntimeError("SPARK_ROUTER_MODE=connect needs SPARK_ROUTER_CONNECT_URL (sc://host:port)")
        budget = float(os.environ.get("SPARK_ROUTER_CONNECT_TIMEOUT_S", DEFAULT_CONNECT_TIMEOUT_S))
        spark = connect_session(url, confs, retry_budget_s=budget)
        artifacts = [path for path in os.environ.get(ARTIFACTS_ENV, "").split(os.pathsep) if path]
        if artifacts:
            spark.addArtifacts(*artifacts, pyfile=True)
        # Release the server-side session at exit; otherwise it lingers for the session timeout (1 h).
        atexit.register(_stop_quietly, spark)
        # Typed as pyspark types what builder.remote().getOrCreate() returns: the API apps call is the same.
        return cast("SparkSession", spark)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if app_name:
        builder = builder.appName(app_name)
    for key, value in confs.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _stop_quietly(spark: ConnectSession) -> None:
    with contextlib.suppress(Exception):
        # the server may be gone already; exiting must not fail because of it
        spark.stop()
