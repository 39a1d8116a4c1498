"""The spark-submit command of a standalone run: what the developer asked for, on each kind of master."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_runtime.app_kinds import PythonApp
from client_runtime.artifacts import ResolvedApp
from client_runtime.launcher import Decision, Launcher, RunRequest
from client_runtime.settings import ClientSettings

APP = ResolvedApp(source=Path("/apps/job.py"), main=Path("/apps/job.py"))
DECISION = Decision("run-1", "standalone", None,
                    {"spark.router.appId": "etl.job", "spark.router.runId": "run-1"}, [], from_router=True)


def command(master: str, tmp_path: Path, decision: Decision = DECISION,
            **resources) -> tuple[list[str], dict[str, str]]:
    settings = ClientSettings(state_dir=tmp_path, standalone_master=master,
                              listener_jar=tmp_path / "listener.jar")
    (tmp_path / "listener.jar").write_bytes(b"")
    argv = Launcher(settings, on_event=lambda _m: None)._standalone_command(
        RunRequest(app_id="etl.job", app=str(APP.main), resources=resources), PythonApp(APP, settings),
        decision)
    confs = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "--conf")
    return argv, confs


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_on_a_standalone_cluster_the_executor_count_is_a_cap_of_cores(tmp_path):
    argv, confs = command("spark://127.0.0.1:7077", tmp_path, num_executors=3, executor_cores=2,
                          executor_memory="512m", driver_memory="1g")
    assert option(argv, "--master") == "spark://127.0.0.1:7077"
    assert (option(argv, "--executor-memory"), option(argv, "--executor-cores")) == ("512m", "2")
    assert option(argv, "--driver-memory") == "1g"
    assert confs["spark.cores.max"] == "6"  # 3 executors of 2 cores
    # The listener is attached, the run's ids travel as confs, and the driver binds to loopback.
    assert confs["spark.extraListeners"].endswith("RouterListener") and option(argv,
                                                                               "--jars").endswith("listener.jar")
    assert confs["spark.router.runId"] == "run-1"
    assert confs["spark.driver.host"] == "127.0.0.1"
    assert "spark.ui.enabled" not in confs  # a cluster run keeps its UI


def test_an_executor_count_without_cores_means_executors_of_one_core(tmp_path):
    argv, confs = command("spark://10.0.0.5:7077", tmp_path, num_executors=2)
    assert option(argv, "--executor-cores") == "1" and confs["spark.cores.max"] == "2"
    assert "spark.driver.host" not in confs  # a remote cluster must reach the driver by its own address


@pytest.mark.parametrize("master", ["local[2]", "k8s://https://api:6443"])
def test_other_masters_get_no_core_cap(master, tmp_path):
    _, confs = command(master, tmp_path, num_executors=2, executor_cores=2)
    assert "spark.cores.max" not in confs and confs["spark.executor.instances"] == "2"


def test_a_run_that_asks_for_nothing_gets_spark_defaults(tmp_path):
    argv, confs = command("spark://127.0.0.1:7077", tmp_path)
    assert "spark.cores.max" not in confs
    assert "--executor-cores" not in argv and "--executor-memory" not in argv


def test_the_routers_sizing_goes_over_the_ask(tmp_path):
    sized = Decision("run-1", "standalone", None, DECISION.session_confs, [], from_router=True,
                     sized={"executor_memory": "1792m", "num_executors": 3, "executor_cores": 1})
    argv, confs = command("spark://127.0.0.1:7077", tmp_path, sized, executor_memory="1g", num_executors=1,
                          driver_memory="2g")
    assert option(argv, "--executor-memory") == "1792m" and option(argv, "--executor-cores") == "1"
    assert option(argv, "--driver-memory") == "2g"  # not sized: as asked
    assert confs["spark.executor.instances"] == "3" and confs["spark.cores.max"] == "3"
