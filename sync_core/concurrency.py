"""Bounded concurrency shared by the readers and the executor."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def gather_limited(limit: int, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    """Run ``jobs`` with at most ``limit`` at a time (each job handles its own errors)."""
    slots = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with slots:
            await job()

    await asyncio.gather(*(run(j) for j in jobs))
