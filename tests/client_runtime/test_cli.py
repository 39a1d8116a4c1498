"""The one `spark-router`: its client commands in client_runtime/cli.py, the router's found in
service/commands.py when the router package is installed (and named clearly when it is not); `decide` against
the session's router process, a dry run by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from client_runtime import cli
from tests.support import REPO

SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")


def in_flight(router) -> int:
    counts = router.get("/api/v1/dashboard/summary", days=1)["in_flight"]
    return counts["connect"] + counts["standalone"]


def decide(router, app_id: str, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARK_ROUTER_URL": router.url}
    return subprocess.run([SPARK_ROUTER, "decide", "--app-id", app_id, *options], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_decide_leaves_the_in_flight_count_unchanged_unless_asked_to_record(router):
    app_id = f"cli.{uuid.uuid4().hex[:6]}"
    before = in_flight(router)
    for _ in range(8):  # eight calls once pushed a real run over capacity
        answer = decide(router, app_id)
        assert answer.returncode == 0, answer.stderr
    assert "dry run: no run recorded" in answer.stdout and answer.stdout.startswith(f"{app_id}: ")
    assert json.loads(decide(router, app_id, "--json").stdout)["run_id"] is None
    assert in_flight(router) == before
    assert app_id not in {app["app_id"] for app in router.get("/api/v1/apps", limit=1000)}
    recorded = decide(router, app_id, "--record")
    assert recorded.returncode == 0 and "counted in flight for capacity.decided_max_age_s" in recorded.stdout
    assert in_flight(router) == before + 1


# The client image: client_runtime without service/ (and without the router's dependencies).
WITHOUT_THE_ROUTER = (
    "import importlib.abc, sys\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('service', 'fastapi', 'sqlalchemy', 'alembic', 'uvicorn'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from client_runtime.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")


def without_the_router(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_THE_ROUTER, *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_router_commands_are_the_services():
    """The names client_runtime/cli.py lists for a client-only install are the commands service/commands.py
    adds."""
    commands = next(action for action in cli.build_parser()._actions if action.dest == "command")
    assert set(commands.choices) == {"run", "check", "classpath", "decide", *cli.ROUTER_COMMANDS}
    assert cli.router_commands() is not None
    shown = subprocess.run([SPARK_ROUTER, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and "needs the router package" not in shown.stdout
    assert all(name in shown.stdout for name in commands.choices)


def test_without_the_router_package_the_client_commands_work_and_the_router_commands_say_what_they_need():
    shown = without_the_router("--help")
    assert shown.returncode == 0, shown.stderr
    for name in ("run", "check", "classpath", "decide"):
        assert f"    {name} " in shown.stdout
    assert " ".join(shown.stdout.split()).count("(needs the router package)") == len(cli.ROUTER_COMMANDS)
    for argv in (["serve", "--port", "9999"], ["db", "upgrade"], ["restart-server", "--help"]):
        refused = without_the_router(*argv)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        needs = f"`spark-router {argv[0]}` is a command of the router: it needs the router package"
        assert needs in refused.stderr
    checked = without_the_router("check", str(REPO / "examples" / "apps" / "light_aggregation.py"))
    assert checked.returncode == 0 and "no Connect incompatibilities" in checked.stderr, checked.stderr


def test_the_client_image_does_not_copy_the_service():
    dockerfile = (REPO / "docker" / "client.Dockerfile").read_text()
    ignore = (REPO / "docker" / "client.Dockerfile.dockerignore").read_text()
    assert "COPY client_runtime/" in dockerfile and "service/" not in dockerfile
    assert "!client_runtime/" in ignore and "service" not in ignore


def test_decide_prints_what_the_answer_predicts():
    from client_runtime.cli import prediction_lines

    predictions = {
        "connect": {"wall_s": 42.4, "core_s": 40.1, "uncertainty": 0.2, "basis": "3 Connect runs",
                    "startup_s": 2, "cores": 1, "server_id": "connect-1"},
        "standalone": {"wall_s": 95, "core_s": 180, "uncertainty": 0.7, "cores": 2, "startup_s": 38.2,
                       "basis": "from 3 Connect runs (not seen in the other mode)", "server_id": None},
        "note": None}
    assert prediction_lines(predictions) == [
        "predicted connect: 42 s and 40 executor core-s ±20% (on connect-1; from 3 Connect runs)",
        ("predicted standalone: 95 s and 180 executor core-s ±70% (incl. 38 s start-up, 2 cores; from 3 "
         "Connect runs "
        "(not seen in the other mode))")]
    assert prediction_lines({"connect": None, "standalone": None, "note": "No successful run yet."}) == [
        "predictions: No successful run yet."]
    assert prediction_lines(None) == []
