"""``/admin/*``: experiments, their stage and weights (admin key).

Stage and weight changes act at once on this replica's routing table and on
``tunewatch_arm_weight``, and are stored: the other replicas apply them within seconds
(``rollout.state.sync``). Routes doing database work are plain ``def`` (FastAPI's threadpool).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import Components, admin_key, components
from service.config import Stage
from service.errors import InvalidRequestError, NotFoundError
from service.gateway.arms import ExperimentRoute
from service.rollout.state import persist, publish_shares

__all__ = ["router"]

router = APIRouter(prefix="/admin", dependencies=[Depends(admin_key)])


class StageChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Stage


class WeightsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, Annotated[float, Field(ge=0, le=1)]]


def describe(route: ExperimentRoute) -> dict[str, Any]:
    return {
        "name": route.name,
        "stage": route.stage.value,
        "control": route.control,
        "treatment": route.treatment,
        "arms": [
            {"name": a.name, "upstream": a.upstream, "weight": route.weights[a.name],
             "share": round(route.shares[a.name], 6), "sample_rate": a.sample_rate}
            for a in route.arms
        ],
    }


def _changed(comps: Components, route: ExperimentRoute) -> dict[str, Any]:
    """Publish a change made here and store it for the other replicas (they poll it)."""
    publish_shares(route.name, route.shares)
    if comps.database is not None:
        persist(comps.database, route.name, route.stage, route.weights)
    return describe(route)


def _route(comps: Components, name: str) -> ExperimentRoute:
    route = comps.table.get(name)
    if route is None:
        raise NotFoundError(f"No experiment named {name!r}; known: {sorted(comps.table.routes)}.")
    return route


@router.get("/experiments")
def list_experiments(comps: Annotated[Components, Depends(components)]) -> dict[str, Any]:
    return {"experiments": [describe(r) for r in comps.table.routes.values()]}


@router.get("/experiments/{name}")
def get_experiment(name: str, comps: Annotated[Components, Depends(components)]) -> dict[str, Any]:
    return describe(_route(comps, name))


@router.post("/experiments/{name}/stage")
def change_stage(name: str, body: StageChange, comps: Annotated[Components, Depends(components)]) -> dict[str, Any]:
    _route(comps, name)
    return _changed(comps, comps.table.set_stage(name, body.stage))


@router.put("/experiments/{name}/weights")
def change_weights(name: str, body: WeightsChange, comps: Annotated[Components, Depends(components)]) -> dict[str, Any]:
    _route(comps, name)
    try:
        route = comps.table.set_weights(name, body.weights)
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="weights") from None
    return _changed(comps, route)
