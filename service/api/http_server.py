"""How `spark-router serve` runs the router: uvicorn, with what uvicorn lacks for clients that are slow on
purpose.

uvicorn has no header-read timeout (its keep-alive timeout stops at the first byte of the next request), never
times out a body the application did not wait for (after an early 401 or 413), and holds any number of
connections. So a client sending a request a byte at a time kept its connection, and a file handle, for as
long as it liked (issue 20). Here, per connection:

- a whole request head must arrive within SPARK_ROUTER_HEADER_READ_TIMEOUT_S of the connection's opening or of
  the end of the previous answer (else 408 if part of one came, and the connection is closed), and be at most
  MAX_HEAD_BYTES (else 431);
- a body must arrive within SPARK_ROUTER_BODY_READ_TIMEOUT_S of its head: the request guard answers 408 to an
  application still waiting for it (service/api/request_guard.py), and a connection whose answer went out
  before its body ended is closed;
- a worker holds at most SPARK_ROUTER_MAX_CONNECTIONS: a new connection past it closes the one idle the
  longest (waiting for a request, or answered with its body still coming), so a crowd of slow clients never
  keeps a well-behaved one out; if every connection has a request in progress, the new one is answered 503.
"""

from __future__ import annotations

import copy
import json
import logging

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.config import RouterSettings, get_router_settings

log = logging.getLogger(__name__)

# A request head (request line and headers) larger than this is refused (431): the head is held in memory
# whole.
MAX_HEAD_BYTES = 64 * 1024
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _answer(status: str, detail: str, extra: str = "") -> bytes:
    body = json.dumps({"detail": detail}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}"
            "connection: close\r\n\r\n").encode() + body


class _EveryFewSeconds:
    """One log line per interval for events that come in crowds (a slowloris run opens thousands of
    connections), with how many there were since the last line."""

    def __init__(self, message: str, interval_s: float = 10):
        self.message, self.interval_s = message, interval_s
        self.count, self.last = 0, float("-inf")

    def __call__(self, now: float, *args) -> None:
        self.count += 1
        if now - self.last >= self.interval_s:
            log.warning(self.message, self.count, *args)
            self.count, self.last = 0, now


_head_timeouts = _EveryFewSeconds("closed %d connection(s) that sent no whole request head within %s s "
                                  "(SPARK_ROUTER_HEADER_READ_TIMEOUT_S)")
_body_timeouts = _EveryFewSeconds("closed %d connection(s) whose request body did not arrive within %s s "
                                  "(SPARK_ROUTER_BODY_READ_TIMEOUT_S)")
_evictions = _EveryFewSeconds("closed %d idle connection(s) to make room for new ones: this worker is at its "
                              "%s connections (SPARK_ROUTER_MAX_CONNECTIONS)")
