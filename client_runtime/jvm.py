"""JVM apps: one jar, both modes. The command lines that run a jar's main class on Spark Connect (``java``
with Spark's JVM Connect client) and standalone (``spark-submit --class``), and the classpath to compile
against.

A jar is built once against Spark's API (``spark-router classpath``) and carries no Spark of its own; which
Spark it meets is decided at launch:

- Connect: ``java -cp APP.jar:<session helper>:<Connect client classpath> MAIN ARGS``. The Connect client
  classpath is what Spark's own launcher gives a remote (Connect) shell: the JVM Connect client jar and
  Spark's jars without the classic SQL implementation and the Connect server. With those absent, the unified
  ``SparkSession.builder()`` builds Connect sessions (from ``SPARK_REMOTE``) even in an app that does not use
  the session helper.
- Standalone: ``spark-submit --class MAIN --jars <session helper>,<listener> APP.jar ARGS``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from client_runtime.artifacts import ArtifactError
from client_runtime.settings import ClientSettings
from client_runtime.spark_env import SparkEnvironmentError, java_home, spark_home

SESSION_CLASS = "io.sparkrouter.session.RouterSession"
CONNECT_CLIENT_GLOB = "connect-repl/spark-connect-client-jvm_*.jar"
# Left out of a Connect client's classpath, as Spark's launcher does for a remote shell: the classic SQL
# implementation and the Connect server (which would make the builder classic), and the API and common jars
# the Connect client jar carries its own copy of.
NOT_IN_CONNECT_CLIENT = ("spark-sql_", "spark-connect_", "spark-sql-api_", "spark-connect-common_")
# What an app compiles against: the unified SparkSession, Dataset, functions, the Java UDF interfaces.
# scala-reflect: javac needs it to read the signatures of udf() and friends (TypeTags).
API_JARS = ("spark-sql-api_", "spark-common-utils_", "scala-library-", "scala-reflect-")
# The opens Arrow (results) and Netty (gRPC) need on JDK 17.
JAVA_OPTIONS = ("--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED")
# Spark's default logging prints every INFO line of the client; a Connect client says only what matters.
CLIENT_LOG_CONFIG = Path(__file__).resolve().parent / "java" / "log4j2-connect-client.properties"


class JvmAppError(ArtifactError):
    """A JVM app cannot be launched here (a jar of ours or Spark's missing); the message says how to fix
    it."""


def jars_dir(settings: ClientSettings) -> Path:
    directory = settings.jvm_jars_dir or spark_home() / "jars"
    if not directory.is_dir():
        raise JvmAppError(f"no Spark jars at {directory}: install pyspark (`make install`) or set "
                          f"SPARK_ROUTER_JVM_JARS_DIR")
    return directory


def session_jar(settings: ClientSettings) -> Path:
    if not settings.session_jar.is_file():
        raise JvmAppError(f"the session helper jar {settings.session_jar} is not built: run `make install` "
                          f"(or client_runtime/java/build.sh), or set SPARK_ROUTER_SESSION_JAR")
    return settings.session_jar


def _spark_jars(directory: Path, prefixes: tuple[str, ...], include: bool) -> list[Path]:
    return [jar for jar in sorted(directory.glob("*.jar")) if jar.name.startswith(prefixes) == include]


def compile_classpath(settings: ClientSettings) -> list[Path]:
    """The session helper and Spark's API jars: what `spark-router classpath` prints for javac, sbt,
    Gradle."""
    return [session_jar(settings), *_spark_jars(jars_dir(settings), API_JARS, include=True)]


def classic_classpath(settings: ClientSettings) -> list[Path]:
    """The session helper and every Spark jar: for an app that uses Spark's classic API too (the SparkContext,
    RDDs); such an app runs standalone."""
    return [session_jar(settings), *sorted(jars_dir(settings).glob("*.jar"))]


def connect_client_jar(settings: ClientSettings) -> Path:
    found = sorted(jars_dir(settings).glob(CONNECT_CLIENT_GLOB))
    if not found:
        raise JvmAppError(f"no JVM Connect client ({CONNECT_CLIENT_GLOB}) in {jars_dir(settings)}")
    return found[-1]


def require_jars(settings: ClientSettings) -> None:
    """Raises JvmAppError, naming what is missing, unless Java, the session helper and the JVM Connect client
    are there."""
    try:
        java_home(settings)
    except SparkEnvironmentError as exc:
        raise JvmAppError(str(exc)) from None
    session_jar(settings)
    connect_client_jar(settings)


def connect_classpath(settings: ClientSettings) -> list[Path]:
    """The session helper, the JVM Connect client and the Spark jars a Connect client may use."""
    return [session_jar(settings), connect_client_jar(settings),
            *_spark_jars(jars_dir(settings), NOT_IN_CONNECT_CLIENT, include=False)]


def connect_command(settings: ClientSettings, jar: Path, main_class: str, args: list[str]) -> list[str]:
    """``java`` running the app as a Spark Connect client; the session helper reads the run's environment."""
    classpath = os.pathsep.join(str(path) for path in [jar, *connect_classpath(settings)])
    options = list(JAVA_OPTIONS)
    if CLIENT_LOG_CONFIG.is_file() and not _has_log_config(jar):
        options.append(f"-Dlog4j2.configurationFile={CLIENT_LOG_CONFIG}")
    return [str(java_home(settings) / "bin" / "java"), *options, "-cp", classpath, main_class, *args]


def submit_command(command: list[str], settings: ClientSettings, jar: Path, main_class: str,
                   args: list[str]) -> list[str]:
    """Completes a spark-submit command (master, name, confs so far) for a jar: the session helper joins the
    jars spark-submit ships (it keeps only the last --jars), then ``--class MAIN APP.jar ARGS``."""
    command = list(command)
    helper = str(session_jar(settings))
    if "--jars" in command:
        at = command.index("--jars") + 1
        command[at] = f"{command[at]},{helper}"
    else:
        command += ["--jars", helper]
    return [*command, "--class", main_class, str(jar), *args]


def _has_log_config(jar: Path) -> bool:
    """The app's jar configures log4j2 itself (log4j2.xml, log4j2.properties, ... at its root)."""
    try:
        with zipfile.ZipFile(jar) as archive:
            return any(name.startswith("log4j2") and "/" not in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
