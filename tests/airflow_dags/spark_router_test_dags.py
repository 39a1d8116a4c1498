"""DAGs that tests/airflow_plugins/test_operator.py runs with dag.test(), against the session's router and
Connect server."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG

from airflow_plugins import SparkRouterOperator

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "apps"
TEST_APPS = REPO / "tests" / "apps"
COMMON = {"schedule": None, "start_date": datetime(2026, 1, 1), "catchup": False,
          "default_args": {"retries": 0}}

with DAG("router_light", params={"apps": str(EXAMPLES), "rows": 2000}, **COMMON):
    # Templated application, arguments and confs; the app id is the default, router_light.aggregate.
    SparkRouterOperator(task_id="aggregate", application="{{ params.apps }}/light_aggregation.py",
                        application_args=["{{ params.rows }}"],
                        spark_conf={"spark.sql.shuffle.partitions": "{{ 2 * 2 }}"})

with DAG("router_fallback", **COMMON):
    # Forced onto Connect: the compatibility check (mode auto) would have sent it standalone directly.
    SparkRouterOperator(task_id="rdd", application=str(EXAMPLES / "uses_spark_context.py"), mode="connect",
                        app_id="{{ dag_run.conf['app_id'] }}")

with DAG("router_failing", **COMMON):
    SparkRouterOperator(task_id="fail", application=str(EXAMPLES / "failing_app.py"))

with DAG("router_unreachable", **COMMON):
    SparkRouterOperator(task_id="aggregate", application=str(EXAMPLES / "light_aggregation.py"),
                        application_args=["1000"], spark_router_conn_id="spark_router_unreachable",
                        router_timeout=2)

with DAG("router_slow", **COMMON):
    # Stopped from outside: by SIGTERM (on_kill), or by Airflow's execution_timeout when the run gives one.
    SparkRouterOperator(task_id="slow", application=str(TEST_APPS / "slow_udf.py"),
                        application_args=["{{ dag_run.conf.get('seconds', 12) }}"], mode="connect")

with DAG("router_execution_timeout", **COMMON):
    SparkRouterOperator(task_id="slow", application=str(TEST_APPS / "slow_udf.py"), application_args=["12"],
                        mode="connect", execution_timeout=timedelta(seconds=8))

with DAG("router_jvm", **COMMON):
    # A JVM app: the jar (compiled by the test) and its main class from the run's conf.
    SparkRouterOperator(task_id="jvm", application="{{ dag_run.conf['jar'] }}",
                        main_class="{{ dag_run.conf['main_class'] }}", application_args=["7000"],
                        app_id="{{ dag_run.conf['app_id'] }}")
