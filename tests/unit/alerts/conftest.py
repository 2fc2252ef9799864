"""Fixtures of the alert unit tests: a hand-moved clock and a migrated SQLite database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.store.db import Database
from service.store.migrate import upgrade

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A :class:`service.alerts.clock.Clock` that moves only when told."""

    current: datetime = T0

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # migrating takes most of a second: do it once, copy the file per test
    path = tmp_path_factory.mktemp("alerts-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    Database(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_template: Path) -> str:
    path = tmp_path / "alerts.db"
    shutil.copyfile(migrated_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    yield database
    database.dispose()
