"""`spark-router`: the one command line of Spark Connect Router."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from service.settings import get_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app

    settings = get_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level=args.log_level, access_log=args.access_log)
    return 0


def _connect_server(args: argparse.Namespace) -> int:
    from service import connect_server

    settings = get_settings()
    try:
        if args.action == "start":
            connect_server.start(settings, port=args.port, ui_port=args.ui_port)
        elif args.action == "stop":
            connect_server.stop(settings)
        else:
            status = connect_server.status(settings)
            if args.json:
                print(json.dumps(status, indent=2))
            elif status["running"]:
                print(f"running since {status['since']} (pid {status['pid']})\n"
                      f"  Connect URL: {status['url']}\n  Spark UI:    {status['ui_url']}\n"
                      f"  logs:        {status['log_file']}")
            else:
                print(f"not running (state dir {status['state_dir']})")
                return 3
    except connect_server.ConnectServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _db_upgrade(_args: argparse.Namespace) -> int:
    from service import db

    settings = get_settings()
    db.upgrade(db.get_engine(settings.resolved_database_url))
    print(f"database at the newest schema: {db.get_engine(settings.resolved_database_url).url!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
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
    serve.set_defaults(func=_serve)

    server = commands.add_parser("connect-server", help="run a local Spark Connect server with the listener",
                                 description="Start, stop or inspect the local Spark Connect server (from "
                                             "pyspark, bound to 127.0.0.1, with the router's listener). State, "
                                             "logs and Spark local dirs live under SPARK_ROUTER_STATE_DIR.")
    server.add_argument("action", choices=["start", "stop", "status"])
    server.add_argument("--port", type=int, help="gRPC port (default SPARK_ROUTER_CONNECT_PORT or 15002)")
    server.add_argument("--ui-port", type=int, help="Spark UI port (default SPARK_ROUTER_CONNECT_UI_PORT or 4040)")
    server.add_argument("--json", action="store_true", help="status as JSON")
    server.set_defaults(func=_connect_server)

    database = commands.add_parser("db", help="database maintenance")
    database.add_argument("action", choices=["upgrade"], help="upgrade: apply the schema migrations")
    database.set_defaults(func=_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
