"""The Java constants are the wire contract's (client_runtime/protocol.py): the session confs the listener
reads and the lengths it cuts ids and texts to; the environment the JVM session helper (RouterSession) reads
the launcher's word from. Read from the Java source, so that neither side can drift alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from client_runtime import protocol
from service.db.models import App, Run
from tests.support import REPO

LISTENER = REPO / "listener" / "src" / "main" / "java" / "io" / "sparkrouter" / "listener"
SESSION = REPO / "client_runtime" / "java" / "src" / "main" / "java" / "io" / "sparkrouter" / "session"


def java_constants(name: str, folder: Path = LISTENER) -> dict[str, str | int]:
    """The `static final` String and int constants of a Java source file, by name."""
    source = (folder / name).read_text()
    found: dict[str, str | int] = {}
    for kind, constant, value in re.findall(r"static final (String|int) (\w+) = ([^;]+);", source):
        found[constant] = value.strip().strip('"') if kind == "String" else int(value.replace("_", ""))
    return found


def test_the_session_confs_the_listener_reads_are_the_protocols():
    confs = java_constants("StageRecords.java")
    assert confs["APP_ID"] == protocol.APP_ID_CONF == "spark.router.appId"
    assert confs["RUN_ID"] == protocol.RUN_ID_CONF == "spark.router.runId"


def test_the_listeners_own_confs_are_named_by_the_protocols_prefix():
    assert java_constants("ListenerConfig.java")["PREFIX"] == protocol.LISTENER_CONF_PREFIX
    assert protocol.listener_confs(serverId="s1") == {"spark.router.listener.serverId": "s1"}


@pytest.mark.parametrize("java, python", [
    ("APP_ID_MAX", "APP_ID_MAX"), ("RUN_ID_MAX", "RUN_ID_MAX"),
    ("CONNECT_SESSION_ID_MAX", "CONNECT_SESSION_ID_MAX"),
    ("CONNECT_OPERATION_ID_MAX", "CONNECT_OPERATION_ID_MAX"), ("CONNECT_USER_ID_MAX", "CONNECT_USER_ID_MAX"),
    ("NAME_MAX", "STAGE_NAME_MAX"), ("FAILURE_REASON_MAX", "FAILURE_REASON_MAX"),
])
def test_the_lengths_the_listener_cuts_to_are_the_protocols(java, python):
    assert java_constants("StageRecord.java")[java] == getattr(protocol, python)


@pytest.mark.parametrize("name", ["MODE_ENV", "SESSION_CONFS_ENV", "ARTIFACTS_ENV"])
def test_the_environment_the_jvm_session_helper_reads_is_the_protocols(name):
    assert java_constants("RouterSession.java", SESSION)[name] == getattr(protocol, name)


def test_the_jvm_session_helper_reads_its_environment_by_those_names_only():
    """No name of the launcher's environment spelled again in the helper's code (comments aside)."""
    code = "\n".join(line for line in (SESSION / "RouterSession.java").read_text().splitlines()
                     if not line.lstrip().startswith(("*", "/*", "//")) and "static final String" not in line)
    for name in ("MODE_ENV", "SESSION_CONFS_ENV", "ARTIFACTS_ENV"):
        assert f'"{getattr(protocol, name)}"' not in code


def test_the_database_holds_ids_as_long_as_the_protocol_allows():
    assert App.__table__.c.app_id.type.length == protocol.APP_ID_MAX
    assert Run.__table__.c.run_id.type.length == protocol.RUN_ID_MAX
    assert Run.__table__.c.app_id.type.length == protocol.APP_ID_MAX


def test_a_parse_that_finds_nothing_fails():
    """The reader must see the constants it checks (a renamed file or constant is a failure, not a pass)."""
    with pytest.raises(KeyError):
        java_constants("StageRecord.java")["NO_SUCH_CONSTANT"]
    assert len(java_constants("StageRecord.java")) >= 7
