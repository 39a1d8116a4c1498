"""Right-sizing of standalone runs, as pure functions: no Spark, no database."""

from __future__ import annotations

import re

import pytest

from service.routing import sizing
from service.routing.policy import Policy, PolicyError, parse_policy
from service.routing.rules import Resources
from service.routing.sizing import MiB, RunUsage

GiB = 1 << 30


def policy(**knobs) -> Policy:
    history = knobs.pop("history", {})
    return parse_policy({"sizing": knobs, "history": history})


def runs(n=5, task_time_ms=60_000, spilled=0, peak=0, memory=None, cores=None) -> list[RunUsage]:
    return [RunUsage(task_time_ms, spilled, peak, memory, cores)] * n


def one_sentence(reason: str) -> bool:
    """One line, one full stop at its end (decimals such as 1.5 GiB aside)."""
    return "\n" not in reason and reason.endswith(".") and not re.search(r"\.\s+[A-Z]", reason)


# ----------------------------------------------------------------------------------------- nothing to go by

def test_no_history_gives_what_was_asked():
    asked = Resources(executor_memory=2 * GiB, num_executors=3, driver_memory=GiB)
    sized = sizing.size(asked, [], Policy())
    assert (sized.executor_memory, sized.num_executors, sized.driver_memory) == (2 * GiB, 3, GiB)
    assert sized.executor_cores is None
    assert sized.reason == "No successful run to size by; the run gets what it asked for."


def test_sizing_off_gives_what_was_asked_whatever_the_history():
    sized = sizing.size(Resources(executor_memory=512 * MiB), runs(spilled=10 * GiB, peak=GiB),
                        policy(enabled=False))
    assert sized.executor_memory == 512 * MiB and sized.num_executors is None
    assert "sizing.enabled" in sized.reason


def test_an_app_that_needs_less_than_sparks_defaults_is_left_at_them():
    sized = sizing.size(Resources(), runs(task_time_ms=0, peak=10 * MiB), Policy())
    assert (sized.executor_memory, sized.num_executors, sized.executor_cores) == (None, None, None)
    assert sized.spark_resources() == {}
    assert "Spark's default" in sized.reason and one_sentence(sized.reason)


# ------------------------------------------------------------------------------------------------- memory

def test_peak_execution_memory_sizes_the_heap_with_headroom():
    # 600 MiB a task, +25 %: 750 MiB of execution memory = 300 MiB reserved + 750 / 0.6 = 1550 MiB, rounded
    # up.
    sized = sizing.size(Resources(executor_memory=512 * MiB), runs(peak=600 * MiB), Policy())
    assert sized.executor_memory == 1600 * MiB
    assert sized.executor_cores == 1  # the cores the figure assumed, said to spark-submit
    assert "peak execution memory is 600.0 MiB" in sized.reason and one_sentence(sized.reason)


def test_more_cores_per_executor_need_more_heap():
    one = sizing.size(Resources(executor_cores=1), runs(peak=500 * MiB), Policy()).executor_memory
    four = sizing.size(Resources(executor_cores=4), runs(peak=500 * MiB), Policy()).executor_memory
    assert one == 1344 * MiB  # 300 + 625 / 0.6 = 1342 MiB, rounded up to 64 MiB
    assert four == 4480 * MiB  # 300 + 4 x 625 / 0.6 = 4467 MiB


def test_the_headroom_knob_scales_the_need():
    plain = sizing.size(Resources(executor_memory=512 * MiB), runs(peak=600 * MiB), policy(headroom=1))
    assert plain.executor_memory == 1344 * MiB  # 300 + 600 / 0.6 = 1300 MiB


def test_never_below_what_was_asked():
    sized = sizing.size(Resources(executor_memory=4 * GiB), runs(peak=10 * MiB), Policy())
    assert sized.executor_memory == 4 * GiB
    assert "4.0 GiB as asked" in sized.reason


