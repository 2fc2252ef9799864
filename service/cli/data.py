"""``tunewatch migrate`` and ``tunewatch report``: the database and what it says."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from service.cli._app import app, fail
from service.cli.serve import settings_from_env
from service.errors import ConfigError

__all__ = ["migrate"]


@app.command(epilog="Examples: tunewatch migrate;  tunewatch migrate --revision base  (drops every table)")
def migrate(
    revision: Annotated[str, typer.Option(
        "--revision", help="Target revision: head (the newest), base (empty), or a revision id.")] = "head",
    show: Annotated[bool, typer.Option("--show", help="Print the current revision and exit.")] = False,
) -> None:
    """Bring the database schema to a revision (Alembic).

    Uses TUNEWATCH_DATABASE_URL (default sqlite:///./tunewatch.db). `serve` and `demo` migrate by
    themselves at start unless TUNEWATCH_AUTO_MIGRATE=false.
    """
    from service.store import migrate as store_migrate  # lazy: alembic is slow to import

    settings = settings_from_env()
    try:
        if show:
            typer.echo(store_migrate.current(settings.database_url) or "(empty database)")
            return
        before = store_migrate.current(settings.database_url)
        if revision == "base":
            store_migrate.downgrade(settings.database_url, "base")
        else:
            store_migrate.upgrade(settings.database_url, revision)
        after = store_migrate.current(settings.database_url)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise fail(f"the database refused the migration: {exc.__class__.__name__}: {reason}", 1) from None
    typer.echo(f"database at revision {after or '(empty)'} (was {before or '(empty)'})")
