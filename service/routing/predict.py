"""Predictions for an app's next run, in each mode: its wall time and executor core-seconds on a Connect
server (given the server's executors and the runs in flight on it) and as a separate (standalone) application
(the cluster's measured start-up, then the run on the cores it gets). Pure functions over routing/facts.py's
facts.

- From the mode's own runs when the app ran in that mode; else from the other mode's runs, with a wider
  uncertainty (``CROSS_MODE_UNCERTAINTY`` more), since the modes differ (warm shared executors against its own
  cold ones).
- An app never seen gets no prediction: the rules decide as for any new app.
- Wall time is calibrated: times the median of actual / predicted over the mode's recent runs here
  (facts.Calibration), which counts what the model leaves out, such as a machine's CPU shared by clients and
  drivers. The factor is stored with the prediction, so the next calibration compares against the
  uncalibrated figure.
- Core-seconds count what the run costs the cluster: on Connect, the shared server's cores it keeps busy (its
  task time; the server holds its executors whether or not this run comes); standalone, the cores its own
  application holds for its whole life, start-up included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from service.routing.facts import AppFacts, Calibration, ClusterFacts, ModeFacts
from service.routing.policy import Mode, Objective

# The uncertainty stated with a prediction (± this fraction): at least SAME_MODE_UNCERTAINTY from the mode's
# own runs, ONE_RUN_UNCERTAINTY from a single run, twice the runs' own spread when that is more; and
# CROSS_MODE_UNCERTAINTY more when it comes from the other mode's runs.
SAME_MODE_UNCERTAINTY = 0.2
ONE_RUN_UNCERTAINTY = 0.35
CROSS_MODE_UNCERTAINTY = 0.5


@dataclass(frozen=True)
class ConnectLoad:
    """A Connect server as a prediction sees it: the cores a run there can share now and the runs' load on
    them."""

    server_id: str
    cores: float            # the cores its executors hold now (its capacity when it reports none)
    in_flight_cores: float  # the predicted load of the Connect runs in flight on it


@dataclass(frozen=True)
class Prediction:
    mode: Mode
    wall_s: float
    core_s: float
    uncertainty: float            # ± this fraction of each figure
    basis: str                    # what it stands on, e.g. "3 Connect runs"
    cross_mode: bool              # from the other mode's runs
    startup_s: float              # the start-up included in wall_s
    cores: float                  # the cores the run is predicted to get
    server_id: str | None = None  # Connect: the server it was predicted on
    in_flight_cores: float | None = None  # Connect: the load on that server
    calibration: float = 1.0      # the factor wall_s was scaled by (facts.Calibration)

    def range(self, value: float) -> tuple[float, float]:
        return round(value * (1 - self.uncertainty), 1), round(value * (1 + self.uncertainty), 1)


@dataclass(frozen=True)
class Predictions:
    """Both modes' predictions for a run (either may be None), and why one is missing."""

    connect: Prediction | None = None
    standalone: Prediction | None = None
    note: str | None = None

    def of(self, mode: str) -> Prediction | None:
        return self.connect if mode == "connect" else self.standalone if mode == "standalone" else None

    def as_json(self) -> dict[str, Any] | None:
        """As stored with the decision and shown by the API; None when there is no prediction at all."""
        if self.connect is None and self.standalone is None:
            return {"connect": None, "standalone": None, "note": self.note} if self.note else None
        return {"connect": _rounded(self.connect), "standalone": _rounded(self.standalone), "note": self.note}


def _rounded(prediction: Prediction | None) -> dict[str, Any] | None:
    if prediction is None:
        return None
    values = asdict(prediction)
    for key in ("wall_s", "core_s", "startup_s", "cores", "in_flight_cores"):
        if values[key] is not None:
            values[key] = round(values[key], 2)
    return values


# ---------------------------------------------------------------------------------------------- the pieces

def uncertainty(source: ModeFacts, cross_mode: bool) -> float:
    """± fraction stated with a prediction from `source`: see the constants above."""
    own = ONE_RUN_UNCERTAINTY if source.runs < 2 else max(SAME_MODE_UNCERTAINTY, 2 * source.wall_spread)
    return round(own + (CROSS_MODE_UNCERTAINTY if cross_mode else 0.0), 3)


def connect_share(demand: float, cores: float, in_flight_cores: float) -> float:
    """The cores a run that keeps `demand` cores busy gets on a server holding `cores`, shared (FAIR) with
    runs in flight predicted to use `in_flight_cores`: in proportion to demand, never more than it needs."""
    if demand <= 0:
        return 0.0
    share = cores if in_flight_cores <= 0 else cores * demand / (demand + in_flight_cores)
    return min(demand, share)


def slowed_work_s(work_s: float, demand: float, cores: float) -> float:
    """A run's work time when it gets `cores` of the `demand` it kept busy before: longer in proportion."""
    if demand <= 0 or cores >= demand:
        return work_s
    return work_s * demand / max(cores, 0.05)


def basis(source: ModeFacts, cross_mode: bool, calibration: Calibration | None = None, mode: Mode = "connect"
          ) -> str:
    name = "Connect" if source.mode == "connect" else "standalone"
    runs = f"{source.runs} {name} run{'s' if source.runs != 1 else ''}"
    said = f"from {runs} (not seen in the other mode)" if cross_mode else runs
    if calibration is not None:
        runs_of = "Connect" if mode == "connect" else "standalone"
        said += (f", ×{calibration.factor:.2f} as the last {calibration.runs} {runs_of} runs here took "
                 "against their predictions")
    return said


