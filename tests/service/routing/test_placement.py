"""Placement over a pool of Connect servers, as pure rules: no Spark, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from service.routing import rules
from service.routing.decider import with_load
from service.routing.policy import Policy

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
LIGHT = rules.RunSummary(task_time_ms=240_000, shuffle_write_bytes=10 << 20, disk_spilled_bytes=0,
                         peak_execution_memory_bytes=64 << 20, duration_ms=120_000)  # predicts 2 cores


def server(server_id: str, in_flight=0.0, age_s=5.0, draining=False, cores=None) -> rules.ServerFacts:
    """A server heard from `age_s` ago; `cores`: the cores its executors hold (else the policy's 8)."""
    return rules.ServerFacts(last_heartbeat_at=None if age_s is None else NOW - timedelta(seconds=age_s),
                             draining=draining, executors=1 if cores else 0, executor_cores=cores or 0,
                             server_id=server_id, connect_url=f"sc://{server_id}:15002", in_flight_cores=in_flight)


def facts(*servers, mode="auto", recent_runs=(LIGHT,) * 3, **app) -> rules.DecisionFacts:
    return rules.DecisionFacts(now=NOW, requested_mode=mode, resources=rules.Resources(),
                               app=rules.AppAggregates(recent_runs=recent_runs, **app), servers=servers)


def decide(f: rules.DecisionFacts) -> rules.Verdict:
    return rules.decide(f, Policy())


def test_a_run_goes_to_the_server_with_the_most_free_cores_and_says_so():
    verdict = decide(facts(server("a", in_flight=5), server("b", in_flight=1)))
    assert verdict.mode == "connect" and verdict.server_id == "b" and verdict.connect_url == "sc://b:15002"
    placement = verdict.reasons[-1]
    assert placement.rule == "placement" and placement.observed == 7.0 and placement.threshold == 2.0
    assert placement.message.startswith("Placed on b, the server with the most free capacity: 7.0 of its 8 cores")
    assert "a 3.0 of 8" in placement.message
    assert verdict.reasons[0].rule == "within-limits"  # the rule that chose Connect stays first


def test_free_capacity_is_counted_against_each_servers_own_capacity():
    # a holds 16 cores with 10 in flight (6 free); b holds 4 with nothing in flight (4 free): a has more room.
    assert decide(facts(server("a", in_flight=10, cores=16), server("b", cores=4))).server_id == "a"


def test_a_tie_goes_to_the_first_server_of_the_pool_the_default():
    assert decide(facts(server("default"), server("b"), server("c"))).server_id == "default"


def test_a_burst_spreads_so_that_loads_differ_by_at_most_one_run():
    pool = (server("a"), server("b"))
    placed = []
    for _ in range(7):  # as in a batch: each decision sees the ones before it
        verdict = decide(facts(*pool))
        placed.append(verdict.server_id)
        pool = with_load(pool, verdict.server_id, verdict.predicted_cores)
    assert placed == ["a", "b", "a", "b", "a", "b", "a"]
    assert abs(pool[0].in_flight_cores - pool[1].in_flight_cores) <= 2.0


def test_draining_and_silent_servers_get_no_runs():
    verdict = decide(facts(server("a", draining=True), server("b", age_s=120), server("c", in_flight=5)))
    assert verdict.mode == "connect" and verdict.server_id == "c"
    assert "(others" not in verdict.reasons[-1].message and "no other server" in verdict.reasons[-1].message


def test_standalone_for_want_of_a_server_only_when_none_can_take_a_run():
    verdict = decide(facts(server("a", draining=True), server("b", age_s=None)))
    assert verdict.mode == "standalone" and verdict.server_id is None
    assert [r.rule for r in verdict.reasons] == ["server-draining", "server-unhealthy"]
    assert "Connect server a is draining" in verdict.reasons[0].message
    assert "Connect server b has never sent a heartbeat" in verdict.reasons[1].message


def test_over_capacity_only_when_no_server_has_room():
    # 2 predicted cores: a has 1 free, b has 2 free: b takes it.
    assert decide(facts(server("a", in_flight=7), server("b", in_flight=6))).server_id == "b"
    verdict = decide(facts(server("a", in_flight=7), server("b", in_flight=6.5)))
    assert verdict.mode == "standalone" and verdict.reasons[0].rule == "over-capacity"
    [reason] = verdict.reasons
    assert "No Connect server has room for this run's 2.0 cores: on b, the one with the most" in reason.message
    assert reason.observed == 8.5 and reason.threshold == 8
    # A full server that cannot take runs anyway does not count as room, nor as load.
    assert decide(facts(server("a", draining=True), server("b", in_flight=6.5))).reasons[0].rule == "over-capacity"


def test_a_pinned_app_stays_on_its_server_while_it_can_take_runs():
    pool = (server("a", in_flight=6), server("b"))
    verdict = decide(facts(*pool, pinned_mode="connect", pinned_server="a", pin_reason="needs the GPU jars"))
    assert verdict.mode == "connect" and verdict.server_id == "a" and not verdict.chosen_by_policy
    assert verdict.reasons[0].rule == "admin-pin" and "Connect server a: needs the GPU jars" in verdict.reasons[0].message
    assert verdict.reasons[-1].message == "Placed on a, the server an admin pinned the app to."
    assert verdict.predicted_cores == 2.0  # its load counts on its server
    draining = decide(facts(server("a", draining=True), server("b"), pinned_mode="connect", pinned_server="a"))
    assert draining.mode == "standalone" and draining.reasons[0].rule == "admin-pin"
    assert "Connect server a is draining for a restart" in draining.reasons[0].message
    gone = decide(facts(server("b"), pinned_mode="connect", pinned_server="a"))
    assert gone.mode == "standalone" and "not in the pool" in gone.reasons[0].message


def test_a_forced_connect_run_no_server_can_take_goes_to_the_default_server():
    verdict = decide(facts(server("default", age_s=None), server("b", draining=True), mode="connect"))
    assert verdict.mode == "connect" and verdict.server_id == "default"
    assert verdict.reasons[-1].message.startswith("Placed on default, the default server")


def test_forced_connect_runs_count_their_load():
    verdict = decide(facts(server("a"), mode="connect"))
    assert verdict.predicted_cores == 2.0 and verdict.server_id == "a"


def test_one_server_decides_as_before_without_a_placement_reason():
    verdict = decide(facts(server("only", in_flight=2)))
    assert verdict.server_id == "only" and verdict.connect_url == "sc://only:15002"
    assert all(reason.rule in ("within-limits", "scheduler-pool") for reason in verdict.reasons)


@pytest.mark.parametrize("rule", [*rules.RULES, rules.connect_by_default], ids=lambda rule: rule.__name__)
@pytest.mark.parametrize("pool", [
    (), (server("a"), server("b")), (server("a", draining=True), server("b", age_s=None)),
    (server("a", in_flight=8), server("b", in_flight=7.5)),
], ids=["no server", "two up", "none available", "both full"])
def test_every_rule_is_correct_alone_over_a_pool(rule, pool):
    verdict = rule(facts(*pool, pinned_mode="connect", pinned_server="a"), Policy())
    assert verdict is None or (verdict.mode in ("connect", "standalone") and verdict.reasons
                               and all(reason.message for reason in verdict.reasons))


def test_with_load_adds_to_the_chosen_server_only():
    pool = with_load((server("a"), server("b", in_flight=1)), "b", 2.5)
    assert [s.in_flight_cores for s in pool] == [0.0, 3.5]
    assert pool[1] == replace(server("b"), in_flight_cores=3.5, in_flight_runs=1)
