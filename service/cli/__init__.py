"""The ``tunewatch`` command line: one typer app; each area's commands live in their own module.

Modules register on :data:`app` when imported; :func:`main` imports them all. The commands are thin:
parse, build ``Settings``, call one function of the owning package, map the result to an exit code
(0 success, 1 the operation ran and failed, 2 bad usage or config).
"""

from __future__ import annotations

from service.cli._app import app, main

__all__ = ["app", "main"]
