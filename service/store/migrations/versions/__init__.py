"""Alembic revisions, one module each (``NNNN_slug.py``); alembic loads them by path."""
