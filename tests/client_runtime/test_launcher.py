"""The client runtime without Spark: compatibility check, artifacts (with a real local S3), the launcher's
process handling and its behaviour when the router is away."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from client_runtime import artifacts, compat, runner
from client_runtime.launcher import Launcher, RunRequest, with_user_id
from client_runtime import process as app_process
from client_runtime.process import AppProcess
from client_runtime.router_client import RouterClient, RouterRejected, RouterUnavailable
from client_runtime.session import bounded_retry_policy
from client_runtime.settings import ClientSettings
from tests.support import REPO, free_port, wait_until

EXAMPLES = REPO / "examples" / "apps"


def test_check_finds_what_cannot_run_on_connect_with_lines():
    findings = compat.check_path(EXAMPLES / "uses_spark_context.py")
    assert [(f.line, f.what) for f in findings] == [(7, ".parallelize"), (7, ".sparkContext")]
    assert str(findings[1]).startswith(f"{EXAMPLES / 'uses_spark_context.py'}:7: .sparkContext")


def test_check_passes_connect_ready_apps():
    for name in ("light_aggregation.py", "heavy_shuffle.py", "own_session.py"):
        assert compat.check_path(EXAMPLES / name) == [], name


def test_check_knows_the_usual_suspects(tmp_path):
    source = textwrap.dedent("""\
        from pyspark import SparkContext
        from pyspark.sql import functions as F
        sc = spark.sparkContext
        counts = df.rdd.map(len)
        lookup = sc.broadcast({1: 2})
        total = sc.accumulator(0)
        joined = df.join(F.broadcast(dim), "k")
        conf = spark._jsc.hadoopConfiguration()
        """)
    app = tmp_path / "app.py"
    app.write_text(source)
    found = {(f.line, f.what) for f in compat.check_path(app)}
    assert found == {(1, "import SparkContext"), (3, ".sparkContext"), (4, ".rdd"), (5, ".broadcast"),
                     (6, ".accumulator"), (8, "._jsc"), (8, ".hadoopConfiguration")}
    # The same inside a zip, named by archive member.
    bundle = tmp_path / "app.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.write(app, "pkg/job.py")
    assert any("app.zip!pkg/job.py" in f.path for f in compat.check_path(bundle))


def test_check_cli_exit_codes():
    spark_router = str(Path(sys.executable).parent / "spark-router")
    bad = subprocess.run([spark_router, "check", str(EXAMPLES / "uses_spark_context.py")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "uses_spark_context.py:7: .sparkContext" in bad.stdout
    good = subprocess.run([spark_router, "check", str(EXAMPLES / "light_aggregation.py")],
                          capture_output=True, text=True, check=False)
    assert good.returncode == 0 and "no Connect incompatibilities" in good.stderr


@pytest.mark.parametrize("variable, value", [("SPARK_ROUTER_URL", "localhost:8765"),
                                             ("SPARK_ROUTER_ROUTER_TIMEOUT_S", "soon")])
def test_a_bad_setting_is_named_not_a_traceback(tmp_path, variable, value):
    env = {**os.environ, "SPARK_ROUTER_STATE_DIR": str(tmp_path), variable: value}
    for command in (["decide", "--app-id", "etl.x"],
                    ["run", "--app-id", "etl.x", str(EXAMPLES / "light_aggregation.py")]):
        result = subprocess.run([str(Path(sys.executable).parent / "spark-router"), *command], env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: {variable}: ") and "Traceback" not in result.stderr


def test_resolve_py_dir_zip_wheel(tmp_path):
    work = tmp_path / "work"
    single = artifacts.resolve(str(EXAMPLES / "light_aggregation.py"), work)
    assert single.main == (EXAMPLES / "light_aggregation.py").resolve() and single.artifacts == []

    project = tmp_path / "project"
    (project / "helpers").mkdir(parents=True)
    (project / "main.py").write_text("import helpers.text\n")
    (project / "helpers" / "__init__.py").write_text("")
    (project / "helpers" / "text.py").write_text("X = 1\n")
    resolved = artifacts.resolve(str(project), work)
    assert resolved.main == project / "main.py"
    assert "helpers/text.py" in zipfile.ZipFile(resolved.artifacts[0]).namelist()

    bundle = tmp_path / "job.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("__main__.py", "print('zip main')\n")
    resolved = artifacts.resolve(str(bundle), work)
    assert resolved.main.read_text() == "print('zip main')\n" and resolved.artifacts == [bundle.resolve()]

    wheel = tmp_path / "etl_job-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("etl_job/__init__.py", "")
        archive.writestr("etl_job/__main__.py", "print('wheel main')\n")
    resolved = artifacts.resolve(str(wheel), work)
    assert "run_module('etl_job'" in resolved.main.read_text()
    assert resolved.artifacts[0].suffix == ".zip"
    out = subprocess.run([sys.executable, str(resolved.main)],
                         env={**os.environ, "PYTHONPATH": str(resolved.artifacts[0])}, capture_output=True,
                         text=True, check=False)
    assert out.stdout == "wheel main\n", out.stderr


@pytest.mark.parametrize("name, content, message", [
    ("missing.py", None, "no such file"),
    ("notes.txt", "hi", "expected a .py file"),
    ("empty.zip", b"", "not a valid zip"),
])
def test_resolve_explains_bad_apps(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(artifacts.ArtifactError, match=message):
        artifacts.resolve(str(path), tmp_path / "work")


def test_resolve_dir_without_main(tmp_path):
    (tmp_path / "lib").mkdir()
    with pytest.raises(artifacts.ArtifactError, match="without __main__.py or main.py"):
        artifacts.resolve(str(tmp_path / "lib"), tmp_path / "work")


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 in server mode: a real HTTP endpoint that boto3 talks to."""
    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p",
                                str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: _port_open(port), 30, "moto_server")
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    yield env
    process.terminate()
    process.wait()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_resolve_fetches_from_s3(s3_server, tmp_path, monkeypatch):
    import boto3

    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="apps")
    s3.upload_file(str(EXAMPLES / "light_aggregation.py"), "apps", "etl/light_aggregation.py")
    resolved = artifacts.resolve("s3://apps/etl/light_aggregation.py", tmp_path)
    assert resolved.main.read_text() == (EXAMPLES / "light_aggregation.py").read_text()
    with pytest.raises(artifacts.ArtifactError, match="cannot fetch s3://apps/nope.py"):
        artifacts.resolve("s3://apps/nope.py", tmp_path)
    with pytest.raises(artifacts.ArtifactError, match="not an s3://bucket/key"):
        artifacts.resolve("s3://apps", tmp_path)


