"""The router's admin endpoints, as `spark-router restart-server` uses them (SPARK_ROUTER_ADMIN_TOKEN)."""

from __future__ import annotations

from client_runtime.router_client import RouterClient


class AdminClient(RouterClient):
    """The router's admin endpoints (SPARK_ROUTER_ADMIN_TOKEN), for restart-server."""

    def drain(self, server_id: str, draining: bool = True) -> dict:
        return self._call("POST", f"/api/v1/admin/servers/{server_id}/{'drain' if draining else 'undrain'}")

    def activity(self, server_id: str) -> dict:
        return self._call("GET", f"/api/v1/admin/servers/{server_id}/activity")

    def pool(self) -> list[dict]:
        """The pool of Connect servers as placement sees it (health, drain flag, capacity, load)."""
        return self._call("GET", "/api/v1/pool")

    def record_restart(self, record: dict) -> dict:
        return self._call("POST", "/api/v1/admin/restarts", record)
