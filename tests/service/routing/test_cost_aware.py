"""The cost-aware rule: after the hard rules, the mode with the better objective from both modes' predictions.
Pure: no Spark, no database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from service.routing import rules
from service.routing.facts import ClusterFacts, RunSummary, Startup
from service.routing.policy import Policy

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=timezone.utc)


def server(cores=1, in_flight=0.0, server_id="connect-1", max_executors=4) -> rules.ServerFacts:
    return rules.ServerFacts(last_heartbeat_at=NOW - timedelta(seconds=3), draining=False, executors=cores,
                             executor_cores=cores, max_executors=max_executors, server_id=server_id,
                             in_flight_cores=in_flight)


def connect_run(wall_s=60, startup_s=2, task_s=58, spill=0) -> RunSummary:
    return RunSummary(task_time_ms=task_s * 1000, shuffle_write_bytes=0, disk_spilled_bytes=spill,
                      peak_execution_memory_bytes=0, duration_ms=wall_s * 1000, mode="connect",
                      startup_ms=startup_s * 1000, executor_core_s=float(task_s))


STARTUP_38 = ClusterFacts(standalone_startup=Startup(38, 18, 51, 6), connect_startup=Startup(2, 1, 3, 9),
                          standalone_executor_cores=2)


TYPICAL = (connect_run(),) * 3
ONE_SERVER = (server(),)


def facts(runs=TYPICAL, servers=ONE_SERVER, cluster=STARTUP_38, resources=None, **app) -> rules.DecisionFacts:
    return rules.DecisionFacts(now=NOW, requested_mode=app.pop("mode", "auto"),
                               resources=resources or rules.Resources(num_executors=2, executor_cores=1),
                               app=rules.AppAggregates(recent_runs=runs, **app), servers=servers,
                               cluster=cluster)


def test_a_heavy_app_stays_on_connect_when_a_separate_application_costs_more():
    verdict = rules.decide(facts(), Policy())
    assert verdict.mode == "connect" and verdict.reasons[0].rule == "cost-aware"
    message = verdict.reasons[0].message
    # Both predictions and the start-up, in one sentence.
    assert message.startswith("Connect: predicted 60 s ±20% and 58 core-s on connect-1")
    assert "against 67 s ±70% and 134 core-s standalone (incl. 38 s start-up)" in message
    assert message.endswith("objective balanced (0.5 time, 0.5 core-s).")
    assert verdict.server_id == "connect-1" and verdict.predicted_cores > 0


# A long run that kept 2 cores busy, now on a server whose 2 cores are half taken by runs in flight.
LONG = (connect_run(wall_s=302, startup_s=2, task_s=600),) * 3
LOADED = (server(cores=2, in_flight=2.0),)


@pytest.mark.parametrize(("objective", "expected"), [("makespan", "standalone"), ("cost", "connect"),
                                                     ("balanced", "standalone")])
def test_the_objective_knob_picks(objective, expected):
    verdict = rules.decide(facts(runs=LONG, servers=LOADED, resources=rules.Resources(num_executors=4,
                                                                                      executor_cores=1)),
                           Policy(objective=objective))
    assert verdict.mode == expected and verdict.reasons[0].rule == "cost-aware"
    assert verdict.reasons[0].metric == f"objective_{objective}"
    # the chosen mode's score is the better
    assert verdict.reasons[0].observed <= verdict.reasons[0].threshold


def test_a_standalone_verdict_names_its_startup_first():
    verdict = rules.decide(facts(runs=LONG, servers=LOADED, resources=rules.Resources(num_executors=4,
                                                                                      executor_cores=1)),
                           Policy(objective="makespan"))
    assert verdict.reasons[0].message.startswith("Standalone: predicted 188 s ±70% and 752 core-s standalone "
                                                 "(incl. 38 s start-up) against 602 s ±20% and 600 core-s on "
                                                 "connect-1")


def test_the_load_on_the_server_moves_the_choice():
    # Standalone on 2 cores: 38 s + 300 s; Connect: 302 s on an idle server, 602 s when its cores are shared.
    policy, resources = Policy(objective="makespan"), rules.Resources(num_executors=2, executor_cores=1)
    assert rules.decide(facts(runs=LONG, servers=(server(cores=2),), resources=resources),
                        policy).mode == "connect"
    assert rules.decide(facts(runs=LONG, servers=LOADED, resources=resources), policy).mode == "standalone"


def test_the_hard_rules_come_first():
    policy = Policy(objective="makespan", history={"thresholds": {"disk_spilled_bytes": 100}})
    spilling = (connect_run(spill=1000),) * 3
    assert rules.decide(facts(runs=spilling), policy).reasons[0].rule == "history-over-threshold"
    assert rules.decide(facts(pinned_mode="connect", runs=LONG, servers=LOADED),
                        policy).reasons[0].rule == "admin-pin"
    assert rules.decide(facts(connect_incompatible="x.py:1 sc", runs=LONG), policy).mode == "standalone"
    assert rules.decide(facts(mode="connect", runs=LONG, servers=LOADED), policy).reasons[0].rule == "forced"
    big = rules.Resources(executor_memory=64 << 30)
    assert rules.decide(facts(resources=big), policy).reasons[0].rule == "needs-own-application"


def test_objective_off_leaves_the_threshold_rules_alone():
    verdict = rules.decide(facts(runs=LONG, servers=LOADED), Policy(objective="off"))
    assert verdict.mode == "connect" and verdict.reasons[0].rule == "within-limits"
    assert verdict.predictions.connect is not None  # predicted and stored all the same


def test_without_a_measured_standalone_startup_the_rule_steps_aside():
    verdict = rules.decide(facts(cluster=ClusterFacts()), Policy())
    assert verdict.reasons[0].rule == "within-limits"
    assert verdict.predictions.standalone is None and "start-up" in verdict.predictions.note


def test_a_new_app_gets_no_prediction_and_the_new_app_mode():
    verdict = rules.decide(facts(runs=()), Policy())
    assert verdict.reasons[0].rule == "no-history"
    assert verdict.predictions.connect is None and "No successful run yet" in verdict.predictions.note


def test_every_verdict_carries_predictions_on_the_server_it_was_placed_on():
    pool = (server(server_id="connect-a", in_flight=0.9), server(server_id="connect-b"))
    verdict = rules.decide(facts(servers=pool), Policy())
    assert verdict.server_id == "connect-b" and verdict.predictions.connect.server_id == "connect-b"
    standalone = rules.decide(facts(mode="standalone"), Policy())
    assert standalone.predictions.standalone is not None and standalone.predictions.connect is not None


def test_no_server_can_take_a_run_no_connect_prediction():
    down = rules.ServerFacts(last_heartbeat_at=None, draining=False, server_id="connect-1")
    verdict = rules.decide(facts(servers=(down,)), Policy())
    assert verdict.mode == "standalone" and verdict.predictions.connect is None


def test_requested_cores_need_both_figures():
    assert rules.requested_cores(rules.Resources(num_executors=3, executor_cores=2)) == 6
    assert rules.requested_cores(rules.Resources(num_executors=3)) is None


def test_connect_load_uses_held_cores_else_one_executor_else_capacity():
    policy = Policy()
    assert rules.connect_load(server(cores=3), policy).cores == 3
    assert rules.connect_load(server(cores=0), policy).cores == policy.server.executor_cores
    local = rules.ServerFacts(NOW, False)
    assert rules.connect_load(local, policy).cores == policy.capacity.cores


def test_the_cost_aware_rule_is_correct_alone():
    assert rules.cost_aware(facts(runs=()), Policy()) is None
    assert rules.cost_aware(facts(), Policy(objective="off")) is None
    assert rules.cost_aware(facts(), Policy()).mode == "connect"


def test_predictions_stand_on_the_apps_latest_runs_in_the_prediction_window():
    """history.prediction_window (3): a run's wall time follows the load of the day, so the latest runs say
    the most about the next; the median of the last 3 still forgives one odd run."""
    earlier, latest = (connect_run(wall_s=10, task_s=8),) * 7, (connect_run(wall_s=20, task_s=16),) * 3
    predicted = rules.decide(facts(runs=earlier + latest), Policy()).predictions.connect
    assert predicted.wall_s == 20 and predicted.basis == "3 Connect runs"
    one_odd = earlier + latest[:2] + (connect_run(wall_s=90, task_s=80),)
    assert rules.decide(facts(runs=one_odd), Policy()).predictions.connect.wall_s == 20
    # The knob, never beyond the history window.
    wider = Policy.model_validate({"history": {"prediction_window": 10}})
    assert rules.decide(facts(runs=earlier + latest), wider).predictions.connect.basis == "10 Connect runs"
    narrow = Policy.model_validate({"history": {"window": 2, "prediction_window": 5}})
    assert rules.decide(facts(runs=earlier + latest), narrow).predictions.connect.basis == "2 Connect runs"
