"""Keeps Graph reads under the app's resource-unit budget instead of bouncing off 429s.

Entra meters each app and tenant with a token bucket of resource units (RU): 8,000 per 10 s for a
large tenant, less for smaller ones (graph.md section 1.9). The SDK retries a 429 after its
Retry-After, but only that one request: the other concurrent reads keep spending, get throttled in
turn, and a group whose read runs out of retries comes back unknown (no membership changes that run).

This middleware sits last in the SDK's pipeline, so every attempt, retries included, passes it. It
keeps a bucket of its own, charged what each response's ``x-ms-resource-unit`` header says the
call cost, and holds requests back while the bucket is empty. Charging after the fact means no cost
table to keep in step with Microsoft's; the overshoot is at most one call per concurrent read. A 429
still pauses every read until its Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
from kiota_http.middleware.middleware import BaseMiddleware

from sync_core.retry_after import retry_after_seconds

log = logging.getLogger(__name__)

WINDOW_SECONDS = 10.0  # Graph states its quotas per 10 s
_DEFAULT_RETRY_AFTER = 1.0  # a 429 without a usable Retry-After


class ResourceUnitPacer(BaseMiddleware):
    """A token bucket of ``ru_per_window`` RU refilled over ``window`` seconds.

    With 0 there is no bucket, but a 429 still pauses every read for its Retry-After.
    """

    def __init__(self, ru_per_window: int, *, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.capacity = float(ru_per_window)
        self.rate = self.capacity / window
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._paused_until = 0.0
        self.throttled = 0  # 429s seen
        self.waited = 0.0  # seconds requests spent held back, summed over requests

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        await self._turn()
        response = await super().send(request, transport)
        self._charge(response)
        return response

    async def _turn(self) -> None:
        """Return once the bucket has budget left and no 429 pause is running."""
        while (delay := self._delay()) > 0:
            self.waited += delay
            await asyncio.sleep(delay)

    def _delay(self) -> float:
        now = self._clock()
        if self.capacity > 0:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        wait = self._paused_until - now
        if self.capacity > 0 and self._tokens <= 0:
            # Wait for a little budget to come back, not for the whole debt: whoever gets there
            # first spends it, the rest look again.
            wait = max(wait, (1.0 - self._tokens) / self.rate)
        return max(0.0, wait)

    def _charge(self, response: httpx.Response) -> None:
        self._tokens -= _resource_units(response)
        if response.status_code == 429:
            self.throttled += 1
            pause = _retry_after(response)
            self._paused_until = max(self._paused_until, self._clock() + pause)
            log.warning("Graph throttled a read (429); all reads wait %.0f s", pause)


def _resource_units(response: httpx.Response) -> float:
    value = response.headers.get("x-ms-resource-unit", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0  # not a directory call, or the header is missing: the minimum cost


def _retry_after(response: httpx.Response) -> float:
    seconds = retry_after_seconds(response.headers.get("Retry-After"))
    # A date or garbage gets the default (the SDK's own retry waits anyway).
    return _DEFAULT_RETRY_AFTER if seconds is None else min(seconds, 300.0)
