"""Alembic migrations, shipped inside the package so an installed tunewatch can migrate its database.

Run them with :mod:`service.store.migrate` (``tunewatch migrate``) or ``alembic upgrade head`` from
the repository top. Revisions are written by hand and never import ``service`` models.
"""
