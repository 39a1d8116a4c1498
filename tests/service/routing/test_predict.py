"""Predictions per mode and the choice by objective: pure functions over facts."""

from __future__ import annotations

import pytest

from service.routing import predict
from service.routing.facts import AppFacts, Calibration, ClusterFacts, ModeFacts, Startup
from service.routing.predict import ConnectLoad, Prediction, Predictions


def mode(name="connect", runs=3, wall_s=20.0, startup_s=2.0, task_s=18.0, core_s=None, executors=None,
         spread=0.0) -> ModeFacts:
    work = wall_s - (startup_s or 0.0)
    return ModeFacts(mode=name, runs=runs, wall_s=wall_s, wall_spread=spread, startup_s=startup_s,
                     work_s=work, task_s=task_s, parallelism=task_s / work if work else 0.0,
                     shuffle_write_bytes=0, disk_spilled_bytes=0, peak_execution_memory_bytes=0,
                     executors=executors, core_s=task_s if core_s is None and name == "connect" else core_s)


def cluster(standalone_s=30.0, connect_s=2.0, cores=2.0, connect_calibration=None,
            standalone_calibration=None) -> ClusterFacts:
    return ClusterFacts(
        standalone_startup=None if standalone_s is None
        else Startup(standalone_s, standalone_s, standalone_s, 5),
        connect_startup=None if connect_s is None else Startup(connect_s, connect_s, connect_s, 5),
        standalone_executor_cores=cores,
        connect_calibration=None if connect_calibration is None else Calibration(connect_calibration, 12),
        standalone_calibration=(None if standalone_calibration is None
                                else Calibration(standalone_calibration, 7)))


IDLE = ConnectLoad("connect-1", cores=2.0, in_flight_cores=0.0)


# ------------------------------------------------------------------------------------------------- pieces

def test_share_of_an_idle_server_is_what_the_run_needs_up_to_its_cores():
    assert predict.connect_share(1.0, cores=2, in_flight_cores=0) == 1.0
    assert predict.connect_share(3.0, cores=2, in_flight_cores=0) == 2.0


def test_share_falls_with_the_load_in_proportion_to_demand():
    assert predict.connect_share(2.0, cores=2, in_flight_cores=2.0) == 1.0
    assert predict.connect_share(1.0, cores=4, in_flight_cores=3.0) == 1.0
    assert predict.connect_share(0.0, cores=4, in_flight_cores=0.0) == 0.0


def test_work_slows_in_proportion_when_the_run_gets_fewer_cores():
    assert predict.slowed_work_s(10, demand=2, cores=1) == 20
    assert predict.slowed_work_s(10, demand=2, cores=4) == 10
    assert predict.slowed_work_s(10, demand=0, cores=1) == 10


@pytest.mark.parametrize(("runs", "spread", "cross", "expected"), [
    (1, 0.0, False, 0.35), (3, 0.0, False, 0.2), (3, 0.3, False, 0.6), (3, 0.0, True, 0.7),
    (1, 0.0, True, 0.85)])
def test_uncertainty(runs, spread, cross, expected):
    assert predict.uncertainty(mode(runs=runs, spread=spread), cross) == pytest.approx(expected)


def test_error_pct():
    assert predict.error_pct(12, 10) == 20.0
    assert predict.error_pct(8, 10) == -20.0
    assert predict.error_pct(None, 10) is None and predict.error_pct(5, 0) is None
    assert predict.error_pct(5, None) is None


# ------------------------------------------------------------------------------------------------ Connect

def test_connect_from_its_own_runs_on_an_idle_server():
    p = predict.predict_connect(AppFacts(connect=mode()), cluster(), IDLE)
    assert (p.wall_s, p.core_s, p.startup_s, p.cross_mode) == (20.0, 18.0, 2.0, False)
    assert p.server_id == "connect-1" and p.basis == "3 Connect runs"


