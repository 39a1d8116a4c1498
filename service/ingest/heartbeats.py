"""Storing listener heartbeats: which Spark applications run the listener, and what they are running."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service.db.models import HEARTBEAT_FIELDS, Heartbeat, Server, from_epoch_ms, utcnow
from service.history.apps import dialect_insert
from service.schemas import HeartbeatIn


def record_heartbeat(session: Session, beat: HeartbeatIn, retention: timedelta) -> None:
    """Store a heartbeat and drop every server's heartbeats older than `retention` (a standalone run's
    listener stops reporting when its run ends, so pruning per server would keep its heartbeats forever).
    The server's row keeps its last heartbeat time."""
    now = utcnow()
    server = {"kind": beat.kind, "spark_app_id": beat.spark_app_id, "spark_version": beat.spark_version,
              "started_at": from_epoch_ms(beat.start_time_ms), "ui_url": beat.ui_url, "connect_url": beat.connect_url,
              "last_heartbeat_at": now}
    stmt = dialect_insert(session, Server).values(server_id=beat.server_id, draining=False,
                                                  unattributed_stages=0, **server)
    session.execute(stmt.on_conflict_do_update(index_elements=["server_id"], set_=server))
    session.add(Heartbeat(
        server_id=beat.server_id, spark_app_id=beat.spark_app_id, received_at=now,
        sent_at=from_epoch_ms(beat.sent_at_ms),
        **beat.model_dump(include=set(HEARTBEAT_FIELDS))))
    session.execute(delete(Heartbeat).where(Heartbeat.received_at < now - retention))
    session.commit()
