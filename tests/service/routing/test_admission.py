"""The admission queue's pure functions: expected remaining time, predicted wait, the pool with the runs ahead
placed, and the choice to wait."""

from __future__ import annotations

from datetime import timedelta

from service.db.models import utcnow
from service.routing import admission, rules
from service.routing.admission import InProgress, Queued
from service.routing.policy import Policy

NOW = utcnow()


def running(expected_s, elapsed_s, server_id="a") -> InProgress:
    return InProgress(server_id, expected_s, elapsed_s)


def queued(expected_s, cores=1.0, run_id="q") -> Queued:
    return Queued(run_id, cores, expected_s, NOW)


def server(server_id="a", runs=0, max_runs=1, cores=0.0, draining=False, beat_age_s=1.0) -> rules.ServerFacts:
    return rules.ServerFacts(NOW - timedelta(seconds=beat_age_s), draining, executors=2, executor_cores=8,
                             server_id=server_id, in_flight_cores=cores, in_flight_runs=runs,
                             max_runs=max_runs)


def test_remaining_time_is_the_apps_wall_time_less_what_it_ran():
    assert admission.remaining_s(running(60, 20)) == 40
    assert admission.remaining_s(running(60, 0)) == 60
    assert admission.remaining_s(running(None, 5)) is None  # no Connect history: nothing to go by
    assert admission.remaining_s(running(60, 60)) is None  # outlived its app's runs: no prediction
    assert admission.remaining_s(running(60, 90)) is None


def test_the_wait_is_the_first_room_to_open():
    assert admission.predicted_wait_s([running(60, 20), running(30, 25)], []) == 5
    assert admission.predicted_wait_s([running(60, 20), running(None, 1)], []) == 40


def test_runs_ahead_take_the_first_rooms_in_order():
    # One server slot freeing at 10 s; the run ahead takes it for its 30 s: this one gets room at 40 s.
    assert admission.predicted_wait_s([running(20, 10)], [queued(30)]) == 40
    # Two slots (10 s and 15 s): the run ahead takes the first, this one the second.
    assert admission.predicted_wait_s([running(20, 10), running(20, 5)], [queued(30)]) == 15
    # Two ahead on one slot: 10, then +5, then +7.
    assert admission.predicted_wait_s([running(20, 10)], [queued(5), queued(7)]) == 22


def test_rooms_open_now_go_first():
    # A room free now: the run ahead takes it; this one gets the holder's in 10 s.
    assert admission.predicted_wait_s([running(20, 10)], [queued(30)], free_now=1) == 10
    assert admission.predicted_wait_s([], [queued(30)], free_now=1) == 30
    assert admission.predicted_wait_s([], [], free_now=1) == 0
    pool = (server("a", runs=0, max_runs=2), server("b", runs=1, max_runs=1), server("c", draining=True))
    assert admission.rooms_free(pool, 1.0, NOW, Policy()) == 2
    assert admission.rooms_free(pool, 5.0, NOW, Policy()) == 1  # 8 cores of a: one run of 5


def test_no_prediction_without_a_run_to_go_by():
    assert admission.predicted_wait_s([], []) is None
    assert admission.predicted_wait_s([running(None, 3)], []) is None
    # The run ahead has no history: it holds the only room past any prediction.
    assert admission.predicted_wait_s([running(20, 10)], [queued(None)]) is None


def test_runs_ahead_are_placed_first_come_first_served():
    pool = (server("a", runs=0, max_runs=1), server("b", runs=0, max_runs=1))
    placed, waiting = admission.place_ahead(pool, [queued(10, run_id="1"), queued(10, run_id="2")], NOW,
                                            Policy())
    assert [s.in_flight_runs for s in placed] == [1, 1] and waiting == 0
    placed, waiting = admission.place_ahead(pool, [queued(10, run_id=str(i)) for i in range(3)], NOW,
                                            Policy())
    assert waiting == 1  # the third finds no room


def test_once_a_run_ahead_has_no_room_every_run_behind_it_waits():
    pool = (server("a", runs=0, max_runs=2),)
    # The first needs 9 cores of the server's 8: it waits, and so does the small one behind it.
    placed, waiting = admission.place_ahead(pool, [queued(10, cores=9), queued(10, cores=1)], NOW, Policy())
    assert waiting == 2 and placed[0].in_flight_runs == 0


def test_a_draining_or_silent_server_takes_no_queued_run():
    pool = (server("a", draining=True), server("b", beat_age_s=600))
    placed, waiting = admission.place_ahead(pool, [queued(10)], NOW, Policy())
    assert waiting == 1 and placed == pool
    assert not admission.fits_when_idle(pool, 1, NOW, Policy())
    assert admission.fits_when_idle((server("c", runs=1),), 8, NOW, Policy())
    assert not admission.fits_when_idle((server("c", runs=1),), 9, NOW, Policy())  # more than it has


def test_waits_only_when_room_comes_sooner_than_a_standalone_start_up():
    choice = admission.choose(12, 30, queue_length=1, max_length=10, fits=True)
    assert choice.wait and "position 2" in choice.message and "12 s" in choice.message
    assert not admission.choose(30, 30, 0, 10, True).wait
    assert not admission.choose(None, 30, 0, 10, True).wait
    assert "full (10 runs)" in admission.choose(1, 30, 10, 10, True).message
    assert not admission.choose(1, 30, 0, 0, True).wait  # max length 0: no queue
    assert not admission.choose(1, 30, 0, 10, fits=False).wait


