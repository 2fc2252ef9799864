"""Child processes that print their address first (`--port 0`), stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Child:
    proc: subprocess.Popen[str]
    url: str
    output: list[str] = field(default_factory=list)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait, return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    @property
    def text(self) -> str:
        return "".join(self.output)


def _pump(child: Child, first: threading.Event) -> None:
    assert child.proc.stdout is not None
    for line in child.proc.stdout:
        child.output.append(line)
        match = _ADDRESS.search(line)
        if match and not child.url:
            child.url = f"http://127.0.0.1:{match.group(1)}"
            first.set()
    first.set()


@contextmanager
def spawn(args: list[str], env: dict[str, str] | None = None, timeout_s: float = 60.0) -> Iterator[Child]:
    """Start ``python -m ...``/a console script; yields once it printed an http://127.0.0.1:PORT address."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
                            cwd=ROOT)
    child = Child(proc, "")
    first = threading.Event()
    reader = threading.Thread(target=_pump, args=(child, first), daemon=True)
    reader.start()
    try:
        if not first.wait(timeout_s) or not child.url:
            raise AssertionError(f"{args} printed no address; output:\n{child.text}")
        yield child
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


def tunewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", *args]
