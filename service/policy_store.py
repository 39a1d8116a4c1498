"""The policy in force: the built-in one, or the policy file, re-read when the file changes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from service.policy import Policy, PolicyError, load_policy

log = logging.getLogger(__name__)


class PolicyStore:
    """Hands out the current policy. A changed file is picked up at the next decision (one stat call);
    a broken file keeps the last good policy in force and says why in the log and on reload."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._policy = Policy()
        self.last_error: str | None = None
        if path is not None:
            self.reload()

    def get(self) -> Policy:
        if self.path is not None:
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                mtime = None
            if mtime != self._mtime:
                try:
                    self.reload()
                except PolicyError:
                    pass  # logged in reload; the last good policy stays
        return self._policy

    def reload(self) -> Policy:
        """Read the file now; raise PolicyError (and keep the old policy) if it cannot be used."""
        if self.path is None:
            return self._policy
        with self._lock:
            try:
                self._mtime = self.path.stat().st_mtime if self.path.exists() else None
                policy = load_policy(self.path)
            except PolicyError as exc:
                self.last_error = str(exc)
                log.error("policy not reloaded, keeping %s: %s", self._policy.full_version, exc)
                raise
            if policy.full_version != self._policy.full_version:
                log.info("policy %s in force (from %s)", policy.full_version, self.path)
            self._policy, self.last_error = policy, None
            return policy
