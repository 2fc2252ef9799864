"""``alembic upgrade head`` from the repository top works, with the URL given on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.store import migrate

ROOT = Path(__file__).resolve().parents[3]


def _alembic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "alembic", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


def test_alembic_cli_upgrade_and_downgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = _alembic("-x", f"url={url}", "upgrade", "head")
    assert done.returncode == 0, done.stderr
    assert migrate.current(url) == migrate.head()
    done = _alembic("-x", f"url={url}", "downgrade", "base")
    assert done.returncode == 0, done.stderr
    assert migrate.current(url) is None


def test_alembic_cli_takes_the_url_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    done = _alembic("upgrade", "head", env={"TUNEWATCH_DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    assert migrate.current(url) == migrate.head()


def test_offline_sql_has_no_secret() -> None:
    url = "postgresql+psycopg://tw:s3cr3t-canary@db.invalid/tw"
    done = _alembic("-x", f"url={url}", "upgrade", "head", "--sql")
    assert done.returncode == 0, done.stderr
    assert "CREATE TABLE requests" in done.stdout
    assert "s3cr3t-canary" not in done.stdout + done.stderr


def test_alembic_ini_holds_no_url() -> None:
    ini = (ROOT / "alembic.ini").read_text()
    assert "sqlalchemy.url" not in ini
    assert "script_location = %(here)s/service/store/migrations" in ini
