"""``/healthz`` (the process answers), ``/readyz`` (the DB answers, upstreams configured), ``/metrics``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from service.api.deps import Components, components

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
def readyz(comps: Annotated[Components, Depends(components)]) -> JSONResponse:
    checks: dict[str, str] = {"upstreams": "ok" if comps.experiments.upstreams else "none configured"}
    if comps.database is not None:
        checks["database"] = "ok" if comps.database.ping() else "unreachable"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
