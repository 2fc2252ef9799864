"""``GET /admin/experiments/{name}/report?format=json|html``: the experiment report (admin key).

A plain ``def`` route: FastAPI runs it in its threadpool, so the blocking SQL and the statistics
never touch the event loop. Uses the live routing shares and stage of this replica's routing table,
and the fine-tuning job's cost from the experiment's ``fine_tuning_job_cost_usd``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from service.api.deps import Components, admin_key, components
from service.errors import InvalidRequestError
from service.quality.report import build_report
from service.quality.report_html import render_html

__all__ = ["router"]

router = APIRouter(prefix="/admin", dependencies=[Depends(admin_key)])


class ReportFormat(StrEnum):
    JSON = "json"
    HTML = "html"


@router.get("/experiments/{name}/report", response_model=None)
def experiment_report(
    name: str,
    comps: Annotated[Components, Depends(components)],
    format: Annotated[
        ReportFormat, Query(description="json (the report contract) or html")
    ] = ReportFormat.JSON,
    since: Annotated[datetime | None, Query(description="only traffic since this ISO time (UTC)")] = None,
) -> Response:
    """The report of experiment ``name``; 404 when it is neither configured nor has data."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a time without a zone is UTC, as everywhere in tunewatch
    if comps.database is None:
        raise InvalidRequestError("Reports need the database, and this service runs without one.")
    route = comps.table.get(name)
    weights: dict[str, float] | None = dict(route.shares) if route is not None else None
    report = build_report(
        comps.database,
        comps.experiments,
        name,
        stage_override=route.stage.value if route is not None else None,
        since=since,
        weights=weights,
    )
    if format is ReportFormat.HTML:
        return HTMLResponse(render_html(report))
    return Response(orjson.dumps(report.to_dict()), media_type="application/json")
