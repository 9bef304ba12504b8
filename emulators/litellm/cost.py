"""What writes to a team cost the real proxy, for an emulator that should not promise more.

LiteLLM 1.108.7 writes a team's roster in a transaction that holds the team's advisory lock, one
team after another within a request: requests that write one team wait for each other there, and
each team write costs a fixed part (the transaction), a part per member it adds and a part per
member already on the roster (rewritten whole). A bulk user creation also inserts its users first.

``CostModel.calibrated()`` holds those figures as measured on the real proxy on a 2-core machine
(tests/contract/test_calibration.py measures both and prints them side by side). The emulator
sleeps them, holding a lock per team for the team part, so its clients queue as they would on the
proxy. The emulator's default (no cost model) answers at once: the tests stay fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class WriteCost:
    """Seconds one kind of write takes."""

    per_request: float
    per_user: float  # per user a bulk creation inserts
    per_team: float  # per team write: one transaction under the team's lock
    per_added: float  # per member that team write adds
    per_present: float  # per member already on the roster


@dataclass(frozen=True)
class CostModel:
    bulk_create: WriteCost  # POST /management/v1/users/bulk
    member_add: WriteCost  # POST /team/member_add

    @classmethod
    def calibrated(cls) -> CostModel:
        """LiteLLM 1.108.7 with PostgreSQL on a shared 2-core machine (bench/README.md): a 500-user
        bulk creation into one empty team 0.6-0.8 s, into a team of 5,500 1.1-1.3 s; 500 users
        into 299 small teams 5.2 s; /team/member_add of 100 new members 1.2 s, of 500 5.1 s."""
        return cls(bulk_create=WriteCost(per_request=0.05, per_user=0.0002, per_team=0.015,
                                          per_added=0.001, per_present=0.00008),
                   member_add=WriteCost(per_request=0.05, per_user=0.0, per_team=0.015,
                                        per_added=0.01, per_present=0.00008))


@dataclass(frozen=True)
class TeamCharge:
    """One team write as charged: what it added and found, the seconds it slept for them, and when
    it held the team's lock (time.monotonic())."""

    team_id: str
    added: int
    present: int
    seconds: float
    held: tuple[float, float]


class TeamLocks:
    """Charges writes their cost, one write at a time per team (the proxy's advisory lock), and
    keeps a ledger of the team writes it charged."""

    def __init__(self, model: CostModel) -> None:
        self.model = model
        self.ledger: list[TeamCharge] = []
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def charge(self, cost: WriteCost, users: int, teams: Iterable[tuple[str, int, int]]) -> None:
        """A request that inserted ``users`` and then wrote ``teams`` (team id, members added,
        members it found on the roster), in that order."""
        time.sleep(cost.per_request + cost.per_user * users)
        for team_id, added, present in teams:
            with self._lock(team_id):
                start = time.monotonic()
                seconds = cost.per_team + cost.per_added * added + cost.per_present * present
                time.sleep(seconds)
                charge = TeamCharge(team_id, added, present, seconds, (start, time.monotonic()))
            with self._guard:
                self.ledger.append(charge)

    def _lock(self, team_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(team_id, threading.Lock())
