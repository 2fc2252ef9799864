"""A throwaway PostgreSQL cluster for tests: initdb into a temporary folder, start, hand out URLs, stop.

The server binaries come from ``/usr/lib/postgresql/<version>/bin`` (newest first) or ``PATH``.
``initdb`` refuses to run as root, so as root every server command runs as the ``postgres`` system
user (or a dedicated ``tunewatch-test`` user created on the spot) through ``runuser``, in a folder
that user owns. The cluster listens on 127.0.0.1 only, on a free port, with a random password
(scram-sha-256), ``fsync=off`` unless asked to be durable (a crash loses nothing a test needs),
and its socket in its own folder.

Use :func:`start_cluster` as a context manager, or the pytest fixtures in ``tests/support/fixtures``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["PostgresCluster", "PostgresUnavailable", "find_bin_dir", "start_cluster"]

_USER = "tunewatch"
_FALLBACK_OS_USER = "tunewatch-test"
_START_TIMEOUT_S = 60


class PostgresUnavailable(Exception):
    """The PostgreSQL server binaries are not installed: tests must skip, loudly."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``; raises ``PostgresUnavailable`` if there is none."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for folder in candidates:
        if Path(folder, "initdb").is_file() and Path(folder, "pg_ctl").is_file():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin or on PATH. "
        "Install them (`make system-deps-test`, or `apt-get install postgresql`) to run the PostgreSQL tests."
    )


def _version_key(folder: str) -> tuple[int, ...]:
    version = Path(folder).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


@dataclass
class PostgresCluster:
    """A running cluster. ``url(db)`` is a SQLAlchemy URL (``postgresql+psycopg://``) for database ``db``."""

    bin_dir: Path
    root: Path
    port: int
    password: str
    os_user: str | None  # who runs the server commands (None: the current user)
    default_database: str = "tunewatch"

    def url(self, database: str | None = None) -> str:
        return (
            f"postgresql+psycopg://{_USER}:{self.password}@127.0.0.1:{self.port}/"
            f"{database or self.default_database}"
        )

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=_USER, password=self.password, dbname="postgres",
            autocommit=True, connect_timeout=10,
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database, empty or as a copy of ``template`` (which nobody may be connected to)."""
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
        with self._connect() as conn:
            conn.execute(stmt)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still holds it."""
        with self._connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def dump(self, database: str) -> str:
        """``pg_dump`` of a database (schema and data, as SQL text)."""
        cmd = [str(self.bin_dir / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", _USER, database]
        done = subprocess.run(
            cmd, env={**os.environ, "PGPASSWORD": self.password}, capture_output=True, text=True, timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_dump failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def halt(self) -> None:
        """Stop the server (``fast``: clients are cut off, committed data stays): an outage until
        :meth:`restart`. Not ``immediate``: with ``synchronous_commit=off`` a crash may lose the last
        commits, which is the test cluster's speed trade, not the service's behaviour."""
        _run(self.os_user, [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                            "-w", "-t", "30", "stop"], cwd=self.root)

    def restart(self) -> None:
        """Start the halted server again on the same port."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root / 'socket'} -c max_connections=50 "
                   "-c shared_buffers=32MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _run(self.os_user, [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                            str(self.root / "server.log"), "-o", options, "-w", "-t", str(_START_TIMEOUT_S),
                            "start"], cwd=self.root)

    def stop(self) -> None:
        _run(self.os_user, [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                            "-w", "-t", "30", "stop"], cwd=self.root, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def start_cluster(*, durable: bool = False) -> Iterator[PostgresCluster]:
    """Start a cluster and a database named ``tunewatch``; stop and delete everything on exit.

    ``durable=True`` keeps PostgreSQL's default ``fsync``/``synchronous_commit`` (benchmarks);
    tests leave them off for speed.

    Raises ``PostgresUnavailable`` when the binaries are missing, ``RuntimeError`` (with the
    server log) when the cluster does not start.
    """
    bin_dir = find_bin_dir()
    os_user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="tunewatch-pg-"))  # under /tmp: the server user can reach it
    cluster: PostgresCluster | None = None
    try:
        password = secrets.token_hex(16)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        (root / "socket").mkdir()
        if os_user is not None:
            info = pwd.getpwnam(os_user)
            for path in (root, root / "socket", pwfile):
                os.chown(path, info.pw_uid, info.pw_gid)
        os.chmod(root, 0o700)
        initdb = [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", _USER, "--pwfile", str(pwfile),
                  "--auth=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"]
        _run(os_user, initdb, cwd=root)
        pwfile.unlink()
        cluster = _start_on_free_port(bin_dir, root, password, os_user, durable)
        cluster.create_database(cluster.default_database)
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        else:
            shutil.rmtree(root, ignore_errors=True)


def _start_on_free_port(
    bin_dir: Path, root: Path, password: str, os_user: str | None, durable: bool
) -> PostgresCluster:
    # PostgreSQL cannot take a listening socket from us: pick a free port, retry if it was taken meanwhile.
    last_log = ""
    for _attempt in range(3):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root / 'socket'} -c max_connections=50 "
            "-c shared_buffers=32MB"
        )
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        logfile = root / "server.log"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(logfile), "-o", options,
                  "-w", "-t", str(_START_TIMEOUT_S), "start"]
        done = _run(os_user, pg_ctl, cwd=root, check=False)
        if done.returncode == 0:
            return PostgresCluster(bin_dir=bin_dir, root=root, port=port, password=password, os_user=os_user)
        last_log = _tail(logfile)
        if "already in use" not in last_log:
            break
    raise RuntimeError(f"the throwaway PostgreSQL did not start; its log ends with:\n{last_log}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_user() -> str | None:
    """None when not root; else ``postgres`` if it exists, else a ``tunewatch-test`` user made now."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _FALLBACK_OS_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _FALLBACK_OS_USER]
    subprocess.run(useradd, check=True, capture_output=True, timeout=30)
    return _FALLBACK_OS_USER


def _run(
    os_user: str | None, cmd: list[str], *, cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    full = ["runuser", "-u", os_user, "--", *cmd] if os_user is not None else cmd
    done = subprocess.run(
        full, cwd=cwd, capture_output=True, text=True, timeout=_START_TIMEOUT_S + 30, check=False
    )
    if check and done.returncode != 0:
        output = done.stderr.strip() or done.stdout.strip()
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({done.returncode}): {output}")
    return done


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"