def test_with_user_id():
    assert with_user_id("sc://h:15002", "router:a:r") == "sc://h:15002/;user_id=router:a:r"
    assert with_user_id("sc://h:15002/;token=t;user_id=x", "u") == "sc://h:15002/;token=t;user_id=u"


@pytest.mark.parametrize("budget", [5, 30, 120])
def test_retry_policy_stays_within_its_budget(budget):
    policy = bounded_retry_policy(budget)
    backoffs, backoff = [], policy.initial_backoff
    for _ in range(policy.max_retries):
        backoffs.append(min(backoff, policy.max_backoff))
        backoff *= policy.backoff_multiplier
    assert budget * 1000 * 0.5 <= sum(backoffs) <= budget * 1000  # doubling back-offs: at least half


def write_app(tmp_path: Path, body: str) -> Path:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(body))
    return app


def launcher_settings(tmp_path, **overrides) -> ClientSettings:
    return ClientSettings(state_dir=tmp_path / "state", url=f"http://127.0.0.1:{free_port()}",
                          connect_url=f"sc://127.0.0.1:{free_port()}", **overrides)


def test_router_unreachable_follows_mode_if_router_unreachable_quickly(tmp_path):
    """A router that accepts connections but never answers: the launcher waits router_timeout_s, warns once,
    and runs in the default mode."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # never accepted: requests hang until the client's timeout
    app = write_app(tmp_path, """\
        import json, os
        confs = json.loads(os.environ["SPARK_ROUTER_SESSION_CONFS"])
        print("MODE", os.environ["SPARK_ROUTER_MODE"], confs["spark.router.appId"])
        """)
    settings = launcher_settings(tmp_path, router_timeout_s=1.0, mode_if_router_unreachable="connect")
    settings.url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    lines, events = [], []
    started = time.monotonic()
    result = Launcher(settings, on_line=lines.append, on_event=events.append).run(
        RunRequest(app_id="etl.quick", app=str(app)))
    elapsed = time.monotonic() - started
    silent.close()
    assert result.exit_code == 0 and result.mode == "connect" and result.run_id.startswith("local-")
    assert "MODE connect etl.quick" in lines
    warnings = [e for e in events if "WARNING" in e]
    assert len(warnings) == 1 and "unreachable" in warnings[0]
    assert elapsed < 5, elapsed  # one router timeout, not one per report


def test_exit_code_is_the_apps(tmp_path):
    app = write_app(tmp_path, "import sys\nprint('bye')\nsys.exit(7)\n")
    result = Launcher(launcher_settings(tmp_path), on_line=lambda _l: None, on_event=lambda _e: None).run(
        RunRequest(app_id="etl.seven", app=str(app), mode="connect", fallback=False))
    assert result.exit_code == 7


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def write_process_tree_app(tmp_path: Path) -> tuple[Path, Path]:
    """An app that starts a child and sleeps; it writes both pids to a file."""
    pids = tmp_path / "pids"
    app = write_app(tmp_path, f"""\
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(300)
        """)
    return app, pids


def test_run_timeout_kills_the_whole_process_tree(tmp_path):
    app, pids = write_process_tree_app(tmp_path)
    settings = launcher_settings(tmp_path, run_timeout_s=3)
    started = time.monotonic()
    result = Launcher(settings, on_line=lambda _l: None, on_event=lambda _e: None).run(
        RunRequest(app_id="etl.slow", app=str(app), mode="connect", fallback=False))
    assert time.monotonic() - started < 20
    assert result.exit_code != 0 and result.runs[0]["failure_kind"] == "connect"
    for pid in map(int, pids.read_text().split()):
        assert not process_alive(pid), pid


def test_sigterm_to_spark_router_run_cleans_up(tmp_path):
    app, pids = write_process_tree_app(tmp_path)
    env = {**os.environ, "SPARK_ROUTER_URL": f"http://127.0.0.1:{free_port()}",
           "SPARK_ROUTER_STATE_DIR": str(tmp_path / "state")}
    launcher = subprocess.Popen([str(Path(sys.executable).parent / "spark-router"), "run", "--app-id",
                                 "etl.term", "--mode", "connect", str(app)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: pids.exists() and pids.read_text(), 30, "the app to start")
    launcher.terminate()
    output, _ = launcher.communicate(timeout=30)
    assert launcher.returncode == 143, output
    for pid in map(int, pids.read_text().split()):
        wait_until(lambda pid=pid: not process_alive(pid), 10, f"pid {pid} to be gone")


def test_app_process_streams_output_as_it_comes(tmp_path):
    app = write_app(tmp_path, "import time\nprint('first', flush=True)\ntime.sleep(2)\nprint('second')\n")
    seen = []
    process = AppProcess.start([sys.executable, str(app)], dict(os.environ),
                               lambda line: seen.append((time.monotonic(), line)))
    outcome = process.wait()
    assert outcome.exit_code == 0 and [line for _, line in seen] == ["first", "second"]
    assert seen[1][0] - seen[0][0] > 1.5  # the first line arrived before the app ended



def test_output_a_slow_sink_is_still_writing_when_the_app_exits_is_not_lost(tmp_path, monkeypatch):
    """A busy task log may lag behind the app: the launcher waits for the rest of the output as long as it
    keeps coming, not for a fixed while."""
    monkeypatch.setattr(app_process, "OUTPUT_QUIET_S", 1.0)
    app = write_app(tmp_path, "for i in range(6):\n    print('line', i)\n")
    seen = []

    def slow_sink(line: str) -> None:
        time.sleep(0.5)  # 3 s for the whole output, three times the quiet spell
        seen.append(line)

    outcome = AppProcess.start([sys.executable, str(app)], dict(os.environ), slow_sink).wait()
    assert outcome.exit_code == 0 and seen == [f"line {i}" for i in range(6)]


# What the app leaves behind when it exits, inheriting its output: a silent process, or one that writes on.
LEFT_BEHIND = {"silent": "['sleep', '60']",
               "writing": "[sys.executable, '-u', '-c', 'import time\\nfor _ in range(600): print(\"tick\"); "
                          "time.sleep(0.1)']"}


@pytest.mark.parametrize("left_behind", sorted(LEFT_BEHIND))
def test_a_process_the_app_leaves_with_its_output_does_not_hold_the_launcher(tmp_path, monkeypatch,
                                                                             left_behind):
    monkeypatch.setattr(app_process, "OUTPUT_QUIET_S", 1.0)
    monkeypatch.setattr(app_process, "OUTPUT_DRAIN_MAX_S", 3.0)
    app = write_app(tmp_path, "import subprocess, sys\n"
                              f"child = subprocess.Popen({LEFT_BEHIND[left_behind]})\n"
                              "print('CHILD', child.pid, flush=True)\n")
    started = time.monotonic()
    outcome = AppProcess.start([sys.executable, str(app)], dict(os.environ), lambda _line: None).wait()
    try:
        assert outcome.exit_code == 0 and time.monotonic() - started < 30, outcome
        if left_behind == "writing":
            assert "tick" in outcome.tail  # it did wait for the output while it came
    finally:
        for pid in [line.split()[1] for line in outcome.tail if line.startswith("CHILD ")]:
            os.kill(int(pid), 9)


PROBE_APP = """\
import json, os, sys
import helper  # a module next to the app
print("PROBE " + json.dumps({"name": __name__, "argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(),
                             "stdin": sys.stdin.read(), "helper": helper.VALUE, "file": __file__,
                             "probe": os.environ.get("PROBE_VAR")}))
