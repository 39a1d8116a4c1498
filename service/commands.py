"""The router's and operations' commands of `spark-router` (serve, connect-server, cluster, restart-server,
db). The one entry point is client_runtime/cli.py: it adds these with ``add_commands`` when the router package
is installed."""

from __future__ import annotations

import sys

from client_runtime.cli import ROUTER_COMMANDS, checked_settings

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import argparse

    from service.config import RouterSettings
    from service.ops.ops_config import OpsSettings

# Every other import is made where it is needed: `spark-router run` builds the whole parser, this module
# included.


def router_settings() -> RouterSettings:
    """The router's settings (`serve`, `db`): service/config.py."""
    from service.config import get_router_settings

    return checked_settings(get_router_settings)


def ops_settings() -> OpsSettings:
    """Operations' settings (`connect-server`, `cluster`, `restart-server`): service/ops/ops_config.py."""
    from service.ops.ops_config import get_ops_settings

    return checked_settings(get_ops_settings)


def _serve(args: argparse.Namespace) -> int:
    import os

    from service.api import http_server

    settings = router_settings()
    # uvicorn's variable, as the image sets it
    workers = args.workers or os.environ.get("WEB_CONCURRENCY") or 1
    if not str(workers).isdigit() or int(workers) < 1:
        print(f"error: --workers / WEB_CONCURRENCY must be a whole number of 1 or more (got {workers!r})",
              file=sys.stderr)
        return 2
    http_server.serve(settings, args.host or settings.host, args.port or settings.port, workers=int(workers),
                      log_level=args.log_level, access_log=args.access_log)
    return 0


def _connect_server(args: argparse.Namespace) -> int:
    from service.ops import connect_server

    settings = ops_settings()
    try:
        if args.action == "start":
            connect_server.start(settings, port=args.port, ui_port=args.ui_port, master=args.master,
                                 server_id=args.server_id)
        elif args.action == "stop":
            connect_server.stop(connect_server.member_settings(settings, args.server_id))
        elif args.server_id:
            status = connect_server.status(connect_server.member_settings(settings, args.server_id))
            if args.json:
                import json

                print(json.dumps({"server_id": args.server_id, **status}, indent=2))
            else:
                _print_connect_server(args.server_id, status)
            return 0 if status["running"] else 3
        else:
            statuses = connect_server.pool_status(settings)
            if args.json:
                import json

                print(json.dumps(statuses, indent=2))
            else:
                for status in statuses:
                    _print_connect_server(status["server_id"] + (" (default)" if status["default"] else ""),
                                          status)
            return 0 if any(status["running"] for status in statuses) else 3
    except connect_server.ConnectServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_connect_server(name: str, status: dict) -> None:
    if status["running"]:
        print(f"{name}: running since {status['since']} (pid {status['pid']})\n"
              f"  Connect URL: {status['url']}\n  Spark UI:    {status['ui_url']}\n"
              f"  master:      {status['master'] or 'unknown'}\n  logs:        {status['log_file']}")
    else:
        print(f"{name}: not running (state dir {status['state_dir']})")


def _cluster(args: argparse.Namespace) -> int:
    from service.ops import spark_cluster

    settings = ops_settings()
    try:
        if args.action == "start":
            state = spark_cluster.start(settings, workers=args.workers, worker_cores=args.worker_cores,
                                        worker_memory=args.worker_memory,
                                        port=args.port or spark_cluster.DEFAULT_PORT,
                                        ui_port=args.ui_port or spark_cluster.DEFAULT_UI_PORT)
            print(f"Run the Connect server on it:  spark-router connect-server start --master "
                  f"{state.master_url}\nStandalone runs go there with: export "
                  f"SPARK_ROUTER_STANDALONE_MASTER={state.master_url}")
        elif args.action == "stop":
            spark_cluster.stop(settings)
        else:
            status = spark_cluster.status(settings)
            if args.json:
                import json

                print(json.dumps(status, indent=2))
            elif not status["running"]:
                print(f"not running (state dir {status['state_dir']})")
                return 3
            else:
                _print_cluster(status)
    except spark_cluster.ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_cluster(status: dict) -> None:
    def mem(mb: int) -> str:
        return f"{mb / 1024:.1f} GiB" if mb >= 1024 else f"{mb} MiB"

    print(f"running since {status['since']} at {status['master_url']} (master pid {status['master_pid']})\n"
          f"  UI:      {status['ui_url']}\n  logs:    {status['logs']}\n"
          f"  workers: {status['workers_alive']} alive of {status['workers_started']} started\n"
          f"  cores:   {status['cores_used']} used, {status['cores'] - status['cores_used']} free of "
          f"{status['cores']}\n  memory:  {mem(status['memory_used_mb'])} used, "
          f"{mem(status['memory_mb'] - status['memory_used_mb'])} free of {mem(status['memory_mb'])}")
    for worker in status["workers"]:
        print(f"  worker {worker['id']} {worker['state']}: cores {worker['cores_used']} used, "
              f"{worker['cores_free']} free; memory {mem(worker['memory_used_mb'])} used, "
              f"{mem(worker['memory_free_mb'])} free")
    print(f"  apps running: {len(status['apps'])} (completed: {status['completed_apps']})")
    for app in status["apps"]:
        print(f"    {app['id']} {app['name']!r}: {app['cores']} core(s), "
              f"{mem(app['memory_per_executor_mb'])} per executor, for {app['duration_s']:.0f} s")


