"""The Airflow operator, its hook and the example DAGs, on real Airflow 3.

Airflow reads its configuration and sets up logging when it is imported, so everything that imports it runs
in a child process with its own AIRFLOW_HOME (SQLite metadata database, `airflow db migrate` first) and
AIRFLOW__CORE__DAGS_FOLDER; this process only imports the Airflow-free parts. DAGs run through dag.test():
a failed task gives a DagRun in state failed, which the tests assert on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from airflow_plugins import connections
from tests.support import REPO, RouterProcess, free_port, running_jobs, wait_until

if importlib.util.find_spec("airflow") is None:
    pytest.skip("Airflow is not installed (the project's `airflow` extra)", allow_module_level=True)

PYTHON = sys.executable
BIN = Path(sys.executable).parent
TEST_DAGS = REPO / "tests" / "airflow_dags"
EXAMPLE_DAGS = REPO / "airflow_plugins" / "example_dags"
TEST_APPS = REPO / "tests" / "apps"

# Runs one DAG with dag.test() (TIMES times) and prints, per run, its state, task states and XComs (a
# mapped task's per instance: task[0], task[1], ...).
DAG_TEST = textwrap.dedent("""
    import json, os, sys
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    def name(row):  # a mapped task's instances by index: task[0], task[1], ...
        return row.task_id if row.map_index < 0 else f"{row.task_id}[{row.map_index}]"

    dag_id, conf, times = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    for _ in range(times):
        dag_run = dag.test(run_conf=conf)
        with create_session() as session:
            tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=dag_run.run_id)
            tasks = {name(ti): {"state": str(getattr(ti.state, "value", ti.state)),
                                "try_number": ti.try_number} for ti in tis}
            xcoms = {}
            for row in session.query(XComModel).filter_by(dag_id=dag_id, run_id=dag_run.run_id):
                xcoms.setdefault(name(row), {})[row.key] = XComModel.deserialize_value(row)
        state = str(getattr(dag_run.state, "value", dag_run.state))
        print("DAG_TEST_RESULT " + json.dumps({"state": state, "run_id": dag_run.run_id, "tasks": tasks,
                                               "xcoms": xcoms}, default=str), flush=True)
""")


def clean_env(**extra) -> dict[str, str]:
    """This process's environment without Airflow's, Spark Connect's and the router's settings, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SPARK_ROUTER_"))
           and k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env.update(extra)
    return env


class AirflowHome:
    """An AIRFLOW_HOME with a migrated SQLite metadata database and a DAGs folder."""

    def __init__(self, home: Path, dags_folder: Path):
        self.home, self.dags_folder = home, dags_folder
        self.env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}

    def migrate(self) -> AirflowHome:
        result = subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=False,
                                env=clean_env(**self.env), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return self

    def python(self, code: str, *args: str, timeout: float = 120, **env) -> str:
        """Runs Python code with Airflow's environment; returns its output (stdout and stderr)."""
        result = subprocess.run([PYTHON, "-c", code, *args], check=False,
                                env=clean_env(**{**self.env, **env}), cwd=self.home, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=timeout)
        assert result.returncode == 0, result.stdout[-5000:]
        return result.stdout

    def dag_test_command(self, dag_id: str, conf: dict | None = None, times: int = 1) -> list[str]:
        return [PYTHON, "-c", DAG_TEST, dag_id, json.dumps(conf or {}), str(times)]

    def dag_test(self, dag_id: str, conf: dict | None = None, times: int = 1, timeout: float = 400,
                 **env) -> tuple[list[dict], str]:
        """dag.test() in a child process: the DagRuns' results, and the whole log."""
        result = subprocess.run(self.dag_test_command(dag_id, conf, times), check=False,
                                env=clean_env(**{**self.env, **env}),
                                cwd=self.home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=timeout)
        (self.home / f"dag-test-{dag_id}.log").write_text(result.stdout)  # kept for reading after a failure
        return parse_results(result.stdout, result.returncode), result.stdout


def parse_results(output: str, returncode: int) -> list[dict]:
    runs = [json.loads(line.split(" ", 1)[1]) for line in output.splitlines()
            if line.startswith("DAG_TEST_RESULT ")]
    assert returncode == 0 and runs, f"dag.test() exited {returncode}:\n{output[-5000:]}"
    return runs


def conn_json(**fields) -> str:
    return json.dumps({"conn_type": "spark_router", **fields})


# ------------------------------------------------------------------------------- without Airflow imported

@pytest.mark.parametrize(("host", "port", "schema", "url"), [
    ("http://router:8765", None, None, "http://router:8765"),
    ("http://router:8765/", None, None, "http://router:8765"),
    ("router.internal", 8765, None, "http://router.internal:8765"),
    ("router.internal", "8765", "https", "https://router.internal:8765"),
    ("router.internal", None, "HTTPS", "https://router.internal"),
    ("https://gw.example.com/spark-router/", None, None, "https://gw.example.com/spark-router"),
    ("https://gw.example.com/spark-router", 8443, None, "https://gw.example.com:8443/spark-router"),
    ("http://router:8765", 8765, None, "http://router:8765"),
    ("  http://127.0.0.1:8765  ", None, "http", "http://127.0.0.1:8765"),
])
def test_router_url_from_connection_fields(host, port, schema, url):
    assert connections.router_url(host, port, schema) == url