def test_below_the_ask_when_the_policy_allows_it_down_to_the_floor():
    knobs = policy(allow_below_request=True)
    assert sizing.size(Resources(executor_memory=4 * GiB), runs(peak=300 * MiB),
                       knobs).executor_memory == 960 * MiB
    floor = sizing.size(Resources(executor_memory=4 * GiB), runs(peak=MiB), knobs)
    assert floor.executor_memory == 512 * MiB and "sizing.min_executor_memory" in floor.reason


def test_the_ceiling_caps_what_sizing_gives():
    sized = sizing.size(Resources(), runs(peak=20 * GiB), policy(max_executor_memory="6g"))
    assert sized.executor_memory == 6 * GiB
    assert "capped at sizing.max_executor_memory, 6.0 GiB" in sized.reason


def test_an_ask_over_the_ceiling_is_kept_the_developer_asked_for_it():
    sized = sizing.size(Resources(executor_memory=16 * GiB), runs(peak=20 * GiB),
                        policy(max_executor_memory="6g"))
    assert sized.executor_memory == 16 * GiB


def test_spill_grows_the_memory_a_task_had():
    # 1 GiB executors of 1 core gave a task (1024 - 300) x 0.6 MiB; twice that is 300 + 2 x 724 = 1748 MiB.
    sized = sizing.size(Resources(), runs(spilled=GiB, memory=GiB, cores=1), Policy())
    assert sized.executor_memory == 1792 * MiB
    assert "5 of them spilled up to 1.0 GiB to disk with 1.0 GiB executors of 1 core(s)" in sized.reason
    assert one_sentence(sized.reason)


def test_a_history_of_spill_sizes_a_run_up_past_what_it_asked():
    asked = Resources(executor_memory=GiB)
    history = runs(spilled=3 * GiB, memory=GiB, cores=1, peak=100 * MiB)
    assert sizing.size(asked, history, Policy()).executor_memory > GiB
    # Without the spill, the same peak needs no more than asked.
    assert sizing.size(asked, runs(memory=GiB, cores=1, peak=100 * MiB), Policy()).executor_memory == GiB


def test_spill_under_the_knob_is_noise():
    assert sizing.size(Resources(), runs(spilled=60 * MiB, memory=GiB), Policy()).executor_memory is None
    assert sizing.size(Resources(), runs(spilled=60 * MiB, memory=GiB), policy(spill_bytes=0)).executor_memory


def test_spill_of_runs_with_unknown_memory_counts_from_sparks_default():
    assert (sizing.size(Resources(), runs(spilled=GiB), Policy()).executor_memory
            == sizing.size(Resources(), runs(spilled=GiB, memory=GiB, cores=1), Policy()).executor_memory)


def test_spill_on_a_wide_executor_gives_a_narrow_one_less():
    # Spilled on 4 GiB executors of 4 cores (a Connect server's): a task had (4096 - 300) x 0.6 / 4 MiB.
    sized = sizing.size(Resources(), runs(spilled=GiB, memory=4 * GiB, cores=4), Policy())
    assert sized.executor_memory == 2240 * MiB  # 300 + 2 x 569.4 / 0.6 = 2198 MiB, rounded up


def test_the_larger_need_wins_and_is_the_one_named():
    sized = sizing.size(Resources(), runs(spilled=GiB, memory=GiB, cores=1, peak=2 * GiB), Policy())
    assert sized.executor_memory == sizing.round_up(sizing.heap_for(2 * GiB * 1.25, 1))
    assert "peak execution memory" in sized.reason and "spilled" not in sized.reason


def test_spill_growth_is_a_knob():
    sized = sizing.size(Resources(), runs(spilled=GiB, memory=GiB, cores=1), policy(spill_growth=3))
    assert sized.executor_memory == sizing.round_up(300 * MiB + 3 * 724 * MiB)


def test_p90_forgives_one_odd_run_and_max_does_not():
    history = runs(9, peak=100 * MiB) + runs(1, peak=2 * GiB)
    assert sizing.size(Resources(), history, Policy()).executor_memory is None
    strict = policy(history={"statistic": "max"})
    assert sizing.size(Resources(), history,
                       strict).executor_memory == sizing.round_up(sizing.heap_for(2.5 * GiB, 1))


