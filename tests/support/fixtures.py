"""Database fixtures, imported by ``tests/conftest.py`` (``from tests.support.fixtures import *``).

- ``postgres_cluster`` (session): the throwaway cluster of ``tests/support/postgres.py``; skips,
  loudly, when the PostgreSQL server binaries are missing (fails instead when
  ``TUNEWATCH_TEST_REQUIRE_POSTGRES=1``, for CI that must not silently skip).
- ``postgres_url`` (session): the URL of the cluster's ``tunewatch`` database.
- ``pg_database_url``: a fresh, empty database per test, dropped afterwards.
- ``dialect``: parametrised over ``sqlite`` and ``postgres`` (marked ``postgres``); the two
  fixtures below follow it, so a store test that takes either runs on both dialects.
- ``db_url``: an empty database (SQLite: a file in ``tmp_path``): for migration tests.
- ``migrated_url`` / ``migrated_db``: a fresh database already at ``head`` (copied from a template
  migrated once per session, which is much faster than migrating per test), and a
  :class:`service.store.db.Database` on it, disposed afterwards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from service.store.db import Database
from service.store.migrate import upgrade
from tests.support.postgres import PostgresCluster, PostgresUnavailable, start_cluster

__all__ = [
    "db_url", "dialect", "migrated_db", "migrated_url", "pg_database_url", "pg_template", "postgres_cluster",
    "postgres_url", "sqlite_template",
]

_database_numbers = count(1)


def _new_name() -> str:
    return f"tw_test_{os.getpid()}_{next(_database_numbers)}"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    try:
        with start_cluster() as cluster:
            yield cluster
    except PostgresUnavailable as exc:
        if os.environ.get("TUNEWATCH_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"TUNEWATCH_TEST_REQUIRE_POSTGRES=1 but: {exc}")
        # `-ra` (in addopts) lists this reason under every skipped test.
        pytest.skip(f"NO POSTGRESQL, PostgreSQL tests skipped: {exc}")


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.url()


@pytest.fixture
def pg_database_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    name = _new_name()
    url = postgres_cluster.create_database(name)
    yield url
    postgres_cluster.drop_database(name)


@pytest.fixture(scope="session")
def pg_template(postgres_cluster: PostgresCluster) -> str:
    """A PostgreSQL database migrated to ``head``, to copy with ``CREATE DATABASE ... TEMPLATE``."""
    name = f"tw_template_{os.getpid()}"
    upgrade(postgres_cluster.create_database(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to ``head``, to copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dialect(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def db_url(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'tunewatch.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture
def migrated_url(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if dialect == "sqlite":
        path = tmp_path / "tunewatch.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name = _new_name()
    yield cluster.create_database(name, template=request.getfixturevalue("pg_template"))
    cluster.drop_database(name)


@pytest.fixture
def migrated_db(migrated_url: str) -> Iterator[Database]:
    db = Database(migrated_url)
    yield db
    db.dispose()
