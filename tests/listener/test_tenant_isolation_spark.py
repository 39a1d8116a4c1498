"""Tenant isolation on a real shared Connect server (issue 13): one tenant's job fails with a NUL in its error
message, and another tenant's stages still all arrive within a flush interval. Before, the NUL made ingest
answer 500 for the batch that held it; the listener retried it in order, and every later batch (every other
tenant's) waited behind it: another tenant's stages, 0 stored."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.listener.test_listener_spark import finish, run_of, start_client
from tests.support import wait_until

pytestmark = pytest.mark.spark
FLUSH_INTERVAL_S = 1.0  # the listener's default spark.router.listener.flushIntervalMs
# What a stage record needs besides the flush interval on a busy test machine: the POST and the database.
DELIVERY_S = 2.0


def test_a_nul_in_one_tenants_failure_never_holds_another_tenants_stages(connect_server, router):
    tag = uuid.uuid4().hex[:6]
    poisoned = (f"team-a.{tag}", f"run-{tag}-a")
    other = (f"team-b.{tag}", f"run-{tag}-b", 10)

    output = finish(start_client("nul_failure_client.py", connect_server.url, *poisoned))
    assert "failed as meant to" in output, output
    # Tenant B runs while tenant A's failed stage is on its way (or already refused): 2 stages, 40 records.
    finish(start_client("shuffle_client.py", connect_server.url, *other))
    finished_at = time.monotonic()

    def both_stages() -> dict | None:
        found = run_of(router, other[0], other[1])
        return found if found and found["num_stages"] >= 2 else None

    run = wait_until(both_stages, FLUSH_INTERVAL_S + DELIVERY_S, f"tenant B's stages ({other[0]}/{other[1]})",
                     interval_s=0.1)
    arrived_s = time.monotonic() - finished_at
    print(f"tenant B's stages arrived {arrived_s:.2f} s after its client finished")
    assert run["num_stages"] == 2 and run["shuffle_write_records"] == 4 * other[2], run

    # Tenant A's failed stage is accounted for: stored without its NUL (a listener that strips it), or
    # quarantined with the reason (one that sends it as it is).
    def tenant_a_accounted():
        stored = run_of(router, *poisoned)
        if stored and stored["num_failed_stages"] >= 1:
            return "stored"
        kept = [record for record in router.get("/api/v1/quarantine") if record["app_id"] == poisoned[0]]
        return kept and "quarantined"

    how = wait_until(tenant_a_accounted, 30, f"tenant A's failed stage ({poisoned[0]})")
    print(f"tenant A's failed stage: {how}")
    if how == "quarantined":
        [record] = [r for r in router.get("/api/v1/quarantine") if r["app_id"] == poisoned[0]]
        assert record["reason"] == "failure_reason: must not contain NUL (\\u0000)", record
        assert "bad\\u0000byte" in record["record"]
    assert httpx.get(f"{router.url}/healthz").status_code == 200