def test_only_the_history_window_counts():
    history = runs(5, peak=4 * GiB) + runs(3, peak=10 * MiB)
    assert sizing.size(Resources(), history, policy(history={"window": 3})).executor_memory is None
    assert sizing.size(Resources(), history, policy(history={"window": 8})).executor_memory is not None


# ---------------------------------------------------------------------------------------------- executors

@pytest.mark.parametrize("task_minutes, cores, expected", [
    (1, 1, 1), (5, 1, 1), (6, 1, 2), (30, 1, 6), (30, 2, 3), (30, 4, 2), (600, 1, 10),
])
def test_executors_do_the_task_time_in_the_target_duration(task_minutes, cores, expected):
    sized = sizing.size(Resources(executor_cores=cores), runs(task_time_ms=task_minutes * 60_000), Policy())
    assert sized.num_executors == expected


def test_the_executor_ceiling_is_named():
    sized = sizing.size(Resources(), runs(task_time_ms=10 * 3_600_000), policy(max_executors=4))
    assert sized.num_executors == 4 and "capped at sizing.max_executors, 4" in sized.reason


def test_never_fewer_executors_than_asked_unless_allowed():
    assert sizing.size(Resources(num_executors=6), runs(), Policy()).num_executors == 6
    assert sizing.size(Resources(num_executors=6), runs(),
                       policy(allow_below_request=True)).num_executors == 1


def test_more_executors_than_asked_when_the_task_time_needs_them():
    sized = sizing.size(Resources(num_executors=2), runs(task_time_ms=60 * 60_000),
                        policy(target_duration_s=600))
    assert sized.num_executors == 6 and "task time, 60.0 min, in 10.0 min" in sized.reason


def test_an_ask_over_the_executor_ceiling_is_kept():
    assert sizing.size(Resources(num_executors=20), runs(task_time_ms=60_000), Policy()).num_executors == 20


def test_the_asked_cores_and_driver_memory_pass_through():
    sized = sizing.size(Resources(executor_cores=3, driver_memory=2 * GiB), runs(peak=GiB), Policy())
    assert (sized.executor_cores, sized.driver_memory) == (3, 2 * GiB)


# ----------------------------------------------------------------------------------------- in Spark's terms

def test_spark_resources_in_whole_mib():
    sized = sizing.Sized(1600 * MiB, 3, 1, GiB + 1, "why.")
    assert sized.spark_resources() == {"executor_memory": "1600m", "num_executors": 3, "executor_cores": 1,
                                       "driver_memory": "1025m"}
    assert sizing.Sized(None, None, None, None, "why.").spark_resources() == {}
    assert sizing.Sized(0, 0, None, None, "why.").spark_resources() == {"executor_memory": "0m",
                                                                        "num_executors": 0}


@pytest.mark.parametrize("size, expected",
                         [(GiB, "1024m"), (GiB + 1, "1025m"), (1, "1m"), (1536 * MiB, "1536m")])
def test_spark_size_rounds_up_to_whole_mib(size, expected):
    assert sizing.spark_size(size) == expected


@pytest.mark.parametrize("need", [1, 300 * MiB, 1000 * MiB, 5 * GiB])
@pytest.mark.parametrize("cores", [1, 2, 8])
def test_heap_and_task_share_are_inverse(need, cores):
    assert sizing.task_share(sizing.heap_for(need, cores), cores) == pytest.approx(need)


# ----------------------------------------------------------------------------------------- out-of-memory
# rerun

def test_an_executor_out_of_memory_reruns_with_twice_the_memory():
    sized, reason = sizing.oom_rerun(Resources(executor_memory=512 * MiB, num_executors=2, executor_cores=1),
                                     "executor", Policy())
    assert sized is not None
    assert (sized.executor_memory, sized.num_executors, sized.executor_cores) == (GiB, 2, 1)
    assert reason == sized.reason == ("The run ran out of executor memory with 512.0 MiB; rerun once with "
                                      "1.0 GiB (2x).")


