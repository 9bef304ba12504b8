"""Run the Graph emulator: ``python -m emulators.graph --tenant FILE [--port N] [--latency S] [--token T]``.

Prints the base URL (``http://127.0.0.1:PORT/v1.0``) as one line on stdout, then serves until
SIGTERM or SIGINT, so scripts can start it and read where it listens.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from emulators.graph import GraphEmulator, load_tenant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.graph", description=__doc__)
    parser.add_argument("--tenant", required=True, help="tenant JSON file (see emulators/tenants/demo.json)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--token", default="emulator-token", help="the bearer token to accept")
    args = parser.parse_args(argv)

    emulator = GraphEmulator(load_tenant(args.tenant), token=args.token, latency=args.latency, port=args.port)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with emulator:
        print(emulator.base_url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
