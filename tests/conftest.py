"""Shared fixtures. One Connect server and one router per test session (and a second Connect server, for the
tests of the pool that ask for it); databases: SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from client_runtime.settings import ClientSettings
from service.app import create_app
from service.config import RouterSettings
from service.ops.ops_config import OpsSettings
from tests.support import REPO, RouterProcess, compile_jar, create_pg_database, drop_pg_database, free_port


@pytest.fixture(scope="session")
def pg_url():
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'router.db'}"
    # A fresh database per test keeps tests independent; creating one takes ~50 ms.
    url = create_pg_database()
    request.addfinalizer(lambda: drop_pg_database(url))
    return url


@pytest.fixture
def settings(database_url, tmp_path) -> RouterSettings:
    return RouterSettings(database_url=database_url, state_dir=tmp_path / "state")


@pytest.fixture
def client(settings):
    app = create_app(settings)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("router-state")


@pytest.fixture(scope="session")
def connect_ports():
    return {"port": free_port(), "ui_port": free_port(), "server_id": "connect-test"}


@pytest.fixture(scope="session")
def router(pg_url, state_dir, connect_ports):
    """The session's router service (PostgreSQL), which the Connect server's listener reports to and which
    routes to that server."""
    process = RouterProcess(pg_url, state_dir, env={
        "SPARK_ROUTER_CONNECT_URL": f"sc://127.0.0.1:{connect_ports['port']}",
        "SPARK_ROUTER_CONNECT_SERVER_ID": connect_ports["server_id"]}).start()
    yield process
    process.stop()


class SharedConnectServer:
    """The session's Connect server; a test that kills it calls ensure_running() to bring it back."""

    def __init__(self, settings: OpsSettings):
        self.settings = settings
        self.url = f"sc://127.0.0.1:{settings.connect_port}"
        self.ui_port = settings.connect_ui_port

    def ensure_running(self):
        from service.ops import connect_server

        return connect_server.start(self.settings, progress=lambda msg: print(f"[connect-server] {msg}"))

    def pid(self) -> int:
        from service.ops import connect_server

        return connect_server.read_state(self.settings).pid


@pytest.fixture(scope="session")
def connect_server(router, state_dir, connect_ports):
    """The session's one Spark Connect server, with the listener pointed at the session's router."""
    from service.ops import connect_server

    settings = OpsSettings(state_dir=state_dir, url=router.url, connect_port=connect_ports["port"],
                           connect_ui_port=connect_ports["ui_port"],
                           connect_server_id=connect_ports["server_id"])
    shared = SharedConnectServer(settings)
    shared.ensure_running()
    yield shared
    connect_server.stop(settings, progress=lambda msg: None)


class JvmApps:
    """One jar of JVM apps, compiled at test time: the examples and the tests' own."""

    LIGHT = "io.sparkrouter.examples.LightAggregation"
    USES_SPARK_CONTEXT = "io.sparkrouter.examples.UsesSparkContext"
    SLOW = "io.sparkrouter.tests.SlowUdf"

    def __init__(self, jar):
        self.jar = jar


@pytest.fixture(scope="session")
def jvm_apps(tmp_path_factory) -> JvmApps:
    from client_runtime import jvm

    settings = ClientSettings()
    examples = REPO / "examples" / "jvm" / "src" / "main" / "java" / "io" / "sparkrouter" / "examples"
    jar = tmp_path_factory.mktemp("jvm-apps") / "apps.jar"
    # Connect-ready apps compile against what `spark-router classpath` prints; the one that uses the
    # SparkContext needs every Spark jar (`classpath --all`).
    compile_jar(jar, [examples / "LightAggregation.java", REPO / "tests" / "apps" / "jvm" / "SlowUdf.java"],
                jvm.compile_classpath(settings))
    compile_jar(jar, [examples / "UsesSparkContext.java"], jvm.classic_classpath(settings))
    return JvmApps(jar)


SECOND_SERVER_ID = "connect-test-b"


class SecondConnectServer:
    """A second local Connect server of the pool (`connect-server start --server-id`), reporting to the
    session's router next to the shared one. A test that stops it calls ensure_running() to bring it back."""

    def __init__(self, settings: OpsSettings, router):
        from service.ops import connect_server

        self.settings = connect_server.member_settings(settings, SECOND_SERVER_ID)
        self.server_id, self.router = SECOND_SERVER_ID, router

    def ensure_running(self):
        from service.ops import connect_server

        return connect_server.start(self.settings, progress=lambda msg: print(f"[{self.server_id}] {msg}"))

    def pid(self) -> int:
        from service.ops import connect_server

        return connect_server.read_state(self.settings).pid

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.settings.connect_port}"

    def retire(self):
        """Stop it, and wait until the router no longer places runs on it (its heartbeat is too old), so that
        the tests after these see the one shared server as before."""
        from service.ops import connect_server
        from tests.support import wait_until

        connect_server.stop(self.settings, progress=lambda msg: None)
        wait_until(lambda: not any(s["server_id"] == self.server_id and s["available"]
                                   for s in self.router.get("/api/v1/pool")),
                   90, f"{self.server_id} to be down")


@pytest.fixture(scope="session")
def second_connect_server(router, connect_server):
    """A second Connect server next to the shared one (~400 MB): only for the tests of the pool."""
    second = SecondConnectServer(connect_server.settings, router)
    second.ensure_running()
    yield second
    second.retire()
