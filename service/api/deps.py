"""Dependencies shared by the FastAPI routes: the app's components and the key checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from service.config import ExperimentsFile, Settings
from service.errors import AuthenticationError
from service.gateway.arms import RoutingTable
from service.gateway.auth import KeyChecker, key_from_headers
from service.telemetry.recorder import Recorder

if TYPE_CHECKING:
    from service.store.db import Database

__all__ = ["Components", "admin_key", "client_key", "components"]


@dataclass
class Components:
    """What the routes need, built once by ``create_app`` and kept on ``app.state``."""

    settings: Settings
    experiments: ExperimentsFile
    table: RoutingTable
    recorder: Recorder
    client_keys: KeyChecker
    admin_keys: KeyChecker | None
    database: Database | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def components(request: Request) -> Components:
    comps: Components = request.app.state.components
    return comps


def _presented(request: Request) -> bytes | None:
    auth = request.headers.get("authorization")
    api_key = request.headers.get("api-key")
    return key_from_headers(auth.encode("latin-1") if auth else None, api_key.encode("latin-1") if api_key else None)


def client_key(request: Request, comps: Annotated[Components, Depends(components)]) -> None:
    comps.client_keys.check(_presented(request))


def admin_key(request: Request, comps: Annotated[Components, Depends(components)]) -> None:
    if comps.admin_keys is None:
        raise AuthenticationError("The admin API is disabled: set TUNEWATCH_ADMIN_KEY to enable it.")
    comps.admin_keys.check(_presented(request))
