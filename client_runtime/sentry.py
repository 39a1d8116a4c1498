"""Sentry error reports for the launcher, the Airflow operator and the service.

Needs only sentry-sdk, and does nothing without it or without ``SENTRY_DSN``: importing sentry-sdk would slow
every launcher start.
"""

from __future__ import annotations

import os
import sys
from typing import Any

COMPONENTS = ("service", "launcher", "operator")
RUN_TAGS = ("app_id", "run_id", "server_id", "dag_id", "task_id", "airflow_run_id", "try_number", "mode")


def init_sentry(component: str, **options: Any) -> bool:
    """Report errors to Sentry when ``SENTRY_DSN`` is set; returns whether Sentry is on.

    Every event is tagged ``component`` (service, launcher or operator). ``SENTRY_ENVIRONMENT``,
    ``SENTRY_RELEASE`` and ``SENTRY_TRACES_SAMPLE_RATE`` (default 0: errors only) are read too. A process
    whose Sentry is already on (Airflow's own ``[sentry]`` integration) keeps its client and gets the tag.

    :param component: which part of the router this process is: service, launcher or operator.
    :param options: more ``sentry_sdk.init`` options (tests pass ``transport`` settings here).
    """
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {', '.join(COMPONENTS)}, not {component!r}")
    if "sentry_sdk" not in sys.modules and not (options.get("dsn") or os.environ.get("SENTRY_DSN")):
        return False  # nothing to report to, and importing sentry-sdk would slow every launcher start
    try:
        import sentry_sdk
    except ImportError:
        return False
    if not sentry_sdk.get_client().is_active():
        dsn = options.pop("dsn", None) or os.environ.get("SENTRY_DSN")
        if not dsn:
            return False
        sentry_sdk.init(dsn=dsn, release=os.environ.get("SENTRY_RELEASE") or _release(),
                        environment=os.environ.get("SENTRY_ENVIRONMENT"),
                        traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0")),
                        send_default_pii=False, **options)
    sentry_sdk.get_global_scope().set_tag("component", component)
    return True


def set_run_tags(**tags: Any) -> None:
    """Tag this request's (service) or this process's (launcher, operator) Sentry events, e.g.
    ``set_run_tags(app_id="etl.orders", run_id="run-…")``. None values are skipped; a no-op without Sentry."""
    sentry_sdk = sys.modules.get("sentry_sdk")  # only if something set Sentry up
    if sentry_sdk is None:
        return
    for key, value in tags.items():
        if value is not None:
            sentry_sdk.set_tag(key, str(value)[:200])


def report_exception(error: BaseException | None = None) -> str | None:
    """Send an exception that the caller handles (and so Sentry would not see) now; returns the event id."""
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is None:
        return None
    event_id: str | None = sentry_sdk.capture_exception(error)
    return event_id


def _release() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"spark-connect-router@{version('spark-connect-router')}"
    except PackageNotFoundError:
        return None
