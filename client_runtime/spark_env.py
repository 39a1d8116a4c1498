"""Where Spark and Java are, and the confs that attach the router's listener to a Spark application: what the
launcher needs for a standalone run and the service for its local Connect server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from client_runtime.protocol import listener_confs
from client_runtime.settings import ListenerSettings

LISTENER_CLASS = "io.sparkrouter.listener.RouterListener"


class SparkEnvironmentError(RuntimeError):
    """Spark or Java is missing; the message says what to install."""


def spark_home() -> Path:
    try:
        import pyspark
    except ImportError as exc:
        raise SparkEnvironmentError("pyspark is not installed: run `make install`") from exc
    return Path(pyspark.__file__).resolve().parent


def java_home(settings: ListenerSettings) -> Path:
    candidates = [settings.java_home, os.environ.get("JAVA_HOME"), "/usr/lib/jvm/java-17-openjdk-amd64"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "bin" / "java").exists():
            return Path(candidate)
    java = shutil.which("java")
    if java:
        return Path(java).resolve().parent.parent
    raise SparkEnvironmentError("Java 17 not found: install a JDK 17 (e.g. apt-get install "
                                "openjdk-17-jdk-headless) or set JAVA_HOME")


def listener_conf(settings: ListenerSettings, kind: str) -> dict[str, str]:
    """The `spark.router.listener.*` confs that point our listener at the router. The ingest token is not
    among them: it reaches the listener through the environment (``listener_env``), never a command line."""
    return {"spark.extraListeners": LISTENER_CLASS,
            **listener_confs(url=settings.url, spoolDir=str(settings.spool_dir),
                             spoolMaxBytes=str(settings.listener_spool_max_bytes), kind=kind)}


def listener_env(settings: ListenerSettings) -> dict[str, str]:
    """The environment the listener reads its ingest token from (SPARK_ROUTER_INGEST_TOKEN), if one is set."""
    token = settings.token("ingest_token")
    return {"SPARK_ROUTER_INGEST_TOKEN": token} if token else {}
