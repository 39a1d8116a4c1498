"""Spark sessions for apps, in either mode."""

from __future__ import annotations

from pyspark.sql.connect.client.retries import DefaultPolicy
from pyspark.sql.connect.session import SparkSession as ConnectSession


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


def connect_session(url: str, confs: dict[str, str], retry_budget_s: float = 30.0) -> ConnectSession:
    """A Spark Connect session with the given session confs that gives up on an unreachable server
    after about retry_budget_s, instead of the default client's twenty minutes."""
    session = ConnectSession(connection=url)
    session.client.set_retry_policies([bounded_retry_policy(retry_budget_s)])
    ConnectSession._set_default_and_active_session(session)
    if confs:
        session.conf._set_all(configs=confs, silent=False)
    return session
