"""Whose failure a failed run was, why it failed in one line, and whether it ran out of memory.

Decided by outcome where it can be: a failed Connect run of an idempotent app is rerun standalone, and the
rerun's end settles it (protocol.SETTLED_BY). The output patterns below only classify a failed Connect run
that is not rerun (an app that is not idempotent, or fallback off), and name the likely cause in the log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from client_runtime.process import Outcome
from client_runtime.protocol import FailureKind, OomWhere

# Output of a Python client that names a Spark Connect failure: unsupported APIs, a server that is gone or
# restarting, a session the server no longer knows.
PYTHON_CONNECT_FAILURES = (
    r"JVM_ATTRIBUTE_NOT_SUPPORTED|\[NOT_IMPLEMENTED\]|PySparkNotImplementedError"
    r"|StatusCode\.UNAVAILABLE|StatusCode\.DEADLINE_EXCEEDED|RetriesExceeded"
    r"|failed to connect to all addresses|stopped SparkContext|SparkContext was shut down"
    r"|INVALID_HANDLE\.SESSION|SESSION_CLOSED|NO_ACTIVE_SESSION"
    r"|MASTER_URL_NOT_SET|CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT|NOT_SUPPORTED_COMMAND_WITHOUT_HIVE_SUPPORT")
# Output of a JVM client that names one: an API the Connect client does not have, a classic-only class absent
# from its classpath, a UDF class the session does not have (an app without the helper, which adds the jar), a
# server that is gone.
JVM_CONNECT_FAILURES = (
    r"UNSUPPORTED_CONNECT_FEATURE|NoClassDefFoundError: org/apache/spark/sql/(?:classic|execution)/"
    r"|installed by calling session\.addArtifact"
    r"|grpc\.StatusRuntimeException: (?:UNAVAILABLE|DEADLINE_EXCEEDED)")
CONNECT_FAILURE_PATTERNS = re.compile(PYTHON_CONNECT_FAILURES + "|" + JVM_CONNECT_FAILURES)

# The line a Python traceback ends with: `pyspark.errors.exceptions.connect.AnalysisException: [...] ...`.
PYTHON_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")

# A JVM stack trace's frames and suppressed exceptions: the error is the line before them.
JVM_TRACE_LINE = re.compile(r"\s+(at |Suppressed: |\.\.\. \d+ more)")

# Output that says a JVM ran out of memory, the way Spark and its cluster managers say it: the JVM's own
# error (heap space, GC overhead limit), Spark's execution memory refused, a container killed over its memory
# limit (YARN, Kubernetes), an executor lost with the exit code of an out-of-memory death (52: Spark's own
# handler of an OutOfMemoryError; 137: SIGKILL, the OS's OOM killer; 143: YARN's kill of a container over its
# limit), a broadcast table the driver cannot hold.
OUT_OF_MEMORY = re.compile(
    r"java\.lang\.OutOfMemoryError|SparkOutOfMemoryError|GC overhead limit exceeded"
    r"|Container killed .{0,120}memory|running beyond (?:physical|virtual) memory limits"
    r"|exceeding (?:physical |virtual )?memory limits|possible container OOM|killed by the OS"
    r"|Command exited with code (?:52|137)\b"
    r"|ExecutorLostFailure.*\b(?:exit code|Exit status:?|exited with code) ?(?:137|143)\b"
    r"|Not enough memory to build and broadcast")
# Out of memory that more heap does not cure: threads, class metadata.
NOT_HEAP = re.compile(r"unable to create (?:new )?native thread|Metaspace|Compressed class space")
# The line is about a task or an executor (the driver's log of an executor's failure): the executor's memory.
# The time a log4j line starts with (Spark's default layout: 26/12/05 05:18:16 WARN ...).
LOG_TIME = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d ")
EXECUTOR_CONTEXT = re.compile(
    r"Lost task|\bexecutor \d+|ExecutorLostFailure|Lost executor|Executor app-|Executor updated|Container"
    r"|container OOM|SparkOutOfMemoryError|UNABLE_TO_ACQUIRE_MEMORY|killed by the OS|in stage \d")


@dataclass(frozen=True)
class OutOfMemory:
    """A run that ran out of memory: where (whose memory a rerun grows) and the line that says so."""

    where: OomWhere
    line: str

    def summary(self) -> str:
        return f"out of {self.where} memory: {self.line}"


def out_of_memory(lines: Iterable[str]) -> OutOfMemory | None:
    """Whether the output says the run ran out of memory, and where: an executor's (a line about a task or an
    executor says so: the driver logs its executors' failures) before the driver's (an OutOfMemoryError with
    nothing of an executor about it: the driver's own JVM). None: no sign of it."""
    executor = driver = None
    for line in lines:
        if not OUT_OF_MEMORY.search(line) or NOT_HEAP.search(line):
            continue
        text = LOG_TIME.sub("", line.strip())[:300]
        if EXECUTOR_CONTEXT.search(line):
            executor = executor or text
        else:
            driver = driver or text
    if executor:
        return OutOfMemory("executor", executor)
    return OutOfMemory("driver", driver) if driver else None


def status_of(outcome: Outcome, cancelled: bool) -> str:
    """succeeded, failed, or cancelled (stopped because the launcher was asked to stop)."""
    if outcome.exit_code == 0 and not outcome.stopped_because:
        return "succeeded"
    return "cancelled" if cancelled else "failed"


def failure_kind(mode: str, outcome: Outcome) -> FailureKind:
    """Connect or app, from the output (a failed Connect run that is not rerun standalone)."""
    if mode != "connect":
        return "app"
    if outcome.stopped_because and "asked to stop" not in outcome.stopped_because:
        return "connect"  # a server gone, or a run hanging past its timeout on a shared server
    return "connect" if connect_hint(outcome) else "app"


def connect_hint(outcome: Outcome) -> str | None:
    """The last output line that names a Spark Connect failure, if any."""
    return next((line.strip()[:200] for line in reversed(outcome.tail[-80:])
                 if CONNECT_FAILURE_PATTERNS.search(line)), None)


def failure_summary(outcome: Outcome) -> str:
    """Why a run failed, in one line: the exception the last Python traceback ended with (a Connect error
    goes on with the server's JVM stack trace), else the last line naming an error."""
    if outcome.stopped_because:
        return outcome.stopped_because
    tail = outcome.tail
    last = next((i for i in range(len(tail) - 1, -1, -1) if tail[i].startswith("Traceback (most recent")),
                None)
    if last is not None:  # the traceback's frames are indented; the first line that is not is the exception
        raised = next((line for line in tail[last + 1:] if PYTHON_EXCEPTION_LINE.match(line)), None)
        if raised:
            return raised.strip()[:500]
    errors = [line.strip() for line in tail if re.search(r"(Error|Exception)\b", line)
              and not JVM_TRACE_LINE.match(line)]
    return (errors[-1] if errors else f"exit code {outcome.exit_code}")[:500]