def test_connect_is_slower_on_a_loaded_server():
    app = AppFacts(connect=mode(wall_s=20, startup_s=2, task_s=36))  # kept 2 cores busy for 18 s
    idle = predict.predict_connect(app, cluster(), IDLE)
    loaded = predict.predict_connect(app, cluster(), ConnectLoad("connect-1", 2.0, in_flight_cores=2.0))
    assert idle.wall_s == 20 and loaded.wall_s == 2 + 36  # half the cores: twice the work time
    assert loaded.core_s == idle.core_s == 36  # the same work, whatever the wait
    assert loaded.cores == 1.0 and loaded.in_flight_cores == 2.0


def test_connect_from_standalone_runs_uses_the_clusters_connect_startup_and_says_so():
    app = AppFacts(standalone=mode("standalone", wall_s=60, startup_s=30, task_s=30, core_s=120))
    p = predict.predict_connect(app, cluster(connect_s=3), ConnectLoad("c", cores=1.0, in_flight_cores=0))
    assert p.cross_mode and "not seen in the other mode" in p.basis
    assert p.startup_s == 3 and p.wall_s == 3 + 30 and p.core_s == 30  # its task time, on the cores it gets
    assert p.uncertainty == pytest.approx(0.2 + predict.CROSS_MODE_UNCERTAINTY)


def test_connect_without_any_measured_startup_counts_none():
    app = AppFacts(standalone=mode("standalone", wall_s=60, startup_s=30, task_s=30))
    assert predict.predict_connect(app, cluster(connect_s=None), IDLE).startup_s == 0.0


def test_no_connect_prediction_for_an_app_never_seen():
    assert predict.predict_connect(AppFacts(), cluster(), IDLE) is None


# ---------------------------------------------------------------------------------------------- standalone

def test_standalone_from_its_own_runs_pays_the_clusters_startup_now():
    app = AppFacts(standalone=mode("standalone", wall_s=50, startup_s=20, task_s=40, core_s=90))
    p = predict.predict_standalone(app, cluster(standalone_s=38), cores=None)
    assert p.wall_s == 38 + 30 and p.core_s == 90 and p.startup_s == 38 and not p.cross_mode


def test_standalone_without_measured_core_seconds_holds_its_cores_for_its_life():
    app = AppFacts(standalone=mode("standalone", wall_s=50, startup_s=20, task_s=40, core_s=None))
    p = predict.predict_standalone(app, cluster(standalone_s=20, cores=2), cores=None)
    assert p.core_s == 2 * 50


def test_standalone_from_connect_runs_spreads_task_time_over_its_cores():
    app = AppFacts(connect=mode(wall_s=20, startup_s=2, task_s=40))
    p = predict.predict_standalone(app, cluster(standalone_s=30), cores=4)
    assert p.cross_mode and p.cores == 4
    assert p.wall_s == 30 + 10 and p.core_s == 4 * 40


def test_standalone_cores_default_to_what_standalone_runs_held_else_one():
    app = AppFacts(connect=mode(task_s=20))
    assert predict.predict_standalone(app, cluster(cores=2), cores=None).cores == 2
    assert predict.predict_standalone(app, cluster(cores=None), cores=None).cores == 1


def test_no_standalone_prediction_without_a_measured_startup():
    app = AppFacts(connect=mode())
    assert predict.predict_standalone(app, cluster(standalone_s=None), cores=2) is None


def test_an_app_seen_standalone_uses_its_own_startup_when_the_cluster_has_none():
    app = AppFacts(standalone=mode("standalone", wall_s=50, startup_s=20, task_s=40, core_s=60))
    assert predict.predict_standalone(app, cluster(standalone_s=None), None).wall_s == 50


# ------------------------------------------------------------------------------------------------- both

def test_never_seen_app_gets_no_prediction_and_says_so():
    predictions = predict.predict(AppFacts(), cluster(), IDLE, None)
    assert predictions.connect is None and predictions.standalone is None
    assert "No successful run yet" in predictions.note
    assert predictions.as_json() == {"connect": None, "standalone": None, "note": predictions.note}


def test_predict_says_why_a_mode_is_missing():
    predictions = predict.predict(AppFacts(connect=mode()), cluster(standalone_s=None), None, None)
    assert predictions.connect is None and predictions.standalone is None
    assert predictions.note == ("No Connect server can take a run now; no standalone run has measured this "
                                "cluster's start-up yet.")


