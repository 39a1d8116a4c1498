"""`spark-router`: the one command line of Spark Connect Router."""

from __future__ import annotations

import itertools
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import argparse

# Every other import is made where it is needed: `run` starts the app's interpreter (client_runtime.runner)
# before anything else is imported, argparse and logging included (docs/benchmarks.md, the launcher's start).


def get_settings():
    """The settings, or a clear error naming the SPARK_ROUTER_* variable that is wrong (exit code 2)."""
    from pydantic import ValidationError

    from client_runtime.settings import get_settings as settings

    try:
        return settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "SPARK_ROUTER_" + "_".join(map(str, error["loc"])).upper()
            print(f"error: {name}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(args: argparse.Namespace) -> int:
    import os

    from service.api import http_server

    settings = get_settings()
    workers = args.workers or os.environ.get("WEB_CONCURRENCY") or 1  # uvicorn's variable, as the image sets it
    if not str(workers).isdigit() or int(workers) < 1:
        print(f"error: --workers / WEB_CONCURRENCY must be a whole number of 1 or more (got {workers!r})", file=sys.stderr)
        return 2
    http_server.serve(settings, args.host or settings.host, args.port or settings.port, workers=int(workers),
                      log_level=args.log_level, access_log=args.access_log)
    return 0


def _connect_server(args: argparse.Namespace) -> int:
    from service.ops import connect_server

    settings = get_settings()
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
                    _print_connect_server(status["server_id"] + (" (default)" if status["default"] else ""), status)
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

    settings = get_settings()
    try:
        if args.action == "start":
            state = spark_cluster.start(settings, workers=args.workers, worker_cores=args.worker_cores,
                                        worker_memory=args.worker_memory, port=args.port or spark_cluster.DEFAULT_PORT,
                                        ui_port=args.ui_port or spark_cluster.DEFAULT_UI_PORT)
            print(f"Run the Connect server on it:  spark-router connect-server start --master {state.master_url}\n"
                  f"Standalone runs go there with: export SPARK_ROUTER_STANDALONE_MASTER={state.master_url}")
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
          f"  cores:   {status['cores_used']} used, {status['cores'] - status['cores_used']} free of {status['cores']}\n"
          f"  memory:  {mem(status['memory_used_mb'])} used, {mem(status['memory_mb'] - status['memory_used_mb'])} "
          f"free of {mem(status['memory_mb'])}")
    for worker in status["workers"]:
        print(f"  worker {worker['id']} {worker['state']}: cores {worker['cores_used']} used, {worker['cores_free']} "
              f"free; memory {mem(worker['memory_used_mb'])} used, {mem(worker['memory_free_mb'])} free")
    print(f"  apps running: {len(status['apps'])} (completed: {status['completed_apps']})")
    for app in status["apps"]:
        print(f"    {app['id']} {app['name']!r}: {app['cores']} core(s), {mem(app['memory_per_executor_mb'])} per "
              f"executor, for {app['duration_s']:.0f} s")


def _db_upgrade(_args: argparse.Namespace) -> int:
    from service.db import engine as db

    settings = get_settings()
    db.upgrade(db.get_engine(settings.resolved_database_url))
    print(f"database at the newest schema: {db.get_engine(settings.resolved_database_url).url!r}")
    return 0


def _parse_confs(pairs: list[str]) -> dict[str, str]:
    confs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --conf wants KEY=VALUE, got {pair!r}")
        confs[key] = value
    return confs


def _add_resource_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("resources (sizes in Spark's forms: 4g, 4096m)")
    group.add_argument("--driver-memory")
    group.add_argument("--executor-memory")
    group.add_argument("--driver-cores", type=int)
    group.add_argument("--executor-cores", type=int)
    group.add_argument("--num-executors", type=int)
    group.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                       help="a Spark conf of the app (repeatable)")


