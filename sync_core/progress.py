"""Progress at a terminal: where a `plan` or `apply` is, on one line of stderr, redrawn in place.

    reading Entra | groups 12/40 | reading LiteLLM
    applying 310/1200

The CLI turns it on with ``shown(sys.stderr)`` (and only when that is a terminal and there is no
--json); the reader, the runner and the executor mark their stages here. Without it every call
below is a no-op, so the timer, the HTTP trigger and piped output never see any of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TextIO, TypeVar

ENTRA, GROUPS, LITELLM, APPLYING = "reading Entra", "groups", "reading LiteLLM", "applying"
REFRESH_SECONDS = 0.2
T = TypeVar("T")


@dataclass
class _Stage:
    total: int | None = None
    done: int = 0
    poll: Callable[[], int] | None = None  # counts the done itself

    def text(self, name: str) -> str:
        if self.total is None:
            return name
        return f"{name} {self.poll() if self.poll else self.done}/{self.total}"


class Progress:
    """The stages under way, drawn as one line (stages run concurrently: Entra and LiteLLM)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.stages: dict[str, _Stage] = {}
        self._drawn = ""

    def draw(self) -> None:
        line = " | ".join(stage.text(name) for name, stage in list(self.stages.items()))
        line = line[:max(10, _width(self._stream) - 1)]  # a wrapped line could not be redrawn in place
        if line != self._drawn:
            self._stream.write(f"\r{line}\x1b[K")
            self._stream.flush()
            self._drawn = line

    def clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = ""

    def clear_for_log(self, record: logging.LogRecord) -> bool:
        self.clear()
        return True


_current: ContextVar[Progress | None] = ContextVar("sync_core_progress", default=None)


@contextlib.asynccontextmanager
async def shown(stream: TextIO, *, enabled: bool = True) -> AsyncIterator[None]:
    """Show progress on ``stream`` for the body, if it is a terminal and ``enabled``."""
    if not enabled or not stream.isatty():
        yield
        return
    progress = Progress(stream)
    token = _current.set(progress)
    ticker = asyncio.create_task(_tick(progress))
    # A log line written to the same stream clears the progress line first (the next tick redraws it).
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is stream]
    for handler in handlers:
        handler.addFilter(progress.clear_for_log)
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        for handler in handlers:
            handler.removeFilter(progress.clear_for_log)
        progress.clear()
        _current.reset(token)


@contextlib.contextmanager
def stage(name: str, total: int | None = None, poll: Callable[[], int] | None = None) -> Iterator[None]:
    """Mark ``name`` under way for the body; drawn once more when it ends, so its last count shows."""
    progress = _current.get()
    if progress is None:
        yield
        return
    progress.stages[name] = _Stage(total, 0, poll)
    try:
        yield
    finally:
        progress.draw()
        progress.stages.pop(name, None)


async def during(name: str, work: Awaitable[T]) -> T:
    """``await work`` with ``name`` shown as under way."""
    with stage(name):
        return await work


async def counted(name: str, work: Awaitable[T]) -> T:
    """``await work``, then count one more done for the stage ``name``."""
    try:
        return await work
    finally:
        progress = _current.get()
        if progress is not None and name in progress.stages:
            progress.stages[name].done += 1


def grow(name: str, more: int) -> None:
    """``more`` to do for the stage ``name`` (e.g. nested groups found while reading)."""
    progress = _current.get()
    if progress is not None and name in progress.stages:
        stage_ = progress.stages[name]
        stage_.total = (stage_.total or 0) + more


async def _tick(progress: Progress) -> None:
    while True:
        progress.draw()
        await asyncio.sleep(REFRESH_SECONDS)


def _width(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    return columns or 80  # a terminal that does not say its size reports 0
