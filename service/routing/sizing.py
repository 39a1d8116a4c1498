"""Right-sized standalone runs: executor memory and count from the app's own history, within the policy's
guard rails (``sizing.*``), and one more try with more memory for a run that ran out of it. Pure functions,
like the rules: no database, no clock; each result says why in one sentence.

Memory follows Spark's unified memory model: an executor's heap less 300 MiB reserved, times
spark.memory.fraction (0.6), is shared by the tasks it runs at once (one per core); a task that needs more
than its share spills to disk. So a task's need becomes a heap of ``300 MiB + need x cores / 0.6``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from service.routing.policy import Policy, format_bytes, format_ms
from service.routing.rules import Resources, statistic

MiB = 1 << 20
RESERVED_MEMORY = 300 * MiB  # Spark's reserved heap (RESERVED_SYSTEM_MEMORY_BYTES)
MEMORY_FRACTION = 0.6        # spark.memory.fraction's default
SPARK_DEFAULT_MEMORY = 1 << 30  # spark.executor.memory and spark.driver.memory when nothing sets them
STEP = 64 * MiB              # sized memory is rounded up to this

OomWhere = Literal["executor", "driver"]


@dataclass(frozen=True)
class RunUsage:
    """What sizing reads of one successful run: what it needed, and what it ran with (None: not known, e.g.
    Spark's default)."""

    task_time_ms: int
    disk_spilled_bytes: int
    peak_execution_memory_bytes: int  # the largest task's
    executor_memory: int | None = None
    executor_cores: int | None = None


@dataclass(frozen=True)
class Sized:
    """A standalone run's resources after sizing (None: Spark's default, nothing asked and nothing sized), and
    why in one sentence."""

    executor_memory: int | None
    num_executors: int | None
    executor_cores: int | None
    driver_memory: int | None
    reason: str

    def resources(self) -> Resources:
        return Resources(driver_memory=self.driver_memory, executor_memory=self.executor_memory,
                         executor_cores=self.executor_cores, num_executors=self.num_executors)

    def spark_resources(self) -> dict[str, str | int]:
        """The resources in spark-submit's terms (sizes in whole MiB: 1536m), the unset ones left out."""
        values = {"executor_memory": None if self.executor_memory is None
                  else spark_size(self.executor_memory),
                  "num_executors": self.num_executors, "executor_cores": self.executor_cores,
                  "driver_memory": None if self.driver_memory is None else spark_size(self.driver_memory)}
        return {name: value for name, value in values.items() if value is not None}


def spark_size(size: int) -> str:
    """A size as Spark reads it for memory settings, in whole MiB (rounded up): 1536m."""
    return f"{math.ceil(size / MiB)}m"


def round_up(size: float) -> int:
    return int(math.ceil(size / STEP) * STEP)


def heap_for(task_need: float, cores: int) -> float:
    """The executor heap that gives each of its `cores` concurrent tasks `task_need` of execution memory."""
    return RESERVED_MEMORY + task_need * cores / MEMORY_FRACTION


def task_share(executor_memory: int, cores: int) -> float:
    """The execution memory one of an executor's `cores` concurrent tasks can have (the inverse of
    heap_for)."""
    return max(executor_memory - RESERVED_MEMORY, 0) * MEMORY_FRACTION / cores


# ------------------------------------------------------------------------------------------------ the needs

def memory_need(runs: Sequence[RunUsage], cores: int, policy: Policy) -> tuple[float, str] | None:
    """The executor heap the runs say a run with `cores` per executor needs, and why; None: nothing to go by.
    The larger of: the statistic of the largest task's peak execution memory, plus headroom; and, for runs
    that spilled more than sizing.spill_bytes to disk, sizing.spill_growth times the memory a task had
    then."""
    knobs, kind = policy.sizing, policy.history.statistic
    needs: list[tuple[float, str]] = []
    peak = statistic([run.peak_execution_memory_bytes for run in runs], kind) if runs else 0
    if peak > 0:
        needs.append((heap_for(peak * knobs.headroom, cores),
                      (f"the {kind} of the largest task's peak execution memory is {format_bytes(peak)}, "
                       f"+{knobs.headroom - 1:.0%} for {cores} task(s) at once")))
    spilled = [run for run in runs if run.disk_spilled_bytes > knobs.spill_bytes]
    if spilled:
        def had(run: RunUsage) -> float:
            return task_share(run.executor_memory or SPARK_DEFAULT_MEMORY, run.executor_cores or cores)

        worst = max(spilled, key=had)
        most = max(run.disk_spilled_bytes for run in spilled)
        with_what = (f"{format_bytes(worst.executor_memory or SPARK_DEFAULT_MEMORY)} executors of "
                     f"{worst.executor_cores or cores} core(s)")
        needs.append((heap_for(had(worst) * knobs.spill_growth, cores),
                      (f"{len(spilled)} of them spilled up to {format_bytes(most)} to disk with {with_what}, "
                       f"so {knobs.spill_growth:g}x the memory a task had")))
    return max(needs, key=lambda need: need[0]) if needs else None


def executors_need(runs: Sequence[RunUsage], cores: int, policy: Policy) -> tuple[int, str] | None:
    """Executors of `cores` cores enough to do the statistic of the runs' task time in
    sizing.target_duration_s; None: nothing to go by."""
    kind, target_s = policy.history.statistic, policy.sizing.target_duration_s
    task_ms = statistic([run.task_time_ms for run in runs], kind) if runs else 0
    if task_ms <= 0:
        return None
    count = max(1, math.ceil(task_ms / (target_s * 1000 * cores)))
    return count, f"the {kind} of their task time, {format_ms(task_ms)}, in {format_ms(target_s * 1000)}"


def executor_ceiling(policy: Policy) -> tuple[int, str]:
    """The most executor memory sizing gives, and the knob that says so: sizing.max_executor_memory, or the
    cluster's sizing.worker_memory when that is known and smaller (an executor no worker can hold never
    starts)."""
    knobs = policy.sizing
    if knobs.worker_memory is not None and knobs.worker_memory < knobs.max_executor_memory:
        return knobs.worker_memory, "sizing.worker_memory"
    return knobs.max_executor_memory, "sizing.max_executor_memory"


# ---------------------------------------------------------------------------------------------- the sizing

def size(asked: Resources, history: Sequence[RunUsage], policy: Policy) -> Sized:
    """A standalone run's executor memory and count from the app's last successful runs
    (policy.history.window), within the guard rails: never below what was asked (unless
    sizing.allow_below_request), never above the ceilings (sizing.max_executor_memory or the cluster's
    sizing.worker_memory, sizing.max_executors) unless the developer asked for more."""
    knobs = policy.sizing
    runs = list(history)[-policy.history.window:]
    if not knobs.enabled:
        return as_asked(asked, "Sizing is off (sizing.enabled); the run gets what it asked for.")
    if not runs:
        return as_asked(asked, "No successful run to size by; the run gets what it asked for.")
    cores = asked.executor_cores or knobs.executor_cores
    memory, memory_why = bounded_memory(asked.executor_memory, memory_need(runs, cores, policy), policy)
    count, count_why = bounded_count(asked.num_executors, executors_need(runs, cores, policy), policy)
    sized = memory != asked.executor_memory or count != asked.num_executors
    # Sizing assumed `cores` per executor: say so to spark-submit too (a standalone cluster's default is all
    # of a worker's cores).
    executor_cores = asked.executor_cores or (cores if sized else None)
    return Sized(memory, count, executor_cores, asked.driver_memory,
                 f"Sized by the last {len(runs)} successful runs: {memory_why}; {count_why}.")


def as_asked(asked: Resources, reason: str) -> Sized:
    return Sized(asked.executor_memory, asked.num_executors, asked.executor_cores, asked.driver_memory,
                 reason)


def bounded_memory(asked: int | None, need: tuple[float, str] | None, policy: Policy) -> tuple[int | None,
                                                                                               str]:
    """The executor memory from the need, within the rails, and how it came about (a clause)."""
    knobs = policy.sizing
    given = "the memory asked for" if asked is not None else "Spark's default"
    if need is None:
        return asked, f"executor memory {given} (no memory figures)"
    figure, why = need
    base = asked if asked is not None else SPARK_DEFAULT_MEMORY
    memory = round_up(figure)
    notes = []
    ceiling, knob = executor_ceiling(policy)
    capped = memory > ceiling
    if capped:
        memory = ceiling
        notes.append(f"capped at {knob}, {format_bytes(memory)}")
    floor = knobs.min_executor_memory if knobs.allow_below_request else base
    if memory < floor:
        memory = floor
        notes.append(f"raised to sizing.min_executor_memory, {format_bytes(floor)}"
                     if knobs.allow_below_request
                     else f"kept at {given}, {format_bytes(floor)}")
    if memory == base and asked is None and not capped:
        return None, f"executor memory {given} ({why}: {format_bytes(figure)} is enough)"
    if memory == base and not capped:
        return asked, (f"executor memory {format_bytes(memory)} as asked "
                       f"({why}: {format_bytes(figure)} is enough)")
    return memory, (f"executor memory {format_bytes(memory)}, as {why}" + "".join(f", {n}" for n in notes))


def bounded_count(asked: int | None, need: tuple[int, str] | None, policy: Policy) -> tuple[int | None, str]:
    """The executor count from the need, within the rails, and how it came about (a clause)."""
    knobs = policy.sizing
    if need is None:
        return asked, "the executors asked for (no task time)" if asked else "Spark's default executors"
    figure, why = need
    count, notes = figure, []
    if count > knobs.max_executors:
        count = knobs.max_executors
        notes.append(f"capped at sizing.max_executors, {count}")
    if asked is not None and count < asked and not knobs.allow_below_request:
        return asked, f"{asked} executor(s) as asked ({figure} do {why})"
    return count, f"{count} executor(s) to do {why}" + "".join(f", {n}" for n in notes)


# -------------------------------------------------------------------------------------- out-of-memory rerun

def oom_rerun(ran_with: Resources, where: OomWhere, policy: Policy) -> tuple[Sized | None, str]:
    """The resources of the one rerun of a run that ran out of memory: sizing.oom_growth times the memory
    where it ran out (executor or driver), within its ceiling; None (and why) when there is no more to
    give."""
    knobs = policy.sizing
    if not knobs.oom_rerun:
        return None, "Out-of-memory reruns are off (sizing.oom_rerun)."
    current = (ran_with.executor_memory if where == "executor"
               else ran_with.driver_memory) or SPARK_DEFAULT_MEMORY
    ceiling, knob = (executor_ceiling(policy) if where == "executor"
                     else (knobs.max_driver_memory, "sizing.max_driver_memory"))
    memory = min(round_up(current * knobs.oom_growth), ceiling)
    if memory <= current:
        return None, (f"The run ran out of {where} memory with {format_bytes(current)}, already at the "
                      f"ceiling ({knob}, {format_bytes(ceiling)}): no rerun with more.")
    capped = f", capped at {knob}" if memory == ceiling and memory < current * knobs.oom_growth else ""
    reason = (f"The run ran out of {where} memory with {format_bytes(current)}; rerun once with "
              f"{format_bytes(memory)} ({knobs.oom_growth:g}x{capped}).")
    if where == "executor":
        return Sized(memory, ran_with.num_executors, ran_with.executor_cores, ran_with.driver_memory,
                     reason), reason
    return Sized(ran_with.executor_memory, ran_with.num_executors, ran_with.executor_cores, memory,
                 reason), reason
