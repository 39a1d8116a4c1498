"""What runs next to a client app: the session factory apps call (``get_session``), and the launcher
(``spark-router run``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def get_session(app_name: str | None = None) -> SparkSession:
    """The app's SparkSession, on Spark Connect or standalone as the launcher decided (see session.py)."""
    from client_runtime.session import get_session as factory

    return factory(app_name)
