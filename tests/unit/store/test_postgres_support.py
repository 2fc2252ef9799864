"""The throwaway-PostgreSQL helper says loudly what is missing."""

from __future__ import annotations

import glob
import shutil

import pytest

from tests.support import postgres


def test_missing_binaries_are_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(glob, "glob", lambda pattern: [])
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(postgres.PostgresUnavailable, match=r"initdb, pg_ctl.*apt-get install postgresql"):
        postgres.find_bin_dir()


def test_newest_version_first() -> None:
    newer = postgres._version_key("/usr/lib/postgresql/16/bin")
    assert newer > postgres._version_key("/usr/lib/postgresql/9.6/bin")
