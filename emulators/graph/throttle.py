"""Entra's resource-unit throttling (graph.md §1.9): per-request costs and a token bucket."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Base costs from throttling-limits.md; every other identity GET costs 1.
COST_USERS_LIST = 2
COST_MEMBERS = 3
COST_TRANSITIVE_MEMBERS = 5


def request_cost(base: int, query: dict[str, str]) -> int:
    """Cost of one request: base, -1 for $select, +1 for $expand, -1 for $top < 20, never below 1."""
    cost = base
    if "$select" in query:
        cost -= 1
    if "$expand" in query:
        cost += 1
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


@dataclass
class ResourceUnitBudget:
    """A token bucket holding ``quota`` RU that refills at ``quota / window_seconds`` RU per second.

    Graph's large-tenant quota is 8,000 RU per 10 s per app and tenant. A throttled request is not
    charged here (the real service may still count it, which only makes retries slower).
    """

    quota: int = 8000
    window_seconds: float = 10.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if self.quota <= 0 or self.window_seconds <= 0:
            raise ValueError("quota and window_seconds must be positive")
        self._tokens = float(self.quota)
        self._stamp = self.clock()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self.quota / self.window_seconds

    def try_charge(self, cost: int) -> int | None:
        """Take ``cost`` RU. None when admitted, else whole seconds until enough budget refills."""
        with self._lock:
            self._refill()
            if self._tokens >= cost:
                self._tokens -= cost
                return None
            return max(1, math.ceil((cost - self._tokens) / self.rate))

    def used_fraction(self) -> float:
        with self._lock:
            self._refill()
            return 1.0 - self._tokens / self.quota

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(float(self.quota), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
