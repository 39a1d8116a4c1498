"""Run history by app, and the stage records set aside because they could not be stored."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from service.api.deps import AppIdPath, Offset, ServerIdQuery, SessionDep, require_api_token
from service.api.error_responses import BODY, errors
from service.errors import UnknownApp
from service.history import apps, queries
from service.schemas import AppOut, CompatibilityReport, QuarantineOut, RunOut, ServerOut

router = APIRouter(prefix="/api/v1", tags=["history"], dependencies=[Depends(require_api_token)],
                   responses=errors(401, 422, 503))
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/apps", response_model=list[AppOut])
def get_apps(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> list[dict]:
    """Every app the router has seen, with its number of runs."""
    return queries.list_apps(session, limit, offset)


@router.get("/apps/{app_id:path}/runs", response_model=list[RunOut], responses=errors(404))
def get_runs(app_id: AppIdPath, session: SessionDep, limit: Limit = 50, offset: Offset = 0):
    """An app's runs, newest first, with their metrics summed over stages."""
    if queries.get_app(session, app_id) is None:
        raise UnknownApp(app_id)
    return queries.list_runs(session, app_id, limit, offset)


@router.get("/servers", response_model=list[ServerOut])
def get_servers(session: SessionDep, kind: Literal["connect", "standalone"] = "connect"):
    """Connect servers running the listener, with their last heartbeat (and servers known so far only from the
    stages they sent). `?kind=standalone`: the listeners of standalone applications instead, one per run."""
    return queries.list_servers(session, kind)


@router.put("/apps/{app_id:path}/compatibility", responses=errors(404, *BODY))
def put_compatibility(app_id: AppIdPath, report: CompatibilityReport, session: SessionDep) -> dict:
    """Record what `spark-router check` found in the app. An app with findings goes standalone without
    spending a Connect attempt; an empty report clears them."""
    incompatible = apps.record_compatibility(session, app_id, report.findings)
    return {"app_id": app_id, "connect_incompatible": incompatible}


@router.get("/quarantine", response_model=list[QuarantineOut])
def get_quarantine(session: SessionDep, server_id: ServerIdQuery = None, limit: Limit = 100,
                   offset: Offset = 0):
    """Stage records the listeners sent that could not be stored (a NUL in a text, an id too long, a number
    out of range, a run of another app), newest first, each with the reason; the rest of their batches was
    stored. Kept SPARK_ROUTER_QUARANTINE_RETENTION_DAYS (30 by default)."""
    return queries.list_quarantined(session, server_id, limit, offset)
