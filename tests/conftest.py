"""Shared fixtures. One Connect server and one router per test session; databases: SQLite and PostgreSQL."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.support import RouterProcess, create_pg_database, drop_pg_database, free_port


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
def settings(database_url, tmp_path) -> Settings:
    return Settings(database_url=database_url, state_dir=tmp_path / "state")


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
def router(pg_url, state_dir):
    """The session's router service (PostgreSQL), which the Connect server's listener reports to."""
    process = RouterProcess(pg_url, state_dir).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def connect_server(router, state_dir):
    """The session's one Spark Connect server, with the listener pointed at the session's router."""
    from service import connect_server as server

    settings = Settings(state_dir=state_dir, url=router.url, connect_port=free_port(),
                        connect_ui_port=free_port(), connect_server_id="connect-test")
    state = server.start(settings, progress=lambda msg: print(f"[connect-server] {msg}"))
    yield state
    server.stop(settings, progress=lambda msg: None)
