"""A compatibility finding: what in an app cannot work on Spark Connect, and where. Reported by both checks
(client_runtime.compat for Python, client_runtime.jar_check for jars)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}: {self.why}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
