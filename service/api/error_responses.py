"""The error answers of the API in its OpenAPI schema: which statuses each endpoint can return, and their
bodies. Each router lists 401, 422 and 503; each route adds its own: 400 and 413 where it takes a body, 404
where its path has parameters (a missing thing, or a value no route can match, e.g. a newline), 409 where it
can conflict."""

from __future__ import annotations

from service.schemas import ErrorOut, ValidationErrorOut

DESCRIPTIONS = {
    400: "The body could not be read.",
    401: "Missing or wrong bearer token (only when the endpoint's token is set).",
    404: "What the path names does not exist.",
    409: "The request contradicts the state of what it acts on.",
    413: "The body is larger than SPARK_ROUTER_MAX_BODY_BYTES.",
    422: "A value the service cannot take: the details name each one.",
    503: "The database cannot be reached, or the transaction lost a deadlock: retry later (Retry-After).",
}
BODY = (400, 413)  # the statuses of a route that takes a body


def errors(*codes: int) -> dict:
    """`responses=` for a router or a route: the given statuses with their bodies."""
    return {code: {"model": ValidationErrorOut if code == 422 else ErrorOut,
                   "description": DESCRIPTIONS[code]}
            for code in codes}
