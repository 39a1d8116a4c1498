"""What runs next to a client app: the session factory apps call (``get_session``), and the launcher
(``spark-router run``)."""


def get_session(app_name: str | None = None):
    """The app's SparkSession, on Spark Connect or standalone as the launcher decided (see session.py)."""
    from client_runtime.session import get_session as factory

    return factory(app_name)
