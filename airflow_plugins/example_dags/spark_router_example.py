"""Spark apps that run where Spark Connect Router decides, from each app's own history.

Needs an Airflow connection ``spark_router_default`` (type ``spark_router``: host = the router's URL) and, on
the workers, the project's ``client`` extra (pyspark) and a JDK for standalone runs. The apps are the
repository's examples; set SPARK_ROUTER_EXAMPLE_APPS to another folder, or use your own files or s3:// URIs.
This file works copied into any DAGs folder: it finds the examples through the installed package.
The JVM task runs a jar (examples/jvm/build.sh builds it; SPARK_ROUTER_EXAMPLE_JAR may name another, e.g. an
s3:// URI): one jar, on the shared Connect server as a JVM Connect client or standalone with spark-submit.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, task

import airflow_plugins
from airflow_plugins import SparkRouterOperator

# The examples/apps folder of the checkout the project is installed from (pip install -e); an install from a
# wheel has none: set SPARK_ROUTER_EXAMPLE_APPS.
APPS = os.environ.get("SPARK_ROUTER_EXAMPLE_APPS",
                      str(Path(airflow_plugins.__file__).resolve().parent.parent / "examples" / "apps"))
JAR = os.environ.get("SPARK_ROUTER_EXAMPLE_JAR",
                     str(Path(airflow_plugins.__file__).resolve().parent.parent
                         / "examples" / "jvm" / "build" / "spark-router-examples.jar"))

with DAG(
    dag_id="spark_router_example",
    description="Example apps run on the shared Spark Connect server or standalone, as the router decides",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={"rows": Param(100_000, type="integer", minimum=1, description="Rows the light app aggregates")},
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["spark-router", "example"],
):
    # A light app: the router sends it to the shared Connect server. Its app id, by default
    # <dag_id>.<task_id>: spark_router_example.light_aggregation.
    light = SparkRouterOperator(
        task_id="light_aggregation",
        application=f"{APPS}/light_aggregation.py",
        application_args=["{{ params.rows }}"],
        spark_conf={"spark.sql.shuffle.partitions": "4"},
    )

    # A heavy app: after a run or two its spill sends it standalone, with these resources.
    heavy = SparkRouterOperator(
        task_id="heavy_shuffle",
        application=f"{APPS}/heavy_shuffle.py",
        application_args=["600000"],
        driver_memory="1g",
        executor_memory="2g",
        executor_cores=2,
        num_executors=2,
        run_timeout=timedelta(hours=1),
    )

    # sparkContext cannot work on Spark Connect: the router's compatibility check sends it standalone. Forced
    # onto Connect (mode="connect") it would fail there and fall back to standalone, as it is idempotent.
    rdd = SparkRouterOperator(
        task_id="uses_spark_context",
        application=f"{APPS}/uses_spark_context.py",
        idempotent=True,
    )

    # A JVM app: the same light aggregation from a jar, with a Java UDF. On Connect it runs as a JVM Connect
    # client (the session helper adds the jar to the session for the UDF); standalone with spark-submit
    # --class.
    jvm_light = SparkRouterOperator(
        task_id="jvm_light_aggregation",
        application=JAR,
        main_class="io.sparkrouter.examples.LightAggregation",
        application_args=["{{ params.rows }}"],
    )

    # Not idempotent: a Connect failure fails the task instead of running the app a second time.
    own_session = SparkRouterOperator(
        task_id="own_session",
        application=f"{APPS}/own_session.py",
        app_id="examples.own_session",
        idempotent=False,
        connect_timeout=60,
    )

    @task(trigger_rule="all_done")
    def where_they_ran(ti=None) -> dict:
        """Each run's mode, from the operators' XCom (also when some failed)."""
        runs = {}
        for task_id in ("light_aggregation", "heavy_shuffle", "uses_spark_context", "jvm_light_aggregation",
                        "own_session"):
            mode = ti.xcom_pull(task_ids=task_id, key="mode")
            fell_back = ti.xcom_pull(task_ids=task_id, key="fell_back")
            runs[task_id] = f"{mode}{' (fell back)' if fell_back else ''}"
            print(f"{task_id}: {runs[task_id]} — {ti.xcom_pull(task_ids=task_id, key='run_url')}")
        return runs

    [light, heavy, rdd, jvm_light, own_session] >> where_they_ran()
