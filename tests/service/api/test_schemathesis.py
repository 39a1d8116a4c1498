"""A bounded fuzzing run of the whole API with schemathesis' CLI, against a real router on SQLite and on
PostgreSQL (issue 13): no request may make it answer 5xx, every status it answers is in the OpenAPI schema,
and every answer matches its schema. The issue's own run sent ~55,000 requests; this one is held to under a
minute per database, with a fixed seed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.support import BIN, RouterProcess, create_pg_database, drop_pg_database

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


def schemathesis() -> str:
    path = BIN / "schemathesis"
    if not path.exists() and not shutil.which("schemathesis"):
        pytest.fail("schemathesis is missing: pip install -e '.[dev]' (or pip install 'schemathesis>=4,<5')")
    return str(path) if path.exists() else shutil.which("schemathesis")


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_fuzzing_the_api_finds_no_server_error(database, tmp_path):
    url = f"sqlite:///{tmp_path / 'router.db'}" if database == "sqlite" else create_pg_database()
    router = RouterProcess(url, tmp_path / "state").start()
    try:
        result = subprocess.run(
            [schemathesis(), "run", f"{router.url}/openapi.json", "--checks", CHECKS, "--max-examples", "15",
             "--max-time", "40", "--seed", "13", "--request-timeout", "30", "--no-color"],
            capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)  # its cache goes there
    finally:
        router.stop()
        if database == "postgresql":
            drop_pg_database(url)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    selected = re.search(r"Selected: (\d+)/\d+", result.stdout)
    tested = re.search(r"Tested: (\d+)", result.stdout)
    # every operation was exercised
    assert selected and tested and tested.group(1) == selected.group(1), report
    log = router.log_path.read_text()
    assert "Traceback" not in log, log[-4000:]
