"""The router's HTTP API, as the launcher, the CLI and the Airflow operator use it.

Plain ``http.client``: the launcher talks to the router a handful of times per run, and an HTTP library would
cost every `spark-router run` tens of milliseconds of imports. A connection per call: nothing goes stale
during a run that lasts hours.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

from client_runtime.protocol import (
    DecisionAnswer,
    FailureKind,
    OomWhere,
    RequestedMode,
    Resources,
    RunEventName,
)


class RouterUnavailable(RuntimeError):
    """The router could not be reached or answered with a server error."""


class RouterRejected(ValueError):
    """The router refused the request (4xx); the message is the router's own."""


class RouterClient:
    # Lifecycle reports are idempotent: one that met a router error or no router is sent again, after 0.5 s,
    # 1 s, 2 s, ... within REPORT_RETRY_S in all (a restarting router, a dropped connection).
    REPORT_RETRY_S = 10.0
    FIRST_BACKOFF_S = 0.5

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 5.0,
                 report_retry_s: float = REPORT_RETRY_S):
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"router URL must be http(s)://host[:port][/path], not {url!r}")
        self._https, self._host, self._port, self._prefix = (parts.scheme == "https", parts.hostname,
                                                             parts.port, parts.path)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s
        self.report_retry_s = report_retry_s

    def _call(self, method: str, path: str, json_body: Any = None, extra_s: float = 0.0) -> Any:
        connection_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_class(self._host, self._port, timeout=self.timeout_s + extra_s)
        body = None if json_body is None else json.dumps(json_body).encode()
        try:
            connection.request(method, self._prefix + path, body=body, headers=self._headers)
            response = connection.getresponse()
            status, text = response.status, response.read().decode(errors="replace")
        except TimeoutError as exc:
            raise RouterUnavailable(
                f"router at {self.url} unreachable: no answer within {self.timeout_s:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise RouterUnavailable(
                f"router at {self.url} unreachable: {exc.__class__.__name__}: {exc}") from exc
        finally:
            connection.close()
        if status >= 500:
            raise RouterUnavailable(f"router at {self.url} answered {status}: {text[:300]}")
        if status >= 400:
            raise RouterRejected(f"router refused {method} {path} ({status}): {_detail(text)}")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise RouterUnavailable(f"router at {self.url} answered {status} with something that is not "
                                    f"JSON: {text[:200]!r}") from exc

    def _call_idempotent(self, method: str, path: str, json_body: Any = None) -> Any:
        """``_call``, retried with a growing pause while the router is unavailable (5xx, no answer), for at
        most report_retry_s plus one call's timeout. A refusal (4xx) is final."""
        deadline = time.monotonic() + self.report_retry_s
        pause = self.FIRST_BACKOFF_S
        while True:
            try:
                return self._call(method, path, json_body)
            except RouterUnavailable:
                if time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause *= 2

    def decide(self, app_id: str, mode: RequestedMode = "auto", resources: Resources | None = None,
               spark_conf: dict[str, str] | None = None, airflow: dict[str, Any] | None = None,
               dry_run: bool = False, can_wait: bool = False) -> DecisionAnswer:
        """A decision for a new run; ``dry_run``: only where it would go and why, nothing recorded;
        ``can_wait``: the answer may be mode queued (then ``admission`` until it is not)."""
        body: dict[str, Any] = {"app_id": app_id, "mode": mode}
        if dry_run:
            body["dry_run"] = True
        if can_wait:
            body["can_wait"] = True
        if resources:
            body["resources"] = {k: v for k, v in resources.items() if v is not None}
        if spark_conf:
            body["spark_conf"] = spark_conf
        if airflow:
            body["airflow"] = airflow
        return DecisionAnswer.from_json(self._call("POST", "/api/v1/decisions", body))

    def admission(self, run_id: str, wait_s: float) -> DecisionAnswer:
        """A queued run's admission, held by the router up to `wait_s` while it stays queued (a long poll)."""
        return DecisionAnswer.from_json(self._call("GET", f"/api/v1/runs/{run_id}/admission?wait={wait_s:g}",
                                                   extra_s=wait_s))

    def report(self, run_id: str, event: RunEventName, failure_kind: FailureKind | None = None,
               message: str | None = None, exit_code: int | None = None) -> str:
        """Report what happened to a run; the run's status after it (running, succeeded, failed,
        cancelled)."""
        body = {"event": event, "failure_kind": failure_kind,
                "message": message and storable(message[-10_000:]), "exit_code": exit_code}
        answer = self._call_idempotent("POST", f"/api/v1/runs/{run_id}/events",
                                       {k: v for k, v in body.items() if v is not None})
        status: str = answer["status"]
        return status

    def fallback(self, run_id: str, reason: str | None = None) -> DecisionAnswer:
        """The standalone rerun of a failed Connect run."""
        # Idempotent too: asked again for the same run, the router returns the rerun it recorded.
        return DecisionAnswer.from_json(self._call_idempotent(
            "POST", f"/api/v1/runs/{run_id}/fallback", {"reason": reason and storable(reason[:2000])}))

    def oom_rerun(self, run_id: str, where: OomWhere, reason: str | None = None) -> DecisionAnswer:
        """The one rerun, with more memory where it ran out, of a standalone run that failed out of memory
        (the router sizes it; RouterRejected when it gives none: at the ceiling, reruns off, a rerun
        already)."""
        # Idempotent too: asked again for the same run, the router returns the rerun it recorded.
        return DecisionAnswer.from_json(self._call_idempotent(
            "POST", f"/api/v1/runs/{run_id}/oom-rerun",
            {"where": where, "reason": reason and storable(reason[:2000])}))

    def record_compatibility(self, app_id: str, findings: list[dict[str, Any]]) -> None:
        self._call("PUT", f"/api/v1/apps/{app_id}/compatibility", {"findings": findings})


def storable(text: str) -> str:
    """Text the router can store: an app's error output may hold a NUL or half a surrogate pair (a UDF's
    message), which the router refuses (422), and a refused report would leave the run running."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _detail(text: str) -> str:
    try:
        detail = json.loads(text).get("detail")
    except (ValueError, AttributeError):
        return text[:300]
    if isinstance(detail, list):  # FastAPI's validation errors: name each field
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}" for e in detail)
    return str(detail)

