"""Holds the local run lock in a process of its own, so the tests exercise real flock semantics.

    python -m tests.state.lock_holder DIR TRIGGER

Prints ``locked <started_at>`` and holds the lock until a line (or EOF) arrives on stdin, or prints
``busy <trigger> <started_at>`` and exits 3 if another process holds it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sync_core.errors import LockBusy
from sync_core.state.local import LocalStateBackend

EXIT_BUSY = 3


async def hold(directory: Path, trigger: str) -> int:
    backend = LocalStateBackend(directory)
    try:
        async with backend.run_lock(trigger) as lease:
            print(f"locked {lease.started_at.isoformat()}", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
    except LockBusy as exc:
        since = exc.started_at.isoformat() if exc.started_at else "-"
        print(f"busy {exc.trigger} {since}", flush=True)
        return EXIT_BUSY
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(hold(Path(sys.argv[1]), sys.argv[2])))
