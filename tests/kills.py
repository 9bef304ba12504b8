"""Runs killed half-way, as a worker that dies mid-apply: the run is cancelled after so many writes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from emulators.http_base import Fault, FaultInjector, Request
from sync_core.runner import RunRequest, run_sync
from sync_core.settings import Settings
from sync_core.state import LocalStateBackend


class KillAfterWrites(FaultInjector):
    """Lets ``writes`` LiteLLM writes through, then flags that the run must be killed."""

    def __init__(self, writes: int) -> None:
        self.left = writes
        self.fired = threading.Event()

    def decide(self, request: Request) -> Fault | None:
        if request.method == "POST":
            self.left -= 1
            if self.left <= 0:
                self.fired.set()
        return None


async def faulty_run(settings: Settings, state: LocalStateBackend, kill: KillAfterWrites | None,
                     trigger: str = "chaos") -> Any:
    """The run, or None when ``kill`` fired and the run was cancelled mid-apply (a killed worker)."""
    task = asyncio.create_task(run_sync(settings, RunRequest(dry_run=False, trigger=trigger), state=state))
    while kill is not None and not task.done():
        if kill.fired.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return None
        await asyncio.sleep(0.002)
    return await task
