"""What the listener posts: batches of completed stage attempts, and heartbeats."""

from datetime import timedelta

from fastapi import APIRouter, Depends, Request

from service.api.deps import SessionDep, require_ingest_token
from service.api.error_responses import BODY, errors
from service.ingest.heartbeats import record_heartbeat
from service.ingest.stages import ingest_stages
from service.ops import observability
from service.schemas import HeartbeatIn, IngestResult, StageBatch

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"], dependencies=[Depends(require_ingest_token)],
                   responses=errors(401, 422, 503))


@router.post("/stages", response_model=IngestResult, responses=errors(*BODY))
def post_stages(batch: StageBatch, request: Request, session: SessionDep) -> IngestResult:
    """Store a batch of stage attempts; re-sent stage attempts are counted as duplicates, not stored twice.
    A stage record that cannot be stored (see Validation at the top of docs/api.md) is quarantined
    with its reason and counted; the others are stored. Only a bad envelope (server_id, spark_app_id, the list
    itself) refuses the whole batch (422). A record naming a run of another app is quarantined too (a run
    belongs to one app). 503 (Retry-After): the database is away or busy, or the batch lost a race to a
    concurrent one; nothing of it was stored, send it again."""
    retention = timedelta(days=request.app.state.settings.quarantine_retention_days)
    return observability.count_ingest(ingest_stages(session, batch, retention))


@router.post("/heartbeat", responses=errors(*BODY))
def post_heartbeat(beat: HeartbeatIn, request: Request, session: SessionDep) -> dict:
    """Record that a listener is alive, and what its Spark application is running."""
    retention = timedelta(days=request.app.state.settings.heartbeat_retention_days)
    record_heartbeat(session, beat, retention)
    return {"ok": True}
