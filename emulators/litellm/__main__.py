"""Run the LiteLLM emulator: ``python -m emulators.litellm [--port N] [--master-key KEY] [--latency S]``.

Prints the base URL on one line, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from emulators.litellm.server import LiteLLMEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.litellm", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--master-key", default="sk-test-master")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument(
        "--member-add-limit",
        type=int,
        default=500,
        help="members one /team/member_add may add before it fails like the real proxy's transaction timeout",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with LiteLLMEmulator(
        master_key=args.master_key,
        latency=args.latency,
        port=args.port,
        member_add_limit=args.member_add_limit,
    ) as emulator:
        print(emulator.base_url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