def _decide(args: argparse.Namespace) -> int:
    from client_runtime.launcher import resources_of
    from client_runtime.router_client import RouterClient, RouterRejected, RouterUnavailable

    settings = get_settings()
    client = RouterClient(settings.url, settings.token("api_token"))
    try:
        decision = client.decide(args.app_id, args.mode, resources_of(args), _parse_confs(args.conf),
                                 dry_run=not args.record)
    except (RouterUnavailable, RouterRejected) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, RouterRejected) else 1
    if args.json:
        import json

        print(json.dumps(decision, indent=2))
        return 0
    run = (f"run {decision['run_id']}, counted in flight for capacity.decided_max_age_s unless it starts"
           if decision["run_id"] else "dry run: no run recorded")
    print(f"{decision['app_id']}: {decision['mode']} ({run}; policy {decision['policy_version']})")
    for reason in decision["reasons"]:
        print(f"  - [{reason['rule']}] {reason['message']}")
    if decision["connect_url"]:
        print(f"  Connect URL: {decision['connect_url']}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import signal

    from client_runtime.artifacts import ArtifactError
    from client_runtime.launcher import Launcher, RunRequest, resources_of
    from client_runtime.router_client import RouterRejected
    from client_runtime.sentry import init_sentry

    init_sentry("launcher")
    settings = get_settings()
    overrides = {"standalone_master": args.master, "run_timeout_s": args.timeout,
                 "connect_timeout_s": args.connect_timeout}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    launcher = Launcher(settings, on_event=lambda message: print(f"[spark-router] {message}", file=sys.stderr,
                                                                  flush=True))

    def on_sigterm(signum, _frame):
        launcher.cancel()  # stops the app's whole process tree; run() then returns

    signal.signal(signal.SIGTERM, on_sigterm)
    args_after = args.app_args[1:] if args.app_args[:1] == ["--"] else args.app_args
    request = RunRequest(app_id=args.app_id, app=args.app, args=args_after, mode=args.mode,
                         resources=resources_of(args), spark_conf=_parse_confs(args.conf),
                         fallback=not args.no_fallback, idempotent=not args.not_idempotent, main_class=args.main_class)
    try:
        result = launcher.run(request, args.app_interpreter)  # started by main(), or None
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RouterRejected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        launcher.cancel()
        return 130
    if launcher.cancelled:
        return 143
    return result.exit_code


def _check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from client_runtime.compat import check_path

    app = Path(args.app)
    if not app.exists():
        print(f"error: {args.app}: no such file or directory", file=sys.stderr)
        return 2
    if args.main_class and app.suffix != ".jar":
        print(f"error: --class is for a .jar APP, not {args.app}", file=sys.stderr)
        return 2
    if app.suffix == ".jar":
        from client_runtime.jar_check import main_class_of

        main_class = args.main_class or main_class_of(app)
        print(f"checking the classes {main_class} uses" if main_class else
              "checking every class (the jar names no Main-Class; --class checks what one main class uses)",
              file=sys.stderr)
    try:
        findings = check_path(app, args.main_class)
    except (ValueError, OSError) as exc:  # not a zip or jar, no such class, unreadable
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    if args.app_id:
        from client_runtime.router_client import RouterClient, RouterUnavailable

        settings = get_settings()
        try:
            RouterClient(settings.url, settings.token("api_token")).record_compatibility(args.app_id, [f.as_dict() for f in findings])
            print(f"recorded with app {args.app_id} at {settings.url}", file=sys.stderr)
        except RouterUnavailable as exc:
            print(f"warning: not recorded: {exc}", file=sys.stderr)
    if findings:
        print(f"{len(findings)} thing(s) cannot work on Spark Connect: this app must run standalone.",
              file=sys.stderr)
        return 1
    print("no Connect incompatibilities found", file=sys.stderr)
    return 0


def _classpath(args: argparse.Namespace) -> int:
    import os

    from client_runtime import jvm

    settings = get_settings()
    which = jvm.connect_classpath if args.connect else jvm.classic_classpath if args.all else jvm.compile_classpath
    try:
        jars = which(settings)
    except jvm.JvmAppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(os.pathsep.join(str(jar) for jar in jars))
    return 0


def _restart_server(args: argparse.Namespace) -> int:
    from client_runtime.router_client import AdminClient, RouterRejected, RouterUnavailable
    from service.ops import restart

    if args.rolling and (args.server_id or args.deployment or args.ui_url):
        print("error: --rolling restarts every server of the pool: --server-id, --deployment and --ui-url name one "
              "(for a pool on Kubernetes, SPARK_ROUTER_KUBERNETES_DEPLOYMENTS names each server's Deployment)",
              file=sys.stderr)
        return 2
    overrides = {"restart_backend": args.backend, "restart_command": args.command,
                 "kubernetes_namespace": args.namespace}
    settings = get_settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
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


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="spark-router",
        description="Route Spark application runs to a shared Spark Connect server or a separate Spark "
                    "application, from their run history. Settings come from SPARK_ROUTER_* variables.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the router service (HTTP API, ingest, dashboard)",
                                description="Run the router service. Migrates the database on start.")
    serve.add_argument("--host", help="address to bind (default SPARK_ROUTER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default SPARK_ROUTER_PORT or 8765)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--workers", type=int, help="worker processes (default WEB_CONCURRENCY or 1); each holds up "
                                                   "to SPARK_ROUTER_MAX_CONNECTIONS connections")
    serve.set_defaults(func=_serve)

    server = commands.add_parser(
        "connect-server", help="run local Spark Connect servers with the listener (one, or a pool)",
        description="Start, stop or inspect a local Spark Connect server (from pyspark, bound to 127.0.0.1, with "
                    "the router's listener). State, logs and Spark local dirs live under SPARK_ROUTER_STATE_DIR. "
                    "Several run side by side with --server-id: each reports its Connect URL to the router, which "
                    "places runs on the least loaded one.",
        epilog="Without --server-id: the default server (SPARK_ROUTER_CONNECT_SERVER_ID, ports 15002/4040); "
               "`status` then lists every local server. Another --server-id keeps its state under "
               "SPARK_ROUTER_STATE_DIR/connect-servers/ID and runs on free ports (the same ones again after a "
               "stop) unless --port/--ui-port say otherwise. Exit codes: 0 done, 1 failed, 3 status: not running.")
    server.add_argument("action", choices=["start", "stop", "status"])
    server.add_argument("--server-id", help="which server of the local pool (default SPARK_ROUTER_CONNECT_SERVER_ID, "
                                            "or connect-local)")
    server.add_argument("--port", type=int, help="gRPC port (default server: SPARK_ROUTER_CONNECT_PORT or 15002; "
                                                 "others: a free one)")
    server.add_argument("--ui-port", type=int, help="Spark UI port (default server: SPARK_ROUTER_CONNECT_UI_PORT or "
                                                    "4040; others: a free one)")
    server.add_argument("--master", help="local[N], or spark://host:port to run on a standalone cluster (see "
                                         "`spark-router cluster`) with dynamic allocation (default "
                                         "SPARK_ROUTER_CONNECT_MASTER or local[2])")
    server.add_argument("--json", action="store_true", help="status as JSON")
    server.set_defaults(func=_connect_server)

    cluster = commands.add_parser(
        "cluster", help="run a Spark standalone cluster on this machine (a master and workers)",
        description="Start, stop or inspect a Spark standalone cluster (Spark's own cluster manager, from pyspark's "
                    "jars) bound to 127.0.0.1. Logs, work dirs, local dirs and pids live under "
                    "SPARK_ROUTER_STATE_DIR/cluster. `start` returns once every worker is registered.",
        epilog="Then: spark-router connect-server start --master spark://127.0.0.1:7077, and "
               "SPARK_ROUTER_STANDALONE_MASTER=spark://127.0.0.1:7077 for standalone runs. Exit codes: 0 done, "
               "1 failed, 3 status: not running.")
    cluster.add_argument("action", choices=["start", "stop", "status"])
    cluster.add_argument("--workers", type=int, default=2, help="workers to start (default 2)")
    cluster.add_argument("--worker-cores", type=int, default=1, help="cores each worker offers (default 1)")
    cluster.add_argument("--worker-memory", default="1g",
                         help="memory each worker offers to executors, in Spark's form (default 1g)")
    cluster.add_argument("--port", type=int, help="master port (default 7077)")
    cluster.add_argument("--ui-port", type=int, help="master web UI port, also its JSON at /json/ (default 8080)")
    cluster.add_argument("--json", action="store_true", help="status as JSON")
    cluster.set_defaults(func=_cluster)

    decide = commands.add_parser("decide", help="ask the router where a run of an app would go, and why (a dry run)",
                                 description="Ask the router (SPARK_ROUTER_URL) where a run of the app would go "
                                             "now, and why. A dry run: nothing is recorded and no capacity is "
                                             "held (--record records a decided run, as the launcher does).")
    decide.add_argument("--app-id", required=True, help="the app's stable id, e.g. etl.orders")
    decide.add_argument("--mode", default="auto", choices=["auto", "connect", "standalone"])
    _add_resource_options(decide)
    decide.add_argument("--json", action="store_true", help="print the decision as JSON")
    decide.add_argument("--record", action="store_true",
                        help="record a decided run, as `spark-router run` does; one that never starts stops counting "
                             "as in flight after the policy's capacity.decided_max_age_s (5 min)")
    decide.set_defaults(func=_decide)

    run = commands.add_parser(
        "run", help="run an app on the shared Connect server or standalone, as the router decides",
        description="Ask the router where the run goes, run APP there, in this directory (the app's output "
                    "streams here), report the run, and rerun it standalone if it fails on Connect: the rerun's "
                    "outcome says whether Connect or the app failed it (a real app bug runs twice). The exit "
                    "code is the app's; SIGTERM or Ctrl-C stop the app and record the run as cancelled.",
        epilog="APP: a .py file, a directory with main.py or __main__.py, a .zip/.whl, a .jar (with --class, or its "
               "manifest's Main-Class), or an s3:// URI of one (fetched with boto3; AWS_ENDPOINT_URL etc. apply). "
               "Arguments after -- go to the app. A jar runs on Connect as `java` with the JVM Connect client, "
               "standalone with `spark-submit --class` (docs/jvm.md).")
    run.add_argument("--app-id", required=True, help="the app's stable id, e.g. etl.orders")
    run.add_argument("--mode", default="auto", choices=["auto", "connect", "standalone"],
                     help="auto asks the router (default); connect/standalone force the mode")
    run.add_argument("--master", help="spark-submit master for standalone runs (default "
                                      "SPARK_ROUTER_STANDALONE_MASTER or local[*])")
    run.add_argument("--timeout", type=float, help="seconds the whole run may take (default: no limit)")
    run.add_argument("--connect-timeout", type=float,
                     help="seconds the Connect server may be unreachable before the run counts as a Connect "
                          "failure (default SPARK_ROUTER_CONNECT_TIMEOUT_S or 30)")
    run.add_argument("--class", dest="main_class", metavar="CLASS",
                     help="for a .jar APP: the class to run, e.g. com.acme.Main (default: the jar's Main-Class)")
    run.add_argument("--no-fallback", action="store_true",
                     help="do not rerun standalone after a failed Connect run (its output classifies the failure)")
    run.add_argument("--not-idempotent", action="store_true",
                     help="the app must not run twice: never rerun it after a failed Connect run")
    _add_resource_options(run)
    run.add_argument("app", metavar="APP")
    run.add_argument("app_args", nargs=argparse.REMAINDER, metavar="-- ARGS")
    run.set_defaults(func=_run)

    check = commands.add_parser("check", help="find what in an app cannot work on Spark Connect",
                                description="Statically look for APIs a Connect client does not have "
                                            "(sparkContext, .rdd, _jvm, SparkContext, broadcast variables, "
                                            "accumulators, ...); in a jar, in its class files (SparkContext, "
                                            "JavaSparkContext, RDDs, sessionState, sharedState, sqlContext, ...), "
                                            "naming the class, method and line. Exit code 1 when something is "
                                            "found, 2 when APP cannot be read.")
    check.add_argument("app", metavar="APP", help="a .py file, a directory, a .zip/.whl, or a .jar")
    check.add_argument("--class", dest="main_class", metavar="CLASS",
                       help="for a .jar: check the classes this main class uses, as `run --class` runs it (default: "
                            "the jar's Main-Class; every class if it names none)")
    check.add_argument("--app-id", help="also record the outcome with this app in the router")
    check.set_defaults(func=_check)

    classpath = commands.add_parser(
        "classpath", help="print the classpath to compile a JVM app against",
        description="Print the classpath a JVM app compiles against: the session helper "
                    "(io.sparkrouter.session.RouterSession) and Spark's API jars (the unified SparkSession, Dataset, "
                    "functions, Java UDF interfaces). The app's jar carries none of them: `spark-router run` adds "
                    "the Spark of the run's mode. E.g. javac -cp \"$(spark-router classpath)\" ...",
        epilog="Spark's jars come from pyspark (or SPARK_ROUTER_JVM_JARS_DIR); the helper from "
               "SPARK_ROUTER_SESSION_JAR (built by `make install`).")
    which = classpath.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true",
                       help="every Spark jar instead, for an app that uses Spark's classic API too (SparkContext, "
                            "RDDs): it compiles, and runs standalone")
    which.add_argument("--connect", action="store_true",
                       help="the classpath a JVM app runs with on Spark Connect instead (without the app's jar)")
    classpath.set_defaults(func=_classpath)

    restart_cmd = commands.add_parser(
        "restart-server", help="drain a Connect server, wait for idle, restart it, undrain (--rolling: every one)",
        description="The drained restart of a Connect server: new runs go to the other servers of the pool (or "
                    "standalone when there is none), running client work is waited for (router, listener "
                    "heartbeat, Spark REST API), then the server restarts and must answer a warm-up query and "
                    "report from its new application before it is undrained. --rolling restarts every server of "
                    "the pool that is up, one at a time, and never drains the last one that can take runs.",
        epilog="Exit codes: 0 restarted, 3 skipped (still busy after the window; with --rolling also: no other "
               "server could take runs), 1 failed, 2 bad usage. With --rolling the worst outcome of any server.")
    restart_cmd.add_argument("--rolling", action="store_true",
                             help="restart every server of the pool (GET /api/v1/pool) that is up, one at a time")
    restart_cmd.add_argument("--window", type=float, help="seconds to wait for idle (default "
                                                          "SPARK_ROUTER_RESTART_WINDOW_S or 1800)")
    restart_cmd.add_argument("--force", action="store_true", help="restart even if still busy after the window")
    restart_cmd.add_argument("--backend", choices=["local", "kubernetes", "command"],
                             help="how to restart (default SPARK_ROUTER_RESTART_BACKEND or local)")
    restart_cmd.add_argument("--command", help="for --backend command: the shell command that restarts the server")
    restart_cmd.add_argument("--namespace", help="for --backend kubernetes: the Deployment's namespace")
    restart_cmd.add_argument("--deployment", help="for --backend kubernetes: the Connect server's Deployment")
    restart_cmd.add_argument("--server-id", help="which server of the pool (default SPARK_ROUTER_CONNECT_SERVER_ID "
                                                 "or connect-local); the local backend restarts the local server "
                                                 "of that id (`connect-server start --server-id`)")
    restart_cmd.add_argument("--ui-url", help="the server's Spark UI/REST URL (default "
                                              "SPARK_ROUTER_CONNECT_UI_URL or http://127.0.0.1:<ui port>)")
    restart_cmd.set_defaults(func=_restart_server)

    database = commands.add_parser("db", help="database maintenance")
    database.add_argument("action", choices=["upgrade"], help="upgrade: apply the schema migrations")
    database.set_defaults(func=_db_upgrade)
    return parser


def _start_app_interpreter(argv: list[str]):
    """For a `run` that may go to Connect: the interpreter the app will run in, started first of all, so that
    it preloads while the launcher imports itself, fetches the app and asks the router. None otherwise (a
    `run` these checks miss gets its interpreter from the launcher, a little later)."""
    if argv[:1] != ["run"] or "-h" in argv or "--help" in argv or "--mode=standalone" in argv or any(
            option == "--mode" and value == "standalone" for option, value in itertools.pairwise(argv)):
        return None
    ours = argv[:argv.index("--")] if "--" in argv else argv
    if "--class" in ours or any(arg.startswith("--class=") or arg.endswith(".jar") for arg in ours):
        return None  # a JVM app: it runs in java
    from client_runtime import runner

    return runner.start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    app_interpreter = _start_app_interpreter(argv)
    import gc
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns what matters
    try:
        args = build_parser().parse_args(argv)
        args.app_interpreter = app_interpreter
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    finally:
        if app_interpreter is not None and app_interpreter.poll() is None and not app_interpreter.stdin.closed:
            app_interpreter.kill()  # never given an app (bad usage, an error before the launch): not left behind
        gc.freeze()  # about to exit: spare the collector a walk over every object


if __name__ == "__main__":
    sys.exit(main())
