"""DAGs of the operator's templated arguments given whole (an XComArg, a Jinja string, .expand()), which the
operator keeps as given until the task runs; tests/airflow_plugins/test_operator.py runs them with
dag.test()."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_plugins import SparkRouterOperator

REPO = Path(__file__).resolve().parents[2]
LIGHT_APP = str(REPO / "examples" / "apps" / "light_aggregation.py")
PRINT_CONFS = str(REPO / "tests" / "apps" / "print_confs.py")
COMMON = {"schedule": None, "start_date": datetime(2026, 1, 1), "catchup": False,
          "default_args": {"retries": 0}}

with DAG("router_xcom_args", **COMMON):
    @task
    def rows_to_aggregate() -> list[str]:
        return ["1500"]

    SparkRouterOperator(task_id="aggregate", application=LIGHT_APP,
                        application_args=rows_to_aggregate())

with DAG("router_native_conf", render_template_as_native_obj=True, params={"partitions": 5}, **COMMON):
    # A Jinja string that renders to a dict (native rendering), and one that renders to a list.
    SparkRouterOperator(task_id="confs", application=PRINT_CONFS,
                        application_args="{{ ['spark.sql.shuffle.partitions', 'spark.sql.session.timeZone'] "
                                         "}}",
                        spark_conf="{{ {'spark.sql.shuffle.partitions': params.partitions, "
                                   "'spark.sql.session.timeZone': dag_run.conf.get('tz', 'UTC')} }}")

with DAG("router_expand", **COMMON):
    # One mapped task instance per argument list; all share the app id router_expand.aggregate.
    SparkRouterOperator.partial(task_id="aggregate", application=LIGHT_APP,
                                mode="connect").expand(application_args=[["700"], ["1400"], ["2100"]])

with DAG("router_bad_templates", **COMMON):
    # Rendered to the wrong type (no native rendering): each task fails with an error naming its argument.
    SparkRouterOperator(task_id="args_as_string", application=LIGHT_APP,
                        application_args="{{ ['1000'] }}")
    SparkRouterOperator(task_id="conf_as_string", application=LIGHT_APP,
                        spark_conf="{{ {'spark.sql.shuffle.partitions': 4} }}")
