"""What every request passes before any of its body is read: the bearer token its endpoint needs (401) and the
body-size limit (413, SPARK_ROUTER_MAX_BODY_BYTES). FastAPI reads and parses a body before it runs a route's
dependencies, so without this a request with no token could still make the router hold a huge body. And a body
must arrive within SPARK_ROUTER_BODY_READ_TIMEOUT_S of the request's start (408), so that a client sending it
a byte at a time cannot hold the request (and its connection: service/api/http_server.py) for as long as it
likes."""

from __future__ import annotations

import asyncio
import json
import time

from starlette.exceptions import HTTPException

from service.api.deps import accepted, unauthorized
from service.config import RouterSettings

# The token each group of endpoints needs, by path prefix (the first that matches); tests/service/api checks
# that the routes' dependencies say the same.
GUARDED_PREFIXES = (("/api/v1/ingest/", "ingest"), ("/api/v1/admin/", "admin"), ("/api/v1/", "api"))


def token_for(path: str) -> str | None:
    """Which token (ingest, admin, api, metrics) the path needs, or None for the open ones (pages, health)."""
    if path == "/metrics":
        return "metrics"
    for prefix, which in GUARDED_PREFIXES:
        if path.startswith(prefix):
            return which
    return None


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" else None
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def too_large(limit: int) -> str:
    return f"request body larger than {limit:,} bytes (SPARK_ROUTER_MAX_BODY_BYTES)"


def too_slow(timeout_s: float) -> str:
    return f"request body not received within {timeout_s:g} s (SPARK_ROUTER_BODY_READ_TIMEOUT_S)"


async def _reply(send, status: int, detail: str, headers: tuple = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Pure ASGI middleware: 401 and 413 answered from the headers alone; a body sent without a length
    (chunked) is counted as it is read and refused (413) once past the limit; a body still incomplete at the
    deadline is answered 408, and its connection closed."""

    def __init__(self, app, settings: RouterSettings):
        self.app = app
        self.settings = settings
        self.limit = settings.max_body_bytes
        self.body_timeout_s = settings.body_read_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        path, root = scope["path"], scope.get("root_path", "")
        which = token_for(path[len(root):] if root and path.startswith(root) else path)
        if which is not None and not accepted(self.settings, which, _bearer(headers)):
            await _reply(send, 401, unauthorized(which), ((b"www-authenticate", b"Bearer"),))
            return
        length = _content_length(headers)
        if length is not None and length > self.limit:
            await _reply(send, 413, too_large(self.limit))
            return
        receive = self._in_time(receive)
        if length is not None:  # the server never passes on more than the announced length
            await self.app(scope, receive, send)
            return
        received = 0

        async def receive_within_limit():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # FastAPI passes an HTTPException raised while it reads the body on as the answer.
                    raise HTTPException(413, too_large(self.limit))
            return message

        await self.app(scope, receive_within_limit, send)

    def _in_time(self, receive):
        """`receive`, for the body's messages with the time left to the body's deadline; after the body's last
        message, unchanged (waiting for a disconnect has no deadline)."""
        deadline = time.monotonic() + self.body_timeout_s
        body_done = False

        async def receive_in_time():
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                # Connection: close, as the rest of the body may still come; FastAPI answers an HTTPException
                # raised while it reads the body with it.
                raise HTTPException(408, too_slow(self.body_timeout_s),
                                    headers={"Connection": "close"}) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return receive_in_time