sys.exit(int(sys.argv[1]))
"""


def test_the_preloaded_interpreter_runs_an_app_as_python_would(tmp_path):
    """client_runtime.runner: the same __name__, argv, sys.path[0], cwd, environment, (empty) stdin and exit
    code as `python -u APP ARGS`."""
    app = tmp_path / "probe.py"
    app.write_text(PROBE_APP)
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {**os.environ, "PROBE_VAR": "set by the launcher"}
    direct = subprocess.run([sys.executable, "-u", str(app), "3"], env=env, cwd=workdir, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, check=False)
    process = runner.start()
    runner.hand_over(process, app, ["3"], env, workdir, [])
    preloaded = AppProcess(process, lambda _line: None).wait()
    assert direct.returncode == preloaded.exit_code == 3
    probe = [line for line in preloaded.tail if line.startswith("PROBE ")]
    assert probe == [direct.stdout.strip()], preloaded.tail


def test_an_app_that_raises_fails_the_same_in_the_preloaded_interpreter(tmp_path):
    app = write_app(tmp_path, "raise ValueError('no such table: orders')\n")
    process = runner.start()
    runner.hand_over(process, app, [], dict(os.environ), tmp_path, [])
    outcome = AppProcess(process, lambda _line: None).wait()
    assert outcome.exit_code == 1 and outcome.tail[-1] == "ValueError: no such table: orders"


def preloaded_interpreters(marker: str | None = None) -> list[int]:
    """Live client_runtime.runner interpreters: this process's children, or with `marker`, those whose
    environment holds it (also when the process that started them is gone)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
            ours = (marker.encode() in (status.parent / "environ").read_bytes() if marker
                    else fields.get("PPid", "").strip() == str(os.getpid()))
        except OSError:
            continue
        if ours and b"client_runtime.runner" in cmdline:
            found.append(int(status.parent.name))
    return found


