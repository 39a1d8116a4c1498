"""Whose failure a failed run was, and why it failed, in one line.

Decided by outcome where it can be: a failed Connect run of an idempotent app is rerun standalone, and the
rerun's end settles it (protocol.SETTLED_BY). The output patterns below only classify a failed Connect run
that is not rerun (an app that is not idempotent, or fallback off), and name the likely cause in the log.
"""

from __future__ import annotations

import re

from client_runtime.process import Outcome

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

def status_of(outcome: Outcome, cancelled: bool) -> str:
    """succeeded, failed, or cancelled (stopped because the launcher was asked to stop)."""
    if outcome.exit_code == 0 and not outcome.stopped_because:
        return "succeeded"
    return "cancelled" if cancelled else "failed"


def failure_kind(mode: str, outcome: Outcome) -> str:
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
