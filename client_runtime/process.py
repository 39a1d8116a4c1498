"""Running an app's process: stream its output, bound its time, watch its server, and leave nothing behind."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE_S = 10.0
# After the app exits, how long its output may stay silent before we stop waiting for the rest: a process
# it left behind can hold the pipe open for good, but a sink that lags (a busy task log) must not lose lines.
# OUTPUT_DRAIN_MAX_S bounds the wait when something it left behind keeps writing.
OUTPUT_QUIET_S = 5.0
OUTPUT_DRAIN_MAX_S = 60.0


@dataclass
class Outcome:
    exit_code: int
    tail: list[str]              # the last lines of output, for failure classification and reports
    # why we stopped it (timeout, server gone, cancelled), None if it ended itself
    stopped_because: str | None


class AppProcess:
    """One child process in its own process group, so that stopping it stops everything it started
    (spark-submit's JVM, Python workers)."""

    def __init__(self, process: subprocess.Popen[bytes], on_line: Callable[[str], None]):
        """Watch a started process: its own session, stdout piped (see start, or client_runtime.runner)."""
        self.process = process
        self.tail: collections.deque[str] = collections.deque(maxlen=200)
        self._on_line = on_line
        self._lines_read = 0
        self._reader = threading.Thread(target=self._read, name="app-output", daemon=True)
        self._reader.start()
        self.stopped_because: str | None = None

    @classmethod
    def start(cls, command: list[str], env: dict[str, str], on_line: Callable[[str], None],
              cwd: Path | str | None = None) -> AppProcess:
        return cls(subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True), on_line)

    def _read(self) -> None:
        assert self.process.stdout is not None, "an AppProcess's output is piped"
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.tail.append(line)
            with contextlib.suppress(Exception):  # a broken sink must not stall the child on a full pipe
                self._on_line(line)
            self._lines_read += 1

    def stop(self, reason: str) -> None:
        """SIGTERM to the whole group, SIGKILL after a grace period."""
        if self.stopped_because is None:
            self.stopped_because = reason
        terminate_group(self.process, KILL_GRACE_S)

    def wait(self, timeout_s: float | None = None, watchdog: Callable[[], str | None] | None = None,
             watch_every_s: float = 2.0) -> Outcome:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        next_watch = time.monotonic() + watch_every_s
        while self.process.poll() is None:
            now = time.monotonic()
            if deadline is not None and now > deadline:
                self.stop(f"the run took longer than its timeout of {timeout_s:g} s")
                break
            if watchdog is not None and now >= next_watch:
                next_watch = now + watch_every_s
                problem = watchdog()
                if problem:
                    self.stop(problem)
                    break
            pause = min(1.0, next_watch - now if watchdog is not None else 1.0,
                        deadline - now if deadline is not None else 1.0)
            if self._reader.is_alive():
                # The output ends when the app exits: wake up then, not at the next tick.
                self._reader.join(max(pause, 0.001))
            else:  # the app closed its output but runs on
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(max(pause, 0.001))
        self.process.wait()
        self._finish_output()
        return Outcome(self.process.returncode, list(self.tail), self.stopped_because)

    def _finish_output(self) -> None:
        """Wait until every line of the app's output has gone to the sink, or the output has been quiet for
        OUTPUT_QUIET_S, or OUTPUT_DRAIN_MAX_S have passed."""
        deadline = time.monotonic() + OUTPUT_DRAIN_MAX_S
        while time.monotonic() < deadline:
            lines_before = self._lines_read
            self._reader.join(min(OUTPUT_QUIET_S, max(deadline - time.monotonic(), 0.0)))
            if not self._reader.is_alive() or self._lines_read == lines_before:
                return


def terminate_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace_s)
    # The leader may be gone while members (a JVM, Python workers) linger.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie, our own child not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group `pid` leads (a server started in its own session), if it is still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def stop_groups(pids: list[int], timeout_s: float, progress: Callable[[str], None]) -> None:
    """SIGTERM to the process groups these pids lead, SIGKILL to those still there after timeout_s; returns
    once all are gone (servers started in their own session: a JVM with its Python workers or executors)."""
    for pid in pids:
        signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if pid_alive(pid):
            progress(f"pid {pid} ignored SIGTERM for {timeout_s:.0f} s: killing it")
            signal_group(pid, signal.SIGKILL)
    while any(pid_alive(pid) for pid in pids):
        time.sleep(0.1)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
