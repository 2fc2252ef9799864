"""``python -m service.simulator --port 0 --profile base``: one simulated upstream in the foreground."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from service.simulator.running import serve
from service.simulator.settings import PROFILES, SimConfig


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve until SIGTERM/SIGINT (blocking); the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m service.simulator",
        description="Run one simulated OpenAI-compatible upstream. Prints 'listening on http://HOST:PORT' "
        "first.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port to listen on; 0 picks a free one")
    parser.add_argument("--profile", choices=PROFILES, default="base", help="which upstream to play")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latency and fault draws")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply every simulated latency")
    parser.add_argument("--require-key", default=None, help="API key clients must send (default: any)")
    args = parser.parse_args(argv)
    try:
        config = SimConfig(seed=args.seed, time_scale=args.time_scale, require_key=args.require_key)
    except ValueError as exc:
        parser.error(str(exc))
    serve(args.host, args.port, args.profile, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