_refusals = _EveryFewSeconds("refused %d connection(s): all %s connections of this worker have a request in "
                             "progress (SPARK_ROUTER_MAX_CONNECTIONS)")


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a request-head deadline, a body deadline and a cap on connections; the
    limits are the settings' (each worker process reads them from the environment)."""

    def __init__(self, config, server_state, app_state, _loop=None):
        super().__init__(config, server_state, app_state, _loop)
        settings = get_router_settings()
        self.header_timeout_s = settings.header_read_timeout_s
        self.body_timeout_s = settings.body_read_timeout_s
        self.max_connections = settings.max_connections
        self.refused = False
        # Since when the connection has no request in progress (None while it has): the one idle the longest
        # makes room for a new connection at the cap.
        self.idle_since: float | None = None
        self.head_timer = None
        # received while waiting for a head; None from its end to the request's
        self.head_bytes: int | None = 0
        self.body_timer = None

    def connection_made(self, transport) -> None:
        if len(self.connections) >= self.max_connections and not self._make_room():
            self.refused = True
            self.transport = transport
            _refusals(self.loop.time(), self.max_connections)
            transport.write(_answer("503 Service Unavailable", "too many connections; retry later",
                                    "retry-after: 1\r\n"))
            transport.close()
            return
        super().connection_made(transport)
        self._wait_for_head()

    def _make_room(self) -> bool:
        idle = [(c.idle_since, c) for c in self.connections
                if isinstance(c, GuardedHttpProtocol) and c.idle_since is not None
                and not c.transport.is_closing()]
        if not idle:
            return False
        _evictions(self.loop.time(), self.max_connections)
        _since, longest = min(idle, key=lambda pair: pair[0])
        longest._close(answer_408=False)
        return True

    def connection_lost(self, exc) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.head_bytes is not None:
            self.head_bytes += len(data)
        super().data_received(data)
        too_large = self.head_bytes is not None and self.head_bytes > MAX_HEAD_BYTES
        if too_large and not self.transport.is_closing():
            self._close(answer=_answer("431 Request Header Fields Too Large",
                                       f"request head larger than {MAX_HEAD_BYTES} bytes"))

    # The head: from the connection's opening, or from the end of the previous answer, to the head's end.
    def _wait_for_head(self) -> None:
        self.idle_since = self.loop.time()
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()  # a pipelined request's head, while the one before is in progress

    def on_headers_complete(self) -> None:
        self.idle_since = None
        self.head_bytes = None
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        super().on_headers_complete()
        self.body_timer = self.loop.call_later(self.body_timeout_s, self._body_timed_out)

    def _head_timed_out(self) -> None:
        self.head_timer = None
        _head_timeouts(self.loop.time(), f"{self.header_timeout_s:g}")
        # A 408 only to a client that started a request, and never into an answer being written.
        self._close(answer_408=bool(self.head_bytes))

    # The body: from the head's end to the body's end.
    def on_message_complete(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None
        self.head_bytes = 0
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete and not self.transport.is_closing():
            # answered before its body ended: now the connection waits for the next one
            self._arm_head_timer()

    def _body_timed_out(self) -> None:
        self.body_timer = None
        _body_timeouts(self.loop.time(), f"{self.body_timeout_s:g}")
        if self.cycle is None or self.cycle.response_complete:
            self._close(answer_408=False)
        else:
            # the request guard answers 408 to an application waiting for the body; then the connection closes
            self.cycle.keep_alive = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # closed, or a pipelined request is in progress
        self.idle_since = self.loop.time()
        if self.body_timer is None:  # else its body is still coming: the body timer runs until it ends
            self._arm_head_timer()

    def _close(self, answer_408: bool = False, answer: bytes | None = None) -> None:
        if answer is None and answer_408:
            answer = _answer("408 Request Timeout", "request head not received in time")
        if answer is not None and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(answer)
        self._cancel_timers()
        self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self.head_timer, self.body_timer):
            if timer is not None:
                timer.cancel()
        self.head_timer = self.body_timer = None


def log_config(level: str) -> dict:
    """uvicorn's logging, and the router's own loggers at `level` in every worker (a worker process starts
    with no logging configured)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["router"] = {"format": LOG_FORMAT}
    config["handlers"]["router"] = {"class": "logging.StreamHandler", "formatter": "router",
                                    "stream": "ext://sys.stderr"}
    config["root"] = {"handlers": ["router"], "level": level.upper()}
    config["loggers"]["httpx"] = {"level": "WARNING"}
    return config


def serve(settings: RouterSettings, host: str, port: int, workers: int = 1, log_level: str = "info",
          access_log: bool = False) -> None:
    """Run the router on host:port with `workers` processes, each with the limits above."""
    from service.db import engine as db

    # Once, before the workers start: they then find the schema at its newest and change nothing.
    engine = db.get_engine(settings.resolved_database_url)
    db.upgrade(engine)
    engine.dispose()
    log.info("router starting on http://%s:%d: %d worker(s); a request head within %g s, a body within %g s, "
             "at most %d connections per worker", host, port, workers, settings.header_read_timeout_s,
             settings.body_read_timeout_s, settings.max_connections)
    # ws="none": the router has no WebSocket endpoint, so an upgrade request stays a plain HTTP request.
    uvicorn.run("service.app:create_app", factory=True, host=host, port=port, workers=workers,
                http=GuardedHttpProtocol, ws="none", log_level=log_level, access_log=access_log,
                log_config=log_config(log_level))
