"""The error answers of the API in its OpenAPI schema: which statuses each endpoint can return, and their
bodies. Routers and routes name the ones particular to them (401, 404, 409); document() adds the ones that
follow from a route's shape (422 where there is something to validate, 400 and 413 where there is a body,
404 where the path has parameters: a value the path cannot hold, e.g. a newline, matches no route)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute

from service.schemas import ErrorOut, ValidationErrorOut

DESCRIPTIONS = {
    400: "The body could not be read.",
    401: "Missing or wrong bearer token (only when the endpoint's token is set).",
    404: "What the path names does not exist.",
    409: "The request contradicts the state of what it acts on.",
    413: "The body is larger than SPARK_ROUTER_MAX_BODY_BYTES.",
    422: "A value the service cannot take: the details name each one.",
    503: "The database cannot be reached.",
}


def errors(*codes: int) -> dict:
    """`responses=` for a router or a route: the given statuses with their bodies."""
    return {code: {"model": ValidationErrorOut if code == 422 else ErrorOut, "description": DESCRIPTIONS[code]}
            for code in codes}


def document(app: FastAPI) -> None:
    """Add 422 to every route with parameters or a body, 400 and 413 to every route with a body, 404 to every
    route with path parameters."""
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        codes = ([422] if get_flat_params(route.dependant) or route.body_field else []) + (
            [400, 413] if route.body_field else []) + ([404] if route.dependant.path_params else [])
        for code, response in errors(*codes).items():
            route.responses.setdefault(code, response)
