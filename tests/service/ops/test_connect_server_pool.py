"""Several local Connect servers side by side (`connect-server --server-id`): their settings, state dirs,
ports and status, without starting Spark (tests/service/routing/test_pool_spark.py runs two real ones)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.ops import connect_server
from service.ops.ops_config import OpsSettings

SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")


def test_the_default_server_keeps_its_settings_and_another_gets_its_own(tmp_path):
    settings = OpsSettings(state_dir=tmp_path, connect_server_id="connect-a")
    assert connect_server.member_settings(settings, None) is settings
    assert connect_server.member_settings(settings, "connect-a") is settings
    other = connect_server.member_settings(settings, "connect-b")
    assert other.connect_server_id == "connect-b"
    assert other.connect_server_dir == tmp_path / "connect-servers" / "connect-b" / "connect-server"
    assert other.spool_dir == tmp_path / "connect-servers" / "connect-b" / "spool"  # its listener's own spool
    assert {other.connect_port, other.connect_ui_port}.isdisjoint({15002, 4040})
    # Once started, it comes back on the same ports (a stable URL).
    other.connect_server_dir.mkdir(parents=True)
    (other.connect_server_dir / "ports.json").write_text(json.dumps({"port": 41001, "ui_port": 41002}))
    again = connect_server.member_settings(settings, "connect-b")
    assert (again.connect_port, again.connect_ui_port) == (41001, 41002)
    with pytest.raises(connect_server.ConnectServerError, match="server id"):
        connect_server.member_settings(settings, "../escape")


def test_each_server_reports_its_id_and_the_url_of_its_own_port(tmp_path):
    jar = tmp_path / "listener.jar"
    jar.write_bytes(b"")
    settings = OpsSettings(state_dir=tmp_path, listener_jar=jar)
    other = connect_server.member_settings(settings, "connect-b")
    command = connect_server.server_command(other, 41001, 41002)
    assert "spark.router.listener.serverId=connect-b" in command
    assert "spark.router.listener.connectUrl=sc://127.0.0.1:41001" in command
    assert f"spark.router.listener.spoolDir={other.spool_dir}" in command
    assert f"spark.local.dir={other.connect_server_dir / 'local'}" in command
    default = connect_server.server_command(settings, 15002, 4040)
    assert "spark.router.listener.connectUrl=sc://127.0.0.1:15002" in default
    assert f"spark.router.listener.serverId={settings.connect_server_id}" in default


def test_status_lists_every_local_server_the_default_first(tmp_path):
    settings = OpsSettings(state_dir=tmp_path, connect_server_id="connect-a")
    for server_id in ("connect-c", "connect-b"):
        connect_server.member_settings(settings, server_id).connect_server_dir.mkdir(parents=True)
    statuses = connect_server.pool_status(settings)
    assert [(s["server_id"], s["default"], s["running"]) for s in statuses] == [
        ("connect-a", True, False), ("connect-b", False, False), ("connect-c", False, False)]
    env = {**os.environ, "SPARK_ROUTER_STATE_DIR": str(tmp_path),
           "SPARK_ROUTER_CONNECT_SERVER_ID": "connect-a"}
    shown = subprocess.run([SPARK_ROUTER, "connect-server", "status"], env=env, capture_output=True,
                           text=True, check=False)
    assert shown.returncode == 3  # none running
    assert [line.split(":")[0] for line in shown.stdout.splitlines()] == [
        "connect-a (default)", "connect-b", "connect-c"]
    one = subprocess.run([SPARK_ROUTER, "connect-server", "status", "--server-id", "connect-b", "--json"],
                         env=env, capture_output=True, text=True, check=False)
    assert one.returncode == 3 and json.loads(one.stdout)["server_id"] == "connect-b"
    bad = subprocess.run([SPARK_ROUTER, "connect-server", "stop", "--server-id", "a/b"], env=env,
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "server id" in bad.stderr
