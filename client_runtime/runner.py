"""The Python interpreter an app runs in on Spark Connect, started before the app's run is decided.

`spark-router run` starts it first thing. While the launcher imports itself, fetches the app and asks the
router, this interpreter imports what a Connect client needs (pyspark's Connect client, pandas, pyarrow, grpc:
about half a second, which an app started afterwards would pay again). The launcher then sends the app to run
as one JSON line on stdin; if it sends nothing (the run went standalone), the interpreter is killed or exits.

The app runs as ``python -u APP ARGS`` would run it: as ``__main__``, with its own directory first on
``sys.path``, the launcher's environment, no stdin. Its exit code is the interpreter's.

Kept free of imports beyond the standard library, and of those until needed: the CLI imports this module
before anything else, and `start()` is on the path to every app's start.
"""

from __future__ import annotations

import os
import subprocess
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

# What a Connect client app imports anyway; an import that fails here fails again, visibly, in the app.
PRELOAD = ("pyspark.sql.connect.session", "pyspark.sql.functions", "client_runtime.session")
# Set by the launcher for the app alone: the interpreter must not start in Connect mode before the decision.
CLEARED_ENV = ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")
# An app's PYTHONHASHSEED unless the user set one: a standalone driver gets it from the launcher, and an
# interpreter takes it only when it starts, so this one starts with it.
HASH_SEED = "0"


def start() -> subprocess.Popen[bytes]:
    """Start the interpreter (its own process group, like every app process) and let it preload."""
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_ENV}
    env.setdefault("PYTHONHASHSEED", HASH_SEED)
    return subprocess.Popen([sys.executable, "-u", "-m", "client_runtime.runner"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def hand_over(process: subprocess.Popen[bytes], main: Path, args: list[str], env: dict[str, str], cwd: Path,
              pythonpath: list[Path]) -> None:
    """Give the waiting interpreter its app. Raises BrokenPipeError if it is gone."""
    import json

    assert process.stdin is not None, "start() pipes the interpreter's stdin"
    spec = {"main": str(main), "args": args, "env": env, "cwd": str(cwd),
            "pythonpath": [str(p) for p in pythonpath]}
    process.stdin.write((json.dumps(spec) + "\n").encode())
    process.stdin.close()


def _run_app(spec: dict[str, Any]) -> None:
    import runpy
    from pathlib import Path

    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the app gets no stdin, as when the launcher starts it directly
    os.close(devnull)
    os.chdir(spec["cwd"])
    os.environ.clear()
    os.environ.update(spec["env"])
    sys.argv = [spec["main"], *spec["args"]]
    # `python APP`: APP's directory first, then PYTHONPATH (here: the app's own modules).
    sys.path[0:1] = [str(Path(spec["main"]).resolve().parent), *spec["pythonpath"]]
    runpy.run_path(spec["main"], run_name="__main__")


def main() -> None:
    import contextlib
    import gc
    import json

    for module in PRELOAD:
        with contextlib.suppress(Exception):  # the app's own import reports it
            __import__(module)
    line = sys.stdin.readline()
    if line:
        try:
            _run_app(json.loads(line))
        finally:
            gc.freeze()  # spares the exit's last collection a walk over every preloaded object (session.py)


if __name__ == "__main__":
    main()
