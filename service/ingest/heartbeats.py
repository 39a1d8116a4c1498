"""Storing listener heartbeats: which Spark applications run the listener, and what they are running."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service.db.models import HEARTBEAT_FIELDS, Heartbeat, Server, from_epoch_ms, utcnow
from service.history.apps import dialect_insert
from service.schemas import HeartbeatIn

log = logging.getLogger(__name__)


def url_with_scheme(url: str | None, schemes: tuple[str, ...], field: str, server_id: str) -> str | None:
    """The URL, without surrounding whitespace, if it has one of `schemes` and a host and no whitespace or
    control character within; else None (logged): the dashboard shows ui_url as a link, next to the API token
    the browser keeps, and clients are sent to connect_url. A heartbeat with an odd URL is still stored:
    refusing it would make a live server look down, and send every run standalone."""
    if url is None:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
        usable = (parts.scheme.lower() in schemes and bool(parts.hostname)
                  and not any(char.isspace() or not char.isprintable() for char in url))
    except ValueError:
        usable = False
    if not usable:
        log.warning("heartbeat from %s: %s %r is not a %s URL; stored as null", server_id, field, url[:100],
                    " or ".join(f"{scheme}://" for scheme in schemes))
        return None
    return url


def record_heartbeat(session: Session, beat: HeartbeatIn, retention: timedelta) -> None:
    """Store a heartbeat and drop every server's heartbeats older than `retention` (a standalone run's
    listener stops reporting when its run ends, so pruning per server would keep its heartbeats forever).
    The server's row keeps its last heartbeat time."""
    now = utcnow()
    server = {"kind": beat.kind, "spark_app_id": beat.spark_app_id, "spark_version": beat.spark_version,
              "started_at": from_epoch_ms(beat.start_time_ms),
              "ui_url": url_with_scheme(beat.ui_url, ("http", "https"), "ui_url", beat.server_id),
              "connect_url": url_with_scheme(beat.connect_url, ("sc",), "connect_url", beat.server_id),
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
