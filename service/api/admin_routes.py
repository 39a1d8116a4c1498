"""Admin endpoints (SPARK_ROUTER_ADMIN_TOKEN): pins, drains, the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from service.api.deps import (
    AppIdPath,
    ServerIdPath,
    ServerIdQuery,
    SessionDep,
    require_admin_token,
    require_api_token,
)
from service.api.error_responses import BODY, errors
from service.db.models import Restart, Server
from service.errors import Invalid, UnknownServer
from service.history import apps, queries
from service.routing import admission_store, pool, simulate
from service.routing.policy import PolicyError, parse_policy
from service.schemas import (
    PinRequest,
    PoolServerOut,
    QueuedRunOut,
    RestartIn,
    RestartOut,
    ServerActivity,
    ServerOut,
    SimulateOut,
    SimulateRequest,
)

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin_token)],
                   responses=errors(401, 422, 503))
policy_router = APIRouter(prefix="/api/v1/policy", tags=["policy"], dependencies=[Depends(require_api_token)],
                          responses=errors(401, 422, 503))
restarts_router = APIRouter(prefix="/api/v1", tags=["admin"], dependencies=[Depends(require_api_token)],
                            responses=errors(401, 422, 503))
pool_router = APIRouter(prefix="/api/v1", tags=["servers"], dependencies=[Depends(require_api_token)],
                        responses=errors(401, 422, 503))


@pool_router.get("/pool", response_model=list[PoolServerOut])
def get_pool(request: Request, session: SessionDep) -> list[dict]:
    """The pool of Connect servers as placement sees it, the default server first: health, drain flag,
    capacity, and the predicted cores and runs in flight on each. A Connect run goes to the available one with
    the most free cores."""
    state = request.app.state
    return pool.pool_status(session, state.policies.get(), state.settings)


@pool_router.get("/queue", response_model=list[QueuedRunOut])
def get_queue(request: Request, session: SessionDep) -> list[dict]:
    """The admission queue: the runs waiting for room on a Connect server, first come first, each with its
    position, how long it has waited and its predicted wait."""
    return admission_store.queue_status(session, request.app.state.settings)


@router.put("/apps/{app_id:path}/pin", responses=errors(404, *BODY))
def pin_app(app_id: AppIdPath, body: PinRequest, request: Request, session: SessionDep) -> dict:
    """Pin an app to a mode, or to one Connect server of the pool (`mode: connect, server_id: ...`): every
    decision for it follows the pin until it is removed."""
    if body.server_id and not queries.is_connect_server(session, body.server_id,
                                                        request.app.state.settings.connect_server_id):
        raise UnknownServer(body.server_id)
    app = apps.pin(session, app_id, body.mode, body.reason, body.server_id)
    return {"app_id": app_id, "pinned_mode": app.pinned_mode, "pin_reason": app.pin_reason,
            "pinned_server_id": app.pinned_server_id}


@router.delete("/apps/{app_id:path}/pin", responses=errors(404))
def unpin_app(app_id: AppIdPath, session: SessionDep) -> dict:
    """Remove an app's pin; the policy decides again."""
    apps.unpin(session, app_id)
    return {"app_id": app_id, "pinned_mode": None, "pinned_server_id": None}


def _set_draining(session: Session, server_id: str, draining: bool) -> Server:
    server = session.get(Server, server_id)
    if server is None:
        raise UnknownServer(server_id)
    server.draining = draining
    session.commit()
    return server


@router.post("/servers/{server_id}/drain", response_model=ServerOut, responses=errors(404))
def drain_server(server_id: ServerIdPath, session: SessionDep):
    """Stop routing new runs to the server (runs in flight go on), e.g. before a restart."""
    return _set_draining(session, server_id, True)


@router.post("/servers/{server_id}/undrain", response_model=ServerOut, responses=errors(404))
def undrain_server(server_id: ServerIdPath, session: SessionDep):
    """Route new runs to the server again."""
    return _set_draining(session, server_id, False)


@router.get("/servers/{server_id}/activity", response_model=ServerActivity, responses=errors(404))
def server_activity(server_id: ServerIdPath, request: Request, session: SessionDep) -> dict:
    """The server's last heartbeat and the router's own in-flight Connect runs on it: is it safe to
    restart?"""
    activity = queries.server_activity(session, server_id, request.app.state.policies.get(),
                                       request.app.state.settings.connect_server_id)
    if activity is None:
        raise UnknownServer(server_id)
    return activity


@router.post("/restarts", response_model=RestartOut, responses=errors(*BODY))
def record_restart(body: RestartIn, session: SessionDep) -> Restart:
    """Record one attempt of `spark-router restart-server`, with its timings and outcome."""
    restart = Restart(**body.model_dump())
    session.add(restart)
    session.commit()
    return restart


@router.post("/policy/reload")
def reload_policy(request: Request) -> dict:
    """Re-read the policy file now (it is also re-read when it changes). A broken file is refused."""
    store = request.app.state.policies
    try:
        policy = store.reload()
    except PolicyError as exc:
        raise Invalid(str(exc), loc=("policy_file",)) from None
    return {"policy_version": policy.full_version, "source": str(store.path) if store.path else "built-in"}


@policy_router.get("")
def get_policy(request: Request) -> dict:
    """The policy in force, with every knob."""
    policy = request.app.state.policies.get()
    return {"policy_version": policy.full_version, "policy": policy.model_dump()}


@policy_router.post("/simulate", response_model=SimulateOut, responses=errors(*BODY))
def simulate_policy(body: SimulateRequest, request: Request, session: SessionDep) -> dict:
    """Evaluate a candidate policy over the stored history: per app, today's mode and the candidate's, and
    how many runs and task-hours of the last `days` would move."""
    try:
        candidate = parse_policy(body.policy, "candidate policy")
    except PolicyError as exc:
        raise Invalid(str(exc), loc=("body", "policy")) from None
    return simulate.simulate(session, request.app.state.policies.get(), candidate, body.days)


@restarts_router.get("/restarts", response_model=list[RestartOut])
def list_restarts(session: SessionDep, server_id: ServerIdQuery = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 20) -> list[Restart]:
    """Recent restart attempts, newest first."""
    return queries.list_restarts(session, server_id, limit)
