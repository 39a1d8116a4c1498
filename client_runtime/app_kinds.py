"""The kinds of app the launcher runs, one class each behind one interface: what to check before a run, how
the app starts on Spark Connect, and how spark-submit runs it standalone. The launcher holds the rest of a run
(decide, run, fall back, report) once, for every kind.

- PythonApp: a .py file, a directory, a zip or wheel. On Connect it runs in an interpreter that preloads the
  Connect client (client_runtime.runner); standalone, spark-submit runs the file, its modules as --py-files.
- JvmApp: a jar's main class (client_runtime.jvm). On Connect, ``java`` with Spark's JVM Connect client;
  standalone, ``spark-submit --class`` with the session helper.
"""

from __future__ import annotations

import contextlib
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from client_runtime import jvm, runner
from client_runtime.artifacts import ResolvedApp
from client_runtime.process import AppProcess, terminate_group
from client_runtime.settings import ClientSettings


class AppKind(ABC):
    """One kind of app, resolved (client_runtime.artifacts) and ready to run."""

    def __init__(self, app: ResolvedApp, settings: ClientSettings):
        self.app = app
        self.settings = settings

    @abstractmethod
    def describe(self) -> str:
        """What runs on Connect, for the log: ``python job.py``, ``java com.acme.Main``."""

    def check(self) -> None:  # noqa: B027 - a hook: most kinds need no check
        """Before a run is decided: raises an ArtifactError naming what this kind needs and is missing."""

    @abstractmethod
    def start_connect(self, args: list[str], env: dict[str, str], workdir: Path,
                      on_line: Callable[[str], None]) -> AppProcess:
        """Start the app as a Spark Connect client, with the run's environment."""

    @abstractmethod
    def standalone_command(self, submit: list[str], args: list[str]) -> list[str]:
        """Complete a spark-submit command (master, name, resources, confs so far) to run this app."""

    def release(self) -> None:  # noqa: B027 - a hook: most kinds hold nothing
        """Let go of anything held for a Connect run that will not come (a standalone run, a stop, the
        end)."""


class PythonApp(AppKind):
    def __init__(self, app: ResolvedApp, settings: ClientSettings,
                 interpreter: subprocess.Popen[bytes] | None = None):
        """``interpreter``: one from ``runner.start()``, already preloading (else a Connect run starts
        one)."""
        super().__init__(app, settings)
        self._interpreter = interpreter

    def describe(self) -> str:
        return f"python {self.app.main.name}"

    def start_connect(self, args: list[str], env: dict[str, str], workdir: Path,
                      on_line: Callable[[str], None]) -> AppProcess:
        """``python -u APP ARGS`` in the preloaded interpreter (a new one if there is none)."""
        process, self._interpreter = self._interpreter or runner.start(), None
        # If it died while preloading (a broken pipe), its output and exit code say why.
        with contextlib.suppress(BrokenPipeError):
            runner.hand_over(process, self.app.main, args, env, workdir, self.app.pythonpath)
        return AppProcess(process, on_line)

    def standalone_command(self, submit: list[str], args: list[str]) -> list[str]:
        if self.app.artifacts:
            submit = [*submit, "--py-files", ",".join(str(p) for p in self.app.artifacts)]
        return [*submit, str(self.app.main), *args]

    def release(self) -> None:
        interpreter, self._interpreter = self._interpreter, None
        if interpreter is not None:
            terminate_group(interpreter, grace_s=2)


class JvmApp(AppKind):
    def describe(self) -> str:
        return f"java {self.app.main_class}"

    def check(self) -> None:
        jvm.require_jars(self.settings)  # Java, the session helper and the JVM Connect client

    def start_connect(self, args: list[str], env: dict[str, str], workdir: Path,
                      on_line: Callable[[str], None]) -> AppProcess:
        command = jvm.connect_command(self.settings, self.app.main, str(self.app.main_class), args)
        return AppProcess.start(command, env, on_line, cwd=workdir)

    def standalone_command(self, submit: list[str], args: list[str]) -> list[str]:
        return jvm.submit_command(submit, self.settings, self.app.main, str(self.app.main_class), args)


def preload(app: str, mode: str) -> subprocess.Popen[bytes] | None:
    """For a Python app that may go to Connect: its interpreter, started now, so that its imports overlap the
    app's fetching and the router's answer. None otherwise."""
    if mode == "standalone" or app.endswith(".jar"):
        return None
    return runner.start()


def kind_of(app: ResolvedApp, settings: ClientSettings,
            interpreter: subprocess.Popen[bytes] | None = None) -> AppKind:
    """The kind of a resolved app; ``interpreter`` (a preloading one) goes to a Python app, or is stopped."""
    if app.main_class:
        if interpreter is not None:
            terminate_group(interpreter, grace_s=2)
        return JvmApp(app, settings)
    return PythonApp(app, settings, interpreter)
