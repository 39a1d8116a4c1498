"""How good the router's predictions were."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.api.deps import AppIdQuery, SessionDep, require_api_token
from service.api.error_responses import errors
from service.routing.accuracy import prediction_accuracy
from service.schemas import PredictionAccuracyOut

router = APIRouter(prefix="/api/v1/predictions", tags=["predictions"],
                   dependencies=[Depends(require_api_token)], responses=errors(401, 422, 503))


@router.get("/accuracy", response_model=PredictionAccuracyOut)
def get_accuracy(session: SessionDep, days: Annotated[int, Query(ge=1, le=3650)] = 7,
                 app_id: AppIdQuery = None) -> dict:
    """Per app and mode, over the succeeded runs of the last `days` that had a prediction for the mode they
    ran in: the number of runs and the median absolute % error of the predicted wall time and executor
    core-seconds against the actual ones; `overall`: the same per mode."""
    return prediction_accuracy(session, days, app_id)
