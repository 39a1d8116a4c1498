"""What every request passes before any of its body is read: the bearer token its endpoint needs (401) and the
body-size limit (413, SPARK_ROUTER_MAX_BODY_BYTES). FastAPI reads and parses a body before it runs a route's
dependencies, so without this a request with no token could still make the router hold a huge body."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException

from client_runtime.settings import Settings
from service.api.deps import accepted, unauthorized

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


async def _reply(send, status: int, detail: str, headers: tuple = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Pure ASGI middleware: 401 and 413 answered from the headers alone; a body sent without a length (chunked)
    is counted as it is read and refused (413) once past the limit."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings
        self.limit = settings.max_body_bytes

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
