"""Per-app facts per mode and the cluster's measured start-up: pure functions, and what runs store through the
real API (SQLite and PostgreSQL) for them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from service.db.models import App, Decision, Run, utcnow
from service.routing import facts
from service.routing.facts import PredictionSample, RunSummary, StartupSample

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


def run(mode="connect", wall_s=10.0, startup_s=2.0, task_s=8.0, executors=None, core_s=None,
        spill=0) -> RunSummary:
    return RunSummary(task_time_ms=int(task_s * 1000), shuffle_write_bytes=100, disk_spilled_bytes=spill,
                      peak_execution_memory_bytes=50, duration_ms=int(wall_s * 1000), mode=mode,
                      startup_ms=None if startup_s is None else int(startup_s * 1000), executors=executors,
                      executor_core_s=core_s)


def test_median_of_odd_even_and_none():
    assert facts.median([3, 1, 2]) == 2
    assert facts.median([4, 1, 3, 2]) == 2.5
    assert facts.median([]) is None


def test_an_app_seen_in_one_mode_has_no_facts_of_the_other():
    app = facts.app_facts([run("connect"), run("connect", wall_s=12)], window=10)
    assert app.connect is not None and app.standalone is None
    assert app.connect.runs == 2 and app.connect.wall_s == 11.0
    assert app.of("standalone") is None and app.seen


def test_never_seen_app_has_no_facts():
    app = facts.app_facts([], window=10)
    assert not app.seen and app.connect is None and app.standalone is None


def test_runs_of_unknown_mode_count_in_neither():
    old = RunSummary(1000, 0, 0, 0, 5000)  # kept before 0008, its run gone
    assert not facts.app_facts([old], window=10).seen


def test_work_is_wall_less_startup_and_parallelism_is_task_over_work():
    mode = facts.mode_facts([run(wall_s=10, startup_s=2, task_s=16)], "connect")
    assert mode.work_s == 8 and mode.task_s == 16 and mode.parallelism == 2
    assert mode.startup_s == 2


def test_start_up_and_work_are_the_fastest_runs_the_rest_medians():
    """A slower run was slowed by runs beside it; predictions add the load in flight themselves."""
    mode = facts.mode_facts([run(wall_s=30, startup_s=5, task_s=20), run(wall_s=10, startup_s=2, task_s=8),
                             run(wall_s=20, startup_s=4, task_s=12)], "connect")
    assert (mode.startup_s, mode.work_s) == (2, 8)
    assert (mode.wall_s, mode.task_s, mode.parallelism) == (20, 12, 1.5)
    # The fastest run that measured its start-up: a run without one would count its whole wall as work.
    unknown = facts.mode_facts([run(wall_s=10, startup_s=None), run(wall_s=20, startup_s=4),
                                run(wall_s=30, startup_s=6)], "connect")
    assert (unknown.startup_s, unknown.work_s) == (4, 16)
    none = facts.mode_facts([run(wall_s=10, startup_s=None), run(wall_s=8, startup_s=None)], "connect")
    assert (none.startup_s, none.work_s) == (None, 8)


def test_unknown_startup_leaves_the_whole_wall_as_work():
    mode = facts.mode_facts([run(wall_s=10, startup_s=None, task_s=5)], "connect")
    assert mode.work_s == 10 and mode.startup_s is None


def test_a_startup_longer_than_the_run_never_makes_negative_work():
    assert facts.work_ms(run(wall_s=3, startup_s=5)) == 0
    assert facts.mode_facts([run(wall_s=3, startup_s=5, task_s=1)], "connect").parallelism == 0.0


def test_the_window_counts_per_mode_newest_last():
    runs = [run("standalone", wall_s=100)] + [run("connect", wall_s=w) for w in (50, 10, 11, 12)]
    app = facts.app_facts(runs, window=3)
    assert app.connect.runs == 3 and app.connect.wall_s == 11  # the 50 s run is out of the window
    assert app.standalone.runs == 1 and app.standalone.wall_s == 100


def test_spread_is_relative_median_deviation():
    alike = facts.mode_facts([run(wall_s=10), run(wall_s=10), run(wall_s=10)], "connect")
    varied = facts.mode_facts([run(wall_s=5), run(wall_s=10), run(wall_s=20)], "connect")
    assert alike.wall_spread == 0
    assert varied.wall_spread == 0.5  # deviations 5, 0, 10: median 5, over the median wall of 10


def test_executors_and_core_seconds_are_medians_of_the_runs_that_have_them():
    mode = facts.mode_facts([run("standalone", executors=2, core_s=100), run("standalone", executors=None),
                             run("standalone", executors=4, core_s=300)], "standalone")
    assert mode.executors == 3 and mode.core_s == 200


def test_heavy_metrics_are_medians():
    mode = facts.mode_facts([run(spill=0), run(spill=10), run(spill=1000)], "connect")
    assert mode.disk_spilled_bytes == 10


def test_summary_from_json_reads_old_and_new_entries():
    old = {"run_id": "r", "task_time_ms": 1, "shuffle_write_bytes": 2, "disk_spilled_bytes": 3,
           "peak_execution_memory_bytes": 4, "duration_ms": 5}
    assert facts.summary_from_json(old) == RunSummary(1, 2, 3, 4, 5)
    new = {**old, "mode": "standalone", "startup_ms": 30_000, "executors": 2, "executor_core_s": 80.0}
    assert facts.summary_from_json(new) == RunSummary(1, 2, 3, 4, 5, "standalone", 30_000, 2, 80.0)


def sample(mode, startup_s, cores=None) -> StartupSample:
    return StartupSample(mode, T0, T0 + timedelta(seconds=startup_s), cores)


def test_cluster_startup_is_the_median_with_its_range():
    cluster = facts.cluster_facts([sample("standalone", s, 2) for s in (18, 51, 30)] + [sample("connect", 2)])
    assert cluster.standalone_startup == facts.Startup(median_s=30, low_s=18, high_s=51, runs=3)
    assert cluster.startup("connect").median_s == 2 and cluster.standalone_executor_cores == 2


def test_no_standalone_run_no_standalone_startup():
    cluster = facts.cluster_facts([sample("connect", 2)])
    assert cluster.standalone_startup is None and cluster.standalone_executor_cores is None


def test_a_first_stage_before_the_start_counts_as_zero():
    assert sample("standalone", -3).startup_s == 0.0


# ----------------------------------------------------------------------------- what runs store, through the
# API

def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def standalone_run(client, app_id: str, spark_app_id: str, startup_s: float, life_s: float,
                   cores: int) -> str:
    """A standalone run as the launcher and its application's listener report it: started, a heartbeat of its
    executors, a stage `startup_s` after the start, succeeded; its start moved back so that its application
    lived `life_s` before it ended."""
    decision = ok(client.post("/api/v1/decisions", json={"app_id": app_id, "mode": "standalone"}))
    run_id = decision["run_id"]
    ok(client.post(f"/api/v1/runs/{run_id}/events", json={"event": "started"}))
    started = utcnow() - timedelta(seconds=life_s + startup_s)
    with client.app.state.sessions() as session:
        session.execute(update(Run).where(Run.run_id == run_id).values(started_at=started))
        session.commit()
    spark_start = started + timedelta(seconds=startup_s)
    ok(client.post("/api/v1/ingest/heartbeat", json={
        "server_id": spark_app_id, "spark_app_id": spark_app_id, "kind": "standalone",
        "start_time_ms": ms(spark_start), "executors": cores, "executor_cores": cores}))
    stage = {"app_id": app_id, "run_id": run_id, "stage_id": 0, "attempt": 0, "status": "succeeded",
             "submission_time_ms": ms(spark_start), "completion_time_ms": ms(spark_start) + 1000,
             "executor_run_time_ms": 5000, "num_tasks": 2}
    ok(client.post("/api/v1/ingest/stages", json={"server_id": spark_app_id, "spark_app_id": spark_app_id,
                                                   "stages": [stage]}))
    ok(client.post(f"/api/v1/runs/{run_id}/events", json={"event": "succeeded"}))
    return run_id


def test_a_standalone_run_stores_its_startup_executors_and_core_seconds(client):
    run_id = standalone_run(client, "etl.facts", "app-20261204-0001", startup_s=20, life_s=40, cores=2)
    with client.app.state.sessions() as session:
        stored = session.get(Run, run_id)
        assert stored.executors_held == 2 and stored.executor_cores_held == 2
        assert stored.executor_core_s == pytest.approx(80, abs=2)  # 2 cores × 40 s of its application's life
        [summary] = session.get(App, "etl.facts").recent_runs
    assert summary["mode"] == "standalone" and summary["startup_ms"] == pytest.approx(20_000, abs=50)
    assert summary["executors"] == 2 and summary["executor_core_s"] == pytest.approx(80, abs=2)
    with client.app.state.engine.connect() as connection:
        cluster = facts.read_cluster_facts(connection)
    assert cluster.standalone_startup.runs == 1
    assert cluster.standalone_startup.median_s == pytest.approx(20, abs=0.1)
    assert cluster.standalone_executor_cores == 2 and cluster.connect_startup is None


def test_the_cluster_startup_is_measured_over_recent_standalone_runs(client):
    for i, startup_s in enumerate((18, 51, 30)):
        standalone_run(client, f"etl.s{i}", f"app-20261204-000{i}", startup_s=startup_s, life_s=10, cores=1)
    with client.app.state.engine.connect() as connection:
        cluster = facts.read_cluster_facts(connection)
        assert facts.read_cluster_facts(connection, limit=1).standalone_startup.runs == 1
    startup = cluster.standalone_startup
    assert (startup.runs, round(startup.median_s), round(startup.low_s), round(startup.high_s)) == (3, 30, 18,
                                                                                                    51)


def test_a_connect_runs_core_seconds_are_its_task_time(client):
    ok(client.post("/api/v1/ingest/heartbeat", json={"server_id": "connect-local", "spark_app_id": "local-1",
                                                     "kind": "connect"}))
    decision = ok(client.post("/api/v1/decisions", json={"app_id": "etl.c", "mode": "connect"}))
    ok(client.post(f"/api/v1/runs/{decision['run_id']}/events", json={"event": "started"}))
    stage = {"app_id": "etl.c", "run_id": decision["run_id"], "connect_operation_id": "op", "stage_id": 0,
             "attempt": 0, "status": "succeeded", "submission_time_ms": ms(utcnow()),
             "executor_run_time_ms": 7500}
    ok(client.post("/api/v1/ingest/stages", json={"server_id": "connect-local", "spark_app_id": "local-1",
                                                   "stages": [stage]}))
    ok(client.post(f"/api/v1/runs/{decision['run_id']}/events", json={"event": "succeeded"}))
    with client.app.state.sessions() as session:
        stored = session.get(Run, decision["run_id"])
        assert stored.executor_core_s == 7.5 and stored.executors_held is None
        [summary] = session.get(App, "etl.c").recent_runs
    assert summary["mode"] == "connect" and summary["startup_ms"] is not None


# ------------------------------------------------------------------------------------------- calibration

def samples(*pairs: tuple[float, float], mode="connect") -> list[PredictionSample]:
    return [PredictionSample(mode, predicted_s=predicted, actual_s=actual) for predicted, actual in pairs]


def test_calibration_is_the_median_of_actual_over_predicted():
    calibration = facts.calibration(samples((2, 3), (2, 4), (4, 5), (1, 1), (10, 15)))
    assert (calibration.factor, calibration.runs) == (1.5, 5)


def test_no_calibration_from_too_few_runs():
    assert facts.calibration(samples(*[(2, 4)] * (facts.CALIBRATION_MIN_RUNS - 1))) is None
    assert facts.calibration([]) is None


def test_calibration_is_bounded_either_way():
    assert facts.calibration(samples(*[(1, 10)] * 5)).factor == facts.CALIBRATION_LIMIT
    assert facts.calibration(samples(*[(10, 1)] * 5)).factor == 1 / facts.CALIBRATION_LIMIT


def test_a_sample_compares_the_actual_with_the_uncalibrated_prediction():
    """A prediction made ×2 that came true says ×2 again, not ×1: the calibration holds, it does not swing."""
    end = T0 + timedelta(seconds=8)
    sample = facts.prediction_sample("connect", T0, end, {"connect": {"wall_s": 8.0, "calibration": 2.0}})
    assert (sample.predicted_s, sample.actual_s) == (4.0, 8.0)
    before_calibration = facts.prediction_sample("connect", T0, end, {"connect": {"wall_s": 8.0}})
    assert before_calibration.predicted_s == 8.0


@pytest.mark.parametrize("predictions", [
    None, {}, {"connect": None}, {"standalone": {"wall_s": 3.0}}, {"connect": {"wall_s": 0}},
    {"connect": {"wall_s": 3.0, "calibration": 0}}, {"connect": {"wall_s": "3"}},
    {"connect": {"wall_s": 3.0, "cross_mode": True}}])
def test_no_sample_where_nothing_usable_was_predicted_for_the_mode(predictions):
    """Nor from a prediction from the other mode's runs (an app never seen in this mode): its error is the
    guess's, not this mode's."""
    assert facts.prediction_sample("connect", T0, T0 + timedelta(seconds=5), predictions) is None


def test_the_cluster_calibration_per_mode_from_the_runs_decisions(client):
    """Runs through the real API; their decisions' stored predictions set apart from their actual wall time:
    each Connect run took 1.5× what was predicted before calibration; standalone runs had no prediction."""
    for i in range(facts.CALIBRATION_MIN_RUNS):
        decision = ok(client.post("/api/v1/decisions", json={"app_id": f"etl.cal{i}", "mode": "connect"}))
        ok(client.post(f"/api/v1/runs/{decision['run_id']}/events", json={"event": "started"}))
        ok(client.post(f"/api/v1/runs/{decision['run_id']}/events", json={"event": "succeeded"}))
        made_with = 1.0 if i % 2 else 1.2  # some predictions were calibrated already
        with client.app.state.sessions() as session:
            stored = session.get(Run, decision["run_id"])
            session.execute(update(Run).where(Run.run_id == decision["run_id"]).values(
                started_at=stored.finished_at - timedelta(seconds=6)))
            session.execute(update(Decision).where(Decision.run_id == decision["run_id"]).values(
                predictions={"connect": {"wall_s": 4.0 * made_with, "calibration": made_with},
                             "standalone": None, "note": None}))
            session.commit()
    standalone_run(client, "etl.cal-s", "app-20261204-0100", startup_s=20, life_s=10, cores=1)
    with client.app.state.engine.connect() as connection:
        cluster = facts.read_cluster_facts(connection)
        assert facts.read_cluster_facts(connection, calibration_limit=2).connect_calibration is None
    assert cluster.connect_calibration.runs == facts.CALIBRATION_MIN_RUNS
    assert cluster.connect_calibration.factor == pytest.approx(1.5, abs=0.01)
    assert cluster.standalone_calibration is None
    assert cluster.calibration("connect") == cluster.connect_calibration
