"""How good the predictions were: each succeeded run's actual wall time and executor core-seconds against what
was predicted for the mode it ran in, per app and mode (median absolute % error)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Decision, Run, utcnow
from service.routing.facts import median
from service.routing.predict import error_pct

# The newest runs an answer looks at, at most: the medians of a busy router's week need no more.
MAX_RUNS = 20_000


def run_errors(predictions: dict[str, Any] | None, mode: str, wall_s: float | None, core_s: float | None
               ) -> tuple[float | None, float | None]:
    """The % errors (wall time, core-seconds) of what was predicted for `mode` against the actual figures."""
    predicted = (predictions or {}).get(mode) or {}
    return error_pct(predicted.get("wall_s"), wall_s), error_pct(predicted.get("core_s"), core_s)


def summary(wall: list[float], core: list[float]) -> dict[str, Any]:
    def med(values: list[float]) -> float | None:
        value = median(abs(v) for v in values)
        return None if value is None else round(value, 1)
    return {"wall_count": len(wall), "wall_median_abs_error_pct": med(wall),
            "core_s_count": len(core), "core_s_median_abs_error_pct": med(core)}


def prediction_accuracy(session: Session, days: int, app_id: str | None = None) -> dict[str, Any]:
    """Per app and mode, over the succeeded runs of the last `days` that had a prediction for the mode they
    ran in: how many, and the median absolute % error of wall time and of core-seconds; and the same per mode
    overall."""
    query = (select(Decision.app_id, Run.mode, Decision.predictions, Run.started_at, Run.finished_at,
                    Run.executor_core_s)
             .join(Run, Run.run_id == Decision.run_id)
             .where(Decision.predictions.is_not(None), Run.status == "succeeded",
                    Decision.created_at >= utcnow() - timedelta(days=days))
             .order_by(Decision.created_at.desc()).limit(MAX_RUNS))
    if app_id is not None:
        query = query.where(Decision.app_id == app_id)
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for app, mode, predictions, started, finished, core_s in session.execute(query):
        wall_s = (finished - started).total_seconds() if started and finished else None
        wall_error, core_error = run_errors(predictions, mode, wall_s, core_s)
        if wall_error is None and core_error is None:
            continue  # nothing was predicted for the mode it ran in (an app seen for the first time)
        for key in ((app, mode), ("", mode)):
            wall, core = groups.setdefault(key, ([], []))
            if wall_error is not None:
                wall.append(wall_error)
            if core_error is not None:
                core.append(core_error)
    per_app = [{"app_id": app, "mode": mode, "runs": max(len(wall), len(core)), **summary(wall, core)}
               for (app, mode), (wall, core) in sorted(groups.items()) if app]
    overall = [{"mode": mode, "runs": max(len(wall), len(core)), **summary(wall, core)}
               for (app, mode), (wall, core) in sorted(groups.items()) if not app]
    return {"days": days, "apps": per_app, "overall": overall}
