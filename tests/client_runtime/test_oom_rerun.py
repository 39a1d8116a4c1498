"""Out of memory, without Spark: the classifier on what Spark and its cluster managers print (the executor and
driver lines are from real standalone runs), the bound of one rerun, and the launcher's rerun against a real
router process with a stand-in for spark-submit that needs 1g executors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from client_runtime import failures, protocol
from client_runtime.launcher import MAX_OOM_RERUNS, Launcher, RunRequest, oom_rerun_refusal
from client_runtime.process import AppProcess
from client_runtime.settings import ClientSettings
from tests.support import RouterProcess

# A standalone run of tests/apps/executor_oom.py with 512m executors (Spark 4, two workers), as the launcher
# sees it: the driver's log and the app's traceback in one stream (an excerpt, the lines as they were).
REAL_EXECUTOR_OOM = (Path(__file__).parent / "executor_oom_output.txt").read_text().splitlines()


def test_a_real_executor_out_of_memory_is_the_executors():
    found = failures.out_of_memory(REAL_EXECUTOR_OOM)
    assert found is not None and found.where == "executor"
    assert "Lost task 0.0" in found.line and "java.lang.OutOfMemoryError: Java heap space" in found.line
    assert found.summary().startswith("out of executor memory: ")
    # The line comes first in the output, the Caused-by line (no executor named) later: still the executor's.
    assert failures.out_of_memory(REAL_EXECUTOR_OOM[-1:]).where == "driver"


@pytest.mark.parametrize("line", [
    # YARN: a container over its memory limit
    "ExecutorLostFailure (executor 3 exited caused by one of the running tasks) Reason: Container killed by "
    "YARN for exceeding physical memory limits. 5.5 GB of 5.5 GB physical memory used.",
    "Container [pid=1234,containerID=container_1_0001_01_000002] is running beyond physical memory limits.",
    "ExecutorLostFailure (executor 7 exited caused by one of the running tasks) Reason: Container marked as "
    "failed: container_1_0001_01_000008 on host: worker-3. Exit status: 143. Diagnostics: Container killed "
    "on request. Exit code is 143",
    # Kubernetes: the pod's memory limit, the OS's OOM killer
    "ExecutorLostFailure (executor 2 exited caused by one of the running tasks) Reason: The executor with id "
    "2 exited with exit code 137(SIGKILL, possible container OOM).",
    "ExecutorLostFailure (executor 1 exited unrelated to the running tasks) Reason: Executor killed by the "
    "OS",
    # Spark's execution memory refused, the JVM's GC overhead limit, the standalone OOM exit code
    "org.apache.spark.memory.SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE_MEMORY] Unable to acquire 65536 bytes "
    "of memory, got 0.",
    "WARN TaskSetManager: Lost task 3.0 in stage 2.0 (TID 9) (10.0.0.5 executor 1): "
    "java.lang.OutOfMemoryError: GC overhead limit exceeded",
    "ERROR TaskSchedulerImpl: Lost executor 4 on 10.0.0.7: Command exited with code 137",
])
def test_executor_out_of_memory_as_cluster_managers_say_it(line):
    found = failures.out_of_memory(["INFO SparkContext: Running Spark version 4.0.1", line])
    assert found is not None and found.where == "executor", line


def test_a_real_driver_out_of_memory_is_the_drivers():
    # A standalone run's driver (--driver-memory 512m) collecting 4 x 100 MiB strings (Spark 4).
    real = ["py4j.protocol.Py4JJavaError: An error occurred while calling o34.collectToPython.",
            ": java.lang.OutOfMemoryError: Java heap space",
            "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)"]
    assert failures.out_of_memory(real) == failures.OutOfMemory("driver", real[1])


@pytest.mark.parametrize("line", [
    'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space',
    ': java.lang.OutOfMemoryError: GC overhead limit exceeded',
    'Exception in thread "task-result-getter-1" java.lang.OutOfMemoryError: Java heap space',
    "org.apache.spark.SparkException: Not enough memory to build and broadcast the table to all worker "
    "nodes. As a workaround, you can either disable broadcast by setting "
    "spark.sql.autoBroadcastJoinThreshold to -1 or increase the spark driver memory by setting "
    "spark.driver.memory to a higher value.",
])
def test_the_drivers_own_out_of_memory(line):
    found = failures.out_of_memory(
        ["py4j.protocol.Py4JJavaError: An error occurred while calling o57.collect", line])
    assert found is not None and found.where == "driver", line


@pytest.mark.parametrize("line", [
    "pyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] orders",
    "INFO MemoryStore: MemoryStore started with capacity 434.4 MiB",
    "INFO SparkContext: spark.executor.memory=512m",
    "ERROR TaskSchedulerImpl: Lost executor 0 on 127.0.0.1: Command exited with code 1",
    "ExecutorLostFailure (executor 1 exited unrelated to the running tasks) Reason: Remote RPC client "
    "disassociated.",
    # out of memory that more heap does not cure
    'Exception in thread "main" java.lang.OutOfMemoryError: unable to create native thread: possibly out of '
    'memory or process/resource limits reached',
    "java.lang.OutOfMemoryError: Metaspace",
    "Total size of serialized results of 16 tasks (1048.5 MiB) is bigger than spark.driver.maxResultSize",
])
def test_other_failures_are_not_out_of_memory(line):
    assert failures.out_of_memory([line]) is None


def test_one_out_of_memory_rerun_at_most():
    request = RunRequest(app_id="etl.a", app="app.py")
    assert MAX_OOM_RERUNS == 1
    assert oom_rerun_refusal(request, from_router=True, reruns=0) is None
    assert "rerun already" in str(oom_rerun_refusal(request, from_router=True, reruns=1))
    assert "idempotent" in str(oom_rerun_refusal(RunRequest(app_id="etl.a", app="app.py", idempotent=False),
                                                 from_router=True, reruns=0))
    assert "without the router" in str(oom_rerun_refusal(request, from_router=False, reruns=0))
    assert "stop" in str(oom_rerun_refusal(request, from_router=True, reruns=0, cancelled=True))


def test_the_router_reads_where_from_the_contract():
    from service.schemas import OomRerunRequest

    assert set(OomRerunRequest.model_fields["where"].annotation.__args__) == set(protocol.OOM_WHERE)


# ------------------------------------------------------------------------------ the launcher and a router

# spark-submit's stand-in: fails as executor_oom.py does below `needs` of executor memory (or always, or with
# an error that is not memory), prints what it was given.
FAKE_SUBMIT = textwrap.dedent('''\
    import sys
    args = sys.argv[1:]
    memory = args[args.index("--executor-memory") + 1] if "--executor-memory" in args else "1024m"
    mib = int(memory[:-1]) * (1024 if memory.endswith("g") else 1)
    print(f"submitted with --executor-memory {memory}")
    behaviour = args[-1]
    if behaviour == "app-error":
        print("pyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] orders")
        sys.exit(1)
    if behaviour == "always" or mib < 1024:
        print("WARN TaskSetManager: Lost task 0.0 in stage 0.0 (TID 0) (127.0.0.1 executor 0): "
              "java.lang.OutOfMemoryError: Java heap space")
        print("ERROR TaskSchedulerImpl: Lost executor 0 on 127.0.0.1: Command exited with code 52")
        for n in range(300):  # more output after it than the tail the failure's summary reads
            print(f"INFO ShutdownHookManager: line {n}")
        sys.exit(1)
    print("held 448 MiB in one task")
''')


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    state = tmp_path_factory.mktemp("oom-router")
    process = RouterProcess(f"sqlite:///{state / 'router.db'}", state).start()
    yield process
    process.stop()


@pytest.fixture
def launcher(router, tmp_path, monkeypatch):
    """A launcher whose standalone runs are FAKE_SUBMIT with spark-submit's arguments (and whose Connect runs,
    when asked for, fail at once)."""
    fake = tmp_path / "fake_submit.py"
    fake.write_text(FAKE_SUBMIT)
    command_of = Launcher._standalone_command

    def standalone_command(self, request, kind, decision):
        return [sys.executable, str(fake), *command_of(self, request, kind, decision)[1:]]

    def prepare_connect(self, request, kind, decision, workdir):
        command = [sys.executable, "-c", "print('StatusCode.UNAVAILABLE'); raise SystemExit(1)"]
        return (lambda: AppProcess.start(command, {}, self._on_app_line)), None

    monkeypatch.setattr(Launcher, "_standalone_command", standalone_command)
    monkeypatch.setattr(Launcher, "_prepare_connect", prepare_connect)
    events: list[str] = []
    launched = Launcher(ClientSettings(url=router.url, standalone_master="spark://127.0.0.1:7077"),
                        on_line=lambda line: None, on_event=events.append)
    launched.events = events
    app = tmp_path / "app.py"
    app.write_text("print('never run: the stand-in runs instead')\n")
    launched.app = str(app)
    return launched


def run(launcher, app_id: str, behaviour: str = "needs-1g", mode: str = "standalone",
        idempotent: bool = True):
    return launcher.run(RunRequest(app_id=app_id, app=launcher.app, args=[behaviour], mode=mode,
                                   resources=protocol.resources(executor_memory="512m"),
                                   idempotent=idempotent))


def test_a_standalone_run_out_of_memory_is_rerun_once_with_more_and_the_router_links_both(launcher, router):
    result = run(launcher, "etl.oom.once")
    assert result.exit_code == 0 and result.oom_rerun and not result.fell_back
    failed, rerun = result.runs
    assert (failed["status"], failed["out_of_memory"], failed["failure_kind"]) == ("failed", "executor",
                                                                                  "app")
    assert failed["error"].startswith("out of executor memory: WARN TaskSetManager: Lost task 0.0")
    assert rerun["status"] == "succeeded" and result.run_id == rerun["run_id"]
    said = "\n".join(launcher.events)
    assert f"standalone run {failed['run_id']} ran out of executor memory" in said
    assert "rerun once with 1.0 GiB (2x)" in said and "--executor-memory" not in said
    assert f"the out-of-memory rerun {rerun['run_id']} of {failed['run_id']} succeeded" in said

    first, second = (router.get(f"/api/v1/runs/{r['run_id']}") for r in result.runs)
    assert (first["status"], first["failure_kind"]) == ("failed", "app")
    assert first["oom_rerun_to"] == rerun["run_id"]
    assert "out of executor memory" in first["failure_message"]
    assert first["executor_memory"] == 512 << 20 and second["executor_memory"] == 1024 << 20
    assert (second["status"], second["oom_rerun_of"]) == ("succeeded", failed["run_id"])
    assert second["decision"]["rule"] == "oom-rerun"
    assert "ran out of executor memory" in second["decision"]["reasons"][0]["message"]


def test_a_rerun_out_of_memory_too_is_not_rerun_again(launcher, router):
    result = run(launcher, "etl.oom.always", "always")
    assert result.exit_code == 1 and result.oom_rerun and len(result.runs) == 2
    assert [r["out_of_memory"] for r in result.runs] == ["executor", "executor"]
    said = "\n".join(launcher.events)
    assert "it is the out-of-memory rerun already" in said
    second = router.get(f"/api/v1/runs/{result.runs[1]['run_id']}")
    assert second["status"] == "failed" and second["oom_rerun_to"] is None


def test_no_rerun_for_other_failures_nor_for_an_app_that_must_not_run_twice(launcher):
    other = run(launcher, "etl.oom.other", "app-error")
    assert len(other.runs) == 1 and other.runs[0]["out_of_memory"] is None and not other.oom_rerun
    assert "TABLE_OR_VIEW_NOT_FOUND" in other.runs[0]["error"]
    once = run(launcher, "etl.oom.once-only", idempotent=False)
    assert len(once.runs) == 1 and once.exit_code == 1
    assert "not marked idempotent" in launcher.events[-1]


def test_a_connect_run_that_falls_back_and_runs_out_of_memory_is_rerun_once(launcher, router):
    result = run(launcher, "etl.oom.fallback", mode="connect")
    assert result.fell_back and result.oom_rerun and result.exit_code == 0
    assert [(r["mode"], r["status"]) for r in result.runs] == [
        ("connect", "failed"), ("standalone", "failed"), ("standalone", "succeeded")]
    fallback = router.get(f"/api/v1/runs/{result.runs[1]['run_id']}")
    assert fallback["fallback_of"] == result.runs[0]["run_id"]
    assert fallback["oom_rerun_to"] == result.runs[2]["run_id"]
