"""The router client against a real router: what the launcher reports is always storable."""

from __future__ import annotations

from client_runtime.router_client import RouterClient, storable
from tests.support import RouterProcess


def test_storable_text_has_no_nul_and_no_lone_surrogate():
    text = storable("ValueError: bad\x00byte \ud83d")
    assert "\x00" not in text and text.encode("utf-8")


def test_a_failure_message_with_a_nul_is_reported(tmp_path):
    """A UDF's ValueError("bad\\x00byte") ends up in the app's output: the run must still be marked failed
    (the router refuses NUL in stored text, and a refused report would leave the run running)."""
    router = RouterProcess(f"sqlite:///{tmp_path / 'router.db'}", tmp_path / "state").start()
    try:
        client = RouterClient(router.url, None, timeout_s=10)
        run_id = client.decide("etl.nul", "standalone").run_id
        client.report(run_id, "started")
        client.report(run_id, "failed", "app", "ValueError: bad\x00byte \ud83d", 1)
        run = router.get(f"/api/v1/runs/{run_id}")
        assert run["status"] == "failed" and run["failure_message"].startswith("ValueError: bad")
    finally:
        router.stop()
