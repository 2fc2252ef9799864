"""Persistence: the schema and its migrations, the database handle, the recorder's sink, queries, retention.

Synchronous throughout (SQLAlchemy 2.0 on sqlite3 or psycopg 3): run it off the event loop. Returns
frozen dataclasses, never ORM objects.

Must not import: telemetry, gateway, quality, drift, alerts, rollout, app, cli (store -> config, errors).
"""
