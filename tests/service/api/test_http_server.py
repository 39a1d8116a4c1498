"""Slow clients cannot hold the router's connections (issue 20, finding 5): a request head must arrive within
SPARK_ROUTER_HEADER_READ_TIMEOUT_S, a body within SPARK_ROUTER_BODY_READ_TIMEOUT_S, and a worker holds at most
SPARK_ROUTER_MAX_CONNECTIONS connections, closing the idle ones first. With real sockets against a real
`spark-router serve`, in one process and with two workers."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time

import httpx
import pytest

from service.api.http_server import MAX_HEAD_BYTES
from tests.support import RouterProcess, wait_until

TOKEN = "ingest-s3cret"
HEAD_S = BODY_S = 1.5  # the timeouts of the router under test
LATE_S = 5.0  # how much later than its timeout a close may come on a busy machine


def start_router(tmp_path_factory, name: str, workers: int | None, **settings) -> RouterProcess:
    state = tmp_path_factory.mktemp(name)
    env = {"SPARK_ROUTER_INGEST_TOKEN": TOKEN,
           **{f"SPARK_ROUTER_{k.upper()}": str(v) for k, v in settings.items()}}
    return RouterProcess(f"sqlite:///{state / 'router.db'}", state, env=env, workers=workers).start()


@pytest.fixture(scope="module", params=[None, 2], ids=["one-process", "two-workers"])
def router(request, tmp_path_factory):
    process = start_router(tmp_path_factory, "timeouts", request.param, header_read_timeout_s=HEAD_S,
                           body_read_timeout_s=BODY_S)
    yield process
    process.stop()


def connect(router: RouterProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", router.port), timeout=10)
    sock.setblocking(False)
    return sock


def head(path: str = "/api/v1/ingest/stages", token: str | None = TOKEN, length: int | None = None,
         method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: router", "Content-Type: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Client:
    """One connection: `at_once` sent at once, then `dribble` a byte every `every_s`; what the router answered
    and when it closed the connection."""

    def __init__(self, sock: socket.socket, at_once: bytes = b"", dribble: bytes = b"",
                 every_s: float = 0.25):
        if at_once:
            sock.sendall(at_once)
        self.sock, self.to_send, self.every_s = sock, dribble, every_s
        self.started = time.monotonic()
        self.next_send = self.started
        self.received = b""
        self.closed_after: float | None = None

    def step(self) -> None:
        """Send the next byte when due; read what came; note the close."""
        if self.closed_after is not None:
            return
        now = time.monotonic()
        try:
            if self.to_send and now >= self.next_send:
                self.sock.send(self.to_send[:1])
                self.to_send, self.next_send = self.to_send[1:], now + self.every_s
            if select.select([self.sock], [], [], 0)[0]:
                data = self.sock.recv(65536)
                self.received += data
                if not data:
                    self.closed_after = now - self.started
        except (BrokenPipeError, ConnectionResetError):
            self.closed_after = now - self.started

    @property
    def status(self) -> int | None:
        return int(self.received.split(b" ", 2)[1]) if self.received.startswith(b"HTTP/1.1 ") else None


def run(clients: list[Client], until_s: float) -> None:
    """Step every client until each is closed, or for until_s."""
    deadline = time.monotonic() + until_s
    while time.monotonic() < deadline and any(client.closed_after is None for client in clients):
        for client in clients:
            client.step()
        time.sleep(0.01)


def test_connections_that_never_finish_their_head_are_closed(router):
    """The issue's probe, smaller: connections that send nothing, or a head a byte at a time (never idle long,
    so no idle timeout would catch them), are closed once the head timeout has passed; the latter get a
    408."""
    silent = [Client(connect(router)) for _ in range(20)]
    dribbling = [Client(connect(router), dribble=head(length=2)[:-2] + b"X-Padding: " + b"a" * 200)
                 for _ in range(20)]
    run(silent + dribbling, HEAD_S + LATE_S)
    for client in silent + dribbling:
        assert client.closed_after is not None, "still open"
        assert HEAD_S - 0.1 <= client.closed_after <= HEAD_S + LATE_S, client.closed_after
    assert {client.status for client in silent} == {None}
    assert {client.status for client in dribbling} == {408}
    assert httpx.get(f"{router.url}/healthz").status_code == 200


def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_closed(router):
    stalled = Client(connect(router), head(length=1000) + b'{"server_id": "s", ')
    chunked = Client(connect(router), head()[:-2] + b'Transfer-Encoding: chunked\r\n\r\n3\r\n{"s\r\n')
    dribbling = Client(connect(router), head(length=1000), dribble=b" " * 1000)  # a byte at a time
    run([stalled, chunked, dribbling], BODY_S + LATE_S)
    for client in (stalled, chunked, dribbling):
        assert client.status == 408, client.received[:300]
        assert b"SPARK_ROUTER_BODY_READ_TIMEOUT_S" in client.received
        assert client.closed_after is not None and BODY_S - 0.1 <= client.closed_after <= BODY_S + LATE_S


def test_a_body_still_coming_after_an_early_answer_is_cut_off(router):
    """Without the token the answer (401) comes before the body; the body a byte at a time kept the connection
    open for as long as it came."""
    client = Client(connect(router), head(token=None, length=100_000), dribble=b"x" * 1000, every_s=0.1)
    run([client], BODY_S + LATE_S)
    assert client.status == 401
    assert client.closed_after is not None and BODY_S - 0.1 <= client.closed_after <= BODY_S + LATE_S


def test_a_slow_client_within_the_timeouts_is_served(router):
    """A head and a body each sent in pieces over most of their timeout, twice on one connection (the second
    head's time counts from the first answer)."""
    body = json.dumps({"batch_id": "slow", "server_id": "slow-server", "spark_app_id": "local-slow",
                       "stages": []}).encode()
    sock = connect(router)
    sock.setblocking(True)
    for _ in range(2):
        request = head(length=len(body))
        for part in (request[:20], request[20:60], request[60:]):
            time.sleep(HEAD_S / 5)
            sock.sendall(part)
        for part in (body[:10], body[10:30], body[30:]):
            time.sleep(BODY_S / 5)
            sock.sendall(part)
        answer = sock.recv(65536)
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["accepted"] == 0
    sock.close()


def test_a_head_past_its_size_limit_is_refused(router):
    sock = connect(router)
    sock.setblocking(True)
    # The router may close the connection before it has read it all.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(head()[:-2] + b"X-Big: " + b"a" * (MAX_HEAD_BYTES + 1000))
    sock.setblocking(False)
    client = Client(sock)
    run([client], LATE_S)
    assert client.status == 431 and client.closed_after is not None


# ------------------------------------------------------------------------------------ the connection limit

MAX = 10  # connections per worker


@pytest.fixture(scope="module", params=[None, 2], ids=["one-process", "two-workers"])
def limited(request, tmp_path_factory):
    """Long timeouts: here the limit, not a timeout, must close connections."""
    process = start_router(tmp_path_factory, "limited", request.param, header_read_timeout_s=30,
                           body_read_timeout_s=30, max_connections=MAX)
    yield process
    process.stop()


def open_ones(clients: list[Client]) -> list[Client]:
    run(clients, 0.5)  # closes reach us
    return [client for client in clients if client.closed_after is None]


def test_past_the_limit_idle_connections_make_room_for_new_ones(limited):
    workers = limited.workers or 1
    slow = []
    for _ in range(workers * MAX + 15):
        slow.append(Client(connect(limited), head()[:30]))
        run(slow[-1:], 0.02)
    assert len(open_ones(slow)) <= workers * MAX
    # A well-behaved client gets through: the connections idle the longest are closed for it.
    for _ in range(5):
        assert httpx.get(f"{limited.url}/healthz", timeout=10).status_code == 200
    assert len(open_ones(slow)) <= workers * MAX
    assert all(client.status is None for client in slow)  # closed without an answer: no request was made
    for client in slow:
        client.sock.close()


def test_past_the_limit_with_every_connection_busy_new_ones_get_503(limited):
    """Requests in progress (their bodies still coming) are never closed for a new connection: the new one is
    answered 503; once they end, requests are served again."""
    workers = limited.workers or 1
    busy = []
    for _ in range(workers * MAX + 5):
        busy.append(Client(connect(limited), head(length=100) + b"{"))
        run(busy[-1:], 0.1)  # its head read: a request in progress
    refused = [client for client in busy if client.status == 503]
    assert len(refused) >= 5, [client.received[:100] for client in busy]
    assert all(b"too many connections" in client.received and b"retry-after: 1" in client.received.lower()
               and client.closed_after is not None for client in refused)
    held = [client for client in busy if client.closed_after is None]
    assert len(held) <= workers * MAX
    if workers == 1:  # with several workers, the one the kernel hands it to may have room
        new = Client(connect(limited), head(method="GET", path="/healthz", token=None))
        run([new], LATE_S)
        assert new.status == 503
    for client in held:
        client.sock.close()
    wait_until(lambda: httpx.get(f"{limited.url}/healthz", timeout=10).status_code == 200, 10, "served again")


# ------------------------------------------------------------------------------------------- the address

def test_serve_logs_the_address_it_listens_on(tmp_path):
    """`spark-router serve --port N` said "router ready on http://127.0.0.1:8765" (SPARK_ROUTER_URL's
    default)."""
    process = RouterProcess(f"sqlite:///{tmp_path / 'router.db'}", tmp_path)
    process.env.pop("SPARK_ROUTER_URL")
    process.start()
    try:
        log = wait_until(lambda: "router app ready" in process.log_path.read_text()
                         and process.log_path.read_text(),
                         10, "the router's log")
    finally:
        process.stop()
    assert f"router starting on http://127.0.0.1:{process.port}: 1 worker(s)" in log
    assert ":8765" not in log
