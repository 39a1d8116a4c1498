"""`spark-router`: the one command line of Spark Connect Router.

The client's commands (`run`, `check`, `classpath`, `decide`) live here; the router's and operations' commands
(`serve`, `connect-server`, `cluster`, `restart-server`, `db`) live in service/commands.py and are found at
run time, by name, when the router package is installed: the client runtime never imports the service, and a
client-only install (the thin client image) still has the one `spark-router`."""

from __future__ import annotations

import itertools
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import argparse
    import subprocess
    from collections.abc import Callable
    from types import FrameType, ModuleType
    from typing import Any, TypeVar

    from client_runtime.protocol import Resources
    from client_runtime.settings import BaseRouterSettings, ClientSettings

    SettingsT = TypeVar("SettingsT", bound=BaseRouterSettings)

# Every other import is made where it is needed: `run` starts the app's interpreter (client_runtime.runner)
# before anything else is imported, argparse and logging included (docs/benchmarks.md, the launcher's start).

# The router's commands, for --help and a clear error where the router package is not installed
# (tests/test_cli_split.py checks them against service/commands.py).
ROUTER_COMMANDS = {
    "serve": "run the router service (HTTP API, ingest, dashboard)",
    "connect-server": "run local Spark Connect servers with the listener (one, or a pool)",
    "cluster": "run a Spark standalone cluster on this machine (a master and workers)",
    "restart-server": "drain a Connect server, wait for idle, restart it, undrain (--rolling: every one)",
    "db": "database maintenance",
}
ROUTER_PACKAGE = "service"


def checked_settings(load: Callable[[], SettingsT]) -> SettingsT:
    """The settings `load` reads, or a clear error naming the SPARK_ROUTER_* variable that is wrong (exit code
    2). The router's and operations' commands pass their own (service/commands.py)."""
    from pydantic import ValidationError

    try:
        return load()
    except ValidationError as exc:
        for error in exc.errors():
            name = "SPARK_ROUTER_" + "_".join(map(str, error["loc"])).upper()
            print(f"error: {name}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def get_settings() -> ClientSettings:
    """The client's settings (client_runtime/settings.py), or a clear error (see ``checked_settings``)."""
    from client_runtime.settings import get_settings as settings

    return checked_settings(settings)


def router_commands() -> ModuleType | None:
    """service/commands.py if the router package is installed, else None."""
    import importlib

    try:
        return importlib.import_module(ROUTER_PACKAGE + ".commands")
    except ModuleNotFoundError as exc:
        if exc.name not in (ROUTER_PACKAGE, ROUTER_PACKAGE + ".commands"):
            raise
        return None


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


def _resources(args: argparse.Namespace) -> Resources:
    from client_runtime.protocol import resources

    return resources(driver_memory=args.driver_memory, executor_memory=args.executor_memory,
                     driver_cores=args.driver_cores, executor_cores=args.executor_cores,
                     num_executors=args.num_executors)


def _decide(args: argparse.Namespace) -> int:
    from client_runtime.router_client import RouterClient, RouterRejected, RouterUnavailable

    settings = get_settings()
    client = RouterClient(settings.url, settings.token("api_token"))
    try:
        decision = client.decide(args.app_id, args.mode, _resources(args), _parse_confs(args.conf),
                                 dry_run=not args.record, can_wait=args.can_wait)
    except (RouterUnavailable, RouterRejected) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, RouterRejected) else 1
    if args.json:
        import json

        print(json.dumps(decision.raw, indent=2))
        return 0
    run = (f"run {decision.run_id}, counted in flight for capacity.decided_max_age_s unless it starts"
           if decision.run_id else "dry run: no run recorded")
    print(f"{decision.app_id}: {decision.mode} ({run}; policy {decision.policy_version})")
    if decision.mode == "queued":
        print(f"  queued at position {decision.position}, predicted wait {decision.predicted_wait_s:.0f} s")
    for reason in decision.reasons:
        print(f"  - [{reason.rule}] {reason.message}")
    if decision.connect_url:
        print(f"  Connect URL: {decision.connect_url}")
    for line in prediction_lines(decision.raw.get("predictions")):
        print(f"  {line}")
    return 0


