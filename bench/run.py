"""`make bench`: the proxy overhead benchmark (shared/bench/proxy_overhead.py) with tunewatch as the
candidate, then the other benchmarks of the repo. Prints every table; writes JSON to bench-results/.

tunewatch runs as in production: one process pinned to CPU 1 (the harness pins the upstream and wrk
to CPU 0), every hot-path feature on (auth, sticky arms, metrics, the recorder writing to SQLite).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "bench" / "proxy_overhead.py"
RESULTS = ROOT / "bench-results"


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"tunewatch exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("tunewatch did not become ready")


def start_tunewatch(port: int, db_url: str, work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TUNEWATCH_API_KEYS": "sk-bench", "TUNEWATCH_DATABASE_URL": db_url,
           "TUNEWATCH_LOG_LEVEL": "WARNING", "TUNEWATCH_SCHEDULER_ENABLED": "false"}
    cmd = ["taskset", "-c", "1", str(ROOT / ".venv" / "bin" / "tunewatch"), "serve",
           "--config", str(ROOT / "bench" / "experiments.yaml"), "--port", str(port)]
    log = open(work / "tunewatch.log", "wb")  # noqa: SIM115  # closed with the process
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_ready(f"http://127.0.0.1:{port}", proc)
    return proc


def proxy_bench(args: argparse.Namespace) -> int:
    if not HARNESS.exists():
        raise SystemExit(f"the benchmark harness is missing: {HARNESS.relative_to(ROOT.parent)}")
    RESULTS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tunewatch-bench-"))
    db_url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    proc = start_tunewatch(args.port, db_url, work)
    try:
        cmd = [sys.executable, str(HARNESS), "--candidate-url", f"http://127.0.0.1:{args.port}",
               "--peers", args.peers, "--concurrency", args.concurrency, "--duration", str(args.duration),
               "--json", str(RESULTS / f"proxy-{args.label}.json")]
        return subprocess.run(cmd, check=False).returncode
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        print(f"tunewatch log: {work / 'tunewatch.log'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=["proxy", "writer", "ood", "scorer", "stats"], help="run one benchmark")
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--peers", default="direct,nginx,floor,litellm")
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--database-url", help="record into this database instead of a fresh SQLite file")
    ap.add_argument("--label", default="sqlite")
    args = ap.parse_args()
    rc = 0
    if args.only in (None, "proxy"):
        rc |= proxy_bench(args)
    for name, script in (("writer", "writer_throughput.py"), ("ood", "ood_backends.py"),
                         ("scorer", "scorer_throughput.py"), ("stats", "stats_simulation.py")):
        path = ROOT / "bench" / script
        if args.only in (None, name) and path.exists():
            rc |= subprocess.run([sys.executable, str(path)], check=False).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
