"""The routing rules, as pure functions: no Spark, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from service.routing import rules
from service.routing.policy import Policy, PolicyError, load_policy, parse_size

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
HEALTHY = rules.ServerFacts(last_heartbeat_at=NOW - timedelta(seconds=5), draining=False)
LIGHT = rules.RunSummary(task_time_ms=240_000, shuffle_write_bytes=10 << 20, disk_spilled_bytes=0,
                     peak_execution_memory_bytes=64 << 20, duration_ms=120_000)


def facts(mode="auto", resources=None, server=HEALTHY, in_flight=0.0, servers=None,
          **app) -> rules.DecisionFacts:
    """One server (None: the default server, never heard from) with `in_flight` cores of load, or a pool."""
    app.setdefault("recent_runs", (LIGHT,) * 5)
    if servers is None:
        servers = (replace(server or rules.ServerFacts(last_heartbeat_at=None, draining=False),
                           in_flight_cores=in_flight),)
    return rules.DecisionFacts(now=NOW, requested_mode=mode, resources=resources or rules.Resources(),
                               app=rules.AppAggregates(**app), servers=tuple(servers))


def decide(f: rules.DecisionFacts, policy: Policy | None = None) -> rules.Verdict:
    return rules.decide(f, policy or Policy())


@pytest.mark.parametrize("text, expected", [
    ("4g", 4 << 30), ("4096m", 4 << 30), ("512k", 512 << 10), ("1t", 1 << 40), ("100", 100), (2048, 2048),
    ("1.5g", int(1.5 * (1 << 30))), ("4G", 4 << 30), ("4gb", 4 << 30),
])
def test_sizes_in_sparks_forms(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["lots", "-4g", "", "4x", -1, True])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_light_app_with_healthy_server_goes_connect_and_says_why():
    verdict = decide(facts())
    assert verdict.mode == "connect"
    assert {r.metric for r in verdict.reasons if r.rule == "within-limits"} == set(rules.HISTORY_METRICS)
    task_time = next(r for r in verdict.reasons if r.metric == "task_time_ms")
    assert task_time.observed == 240_000 and "under" in task_time.message


def test_admin_pin_wins_over_everything():
    verdict = decide(facts(pinned_mode="standalone", pin_reason="noisy neighbour", mode="connect"))
    assert verdict.mode == "standalone"
    assert verdict.reasons[0].rule == "admin-pin" and "noisy neighbour" in verdict.reasons[0].message
    assert decide(facts(pinned_mode="connect", server=None)).mode == "connect"


def test_forced_mode_is_followed():
    assert decide(facts(mode="standalone")).reasons[0].rule == "forced"
    verdict = decide(facts(mode="connect", connect_failure_streak=5, last_connect_failure_at=NOW))
    assert verdict.mode == "connect" and not verdict.grants_retry


def test_incompatible_app_goes_standalone_without_a_connect_attempt():
    verdict = decide(facts(connect_incompatible="sparkContext at app.py:3"))
    assert verdict.mode == "standalone" and verdict.reasons[0].rule == "connect-incompatible"
    assert "app.py:3" in verdict.reasons[0].message


def test_failure_streak_sends_standalone_until_the_cooldown():
    below = facts(connect_failure_streak=2, last_connect_failure_at=NOW - timedelta(hours=1))
    assert decide(below).mode == "connect"
    streak = facts(connect_failure_streak=3, last_connect_failure_at=NOW - timedelta(days=59))
    verdict = decide(streak)
    assert verdict.mode == "standalone" and verdict.reasons[0].rule == "connect-failure-streak"
    assert verdict.reasons[0].observed == 3 and verdict.reasons[0].threshold == 3


def test_after_the_cooldown_one_connect_try():
    cooled = facts(connect_failure_streak=3, last_connect_failure_at=NOW - timedelta(days=61))
    verdict = decide(cooled)
    assert verdict.mode == "connect" and verdict.grants_retry
    assert verdict.reasons[0].rule == "connect-retry"
    # While that try runs, the next run goes standalone.
    pending = facts(connect_failure_streak=3, last_connect_failure_at=NOW - timedelta(days=61),
                    retry_granted_at=NOW - timedelta(minutes=5))
    verdict = decide(pending)
    assert verdict.mode == "standalone" and "already under way" in verdict.reasons[0].message
    # A try that never reported back stops blocking after the in-flight age.
    stale = facts(connect_failure_streak=3, last_connect_failure_at=NOW - timedelta(days=61),
                  retry_granted_at=NOW - timedelta(days=1))
    assert decide(stale).grants_retry


def test_cooldown_is_a_knob():
    policy = Policy(connect_failures={"max_consecutive": 1, "cooldown_days": 1})
    assert decide(facts(connect_failure_streak=1, last_connect_failure_at=NOW - timedelta(hours=2)),
                  policy).mode == "standalone"
    assert decide(facts(connect_failure_streak=1, last_connect_failure_at=NOW - timedelta(days=2)),
                  policy).mode == "connect"


def test_unhealthy_or_draining_server_sends_standalone():
    stale = rules.ServerFacts(last_heartbeat_at=NOW - timedelta(seconds=90), draining=False)
    verdict = decide(facts(server=stale))
    assert verdict.mode == "standalone" and verdict.reasons[0].rule == "server-unhealthy"
    assert verdict.reasons[0].observed == 90.0
    assert decide(facts(server=None)).reasons[0].rule == "server-unhealthy"
    draining = rules.ServerFacts(last_heartbeat_at=NOW, draining=True)
    assert decide(facts(server=draining)).reasons[0].rule == "server-draining"


def test_requests_beyond_the_shared_server_go_standalone():
    big = rules.Resources(executor_memory=parse_size("8g"), executor_cores=8, num_executors=50,
                      spark_conf={"spark.executor.memoryOverhead": "2g",
                                  "spark.sql.shuffle.partitions": "400", "spark.jars.packages": "x:y:1"})
    verdict = decide(facts(resources=big))
    assert verdict.mode == "standalone"
    flagged = {(r.metric, r.observed) for r in verdict.reasons}
    assert ("executor_memory", 8 << 30) in flagged and ("executor_cores", 8) in flagged
    assert ("num_executors", 50) in flagged
    assert ("spark_conf", "spark.executor.memoryOverhead") in flagged and ("spark_conf",
                                                                           "spark.jars.packages") in flagged
    assert ("spark_conf", "spark.sql.shuffle.partitions") not in flagged


def test_requests_within_the_server_stay_connect():
    fits = rules.Resources(executor_memory=parse_size("4g"), driver_memory=parse_size("1g"), executor_cores=2,
                       spark_conf={"spark.sql.shuffle.partitions": "400"})
    assert decide(facts(resources=fits)).mode == "connect"


def test_new_app_gets_the_new_app_mode():
    assert decide(facts(recent_runs=())).reasons[0].rule == "no-history"
    assert decide(facts(recent_runs=()), Policy(new_app_mode="standalone")).mode == "standalone"


def heavy(**metrics) -> rules.RunSummary:
    return rules.RunSummary(**{**LIGHT.__dict__, **metrics})


@pytest.mark.parametrize("metric, value", [
    ("task_time_ms", 3 * 3600 * 1000), ("shuffle_write_bytes", parse_size("30g")),
    ("disk_spilled_bytes", parse_size("3g")), ("peak_execution_memory_bytes", parse_size("3g")),
    ("duration_ms", 2 * 3600 * 1000),
])
def test_heavy_history_goes_standalone_naming_the_metric(metric, value):
    verdict = decide(facts(recent_runs=(heavy(**{metric: value}),) * 10))
    assert verdict.mode == "standalone"
    assert [r.metric for r in verdict.reasons] == [metric]
    assert verdict.reasons[0].observed == value and metric in verdict.reasons[0].message


def test_p90_forgives_one_odd_run_and_max_does_not():
    runs = (LIGHT,) * 9 + (heavy(disk_spilled_bytes=parse_size("10g")),)
    assert decide(facts(recent_runs=runs)).mode == "connect"
    strict = Policy(history={"statistic": "max"})
    assert decide(facts(recent_runs=runs), strict).mode == "standalone"


def test_only_the_window_counts():
    old_heavy = (heavy(task_time_ms=10 * 3600 * 1000),) * 5
    runs = old_heavy + (LIGHT,) * 10
    assert decide(facts(recent_runs=runs)).mode == "connect"
    assert decide(facts(recent_runs=runs),
                  Policy(history={"window": 15, "statistic": "max"})).mode == "standalone"


def test_statistic():
    assert rules.statistic(list(range(1, 11)), "p90") == 9
    assert rules.statistic(list(range(1, 11)), "max") == 10
    assert rules.statistic([5], "p90") == 5


def test_capacity():
    # LIGHT uses 240 s of task time in 120 s: 2 cores.
    assert rules.predicted_cores(rules.AppAggregates(recent_runs=(LIGHT,)), Policy()) == 2.0
    assert decide(facts(in_flight=6.0)).mode == "connect"
    verdict = decide(facts(in_flight=6.5))
    assert verdict.mode == "standalone" and verdict.reasons[0].rule == "over-capacity"
    assert verdict.reasons[0].observed == 8.5 and verdict.reasons[0].threshold == 8


def server(executors=0, executor_cores=0, max_executors=None) -> rules.ServerFacts:
    return rules.ServerFacts(last_heartbeat_at=NOW, draining=False, executors=executors,
                             executor_cores=executor_cores, max_executors=max_executors)


@pytest.mark.parametrize("facts_of_server, cores, source", [
    # Dynamic allocation: the ceiling times the cores of the executors it holds now (2 of 3 cores each).
    (server(executors=2, executor_cores=6, max_executors=4), 12, "dynamic-allocation ceiling of 4 executors "
                                                                 "× 3"),
    # Scaled to zero: the ceiling times the policy's cores per executor (4).
    (server(max_executors=2), 8, "the policy's server.executor_cores"),
    # A fixed set of executors (local[N], or no dynamic allocation): the cores they hold.
    (server(executors=1, executor_cores=2), 2, "the 2 cores its executors hold"),
    # No ceiling set (Spark's default is unbounded) and nothing held: the policy's knob.
    (server(max_executors=2**31 - 1), 8, "the policy's capacity.cores"),
    (server(), 8, "the policy's capacity.cores"),
    (None, 8, "the policy's capacity.cores"),
])
def test_server_capacity_comes_from_its_executors_when_it_reports_them(facts_of_server, cores, source):
    capacity, why = rules.server_capacity(facts_of_server, Policy())
    assert capacity == cores and source in why


def test_over_capacity_uses_the_servers_reported_capacity_and_says_which():
    # LIGHT predicts 2 cores; a server of 2 × 1-core executors at most has room for one such run at a time.
    small = server(executors=1, executor_cores=1, max_executors=2)
    assert rules.over_capacity(facts(server=small, in_flight=0.0), Policy()) is None
    verdict = rules.over_capacity(facts(server=small, in_flight=0.5), Policy())
    assert verdict.mode == "standalone" and verdict.reasons[0].threshold == 2
    assert "dynamic-allocation ceiling of 2 executors × 1 cores" in verdict.reasons[0].message
    # The policy's knob (8) would have let it through: the server's own figure decides.
    assert rules.over_capacity(facts(server=HEALTHY, in_flight=0.5), Policy()) is None
    # A big server takes what the knob would refuse.
    big = server(executors=4, executor_cores=16, max_executors=10)
    assert rules.over_capacity(facts(server=big, in_flight=20.0), Policy()) is None
    assert "capacity.cores" in rules.over_capacity(facts(server=None, in_flight=20.0),
                                                   Policy()).reasons[0].message


def test_connect_verdicts_carry_their_predicted_load():
    assert decide(facts()).predicted_cores == 2.0
    assert decide(facts(recent_runs=())).predicted_cores == 1.0


def test_policy_file_yaml_and_toml(tmp_path):
    yaml_file = tmp_path / "policy.yaml"
    yaml_file.write_text("version: team-a\nnew_app_mode: standalone\nserver:\n  executor_memory: 16g\n"
                         "history:\n  statistic: max\n  thresholds:\n    shuffle_write_bytes: 500m\n")
    policy = load_policy(yaml_file)
    assert policy.new_app_mode == "standalone" and policy.server.executor_memory == 16 << 30
    assert policy.history.thresholds.shuffle_write_bytes == 500 << 20
    assert policy.full_version.startswith("team-a+")
    toml_file = tmp_path / "policy.toml"
    toml_file.write_text('version = "t"\n[capacity]\ncores = 32\n')
    assert load_policy(toml_file).capacity.cores == 32


@pytest.mark.parametrize("content, field", [
    ("history:\n  statistic: mean\n", "history.statistic"),
    ("server:\n  executor_memory: lots\n", "server.executor_memory"),
    ("new_app_mode: fast\n", "new_app_mode"),
    ("surprise: 1\n", "surprise"),
    ("history: [1\n", "not valid"),
])
def test_bad_policy_files_name_the_problem(tmp_path, content, field):
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(PolicyError, match=field.replace(".", r"\.")):
        load_policy(path)


def test_policy_versions_differ_when_knobs_differ():
    assert Policy().full_version != Policy(new_app_mode="standalone").full_version
    assert Policy().full_version == Policy().full_version


@pytest.mark.parametrize("rule", [*rules.RULES, rules.connect_by_default], ids=lambda rule: rule.__name__)
@pytest.mark.parametrize("app", [
    {}, {"recent_runs": (heavy(),)}, {"connect_failure_streak": 5, "last_connect_failure_at": NOW},
    {"pinned_mode": "standalone", "connect_incompatible": "x.py:1 .rdd"},
    {"last_connect_oom_at": NOW - timedelta(hours=1)},
], ids=["new app", "history", "failure streak", "pinned and flagged", "out of memory on Connect"])
def test_every_rule_is_correct_when_called_alone(rule, app):
    """No rule relies on another having run first: each gives a verdict with a reason, or None."""
    verdict = rule(facts(server=None, **app), Policy())
    assert verdict is None or (verdict.mode in ("connect", "standalone") and verdict.reasons
                               and all(reason.message for reason in verdict.reasons))


def test_an_app_that_ran_out_of_memory_on_connect_goes_standalone_for_the_policys_days():
    lately = facts(last_connect_oom_at=NOW - timedelta(hours=2))
    verdict = rules.connect_out_of_memory(lately, Policy())
    assert verdict is not None and verdict.mode == "standalone"
    reason = verdict.reasons[0]
    assert reason.rule == "connect-out-of-memory"
    assert "2.0 h ago" in reason.message and "7 days" in reason.message
    assert (reason.observed, reason.threshold) == (7200, 7 * 86400)
    # In order: it decides an app that would otherwise go to Connect, and says why first.
    assert decide(facts()).mode == "connect"
    assert decide(lately).mode == "standalone" and decide(lately).reasons[0].rule == "connect-out-of-memory"
    # After the policy's days, or with the rule off, or never out of memory: the other rules decide.
    assert rules.connect_out_of_memory(facts(last_connect_oom_at=NOW - timedelta(days=7)), Policy()) is None
    assert rules.connect_out_of_memory(lately, Policy(connect_failures={"out_of_memory_days": 0})) is None
    assert rules.connect_out_of_memory(facts(), Policy()) is None
    # A pin or a forced mode still wins.
    assert decide(replace(lately, requested_mode="connect")).mode == "connect"
    assert decide(facts(pinned_mode="connect", last_connect_oom_at=NOW)).mode == "connect"


def test_a_pinned_or_forced_connect_run_is_not_the_cooldown_try():
    cooled = {"connect_failure_streak": 3, "last_connect_failure_at": NOW - timedelta(days=61)}
    for verdict in (decide(facts(pinned_mode="connect", **cooled)), decide(facts(mode="connect", **cooled))):
        assert verdict.mode == "connect" and not verdict.chosen_by_policy and not verdict.grants_retry


def test_the_history_window_is_bounded_by_the_runs_an_app_keeps():
    from service.db.models import RECENT_RUNS_KEPT

    assert Policy(history={"window": RECENT_RUNS_KEPT}).history.window == RECENT_RUNS_KEPT
    with pytest.raises(ValidationError):
        Policy(history={"window": RECENT_RUNS_KEPT + 1})
