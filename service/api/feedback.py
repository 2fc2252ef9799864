"""``POST /v1/feedback``: a user's verdict on a served request (client key).

The request may have been served a moment ago and still sit in the recorder's queue: when the
id is not in the database yet, the recorder is flushed once (bounded) and the lookup repeated.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.api.deps import Components, client_key, components
from service.errors import InvalidRequestError, NotFoundError
from service.store import queries
from service.telemetry.metrics import FEEDBACK

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(client_key)])

_FLUSH_WAIT_S = 5.0


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: Annotated[str, Field(min_length=1, max_length=128)]
    score: Annotated[int, Field(ge=1, le=5)] | None = None
    thumbs: Literal["up", "down"] | None = None
    comment: Annotated[str, Field(max_length=4000)] | None = None

    @model_validator(mode="after")
    def _one_verdict(self) -> FeedbackIn:
        if (self.score is None) == (self.thumbs is None):
            raise ValueError("send exactly one of `score` (1-5) or `thumbs` (\"up\" or \"down\")")
        return self


@router.post("/v1/feedback", status_code=201)
def post_feedback(body: FeedbackIn, comps: Annotated[Components, Depends(components)]) -> dict[str, object]:
    db = comps.database
    if db is None:
        raise InvalidRequestError("feedback needs a database: this instance records nothing.")
    ref = queries.find_request(db, body.request_id)
    if ref is None and comps.recorder.queued:
        comps.recorder.flush(_FLUSH_WAIT_S)
        ref = queries.find_request(db, body.request_id)
    if ref is None:
        raise NotFoundError(f"No request with id {body.request_id!r}: use the x-request-id header of a "
                            "response served by this tunewatch.", param="request_id")
    row = queries.add_feedback(db, body.request_id, score=body.score, thumbs=body.thumbs, comment=body.comment)
    experiment = ref.experiment if ref.experiment in comps.table.routes else "other"
    FEEDBACK.labels(experiment, ref.arm if experiment != "other" else "other", row.sentiment).inc()
    return {"request_id": body.request_id, "experiment": ref.experiment, "arm": ref.arm,
            "sentiment": row.sentiment, "recorded": True}
