"""Stage records that cannot be stored, kept aside with the reason so that the rest of their batch is stored
and nothing blocks the listener's queue (docs/operator-guide.md, "Quarantined stage records")."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from client_runtime import protocol
from service.db.models import QuarantinedRecord, utcnow
from service.history.apps import dialect_insert
from service.schemas import StageBatch

log = logging.getLogger(__name__)

RECORD_CHARS = 4000  # of a record's JSON kept; the reason names the field


def _id(record, name: str, max_length: int) -> str | None:
    """The record's app or run id, when it is one the database can hold (for finding a tenant's records)."""
    value = record.get(name) if isinstance(record, dict) else None
    if isinstance(value, str) and len(value) <= max_length and value.isprintable():
        return value
    return None


def _as_json(record) -> str:
    """ASCII JSON: a NUL or a lone surrogate in the record is written as an escape, which any column holds."""
    try:
        return json.dumps(record, ensure_ascii=True, sort_keys=True, default=str)
    except (ValueError, RecursionError):  # nested too deep to write back
        return json.dumps(f"<a {type(record).__name__} nested too deep to show>")


def quarantine(session: Session, batch: StageBatch, retention: timedelta) -> None:
    """Keep the batch's bad records (in the caller's transaction), each once per Spark application.
    Quarantined records are for looking into a listener's odd data: those older than `retention` (the setting
    quarantine_retention_days) go as new ones arrive."""
    now = utcnow()
    rows = {}
    for bad in batch.quarantined:
        whole = _as_json(bad.record)
        digest = hashlib.sha256(whole.encode()).hexdigest()
        rows[digest] = {"received_at": now, "server_id": batch.server_id, "spark_app_id": batch.spark_app_id,
                        "batch_id": batch.batch_id, "app_id": _id(bad.record, "app_id", protocol.APP_ID_MAX),
                        "run_id": _id(bad.record, "run_id", protocol.RUN_ID_MAX),
                        "reason": bad.reason[:RECORD_CHARS], "record": whole[:RECORD_CHARS], "digest": digest}
    # In digest order: concurrent batches holding the same records wait for each other instead of deadlocking.
    session.execute(dialect_insert(session, QuarantinedRecord)
                    .on_conflict_do_nothing(index_elements=["spark_app_id", "digest"]),
                    [rows[digest] for digest in sorted(rows)])
    session.execute(delete(QuarantinedRecord).where(QuarantinedRecord.received_at < now - retention))
    first = batch.quarantined[0]
    log.warning("batch %s from %s (%s): %d stage record(s) quarantined, the rest stored; first: #%d %s",
                batch.batch_id, batch.server_id, batch.spark_app_id, len(batch.quarantined), first.index,
                first.reason[:300])
