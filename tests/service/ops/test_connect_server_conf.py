"""The local Connect server's settings: the shared file, what a cluster adds, what the operator overrides."""

from __future__ import annotations

import json
import os

import pytest

from service.ops import connect_server, spark_cluster
from service.ops.connect_server import SERVER_CONF, server_command, server_conf
from service.ops.ops_config import OpsSettings
from tests.support import free_port


def test_on_local_the_shared_settings_without_dynamic_allocation(tmp_path):
    conf = server_conf(OpsSettings(state_dir=tmp_path), "local[2]")
    assert conf["spark.scheduler.mode"] == "FAIR" and conf["spark.executor.maxNumFailures"] == "1000"
    # Spark ignores them on local[N]; the listener would report a ceiling the server does not have.
    assert not any(key.startswith("spark.dynamicAllocation.") for key in conf)
    assert "spark.executor.memory" not in conf


def test_on_a_cluster_small_executors_and_the_clusters_room_as_ceiling(tmp_path):
    settings = OpsSettings(state_dir=tmp_path)
    # A cluster of `spark-router cluster` recorded in the state dir (its master "alive": this process).
    state = spark_cluster.ClusterState(port=7177, ui_port=8180, workers=3, worker_cores=2, worker_memory="1g",
                                       started_at="2026-12-02T00:00:00+00:00", master_pid=os.getpid())
    spark_cluster.cluster_dir(settings).mkdir(parents=True)
    (spark_cluster.cluster_dir(settings) / "cluster.json").write_text(json.dumps(state.__dict__))
    conf = server_conf(settings, "spark://127.0.0.1:7177")
    assert conf["spark.dynamicAllocation.enabled"] == "true"
    assert conf["spark.dynamicAllocation.shuffleTracking.timeout"] == SERVER_CONF[
        "spark.dynamicAllocation.shuffleTracking.timeout"]
    assert (conf["spark.executor.memory"], conf["spark.executor.cores"]) == ("512m", "1")
    assert conf["spark.dynamicAllocation.maxExecutors"] == "6"  # 3 workers x 2 one-core executors of 512m
    # Memory bounds it too: 1g workers hold one executor of 768m each.
    bigger = settings.model_copy(update={"connect_executor_memory": "768m"})
    assert server_conf(bigger, "spark://127.0.0.1:7177")["spark.dynamicAllocation.maxExecutors"] == "3"
    # Another cluster: the shared ceiling; an explicit one wins; the operator's confs win over all.
    assert server_conf(settings, "spark://10.0.0.5:7077")["spark.dynamicAllocation.maxExecutors"] == "10"
    explicit = settings.model_copy(update={"connect_max_executors": 1, "connect_server_conf": {
        "spark.dynamicAllocation.executorIdleTimeout": "15s"}})
    conf = server_conf(explicit, "spark://127.0.0.1:7177")
    assert conf["spark.dynamicAllocation.maxExecutors"] == "1"
    assert conf["spark.dynamicAllocation.executorIdleTimeout"] == "15s"


def test_the_command_names_the_master(tmp_path):
    jar = tmp_path / "listener.jar"
    jar.write_bytes(b"")
    settings = OpsSettings(state_dir=tmp_path, listener_jar=jar, connect_master="local[2]")
    command = server_command(settings, 15002, 4040, master="spark://127.0.0.1:7077")
    assert command[command.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert "spark.executor.cores=1" in command
    assert server_command(settings, 15002, 4040)[command.index("--master") + 1] == "local[2]"


def test_a_master_that_does_not_answer_is_named_before_anything_starts(tmp_path):
    settings = OpsSettings(state_dir=tmp_path)
    master = f"spark://127.0.0.1:{free_port()}"
    with pytest.raises(connect_server.ConnectServerError, match="no Spark master answers at " + master):
        connect_server.start(settings, master=master, progress=lambda _m: None)
    assert connect_server.read_state(settings) is None


def test_the_local_restart_starts_the_server_again_on_its_master(tmp_path, monkeypatch):
    from service.ops import restart

    settings = OpsSettings(state_dir=tmp_path)  # its default master: local[2]
    running = connect_server.ServerState(pid=os.getpid(), port=25002, ui_port=24040, started_at="",
                                         log_file="", master="spark://127.0.0.1:7077")
    started = {}
    monkeypatch.setattr(connect_server, "read_state", lambda _settings: running)
    monkeypatch.setattr(connect_server, "stop", lambda _settings, progress: True)
    monkeypatch.setattr(connect_server, "start", lambda _settings, **kwargs: started.update(kwargs))
    restart.LocalBackend(settings, progress=lambda _m: None).restart()
    assert (started["master"], started["port"]) == ("spark://127.0.0.1:7077", 25002)
    assert started["ui_port"] == 24040