def test_an_out_of_memory_rerun_stays_within_the_ceiling():
    sized, reason = sizing.oom_rerun(Resources(executor_memory=5 * GiB), "executor",
                                     policy(max_executor_memory="8g"))
    assert sized.executor_memory == 8 * GiB and "capped at sizing.max_executor_memory" in reason


def test_no_rerun_at_the_ceiling():
    sized, reason = sizing.oom_rerun(Resources(executor_memory=GiB), "executor",
                                     policy(max_executor_memory="1g"))
    assert sized is None and "already at the ceiling" in reason and one_sentence(reason)


def test_a_run_that_asked_nothing_ran_out_of_sparks_default():
    sized, _ = sizing.oom_rerun(Resources(), "executor", Policy())
    assert sized.executor_memory == 2 * GiB


def test_a_driver_out_of_memory_grows_the_driver():
    sized, reason = sizing.oom_rerun(Resources(executor_memory=GiB, driver_memory=GiB), "driver",
                                     policy(max_driver_memory="3g", oom_growth=4))
    assert (sized.executor_memory, sized.driver_memory) == (GiB, 3 * GiB)
    assert "driver memory" in reason and "sizing.max_driver_memory" in reason


def test_out_of_memory_reruns_can_be_turned_off():
    sized, reason = sizing.oom_rerun(Resources(executor_memory=GiB), "executor", policy(oom_rerun=False))
    assert sized is None and "sizing.oom_rerun" in reason


# ------------------------------------------------------------------------------------------------ the knobs

@pytest.mark.parametrize("knobs", [{"max_executor_memory": "lots"}, {"max_executors": 0}, {"headroom": 0.5},
                                   {"oom_growth": 1}, {"target_duration_s": 0}, {"spill_growth": "x"},
                                   {"colour": "blue"}])
def test_bad_knobs_are_refused_naming_them(knobs):
    with pytest.raises(PolicyError, match="sizing"):
        parse_policy({"sizing": knobs})


def test_knobs_take_sparks_size_forms():
    knobs = policy(max_executor_memory="12g", min_executor_memory="768m", spill_bytes="1g").sizing
    assert (knobs.max_executor_memory, knobs.min_executor_memory, knobs.spill_bytes) == (12 * GiB, 768 * MiB,
                                                                                         GiB)


def test_the_clusters_worker_memory_caps_sizing_and_the_rerun_below_the_policys_ceiling():
    small = policy(worker_memory="1g")  # max_executor_memory stays 8g: more than any worker here holds
    assert small.sizing.worker_memory == GiB and Policy().sizing.worker_memory is None
    sized = sizing.size(Resources(), runs(peak=2 * GiB), small)
    assert sized.executor_memory == GiB and "capped at sizing.worker_memory, 1.0 GiB" in sized.reason
    rerun, reason = sizing.oom_rerun(Resources(executor_memory=768 * MiB), "executor", small)
    assert rerun.executor_memory == GiB and "capped at sizing.worker_memory" in reason
    none, why = sizing.oom_rerun(Resources(executor_memory=GiB), "executor", small)
    assert none is None and "already at the ceiling (sizing.worker_memory, 1.0 GiB)" in why
    # The smaller of the two: a policy ceiling under the workers' memory still rules.
    assert sizing.executor_ceiling(policy(worker_memory="16g")) == (8 * GiB, "sizing.max_executor_memory")
    # A developer who asks for more than the ceiling still gets it (never below the ask).
    asked = sizing.size(Resources(executor_memory=2 * GiB), runs(peak=4 * GiB), small)
    assert asked.executor_memory == 2 * GiB
    # The driver's ceiling is its own.
    driver, _ = sizing.oom_rerun(Resources(driver_memory=GiB), "driver", small)
    assert driver.driver_memory == 2 * GiB
