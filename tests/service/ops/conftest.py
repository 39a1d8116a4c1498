"""For the tests marked `cluster`: the session's one Spark standalone cluster (a master, 2 workers × 1 core),
a Connect server on it with the shared server settings, and a router of their own on PostgreSQL. Started on
first use, so that other tests here never pay for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.ops.ops_config import OpsSettings
from tests.support import RouterProcess, create_pg_database, drop_pg_database, free_port

CLUSTER_SERVER_ID = "connect-cluster"
# Idle executors go after seconds, not the shared settings' minutes, so that a test sees them given back; and
# a backlog of a second asks for executors (the shared 30 s would make every test wait that long first).
FAST_DYNAMIC_ALLOCATION = {
    "spark.dynamicAllocation.executorIdleTimeout": "10s",
    "spark.dynamicAllocation.cachedExecutorIdleTimeout": "10s",
    "spark.dynamicAllocation.shuffleTracking.timeout": "10s",
    "spark.dynamicAllocation.schedulerBacklogTimeout": "1s",
}


@dataclass
class Cluster:
    settings: OpsSettings  # its state dir holds the cluster, the Connect server and the listener's spool
    master_url: str
    ui_url: str
    worker_pids: list[int]

    def master(self) -> dict:
        from service.ops import spark_cluster

        return spark_cluster.master_json(self.ui_url)


@dataclass
class ClusterConnectServer:
    settings: OpsSettings
    url: str
    ui_url: str
    router: RouterProcess

    def rest(self, path: str):
        """Spark's REST API of the server's application, e.g. rest('/allexecutors')."""
        # Generous timeouts: on a loaded machine the driver's UI can take seconds to answer.
        app_id = httpx.get(f"{self.ui_url}/api/v1/applications", timeout=60).json()[0]["id"]
        response = httpx.get(f"{self.ui_url}/api/v1/applications/{app_id}{path}", timeout=60)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def cluster_state_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cluster-state")


@pytest.fixture(scope="session")
def cluster(cluster_state_dir):
    from service.ops import spark_cluster

    settings = OpsSettings(state_dir=cluster_state_dir)
    state = spark_cluster.start(settings, workers=2, worker_cores=1, worker_memory="1g", port=free_port(),
                                ui_port=free_port(), progress=lambda msg: print(f"[cluster] {msg}"))
    yield Cluster(settings, state.master_url, state.ui_url, state.worker_pids)
    spark_cluster.stop(settings, progress=lambda msg: None)


@pytest.fixture(scope="session")
def cluster_router(cluster, cluster_state_dir):
    """A router that routes to the cluster's Connect server; on a PostgreSQL database of its own."""
    url = create_pg_database()
    port = free_port()
    process = RouterProcess(url, cluster_state_dir, env={
        "SPARK_ROUTER_CONNECT_URL": f"sc://127.0.0.1:{port}",
        "SPARK_ROUTER_CONNECT_SERVER_ID": CLUSTER_SERVER_ID,
        "SPARK_ROUTER_STANDALONE_MASTER": cluster.master_url}).start()
    process.connect_port = port
    yield process
    process.stop()
    drop_pg_database(url)


@pytest.fixture(scope="session")
def cluster_connect_server(cluster, cluster_router, cluster_state_dir):
    from service.ops import connect_server

    settings = OpsSettings(state_dir=cluster_state_dir, url=cluster_router.url,
                           connect_port=cluster_router.connect_port, connect_ui_port=free_port(),
                           connect_server_id=CLUSTER_SERVER_ID, connect_master=cluster.master_url,
                           connect_server_conf=FAST_DYNAMIC_ALLOCATION)
    state = connect_server.start(settings,
                                 progress=lambda msg: print(f"[connect-server on the cluster] {msg}"))
    yield ClusterConnectServer(settings, state.url, f"http://127.0.0.1:{state.ui_port}", cluster_router)
    connect_server.stop(settings, progress=lambda msg: None)