def _db_upgrade(_args: argparse.Namespace) -> int:
    from service.db import engine as db

    settings = router_settings()
    db.upgrade(db.get_engine(settings.resolved_database_url))
    print(f"database at the newest schema: {db.get_engine(settings.resolved_database_url).url!r}")
    return 0


def _restart_server(args: argparse.Namespace) -> int:
    from client_runtime.router_client import RouterRejected, RouterUnavailable
    from service.ops import restart
    from service.ops.admin_client import AdminClient

    if args.rolling and (args.server_id or args.deployment or args.ui_url):
        print("error: --rolling restarts every server of the pool: --server-id, --deployment and --ui-url "
              "name one (for a pool on Kubernetes, SPARK_ROUTER_KUBERNETES_DEPLOYMENTS names each server's "
              "Deployment)",
              file=sys.stderr)
        return 2
    overrides = {"restart_backend": args.backend, "restart_command": args.command,
                 "kubernetes_namespace": args.namespace}
    settings = ops_settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
    window = args.window if args.window is not None else settings.restart_window_s
    admin = AdminClient(settings.url, settings.token("admin_token"), timeout_s=10)

    def progress(message: str) -> None:
        from datetime import datetime

        print(f"[restart-server {datetime.now():%H:%M:%S}] {message}", flush=True)

    def backend_for(server_settings):
        return restart.BACKENDS[server_settings.restart_backend](server_settings, progress)

    if args.rolling:
        return restart.RollingRestart(settings, admin, backend_for, progress).run(window, args.force)
    server_id = args.server_id or settings.connect_server_id
    try:  # the URL the server's listener reports, for the warm-up query after the restart
        connect_url = next((s["connect_url"] for s in admin.pool() if s["server_id"] == server_id), None)
    except (RouterRejected, RouterUnavailable):
        connect_url = None  # the restart says what is wrong with the router
    server_settings = restart.server_settings(settings, server_id, connect_url)
    explicit = {"kubernetes_deployment": args.deployment, "connect_ui_url": args.ui_url}
    server_settings = server_settings.model_copy(update={k: v for k, v in explicit.items() if v is not None})
    try:
        backend = backend_for(server_settings)
    except restart.RestartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return restart.RestartCoordinator(server_settings, admin, backend, progress).run(window, args.force)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the router's commands to `spark-router`'s subparsers (client_runtime/cli.py builds the parser)."""
    serve = commands.add_parser("serve", help=ROUTER_COMMANDS["serve"],
                                description="Run the router service. Migrates the database on start.")
    serve.add_argument("--host", help="address to bind (default SPARK_ROUTER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default SPARK_ROUTER_PORT or 8765)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--workers", type=int, help="worker processes (default WEB_CONCURRENCY or 1); each "
                                                   "holds up to SPARK_ROUTER_MAX_CONNECTIONS connections")
    serve.set_defaults(func=_serve)

    server = commands.add_parser(
        "connect-server", help=ROUTER_COMMANDS["connect-server"],
        description="Start, stop or inspect a local Spark Connect server (from pyspark, bound to 127.0.0.1, "
                    "with the router's listener). State, logs and Spark local dirs live under "
                    "SPARK_ROUTER_STATE_DIR. Several run side by side with --server-id: each reports its "
                    "Connect URL to the router, which places runs on the least loaded one.",
        epilog="Without --server-id: the default server (SPARK_ROUTER_CONNECT_SERVER_ID, ports 15002/4040); "
               "`status` then lists every local server. Another --server-id keeps its state under "
               "SPARK_ROUTER_STATE_DIR/connect-servers/ID and runs on free ports (the same ones again after "
               "a stop) unless --port/--ui-port say otherwise. Exit codes: 0 done, 1 failed, 3 status: not "
               "running.")
    server.add_argument("action", choices=["start", "stop", "status"])
    server.add_argument("--server-id", help="which server of the local pool (default "
                                            "SPARK_ROUTER_CONNECT_SERVER_ID, or connect-local)")
    server.add_argument("--port", type=int, help="gRPC port (default server: SPARK_ROUTER_CONNECT_PORT or "
                                                 "15002; others: a free one)")
    server.add_argument("--ui-port", type=int, help="Spark UI port (default server: "
                                                    "SPARK_ROUTER_CONNECT_UI_PORT or 4040; others: a free "
                                                    "one)")
    server.add_argument("--master", help="local[N], or spark://host:port to run on a standalone cluster (see "
                                         "`spark-router cluster`) with dynamic allocation (default "
                                         "SPARK_ROUTER_CONNECT_MASTER or local[2])")
    server.add_argument("--json", action="store_true", help="status as JSON")
    server.set_defaults(func=_connect_server)

    cluster = commands.add_parser(
        "cluster", help=ROUTER_COMMANDS["cluster"],
        description="Start, stop or inspect a Spark standalone cluster (Spark's own cluster manager, from "
                    "pyspark's jars) bound to 127.0.0.1. Logs, work dirs, local dirs and pids live under "
                    "SPARK_ROUTER_STATE_DIR/cluster. `start` returns once every worker is registered.",
        epilog="Then: spark-router connect-server start --master spark://127.0.0.1:7077, and "
               "SPARK_ROUTER_STANDALONE_MASTER=spark://127.0.0.1:7077 for standalone runs. Exit codes: 0 "
               "done, 1 failed, 3 status: not running.")
    cluster.add_argument("action", choices=["start", "stop", "status"])
    cluster.add_argument("--workers", type=int, default=2, help="workers to start (default 2)")
    cluster.add_argument("--worker-cores", type=int, default=1, help="cores each worker offers (default 1)")
    cluster.add_argument("--worker-memory", default="1g",
                         help="memory each worker offers to executors, in Spark's form (default 1g)")
    cluster.add_argument("--port", type=int, help="master port (default 7077)")
    cluster.add_argument("--ui-port", type=int, help="master web UI port, also its JSON at /json/ (default "
                                                     "8080)")
    cluster.add_argument("--json", action="store_true", help="status as JSON")
    cluster.set_defaults(func=_cluster)

    restart_cmd = commands.add_parser(
        "restart-server", help=ROUTER_COMMANDS["restart-server"],
        description="The drained restart of a Connect server: new runs go to the other servers of the pool "
                    "(or standalone when there is none), running client work is waited for (router, listener "
                    "heartbeat, Spark REST API), then the server restarts and must answer a warm-up query "
                    "and report from its new application before it is undrained. --rolling restarts every "
                    "server of the pool that is up, one at a time, and never drains the last one that can "
                    "take runs.",
        epilog="Exit codes: 0 restarted, 3 skipped (still busy after the window; with --rolling also: no "
               "other server could take runs), 1 failed, 2 bad usage. With --rolling the worst outcome of "
               "any server.")
    restart_cmd.add_argument("--rolling", action="store_true",
                             help="restart every server of the pool (GET /api/v1/pool) that is up, one at a "
                                  "time")
    restart_cmd.add_argument("--window", type=float, help="seconds to wait for idle (default "
                                                          "SPARK_ROUTER_RESTART_WINDOW_S or 1800)")
    restart_cmd.add_argument("--force", action="store_true", help="restart even if still busy after the "
                                                                  "window")
    restart_cmd.add_argument("--backend", choices=["local", "kubernetes", "command"],
                             help="how to restart (default SPARK_ROUTER_RESTART_BACKEND or local)")
    restart_cmd.add_argument("--command", help="for --backend command: the shell command that restarts the "
                                               "server")
    restart_cmd.add_argument("--namespace", help="for --backend kubernetes: the Deployment's namespace")
    restart_cmd.add_argument("--deployment", help="for --backend kubernetes: the Connect server's Deployment")
    restart_cmd.add_argument("--server-id", help="which server of the pool (default "
                                                 "SPARK_ROUTER_CONNECT_SERVER_ID or connect-local); the "
                                                 "local backend restarts the local server of that id "
                                                 "(`connect-server start --server-id`)")
    restart_cmd.add_argument("--ui-url", help="the server's Spark UI/REST URL (default "
                                              "SPARK_ROUTER_CONNECT_UI_URL or http://127.0.0.1:<ui port>)")
    restart_cmd.set_defaults(func=_restart_server)

    database = commands.add_parser("db", help=ROUTER_COMMANDS["db"])
    database.add_argument("action", choices=["upgrade"], help="upgrade: apply the schema migrations")
    database.set_defaults(func=_db_upgrade)