def prediction_lines(predictions: dict[str, Any] | None) -> list[str]:
    """The router's predictions for the run, one line per mode, as its answer carries them (no line for a
    router that makes none)."""
    if not predictions:
        return []
    lines = []
    for mode in ("connect", "standalone"):
        p = predictions.get(mode)
        if p:
            where = (f"on {p.get('server_id')}" if mode == "connect"
                     else f"incl. {p['startup_s']:.0f} s start-up, {p['cores']:g} cores")
            lines.append(f"predicted {mode}: {p['wall_s']:.0f} s and {p['core_s']:.0f} executor core-s "
                         f"±{p['uncertainty']:.0%} ({where}; from {p['basis'].removeprefix('from ')})")
    if predictions.get("note"):
        lines.append(f"predictions: {predictions['note']}")
    return lines


def _run(args: argparse.Namespace) -> int:
    import signal

    from client_runtime.artifacts import ArtifactError
    from client_runtime.launcher import Launcher, RunRequest
    from client_runtime.router_client import RouterRejected
    from client_runtime.sentry import init_sentry

    init_sentry("launcher")
    settings = get_settings()
    overrides = {"standalone_master": args.master, "run_timeout_s": args.timeout,
                 "connect_timeout_s": args.connect_timeout}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    launcher = Launcher(settings, on_event=lambda message: print(f"[spark-router] {message}", file=sys.stderr,
                                                                  flush=True))

    def on_sigterm(signum: int, _frame: FrameType | None) -> None:
        launcher.cancel()  # stops the app's whole process tree; run() then returns

    signal.signal(signal.SIGTERM, on_sigterm)
    args_after = args.app_args[1:] if args.app_args[:1] == ["--"] else args.app_args
    request = RunRequest(app_id=args.app_id, app=args.app, args=args_after, mode=args.mode,
                         resources=_resources(args), spark_conf=_parse_confs(args.conf),
                         fallback=not args.no_fallback, idempotent=not args.not_idempotent,
                         main_class=args.main_class, can_wait=not args.no_wait)
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
            RouterClient(settings.url, settings.token("api_token")).record_compatibility(args.app_id,
                                                                                         [f.as_dict()
                                                                                          for f in findings])
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
    which = (jvm.connect_classpath if args.connect else jvm.classic_classpath if args.all
             else jvm.compile_classpath)
    try:
        jars = which(settings)
    except jvm.JvmAppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(os.pathsep.join(str(jar) for jar in jars))
    return 0


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="spark-router",
        description="Route Spark application runs to a shared Spark Connect server or a separate Spark "
                    "application, from their run history. Settings come from SPARK_ROUTER_* variables.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run an app on the shared Connect server or standalone, as the router decides",
        description="Ask the router where the run goes, run APP there, in this directory (the app's output "
                    "streams here), report the run, and rerun it standalone if it fails on Connect: the "
                    "rerun's outcome says whether Connect or the app failed it (a real app bug runs twice). "
                    "The exit code is the app's; SIGTERM or Ctrl-C stop the app and record the run as "
                    "cancelled.",
        epilog="APP: a .py file, a directory with main.py or __main__.py, a .zip/.whl, a .jar (with --class, "
               "or its manifest's Main-Class), or an s3:// URI of one (fetched with boto3; AWS_ENDPOINT_URL "
               "etc. apply). Arguments after -- go to the app. A jar runs on Connect as `java` with the JVM "
               "Connect client, standalone with `spark-submit --class` (docs/jvm.md).")
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
                     help="for a .jar APP: the class to run, e.g. com.acme.Main (default: the jar's "
                          "Main-Class)")
    run.add_argument("--no-wait", action="store_true",
                     help="never wait in the router's admission queue for room on Connect (an auto run waits "
                          "when room is predicted sooner than a standalone start-up)")
    run.add_argument("--no-fallback", action="store_true",
                     help="do not rerun standalone after a failed Connect run (its output classifies the "
                          "failure)")
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
                                            "JavaSparkContext, RDDs, sessionState, sharedState, sqlContext, "
                                            "...), naming the class, method and line. Exit code 1 when "
                                            "something is found, 2 when APP cannot be read.")
    check.add_argument("app", metavar="APP", help="a .py file, a directory, a .zip/.whl, or a .jar")
    check.add_argument("--class", dest="main_class", metavar="CLASS",
                       help="for a .jar: check the classes this main class uses, as `run --class` runs it "
                            "(default: the jar's Main-Class; every class if it names none)")
    check.add_argument("--app-id", help="also record the outcome with this app in the router")
    check.set_defaults(func=_check)

    classpath = commands.add_parser(
        "classpath", help="print the classpath to compile a JVM app against",
        description="Print the classpath a JVM app compiles against: the session helper "
                    "(io.sparkrouter.session.RouterSession) and Spark's API jars (the unified SparkSession, "
                    "Dataset, functions, Java UDF interfaces). The app's jar carries none of them: "
                    "`spark-router run` adds the Spark of the run's mode. E.g. javac -cp \"$(spark-router "
                    "classpath)\" ...",
        epilog="Spark's jars come from pyspark (or SPARK_ROUTER_JVM_JARS_DIR); the helper from "
               "SPARK_ROUTER_SESSION_JAR (built by `make install`).")
    which = classpath.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true",
                       help="every Spark jar instead, for an app that uses Spark's classic API too "
                            "(SparkContext, RDDs): it compiles, and runs standalone")
    which.add_argument("--connect", action="store_true",
                       help="the classpath a JVM app runs with on Spark Connect instead (without the app's "
                            "jar)")
    classpath.set_defaults(func=_classpath)

    decide = commands.add_parser("decide", help="ask the router where a run of an app would go, and why (a "
                                                "dry run)",
                                 description="Ask the router (SPARK_ROUTER_URL) where a run of the app would "
                                             "go now, and why. A dry run: nothing is recorded and no "
                                             "capacity is held (--record records a decided run, as the "
                                             "launcher does).")
    decide.add_argument("--app-id", required=True, help="the app's stable id, e.g. etl.orders")
    decide.add_argument("--mode", default="auto", choices=["auto", "connect", "standalone"])
    _add_resource_options(decide)
    decide.add_argument("--json", action="store_true", help="print the decision as JSON")
    decide.add_argument("--can-wait", action="store_true",
                        help="as `spark-router run` asks: the run may wait in the admission queue for room "
                             "on Connect")
    decide.add_argument("--record", action="store_true",
                        help="record a decided run, as `spark-router run` does; one that never starts stops "
                             "counting as in flight after the policy's capacity.decided_max_age_s (5 min)")
    decide.set_defaults(func=_decide)

    service = router_commands()
    if service is not None:
        service.add_commands(commands)
    else:
        for name, summary in ROUTER_COMMANDS.items():
            commands.add_parser(name, help=f"{summary} (needs the router package)")
    return parser


def _start_app_interpreter(argv: list[str]) -> subprocess.Popen[bytes] | None:
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
        if argv[:1] and argv[0] in ROUTER_COMMANDS and router_commands() is None:
            print(f"error: `spark-router {argv[0]}` is a command of the router: it needs the router package "
                  f"(`{ROUTER_PACKAGE}`, pip install 'spark-connect-router[service]'), which is not "
                  "installed here",
                  file=sys.stderr)
            return 2
        args = build_parser().parse_args(argv)
        args.app_interpreter = app_interpreter
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        if (app_interpreter is not None and app_interpreter.poll() is None
                and not (app_interpreter.stdin is not None and app_interpreter.stdin.closed)):
            # never given an app (bad usage, an error before the launch): not left behind
            app_interpreter.kill()
        gc.freeze()  # about to exit: spare the collector a walk over every object


if __name__ == "__main__":
    sys.exit(main())