def test_as_json_rounds_and_keeps_every_field():
    stored = predict.predict(AppFacts(connect=mode(task_s=18.123456)), cluster(), IDLE, None).as_json()
    assert stored["connect"]["core_s"] == 18.12 and stored["connect"]["mode"] == "connect"
    assert set(stored["standalone"]) == set(Prediction.__dataclass_fields__)


# --------------------------------------------------------------------------------------------- the choice

def two(connect_wall, connect_core, standalone_wall, standalone_core) -> Predictions:
    def p(name, wall, core):
        return Prediction(name, wall, core, 0.2, "x", False, 0.0, 1.0)
    return Predictions(p("connect", connect_wall, connect_core),
                       p("standalone", standalone_wall, standalone_core))


@pytest.mark.parametrize(("objective", "expected"), [("makespan", "standalone"), ("cost", "connect"),
                                                     ("balanced", "connect")])
def test_the_objective_decides(objective, expected):
    predictions = two(100, 50, 60, 240)  # standalone quicker, Connect far cheaper
    assert predict.better_mode(predictions, objective, 0.5) == expected


def test_balanced_weighs_time_and_cost():
    predictions = two(100, 50, 40, 60)  # standalone 2.5x quicker, 1.2x the cost
    assert predict.better_mode(predictions, "balanced", 0.5) == "standalone"
    assert predict.better_mode(predictions, "balanced", 0.0) == "connect"  # all weight on core-seconds


def test_a_tie_stays_on_connect():
    assert predict.better_mode(two(10, 10, 10, 10), "balanced", 0.5) == "connect"


def test_no_choice_without_both_or_with_the_objective_off():
    assert predict.better_mode(Predictions(connect=two(1, 1, 1, 1).connect), "balanced", 0.5) is None
    assert predict.better_mode(two(100, 50, 1, 1), "off", 0.5) is None


def test_balanced_score_is_one_for_the_best_on_both():
    predictions = two(10, 10, 20, 40)
    assert predict.score(predictions.connect, predictions.standalone, "balanced", 0.5) == 1.0
    assert predict.score(predictions.standalone, predictions.connect, "balanced", 0.5) == 0.5 * 2 + 0.5 * 4


# ------------------------------------------------------------------------------------------- calibration

def test_a_calibration_scales_the_wall_time_of_its_mode_only():
    app = AppFacts(connect=mode("connect", wall_s=10, startup_s=2, task_s=8), standalone=mode(
        "standalone", wall_s=40, startup_s=30, task_s=10, core_s=80))
    plain = predict.predict(app, cluster(), IDLE, None)
    scaled = predict.predict(app, cluster(connect_calibration=1.5, standalone_calibration=0.5), IDLE, None)
    assert scaled.connect.wall_s == pytest.approx(1.5 * plain.connect.wall_s)
    assert scaled.standalone.wall_s == pytest.approx(0.5 * plain.standalone.wall_s)
    # Core-seconds are measured, not timed: no calibration; the start-up stays the measured one.
    assert scaled.connect.core_s == plain.connect.core_s
    assert scaled.standalone.core_s == plain.standalone.core_s
    assert scaled.standalone.startup_s == plain.standalone.startup_s == 30
    assert (scaled.connect.calibration, scaled.standalone.calibration) == (1.5, 0.5)
    assert (plain.connect.calibration, plain.standalone.calibration) == (1.0, 1.0)


def test_the_basis_says_the_calibration():
    app = AppFacts(connect=mode("connect"), standalone=None)
    scaled = predict.predict(app, cluster(connect_calibration=1.5, standalone_calibration=0.8), IDLE, None)
    assert scaled.connect.basis == ("3 Connect runs, ×1.50 as the last 12 Connect runs here took against "
                                    "their predictions")
    assert scaled.standalone.basis == ("from 3 Connect runs (not seen in the other mode), ×0.80 as the last "
                                       "7 standalone runs here took against their predictions")
    assert predict.predict(app, cluster(), IDLE, None).connect.basis == "3 Connect runs"
    assert scaled.as_json()["connect"]["calibration"] == 1.5