@pytest.mark.parametrize(("host", "port", "schema", "problem"), [
    (None, 8765, None, "no host"),
    ("", None, None, "no host"),
    ("router", None, "ftp", "http or https"),
    ("sc://router:15002", None, None, "http(s)://"),
    ("http://router:8765", 9000, None, "two ports"),
    ("http://router:8765/?x=1", None, None, "query"),
])
def test_router_url_rejects_what_cannot_be_a_router(host, port, schema, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        connections.router_url(host, port, schema)


def test_run_url_is_the_dashboard_page():
    assert connections.run_url("http://router:8765/", "r-1a2b") == "http://router:8765/runs/r-1a2b"
    assert connections.run_url("https://gw/spark-router", "a/b") == "https://gw/spark-router/runs/a%2Fb"


@pytest.mark.parametrize(("fields", "url"), [
    ({"host": "connect.internal", "port": 15002}, "sc://connect.internal:15002/"),
    ({"host": "sc://connect.internal", "port": 15002, "login": "etl", "password": "t k"},
     "sc://connect.internal:15002/;user_id=etl;token=t%20k"),
    ({"host": "connect.internal:443", "extra": {"use_ssl": True}}, "sc://connect.internal:443/;use_ssl=true"),
    ({"host": "connect.internal", "port": 443, "extra": {"extra__spark_connect__use_ssl": "False"}},
     "sc://connect.internal:443/;use_ssl=false"),
    ({"host": "sc://c:15002/;session_id=x", "password": "tok"}, "sc://c:15002/;session_id=x;token=tok"),
])
def test_spark_connect_url_as_the_spark_provider_builds_it(fields, url):
    assert connections.spark_connect_url(**fields) == url


def test_spark_connect_url_rejects_a_path_or_another_scheme():
    with pytest.raises(ValueError, match="no path"):
        connections.spark_connect_url("sc://c:15002/some/path")
    with pytest.raises(ValueError, match="sc://host"):
        connections.spark_connect_url("http://c:15002")


def test_provider_info_matches_airflows_schema():
    import jsonschema

    import airflow_plugins

    spec = importlib.util.find_spec("airflow")  # locates Airflow without importing it
    schema = json.loads((Path(spec.submodule_search_locations[0]) / "provider_info.schema.json").read_text())
    info = airflow_plugins.get_provider_info()
    jsonschema.validate(info, schema)
    [conn_type] = info["connection-types"]
    assert conn_type["connection-type"] == "spark_router"
    assert conn_type["ui-field-behaviour"]["relabeling"]["password"] == "API token"


def test_service_launcher_and_package_do_not_import_airflow():
    code = ("import sys, service.app, client_runtime.launcher, airflow_plugins, airflow_plugins.connections\n"
            "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))")
    result = subprocess.run([PYTHON, "-c", code], check=False, capture_output=True, text=True, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------- Airflow in a child process, no Spark

@pytest.fixture(scope="module")
def bare_airflow(tmp_path_factory) -> AirflowHome:
    """An Airflow environment without a metadata database: enough to build operators and read connections."""
    return AirflowHome(tmp_path_factory.mktemp("airflow-bare"), TEST_DAGS)


HOOK_CHECKS = """
import json
from airflow_plugins.hooks import SparkRouterHook, spark_connect_url_of
out = {"default": SparkRouterHook().get_conn(), "uri": SparkRouterHook("router_uri").get_conn(),
       "connect": spark_connect_url_of("spark_connect_default"),
       "ui": SparkRouterHook.get_ui_field_behaviour(), "conn_type": SparkRouterHook.conn_type,
       "default_conn_name": SparkRouterHook.default_conn_name}
try:
    SparkRouterHook("no_host").get_router_url()
except ValueError as exc:
    out["no_host"] = str(exc)
print("CHECKS " + json.dumps(out))
"""


def last_json(output: str, tag: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith(tag + " ")]
    assert lines, output[-5000:]
    return json.loads(lines[-1].split(" ", 1)[1])


def test_hook_reads_the_router_and_spark_connect_connections(bare_airflow):
    output = bare_airflow.python(
        HOOK_CHECKS,
        AIRFLOW_CONN_SPARK_ROUTER_DEFAULT=conn_json(host="router.internal", port=8765, schema="https",
                                                    password="s3cret"),
        AIRFLOW_CONN_ROUTER_URI="spark-router://:tok@router-2:9000",
        AIRFLOW_CONN_NO_HOST=conn_json(port=8765),
        AIRFLOW_CONN_SPARK_CONNECT_DEFAULT=json.dumps({
            "conn_type": "spark_connect", "host": "connect.internal", "port": 15002, "login": "etl",
            "password": "tok", "extra": {"use_ssl": True}}))
    checks = last_json(output, "CHECKS")
    assert checks["default"] == {"url": "https://router.internal:8765", "token": "s3cret"}
    assert checks["uri"] == {"url": "http://router-2:9000", "token": "tok"}
    assert checks["connect"] == "sc://connect.internal:15002/;user_id=etl;token=tok;use_ssl=true"
    assert checks["ui"]["relabeling"] == {"host": "Router URL", "schema": "Protocol", "password": "API token"}
    assert "login" in checks["ui"]["hidden_fields"]
    assert (checks["conn_type"], checks["default_conn_name"]) == ("spark_router", "spark_router_default")
    assert "'no_host'" in checks["no_host"] and "no host" in checks["no_host"]


TEST_BUTTON = """
import json
from airflow_plugins.hooks import SparkRouterHook
print("CHECKS " + json.dumps({conn_id: SparkRouterHook(conn_id).test_connection()
                              for conn_id in ("spark_router_default", "bad_token", "nobody_there")}))
"""


def test_hooks_test_button_checks_the_router_and_its_token(bare_airflow, tmp_path):
    """The connection form's Test button, against a router (on SQLite) that wants an API token."""
    router = RouterProcess(f"sqlite:///{tmp_path / 'router.db'}", tmp_path,
                           env={"SPARK_ROUTER_API_TOKEN": "right"}).start()
    try:
        checks = last_json(bare_airflow.python(
            TEST_BUTTON, AIRFLOW_CONN_SPARK_ROUTER_DEFAULT=conn_json(host=router.url, password="right"),
            AIRFLOW_CONN_BAD_TOKEN=conn_json(host=router.url, password="wrong"),
            AIRFLOW_CONN_NOBODY_THERE=conn_json(host="127.0.0.1", port=free_port())), "CHECKS")
    finally:
        router.stop()
    assert checks["spark_router_default"] == [True, f"router at {router.url} answered"]
    assert checks["bad_token"] == [False, f"router at {router.url} refused the API token (401)"]
    ok, message = checks["nobody_there"]
    assert not ok and "unreachable: ConnectError" in message


OPERATOR_CHECKS = """
import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from airflow.sdk import DAG
from airflow_plugins import SparkRouterOperator

out = {}
with DAG("etl", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    op = SparkRouterOperator(
        task_id="orders", application="{{ params.root }}/orders.py",
        application_args=["--date", "{{ ds }}", 3],
        spark_conf={"spark.sql.x": "{{ 1 + 1 }}", "spark.flag": True}, executor_memory="4g", num_executors=2,
        run_timeout=timedelta(minutes=5), connect_timeout=12, params={"root": "s3://apps"})
    named = SparkRouterOperator(
        task_id="named", application="a.py", app_id="{{ dag.dag_id }}.custom", mode="standalone",
        fallback=False, idempotent=False, router_timeout=1.5, spark_router_conn_id="other_router",
        spark_connect_conn_id="my_connect")
    jvm = SparkRouterOperator(
        task_id="jvm", application="s3://apps/{{ params.team }}/etl.jar",
        main_class="com.acme.{{ params.job }}",
        application_args=["{{ ds }}"], params={"team": "acme", "job": "Orders"})
out["template_fields"] = list(SparkRouterOperator.template_fields)
op.render_template_fields({"params": op.params, "ds": "2026-11-22", "dag": dag})
named.render_template_fields({"params": named.params, "dag": dag})
jvm.render_template_fields({"params": jvm.params, "ds": "2026-11-22", "dag": dag})
ti = SimpleNamespace(dag_id="etl", task_id="jvm", run_id="r", try_number=1)
jvm_request = jvm.build_request({"ti": ti})
out["jvm"] = [jvm_request.app, jvm_request.main_class, jvm_request.args]
ti = SimpleNamespace(dag_id="etl", task_id="orders", run_id="manual__1", try_number=2)
request = op.build_request({"ti": ti})
out["request"] = {k: getattr(request, k) for k in ("app_id", "app", "args", "mode", "resources", "spark_conf",
                                                    "fallback", "idempotent", "airflow", "main_class")}
out["named_app_id"] = named.build_request({"ti": SimpleNamespace(dag_id="etl", task_id="named", run_id="r",
                                                                   try_number=1)}).app_id
out["named"] = [named.mode, named.fallback, named.idempotent, named.router_timeout,
                named.spark_router_conn_id, named.spark_connect_conn_id]
settings = op.build_settings("http://router:8765/", "tok", None)
out["settings"] = [settings.url, settings.api_token.get_secret_value(), settings.run_timeout_s,
                   settings.connect_timeout_s, settings.router_timeout_s, settings.mode_if_router_unreachable,
                   settings.connect_url, settings.standalone_master]
settings = named.build_settings("http://router:8765", None, "sc://elsewhere:15002/;token=x")
out["named_settings"] = [settings.api_token.get_secret_value(), settings.router_timeout_s,
                         settings.connect_url]
errors = []
for bad in ({"mode": "cluster"}, {"spark_conf": {"executor.memory": "1g"}}, {"run_timeout": 0},
            {"connect_timeout": timedelta(seconds=-1)}):
    try:
        SparkRouterOperator(task_id="bad", application="a.py", **bad)
        errors.append(None)
    except (TypeError, ValueError) as exc:
        errors.append(type(exc).__name__ + ": " + str(exc))
out["errors"] = errors
out["links"] = [link.name for link in op.operator_extra_links]
print("CHECKS " + json.dumps(out))
"""


def test_operator_parameters_templates_and_settings(bare_airflow):
    output = bare_airflow.python(OPERATOR_CHECKS, SPARK_ROUTER_MODE_IF_ROUTER_UNREACHABLE="connect",
                                 SPARK_ROUTER_CONNECT_TIMEOUT_S="99", SPARK_ROUTER_API_TOKEN="from-env",
                                 SPARK_ROUTER_STANDALONE_MASTER="local[2]",
                                 SPARK_ROUTER_CONNECT_URL="sc://from-env:15002")
    checks = last_json(output, "CHECKS")
    assert checks["template_fields"] == ["application", "application_args", "spark_conf", "app_id",
                                         "main_class"]
    assert checks["request"] == {
        "app_id": "etl.orders", "app": "s3://apps/orders.py", "args": ["--date", "2026-11-22", "3"],
        "mode": "auto",
        "resources": {"executor_memory": "4g", "num_executors": 2},
        "spark_conf": {"spark.sql.x": "2", "spark.flag": "true"}, "fallback": True, "idempotent": True,
        "airflow": {"dag_id": "etl", "task_id": "orders", "run_id": "manual__1", "try_number": 2},
        "main_class": None}
    # A jar and its main class, both templated.
    assert checks["jvm"] == ["s3://apps/acme/etl.jar", "com.acme.Orders", ["2026-11-22"]]
    assert checks["named_app_id"] == "etl.custom"
    assert checks["named"] == ["standalone", False, False, 1.5, "other_router", "my_connect"]
    # Router and token from the connection; timeouts from the operator; everything else from SPARK_ROUTER_*.
    assert checks["settings"] == ["http://router:8765", "tok", 300.0, 12.0, 3.0, "connect",
                                  "sc://from-env:15002", "local[2]"]
    # No token in the connection: the environment's; a spark_connect connection's URL replaces the env's.
    assert checks["named_settings"] == ["from-env", 1.5, "sc://elsewhere:15002/;token=x"]
    mode_error, conf_error, zero_timeout, negative_timeout = checks["errors"]
    assert mode_error.startswith("ValueError") and "auto, connect, standalone" in mode_error
    # A literal dict's keys are never rendered: a bad one fails the DAG's import.
    assert conf_error.startswith("ValueError") and "executor.memory" in conf_error
    assert "run_timeout must be positive" in zero_timeout and "connect_timeout" in negative_timeout
    assert checks["links"] == ["Spark Router run"]


RENDERED_CHECKS = """
import json
from datetime import datetime
from types import SimpleNamespace
from airflow.sdk import DAG
from airflow_plugins import SparkRouterOperator

def rendered(native, **kwargs):
    \"\"\"The request of an operator built with kwargs, rendered by a DAG with or without native rendering;
    the error (type and message) when its rendered arguments cannot make one.\"\"\"
    with DAG(f"d{native}", schedule=None, start_date=datetime(2026, 1, 1), params={"n": 3},
             render_template_as_native_obj=native) as dag:
        op = SparkRouterOperator(task_id="t", **{"application": "a.py", **kwargs})
    op.render_template_fields({"params": dag.params, "ds": "2026-11-22", "dag": dag})
    try:
        request = op.build_request({"ti": SimpleNamespace(dag_id=dag.dag_id, task_id="t", run_id="r",
                                                          try_number=1)})
    except (TypeError, ValueError) as exc:
        return type(exc).__name__ + ": " + str(exc)
    return {"app": request.app, "args": request.args, "spark_conf": request.spark_conf}

out = {
    "native": rendered(True, application_args="{{ ['--n', params.n, ds] }}",
                       spark_conf="{{ {'spark.sql.shuffle.partitions': params.n * 2, 'spark.flag': True} }}"),
    "tuple": rendered(False, application_args=("--n", "{{ params.n }}")),
    "args_string": rendered(False, application_args="{{ ['--n', params.n] }}"),
    "plain_string": rendered(True, application_args="--date 2026"),
    "conf_string": rendered(False, spark_conf="{{ {'spark.sql.shuffle.partitions': 4} }}"),
    "conf_list": rendered(True, spark_conf="{{ [params.n] }}"),
    "conf_bad_key": rendered(True, spark_conf="{{ {'executor.memory': '1g'} }}"),
    "app_list": rendered(True, application="{{ ['a.py'] }}"),
    "app_empty": rendered(False, application="{{ '' }}"),
}
print("CHECKS " + json.dumps(out))
"""


def test_templated_arguments_are_checked_once_rendered(bare_airflow):
    """Anything may stand for a templated argument in the DAG; what it renders to is checked when the task
    runs, with an error naming the argument (and the DAG setting a Jinja string needs to render to a list)."""
    checks = last_json(bare_airflow.python(RENDERED_CHECKS), "CHECKS")
    assert checks["native"] == {"app": "a.py", "args": ["--n", "3", "2026-11-22"],
                                "spark_conf": {"spark.sql.shuffle.partitions": "6", "spark.flag": "true"}}
    assert checks["tuple"]["args"] == ["--n", "3"]
    assert checks["args_string"] == (
        "TypeError: application_args must be a list of arguments, e.g. ['--date', '{{ ds }}']; it rendered "
        "to str \"['--n', 3]\" (a Jinja string renders to a list only in a DAG with "
        "render_template_as_native_obj=True)")
    assert checks["plain_string"].startswith("TypeError: application_args must be a list") and \
        "'--date 2026'" in checks["plain_string"]
    assert checks["conf_string"].startswith("TypeError: spark_conf must be a dict of Spark confs") and \
        "renders to a dict only in a DAG with render_template_as_native_obj=True" in checks["conf_string"]
    assert checks["conf_list"].startswith("TypeError: spark_conf must be a dict") and "list [3]" in \
        checks["conf_list"] and "native" not in checks["conf_list"]
    assert checks["conf_bad_key"] == \
        "ValueError: spark_conf keys are Spark confs (spark.*); got 'executor.memory'"
    assert checks["app_list"] == "TypeError: application must be a string; it rendered to list ['a.py']"
    assert checks["app_empty"] == "ValueError: application is empty"


# ------------------------------------------------------------------------------- the example DAGs, no Spark

FAKE_SPARK_ROUTER = """#!/bin/sh
# Stands in for `spark-router restart-server`: records its arguments, exits with the next code in CODES.
echo "$SPARK_ROUTER_URL $*" >> "{calls}"
code=$(head -n 1 "{codes}"); sed -i 1d "{codes}"
echo "fake restart-server: exit $code"
exit "$code"
"""


def test_example_dags_parse_and_restart_dag_skips_when_busy(tmp_path):
    home = AirflowHome(tmp_path / "home", EXAMPLE_DAGS).migrate()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls, codes = tmp_path / "calls", tmp_path / "codes"
    codes.write_text("3\n0\n1\n")
    script = fake_bin / "spark-router"
    script.write_text(FAKE_SPARK_ROUTER.format(calls=calls, codes=codes))
    script.chmod(0o755)
    # The DAG runs three times: busy (exit 3), restarted (0), failed (1).
    runs, log = home.dag_test("spark_router_restart_connect_server", {"window": 60}, times=3,
                              PATH=f"{fake_bin}{os.pathsep}{home.env['PATH']}",
                              AIRFLOW_CONN_SPARK_ROUTER_DEFAULT=conn_json(host="router.internal", port=8765))
    states = [(run["state"], run["tasks"]["restart_connect_server"]["state"]) for run in runs]
    assert states == [("success", "skipped"), ("success", "success"), ("failed", "failed")], log[-5000:]
    assert calls.read_text().splitlines() == ["http://router.internal:8765 restart-server --window 60"] * 3
    # A pool of Connect servers: every server, one at a time; or one server of it.
    codes.write_text("0\n0\n")
    calls.unlink()
    for params in ({"window": 60, "rolling": True}, {"window": 60, "server_id": "connect-b"}):
        [run], log = home.dag_test("spark_router_restart_connect_server", params, times=1,
                                   PATH=f"{fake_bin}{os.pathsep}{home.env['PATH']}",
                                   AIRFLOW_CONN_SPARK_ROUTER_DEFAULT=conn_json(host="router.internal",
                                                                               port=8765))
        assert run["tasks"]["restart_connect_server"]["state"] == "success", log[-5000:]
    assert calls.read_text().splitlines() == [
        "http://router.internal:8765 restart-server --window 60 --rolling",
        "http://router.internal:8765 restart-server --window 60 --server-id connect-b"]


EXAMPLE_APPS_OF_COPIED_DAG = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["spark_router_example"]
apps = {task.task_id: task.application for task in dag.tasks if hasattr(task, "application")}
print("APPS " + json.dumps({"errors": {path: str(error) for path, error in bag.import_errors.items()},
                            "apps": apps,
                            "found": {task: Path(app).is_file() for task, app in apps.items()}}))
"""


def test_the_example_dag_works_copied_into_another_dags_folder(bare_airflow, tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLE_DAGS / "spark_router_example.py", dags)
    found = last_json(bare_airflow.python(EXAMPLE_APPS_OF_COPIED_DAG, str(dags)), "APPS")
    assert found["errors"] == {} and len(found["apps"]) == 5, found
    # The repository's examples, wherever the DAG file is; the jar is where examples/jvm/build.sh puts it.
    assert all(found["found"][task] for task, app in found["apps"].items() if app.endswith(".py")), found
    assert found["apps"]["jvm_light_aggregation"] == str(REPO / "examples" / "jvm" / "build" /
                                                         "spark-router-examples.jar"), found


# --------------------------------------------------------- real Airflow, real router, real Connect server

@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> AirflowHome:
    return AirflowHome(tmp_path_factory.mktemp("airflow-home"), TEST_DAGS).migrate()


@pytest.fixture
def run_env(router, connect_server, state_dir) -> dict[str, str]:
    """The task's environment: the router from its Airflow connection (SPARK_ROUTER_URL points nowhere, so a
    run that reached the router proves the connection was used), the rest from SPARK_ROUTER_*."""
    return {"AIRFLOW_CONN_SPARK_ROUTER_DEFAULT": conn_json(host=router.url),
            "SPARK_ROUTER_URL": f"http://127.0.0.1:{free_port()}",
            "SPARK_ROUTER_CONNECT_URL": connect_server.url, "SPARK_ROUTER_STATE_DIR": str(state_dir),
            "SPARK_ROUTER_STANDALONE_MASTER": "local[2]"}


def runs_of(router, app_id: str) -> list[dict]:
    return sorted(router.get(f"/api/v1/apps/{app_id}/runs"), key=lambda r: r["created_at"])


def processes_running(pattern: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], check=False, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if pattern in line and "ps -eo" not in line]


@pytest.mark.spark
def test_light_app_runs_on_connect_and_xcom_says_so(airflow_home, run_env, router):
    [run], log = airflow_home.dag_test("router_light", **run_env)
    assert run["state"] == "success", log[-5000:]
    xcom = run["xcoms"]["aggregate"]
    assert (xcom["mode"], xcom["fell_back"]) == ("connect", False)
    summary = xcom["return_value"]
    assert summary["app_id"] == "router_light.aggregate" and summary["run_id"] == xcom["run_id"]
    assert xcom["run_url"] == f"{router.url}/runs/{xcom['run_id']}"
    assert xcom["_link_SparkRouterRunLink"] == xcom["run_url"]  # the operator extra link
    # The templated arguments reached the app (2000 rows over 7 stores), its output the task log.
    assert '"orders": 286' in log and "[spark-router] router: connect" in log
    # The Airflow context reached the router, and the session confs it hands out.
    detail = router.get(f"/api/v1/runs/{xcom['run_id']}")
    assert (detail["dag_id"], detail["task_id"], detail["airflow_run_id"], detail["try_number"]) == \
        ("router_light", "aggregate", run["run_id"], 1)
    assert detail["status"] == "succeeded" and detail["mode"] == "connect"
    confs = detail["decision"]["session_confs"]
    assert confs["spark.router.airflow.dagId"] == "router_light"
    assert confs["spark.router.airflow.runId"] == run["run_id"]


@pytest.mark.spark
def test_spark_context_app_falls_back_and_the_router_shows_both_runs(airflow_home, run_env, router):
    app_id = f"airflow.sc.{uuid.uuid4().hex[:6]}"
    [run], log = airflow_home.dag_test("router_fallback", {"app_id": app_id}, **run_env)
    assert run["state"] == "success", log[-5000:]
    xcom = run["xcoms"]["rdd"]
    assert (xcom["mode"], xcom["fell_back"]) == ("standalone", True)
    assert "falling back to standalone" in log, log[-5000:]
    # The app's own output reaches the task log; on a miss, the lines that say how the standalone run went.
    assert "RESULT 332833500" in log, "\n".join(
        line[:400] for line in log.splitlines() if "[spark-router]" in line or "RESULT" in line
        or "RouterListener" in line or "SparkContext: Successfully stopped" in line)
    failed, rerun = runs_of(router, app_id)
    assert (failed["mode"], failed["status"]) == ("connect", "failed")
    assert (rerun["mode"], rerun["status"]) == ("standalone", "succeeded")
    assert rerun["run_id"] == xcom["run_id"] and len(xcom["return_value"]["runs"]) == 2
    failed_detail = router.get(f"/api/v1/runs/{failed['run_id']}")
    assert failed_detail["failure_kind"] == "connect" and failed_detail["fell_back_to"] == rerun["run_id"]
    assert router.get(f"/api/v1/runs/{rerun['run_id']}")["dag_id"] == "router_fallback"


@pytest.mark.spark
def test_jvm_app_runs_on_connect_from_airflow(airflow_home, run_env, router, jvm_apps):
    app_id = f"airflow.jvm.{uuid.uuid4().hex[:6]}"
    [run], log = airflow_home.dag_test("router_jvm", {"jar": str(jvm_apps.jar), "main_class": jvm_apps.LIGHT,
                                                      "app_id": app_id}, **run_env)
    assert run["state"] == "success", log[-5000:]
    xcom = run["xcoms"]["jvm"]
    assert (xcom["mode"], xcom["fell_back"]) == ("connect", False)
    # The jar's output in the task log; the run in the router, with its Airflow context and its stages.
    assert 'RESULT [{"orders": 1000, "revenue": 49500, "store": 0}' in log
    assert f"starting connect run {xcom['run_id']}: java {jvm_apps.LIGHT}" in log
    detail = router.get(f"/api/v1/runs/{xcom['run_id']}")
    assert (detail["app_id"], detail["dag_id"], detail["status"]) == (app_id, "router_jvm", "succeeded")


@pytest.mark.spark
def test_failing_app_fails_the_task_with_its_error_in_the_log(airflow_home, run_env, router):
    [run], log = airflow_home.dag_test("router_failing", **run_env)
    assert run["state"] == "failed"
    assert run["tasks"]["fail"]["state"] == "failed"
    # The app's traceback streamed into the task log (once per run: on Connect, then in the standalone rerun
    # that tells whose failure it was), and the task's error names the app's error.
    assert log.count("ValueError: bad input: expected 11 rows, found 10") >= 2
    assert "the standalone rerun failed too: the app failed, not Connect" in log
    assert "AirflowException: Spark app router_failing.fail failed, standalone run" in log, log[-5000:]
    assert "(after falling back from Connect), exit code 1: ValueError: bad input" in log
    xcom = run["xcoms"]["fail"]
    assert (xcom["mode"], xcom["fell_back"]) == ("standalone", True)
    rerun = router.get(f"/api/v1/runs/{xcom['run_id']}")
    assert (rerun["status"], rerun["failure_kind"]) == ("failed", "app")
    connect_run = router.get(f"/api/v1/runs/{rerun['fallback_of']}")
    assert (connect_run["mode"], connect_run["status"], connect_run["failure_kind"]) == ("connect", "failed",
                                                                                         "app")


@pytest.mark.spark
def test_router_unreachable_follows_mode_if_router_unreachable_without_hanging(airflow_home, run_env):
    # A router that accepts connections and never answers: the worst case, a hang unless bounded.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        started = time.monotonic()
        [run], log = airflow_home.dag_test(
            "router_unreachable", timeout=180, **run_env, SPARK_ROUTER_MODE_IF_ROUTER_UNREACHABLE="connect",
            AIRFLOW_CONN_SPARK_ROUTER_UNREACHABLE=conn_json(host="127.0.0.1", port=silent.getsockname()[1]))
        elapsed = time.monotonic() - started
    assert run["state"] == "success", log[-5000:]
    xcom = run["xcoms"]["aggregate"]
    assert (xcom["mode"], xcom["fell_back"]) == ("connect", False)
    assert xcom["run_id"].startswith("local-") and xcom["run_url"] is None
    warnings = [line for line in log.splitlines() if "unreachable: no answer within" in line]
    assert len(warnings) == 1, log[-5000:]  # one clear line ...
    # ... and the mode it follows.
    assert "running connect (SPARK_ROUTER_MODE_IF_ROUTER_UNREACHABLE, since the router is unreachable)" in log
    print(f"dag.test() with a silent router took {elapsed:.1f} s")


def dag_test_until(home: AirflowHome, dag_id: str, marker: str, env: dict, conf: dict | None = None):
    """Starts dag.test() and reads its output until a line contains marker; returns the process and lines."""
    process = subprocess.Popen(home.dag_test_command(dag_id, conf), env=clean_env(**{**home.env, **env}),
                               cwd=home.home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return process, lines
    process.wait()
    raise AssertionError(f"{marker!r} never appeared:\n{''.join(lines)[-5000:]}")


def last_run(router, app_id: str) -> dict:
    return router.get(f"/api/v1/runs/{runs_of(router, app_id)[-1]['run_id']}")


@pytest.mark.spark
def test_sigterm_stops_the_app_through_on_kill(airflow_home, run_env, router, connect_server):
    process, lines = dag_test_until(airflow_home, "router_slow", "STARTED", run_env)
    try:
        wait_until(lambda: running_jobs(connect_server), 60, "the app's job to run on the server")
        process.send_signal(signal.SIGTERM)  # what Airflow's supervisor sends a task it stops
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    log = "".join(lines) + output
    [run] = parse_results(log, process.returncode)
    assert run["state"] == "failed", log[-5000:]
    assert "Stopping the Spark app" in log and "Spark app router_slow.slow was stopped" in log
    assert processes_running(str(TEST_APPS / "slow_udf.py")) == []
    stopped = last_run(router, "router_slow.slow")
    assert (stopped["status"], stopped["failure_kind"], stopped["fell_back_to"]) == ("cancelled", None, None)


@pytest.mark.spark
def test_execution_timeout_leaves_no_app_behind(airflow_home, run_env, router):
    [run], log = airflow_home.dag_test("router_execution_timeout", **run_env)
    assert run["state"] == "failed", log[-5000:]
    assert "AirflowTaskTimeout" in log
    assert "interrupted by AirflowTaskTimeout: the app's processes were stopped" in log, log[-5000:]
    assert processes_running(str(TEST_APPS / "slow_udf.py")) == []
    stopped = last_run(router, "router_execution_timeout.slow")
    assert (stopped["status"], stopped["failure_message"]) == ("cancelled", "interrupted by "
                                                                            "AirflowTaskTimeout")


# ----------------------------------------------- templated arguments given whole: XComArg, Jinja, .expand()

def light_result(rows: int) -> str:
    """The line examples/apps/light_aggregation.py prints for ROWS rows: so the log shows which args it
    got."""
    stores = [{"orders": 0, "revenue": 0, "store": store} for store in range(7)]
    for i in range(rows):
        stores[i % 7]["orders"] += 1
        stores[i % 7]["revenue"] += i % 100
    return "RESULT " + json.dumps([s for s in stores if s["orders"]], sort_keys=True)


def test_arguments_that_render_to_the_wrong_type_fail_the_task_naming_them(airflow_home):
    """No Spark: the task fails before it asks the router (whose connection points nowhere)."""
    [run], log = airflow_home.dag_test("router_bad_templates", AIRFLOW_CONN_SPARK_ROUTER_DEFAULT=conn_json(
        host="127.0.0.1", port=free_port()))
    assert run["state"] == "failed"
    assert {task: state["state"] for task, state in run["tasks"].items()} == {
        "args_as_string": "failed", "conf_as_string": "failed"}, log[-5000:]
    assert "TypeError: application_args must be a list of arguments" in log
    assert "TypeError: spark_conf must be a dict of Spark confs" in log
    assert log.count("renders to a list only in a DAG with render_template_as_native_obj=True") >= 1
    assert "Spark Connect Router at" not in log  # neither got as far as the router


@pytest.mark.spark
def test_xcom_arg_from_an_upstream_task_as_application_args(airflow_home, run_env, router):
    """An upstream task's output as the whole argument list: parsed as given, resolved when the task runs."""
    [run], log = airflow_home.dag_test("router_xcom_args", **run_env)
    assert run["state"] == "success", log[-5000:]
    assert run["tasks"]["rows_to_aggregate"]["state"] == "success"
    assert run["xcoms"]["rows_to_aggregate"]["return_value"] == ["1500"]
    assert light_result(1500) in log  # the app got 1500 from XCom, not its default 100000
    detail = router.get(f"/api/v1/runs/{run['xcoms']['aggregate']['run_id']}")
    assert (detail["app_id"], detail["status"]) == ("router_xcom_args.aggregate", "succeeded")


@pytest.mark.spark
def test_jinja_strings_render_to_a_conf_dict_and_an_arg_list(airflow_home, run_env, router):
    """render_template_as_native_obj: spark_conf from one Jinja string (params and the run's conf), reaching
    the app's Connect session; application_args from another."""
    [run], log = airflow_home.dag_test("router_native_conf", {"tz": "Asia/Tokyo"}, **run_env)
    assert run["state"] == "success", log[-5000:]
    xcom = run["xcoms"]["confs"]
    assert xcom["mode"] == "connect"
    assert "CONF spark.sql.shuffle.partitions=5" in log
    assert "CONF spark.sql.session.timeZone=Asia/Tokyo" in log
    assert router.get(f"/api/v1/runs/{xcom['run_id']}")["status"] == "succeeded"


@pytest.mark.spark
def test_partial_expand_runs_one_app_per_argument_list(airflow_home, run_env, router):
    [run], log = airflow_home.dag_test("router_expand", **run_env)
    assert run["state"] == "success", log[-5000:]
    assert {task: state["state"] for task, state in run["tasks"].items()} == {
        "aggregate[0]": "success", "aggregate[1]": "success", "aggregate[2]": "success"}
    for rows in (700, 1400, 2100):
        assert light_result(rows) in log, rows
    # Three runs of the one app id in the router, one per mapped instance, each the run its XCom names.
    runs = {r["run_id"]: r for r in runs_of(router, "router_expand.aggregate")}
    run_ids = {run["xcoms"][f"aggregate[{i}]"]["run_id"] for i in range(3)}
    assert len(run_ids) == 3 and run_ids <= runs.keys()
    assert all((runs[run_id]["mode"], runs[run_id]["status"]) == ("connect", "succeeded")
               for run_id in run_ids)
