"""Dependencies shared by the routes: a database session and the bearer-token checks (async: they do no
I/O, and a sync dependency would cost every request a trip through the thread pool)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.orm import Session

_bearer = HTTPBearer(auto_error=False)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def _check(expected: SecretStr | None, credentials: HTTPAuthorizationCredentials | None, what: str) -> None:
    if expected is None:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing or wrong bearer token ({what})",
                            headers={"WWW-Authenticate": "Bearer"})


async def require_ingest_token(request: Request, credentials: Bearer) -> None:
    _check(request.app.state.settings.ingest_token, credentials, "SPARK_ROUTER_INGEST_TOKEN")


async def require_api_token(request: Request, credentials: Bearer) -> None:
    settings = request.app.state.settings
    # The admin token opens the client endpoints too.
    if settings.admin_token is not None and credentials is not None and secrets.compare_digest(
            credentials.credentials.encode(), settings.admin_token.get_secret_value().encode()):
        return
    _check(settings.api_token, credentials, "SPARK_ROUTER_API_TOKEN")


SessionDep = Annotated[Session, Depends(get_session)]


async def require_admin_token(request: Request, credentials: Bearer) -> None:
    _check(request.app.state.settings.admin_token, credentials, "SPARK_ROUTER_ADMIN_TOKEN")