def test_the_rules_see_no_room_past_the_run_limit_and_behind_the_queue():
    app = rules.AppAggregates(recent_runs=(rules.RunSummary(1000, 0, 0, 0, 60_000),))
    facts = rules.DecisionFacts(now=NOW, requested_mode="auto", resources=rules.Resources(), app=app,
                                servers=(server("a", runs=1, max_runs=1),))
    verdict = rules.decide(facts, Policy())
    assert (verdict.mode, verdict.reasons[0].rule, verdict.reasons[0].observed) == ("standalone",
                                                                                    "over-capacity", 1)
    assert "as many as it takes at once (1" in verdict.reasons[0].message
    roomy = rules.DecisionFacts(now=NOW, requested_mode="auto", resources=rules.Resources(), app=app,
                                servers=(server("a", runs=0, max_runs=1),), queued_ahead=2)
    verdict = rules.decide(roomy, Policy())
    assert verdict.reasons[0].rule == "queue-ahead" and verdict.reasons[0].message.startswith("2 runs wait")
    # Forced to Connect: as before, the queue does not hold it.
    forced = rules.DecisionFacts(now=NOW, requested_mode="connect", resources=rules.Resources(), app=app,
                                 servers=(server("a", runs=1, max_runs=1),), queued_ahead=3)
    assert rules.decide(forced, Policy()).mode == "connect"


def test_a_new_app_takes_its_turn_behind_the_run_limit_and_the_queue():
    new = rules.AppAggregates()

    def decide(servers, queued_ahead=0, policy=None):
        return rules.decide(rules.DecisionFacts(now=NOW, requested_mode="auto", resources=rules.Resources(),
                                                app=new, servers=servers, queued_ahead=queued_ahead),
                            policy or Policy())

    # A run slot free: the mode of new apps, whatever the guessed cores of the runs in flight.
    verdict = decide((server("a", runs=0, max_runs=1, cores=8.0),))
    assert (verdict.mode, verdict.reasons[0].rule) == ("connect", "no-history")
    verdict = decide((server("a", runs=1, max_runs=1), server("b", runs=0, max_runs=1)))
    assert (verdict.mode, verdict.reasons[0].rule, verdict.server_id) == ("connect", "no-history", "b")
    # Every slot taken: no room, as for any run (so it may wait in the queue), not past the driver's bound.
    verdict = decide((server("a", runs=1, max_runs=1),))
    assert (verdict.mode, verdict.reasons[0].rule) == ("standalone", "over-capacity")
    assert verdict.predicted_cores == Policy().capacity.default_run_cores
    # Runs wait ahead: it does not jump them.
    verdict = decide((server("a", runs=0, max_runs=1),), queued_ahead=1)
    assert (verdict.mode, verdict.reasons[0].rule) == ("standalone", "queue-ahead")
    # A draining server's free slot is no room; new apps that go standalone anyway are not held at all.
    verdict = decide((server("a", runs=1, max_runs=1), server("b", runs=0, max_runs=1, draining=True)))
    assert verdict.reasons[0].rule == "over-capacity"
    standalone_first = Policy.model_validate({"new_app_mode": "standalone"})
    verdict = decide((server("a", runs=1, max_runs=1),), queued_ahead=2, policy=standalone_first)
    assert (verdict.mode, verdict.reasons[0].rule) == ("standalone", "no-history")


def test_placement_prefers_a_server_with_a_free_run_slot():
    app = rules.AppAggregates(recent_runs=(rules.RunSummary(1000, 0, 0, 0, 60_000),))
    full = server("a", runs=1, max_runs=1)  # more free cores, but no run slot
    slot = server("b", runs=0, max_runs=1, cores=4)
    verdict = rules.decide(rules.DecisionFacts(now=NOW, requested_mode="auto", resources=rules.Resources(),
                                               app=app, servers=(full, slot)), Policy())
    assert verdict.mode == "connect" and verdict.server_id == "b"


def test_a_run_is_abandoned_once_silent_and_past_the_longest_wait():
    silent_after, deadline = 45, NOW - timedelta(seconds=1)
    asked = NOW - timedelta(seconds=60)
    assert admission.abandoned(asked, deadline, NOW, silent_after)
    # Still asking (within a long poll and the grace): not abandoned, whatever its deadline.
    assert not admission.abandoned(NOW - timedelta(seconds=30), deadline, NOW, silent_after)
    # Silent, but its longest wait is not up: it holds nobody back (not live) and may still come back.
    assert not admission.abandoned(asked, NOW + timedelta(seconds=10), NOW, silent_after)
    # The router was away until 20 s ago: nobody could ask it; its clients get the time to ask again.
    assert not admission.abandoned(asked, deadline, NOW, silent_after, up_since=NOW - timedelta(seconds=20))
    assert admission.abandoned(asked, deadline, NOW, silent_after, up_since=NOW - timedelta(seconds=50))
    message = admission.abandoned_message(61.4, 300)
    assert message.startswith("Its client stopped asking for its admission 61 s ago") and "(300 s," in message