# ------------------------------------------------------------------------------------------- the predictions

def predict_connect(app: AppFacts, cluster: ClusterFacts, server: ConnectLoad) -> Prediction | None:
    """The run on `server`: its Connect start-up (its own, else the cluster's, else none), then its work,
    slowed when the server's cores shared with the runs in flight are fewer than the cores it kept busy, the
    whole calibrated; core-seconds: its task time. From standalone runs when it never ran on Connect. None for
    an app never seen."""
    source = app.connect or app.standalone
    if source is None:
        return None
    cross = app.connect is None
    if not cross and source.startup_s is not None:
        startup = source.startup_s
    else:
        startup = cluster.connect_startup.median_s if cluster.connect_startup else 0.0
    cores = connect_share(source.parallelism, server.cores, server.in_flight_cores)
    work = slowed_work_s(source.work_s, source.parallelism, cores)
    core_s = source.core_s if not cross and source.core_s is not None else source.task_s
    scale = cluster.calibration("connect")
    factor = scale.factor if scale else 1.0
    return Prediction("connect", wall_s=(startup + work) * factor, core_s=core_s,
                      uncertainty=uncertainty(source, cross), basis=basis(source, cross, scale, "connect"),
                      cross_mode=cross, startup_s=startup, cores=round(cores, 3), server_id=server.server_id,
                      in_flight_cores=server.in_flight_cores, calibration=factor)


def predict_standalone(app: AppFacts, cluster: ClusterFacts, cores: float | None) -> Prediction | None:
    """The run as its own application with `cores` executor cores (None: what standalone runs here held, else
    1): the cluster's measured start-up now, then its work (its own standalone runs' work; from Connect runs,
    its task time spread over its cores), the whole calibrated; core-seconds: its measured ones, else its
    cores × its whole life. None for an app never seen, or when no standalone run has measured the start-up
    it would pay."""
    source = app.standalone or app.connect
    if source is None:
        return None
    cross = app.standalone is None
    # The start-up it would pay now: the cluster's as measured, else (an app seen standalone) its own.
    startup = cluster.standalone_startup.median_s if cluster.standalone_startup else None
    if startup is None and not cross:
        startup = source.startup_s
    if startup is None:
        return None
    granted = cores or cluster.standalone_executor_cores or 1.0
    if not cross:
        work = source.work_s
        core_s = source.core_s if source.core_s is not None else granted * (startup + work)
    else:
        work = source.task_s / granted if source.task_s > 0 else source.work_s
        core_s = granted * (startup + work)
    scale = cluster.calibration("standalone")
    factor = scale.factor if scale else 1.0
    return Prediction("standalone", wall_s=(startup + work) * factor, core_s=core_s,
                      uncertainty=uncertainty(source, cross), basis=basis(source, cross, scale, "standalone"),
                      cross_mode=cross, startup_s=startup, cores=granted, calibration=factor)


def predict(app: AppFacts, cluster: ClusterFacts, server: ConnectLoad | None,
            cores: float | None) -> Predictions:
    """Both modes' predictions for the app's next run; a note says why one is missing. `server`: the Connect
    server the run would go to (None: no server of the pool can take it: no Connect prediction)."""
    if not app.seen:
        return Predictions(note="No successful run yet: no prediction; the rules decide as for a new app.")
    connect = predict_connect(app, cluster, server) if server is not None else None
    standalone = predict_standalone(app, cluster, cores)
    notes = []
    if server is None:
        notes.append("no Connect server can take a run now")
    if standalone is None:
        notes.append("no standalone run has measured this cluster's start-up yet")
    note = "; ".join(notes)
    return Predictions(connect, standalone, note[:1].upper() + note[1:] + "." if notes else None)


# ------------------------------------------------------------------------------------------------ the choice

def score(prediction: Prediction, other: Prediction, objective: Objective, time_weight: float) -> float:
    """How `prediction` fares against `other` under the objective (lower is better): makespan, its wall time;
    cost, its core-seconds; balanced, time_weight × its wall time over the better one's, plus the rest × its
    core-seconds over the better one's (1.0: the best on both)."""
    if objective == "makespan":
        return prediction.wall_s
    if objective == "cost":
        return prediction.core_s
    best_wall = max(min(prediction.wall_s, other.wall_s), 0.001)
    best_core = max(min(prediction.core_s, other.core_s), 0.001)
    return time_weight * prediction.wall_s / best_wall + (1 - time_weight) * prediction.core_s / best_core


def better_mode(predictions: Predictions, objective: Objective, time_weight: float) -> Mode | None:
    """The mode with the better objective (Connect on a tie: no new application for nothing); None without
    both predictions, or with the objective off."""
    connect, standalone = predictions.connect, predictions.standalone
    if connect is None or standalone is None or objective == "off":
        return None
    if score(standalone, connect, objective, time_weight) < score(connect, standalone, objective,
                                                                  time_weight):
        return "standalone"
    return "connect"


def error_pct(predicted: float | None, actual: float | None) -> float | None:
    """A prediction's error in % of the actual figure (+: predicted too much); None when either is unknown or
    the actual is zero (no % of nothing)."""
    if predicted is None or actual is None or actual <= 0:
        return None
    return round(100 * (predicted - actual) / actual, 1)
