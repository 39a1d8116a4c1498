"""The router's HTTP API, as the launcher, the CLI and the Airflow operator use it."""

from __future__ import annotations

from typing import Any

import httpx


class RouterUnavailable(RuntimeError):
    """The router could not be reached or answered with a server error."""


class RouterRejected(ValueError):
    """The router refused the request (4xx); the message is the router's own."""


class RouterClient:
    def __init__(self, url: str, token: str | None = None, timeout_s: float = 5.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RouterUnavailable(f"router at {self.url} unreachable: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise RouterUnavailable(f"router at {self.url} answered {response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            raise RouterRejected(f"router refused {method} {path} ({response.status_code}): {_detail(response)}")
        return response.json()

    def decide(self, app_id: str, mode: str = "auto", resources: dict | None = None,
               spark_conf: dict | None = None, airflow: dict | None = None) -> dict:
        body: dict[str, Any] = {"app_id": app_id, "mode": mode}
        if resources:
            body["resources"] = {k: v for k, v in resources.items() if v is not None}
        if spark_conf:
            body["spark_conf"] = spark_conf
        if airflow:
            body["airflow"] = airflow
        return self._call("POST", "/api/v1/decisions", json=body)

    def report(self, run_id: str, event: str, failure_kind: str | None = None, message: str | None = None,
               exit_code: int | None = None) -> dict:
        body = {"event": event, "failure_kind": failure_kind, "message": message and message[-10_000:],
                "exit_code": exit_code}
        return self._call("POST", f"/api/v1/runs/{run_id}/events", json={k: v for k, v in body.items() if v is not None})

    def fallback(self, run_id: str, reason: str | None = None) -> dict:
        return self._call("POST", f"/api/v1/runs/{run_id}/fallback", json={"reason": reason and reason[:2000]})

    def run(self, run_id: str) -> dict:
        return self._call("GET", f"/api/v1/runs/{run_id}")

    def record_compatibility(self, app_id: str, findings: list[dict]) -> dict:
        return self._call("PUT", f"/api/v1/apps/{app_id}/compatibility", json={"findings": findings})


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:300]
    if isinstance(detail, list):  # FastAPI's validation errors: name each field
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}" for e in detail)
    return str(detail)


class AdminClient(RouterClient):
    """The router's admin endpoints (SPARK_ROUTER_ADMIN_TOKEN), for restart-server."""

    def drain(self, server_id: str, draining: bool = True) -> dict:
        return self._call("POST", f"/api/v1/admin/servers/{server_id}/{'drain' if draining else 'undrain'}")

    def activity(self, server_id: str) -> dict:
        return self._call("GET", f"/api/v1/admin/servers/{server_id}/activity")

    def record_restart(self, record: dict) -> dict:
        return self._call("POST", "/api/v1/admin/restarts", json=record)
