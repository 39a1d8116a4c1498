"""Dependencies shared by the routes: a database session and the bearer-token checks (async: they do no
I/O, and a sync dependency would cost every request a trip through the thread pool). The same checks run
earlier, before a request's body is read, in request_guard.RequestGuard; these ones put the tokens in the
OpenAPI schema and guard the routes whatever the middleware."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.orm import Session

from client_runtime.protocol import APP_ID_MAX, ID_PATTERN, RUN_ID_MAX
from service.config import RouterSettings
from service.schemas import INT64_MAX, NO_NUL

_bearer = HTTPBearer(auto_error=False)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

# Which token opens which endpoints: "api" endpoints also take the admin token.
TOKEN_SETTING = {"ingest": "SPARK_ROUTER_INGEST_TOKEN", "api": "SPARK_ROUTER_API_TOKEN",
                 "admin": "SPARK_ROUTER_ADMIN_TOKEN", "metrics": "SPARK_ROUTER_METRICS_TOKEN"}


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def _matches(expected: SecretStr, given: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.get_secret_value().encode())


def accepted(settings: RouterSettings, which: str, given: str | None) -> bool:
    """Whether bearer token `given` (None: no token) opens the `which` endpoints (ingest, api or admin). An
    endpoint whose token is not set is open."""
    if which == "api" and settings.admin_token is not None and given is not None and _matches(
            settings.admin_token, given):
        return True
    expected: SecretStr | None = getattr(settings, f"{which}_token")
    return expected is None or (given is not None and _matches(expected, given))


def unauthorized(which: str) -> str:
    return f"missing or wrong bearer token ({TOKEN_SETTING[which]})"


def _check(request: Request, credentials: HTTPAuthorizationCredentials | None, which: str) -> None:
    if not accepted(request.app.state.settings, which, credentials.credentials if credentials else None):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, unauthorized(which),
                            headers={"WWW-Authenticate": "Bearer"})


async def require_ingest_token(request: Request, credentials: Bearer) -> None:
    _check(request, credentials, "ingest")


async def require_api_token(request: Request, credentials: Bearer) -> None:
    _check(request, credentials, "api")


async def require_admin_token(request: Request, credentials: Bearer) -> None:
    _check(request, credentials, "admin")


async def require_metrics_token(request: Request, credentials: Bearer) -> None:
    _check(request, credentials, "metrics")


SessionDep = Annotated[Session, Depends(get_session)]

# Path and query parameters, held to what the database can compare with (no NUL; ids no longer than their
# column), app and run ids to the one rule of ids (client_runtime/protocol.py).
AppIdPath = Annotated[str, Path(max_length=APP_ID_MAX, pattern=ID_PATTERN)]
RunIdPath = Annotated[str, Path(max_length=RUN_ID_MAX, pattern=ID_PATTERN)]
AppIdQuery = Annotated[str | None, Query(max_length=APP_ID_MAX, pattern=ID_PATTERN)]
ServerIdPath = Annotated[str, Path(max_length=200, pattern=NO_NUL)]
ServerIdQuery = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX)]
