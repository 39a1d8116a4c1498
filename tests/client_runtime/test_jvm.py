"""JVM apps without a Spark server: the classpaths, the command lines of both modes, jars as apps, the session
helper's reading of the launcher's environment, and how a JVM client's failure is classified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from client_runtime import artifacts, failures, jvm
from client_runtime.process import Outcome
from client_runtime.settings import ClientSettings
from tests.support import compile_jar

SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")


@pytest.fixture(scope="module")
def settings() -> ClientSettings:
    return ClientSettings()


def names(paths) -> list[str]:
    return [Path(path).name for path in paths]


def test_compile_classpath_is_the_helper_and_sparks_api(settings):
    classpath = jvm.compile_classpath(settings)
    assert classpath[0] == settings.session_jar and all(path.is_file() for path in classpath)
    assert [name.split("_")[0].split("-2.")[0] for name in names(classpath[1:])] == [
        "scala-library", "scala-reflect", "spark-common-utils", "spark-sql-api"]
    # Every Spark jar, for apps that use the classic API too.
    everything = jvm.classic_classpath(settings)
    assert any(name.startswith("spark-core_") for name in names(everything)) and len(everything) > 200


def test_connect_classpath_is_the_client_without_classic_spark(settings):
    classpath = jvm.connect_classpath(settings)
    assert classpath[0] == settings.session_jar
    assert classpath[1].name.startswith("spark-connect-client-jvm_")
    assert classpath[1].parent.name == "connect-repl"
    jars = names(classpath)
    # As Spark's launcher leaves them out of a remote shell: the builder then makes Connect sessions.
    assert not [name for name in jars if name.startswith(jvm.NOT_IN_CONNECT_CLIENT)]
    assert any(name.startswith("spark-core_") for name in jars)


def test_connect_and_submit_commands(settings, tmp_path):
    jar = tmp_path / "app.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("acme/Main.class", b"")
    command = jvm.connect_command(settings, jar, "acme.Main", ["--date", "2026-11-22"])
    assert command[0].endswith("/bin/java") and "--add-opens=java.base/java.nio=ALL-UNNAMED" in command
    classpath = command[command.index("-cp") + 1].split(os.pathsep)
    assert classpath[:2] == [str(jar), str(settings.session_jar)]
    assert command[-3:] == ["acme.Main", "--date", "2026-11-22"]
    assert f"-Dlog4j2.configurationFile={jvm.CLIENT_LOG_CONFIG}" in command
    # An app with its own logging configuration keeps it.
    with zipfile.ZipFile(jar, "a") as archive:
        archive.writestr("log4j2.xml", "<Configuration/>")
    assert not any("log4j2" in part for part in jvm.connect_command(settings, jar, "acme.Main", []))

    base = ["spark-submit", "--master", "local[2]", "--jars", "/x/listener.jar", "--conf", "a=b"]
    submit = jvm.submit_command(base, settings, jar, "acme.Main", ["1"])
    assert submit[:4] == ["spark-submit", "--master", "local[2]", "--jars"]
    assert submit[4] == f"/x/listener.jar,{settings.session_jar}"  # one --jars: spark-submit keeps the last
    assert submit[-4:] == ["--class", "acme.Main", str(jar), "1"] and submit.count("--jars") == 1
    without_listener = jvm.submit_command(["spark-submit"], settings, jar, "acme.Main", [])
    assert without_listener == ["spark-submit", "--jars", str(settings.session_jar), "--class", "acme.Main",
                                str(jar)]


def test_missing_jars_are_named(tmp_path):
    missing = ClientSettings(session_jar=tmp_path / "nope.jar")
    with pytest.raises(jvm.JvmAppError, match="nope.jar is not built: run `make install`"):
        jvm.compile_classpath(missing)
    with pytest.raises(jvm.JvmAppError, match="no Spark jars at"):
        jvm.connect_classpath(ClientSettings(jvm_jars_dir=tmp_path / "jars"))
    (tmp_path / "jars").mkdir()
    with pytest.raises(jvm.JvmAppError, match="no JVM Connect client"):
        jvm.require_jars(ClientSettings(jvm_jars_dir=tmp_path / "jars"))


def test_a_jar_as_the_app(tmp_path):
    work = tmp_path / "work"
    named = tmp_path / "named.jar"
    with zipfile.ZipFile(named, "w") as archive:
        # Manifest lines wrap at 72 bytes, continued after one space.
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: "
                                                 "com.acme.very.long.packag\r\n e.Main\r\n\r\n")
    resolved = artifacts.resolve(str(named), work)
    assert (resolved.main_class, resolved.main, resolved.artifacts) == (
        "com.acme.very.long.package.Main", named.resolve(), [named.resolve()])
    assert artifacts.resolve(str(named), work, "com.acme.Other").main_class == "com.acme.Other"

    unnamed = tmp_path / "unnamed.jar"
    with zipfile.ZipFile(unnamed, "w") as archive:
        archive.writestr("com/acme/Main.class", b"")
    with pytest.raises(artifacts.ArtifactError, match="names no Main-Class in its manifest: give the class"):
        artifacts.resolve(str(unnamed), work)
    (tmp_path / "broken.jar").write_text("not a zip")
    with pytest.raises(artifacts.ArtifactError, match="not a valid jar"):
        artifacts.resolve(str(tmp_path / "broken.jar"), work, "com.acme.Main")
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    with pytest.raises(artifacts.ArtifactError, match=r"a main class \(com.acme.Main\) is for a .jar app"):
        artifacts.resolve(str(app), work, "com.acme.Main")


def test_cli_classpath_and_bad_jvm_runs(tmp_path):
    printed = subprocess.run([SPARK_ROUTER, "classpath"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert printed.returncode == 0, printed.stderr
    jars = printed.stdout.strip().split(os.pathsep)
    assert jars[0].endswith("spark-router-session.jar") and all(Path(jar).is_file() for jar in jars)
    connect = subprocess.run([SPARK_ROUTER, "classpath", "--connect"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert "spark-connect-client-jvm_" in connect.stdout and "/spark-sql_" not in connect.stdout
    missing = subprocess.run([SPARK_ROUTER, "classpath"],
                             env={**os.environ, "SPARK_ROUTER_SESSION_JAR": "/nope.jar"}, capture_output=True,
                             text=True, timeout=60, check=False)
    assert missing.returncode == 1 and missing.stderr.startswith("error: the session helper jar /nope.jar")

    unnamed = tmp_path / "unnamed.jar"
    with zipfile.ZipFile(unnamed, "w") as archive:
        archive.writestr("com/acme/Main.class", b"")
    env = {**os.environ, "SPARK_ROUTER_STATE_DIR": str(tmp_path / "state"),
           "SPARK_ROUTER_URL": "http://127.0.0.1:9"}
    for args, message in ((["--app-id", "a", str(unnamed)], "names no Main-Class"),
                          (["--app-id", "a", "--class", "com.acme.Main", str(tmp_path / "app.py")],
                           "is for a .jar app")):
        result = subprocess.run([SPARK_ROUTER, "run", *args], env=env, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


JVM_UNSUPPORTED = textwrap.dedent("""\
    Exception in thread "main" org.apache.spark.SparkUnsupportedOperationException: [UNSUPPORTED_CONNECT_FEATURE.SESSION_SPARK_CONTEXT] Feature is not supported in Spark Connect: Access to the SparkContext. SQLSTATE: 0A000
    \tat org.apache.spark.sql.connect.ConnectClientUnsupportedErrors$.unsupportedFeatureException(ConnectClientUnsupportedErrors.scala:27)
    \tat org.apache.spark.sql.connect.SparkSession.sparkContext(SparkSession.scala:107)
    \tat demo.UsesSc.main(UsesSc.java:9)""").splitlines()  # noqa: E501 - Spark's output, verbatim
JVM_NO_ARTIFACT = textwrap.dedent("""\
    Exception in thread "main" org.apache.spark.SparkException: org.apache.spark.SparkClassNotFoundException: [INTERNAL_ERROR] Failed to load class: demo.Plain. Make sure the artifact where the class is defined is installed by calling session.addArtifact. SQLSTATE: XX000
    \tSuppressed: org.apache.spark.sql.connect.client.SparkConnectOperationIdException: Spark Connect operation ID: f6550a12""").splitlines()  # noqa: E501 - Spark's output, verbatim
JVM_SERVER_GONE = ["org.sparkproject.io.grpc.StatusRuntimeException: UNAVAILABLE: io exception"]
JVM_APP_ERROR = textwrap.dedent("""\
    Exception in thread "main" java.lang.IllegalArgumentException: bad input: expected 11 rows, found 10
    \tat acme.Job.main(Job.java:12)""").splitlines()


@pytest.mark.parametrize("tail, kind, summary", [
    (JVM_UNSUPPORTED, "connect", "[UNSUPPORTED_CONNECT_FEATURE.SESSION_SPARK_CONTEXT]"),
    (JVM_NO_ARTIFACT, "connect", "Failed to load class: demo.Plain"),
    (JVM_SERVER_GONE, "connect", "UNAVAILABLE: io exception"),
    (JVM_APP_ERROR, "app", "IllegalArgumentException: bad input"),
])
def test_a_jvm_clients_failure_is_classified_and_summed_up(tail, kind, summary):
    outcome = Outcome(1, tail, None)
    assert failures.failure_kind("connect", outcome) == kind
    # The exception's own line, not a stack frame or a suppressed exception under it.
    assert summary in failures.failure_summary(outcome)


HARNESS = textwrap.dedent("""\
    package io.sparkrouter.session;

    public class Harness {
        public static void main(String[] args) {
            try {
                String confs = System.getenv("SPARK_ROUTER_SESSION_CONFS");
                System.out.println("CONFS " + RouterSession.parseConfs(confs));
            } catch (IllegalArgumentException e) {
                System.out.println("CONFS " + e.getMessage());
            }
            System.out.println("CONNECT " + RouterSession.isConnect());
            try {
                RouterSession.builder();
                System.out.println("BUILDER ok");
            } catch (RuntimeException e) {
                System.out.println("BUILDER " + e.getMessage());
            }
        }
    }
    """)


def test_session_helper_reads_the_launchers_environment(settings, tmp_path):
    source = tmp_path / "Harness.java"
    source.write_text(HARNESS)
    jar = compile_jar(tmp_path / "harness.jar", [source], jvm.compile_classpath(settings))
    confs = {"spark.router.appId": "etl.orders", "spark.router.runId": "run-1",
             "spark.x": 'quote " backslash \\ tab \t unicode é \u2603'}
    base = {"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8", "SPARK_ROUTER_SESSION_CONFS": json.dumps(confs)}
    classpath = os.pathsep.join(map(str, [jar, *jvm.connect_classpath(settings)]))

    def harness(**env) -> list[str]:
        result = subprocess.run([str(jvm.java_home(settings) / "bin" / "java"), "-cp", classpath,
                                 "io.sparkrouter.session.Harness"], env={**base, **env}, capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return [line for line in result.stdout.splitlines()
                if line.startswith(("CONFS", "CONNECT", "BUILDER"))]

    expected_confs = "CONFS {" + ", ".join(f"{key}={value}" for key, value in confs.items()) + "}"
    assert harness(SPARK_ROUTER_MODE="connect") == [
        expected_confs, "CONNECT true",
        "BUILDER SPARK_ROUTER_MODE=connect needs SPARK_ROUTER_CONNECT_URL (sc://host:port)"]
    assert harness(SPARK_ROUTER_MODE="connect", SPARK_ROUTER_CONNECT_URL="sc://127.0.0.1:1")[1:] == [
        "CONNECT true", "BUILDER ok"]
    assert harness(SPARK_ROUTER_MODE="standalone")[1:] == ["CONNECT false", "BUILDER ok"]
    assert harness(SPARK_ROUTER_SESSION_CONFS='{"a": 1}')[0] == (
        "CONFS SPARK_ROUTER_SESSION_CONFS is not a JSON object of strings (expected '\"' at 6)")
    assert harness(SPARK_ROUTER_SESSION_CONFS="{}")[0] == "CONFS {}"
