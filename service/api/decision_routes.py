"""Routing decisions and the run lifecycle, for the launcher and the Airflow operator."""

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import RunIdPath, SessionDep, require_api_token
from service.api.error_responses import BODY, errors
from service.db.models import Decision, Run, Server
from service.errors import UnknownRun
from service.history import lifecycle
from service.ops import observability
from service.routing import decider
from service.schemas import (
    DecisionOut,
    DecisionRequest,
    FallbackRequest,
    OomRerunRequest,
    RunDetail,
    RunEvent,
)

router = APIRouter(prefix="/api/v1", tags=["decisions"], dependencies=[Depends(require_api_token)],
                   responses=errors(401, 422, 503))


@router.post("/decisions", response_model=DecisionOut, responses=errors(*BODY))
async def post_decision(body: DecisionRequest, request: Request) -> Response:
    """Decide where a new run of the app goes (connect or standalone), and why. Creates the run, which counts
    as in flight until it is reported finished. With `dry_run: true`, only says where and why: no run."""
    state = request.app.state
    if body.dry_run:
        decision = await run_in_threadpool(_preview, state, body)
    else:
        decision = observability.count_decision(await state.decider.decide(body), request)
    # Serialized here, once: the hot path skips FastAPI's re-validation of the response model.
    return Response(decision.model_dump_json(), media_type="application/json")


def _preview(state, body: DecisionRequest) -> DecisionOut:
    with state.sessions() as session:
        return decider.preview(session, body, state.policies.get(), state.settings)


# How often a long poll checks the queue again: the database is the one place every worker sees (a run's end
# may be reported to another worker), and a second is small beside the waits the queue is for.
ADMISSION_CHECK_S = 1.0


@router.get("/runs/{run_id}/admission", response_model=DecisionOut, responses=errors(404, 409))
async def get_admission(run_id: RunIdPath, request: Request,
                        wait: Annotated[float, Query(ge=0, le=300, allow_inf_nan=False,
                                                     description="Seconds to hold the answer while the run "
                                                                 "stays queued (at most "
                                                                 "SPARK_ROUTER_QUEUE_POLL_MAX_S).")] = 0
                        ) -> Response:
    """A queued run's admission (long poll): answers as soon as the run leaves the queue, with its decision
    (connect and its server, or standalone: the queue's longest wait is up, or room is predicted later than a
    standalone start-up), or after `wait` seconds with mode queued, its position and predicted wait. A run not
    queued answers its decision at once; one cancelled while queued: 409."""
    state = request.app.state
    deadline = time.monotonic() + min(wait, state.settings.queue_poll_max_s)
    while True:
        decision = await run_in_threadpool(_admit, state, run_id)
        if decision.mode != "queued" or time.monotonic() + ADMISSION_CHECK_S > deadline:
            break
        await asyncio.sleep(ADMISSION_CHECK_S)
    if decision.mode != "queued":
        observability.count_decision(decision, request)
    return Response(decision.model_dump_json(), media_type="application/json")


def _admit(state, run_id: str) -> DecisionOut:
    with state.sessions() as session:
        return decider.admit(session, run_id, state.policies.get(), state.settings, state.up_since)


@router.get("/runs/{run_id}", response_model=RunDetail, responses=errors(404))
def get_run(run_id: RunIdPath, request: Request, session: SessionDep) -> RunDetail:
    """A run with its lifecycle, its metrics and the decision that sent it where it ran."""
    run = session.get(Run, run_id)
    if run is None:
        raise UnknownRun(run_id)
    detail = RunDetail.model_validate(run, from_attributes=True)
    decision = session.query(Decision).filter(Decision.run_id == run_id).one_or_none()
    if decision is not None:
        server = session.get(Server, run.server_id) if run.server_id else None
        connect_url = server.connect_url if server else None
        detail.decision = decider.decision_out(decider.values(decision), decider.values(run),
                                                 request.app.state.settings, connect_url)
    return detail


@router.post("/runs/{run_id}/events", response_model=RunDetail, responses=errors(404, 409, *BODY))
def post_run_event(run_id: RunIdPath, event: RunEvent, request: Request, session: SessionDep) -> RunDetail:
    """Report that a run started, succeeded, failed (failure_kind connect, app or pending) or was cancelled.
    The end of a standalone rerun settles the pending failure of the Connect run it replaced."""
    lifecycle.report(session, run_id, event.event, event.failure_kind, event.message, event.exit_code)
    return get_run(run_id, request, session)


@router.post("/runs/{run_id}/fallback", response_model=DecisionOut, responses=errors(404, 409, *BODY))
def post_fallback(run_id: RunIdPath, body: FallbackRequest, request: Request,
                  session: SessionDep) -> DecisionOut:
    """The Connect run failed and will be rerun standalone: returns the new run and its decision."""
    state = request.app.state
    decision = decider.fallback(session, run_id, body.reason, state.policies.get(), state.settings)
    return observability.count_decision(decision, request)


@router.post("/runs/{run_id}/oom-rerun", response_model=DecisionOut, responses=errors(404, 409, *BODY))
def post_oom_rerun(run_id: RunIdPath, body: OomRerunRequest, request: Request,
                   session: SessionDep) -> DecisionOut:
    """The standalone run failed out of memory: returns its one rerun with more memory (the policy's
    sizing.oom_growth, within the ceiling), a new run. 409 when there is no more to give (at the ceiling, or
    the run is a rerun already)."""
    state = request.app.state
    decision = decider.oom_rerun(session, run_id, body.where, body.reason, state.policies.get(),
                                 state.settings)
    return observability.count_decision(decision, request)
