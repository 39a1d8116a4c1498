"""What the router knows of an app's recent runs, per mode, and what a separate application costs to start on
this cluster: the facts that predictions (predict.py) and the cost-aware rule stand on.

Public, for the rules, predictions, the queue and right-sizing:

- ``RunSummary`` / ``summary_from_json(entry)``: one successful run as the app's row keeps it
  (``App.recent_runs``): task time, shuffle, spill, peak execution memory, wall time, and since 0008 its mode,
  start-up (submit to first stage), executors held and executor core-seconds.
- ``app_facts(runs, window) -> AppFacts``: per mode (``.connect``, ``.standalone``, ``.of(mode)``), the
  app's last `window` successful runs in that mode (``ModeFacts``: medians of wall_s, task_s, shuffle/spill/
  peak memory, executors, core_s and wall_spread; startup_s and work_s of the fastest of them, and
  parallelism from those). A mode the app never ran in is None.
- ``cluster_facts(samples, predicted) -> ClusterFacts`` (pure) and ``read_cluster_facts(connection)`` (two
  indexed reads per mode): the measured start-up of a separate (standalone) application on this cluster, and
  of a Connect client, from recent successful runs' own timestamps: the launcher's "started" report (just
  before spark-submit or the client starts) to the run's first stage. Also the executor cores a standalone run
  held, and per mode a ``Calibration``: how the recent runs' wall times compared with their predictions.

Figures are medians (robust to one odd run), but for a run's own time: its start-up and work are the fastest
recent run's, because a slower run was slowed by the runs beside it, and predictions add that slowdown from
the load in flight when they are made (predict.py); a median would count the past load and then the present
one. What that leaves out (a busy machine's CPU, shared by every client and driver on it) shows in how the
recent runs compared with their predictions: the calibration scales the next prediction by it. A figure
nothing measured is None, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from service.history.queries import recent_predicted_walls, recent_startups
from service.routing.policy import Mode

MODES: tuple[Mode, ...] = ("connect", "standalone")

# How many recent successful runs of each mode the cluster's start-up figure is measured over.
STARTUP_SAMPLES = 20
# How many recent successful runs of each mode that had a prediction from that mode's runs calibrate its
# wall-time predictions; with fewer than CALIBRATION_MIN_RUNS, none. A calibration scales a prediction by at
# most CALIBRATION_LIMIT either way: a burst of odd runs must not swing decisions far.
CALIBRATION_SAMPLES = 20
CALIBRATION_MIN_RUNS = 5
CALIBRATION_LIMIT = 2.0


@dataclass(frozen=True)
class RunSummary:
    """What the policy keeps of one successful run (the app row's ``recent_runs`` entries)."""

    task_time_ms: int
    shuffle_write_bytes: int
    disk_spilled_bytes: int
    peak_execution_memory_bytes: int
    duration_ms: int
    # Kept since migration 0008 (older entries were filled in from their runs, where the runs still said).
    mode: str | None = None
    startup_ms: int | None = None  # submit (the launcher's "started") to the first stage; None: unknown
    executors: int | None = None  # standalone: the most executors its application held; Connect: None
    # standalone: cores held × its application's life; Connect: task time
    executor_core_s: float | None = None


_CORE_FIELDS = itemgetter("task_time_ms", "shuffle_write_bytes", "disk_spilled_bytes",
                          "peak_execution_memory_bytes", "duration_ms")


def summary_from_json(entry: Mapping[str, Any]) -> RunSummary:
    """A stored summary (a dict from App.recent_runs) as a RunSummary; entries from before 0008 lack the new
    fields, which are then unknown."""
    task, shuffle, spill, peak, duration = _CORE_FIELDS(entry)
    return RunSummary(task, shuffle, spill, peak, duration, entry.get("mode"), entry.get("startup_ms"),
                      entry.get("executors"), entry.get("executor_core_s"))


def median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return float(ordered[middle]) if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# ------------------------------------------------------------------------------------------------ per app

@dataclass(frozen=True)
class ModeFacts:
    """An app's recent successful runs in one mode: medians, but for startup_s and work_s (the fastest run's:
    its time with the least beside it). Times in seconds."""

    mode: Mode
    runs: int
    wall_s: float                 # submit to end, as the launcher reported them (median)
    wall_spread: float            # median absolute deviation of wall time over its median (0: runs alike)
    startup_s: float | None       # submit to first stage, of the fastest run that measured it (None: no run
    #                               had stages and a start)
    work_s: float                 # first stage to end, of that run: its own work, without its start-up
    task_s: float                 # executor task time (core-seconds of work; median)
    parallelism: float            # task_s / work_s: the cores the run keeps busy, on average
    shuffle_write_bytes: float
    disk_spilled_bytes: float
    peak_execution_memory_bytes: float
    executors: float | None       # standalone: executors its application held; Connect: None
    core_s: float | None          # executor core-seconds (see RunSummary.executor_core_s)


@dataclass(frozen=True)
class AppFacts:
    connect: ModeFacts | None = None
    standalone: ModeFacts | None = None

    def of(self, mode: Mode) -> ModeFacts | None:
        return self.connect if mode == "connect" else self.standalone

    @property
    def seen(self) -> bool:
        return self.connect is not None or self.standalone is not None


def work_ms(run: RunSummary) -> int:
    """A run's wall time less its start-up (its whole wall time when the start-up is unknown)."""
    startup = min(run.startup_ms or 0, run.duration_ms)
    return run.duration_ms - startup


def mode_facts(runs: Sequence[RunSummary], mode: Mode) -> ModeFacts | None:
    """The facts of `runs` (all of one mode, newest last), or None when there are none."""
    if not runs:
        return None
    wall = median(run.duration_ms / 1000 for run in runs) or 0.0
    spread = (median(abs(run.duration_ms / 1000 - wall) for run in runs) or 0.0) / wall if wall > 0 else 0.0
    # The fastest run that measured its start-up (else the fastest: its whole wall is work).
    fastest = min(runs, key=lambda run: (run.startup_ms is None, run.duration_ms))
    work = work_ms(fastest) / 1000
    startup = fastest.startup_ms / 1000 if fastest.startup_ms is not None else None
    task = median(run.task_time_ms / 1000 for run in runs) or 0.0
    return ModeFacts(
        mode=mode, runs=len(runs), wall_s=wall, wall_spread=round(spread, 3), startup_s=startup,
        work_s=work, task_s=task, parallelism=round(task / work, 3) if work > 0 else 0.0,
        shuffle_write_bytes=median(run.shuffle_write_bytes for run in runs) or 0.0,
        disk_spilled_bytes=median(run.disk_spilled_bytes for run in runs) or 0.0,
        peak_execution_memory_bytes=median(run.peak_execution_memory_bytes for run in runs) or 0.0,
        executors=median(run.executors for run in runs if run.executors is not None),
        core_s=median(run.executor_core_s for run in runs if run.executor_core_s is not None))


def app_facts(runs: Sequence[RunSummary], window: int) -> AppFacts:
    """Per mode, the facts of the app's last `window` successful runs in that mode (runs newest last). Runs
    whose mode is unknown (kept before 0008, their run gone) count in neither."""
    by_mode: dict[str, list[RunSummary]] = {mode: [] for mode in MODES}
    for run in runs:
        if run.mode in by_mode:
            by_mode[run.mode].append(run)
    return AppFacts(connect=mode_facts(by_mode["connect"][-window:], "connect"),
                    standalone=mode_facts(by_mode["standalone"][-window:], "standalone"))


# ----------------------------------------------------------------------------------------------- the cluster

@dataclass(frozen=True)
class StartupSample:
    """One recent successful run's start-up: the launcher's "started" to its first stage."""

    mode: Mode
    started_at: datetime
    first_stage_at: datetime
    executor_cores: int | None = None  # standalone: the executor cores its application held

    @property
    def startup_s(self) -> float:
        # Spark's clock and the router's may differ a little: never below zero.
        return max((self.first_stage_at - self.started_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class Startup:
    """The measured start-up of one mode on this cluster."""

    median_s: float
    low_s: float
    high_s: float
    runs: int


@dataclass(frozen=True)
class PredictionSample:
    """One recent successful run's actual wall time beside the wall time predicted for it, uncalibrated."""

    mode: Mode
    predicted_s: float
    actual_s: float


@dataclass(frozen=True)
class Calibration:
    """How one mode's recent runs here compared with their predictions: an uncalibrated wall-time prediction
    times `factor` (the median of actual / predicted over `runs` runs, within CALIBRATION_LIMIT)."""

    factor: float
    runs: int


@dataclass(frozen=True)
class ClusterFacts:
    """What a run costs to start in each mode here, measured, and how each mode's recent runs compared with
    their predictions; None where no run measured it."""

    standalone_startup: Startup | None = None
    connect_startup: Startup | None = None
    standalone_executor_cores: float | None = None  # median executor cores a standalone run held
    connect_calibration: Calibration | None = None
    standalone_calibration: Calibration | None = None

    def startup(self, mode: Mode) -> Startup | None:
        return self.standalone_startup if mode == "standalone" else self.connect_startup

    def calibration(self, mode: Mode) -> Calibration | None:
        return self.standalone_calibration if mode == "standalone" else self.connect_calibration


def startup(samples: Sequence[StartupSample]) -> Startup | None:
    values = [sample.startup_s for sample in samples]
    if not values:
        return None
    return Startup(median_s=round(median(values) or 0.0, 2), low_s=round(min(values), 2),
                   high_s=round(max(values), 2), runs=len(values))


def calibration(samples: Sequence[PredictionSample]) -> Calibration | None:
    """The median of actual / predicted wall time over the samples, within CALIBRATION_LIMIT either way; None
    below CALIBRATION_MIN_RUNS samples."""
    ratios = [sample.actual_s / sample.predicted_s for sample in samples
              if sample.predicted_s > 0 and sample.actual_s > 0]
    factor = median(ratios)
    if factor is None or len(ratios) < CALIBRATION_MIN_RUNS:
        return None
    return Calibration(factor=round(min(max(factor, 1 / CALIBRATION_LIMIT), CALIBRATION_LIMIT), 3),
                       runs=len(ratios))


def prediction_sample(mode: Mode, started_at: datetime, finished_at: datetime,
                      predictions: Mapping[str, Any] | None) -> PredictionSample | None:
    """A run's actual wall time beside the uncalibrated wall time its decision predicted for `mode` (the
    stored prediction divided by the calibration it was made with); None when nothing was predicted for it,
    or only from the other mode's runs: that guess has errors of its own, which would skew the calibration."""
    predicted = (predictions or {}).get(mode) or {}
    wall, factor = predicted.get("wall_s"), predicted.get("calibration", 1.0)
    if predicted.get("cross_mode") or not all(isinstance(value, int | float) and value > 0
                                              for value in (wall, factor)):
        return None
    return PredictionSample(mode, predicted_s=wall / factor,
                            actual_s=(finished_at - started_at).total_seconds())


def cluster_facts(samples: Sequence[StartupSample],
                  predicted: Sequence[PredictionSample] = ()) -> ClusterFacts:
    """The cluster's start-up per mode (medians over the samples), the executor cores a standalone run held,
    and each mode's calibration from the runs with a prediction."""
    by_mode = {mode: [sample for sample in samples if sample.mode == mode] for mode in MODES}
    return ClusterFacts(
        standalone_startup=startup(by_mode["standalone"]), connect_startup=startup(by_mode["connect"]),
        standalone_executor_cores=median(sample.executor_cores for sample in by_mode["standalone"]
                                         if sample.executor_cores),
        connect_calibration=calibration([sample for sample in predicted if sample.mode == "connect"]),
        standalone_calibration=calibration([sample for sample in predicted if sample.mode == "standalone"]))


def read_cluster_facts(connection: Connection, limit: int = STARTUP_SAMPLES,
                       calibration_limit: int = CALIBRATION_SAMPLES) -> ClusterFacts:
    """The cluster's facts from the last `limit` successful runs of each mode that have a start and a first
    stage, and the last `calibration_limit` that had a prediction (two indexed reads per mode: runs by mode
    and end)."""
    predicted = [prediction_sample(mode, *row) for mode in MODES
                 for row in recent_predicted_walls(connection, mode, calibration_limit)]
    return cluster_facts([StartupSample(*row) for mode in MODES
                          for row in recent_startups(connection, mode, limit)],
                         [sample for sample in predicted if sample is not None])
