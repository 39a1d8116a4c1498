"""Domain errors: raised where the domain finds them, mapped to HTTP statuses in one place
(service/app.py)."""


class NotFound(Exception):
    """Something a request names does not exist (HTTP 404). The message says what."""


class UnknownRun(NotFound):
    def __init__(self, run_id: str):
        super().__init__(f"unknown run {run_id!r}")


class UnknownApp(NotFound):
    def __init__(self, app_id: str):
        super().__init__(f"unknown app {app_id!r}")


class UnknownServer(NotFound):
    def __init__(self, server_id: str):
        super().__init__(f"unknown server {server_id!r}: it has not sent a heartbeat yet")


class Conflict(Exception):
    """A request that contradicts the state it acts on (HTTP 409); the message says what the state is."""


class Invalid(Exception):
    """A request whose values the service cannot act on (HTTP 422, in the shape of every 422). `loc` names the
    part of the request, as in a validation error: ("body", "policy"), ("query", "days")."""

    def __init__(self, message: str, loc: tuple = ("body",)):
        super().__init__(message)
        self.loc = list(loc)


class Unavailable(Exception):
    """The request lost a race it may win later (HTTP 503 with Retry-After, as for a database that is away):
    the sender keeps what it sent and tries again."""