def test_a_standalone_run_leaves_no_preloaded_interpreter_behind(tmp_path):
    """The router is away and the default is standalone: the interpreter preloaded for Connect is not used,
    and not left running. The app runs in the caller's directory, as with spark-submit, with a fixed hash
    seed."""
    # spark-submit runs it; it needs no SparkContext.
    app = write_app(tmp_path, "import os\nprint('STANDALONE', os.getcwd(), "
                              "os.environ.get('PYTHONHASHSEED'))\n")
    settings = launcher_settings(tmp_path, router_timeout_s=0.5, mode_if_router_unreachable="standalone",
                                 standalone_master="local[1]")
    workdir = tmp_path / "work"
    workdir.mkdir()
    lines = []
    result = Launcher(settings, on_line=lines.append, on_event=lambda _e: None).run(
        RunRequest(app_id="etl.alone", app=str(app), cwd=str(workdir)))
    assert result.exit_code == 0 and result.mode == "standalone" and f"STANDALONE {workdir} 0" in lines
    assert preloaded_interpreters() == []


@pytest.mark.parametrize("usage", ["bad usage", "no such app", "fine"])
def test_spark_router_run_starts_the_apps_interpreter_first_and_never_leaves_it_behind(tmp_path, usage):
    """`spark-router run` starts the interpreter a Connect run will use before it imports anything; when the
    run never reaches the launch (bad usage, an app that is not there), that interpreter is killed on the way
    out, not left preloading after the launcher is gone."""
    marker = f"router-test-{uuid.uuid4().hex}"
    app = write_app(tmp_path, "import os, sys; print('INTERPRETER', os.getppid()); sys.exit(4)\n")
    command = {"bad usage": ["--mode", "sideways", str(app)], "no such app": [str(tmp_path / "missing.py")],
               "fine": ["--mode", "connect", str(app)]}[usage]
    env = {**os.environ, "ROUTER_TEST_MARKER": marker, "SPARK_ROUTER_STATE_DIR": str(tmp_path),
           "SPARK_ROUTER_URL": "http://127.0.0.1:9", "SPARK_ROUTER_ROUTER_TIMEOUT_S": "0.5",
           "SPARK_ROUTER_CONNECT_URL": "sc://127.0.0.1:9"}
    result = subprocess.run([str(Path(sys.executable).parent / "spark-router"), "run", "--app-id",
                             "etl.early", *command], env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    if usage == "fine":
        # the early interpreter ran the app: its parent is the launcher, the exit code the app's
        assert result.returncode == 4 and "INTERPRETER" in result.stdout, result.stderr
    else:
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    # Checked at once: one left behind would still be preloading (half a second or more), then exit by itself;
    # one killed a moment ago may still be on its way out.
    wait_until(lambda: preloaded_interpreters(marker) == [], 0.3, "the preloaded interpreter to be gone",
               interval_s=0.02)


def test_waiting_for_a_long_app_costs_next_to_no_cpu():
    """The launcher waits on the app's output and exit, it does not poll in a tight loop (runs last hours)."""
    started = time.process_time()
    outcome = AppProcess.start([sys.executable, "-c", "import time; time.sleep(5)"], dict(os.environ),
                               lambda _line: None).wait()
    assert outcome.exit_code == 0
    assert time.process_time() - started < 0.025  # a poll every millisecond would cost ~60 ms here


HASH_PROBE = """\
import os, sys
print("PROBE", os.getcwd(), os.environ.get("PYTHONHASHSEED"), hash("spark-router"))
"""


def hash_with_seed(seed: str) -> str:
    return subprocess.run([sys.executable, "-c", "print(hash('spark-router'))"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout.strip()


@pytest.mark.parametrize("user_seed", [None, "123"])
def test_a_connect_run_gets_the_callers_directory_and_the_standalone_hash_seed(tmp_path, monkeypatch,
                                                                               user_seed):
    """The app of a Connect run runs where the launcher was started, with PYTHONHASHSEED=0 as a standalone run
    (unless the user set one), and the launcher warns about relative paths given to it: they resolve on the
    server."""
    if user_seed:
        monkeypatch.setenv("PYTHONHASHSEED", user_seed)
    else:
        monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    app = write_app(tmp_path, HASH_PROBE)
    workdir = tmp_path / "work"
    (workdir / "data").mkdir(parents=True)
    (workdir / "data" / "orders.csv").write_text("store,amount\n")
    monkeypatch.chdir(workdir)
    lines, events = [], []
    result = Launcher(launcher_settings(tmp_path, router_timeout_s=0.5), on_line=lines.append,
                      on_event=events.append).run(
        RunRequest(app_id="etl.hash", app=str(app), mode="connect", fallback=False,
                   args=["data/orders.csv", "/abs/path", "12"]))
    assert result.exit_code == 0 and result.mode == "connect", lines
    seed = user_seed or "0"
    assert f"PROBE {workdir} {seed} {hash_with_seed(seed)}" in lines
    warnings = [e for e in events if e.startswith("WARNING: relative paths resolve on the Connect server")]
    assert len(warnings) == 1 and "data/orders.csv may not be found" in warnings[0], events
    assert "/abs/path" not in warnings[0] and "12" not in warnings[0].split(":")[-1]


class FlakyRouter(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next status of its server's `statuses` (then 200), counting requests."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.calls.append(self.path)
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        body = json.dumps({"detail": "no"} if status >= 400
                          else {"run_id": "r", "status": "running"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_router():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyRouter)
    server.calls, server.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_lifecycle_reports_are_retried_while_the_router_errs_and_not_when_it_refuses(flaky_router):
    client = RouterClient(f"http://127.0.0.1:{flaky_router.server_port}", timeout_s=2, report_retry_s=5)
    flaky_router.statuses[:] = [503, 502]
    started = time.monotonic()
    assert client.report("r", "started") == "running"
    assert len(flaky_router.calls) == 3 and 1.4 < time.monotonic() - started < 4  # waited 0.5 s, then 1 s
    flaky_router.calls.clear()
    flaky_router.statuses[:] = [409]
    with pytest.raises(RouterRejected):
        client.report("r", "failed", "app")
    assert len(flaky_router.calls) == 1  # a refusal is final
    flaky_router.calls.clear()
    flaky_router.statuses[:] = [503]
    with pytest.raises(RouterUnavailable):
        client.decide("etl.x")  # a decision creates a run: never sent twice
    assert len(flaky_router.calls) == 1


def test_a_report_to_a_router_that_is_gone_gives_up_within_its_bound():
    client = RouterClient(f"http://127.0.0.1:{free_port()}", timeout_s=1, report_retry_s=2)
    started = time.monotonic()
    with pytest.raises(RouterUnavailable):
        client.report("r", "succeeded")
    assert 1.4 < time.monotonic() - started < 4  # 0.5 + 1 s of pauses; the next (2 s) would pass the bound
