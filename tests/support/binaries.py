"""Prometheus, Alertmanager and friends as child processes on loopback, for the monitoring tests."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free loopback port, for servers that cannot report one they picked (Prometheus, Alertmanager)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ready(url: str) -> bool:
    """Whether a Prometheus-style server at ``url`` answers ``/-/ready`` with 200."""
    try:
        with urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def running(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process writing to ``log``, terminated (then killed) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def load_queries() -> ModuleType:
    """``grafana/queries.py`` (not a package): every dashboard panel's PromQL, variables filled in."""
    path = ROOT / "grafana" / "queries.py"
    spec = importlib.util.spec_from_file_location("tunewatch_grafana_queries", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
