"""The daily drained restart of the shared Spark Connect server, or of every server of a pool (long-lived
servers grow; a periodic restart is the remedy).

``spark-router restart-server`` drains the server (new runs go to the other servers of the pool, or standalone
when there is none), waits up to --window seconds for its running client work to finish, restarts it, checks
it answers, and undrains it. With the ``rolling`` param (a pool of Connect servers) it does so for every
server, one at a time, and never drains the last one that can take runs: runs keep going to Connect
throughout. Exit code 0: restarted; 3: skipped, because a server was still busy after the window (or, rolling,
no other server could take runs) (the task is then *skipped*, not failed; the next day tries again); anything
else fails the task.

The command runs on the Airflow worker with the project installed. The router's URL comes from the
``spark_router_default`` connection; everything else from the worker's SPARK_ROUTER_* environment: the admin
token (SPARK_ROUTER_ADMIN_TOKEN) and how to restart (SPARK_ROUTER_RESTART_BACKEND: local — the server runs on
this worker —, kubernetes, or command).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

RESTARTED, SKIPPED_BUSY = 0, 3


def router_url(conn_id: str = "spark_router_default") -> str:
    """The router's URL from its Airflow connection (a template macro: runs on the worker, at run time)."""
    from airflow_plugins.hooks import SparkRouterHook

    return SparkRouterHook(conn_id).get_router_url()


with DAG(
    dag_id="spark_router_restart_connect_server",
    description="Drain, restart and undrain the Connect server (or every server of the pool, one at a time); "
                "skipped when it stays busy",
    schedule="0 3 * * *",  # a quiet hour: fewer runs to wait for
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "window": Param(1800, type="integer", minimum=1,
                        description="Seconds to wait for the server's running client work to finish"),
        "force": Param(False, type="boolean", description="Restart even if still busy after the window"),
        "rolling": Param(False, type="boolean",
                         description="Restart every server of the pool, one at a time (a pool of Connect "
                                     "servers)"),
        "server_id": Param("", type="string", pattern=r"^[A-Za-z0-9._-]*$",
                           description="Restart this server of the pool; empty: the default server "
                                       "(SPARK_ROUTER_CONNECT_SERVER_ID). Not with rolling."),
    },
    user_defined_macros={"router_url": router_url},
    default_args={"retries": 0},
    tags=["spark-router", "maintenance"],
):
    BashOperator(
        task_id="restart_connect_server",
        bash_command="spark-router restart-server --window {{ params.window }}"
                     "{{ ' --force' if params.force else '' }}{{ ' --rolling' if params.rolling else '' }}"
                     "{{ (' --server-id ' ~ params.server_id) if params.server_id else '' }}",
        env={"SPARK_ROUTER_URL": "{{ router_url() }}"},
        append_env=True,  # keep the worker's SPARK_ROUTER_* settings and PATH
        skip_on_exit_code=SKIPPED_BUSY,
        # The window plus the restart itself (a local server is up again in well under a minute).
        execution_timeout=timedelta(hours=2),
    )
